import hashlib
import shutil
from datetime import date

import polars as pl
import pytest
from warehouse_builders import REBUILD, at, gas_packets, make_batch, parquet_files, snapshot

from warehouse.__main__ import main as warehouse_main
from warehouse.db import connect, migrate
from warehouse.load import load_batch, table_slots
from warehouse.partitions import (
    ROW_GROUP_ROWS,
    ChunkedFrame,
    current_partitions,
    in_key_order,
    parquet_dir_of,
    plan_mn_ranges,
    refresh_views,
    remove_orphan_files,
    stg_packets,
)
from zwy.contracts import READINGS
from zwy.errors import AccountingError, WarehouseError

D1 = date(2024, 5, 1)
D2 = date(2024, 5, 2)
D3 = date(2024, 5, 3)


@pytest.fixture
def con(tmp_path):
    with connect(tmp_path / "w.duckdb") as connection:
        migrate(connection)
        yield connection


def files_of(con):
    """{(table, batch_day): file} from meta_partitions."""
    return {(p.table_name, p.batch_day): p.file for p in current_partitions(con)}


def view_types(con):
    return {
        view: con.execute(f"describe {view}").fetchall() for view in ("stg_packets", "stg_readings")
    }


def hour_of(con, day, hour_local):
    return con.execute(
        "select n_values, value, valid from mart_hourly_values "
        "where mn = 'GAS' and pollutant = 'a21026' and local_day = ? "
        "and hour(hour_start_utc at time zone 'Asia/Shanghai') = ?",
        [day, hour_local],
    ).fetchone()


def test_load_batch_writes_every_layer(con):
    batch = make_batch(D1, gas_packets("d1/gas.log", at(D1, 10), 50), quarantined={"d1/gas.log": 2})
    result = load_batch(con, run_id="run-1", **batch.args())
    assert result.rows == {
        "ref_facilities": 1,
        "ref_outlets": 2,
        "ref_monitoring_points": 2,
        "raw_ingest_files": 1,
        "raw_quarantine": 2,
        "stg_packets": 50,
        "stg_readings": 50,
        "mart_hourly_values": 1,
        "mart_daily_values": 1,
    }
    assert result.affected_days == (D1,)
    assert hour_of(con, D1, 10) == (50, 10.0, True)
    stream, sha = con.execute("select distinct stream, sha256 from raw_quarantine").fetchone()
    assert (stream, sha) == ("exhaust_gas", "sha-d1/gas.log")
    run_ids = con.execute("select distinct run_id from raw_ingest_files").fetchall()
    assert run_ids == [("run-1",)]


def test_reloading_a_batch_leaves_identical_tables(con):
    batch = make_batch(
        D1, gas_packets("d1/gas.log", at(D1, 23, 30), 50), quarantined={"d1/gas.log": 1}
    )
    load_batch(con, run_id="run-1", **batch.args())
    first, first_files = snapshot(con), files_of(con)
    load_batch(con, run_id="run-2", **batch.args())
    assert snapshot(con) == first
    assert con.execute("select distinct run_id from raw_ingest_files").fetchall() == [("run-2",)]
    # Same contents, new files; the superseded ones are gone after the commit.
    again = files_of(con)
    assert again.keys() == first_files.keys() == {("stg_packets", D1), ("stg_readings", D1)}
    assert all(again[k] != first_files[k] and "run-2" in again[k] for k in again)
    folder = parquet_dir_of(con)
    assert parquet_files(folder) == sorted(folder / f for f in again.values())


