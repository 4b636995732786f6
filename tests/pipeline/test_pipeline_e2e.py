"""End to end over a generated district: accounting, planted faults, idempotency."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest

from expectations.reference import load_limits
from zwy.pipeline import run_day
from zwy.sample.generate import generate_district
from zwy.settings import Settings

DAYS = [date(2024, 5, 1), date(2024, 5, 2)]


@pytest.fixture(scope="module")
def district(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Settings, dict]:
    root = tmp_path_factory.mktemp("district")
    generate_district(root / "sample", DAYS, scale="test")
    settings = Settings.for_district(root / "data", root / "sample")
    for d in DAYS:
        run_day(d, settings)
    planted = json.loads((root / "sample" / "planted.json").read_text())
    return root, settings, planted


def q(settings: Settings, sql: str) -> pl.DataFrame:
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        return con.execute(sql).pl()


def test_every_file_recorded_with_hash_size_arrival(district):
    root, settings, planted = district
    files = q(settings, "SELECT * FROM raw_ingest_files")
    on_disk = {
        p.relative_to(settings.inbox).as_posix() for p in settings.inbox.rglob("*") if p.is_file()
    }
    assert set(files["path"]) == on_disk
    assert files["sha256"].str.len_chars().to_list() == [64] * files.height
    assert (files["bytes"] > 0).all()
    assert files["arrival_time"].null_count() == 0


def test_accounting_adds_up_per_file(district):
    _, settings, planted = district
    files = q(settings, "SELECT * FROM raw_ingest_files")
    assert (files["frames_found"] == files["frames_loaded"] + files["frames_quarantined"]).all()
    quarantine = q(settings, "SELECT source_file, count(*) AS n FROM raw_quarantine GROUP BY 1")
    per_file = files.join(quarantine, left_on="path", right_on="source_file", how="left")
    assert (per_file["frames_quarantined"] == per_file["n"].fill_null(0)).all()
    # The generator's own count of what it wrote agrees with what the pipeline found.
    for path, totals in planted["totals"].items():
        row = files.filter(pl.col("path") == path).row(0, named=True)
        assert row["frames_found"] == totals["frames"], path
        assert row["frames_quarantined"] == totals["quarantined"], path
        assert row["noise_lines"] == totals["noise_lines"], path
        assert row["lines_total"] == totals["lines"], path
    # Solid waste: ledger and manifest records found = loaded + quarantined, as planted.
    for path, totals in planted["solid_waste"]["totals"].items():
        row = files.filter(pl.col("path") == path).row(0, named=True)
        assert row["parser"] == "waste", path
        assert row["frames_found"] == totals["records"], path
        assert row["frames_quarantined"] == totals["quarantined"], path
    loaded = q(
        settings,
        "SELECT source_file, count(*) AS n FROM (SELECT source_file FROM stg_waste_ledger "
        "UNION ALL SELECT source_file FROM stg_waste_manifests) GROUP BY 1",
    )
    waste = files.filter(pl.col("parser") == "waste").join(
        loaded, left_on="path", right_on="source_file", how="left"
    )
    assert (waste["frames_loaded"] == waste["n"].fill_null(0)).all()


def test_quarantine_holds_exactly_the_planted_bad_input(district):
    _, settings, planted = district
    got = q(settings, "SELECT source_file, line, rule, reason, sheet FROM raw_quarantine")
    waste = planted["solid_waste"]["quarantine"]
    assert set(got.select("source_file", "line", "rule").iter_rows()) == {
        (item["file"], item["line"], item["rule"]) for item in planted["quarantine"]
    } | {(item["file"], item.get("row", item.get("line")), item["rule"]) for item in waste}
    # Workbook rows name their sheet, in the column and in the reason.
    for item in waste:
        if item.get("sheet"):
            row = got.filter(pl.col("source_file") == item["file"]).row(0, named=True)
            assert item["sheet"] in row["sheet"] and item["sheet"] in row["reason"]
    assert got["reason"].null_count() == 0
    assert (got["reason"].str.len_chars() > 10).all()


def test_split_late_and_unknown_devices_land_where_expected(district):
    _, settings, planted = district
    split = planted["split_frames"][0]
    packets = q(
        settings,
        f"SELECT line, pnum, pno FROM stg_packets WHERE source_file = '{split['file']}' "
        f"AND line IN ({', '.join(map(str, split['lines']))}) ORDER BY line",
    )
    assert packets.rows() == [(split["lines"][0], 2, 1), (split["lines"][1], 2, 2)]

    for late in planted["late_packets"]:
        day = datetime.fromisoformat(late["data_time"]).date()
        rows = q(
            settings,
            f"SELECT DISTINCT local_day, batch_day FROM stg_readings "
            f"WHERE source_file = '{late['file']}' AND line = {late['line']}",
        )
        assert rows["local_day"].to_list() == [day]
        assert rows["batch_day"].to_list() == [day + timedelta(days=1)]

    for unknown in planted["unknown_mn"]:
        rows = q(
            settings,
            f"SELECT count(*) AS n, count(facility_id) AS f FROM stg_readings "
            f"WHERE mn = '{unknown['mn']}'",
        )
        assert rows["n"][0] > 0 and rows["f"][0] == 0

    for vendor in planted["vendor_codes"]:
        rows = q(
            settings,
            f"SELECT DISTINCT code_status FROM stg_readings WHERE mn = '{vendor['mn']}' "
            f"AND pollutant = '{vendor['code']}'",
        )
        assert rows["code_status"].to_list() == ["vendor"]


def _exceedances_in_marts(settings: Settings) -> set[tuple[str, str, str, str]]:
    """Every valid mart value above an applicable limit, as (mn, pollutant, period, start)."""
    limits = load_limits().filter(pl.col("season").fill_null("") == "")
    outlets = q(
        settings,
        "SELECT outlet_id, outlet_type, standard, table_class, applies_to FROM ref_outlets",
    )
    daily = q(settings, "SELECT * FROM mart_daily_values WHERE valid").join(outlets, on="outlet_id")
    hourly = q(settings, "SELECT * FROM mart_hourly_values WHERE valid").join(
        outlets, on="outlet_id"
    )
    found: set[tuple[str, str, str, str]] = set()
    day_limits = limits.filter(pl.col("averaging_period") == "day")
    d = daily.join(
        day_limits,
        left_on=["standard", "table_class", "pollutant", "outlet_type"],
        right_on=["standard", "table_class", "pollutant", "outlet_type"],
    ).filter(
        (pl.col("local_day") >= pl.col("valid_from"))
        & ((pl.col("value") > pl.col("limit_high")) | (pl.col("value") < pl.col("limit_low")))
    )
    for r in d.iter_rows(named=True):
        found.add((r["mn"], r["pollutant"], "day", f"{r['local_day']}T00:00:00"))
    hour_limits = limits.filter(pl.col("averaging_period") == "hour")
    h = (
        hourly.join(
            hour_limits,
            left_on=["standard", "applies_to", "pollutant"],
            right_on=["standard", "applies_to", "pollutant"],
        )
        .with_columns(
            pl.col("hour_start_utc").dt.convert_time_zone("Asia/Shanghai").alias("start"),
            pl.coalesce("value_zs", "value").alias("checked"),
        )
        .filter(
            (pl.col("start").dt.date() >= pl.col("valid_from"))
            & (pl.col("valid_to").is_null() | (pl.col("start").dt.date() <= pl.col("valid_to")))
            & (pl.col("checked") > pl.col("limit_high"))
        )
    )
    for r in h.iter_rows(named=True):
        found.add((r["mn"], r["pollutant"], "hour", r["start"].strftime("%Y-%m-%dT%H:%M:%S")))
    return found


def test_planted_exceedances_and_nothing_else_exceed(district):
    _, settings, planted = district
    expected: set[tuple[str, str, str, str]] = set()
    for e in planted["exceedances"]:
        start = datetime.fromisoformat(e["start_local"])
        step = timedelta(hours=1) if e["period"] == "hour" else timedelta(days=1)
        for i in range(e["n_periods"]):
            expected.add((e["mn"], e["pollutant"], e["period"], (start + i * step).isoformat()))
    assert expected, "the generator planted no exceedance"
    assert _exceedances_in_marts(settings) == expected


def _snapshot(settings: Settings) -> dict[str, pl.DataFrame]:
    tables = [
        "raw_ingest_files",
        "raw_quarantine",
        "stg_packets",
        "stg_readings",
        "mart_hourly_values",
        "mart_daily_values",
        "ref_facilities",
        "ref_outlets",
        "ref_monitoring_points",
        "breaches",
        "dq_issues",
    ]
    out = {}
    for t in tables:
        df = q(settings, f"SELECT * FROM {t}")
        df = df.drop([c for c in ("run_id", "loaded_at", "validated_at") if c in df.columns])
        out[t] = df.sort(df.columns, nulls_last=True)
    return out


def test_late_packets_of_a_day_have_it_judged_again(district):
    """Day 2's batch holds late packets of day 1: day 2's run judges day 1 again.

    Without it, day 1's findings kept the evidence of before the late packets, and a rerun
    of day 1 changed them (caught by the Airflow backfill test, whose runs load in any order).
    """
    _, settings, _ = district
    late = q(
        settings,
        f"SELECT DISTINCT source_file FROM stg_readings "
        f"WHERE batch_day = DATE '{DAYS[1]}' AND local_day = DATE '{DAYS[0]}'",
    )["source_file"].to_list()
    assert late, "the sample plants late packets of day 1 in day 2's logs"
    first_run_of_day_2 = q(
        settings,
        f"SELECT unnest(stages, recursive := true) FROM ops_runs WHERE day = DATE '{DAYS[1]}' "
        "ORDER BY started_at LIMIT 100",
    ).filter(pl.col("name") == "validate_day")
    assert first_run_of_day_2["counts"][0]["rejudged_days"] == 1
    evidence = q(
        settings,
        f"SELECT evidence FROM dq_issues WHERE local_day = DATE '{DAYS[0]}' "
        f"UNION ALL SELECT evidence FROM breaches WHERE local_day = DATE '{DAYS[0]}'",
    )["evidence"].to_list()
    # Some finding of day 1 cites a line of day 2's logs: judged with the late packets in.
    assert any(any(f in e for f in late) for e in evidence)


def test_rerunning_a_day_changes_nothing(district):
    _, settings, _ = district
    before = _snapshot(settings)
    summary = run_day(DAYS[0], settings)
    assert summary.status == "success"
    after = _snapshot(settings)
    for table, df in before.items():
        assert df.equals(after[table]), table
    runs = q(settings, "SELECT day, status FROM ops_runs ORDER BY started_at")
    assert runs.height == len(DAYS) + 1
    assert set(runs["status"]) == {"success"}


def test_a_stream_with_no_input_is_nothing_arrived_not_success(district, tmp_path):
    root, settings, _ = district
    empty_day = date(2024, 5, 9)
    summary = run_day(empty_day, settings)
    assert summary.status == "nothing_arrived"
    assert {s["status"] for s in summary.stages if s["name"] == "parse_stream"} == {
        "nothing_arrived"
    }
    runs = q(settings, f"SELECT status FROM ops_runs WHERE day = DATE '{empty_day}'")
    assert runs["status"].to_list() == ["nothing_arrived"]


def test_unreadable_file_is_recorded_and_the_run_goes_on(tmp_path):
    generate_district(tmp_path / "s", [DAYS[0]], scale="test")
    folder = tmp_path / "s" / "inbox" / DAYS[0].isoformat() / "wastewater"
    (folder / "empty.log").write_bytes(b"")
    (folder / "binary.log").write_bytes(b"\x00\x01\x02##0101garbage\x00")
    (folder / "latin1.log").write_bytes("##0010caf\xe9\r\n".encode("latin-1"))
    settings = Settings.for_district(tmp_path / "data", tmp_path / "s")
    run_day(DAYS[0], settings)
    files = q(
        settings,
        "SELECT path, status, error FROM raw_ingest_files WHERE status = 'unreadable' ORDER BY path",
    )
    assert files["path"].to_list() == [
        f"{DAYS[0]}/wastewater/binary.log",
        f"{DAYS[0]}/wastewater/empty.log",
        f"{DAYS[0]}/wastewater/latin1.log",
    ]
    assert all(e for e in files["error"].to_list())
    loaded = q(settings, "SELECT count(*) AS n FROM stg_readings")
    assert loaded["n"][0] > 0


def test_parsing_in_small_groups_gives_the_same_counts(district, tmp_path):
    from zwy.pipeline import parse_stream

    _, settings, _ = district
    small = settings.model_copy(update={"data_dir": tmp_path / "small", "parse_chunk_mb": 0})
    for stream in ("wastewater", "exhaust_gas"):
        whole = parse_stream(
            DAYS[0], stream, settings.model_copy(update={"data_dir": tmp_path / "whole"})
        )
        grouped = parse_stream(DAYS[0], stream, small)
        for key in ("files", "frames_found", "frames_loaded", "frames_quarantined", "values"):
            assert whole[key] == grouped[key], (stream, key)


def test_staged_files_are_copied_into_the_warehouse_one_per_stream(district):
    """Every telemetry stream's staged readings and packets come out in partition order
    (the wastewater platform export's devices merged in among the logs'), so the loader
    copies each file in as it is instead of writing its rows again."""
    import hashlib

    from warehouse.partitions import in_key_order
    from zwy.pipeline import stage_dir

    _, settings, _ = district
    day = DAYS[-1]
    exports = list((settings.inbox / day.isoformat() / "wastewater").glob("*.csv"))
    assert exports, "the sample's wastewater stream has a platform export"
    listed = q(
        settings,
        f"select table_name, sha256 from meta_partitions where batch_day = DATE '{day}'",
    )
    for table in ("readings", "packets"):
        shas = set(listed.filter(pl.col("table_name") == f"stg_{table}")["sha256"])
        for stream in ("wastewater", "exhaust_gas", "dust"):
            staged = stage_dir(settings, day, stream) / f"{table}.parquet"
            assert in_key_order(pl.read_parquet(staged), ("mn", "data_time_utc")), staged
            assert hashlib.sha256(staged.read_bytes()).hexdigest() in shas, staged
        assert len(shas) == 3, table


def test_each_loaded_day_is_marked_in_its_staging_and_kept_within_the_window(district):
    _, settings, _ = district
    for d in DAYS:
        marker = settings.staging / d.isoformat() / "_loaded.json"
        assert json.loads(marker.read_text())["day"] == d.isoformat()
        # within staging_keep_days of the last day loaded: still there
        assert (settings.staging / d.isoformat() / "wastewater" / "readings.parquet").exists()
