"""The analysts' published snapshot: model, dictionary, example queries, read-only, concurrency."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from datetime import date, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

from warehouse.db import connect, migrate
from warehouse.dictionary import render
from warehouse.model import MODEL
from warehouse.publish import IN_FLIGHT, MANIFEST, publish
from zwy.analyst import ReadOnlyViolation, run_sql
from zwy.cli import app
from zwy.pipeline import run_day
from zwy.sample.generate import generate_district
from zwy.settings import Settings

REPO = Path(__file__).resolve().parents[2]
DAY = date(2024, 5, 1)


@pytest.fixture(scope="module")
def district(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, dict]:
    root = tmp_path_factory.mktemp("pub")
    generate_district(root / "sample", [DAY], scale="test")
    settings = Settings.for_district(root / "data", root / "sample")
    summary = run_day(DAY, settings)
    assert summary.status == "success"
    assert any(s["name"] == "publish" and s["status"] == "success" for s in summary.stages)
    return settings, json.loads((root / "sample" / "planted.json").read_text())


def snapshot(settings: Settings) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(settings.published / "zwy.duckdb"), read_only=True)


def test_the_snapshot_holds_what_the_warehouse_holds(district):
    settings, _ = district
    with connect(settings.warehouse, read_only=True) as wh, snapshot(settings) as pub:
        for table in (
            "raw_ingest_files",
            "raw_quarantine",
            "stg_readings",
            "stg_packets",
            "mart_hourly_values",
            "mart_daily_values",
            "breaches",
            "dq_issues",
            "stg_waste_ledger",
            "mart_dust_hourly",
            "ref_facilities",
        ):
            a, b = (
                c.execute(f"select * from {table}").pl().select(pl.all().cast(pl.String))
                for c in (wh, pub)
            )
            assert a.columns == b.columns, table
            assert a.sort(a.columns, nulls_last=True).equals(b.sort(b.columns, nulls_last=True)), (
                table
            )
        assert pub.execute("select count(*) from meta_publish").fetchone() == (1,)


def test_data_dictionary_is_in_sync(district):
    settings, _ = district
    with snapshot(settings) as pub:
        text = render(pub)
    committed = (REPO / "docs" / "data-dictionary.md").read_text(encoding="utf-8")
    assert text == committed, (
        "docs/data-dictionary.md is stale: uv run python -m warehouse.dictionary "
        "<published>/zwy.duckdb --out docs/data-dictionary.md"
    )


def test_every_view_and_model_column_is_documented(district):
    settings, _ = district
    with snapshot(settings) as pub:
        views = dict(
            pub.execute(
                "select view_name, comment from duckdb_views() where not internal"
            ).fetchall()
        )
        assert all(views.values()), [v for v, c in views.items() if not c]
        for name in MODEL:
            cols = pub.execute(
                "select column_name, comment from duckdb_columns() where table_name = ?", [name]
            ).fetchall()
            assert cols and all(c for _, c in cols), (name, [n for n, c in cols if not c])


def test_example_queries_answer_on_the_sample(district):
    settings, planted = district
    results = {}
    for path in sorted((REPO / "docs" / "queries").glob("*.sql")):
        rel = run_sql(settings.published, path.read_text(encoding="utf-8"))
        assert rel is not None
        results[path.stem] = rel.pl()
        assert results[path.stem].height > 0, path.name
    with connect(settings.warehouse, read_only=True) as wh:
        n = wh.execute("select count(*) from breaches where local_day = ?", [DAY]).fetchone()
    assert results["01_breaches_of_a_day"].height == n[0]
    gap = planted["solid_waste"]["ledger_balance"][0]
    row = results["04_waste_ledgers_that_do_not_balance"].row(0, named=True)
    assert (row["row"], abs(row["balance_gap_t"])) == (gap["row"], pytest.approx(gap["gap_t"]))
    assert results["06_dust_sites_above_the_station"]["hour_local"].to_list() == [10, 11, 12]
    unconfirmed = planted["solid_waste"]["manifest_unconfirmed"][0]["manifest_no"]
    assert unconfirmed in results["07_manifests_waiting_for_confirmation"]["manifest_no"].to_list()


@pytest.mark.parametrize(
    "sql",
    [
        "insert into ref_facilities values ('X', 'x', 'x', 'x', 'x')",
        "create table t (a int)",
        "drop view v_breaches",
        "attach '/tmp/other.duckdb' as other",
        "copy (select 1) to '/tmp/out.csv'",
        "set enable_external_access = true",
        "install httpfs",
        "select 1; delete from breaches",
    ],
)
def test_writes_attach_and_copy_are_refused(district, sql):
    settings, _ = district
    with pytest.raises(ReadOnlyViolation, match="refused"):
        run_sql(settings.published, sql)


def test_files_outside_the_snapshot_cannot_be_read(district, tmp_path):
    settings, _ = district
    secret = tmp_path / "secret.csv"
    secret.write_text("a\n1\n")
    with pytest.raises(duckdb.Error, match="disabled by configuration|Permission"):
        run_sql(settings.published, f"select * from read_csv('{secret}')")
    with pytest.raises(duckdb.Error, match="disabled by configuration|Permission"):
        run_sql(settings.published, f"select * from read_csv('{settings.warehouse}')")


def test_cli_formats_and_refusal(district, tmp_path):
    settings, _ = district
    runner = CliRunner()
    base = ["--published", str(settings.published)]
    res = runner.invoke(
        app,
        [
            "sql",
            "select facility_id, status from v_compliance_status order by 1",
            "--format",
            "json",
            *base,
        ],
    )
    assert res.exit_code == 0, res.output
    assert {r["facility_id"] for r in json.loads(res.output)} >= {"F0001", "S001"}
    res = runner.invoke(
        app,
        [
            "sql",
            "select * from v_breaches",
            "--format",
            "parquet",
            "--out",
            str(tmp_path / "b.parquet"),
            *base,
        ],
    )
    assert res.exit_code == 0 and (tmp_path / "b.parquet").stat().st_size > 0
    res = runner.invoke(app, ["sql", "delete from breaches", *base])
    assert res.exit_code == 2 and "DELETE statements are refused" in res.output
    q = REPO / "docs" / "queries" / "02_compliance_status.sql"
    res = runner.invoke(app, ["sql", "--file", str(q), "--format", "csv", *base])
    assert res.exit_code == 0 and res.output.startswith("local_day,facility_id")


def test_publish_exports_only_the_days_that_changed(district):
    settings, _ = district
    before = json.loads((settings.published / MANIFEST).read_text())
    with connect(settings.warehouse) as con:
        res = publish(con, settings.published, {DAY})
    after = json.loads((settings.published / MANIFEST).read_text())
    # The other local day (30 April: late packets) kept its file; 1 May got new ones.
    other = before["tables"]["mart_hourly_values"]["2024-04-30"]
    assert after["tables"]["mart_hourly_values"]["2024-04-30"] == other
    assert (
        after["tables"]["mart_hourly_values"]["2024-05-01"]
        != before["tables"]["mart_hourly_values"]["2024-05-01"]
    )
    assert res.exported["mart_hourly_values"] == 1
    # The staging files did not change: the last snapshot's links stand, none is made again.
    assert res.linked == 0
    assert after["tables"]["stg_readings"] == before["tables"]["stg_readings"]
    staged = [rel for t in ("stg_readings", "stg_packets") for rel in after["tables"][t].values()]
    assert len(staged) >= 2
    assert all((settings.published / "files" / rel).is_file() for rel in staged)
    assert (settings.published / "files" / other).is_file()


READER = textwrap.dedent(
    """
    import json, sys, time, duckdb
    from pathlib import Path
    catalog, stop, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    with out.open("w") as fh:
        while not stop.exists():
            try:
                con = duckdb.connect(str(catalog), read_only=True)
                pid = con.execute("select publish_id from meta_publish").fetchone()[0]
                rows = con.execute(
                    "select batch_day::varchar, count(*), sum(frames_found) from raw_ingest_files "
                    "group by 1 order by 1").fetchall()
                n = con.execute("select count(*) from stg_readings").fetchone()[0]
                con.close()
                fh.write(json.dumps({"pid": pid, "files": rows, "readings": n}) + "\\n")
            except Exception as exc:
                fh.write(json.dumps({"error": f"{type(exc).__name__}: {exc}"}) + "\\n")
            fh.flush()
            time.sleep(0.05)
    """
)


def test_a_reader_in_a_loop_during_three_loads_sees_only_complete_runs(tmp_path):
    days = [DAY + timedelta(days=i) for i in range(3)]
    generate_district(tmp_path / "sample", days, scale="test")
    settings = Settings.for_district(tmp_path / "data", tmp_path / "sample")
    run_day(days[0], settings, validate=False)  # a first snapshot for the reader to open
    expected: dict[str, dict] = {}

    def record() -> None:
        with snapshot(settings) as pub:
            pid = pub.execute("select publish_id from meta_publish").fetchone()[0]
            rows = pub.execute(
                "select batch_day::varchar, count(*), sum(frames_found) from raw_ingest_files "
                "group by 1 order by 1"
            ).fetchall()
            n = pub.execute("select count(*) from stg_readings").fetchone()[0]
        expected[pid] = {"files": [list(r) for r in rows], "readings": n}

    record()
    stop, out = tmp_path / "stop", tmp_path / "reads.jsonl"
    script = tmp_path / "reader.py"
    script.write_text(READER)
    reader = subprocess.Popen(
        [sys.executable, str(script), str(settings.published / "zwy.duckdb"), str(stop), str(out)]
    )
    try:
        for d in days:  # three nightly loads (the first one again: a rerun), each published
            t = time.perf_counter()
            summary = run_day(d, settings, validate=False)
            assert summary.status == "success"
            record()
            assert time.perf_counter() - t < 120  # the load never waited on the reader
        time.sleep(0.5)
    finally:
        stop.touch()
        reader.wait(timeout=60)
    reads = [json.loads(line) for line in out.read_text().splitlines()]
    errors = [r for r in reads if "error" in r]
    assert errors == [] and len(reads) > 10
    for r in reads:
        # Every result is exactly what one complete run published.
        assert r["pid"] in expected, r["pid"]
        assert [list(x) for x in r["files"]] == expected[r["pid"]]["files"]
        assert r["readings"] == expected[r["pid"]]["readings"]
    assert len({r["pid"] for r in reads}) >= 2  # the reader saw the snapshots change


def test_shell_opens_the_snapshot_read_only(district):
    settings, _ = district
    exe = Path(sys.executable).with_name("zwy")
    res = subprocess.run(
        [str(exe), "shell", "--published", str(settings.published)],
        input="select count(*) as n from v_breaches;\ncreate table x (a int);\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    with snapshot(settings) as pub:
        n = pub.execute("select count(*) from v_breaches").fetchone()[0]
    assert f"│ {n:>5} │" in res.stdout or f"{n}" in res.stdout, res.stdout
    assert "read-only" in (res.stdout + res.stderr)


def test_dropped_snapshots_are_collected_and_a_crash_s_leftovers_by_a_full_scan(district):
    settings, _ = district
    files = settings.published / "files"

    def age_all() -> None:  # files younger than a minute may belong to a publish in flight
        old = time.time() - 3600
        for p in files.rglob("*.parquet"):
            os.utime(p, (old, old))

    def day_file() -> str:
        manifest = json.loads((settings.published / MANIFEST).read_text())
        return manifest["tables"]["mart_hourly_values"][DAY.isoformat()]

    with connect(settings.warehouse) as con:
        publish(con, settings.published, None)  # a full republish scans the whole folder
        stray = files / "mart_hourly_values" / "left_by_a_crashed_publish.parquet"
        stray.write_bytes(b"PAR1")
        listed = []
        for _ in range(4):
            age_all()
            publish(con, settings.published, {DAY}, keep=3)
            listed.append(day_file())
        # The fourth publish dropped the first of these from the kept window: only its
        # files are looked at, so the leftover no snapshot ever listed stays...
        assert not (files / listed[0]).exists()
        assert all((files / rel).is_file() for rel in listed[1:])
        assert stray.is_file()
        # ...until a publish finds the in-flight marker of one that crashed, and scans all.
        (settings.published / IN_FLIGHT).write_text("in flight\n")
        age_all()
        publish(con, settings.published, {DAY})
    assert not stray.exists()
    assert not (settings.published / IN_FLIGHT).exists()
    assert (files / day_file()).is_file()


def _daily_rows(con: duckdb.DuckDBPyConnection, days: list[date], mn: str = "M1") -> None:
    for d in days:
        con.execute(
            "insert into mart_daily_values (local_day, mn, pollutant, value, valid) "
            "values (?, ?, 'w01018', 1.5, true)",
            [d, mn],
        )


def test_closed_months_are_published_as_one_file_and_a_late_change_rewrites_it(tmp_path):
    jan = [date(2024, 1, d) for d in (3, 15, 31)]
    feb = [date(2024, 2, d) for d in (1, 6, 7)]
    folder = tmp_path / "published"

    def manifest() -> dict[str, str]:
        return json.loads((folder / MANIFEST).read_text())["tables"]["mart_daily_values"]

    def published_rows() -> list[tuple]:
        with duckdb.connect(str(folder / "zwy.duckdb"), read_only=True) as cat:
            return cat.execute(
                "select local_day, mn from mart_daily_values order by all"
            ).fetchall()

    with connect(tmp_path / "w.duckdb") as con:
        migrate(con)
        _daily_rows(con, jan + feb[:2])
        publish(con, folder, None)
        # 6 February is 6 days after January's end: January is still day by day.
        assert len(set(manifest().values())) == 5
        _daily_rows(con, feb[2:])
        res = publish(con, folder, {feb[2]})
        # 7 February closes January: its three days are one file now.
        files = manifest()
        jan_files = {files[d.isoformat()] for d in jan}
        assert len(jan_files) == 1
        (jan_file,) = jan_files
        assert "local_day_month=2024-01/" in jan_file
        assert res.exported["mart_daily_values"] == 2  # 7 Feb, then January
        assert published_rows() == [(d, "M1") for d in jan + feb]
        # Another February night leaves January's file as it is.
        publish(con, folder, {feb[2]})
        assert manifest()[jan[0].isoformat()] == jan_file
        # A late change to 15 January (a new device's row) rewrites the month, once,
        # with no duplicate rows.
        _daily_rows(con, [jan[1]], mn="M2")
        publish(con, folder, {jan[1]})
        again = manifest()
        assert {again[d.isoformat()] for d in jan} != {jan_file}
        assert len({again[d.isoformat()] for d in jan}) == 1
        assert published_rows() == sorted([(d, "M1") for d in jan + feb] + [(jan[1], "M2")])
        # Deleting all of January's rows removes it from the snapshot.
        con.execute("delete from mart_daily_values where local_day < '2024-02-01'")
        publish(con, folder, {jan[0]})
        assert not any(k.startswith("2024-01") for k in manifest())
        assert published_rows() == [(d, "M1") for d in feb]


def test_publishes_in_quick_succession_leave_no_superseded_files(tmp_path):
    # A backfill publishes night after night within seconds: the files of the snapshots
    # that leave the kept window go, however young.
    day = date(2024, 3, 5)
    folder = tmp_path / "published"
    with connect(tmp_path / "w.duckdb") as con:
        migrate(con)
        listed = []
        for i in range(5):
            _daily_rows(con, [day], mn=f"M{i}")
            publish(con, folder, {day}, keep=3)
            manifest = json.loads((folder / MANIFEST).read_text())
            listed.append(manifest["tables"]["mart_daily_values"][day.isoformat()])
    files = folder / "files"
    on_disk = {p.relative_to(files).as_posix() for p in files.rglob("*.parquet")}
    kept = {
        rel
        for snap in manifest["history"]
        for parts in snap["tables"].values()
        for rel in parts.values()
    }
    assert len(manifest["history"]) == 3
    assert on_disk == kept
    assert listed[0] not in on_disk and listed[1] not in on_disk
    assert set(listed[2:]) <= on_disk


def test_a_full_scan_removes_the_day_files_of_compacted_months_and_their_folders(tmp_path):
    jan = [date(2024, 1, d) for d in (3, 15, 31)]
    folder = tmp_path / "published"
    files = folder / "files" / "mart_daily_values"
    with connect(tmp_path / "w.duckdb") as con:
        migrate(con)
        _daily_rows(con, jan)
        publish(con, folder, None)
        _daily_rows(con, [date(2024, 2, 10)])
        publish(con, folder, {date(2024, 2, 10)})  # compacts January
        assert len(list(files.glob("local_day=2024-01-*"))) == 3  # the last snapshots' files
        # A crashed publish's marker makes the next one scan the whole folder.
        (folder / IN_FLIGHT).write_text("in flight\n")
        old = time.time() - 3600
        for p in folder.rglob("*.parquet"):
            os.utime(p, (old, old))
        publish(con, folder, {date(2024, 2, 10)}, keep=1)
    assert list(files.glob("local_day=2024-01-*")) == []
    assert [p.name for p in files.iterdir()] and all(any(p.iterdir()) for p in files.iterdir())


def test_a_month_too_big_for_one_file_stays_day_by_day(tmp_path, monkeypatch):
    import warehouse.publish as publish_module

    monkeypatch.setattr(publish_module, "COMPACT_MAX_ROWS", 2)
    jan = [date(2024, 1, d) for d in (3, 15, 31)]
    folder = tmp_path / "published"

    def state() -> dict:
        return json.loads((folder / MANIFEST).read_text())

    with connect(tmp_path / "w.duckdb") as con:
        migrate(con)
        _daily_rows(con, [*jan, date(2024, 2, 10)])
        publish(con, folder, None)
        # January closed with three rows, over the (patched) limit of two: its days stay.
        assert state()["month_layout"]["mart_daily_values"] == {"2024-01": "by_day"}
        files = state()["tables"]["mart_daily_values"]
        assert len({files[d.isoformat()] for d in jan}) == 3
        # A late change re-exports that day alone, and the decision stands.
        before = files
        _daily_rows(con, [jan[1]], mn="M2")
        res = publish(con, folder, {jan[1]})
        after = state()["tables"]["mart_daily_values"]
        assert res.exported["mart_daily_values"] == 1
        assert after[jan[1].isoformat()] != before[jan[1].isoformat()]
        assert after[jan[0].isoformat()] == before[jan[0].isoformat()]
        assert state()["month_layout"]["mart_daily_values"] == {"2024-01": "by_day"}
    with duckdb.connect(str(folder / "zwy.duckdb"), read_only=True) as cat:
        assert cat.execute("select count(*) from mart_daily_values").fetchone()[0] == 5