def test_late_packet_updates_the_earlier_day_once(con):
    # Batch D1: minutes 10:00-10:39 of D1 (40 minutes, not a valid hour).
    load_batch(con, run_id="r1", **make_batch(D1, gas_packets("d1/gas.log", at(D1, 10), 40)).args())
    assert hour_of(con, D1, 10) == (40, 10.0, False)
    # Batch D2 brings D2 data plus the late minutes 10:40-10:49 of D1 and a re-send of 10:00.
    late = gas_packets("d2/late.log", at(D1, 10, 40), 10)
    resent = gas_packets("d2/resent.log", at(D1, 10), 1, value=99.0)
    today = gas_packets("d2/gas.log", at(D2, 8), 45)
    batch2 = make_batch(D2, late + resent + today)
    result = load_batch(con, run_id="r2", **batch2.args())
    assert result.affected_days == (D1, D2)
    assert hour_of(con, D1, 10) == (50, 10.0, True)
    assert hour_of(con, D2, 8) == (45, 10.0, True)
    before = snapshot(con)
    load_batch(con, run_id="r3", **batch2.args())
    assert snapshot(con) == before
    # Reloading D2 without the late file rebuilds D1 from what is left (old days count too).
    without_late = make_batch(D2, today)
    result = load_batch(con, run_id="r4", **without_late.args())
    assert result.affected_days == (D1, D2)
    assert hour_of(con, D1, 10) == (40, 10.0, False)


def test_readings_files_with_text_columns_mix_with_coded_ones(con, tmp_path):
    # Files written before the readings' text columns became dictionary codes hold String
    # columns; a late packet must rebuild its day from such a file and the new coded one.
    load_batch(con, run_id="r1", **make_batch(D1, gas_packets("d1/gas.log", at(D1, 10), 40)).args())
    (old,) = [p for p in parquet_files(tmp_path / "w_parquet") if "stg_readings" in str(p)]
    assert pl.read_parquet_schema(old)["mn"] == pl.Categorical()
    as_text = pl.read_parquet(old).with_columns(pl.col(pl.Categorical).cast(pl.String))
    as_text.write_parquet(old, compression="zstd")
    assert pl.read_parquet_schema(old)["mn"] == pl.String
    late = make_batch(D2, gas_packets("d2/late.log", at(D1, 10, 40), 5))
    assert load_batch(con, run_id="r2", **late.args()).affected_days == (D1,)
    assert hour_of(con, D1, 10) == (45, 10.0, True)
    # Day D1 is now in a text file and a coded one: a third batch reads both.
    later = make_batch(D3, gas_packets("d3/late.log", at(D1, 10, 45), 5))
    assert load_batch(con, run_id="r3", **later.args()).affected_days == (D1,)
    assert hour_of(con, D1, 10) == (50, 10.0, True)
    # Both kinds of file read as text through the view.
    assert con.execute("select count(*), count(distinct mn) from stg_readings").fetchone() == (
        50,
        1,
    )


def test_reloading_an_earlier_batch_after_a_later_one_changes_nothing(con):
    # Values with many significant bits, so a different summation order would show.
    d1 = gas_packets("d1/gas.log", at(D1, 10), 50)
    d1 = [row | {"value": (i * 7.3) / 3} for i, row in enumerate(d1)]
    late = gas_packets("d2/late.log", at(D1, 11), 20)
    late = [row | {"value": (i * 1.7) / 7} for i, row in enumerate(late)]
    batch1 = make_batch(D1, d1)
    load_batch(con, run_id="r1", **batch1.args())
    load_batch(
        con, run_id="r2", **make_batch(D2, late + gas_packets("d2/gas.log", at(D2, 9), 3)).args()
    )
    before = snapshot(con)
    load_batch(con, run_id="r3", **batch1.args())
    assert snapshot(con) == before


def test_accounting_violation_raises_and_rolls_back(con):
    load_batch(con, run_id="r1", **make_batch(D1, gas_packets("d1/gas.log", at(D1, 10), 5)).args())
    before = snapshot(con)
    bad = make_batch(
        D1, gas_packets("d1/gas.log", at(D1, 10), 6) + gas_packets("d1/b.log", at(D1, 11), 3)
    )
    bad.files = bad.files.with_columns(
        frames_found=pl.when(pl.col("path") == "d1/b.log").then(4).otherwise(pl.col("frames_found"))
    )
    files_before = parquet_files(parquet_dir_of(con))
    with pytest.raises(AccountingError) as caught:
        load_batch(con, run_id="r2", **bad.args())
    message = str(caught.value)
    assert "d1/b.log: found=4 loaded=3 quarantined=0" in message
    assert "d1/gas.log" not in message
    assert snapshot(con) == before
    # The previous files stay current, the view still reads them, no orphan is left.
    assert parquet_files(parquet_dir_of(con)) == files_before
    assert con.execute("select count(*) from stg_readings").fetchone() == (5,)


