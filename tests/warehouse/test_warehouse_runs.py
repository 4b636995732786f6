from datetime import UTC, date, datetime

import pytest

from warehouse.db import connect, migrate
from warehouse.runs import StageResult, record_run
from zwy.errors import WarehouseError

DAY = date(2024, 5, 1)
START = datetime(2024, 5, 2, 1, 0, tzinfo=UTC)


@pytest.fixture
def con(tmp_path):
    with connect(tmp_path / "w.duckdb") as connection:
        migrate(connection)
        yield connection


def test_record_run_upserts_one_row_per_run(con):
    parse = StageResult("parse_hj212_log", "wastewater", "success", {"files": 2, "frames": 10}, 1.5)
    record_run(con, "run-1", DAY, "schedule", START, None, "running", [parse])
    dust = StageResult("parse_hj212_log", "exhaust_gas", "nothing_arrived", {}, 0.0, "no files")
    load = StageResult("load_warehouse", None, "failed", {"rows": 0}, 0.2, "locked")
    finished = datetime(2024, 5, 2, 1, 5, tzinfo=UTC)
    record_run(con, "run-1", DAY, "schedule", START, finished, "failed", [parse, dust, load])
    rows = con.execute("select run_id, status, finished_at, stages from ops_runs").fetchall()
    assert len(rows) == 1
    run_id, status, finished_at, stages = rows[0]
    assert (run_id, status, finished_at) == ("run-1", "failed", finished)
    assert [s["status"] for s in stages] == ["success", "nothing_arrived", "failed"]
    assert stages[0]["counts"] == {"files": 2, "frames": 10}
    assert stages[1]["stream"] == "exhaust_gas"
    assert stages[2]["message"] == "locked"
    stage_status = con.execute(
        "select s.status from ops_runs, unnest(stages) as t(s) where s.name = 'load_warehouse'"
    ).fetchall()
    assert stage_status == [("failed",)]


def test_unknown_stage_status_is_refused(con):
    bad = StageResult("parse_hj212_log", None, "done", {})  # type: ignore[arg-type]
    with pytest.raises(WarehouseError, match="status 'done'"):
        record_run(con, "run-1", DAY, "manual", START, None, "running", [bad])
    assert con.execute("select count(*) from ops_runs").fetchone() == (0,)


def test_naive_timestamps_are_refused(con):
    with pytest.raises(WarehouseError, match="timezone-aware"):
        record_run(con, "run-1", DAY, "manual", datetime(2024, 5, 2, 1, 0), None, "running", [])
