"""The Typer commands the lead mounts as ``zwy validate`` / ``zwy report``, and Data Docs."""

from __future__ import annotations

import json

import pytest
import typer
from controls_builders import DAY, GoldenDay, settings_for
from typer.testing import CliRunner

from expectations.errors import ControlRunError
from zwy.report import report
from zwy.validate import build_data_docs, validate, validate_day

app = typer.Typer()
app.command()(validate)
app.command()(report)


@pytest.fixture
def golden(tmp_path):
    settings = settings_for(tmp_path)
    g = GoldenDay(devices=["W1"])
    g.set_daily("W1", "w01018", value=612.5)
    g.write(settings)
    return settings


def test_validate_command_prints_the_counts_and_data_docs(golden):
    settings = golden
    res = CliRunner().invoke(
        app,
        [
            "validate",
            "--day",
            DAY.isoformat(),
            "--data-dir",
            str(settings.data_dir),
            "--registry",
            str(settings.registry),
            "--data-docs",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "ZWY-LIM-W-DAY" in res.output and "breaches: 1" in res.output
    assert "Data Docs:" in res.output
    index = settings.reports / "data_docs" / DAY.isoformat() / "index.html"
    assert index.is_file()
    page = index.read_text(encoding="utf-8")
    assert "zwy_daily" in page
    pages = list((index.parent / "validations").rglob("*.html"))
    assert len(pages) == 11  # one page per batch: 5 telemetry, 4 solid waste, 2 dust


def test_data_docs_keep_only_the_latest_run_of_a_day(golden):
    settings = golden
    validate_day(DAY, settings)
    build_data_docs(DAY, settings)
    validate_day(DAY, settings)
    index = build_data_docs(DAY, settings)
    assert len(list((index.parent / "validations").rglob("*.html"))) == 11


def test_data_docs_need_a_validation_run(tmp_path):
    with pytest.raises(ControlRunError, match="run zwy validate first"):
        build_data_docs(DAY, settings_for(tmp_path))


def test_report_command_writes_the_page(golden):
    settings = golden
    validate_day(DAY, settings)
    res = CliRunner().invoke(
        app, ["report", "--day", DAY.isoformat(), "--data-dir", str(settings.data_dir)]
    )
    assert res.exit_code == 0, res.output
    path = settings.reports / DAY.isoformat() / f"compliance_{DAY}.html"
    assert path.is_file()


def test_validate_command_refuses_a_bad_day_and_engine(golden):
    settings = golden
    res = CliRunner().invoke(
        app, ["validate", "--day", "2024-13-01", "--data-dir", str(settings.data_dir)]
    )
    assert res.exit_code != 0 and "not a day" in res.output
    res = CliRunner().invoke(
        app,
        [
            "validate",
            "--day",
            DAY.isoformat(),
            "--engine",
            "spark",
            "--data-dir",
            str(settings.data_dir),
        ],
    )
    assert res.exit_code != 0


def test_validate_day_summary_is_json_able(golden):
    summary = validate_day(DAY, golden)
    text = json.dumps(summary)
    assert summary["breaches"] == 1 and summary["per_control"]["ZWY-LIM-W-DAY"]["findings"] == 1
    assert "timings_s" in text