def test_accounting_violation_stops_the_background_readings_and_leaves_no_file(con):
    """The readings are written and rebuilt in the background, range by range, while the
    accounting is checked: when it fails, the background stops and nothing it wrote stays."""
    devices = [f"GAS{k}" for k in range(6)]
    good = [
        p for k, mn in enumerate(devices) for p in gas_packets(f"d1/{mn}.log", at(D1, k), 4, mn=mn)
    ]
    load_batch(con, run_id="r1", chunk_rows=4, **make_batch(D1, good).args())
    before = snapshot(con)
    files_before = parquet_files(parquet_dir_of(con))
    bad = make_batch(D1, [*good, *gas_packets("d1/b.log", at(D1, 20), 3, mn="GASB")])
    bad.files = bad.files.with_columns(
        frames_found=pl.when(pl.col("path") == "d1/b.log").then(4).otherwise(pl.col("frames_found"))
    )
    with pytest.raises(AccountingError, match="d1/b.log: found=4 loaded=3"):
        load_batch(con, run_id="r2", chunk_rows=4, **bad.args())
    assert snapshot(con) == before
    assert parquet_files(parquet_dir_of(con)) == files_before


def test_failing_rebuild_of_one_range_rolls_back(con):
    """A rebuild failing in one device range of several fails the load; nothing stays."""

    def fails_on_gas3(readings):
        if "GAS3" in readings["mn"].to_list():
            raise RuntimeError("boom in GAS3")
        return REBUILD(readings)

    devices = [f"GAS{k}" for k in range(6)]
    packets = [
        p for k, mn in enumerate(devices) for p in gas_packets(f"d1/{mn}.log", at(D1, k), 4, mn=mn)
    ]
    args = make_batch(D1, packets).args() | {"rebuild": fails_on_gas3}
    with pytest.raises(RuntimeError, match="boom in GAS3"):
        load_batch(con, run_id="r1", chunk_rows=4, **args)
    assert con.execute("select count(*) from raw_ingest_files").fetchone() == (0,)
    assert con.execute("select count(*) from mart_hourly_values").fetchone() == (0,)
    assert parquet_files(parquet_dir_of(con)) == []


def test_quarantine_rows_must_match_the_manifest(con):
    batch = make_batch(D1, gas_packets("d1/gas.log", at(D1, 10), 3), quarantined={"d1/gas.log": 2})
    batch.files = batch.files.with_columns(frames_found=pl.lit(4), frames_quarantined=pl.lit(1))
    with pytest.raises(
        AccountingError, match=r"d1/gas.log: found=4 loaded=3 quarantined=1 quarantine_rows=2"
    ):
        load_batch(con, run_id="r1", **batch.args())
    assert con.execute("select count(*) from stg_readings").fetchone() == (0,)


def test_packets_of_a_file_missing_from_the_manifest_fail(con):
    batch = make_batch(
        D1, gas_packets("d1/gas.log", at(D1, 10), 3) + gas_packets("d1/ghost.log", at(D1, 11), 1)
    )
    batch.files = batch.files.filter(pl.col("path") != "d1/ghost.log")
    with pytest.raises(AccountingError, match="d1/ghost.log.*not in raw_ingest_files"):
        load_batch(con, run_id="r1", **batch.args())


def test_rows_of_another_batch_day_are_refused(con):
    batch = make_batch(D1, gas_packets("d1/gas.log", at(D1, 10), 3))
    args = batch.args() | {"batch_day": D2}
    with pytest.raises(WarehouseError, match="rows carry batch_day"):
        load_batch(con, run_id="r1", **args)


def test_failing_rebuild_rolls_back(con):
    def broken(readings):
        raise RuntimeError("boom")

    args = make_batch(D1, gas_packets("d1/gas.log", at(D1, 10), 3)).args() | {"rebuild": broken}
    with pytest.raises(RuntimeError, match="boom"):
        load_batch(con, run_id="r1", **args)
    assert con.execute("select count(*) from raw_ingest_files").fetchone() == (0,)
    assert con.execute("select count(*) from stg_readings").fetchone() == (0,)
    assert parquet_files(parquet_dir_of(con)) == []


