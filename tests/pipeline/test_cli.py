"""The zwy command line: demo, run and its error messages (Typer's runner, real files)."""

from __future__ import annotations

import duckdb
from typer.testing import CliRunner

from zwy.cli import app

runner = CliRunner()


def test_demo_generates_runs_and_says_what_next(tmp_path):
    result = runner.invoke(app, ["demo", "--days", "1", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "success" in result.output
    assert "quarantined, by rule" in result.output
    assert "Next:" in result.output
    with duckdb.connect(str(tmp_path / "warehouse" / "zwy.duckdb"), read_only=True) as con:
        n = con.execute("SELECT count(*) FROM mart_daily_values").fetchone()
        runs = con.execute("SELECT status FROM ops_runs").fetchall()
    assert n is not None and n[0] > 0
    assert runs == [("success",)]


def test_run_rejects_a_malformed_day_without_traceback(tmp_path):
    result = runner.invoke(app, ["run", "--day", "2024-13-01", "--data-dir", str(tmp_path)])
    assert result.exit_code != 0
    assert "is not a day like 2024-05-01" in result.output
    assert "Traceback" not in result.output


def test_run_without_registry_says_how_to_fix(tmp_path):
    result = runner.invoke(app, ["run", "--day", "2024-05-01", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "registry file" in result.output and "zwy sample" in result.output
    assert "Traceback" not in result.output
