"""The district history benchmark's synthetic year: copied days look like loaded nights.

``benchmarks.history_district`` builds a long history by copying one loaded night back in
time (:func:`extend_history`) and clones warehouses with hard-linked Parquet
(:func:`clone_tree`). Here, on a one-night test district: the copies land on the right
days with unique keys, every copied staging file is a link the views and the snapshot
list, a clone leaves its base untouched, and the next night loads on top as usual. Not
timed.
"""

from __future__ import annotations

import os
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from benchmarks.history_district import DAY_TABLES, clone_tree, extend_history
from zwy.pipeline import run_day
from zwy.sample.generate import generate_district
from zwy.settings import Settings

SOURCE = date(2024, 4, 30)
NIGHT = SOURCE + timedelta(days=1)
BACK = 3


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("history-district")
    sample = root / "sample"
    generate_district(sample, [SOURCE, NIGHT], scale="test")
    data = root / "one"
    run_day(SOURCE, Settings.for_district(data, sample))
    return sample, data


def _per_day(con: duckdb.DuckDBPyConnection, table: str, column: str) -> dict[date, int]:
    rows = con.execute(f"select {column}, count(*) from {table} group by 1").fetchall()
    return {d: n for d, n in rows}


def test_extended_history_copies_the_night_to_earlier_days(
    base: tuple[Path, Path], tmp_path: Path
) -> None:
    sample, one = base
    data = tmp_path / "year"
    clone_tree(one, data)
    warehouse = data / "warehouse" / "zwy.duckdb"
    with duckdb.connect(str(warehouse), read_only=True) as con:
        before = {t: _per_day(con, t, c) for t, c in DAY_TABLES.items()}
        files = con.execute(
            "select file from meta_partitions where batch_day = ?", [SOURCE]
        ).fetchall()
        staged = con.execute("select count(*) from stg_readings").fetchone()[0]  # type: ignore[index]
    assert files and staged
    added = extend_history(warehouse, SOURCE, BACK)
    earlier = [SOURCE - timedelta(days=k) for k in range(1, BACK + 1)]
    with duckdb.connect(str(warehouse), read_only=True) as con:
        copied = 0
        for table, column in DAY_TABLES.items():
            after = _per_day(con, table, column)
            n = before[table].get(SOURCE, 0)
            # (a day before the night may hold some of the night's rows already: marts of
            # the local day its first hours fall in)
            grown = {d: after.get(d, 0) - before[table].get(d, 0) for d in earlier}
            assert grown == dict.fromkeys(earlier, n), table
            assert after.get(SOURCE, 0) == n, table
            copied += n * BACK
        assert sum(v for k, v in added.items() if k in DAY_TABLES) == copied
        # A copied row keeps no key of its source: the primary keys held on insert, and
        # the breach and run ids (text keys) are made unique.
        ids = con.execute("select run_id from ops_runs").fetchall()
        assert len(ids) == len(set(ids)) == sum(before["ops_runs"].values()) + BACK
        # Staging: every day's files are links of the night's, listed by the views.
        rows = con.execute(
            "select batch_day, file, local_days from meta_partitions order by all"
        ).fetchall()
        by_day: dict[date, list[str]] = {}
        for day, file, _ in rows:
            by_day.setdefault(day, []).append(file)
        assert {d: len(by_day[d]) for d in earlier} == dict.fromkeys(earlier, len(files))
        folder = warehouse.parent / "zwy_parquet"
        for day in earlier:
            for file in by_day[day]:
                assert day.isoformat() in file and SOURCE.isoformat() not in file
                src = folder / file.replace(day.isoformat(), SOURCE.isoformat())
                assert os.path.samefile(folder / file, src)
        assert all(local is None or max(local) <= SOURCE for day, _, local in rows if day != SOURCE)
        total = con.execute("select count(*) from stg_readings").fetchone()[0]  # type: ignore[index]
        assert total == staged * (BACK + 1)
    # The snapshot was republished whole: it lists the copied days' files too.
    with duckdb.connect(str(data / "warehouse" / "published" / "zwy.duckdb"), read_only=True) as c:
        days = c.execute("select count(distinct batch_day) from stg_readings").fetchone()[0]  # type: ignore[index]
        assert days == BACK + 1
    # The next night loads on top of the copied year as on a loaded one.
    summary = run_day(NIGHT, Settings.for_district(data, sample))
    assert summary.status == "success"
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert _per_day(con, "ops_runs", "day")[NIGHT] == 1
        assert (
            con.execute("select count(distinct batch_day) from meta_partitions").fetchone()[0]
            == BACK + 2
        )  # type: ignore[index]


def test_clone_links_parquet_and_copies_the_rest(base: tuple[Path, Path], tmp_path: Path) -> None:
    _, one = base
    clone = tmp_path / "clone"
    clone_tree(one, clone)
    linked = copied = 0
    for path in one.rglob("*"):
        if not path.is_file():
            continue
        twin = clone / path.relative_to(one)
        same = os.path.samefile(path, twin)
        if path.suffix in (".parquet", ".eml"):
            assert same, path
            linked += 1
        else:
            assert not same and twin.read_bytes() == path.read_bytes(), path
            copied += 1
    assert linked and copied
    # Writing into the clone's warehouse leaves the base's as it was.
    size = (one / "warehouse" / "zwy.duckdb").stat().st_size
    with duckdb.connect(str(clone / "warehouse" / "zwy.duckdb")) as con:
        con.execute("create table scratch as select range as i from range(100000)")
    assert (one / "warehouse" / "zwy.duckdb").stat().st_size == size


def test_main_measures_each_history_and_keeps_every_repeat(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One command builds the histories, runs the same night on each and writes every repeat."""
    import json

    from benchmarks.history_district import main

    main([str(tmp_path), "--histories", "1", "3", "--repeats", "1", "--scale", "test"])
    out = capsys.readouterr().out
    assert "| 1 | " in out and "| 3 | " in out and "paired ratio" in out
    res = json.loads((tmp_path / "results.json").read_text())
    assert set(res["repeats"]) == {"1", "3"} and res["machine"]["cores"] == os.cpu_count()
    for h in ("1", "3"):
        (night,) = res["repeats"][h]
        assert night["night"] > night["alerts_queued"] > 0
        assert night["load_day"] > 0 and night["publish"] > 0
    one, three = (res["repeats"][h][0]["night"] for h in ("1", "3"))
    assert res["medians"]["3"]["ratio"] == pytest.approx(three / one)
    assert res["medians"]["3"]["paired_ratio"] == pytest.approx(three / one)
    assert res["medians"]["1"]["ratio"] == 1.0
    # The bases stay for the next run; the night's work folder goes.
    assert (tmp_path / "history_3_test" / "warehouse" / "zwy.duckdb").is_file()
    assert not (tmp_path / "work").exists()