def test_duplicate_registry_key_is_a_warehouse_error(con):
    batch = make_batch(D1, gas_packets("d1/gas.log", at(D1, 10), 3))
    args = batch.args()
    registry = dict(args["registry"])
    registry["monitoring_points"] = pl.concat([registry["monitoring_points"]] * 2)
    with pytest.raises(WarehouseError, match=r"ref_monitoring_points: .*duplicate key \"GAS\""):
        load_batch(con, run_id="r1", **(args | {"registry": registry}))


def test_batch_without_readings_loads_files_and_skips_the_marts(con):
    from zwy.contracts import PACKETS, READINGS, empty

    batch = make_batch(D1, gas_packets("d1/gas.log", at(D1, 10), 2))
    batch.packets, batch.readings = empty(PACKETS), empty(READINGS)
    batch.files = batch.files.with_columns(
        frames_found=0, frames_loaded=0, parser=pl.lit("platform_export")
    )

    def never(readings):
        raise AssertionError("no day to rebuild")

    result = load_batch(con, run_id="r1", **(batch.args() | {"rebuild": never}))
    assert result.affected_days == ()
    assert result.rows["raw_ingest_files"] == 1
    assert (result.rows["mart_hourly_values"], result.rows["mart_daily_values"]) == (0, 0)


def test_views_exist_empty_and_typed_on_a_fresh_warehouse(con):
    fresh = view_types(con)
    assert con.execute("select count(*) from stg_readings").fetchone() == (0,)
    assert con.execute("select count(*) from stg_packets").fetchone() == (0,)
    assert [c[0] for c in fresh["stg_readings"]] == list(READINGS)
    types = {c[0]: c[1] for c in fresh["stg_readings"] + fresh["stg_packets"]}
    assert types["data_time_utc"] == "TIMESTAMP WITH TIME ZONE"
    assert types["data_time"] == "TIMESTAMP"
    assert types["batch_day"] == "DATE"
    load_batch(con, run_id="r1", **make_batch(D1, gas_packets("d1/gas.log", at(D1, 10), 3)).args())
    assert view_types(con) == fresh
    comments = dict(con.execute("select view_name, comment from duckdb_views()").fetchall())
    assert "Parquet" in comments["stg_readings"] and "Parquet" in comments["stg_packets"]


def test_partition_files_are_sorted_zstd_and_recorded(con):
    values = gas_packets("d1/w.log", at(D1, 10), 5, mn="WAT", pollutant="w01018") + gas_packets(
        "d1/gas.log", at(D1, 9), 5
    )
    load_batch(con, run_id="r1", **make_batch(D1, values[::-1]).args())
    parts = {p.table_name: p for p in current_partitions(con)}
    path = parquet_dir_of(con) / parts["stg_readings"].file
    assert path.parent.name == "batch_day=2024-05-01"
    frame = pl.read_parquet(path)
    assert frame.equals(frame.sort("mn", "data_time_utc"))
    assert parts["stg_readings"].rows == frame.height == 10
    assert parts["stg_readings"].local_days == (D1,)
    meta = con.execute(
        f"select compression from parquet_metadata('{path}') where path_in_schema = 'mn'"
    ).fetchall()
    assert {m[0] for m in meta} == {"ZSTD"}
    assert ROW_GROUP_ROWS["stg_readings"] >= 100_000


