"""DAG integrity: every DAG file imports fast, touches no data at import, and is shaped right."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from zwy.contracts import STREAMS

REPO = Path(__file__).resolve().parents[2]
DAGS = sorted((REPO / "dags").glob("*.py"))

# Runs in a fresh interpreter: imports Airflow's SDK first (its own cost is not the DAG's),
# then times the DAG file's import while an audit hook records every file it opens.
PROBE = r"""
import importlib.util, json, sys, time
import airflow.sdk  # noqa: F401
opened = []
def hook(event, args):
    if event == "open" and isinstance(args[0], str):
        opened.append(args[0])
sys.addaudithook(hook)
path = sys.argv[1]
t0 = time.perf_counter()
spec = importlib.util.spec_from_file_location("dag_under_test", path)
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
dt = time.perf_counter() - t0
print(json.dumps({
    "seconds": dt,
    "modules": sorted(m for m in ("duckdb", "polars", "great_expectations", "zwy.pipeline")
                      if m in sys.modules),
    "opened": [p for p in opened if not p.endswith((".py", ".pyc", ".so")) and "/site-packages/" not in p
               and "/lib/python" not in p],
}))
"""


@pytest.mark.parametrize("dag_file", DAGS, ids=lambda p: p.name)
def test_dag_file_imports_fast_without_touching_data(dag_file: Path, tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "ZWY_DATA_DIR": str(tmp_path / "data"),
    }
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(dag_file)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    probe = json.loads(out.stdout.strip().splitlines()[-1])
    assert probe["seconds"] < 2.0, f"{dag_file.name} took {probe['seconds']:.2f} s to import"
    assert probe["modules"] == [], f"{dag_file.name} imports {probe['modules']} at import time"
    data_files = [
        p for p in probe["opened"] if p.startswith(str(tmp_path / "data")) or ".duckdb" in p
    ]
    assert data_files == []
    assert not (tmp_path / "data").exists()


@pytest.fixture(scope="module")
def nightly():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "yizhuang_nightly", REPO / "dags" / "yizhuang_nightly.py"
    )
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.nightly


def test_nightly_has_the_expected_tasks(nightly) -> None:
    assert nightly.dag_id == "yizhuang_nightly"
    assert set(nightly.task_dict) == {
        "resolve_day",
        "wastewater.parse_stream",
        "wastewater.transform_stream",
        "exhaust_gas.parse_stream",
        "exhaust_gas.transform_stream",
        "solid_waste.parse_stream",
        "solid_waste.transform_stream",
        "dust.parse_stream",
        "dust.transform_stream",
        "load_day",
        "validate_day",
        "build_report",
        "check_arrivals",
        "send_alerts",
        "publish",
    }
    load = nightly.task_dict["load_day"]
    assert {t.task_id for t in load.upstream_list} >= {
        "wastewater.transform_stream",
        "exhaust_gas.transform_stream",
        "solid_waste.transform_stream",
        "dust.transform_stream",
        "resolve_day",
    }
    assert [t.task_id for t in nightly.task_dict["check_arrivals"].upstream_list] != []
    # Alerts go out whatever happened upstream; check_arrivals stays a leaf so that a failed
    # stage still fails the run.
    alerts = nightly.task_dict["send_alerts"]
    assert alerts.trigger_rule == "all_done"
    assert {t.task_id for t in nightly.leaves} == {"check_arrivals", "send_alerts"}


def test_nightly_schedule_timezone_pool_and_retries(nightly) -> None:
    tt = nightly.timetable
    assert type(tt).__name__ == "CronDataIntervalTimetable"
    assert tt._expression == "0 2 * * *"
    assert str(tt._timezone) in {"Asia/Shanghai", "Timezone('Asia/Shanghai')"}
    assert nightly.max_active_runs == 1
    assert nightly.catchup is False
    tasks = nightly.task_dict
    assert tasks["load_day"].pool == "zwy_duckdb_writer"
    parses = sorted(t.task_id for t in tasks.values() if t.pool == "zwy_parse")
    assert parses == sorted(f"{s}.parse_stream" for s in STREAMS)
    assert tasks["load_day"].queue == "duckdb_writer"
    writers = [t for t in tasks.values() if t.pool == "zwy_duckdb_writer"]
    assert sorted(t.task_id for t in writers) == [
        "build_report",
        "load_day",
        "publish",
        "send_alerts",
        "validate_day",
    ]
    io = (
        "wastewater.parse_stream",
        "exhaust_gas.transform_stream",
        "load_day",
        "build_report",
        "send_alerts",
    )
    for task_id in io:
        assert tasks[task_id].retries == 3 and tasks[task_id].retry_exponential_backoff
    for task_id in ("resolve_day", "check_arrivals", "validate_day"):
        assert tasks[task_id].retries == 0
    assert {a.uri for a in tasks["load_day"].outlets} >= {
        "zwy://warehouse/stg_readings",
        "zwy://warehouse/mart_daily_values",
    }
    for t in tasks.values():
        assert (
            t.doc
            or t.doc_md
            or (t.python_callable.__doc__ if hasattr(t, "python_callable") else None)
        )
