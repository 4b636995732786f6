"""yizhuang_nightly run for real by `airflow dags test` on SQLite, then the warehouse checked."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import duckdb
import pytest

from tests.alerts.smtp_server import LoopbackSmtp
from zwy.airflow_local import POOLS
from zwy.sample.generate import generate_district

REPO = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
DAY = date(2024, 5, 1)


@pytest.fixture(scope="module")
def smtp() -> Iterator[LoopbackSmtp]:
    server = LoopbackSmtp()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory: pytest.TempPathFactory, smtp: LoopbackSmtp) -> dict[str, str]:
    root = tmp_path_factory.mktemp("af")
    generate_district(root / "sample", [DAY], scale="test")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "ZWY_"))},
        "AIRFLOW_HOME": str(root / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "ZWY_DATA_DIR": str(root / "data"),
        "ZWY_INBOX_DIR": str(root / "sample" / "inbox"),
        "ZWY_REGISTRY_DIR": str(root / "sample" / "registry"),
        "AIRFLOW_CONN_SMTP_DEFAULT": smtp.connection_env(),
    }
    subprocess.run(
        [AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300
    )
    for pool, slots, about in POOLS:
        subprocess.run(
            [AIRFLOW, "pools", "set", pool, str(slots), about],
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
    return env


def dags_test(
    env: dict[str, str], logical_date: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [AIRFLOW, "dags", "test", "yizhuang_nightly", logical_date, *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_scheduled_run_loads_the_previous_local_day(airflow_env, smtp) -> None:
    # The run at 2024-05-02 02:00 Shanghai (18:00 UTC on 05-01) covers the local day 05-01.
    res = dags_test(airflow_env, "2024-05-01T18:00:00+00:00")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    wh = Path(airflow_env["ZWY_DATA_DIR"]) / "warehouse" / "zwy.duckdb"
    inbox = Path(airflow_env["ZWY_INBOX_DIR"]) / DAY.isoformat()
    with duckdb.connect(str(wh), read_only=True) as con:
        files = con.execute(
            "SELECT count(*) FROM raw_ingest_files WHERE batch_day = ?", [DAY]
        ).fetchone()
        runs = con.execute("SELECT status, run_id FROM ops_runs").fetchall()
        days = con.execute("SELECT DISTINCT local_day FROM mart_daily_values ORDER BY 1").fetchall()
        breaches = con.execute(
            "SELECT count(*) FROM breaches WHERE local_day = ?", [DAY]
        ).fetchone()
        acct = con.execute(
            "SELECT count(*) FROM raw_ingest_files "
            "WHERE frames_found <> frames_loaded + frames_quarantined"
        ).fetchone()
    assert files == (sum(1 for p in inbox.rglob("*") if p.is_file()),)
    assert len(runs) == 1 and runs[0][0] == "success" and "_airflow_" in runs[0][1]
    assert (DAY,) in days
    assert acct == (0,)
    assert breaches is not None and breaches[0] > 0  # the test district plants exceedances
    report = (
        Path(airflow_env["ZWY_DATA_DIR"]) / "reports" / DAY.isoformat() / f"compliance_{DAY}.html"
    )
    assert report.is_file() and "DB11/307-2013" in report.read_text()
    # send_alerts mailed the digests through the smtp_default connection, once each.
    to = [r for m in smtp.inbox.messages for r in m.rcpt_tos]
    assert "compliance@bureau.example.org" in to and "ehs@f0001.example.org" in to
    digests = [m for m in smtp.inbox.messages if "即时告警" not in str(m.message["Subject"])]
    assert len({r for m in digests for r in m.rcpt_tos}) == len(digests)
    with duckdb.connect(str(wh), read_only=True) as con:
        statuses = con.execute("SELECT DISTINCT status FROM alert_outbox").fetchall()
    assert statuses == [("sent",)]


def test_a_day_where_nothing_arrived_fails_the_run_and_says_so(airflow_env, smtp) -> None:
    before = len(smtp.inbox.messages)
    res = dags_test(airflow_env, "2024-05-02T18:00:00+00:00", "-c", '{"day": "2024-05-07"}')
    log = res.stdout + res.stderr
    assert "nothing arrived for wastewater, exhaust_gas, solid_waste, dust on 2024-05-07" in log
    assert "state=failed" in log
    wh = Path(airflow_env["ZWY_DATA_DIR"]) / "warehouse" / "zwy.duckdb"
    with duckdb.connect(str(wh), read_only=True) as con:
        rows = con.execute("SELECT status FROM ops_runs WHERE day = DATE '2024-05-07'").fetchall()
    assert rows == [("nothing_arrived",)]
    # The pipeline alert reached ops (and the data steward), naming both streams.
    new = smtp.inbox.messages[before:]
    ops = [m for m in new if "ops@bureau.example.org" in m.rcpt_tos]
    assert len(ops) == 1, [str(m.message["Subject"]) for m in new]
    body = ops[0].message.get_body(preferencelist=("plain",)).get_content()
    assert "ZWY-OPS-NOTHING-ARRIVED" in body
    assert all(s in body for s in ("exhaust_gas", "wastewater", "solid_waste", "dust"))