def test_chunked_load_equals_one_chunk_and_lazy_input(tmp_path):
    """Device ranges (small chunk_rows) and LazyFrame inputs give the same warehouse."""

    def batches():
        d1 = gas_packets("d1/gas.log", at(D1, 10), 50) + gas_packets(
            "d1/w.log", at(D1, 10), 70, mn="WAT", pollutant="w01018"
        )
        d1 = [row | {"value": (i * 7.3) / 3} for i, row in enumerate(d1)]
        late = gas_packets("d2/late.log", at(D1, 11), 20, mn="WAT", pollutant="w01018")
        d2 = late + gas_packets("d2/gas.log", at(D2, 9), 30)
        return make_batch(D1, d1), make_batch(D2, d2)

    results = []
    for name, chunk_rows, lazy in (("one", None, False), ("chunks", 7, False), ("lazy", 7, True)):
        with connect(tmp_path / name / "w.duckdb") as c:
            migrate(c)
            for batch in (*batches(), batches()[0]):
                args = batch.args()
                if lazy:
                    args |= {k: args[k].lazy() for k in ("packets", "readings")}
                load_batch(c, run_id="r", chunk_rows=chunk_rows, **args)
            results.append(snapshot(c))
    assert results[0]["mart_hourly_values"]
    assert results[1] == results[0]
    assert results[2] == results[0]


def test_plan_mn_ranges_cover_every_device_once():
    sample = pl.Series(["A", "A", "A", "B", "C", "C", "D", None])
    ranges = plan_mn_ranges(sample, 3)
    assert ranges[0][0] is None and ranges[-1][1] is None
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:], strict=False))
    assert plan_mn_ranges(sample, 1) == [(None, None)]
    assert plan_mn_ranges(pl.Series([], dtype=pl.String), 4) == [(None, None)]
    assert len(plan_mn_ranges(pl.Series(["A"] * 10), 5)) == 1  # a device is never split


def test_chunked_frame_eager_and_lazy_agree():
    frame = pl.DataFrame({"mn": ["C", None, "A", "B", "D", "A", None], "x": range(7)})
    ranges = [(None, "B"), ("B", "D"), ("D", None)]
    eager, lazy = ChunkedFrame(frame, ranges), ChunkedFrame(frame.lazy(), ranges)
    chunks = [eager.chunk(i) for i in range(len(eager))]
    assert [c["x"].to_list() for c in chunks] == [[1, 2, 5, 6], [0, 3], [4]]
    assert all(c.equals(lazy.chunk(i)) for i, c in enumerate(chunks))
    odd = pl.col("x") % 2 == 1
    assert eager.chunk(0, odd)["x"].to_list() == lazy.chunk(0, odd)["x"].to_list() == [1, 5]


def _staged(tmp_path, wat_in_order):
    """Staged readings and packets files of one batch, one of each per device (GAS in
    partition order, WAT in order or not), and the batch that reads them."""
    d1 = gas_packets("d1/gas.log", at(D1, 10), 50) + gas_packets(
        "d1/w.log", at(D1, 10), 70, mn="WAT", pollutant="w01018"
    )
    batch = make_batch(D1, [row | {"value": (i * 7.3) / 3} for i, row in enumerate(d1)])
    staged = tmp_path / ("sorted" if wat_in_order else "unsorted")
    staged.mkdir(parents=True)
    tables = {
        "readings": batch.readings.with_columns(batch_day=pl.lit(D1)),
        "packets": stg_packets(batch.packets.lazy(), D1, pl.lit("exhaust_gas")).collect(),
    }
    paths = {}
    for name, frame in tables.items():
        paths[name] = [staged / f"{name}-gas.parquet", staged / f"{name}-wat.parquet"]
        frame.filter(pl.col("mn") == "GAS").sort("data_time_utc").write_parquet(paths[name][0])
        wat = frame.filter(pl.col("mn") == "WAT")
        wat.sort("data_time_utc", descending=not wat_in_order).write_parquet(paths[name][1])
        setattr(batch, name, pl.concat([pl.scan_parquet(p) for p in paths[name]]).collect())
    return batch, paths


