"""Run ``yizhuang_nightly`` through Airflow on the embedded default: SQLite metadata, local files.

Used by ``zwy demo --airflow`` (the README's first Quick start command) so that the demo goes
through the same orchestration as production: a real ``airflow dags test`` run per day, its
Airflow metadata in ``<data_dir>/airflow/airflow.db``, its logs kept in
``<data_dir>/airflow/logs/``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from zwy.errors import ZwyError
from zwy.settings import Settings

REPO_DAGS = Path(__file__).resolve().parents[1] / "dags"
POOL = "zwy_duckdb_writer"
PARSE_POOL = "zwy_parse"
#: The pools ``yizhuang_nightly`` needs: (name, slots, description).
POOLS = (
    (POOL, 1, "the single DuckDB writer"),
    (PARSE_POOL, 1, "parses take turns: each uses every core"),
)

#: Connection arguments of Airflow's SQLite metadata database, named by import path in
#: ``[database] sql_alchemy_connect_args``. SQLite lets one writer in at a time and Python's
#: driver gives up after 5 s by default; on two busy cores the scheduler can hold the write lock
#: longer than that, and a CLI command arriving then (``airflow backfill create``) failed with
#: "database is locked". Waiting up to a minute turns that collision into a short delay.
SQLITE_CONNECT_ARGS: dict[str, object] = {"timeout": 60}
SQLITE_CONNECT_ARGS_PATH = f"{__name__}.SQLITE_CONNECT_ARGS"


class AirflowRunError(ZwyError, RuntimeError):
    """An Airflow command failed; the message names the command and its log file."""


def airflow_bin() -> str:
    """Return the ``airflow`` executable of this environment."""
    return str(Path(sys.executable).with_name("airflow"))


def airflow_env(settings: Settings) -> dict[str, str]:
    """Return the environment for Airflow commands on the embedded default.

    Airflow home is ``<data_dir>/airflow`` (SQLite metadata), the DAG folder is the project's
    ``dags/``, and the ``ZWY_*`` settings point the tasks at the same inbox, registry and
    warehouse as ``settings``. Parallelism is kept low for small machines.
    """
    home = (settings.data_dir / "airflow").resolve()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_DAGS),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "30",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": SQLITE_CONNECT_ARGS_PATH,
            "ZWY_DATA_DIR": str(settings.data_dir.resolve()),
            "ZWY_INBOX_DIR": str(settings.inbox.resolve()),
            "ZWY_REGISTRY_DIR": str(settings.registry.resolve()),
            "ZWY_WAREHOUSE_PATH": str(settings.warehouse.resolve()),
        }
    )
    return env


def _run(args: list[str], env: dict[str, str], log: Path, timeout: int) -> int:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as fh:
        proc = subprocess.run(args, env=env, stdout=fh, stderr=subprocess.STDOUT, timeout=timeout)
    return proc.returncode


def ensure_metadata(settings: Settings) -> None:
    """Create or upgrade the SQLite metadata database and the DAG's pools (writer, parse).

    Raises:
        AirflowRunError: ``airflow db migrate`` or ``airflow pools set`` failed.

    """
    env = airflow_env(settings)
    logs = Path(env["AIRFLOW_HOME"]) / "logs"
    steps = [([airflow_bin(), "db", "migrate"], "db-migrate")]
    steps += [
        ([airflow_bin(), "pools", "set", pool, str(slots), about], f"pools-set-{pool}")
        for pool, slots, about in POOLS
    ]
    for args, name in steps:
        log = logs / f"{name}.log"
        if _run(args, env, log, timeout=600) != 0:
            raise AirflowRunError(f"`{' '.join(args[1:])}` failed: see {log}")


def logical_date_for(day: date) -> datetime:
    """Return the logical date whose scheduled run processes local ``day`` (D+1 02:00 Shanghai)."""
    return datetime.combine(day + timedelta(days=1), time(2, 0), tzinfo=ZoneInfo("Asia/Shanghai"))


def dags_test(settings: Settings, day: date) -> Path:
    """Run ``airflow dags test yizhuang_nightly`` for the scheduled run that covers ``day``.

    Returns:
        The log file of the run.

    Raises:
        AirflowRunError: the DAG run did not succeed (the message names the log file).

    """
    env = airflow_env(settings)
    log = Path(env["AIRFLOW_HOME"]) / "logs" / f"dags-test-{day.isoformat()}.log"
    args = [airflow_bin(), "dags", "test", "yizhuang_nightly", logical_date_for(day).isoformat()]
    code = _run(args, env, log, timeout=1800)
    text = log.read_text(errors="replace")
    if code != 0 or "state=success" not in text:
        raise AirflowRunError(f"yizhuang_nightly for {day} did not succeed: see {log}")
    return log
