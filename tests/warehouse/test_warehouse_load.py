from datetime import date

import polars as pl
import pytest
from warehouse_builders import at, gas_packets, make_batch, snapshot

from warehouse.db import connect, migrate
from warehouse.load import load_batch
from zwy.errors import AccountingError, WarehouseError

D1 = date(2024, 5, 1)
D2 = date(2024, 5, 2)


@pytest.fixture
def con(tmp_path):
    with connect(tmp_path / "w.duckdb") as connection:
        migrate(connection)
        yield connection


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
    first = snapshot(con)
    load_batch(con, run_id="run-2", **batch.args())
    assert snapshot(con) == first
    assert con.execute("select distinct run_id from raw_ingest_files").fetchall() == [("run-2",)]


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
    with pytest.raises(AccountingError) as caught:
        load_batch(con, run_id="r2", **bad.args())
    message = str(caught.value)
    assert "d1/b.log: found=4 loaded=3 quarantined=0" in message
    assert "d1/gas.log" not in message
    assert snapshot(con) == before


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
