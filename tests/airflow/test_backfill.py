"""Scheduler-managed backfill of three days, then a reprocessed day changes nothing.

SQLite metadata and the LocalExecutor (the one-machine setup of docs/airflow-local.md), with a
real API server, dag-processor and scheduler as subprocesses. ``airflow backfill create``
only writes the runs into the metadata database; the running scheduler executes them.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import duckdb
import pytest
from airflow_env import DAG_ID, AirflowStack, build_env, free_port, wait_for, warehouse_snapshot

from zwy.sample.generate import generate_district

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

DAYS = [date(2024, 5, 1), date(2024, 5, 2), date(2024, 5, 3)]
REPROCESSED = DAYS[1]


def interval_start(day: date) -> str:
    """The logical date of the run that processes local ``day``: its data interval start.

    The DAG's data interval is ``[D 02:00, D+1 02:00)`` Asia/Shanghai and names day D; a
    backfill's ``--from-date``/``--to-date`` bound logical dates (= interval starts).
    Bare dates would be read as UTC midnight and select the wrong days.
    """
    return f"{day.isoformat()}T02:00:00+08:00"


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowStack]:
    root = tmp_path_factory.mktemp("backfill")
    generate_district(root / "sample", DAYS, scale="test")
    home = root / "airflow"
    env = build_env(
        home,
        sql_alchemy_conn=f"sqlite:///{home / 'airflow.db'}",
        executor="LocalExecutor",
        api_port=free_port(),
        zwy={
            "ZWY_DATA_DIR": str(root / "data"),
            "ZWY_INBOX_DIR": str(root / "sample" / "inbox"),
            "ZWY_REGISTRY_DIR": str(root / "sample" / "registry"),
        },
    )
    stack = AirflowStack(env)
    t0 = time.perf_counter()
    try:
        stack.migrate()
        stack.start_core()
        stack.wait_dag_parsed()
        print(f"local stack up in {time.perf_counter() - t0:.1f} s")
        yield stack
    finally:
        left = stack.stop()
        print(f"local stack: {time.perf_counter() - t0:.1f} s in all; left over: {left}")
        assert left == [], f"processes left over after stopping the stack: {left}"


def _backfill(stack: AirflowStack, first: date, last: date, *extra: str) -> int:
    """Create a backfill and return its id (the scheduler runs it).

    On SQLite a command whose transaction read before the scheduler committed gets "database
    is locked" at once (a stale snapshot cannot be upgraded; no busy timeout helps). Airflow
    then removes the partial backfill "so the user can retry": so does this, as the user of
    ``scripts/airflow_local.sh backfill`` does. When that clean-up met the lock as well, the
    failed backfill (without runs) is left until the scheduler marks it complete.
    """
    before = {r["id"] for r in stack.query("SELECT id FROM backfill")}
    args = ["backfill", "create", "--dag-id", DAG_ID]
    args += ["--from-date", interval_start(first), "--to-date", interval_start(last), *extra]
    for attempt in range(1, 5):
        res = stack.cli(*args, check=False)
        new = [r["id"] for r in stack.query("SELECT id FROM backfill") if r["id"] not in before]
        if res.returncode == 0:
            assert len(new) == 1, new
            return int(new[0])
        locked = "database is locked" in res.stderr
        if not locked or attempt == 4:
            pytest.fail(
                f"`airflow {' '.join(args)}` exited {res.returncode} (attempt {attempt}, "
                f"backfills left: {new})\n--- stderr\n{res.stderr[-4000:]}"
            )
        for orphan in new:
            # Airflow's own clean-up can meet the same lock: the failed backfill then stays,
            # without runs, and blocks a new one until the scheduler marks it complete. The
            # scheduler leaves a backfill without runs alone for 2 minutes (it may still be
            # being set up: _mark_backfills_complete's initializing cutoff) and looks every
            # 30 s, so up to 150 s: 90 s timed out once under a full test run.
            assert not _runs_of(stack, orphan), f"failed backfill {orphan} has runs"
            wait_for(
                lambda b=orphan: stack.query(
                    "SELECT completed_at FROM backfill WHERE id = :b", b=b
                )[0]["completed_at"],
                timeout=200,
                what=f"the failed backfill {orphan} to be marked complete",
                interval=2,
            )
            before.add(orphan)
        print(f"backfill create: database is locked (attempt {attempt}), retrying")
        time.sleep(5)
    raise AssertionError("unreachable")


def _runs_of(stack: AirflowStack, backfill_id: int) -> list[str]:
    rows = stack.query("SELECT run_id FROM dag_run WHERE backfill_id = :b", b=backfill_id)
    return [r["run_id"] for r in rows]


def _data_tables(warehouse: Path) -> list[str]:
    """Tables and views holding data: not ``ops_*`` (runs), ``meta_*`` (bookkeeping) nor
    ``alert_*`` (the outbox: delivery attempts of pending alerts change every run)."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
            "AND NOT starts_with(table_name, 'ops_') AND NOT starts_with(table_name, 'meta_') "
            "AND NOT starts_with(table_name, 'alert_') "
            "AND NOT starts_with(table_name, '_') ORDER BY 1"
        ).fetchall()
    return [r[0] for r in rows]