def test_staged_files_in_order_are_copied_in_as_they_are(tmp_path):
    """A staged file in partition order becomes a partition file byte for byte; a file out
    of order is written sorted; the warehouse holds the same either way, reloads included."""
    results, listed = {}, {}
    for name, in_order, adopt in (
        ("written", True, False),
        ("mixed", False, True),
        ("copied", True, True),
    ):
        batch, paths = _staged(tmp_path / name, in_order)
        given = {f"{t}_files": paths[t] if adopt else () for t in ("readings", "packets")}
        with connect(tmp_path / name / "w.duckdb") as c:
            migrate(c)
            for _ in range(2):  # the second load replaces the first's files
                load_batch(c, run_id="r", **given, **batch.args())
            results[name] = snapshot(c)
            folder = parquet_dir_of(c)
            for table in ("readings", "packets"):
                parts = current_partitions(c, table=f"stg_{table}")
                listed[name, table] = {(p.file.rsplit("/", 1)[0], p.rows) for p in parts}
                copied = {p.sha256 for p in parts} & {
                    hashlib.sha256(p.read_bytes()).hexdigest() for p in paths[table]
                }
                assert len(copied) == {"written": 0, "mixed": 1, "copied": 2}[name]
                on_disk = parquet_files(folder / f"stg_{table}")
                assert sorted(on_disk) == sorted(p.path(folder) for p in parts)
                for part in parts:
                    frame = pl.read_parquet(part.path(folder))
                    assert frame.equals(frame.sort("mn", "data_time_utc", maintain_order=True))
                    if table == "readings":
                        assert part.local_days == (D1,)
    assert results["mixed"] == results["written"] == results["copied"]
    assert results["copied"]["mart_hourly_values"]
    for table in ("readings", "packets"):
        folder = f"stg_{table}/batch_day=2024-05-01"
        assert listed["written", table] == {(folder, 120)}
        assert listed["copied", table] == {(folder, 50), (folder, 70)}
        assert listed["mixed", table] == listed["copied", table]


@pytest.mark.parametrize("table", ["readings", "packets"])
def test_staged_files_that_miss_rows_fail_and_leave_nothing(con, table):
    batch, paths = _staged(parquet_dir_of(con).parent, True)
    with pytest.raises(WarehouseError, match=f"staged {table} files hold 50 rows, the {table} 120"):
        load_batch(con, run_id="r", **{f"{table}_files": paths[table][:1]}, **batch.args())
    assert current_partitions(con) == []
    assert parquet_files(parquet_dir_of(con)) == []


def test_in_key_order_agrees_with_the_stable_sort():
    """The writer skips the sort exactly when the stable sort would keep every row in place."""
    import random

    rng = random.Random(7)
    checked = {True: 0, False: 0}
    for _ in range(400):
        n = rng.randint(0, 6)
        frame = pl.DataFrame(
            {
                "mn": [rng.choice(["A", "B", None]) for _ in range(n)],
                "t": [rng.choice([1, 2, None]) for _ in range(n)],
                "row": list(range(n)),
            },
            schema={"mn": pl.String, "t": pl.Int64, "row": pl.Int64},
        )
        stays = frame.sort("mn", "t", nulls_last=False, maintain_order=True).equals(frame)
        assert in_key_order(frame, ("mn", "t")) == stays, frame
        checked[stays] += 1
        stays_last = frame.sort("mn", "t", nulls_last=True, maintain_order=True).equals(frame)
        assert in_key_order(frame, ("mn", "t"), nulls_last=True) == stays_last, frame
        checked[stays_last] += 1
    assert min(checked.values()) > 100  # both verdicts were exercised, both null orders


def test_orphan_files_of_a_crashed_load_are_removed(con):
    load_batch(con, run_id="r1", **make_batch(D1, gas_packets("d1/gas.log", at(D1, 10), 3)).args())
    folder = parquet_dir_of(con)
    current = parquet_files(folder)
    orphan = folder / "stg_readings" / "batch_day=2024-05-01" / "crashed-run.parquet"
    orphan.write_bytes(b"half a file")
    other_day = folder / "stg_readings" / "batch_day=2024-05-09" / "crashed.parquet"
    other_day.parent.mkdir(parents=True)
    other_day.write_bytes(b"x")
    # The view lists only current files: the orphans are invisible.
    assert con.execute("select count(*) from stg_readings").fetchone() == (3,)
    load_batch(con, run_id="r2", **make_batch(D1, gas_packets("d1/gas.log", at(D1, 10), 3)).args())
    assert not orphan.exists() and other_day.exists()  # a load cleans its own batch only
    assert remove_orphan_files(con) == [other_day]
    assert not other_day.parent.exists()
    assert len(parquet_files(folder)) == len(current)


