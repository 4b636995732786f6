"""Shared helpers for the Airflow subprocess tests (real scheduler, API server, workers).

* :func:`build_env` makes the environment of every Airflow process of one test: a temporary
  ``AIRFLOW_HOME``, the project's ``dags/``, the ``ZWY_*`` settings, low parallelism for a
  2-core machine, one JWT secret / Fernet key / API secret for all processes, and a unique
  tag (``ZWYTEST_TAG``) that every descendant process inherits.
* :class:`AirflowStack` runs ``airflow`` commands (``db migrate``, ``pools set``, ...), starts
  long-running components (``api-server``, ``scheduler``, ``dag-processor``,
  ``celery worker``) in their own sessions with their pids recorded, reads run and task
  states from the metadata database, prints diagnostics (task log tails, component log
  tails), and stops everything it started: SIGTERM to each process group, SIGKILL after a
  timeout, then a sweep for leftover processes that carry this test's tag (Airflow's task
  processes move to process groups of their own, so ``killpg`` alone does not reach them).
* :func:`require_service` skips a test when PostgreSQL/Redis are down, but fails it in CI.
"""

from __future__ import annotations

import base64
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import psutil
import pytest

from zwy.airflow_local import POOLS, SQLITE_CONNECT_ARGS, SQLITE_CONNECT_ARGS_PATH

REPO = Path(__file__).resolve().parents[2]
# ZWYTEST_DAGS_FOLDER: run these tests against a modified copy of dags/ (e.g. a proposed diff).
DAGS_FOLDER = Path(os.environ.get("ZWYTEST_DAGS_FOLDER") or REPO / "dags")
DAG_ID = "yizhuang_nightly"
POOL = "zwy_duckdb_writer"
TAG_VAR = "ZWYTEST_TAG"

PG_START = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
REDIS_START = (
    'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no '
    "--dir /var/lib/redis --logfile /var/log/redis/ci.log"
)


def airflow_exe() -> str:
    """Return the ``airflow`` script of the running interpreter's environment (no ``uv run``)."""
    exe = Path(sys.executable).with_name("airflow")
    if not exe.exists():  # pragma: no cover - only outside the project's venv
        pytest.fail(f"no airflow executable next to {sys.executable}: run `uv sync` first")
    return str(exe)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def require_service(name: str, check: Callable[[], object], how_to_start: str) -> None:
    """Skip (locally) or fail (``CI`` set) when ``check()`` raises: the service is unreachable."""
    try:
        check()
    except Exception as exc:  # any connection error means "not reachable"
        msg = (
            f"{name} is not reachable ({type(exc).__name__}: {exc}); start it with: {how_to_start}"
        )
        if os.environ.get("CI"):
            pytest.fail(f"{msg} (CI is set: this test must run in CI)")
        pytest.skip(msg)