def _alert_ids(warehouse: Path) -> list[str]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return [
            r[0] for r in con.execute("SELECT alert_id FROM alert_outbox ORDER BY 1").fetchall()
        ]


_WAITER = """
import sys, time
import sqlalchemy as sa
from airflow import settings
if settings.engine is None:
    settings.configure_orm()
print("ready", flush=True)
sys.stdin.readline()
t0 = time.perf_counter()
with settings.engine.connect() as con:
    # A write (WAL lets readers past a writer): it needs the lock the test holds.
    pools = con.execute(sa.text("UPDATE slot_pool SET slots = slots")).rowcount
    con.rollback()
print(f"{time.perf_counter() - t0:.2f} {pools}", flush=True)
"""


def test_airflow_waits_for_the_sqlite_lock_longer_than_the_driver_default(
    local_stack: AirflowStack,
) -> None:
    """An Airflow process meeting a locked SQLite database waits instead of failing after 5 s.

    The lock is held 8 s, longer than Python's sqlite3 default of 5 s, so without
    ``sql_alchemy_connect_args`` (``zwy.airflow_local.SQLITE_CONNECT_ARGS``) the query fails
    with "database is locked": the race that made ``airflow backfill create`` fail while the
    scheduler wrote.
    """
    stack = local_stack
    db = stack.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].removeprefix("sqlite:///")
    child = subprocess.Popen(
        [sys.executable, "-c", _WAITER],
        env=stack.env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        assert child.stdout.readline().strip() == "ready"
        holder = sqlite3.connect(db, timeout=60, isolation_level=None)
        try:
            holder.execute("BEGIN EXCLUSIVE")
            child.stdin.write("go\n")
            child.stdin.flush()
            time.sleep(8)
            holder.execute("COMMIT")
        finally:
            holder.close()
        out, err = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 0, err[-3000:]
    waited, pools = out.split()
    assert float(waited) >= 7.0, f"the query did not wait for the lock ({waited} s)"
    assert int(pools) >= 1  # default_pool at least: it wrote once the lock was released


def test_backfill_three_days_then_reprocess_one_is_idempotent(local_stack: AirflowStack) -> None:
    stack = local_stack
    warehouse = Path(stack.env["ZWY_DATA_DIR"]) / "warehouse" / "zwy.duckdb"
    inbox = Path(stack.env["ZWY_INBOX_DIR"])

    t0 = time.perf_counter()
    # Backfill runs are scheduled only for unpaused DAGs.
    stack.cli("dags", "unpause", DAG_ID, idempotent=True)
    first = _backfill(stack, DAYS[0], DAYS[-1])
    states = stack.wait_runs_done(lambda: _runs_of(stack, first), expected=len(DAYS), timeout=480)
    t_backfill = time.perf_counter() - t0
    print(f"backfill of {len(DAYS)} days: {t_backfill:.1f} s")
    assert list(states.values()) == ["success"] * len(DAYS)
    runs = stack.query(
        "SELECT run_id, run_type, logical_date, start_date, end_date FROM dag_run "
        "WHERE backfill_id = :b ORDER BY logical_date",
        b=first,
    )
    assert {r["run_type"] for r in runs} == {"backfill"}
    # A backfill runs up to its own --max-active-runs (default 10) at once, whatever the DAG's
    # max_active_runs says: the one-slot pool alone keeps load_day a single DuckDB writer.
    loads = stack.query(
        "SELECT run_id, start_date, end_date FROM task_instance "
        "WHERE task_id = 'load_day' AND pool = 'zwy_duckdb_writer' ORDER BY start_date"
    )
    assert len(loads) == len(DAYS)
    for a, b in zip(loads, loads[1:], strict=False):
        assert a["end_date"] <= b["start_date"], ("load_day overlapped", a, b)

    with duckdb.connect(str(warehouse), read_only=True) as con:
        loaded = dict(
            con.execute("SELECT batch_day, count(*) FROM raw_ingest_files GROUP BY 1").fetchall()
        )
        marts = dict(
            con.execute("SELECT local_day, count(*) FROM mart_daily_values GROUP BY 1").fetchall()
        )
        ops = con.execute("SELECT day, status, run_id FROM ops_runs ORDER BY day").fetchall()
    for day in DAYS:
        files = sum(1 for p in (inbox / day.isoformat()).rglob("*") if p.is_file())
        assert files > 0 and loaded.get(day) == files, (day, loaded)
        assert marts.get(day, 0) > 0, (day, marts)
    assert [(d, s) for d, s, _ in ops] == [(d, "success") for d in DAYS]
    assert all("backfill" in run_id for _, _, run_id in ops), ops

    tables = _data_tables(warehouse)
    assert {"raw_ingest_files", "stg_readings", "mart_daily_values"} <= set(tables)
    print("compared:", ", ".join(tables))
    before = warehouse_snapshot(warehouse, tables)
    alerts_before = _alert_ids(warehouse)
    assert alerts_before, "the backfilled days have findings: alerts were queued"

    # One backfill per DAG at a time: the scheduler marks the first one complete (every 30 s).
    wait_for(
        lambda: stack.query("SELECT completed_at FROM backfill WHERE id = :b", b=first)[0][
            "completed_at"
        ],
        timeout=90,
        what="the first backfill to be marked complete",
        interval=2,
    )
    t1 = time.perf_counter()
    second = _backfill(stack, REPROCESSED, REPROCESSED, "--reprocess-behavior", "completed")
    again = stack.wait_runs_done(lambda: _runs_of(stack, second), expected=1, timeout=300)
    print(f"reprocessing {REPROCESSED}: {time.perf_counter() - t1:.1f} s")
    assert list(again.values()) == ["success"]
    rerun = stack.query("SELECT run_id, end_date FROM dag_run WHERE backfill_id = :b", b=second)[0]
    assert rerun["end_date"] > max(r["end_date"] for r in runs)  # it really ran again

    after = warehouse_snapshot(warehouse, tables)
    for table in tables:
        b, a = before[table], after[table]
        assert b.equals(a), (
            f"{table} changed when {REPROCESSED} was reprocessed; before only:\n"
            f"{b.join(a, on=b.columns, how='anti', nulls_equal=True)}\nafter only:\n"
            f"{a.join(b, on=a.columns, how='anti', nulls_equal=True)}"
        )
    # Reprocessing queues no alert twice (no SMTP here: they stay pending, retried).
    assert _alert_ids(warehouse) == alerts_before
    with duckdb.connect(str(warehouse), read_only=True) as con:
        ops_after = con.execute("SELECT day, status FROM ops_runs ORDER BY day").fetchall()
    # Reprocessing clears and reruns the same Airflow run: its ops_runs row is replaced.
    assert ops_after == [(d, "success") for d in DAYS]