def test_refresh_views_after_moving_the_warehouse(tmp_path, capsys):
    old = tmp_path / "old"
    with connect(old / "w.duckdb") as c:
        migrate(c)
        load_batch(
            c, run_id="r1", **make_batch(D1, gas_packets("d1/gas.log", at(D1, 10), 4)).args()
        )
        load_batch(
            c, run_id="r2", **make_batch(D2, gas_packets("d2/gas.log", at(D2, 10), 3)).args()
        )
        before = snapshot(c)
    new = tmp_path / "new"
    shutil.move(old, new)
    with connect(new / "w.duckdb") as c:
        with pytest.raises(Exception, match="old"):  # the views still name the old folder
            c.execute("select count(*) from stg_readings").fetchall()
        assert refresh_views(c) == {"stg_packets": 2, "stg_readings": 2}
        assert snapshot(c) == before
        assert (
            "Parquet"
            in c.execute(
                "select comment from duckdb_views() where view_name = 'stg_readings'"
            ).fetchone()[0]
        )
        c.execute(
            "create or replace view stg_readings as select * from stg_packets"
        )  # clobbered: the command line rebuilds it
    assert warehouse_main(["refresh-views", str(new / "w.duckdb")]) == 0
    assert "stg_readings: 2 file(s)" in capsys.readouterr().out
    with connect(new / "w.duckdb") as c:
        assert snapshot(c) == before
        # A missing file is named and nothing changes.
        victim = new / "w_parquet" / files_of(c)[("stg_readings", D2)]
        victim.unlink()
        with pytest.raises(WarehouseError, match="missing"):
            refresh_views(c)
        assert c.execute("select count(*) from stg_packets").fetchone() == (7,)


def test_reloading_a_batch_drops_days_it_no_longer_has(con):
    load_batch(con, run_id="r1", **make_batch(D1, gas_packets("d1/gas.log", at(D1, 10), 50)).args())
    late = gas_packets("d2/late.log", at(D1, 11), 50)
    load_batch(con, run_id="r2", **make_batch(D2, late).args())
    assert files_of(con)[("stg_readings", D2)]
    assert hour_of(con, D1, 11) == (50, 10.0, True)
    # D2 again, now with data of D3 only: D1's hour 11 disappears, D3 appears.
    result = load_batch(
        con, run_id="r3", **make_batch(D2, gas_packets("d2/x.log", at(D3, 1), 50)).args()
    )
    assert result.affected_days == (D1, D3)
    assert hour_of(con, D1, 11) is None
    assert hour_of(con, D1, 10) == (50, 10.0, True)
    assert hour_of(con, D3, 1) == (50, 10.0, True)


def test_late_packet_rebuilds_only_its_device_day(con):
    d1 = gas_packets("d1/gas.log", at(D1, 10), 50) + gas_packets(
        "d1/w.log", at(D1, 10), 50, mn="WAT", pollutant="w01018"
    )
    load_batch(con, run_id="r1", **make_batch(D1, d1).args())
    before = con.execute(
        "select * from mart_hourly_values where mn = 'GAS' order by all"
    ).fetchall()
    seen = []

    def spy(readings):
        seen.extend(readings.select("mn", "local_day", "batch_day").unique().sort("mn").rows())
        return REBUILD(readings)

    late = gas_packets("d2/late.log", at(D1, 11), 5, mn="WAT", pollutant="w01018")
    batch2 = make_batch(D2, late + gas_packets("d2/gas.log", at(D2, 8), 45))
    result = load_batch(con, run_id="r2", **(batch2.args() | {"rebuild": spy}))
    assert result.affected_days == (D1, D2)
    # WAT's D1 is rebuilt from both batches; GAS's D1 is not touched.
    assert sorted(seen) == [("GAS", D2, D2), ("WAT", D1, D1), ("WAT", D1, D2)]
    after = con.execute(
        "select * from mart_hourly_values where mn = 'GAS' and local_day = ? order by all", [D1]
    ).fetchall()
    assert after == [r for r in before if r[0] == D1]
    assert con.execute(
        "select sum(n_values) from mart_hourly_values where mn = 'WAT' and local_day = ?", [D1]
    ).fetchone() == (55,)