def wait_for(
    predicate: Callable[[], Any],
    timeout: float,
    what: str,
    interval: float = 1.0,
    on_timeout: Callable[[], str] | None = None,
) -> Any:
    """Call ``predicate`` until it returns a truthy value (returned) or ``timeout`` s pass (fail)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            extra = on_timeout() if on_timeout else ""
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{extra}")
        time.sleep(interval)


def build_env(
    home: Path,
    *,
    sql_alchemy_conn: str,
    executor: str,
    api_port: int,
    zwy: dict[str, str],
    parallelism: int = 4,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """Return the environment of every Airflow process of one test.

    The parent's ``AIRFLOW*`` and ``ZWY_*`` variables are dropped, so a developer's own Airflow
    settings never leak into the test. Scheduled (cron) runs are switched off
    (``use_job_schedule=False``): unpausing the DAG would otherwise create the run of the latest
    interval (``catchup=False``), which has no input; manual triggers and backfills still run.
    """
    fernet = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "ZWY_"))}
    env.update(
        {
            TAG_VAR: f"{os.getpid()}-{secrets.token_hex(6)}",
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__CORE__EXECUTOR": executor,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sql_alchemy_conn,
            "AIRFLOW__CORE__FERNET_KEY": fernet,
            # 2 cores: a few task slots, one parser process, one API worker.
            "AIRFLOW__CORE__PARALLELISM": str(parallelism),
            "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(parallelism),
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(api_port),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
            # Every component must sign and check task tokens with the same secret.
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(16),
            # Slow start-up on 2 cores must not fail the first task with httpx.ReadTimeout.
            "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "30",
            # Log server of the scheduler (LocalExecutor) / Celery worker: a free port, not 8793.
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            **zwy,
        }
    )
    if sql_alchemy_conn.startswith("sqlite"):
        # Wait for SQLite's write lock instead of failing after 5 s (see SQLITE_CONNECT_ARGS).
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS"] = SQLITE_CONNECT_ARGS_PATH
    env.update(extra or {})
    return env


class AirflowStack:
    """The Airflow processes of one test: CLI calls, components, state queries, and shutdown."""

    STOP_ORDER = ("scheduler", "celery-worker", "dag-processor", "api-server")

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.home = Path(env["AIRFLOW_HOME"])
        self.home.mkdir(parents=True, exist_ok=True)
        self.log_dir = self.home / "components"
        self.log_dir.mkdir(exist_ok=True)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.pids: dict[str, int] = {}
        self._engine: Any = None

    # -- commands ---------------------------------------------------------------------------
    def cli(
        self, *args: str, timeout: float = 300, check: bool = True, idempotent: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """Run ``airflow <args>`` to completion; fail the test with its output if it fails.

        ``idempotent``: a command that may simply be run again (``dags unpause``) is retried,
        up to 3 times, when SQLite answered "database is locked" at once (a stale snapshot
        cannot wait for the lock; see ``test_backfill._backfill``).
        """
        for attempt in range(1, 4):
            res = subprocess.run(
                [airflow_exe(), *args],
                env=self.env,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
            locked = res.returncode != 0 and "database is locked" in res.stderr
            if not (idempotent and locked and attempt < 3):
                break
            print(f"`airflow {' '.join(args)}`: database is locked (attempt {attempt}), retrying")
            time.sleep(3)
        if check and res.returncode != 0:
            pytest.fail(
                f"`airflow {' '.join(args)}` exited {res.returncode}\n"
                f"--- stdout\n{res.stdout[-4000:]}\n--- stderr\n{res.stderr[-4000:]}"
            )
        return res

    def migrate(self) -> None:
        """``airflow db migrate`` (creates the schema) and the DAG's pools (writer, parse)."""
        self.cli("db", "migrate", timeout=600)
        for pool, slots, about in POOLS:
            self.cli("pools", "set", pool, str(slots), about)

    def start(self, name: str, *args: str) -> int:
        """Start ``airflow <args>`` in a new session, output to ``components/<name>.log``."""
        log = (self.log_dir / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            [airflow_exe(), *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        self.procs[name] = proc
        self.pids[name] = proc.pid
        return proc.pid

    def start_core(self, executor_component: tuple[str, ...] | None = None) -> None:
        """Start the API server, wait for it, then the dag-processor, scheduler (and a worker)."""
        port = self.env["AIRFLOW__API__PORT"]
        self.start(
            "api-server", "api-server", "--host", "127.0.0.1", "--port", port, "--workers", "1"
        )
        self.start("dag-processor", "dag-processor")
        self.wait_http(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=180)
        self.start("scheduler", "scheduler")
        if executor_component:
            self.start(executor_component[0], *executor_component[1:])

    def assert_alive(self) -> None:
        """Fail with the component's log tail if a component has exited."""
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                pytest.fail(f"{name} exited with {proc.returncode}\n{self.diagnostics()}")

    def wait_http(self, url: str, timeout: float) -> None:
        """Wait until ``url`` answers HTTP 200 (the components must stay alive meanwhile)."""

        def ok() -> bool:
            self.assert_alive()
            try:
                with urllib.request.urlopen(url, timeout=5) as resp:
                    return bool(resp.status == 200)
            except (urllib.error.URLError, OSError):
                return False

        wait_for(ok, timeout, f"{url} to answer", interval=1.0, on_timeout=self.diagnostics)

    # -- metadata ---------------------------------------------------------------------------
    def query(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        """Run a read-only query on the metadata database (tests only read it)."""
        import sqlalchemy as sa
        from sqlalchemy.pool import NullPool

        if self._engine is None:
            url = self.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
            # Reading SQLite while the scheduler writes waits for its lock, as Airflow does.
            args = dict(SQLITE_CONNECT_ARGS) if url.startswith("sqlite") else {}
            self._engine = sa.create_engine(url, poolclass=NullPool, connect_args=args)
        with self._engine.connect() as con:
            return [dict(r._mapping) for r in con.execute(sa.text(sql), params)]

    def wait_dag_parsed(self, dag_id: str = DAG_ID, timeout: float = 180) -> None:
        """Wait until the dag-processor has serialised ``dag_id`` into the metadata database."""

        def parsed() -> bool:
            self.assert_alive()
            return bool(self.query("SELECT dag_id FROM serialized_dag WHERE dag_id = :d", d=dag_id))

        wait_for(
            parsed,
            timeout,
            f"the dag-processor to parse {dag_id}",
            interval=2,
            on_timeout=self.diagnostics,
        )

    def runs(self, dag_id: str = DAG_ID) -> list[dict[str, Any]]:
        """Return the DAG's runs: run_id, state, run_type, logical_date, backfill_id, conf."""
        return self.query(
            "SELECT run_id, state, run_type, logical_date, backfill_id, start_date, end_date "
            "FROM dag_run WHERE dag_id = :d ORDER BY id",
            d=dag_id,
        )

    def task_states(self, run_id: str, dag_id: str = DAG_ID) -> dict[str, str | None]:
        """Return ``{task_id: state}`` of one run."""
        rows = self.query(
            "SELECT task_id, state FROM task_instance WHERE dag_id = :d AND run_id = :r",
            d=dag_id,
            r=run_id,
        )
        return {r["task_id"]: r["state"] for r in rows}

    def wait_runs_done(
        self,
        run_ids: Callable[[], Iterable[str]],
        expected: int,
        timeout: float,
        dag_id: str = DAG_ID,
    ) -> dict[str, str]:
        """Wait until ``expected`` runs named by ``run_ids()`` are finished; fail on any failure.

        Returns:
            ``{run_id: state}`` (all ``success``).

        """
        terminal = {"success", "failed"}

        def done() -> dict[str, str] | None:
            self.assert_alive()
            wanted = set(run_ids())
            states = {r["run_id"]: r["state"] for r in self.runs(dag_id) if r["run_id"] in wanted}
            failed = [r for r, s in states.items() if s == "failed"]
            if failed:
                pytest.fail(f"run(s) {failed} failed\n{self.diagnostics(failed)}")
            if len(states) >= expected and set(states.values()) <= terminal:
                return states
            return None

        result: dict[str, str] = wait_for(
            done,
            timeout,
            f"{expected} run(s) of {dag_id} to finish",
            interval=3,
            on_timeout=lambda: self.diagnostics(list(run_ids())),
        )
        return result

    # -- diagnostics ------------------------------------------------------------------------
    def diagnostics(self, run_ids: Iterable[str] | None = None, lines: int = 40) -> str:
        """Task states and log tails of ``run_ids`` (default: all), and each component's log tail."""
        out: list[str] = []
        try:
            runs = self.runs()
        except Exception as exc:  # the metadata DB itself may be the problem
            runs = []
            out.append(f"(cannot read dag_run: {exc})")
        wanted = set(run_ids) if run_ids is not None else {r["run_id"] for r in runs}
        for r in runs:
            if r["run_id"] not in wanted:
                continue
            out.append(
                f"== run {r['run_id']} [{r['state']}] tasks: {self.task_states(r['run_id'])}"
            )
            run_dir = self.home / "logs" / f"dag_id={DAG_ID}" / f"run_id={r['run_id']}"
            for log in sorted(run_dir.rglob("*.log")):
                out.append(f"--- {log.relative_to(self.home)}\n{tail(log, lines)}")
        for name in self.procs:
            out.append(
                f"== component {name} (pid {self.pids[name]})\n"
                f"{tail(self.log_dir / f'{name}.log', lines)}"
            )
        return "\n".join(out)

    # -- shutdown ---------------------------------------------------------------------------
    def tagged(self) -> list[psutil.Process]:
        """Processes (of this user) whose environment carries this test's tag."""
        tag = self.env[TAG_VAR]
        found = []
        for p in psutil.process_iter(["pid", "uids"]):
            if p.pid == os.getpid() or (p.info["uids"] and p.info["uids"].real != os.getuid()):
                continue
            try:
                if p.environ().get(TAG_VAR) == tag:
                    found.append(p)
            except (psutil.Error, OSError):
                continue
        return found

    def stop(self, timeout: float = 30) -> list[int]:
        """Stop every process this stack started; return the pids still alive after it (none).

        Each component gets SIGTERM on its process group (it was started as a session leader,
        so its group id is its pid), in ``STOP_ORDER`` (scheduler first, so that it queues
        nothing new); after ``timeout`` s the groups, their descendants, and any process
        carrying this test's tag get SIGKILL.
        """
        victims: dict[int, psutil.Process] = {}
        for name in sorted(
            self.procs,
            key=lambda n: (
                self.STOP_ORDER.index(n) if n in self.STOP_ORDER else len(self.STOP_ORDER)
            ),
        ):
            proc = self.procs[name]
            try:
                ps = psutil.Process(proc.pid)
                victims[ps.pid] = ps
                victims.update({c.pid: c for c in ps.children(recursive=True)})
            except psutil.Error:
                pass
            _signal_group(proc.pid, signal.SIGTERM)
        victims.update({p.pid: p for p in self.tagged()})
        _, alive = psutil.wait_procs(list(victims.values()), timeout=timeout)
        for proc in self.procs.values():
            _signal_group(proc.pid, signal.SIGKILL)
        for p in alive + self.tagged():
            try:
                p.kill()
            except psutil.Error:
                pass
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        psutil.wait_procs([p for p in self.tagged()], timeout=10)
        if self._engine is not None:
            self._engine.dispose()
        return [p.pid for p in self.tagged()]


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a text file ('' if it does not exist)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def warehouse_snapshot(warehouse: Path, tables: Iterable[str]) -> dict[str, Any]:
    """Every table's rows without run ids and load times, sorted: equal snapshots = same data."""
    import duckdb

    out = {}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for t in tables:
            df = con.execute(f"SELECT * FROM {t}").pl()
            df = df.drop([c for c in ("run_id", "loaded_at", "validated_at") if c in df.columns])
            out[t] = df.sort(df.columns, nulls_last=True)
    return out
