"""The production configuration for real: PostgreSQL metadata, CeleryExecutor, Redis broker.

A fresh PostgreSQL database and an empty Redis database are created for the test; the API
server (execution API), dag-processor, scheduler and one Celery worker run as subprocesses;
one run of ``yizhuang_nightly`` is triggered for a generated day and must succeed and load
the warehouse. Everything the test started is stopped by pid and the databases are dropped.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import duckdb
import pytest
from airflow_env import (
    DAG_ID,
    PG_START,
    POOL,
    REDIS_START,
    AirflowStack,
    build_env,
    free_port,
    require_service,
)

from zwy.sample.generate import generate_district

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

DAY = date(2024, 5, 1)
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
REDIS = {"host": "127.0.0.1", "port": 6379}
OWNER_KEY = "zwy_airflow_test_owner"
WRITER_QUEUE = "duckdb_writer"  # the Celery queue of load_day in production (docs/deploy.md)


def _pg_admin():  # type: ignore[no-untyped-def]
    import psycopg2

    con = psycopg2.connect(dbname="postgres", connect_timeout=3, **PG)
    con.autocommit = True
    return con


def _redis(db: int = 0):  # type: ignore[no-untyped-def]
    import redis

    return redis.Redis(db=db, socket_connect_timeout=3, **REDIS)


@pytest.fixture(scope="module")
def postgres_db() -> Iterator[str]:
    """A new, empty PostgreSQL database for the Airflow metadata; dropped afterwards."""
    require_service("PostgreSQL on 127.0.0.1:5432", lambda: _pg_admin().close(), PG_START)
    name = f"zwy_airflow_test_{os.getpid()}_{secrets.token_hex(3)}"
    con = _pg_admin()
    with con.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with con.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        con.close()


@pytest.fixture(scope="module")
def redis_db() -> Iterator[int]:
    """An empty Redis database number, claimed with an owner key, flushed afterwards.

    Candidates are 15 down to 1 (0 is left to whoever else uses this Redis); a database is
    taken only if the owner key could be set (``NX``) and nothing else is in it, so parallel
    test sessions on one machine never share a broker.
    """
    require_service("Redis on 127.0.0.1:6379", lambda: _redis().ping(), REDIS_START)
    token = f"{os.getpid()}-{secrets.token_hex(4)}"
    for db in range(15, 0, -1):
        r = _redis(db)
        if r.set(OWNER_KEY, token, nx=True, ex=3600):
            if r.dbsize() == 1:
                break
            r.delete(OWNER_KEY)
    else:
        pytest.fail(
            "no empty Redis database among 1-15: flush a stale one (redis-cli -n N flushdb)"
        )
    try:
        yield db
    finally:
        r.flushdb()
        r.close()


@pytest.fixture(scope="module")
def production(
    tmp_path_factory: pytest.TempPathFactory, postgres_db: str, redis_db: int
) -> Iterator[AirflowStack]:
    """The production stack on PostgreSQL + Celery/Redis, running, over one generated day."""
    root = tmp_path_factory.mktemp("prod")
    generate_district(root / "sample", [DAY], scale="test")
    pg_url = f"postgresql+psycopg2://{PG['user']}@{PG['host']}:{PG['port']}/{postgres_db}"
    env = build_env(
        root / "airflow",
        sql_alchemy_conn=pg_url,
        executor="CeleryExecutor",
        api_port=free_port(),
        zwy={
            "ZWY_DATA_DIR": str(root / "data"),
            "ZWY_INBOX_DIR": str(root / "sample" / "inbox"),
            "ZWY_REGISTRY_DIR": str(root / "sample" / "registry"),
        },
        extra={
            "AIRFLOW__CELERY__BROKER_URL": f"redis://{REDIS['host']}:{REDIS['port']}/{redis_db}",
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{postgres_db}",
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
            "AIRFLOW__CELERY__SYNC_PARALLELISM": "1",
        },
    )
    stack = AirflowStack(env)
    t0 = time.perf_counter()
    try:
        stack.migrate()
        stack.start_core(
            # One worker serves both queues, as on the warehouse machine in production, where
            # it is the only worker that serves duckdb_writer (docs/deploy.md).
            (
                "celery-worker",
                "celery",
                "worker",
                "--concurrency",
                "2",
                "--queues",
                f"default,{WRITER_QUEUE}",
                "--celery-hostname",
                f"zwytest-{env['ZWYTEST_TAG']}@%h",
                "--without-gossip",
                "--without-mingle",
            )
        )
        stack.wait_dag_parsed()
        print(f"production stack up in {time.perf_counter() - t0:.1f} s")
        yield stack
    finally:
        left = stack.stop()
        print(f"production stack: {time.perf_counter() - t0:.1f} s in all; left over: {left}")
        assert left == [], f"processes left over after stopping the stack: {left}"


def test_pool_exists_with_one_slot(production: AirflowStack) -> None:
    rows = production.query("SELECT slots FROM slot_pool WHERE pool = :p", p=POOL)
    assert rows == [{"slots": 1}]


def test_triggered_run_succeeds_on_celery_and_loads_the_day(production: AirflowStack) -> None:
    stack = production
    run_id = f"zwy_prod_test_{DAY.isoformat()}"
    t0 = time.perf_counter()
    stack.cli("dags", "unpause", DAG_ID)
    stack.cli("dags", "trigger", DAG_ID, "-c", f'{{"day": "{DAY.isoformat()}"}}', "-r", run_id)
    states = stack.wait_runs_done(lambda: [run_id], expected=1, timeout=300)
    elapsed = time.perf_counter() - t0
    print(f"run {run_id}: {states[run_id]} in {elapsed:.1f} s (unpause + trigger + run)")
    assert states == {run_id: "success"}
    tasks = stack.task_states(run_id)
    assert set(tasks.values()) == {"success"}, tasks
    assert len(tasks) == 15, tasks

    # The tasks went through Celery (each has a Celery task id), on the default queue;
    # The tasks that open the DuckDB file (load, validate, report, alerts) alone took the
    # one-slot writer pool: a reader's lock blocks a writer as much as a writer's does.
    tis = stack.query(
        "SELECT task_id, queue, pool, external_executor_id FROM task_instance WHERE run_id = :r",
        r=run_id,
    )
    print("queues:", {t["task_id"]: t["queue"] for t in tis})
    assert all(t["external_executor_id"] for t in tis), tis
    writers = {"load_day", "validate_day", "build_report", "send_alerts", "publish"}
    assert {t["queue"] for t in tis if t["task_id"] not in writers} == {"default"}
    assert {t["queue"] for t in tis if t["task_id"] in writers} <= {"default", WRITER_QUEUE}
    assert sorted(t["task_id"] for t in tis if t["pool"] == POOL) == sorted(writers)

    env = stack.env
    warehouse = Path(env["ZWY_DATA_DIR"]) / "warehouse" / "zwy.duckdb"
    inbox = Path(env["ZWY_INBOX_DIR"])
    on_disk = {
        p.relative_to(inbox).as_posix() for p in (inbox / DAY.isoformat()).rglob("*") if p.is_file()
    }
    # Read the warehouse only after the run is done (a DuckDB writer locks the file).
    with duckdb.connect(str(warehouse), read_only=True) as con:
        files = {
            r[0]
            for r in con.execute(
                "SELECT path FROM raw_ingest_files WHERE batch_day = ?", [DAY]
            ).fetchall()
        }
        runs = con.execute("SELECT run_id, status FROM ops_runs").fetchall()
        marts = con.execute(
            "SELECT count(*) FROM mart_daily_values WHERE local_day = ?", [DAY]
        ).fetchone()
        unbalanced = con.execute(
            "SELECT count(*) FROM raw_ingest_files "
            "WHERE frames_found <> frames_loaded + frames_quarantined"
        ).fetchone()
    assert on_disk and files == on_disk
    assert runs == [(f"{DAY.isoformat()}_airflow_{run_id}", "success")]
    assert marts is not None and marts[0] > 0
    assert unbalanced == (0,)