def _slots(con, table):
    """Rows the table's storage holds, deleted ones included (DuckDB's storage info)."""
    return table_slots(con, table)[0]


def test_unchanged_reference_tables_are_not_rewritten_each_night(con):
    nights = [D1, D2, D3]
    for day in nights:
        load_batch(
            con,
            run_id=f"r-{day}",
            **make_batch(day, gas_packets(f"{day}/g.log", at(day, 9), 5)).args(),
        )
        con.execute("checkpoint")
    for table in ("ref_facilities", "ref_outlets", "ref_monitoring_points"):
        live = con.execute(f"select count(*) from {table}").fetchone()[0]
        # Rewritten every night, the deleted rows stayed in the row group: 3 nights, 3x.
        assert _slots(con, table) == live > 0, table


def test_a_changed_registry_replaces_the_reference_table(con):
    load_batch(con, run_id="r1", **make_batch(D1, gas_packets("d1/g.log", at(D1, 9), 5)).args())
    args = make_batch(D2, gas_packets("d2/g.log", at(D2, 9), 5)).args()
    registry = dict(args["registry"])
    facilities = registry["facilities"]
    renamed = facilities.with_columns(pl.lit("Renamed Co.").alias("name"))
    registry["facilities"] = renamed
    result = load_batch(con, run_id="r2", **(args | {"registry": registry}))
    assert result.rows["ref_facilities"] == facilities.height
    names = {r[0] for r in con.execute("select name from ref_facilities").fetchall()}
    assert names == {"Renamed Co."}
    # ...and back: a change in either direction is seen.
    load_batch(con, run_id="r3", **make_batch(D3, gas_packets("d3/g.log", at(D3, 9), 5)).args())
    names = {r[0] for r in con.execute("select name from ref_facilities").fetchall()}
    assert names == set(facilities["name"].to_list())


def test_a_warehouse_bloated_by_nightly_rewrites_is_compacted_by_the_next_load(con, monkeypatch):
    import warehouse.load as load_module

    load_batch(con, run_id="r1", **make_batch(D1, gas_packets("d1/g.log", at(D1, 9), 5)).args())
    # What loads before the fix did: the reference rows deleted and inserted again in one
    # transaction, night after night.
    for _ in range(6):
        con.execute("begin")
        con.execute("create or replace temp table keep as select * from ref_outlets")
        con.execute("delete from ref_outlets")
        con.execute("insert into ref_outlets select * from keep")
        con.execute("commit")
        con.execute("checkpoint")
    live = con.execute("select count(*) from ref_outlets").fetchone()[0]
    before = con.execute("select * from ref_outlets order by all").fetchall()
    assert _slots(con, "ref_outlets") == 7 * live
    monkeypatch.setattr(load_module, "RECLAIM_MIN_DEAD_SLOTS", 4)
    load_batch(con, run_id="r2", **make_batch(D2, gas_packets("d2/g.log", at(D2, 9), 5)).args())
    con.execute("checkpoint")
    assert _slots(con, "ref_outlets") == live
    assert con.execute("select * from ref_outlets order by all").fetchall() == before


def test_reference_tables_just_written_are_not_compacted(con, monkeypatch):
    import warehouse.load as load_module

    monkeypatch.setattr(load_module, "RECLAIM_MIN_DEAD_SLOTS", 4)
    # Before a checkpoint, 3,000 strings sit in more than one segment of the row group:
    # counted once, they are 3,000 slots for 3,000 rows.
    con.execute("create table ref_wide (code varchar)")
    con.execute("insert into ref_wide select 'code-' || i from range(3000) t(i)")
    assert load_module.reclaim_reference_slots(con, ["ref_wide"]) == []
    con.execute("checkpoint")
    assert load_module.reclaim_reference_slots(con, ["ref_wide"]) == []
    assert con.execute("select count(*) from ref_wide").fetchone()[0] == 3000
