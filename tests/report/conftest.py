"""A validated one-day sample district and its report, shared by the report tests."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from zwy.pipeline import run_day
from zwy.report import build_report
from zwy.sample.generate import generate_district
from zwy.settings import Settings
from zwy.validate import validate_day

DAY = date(2024, 5, 1)


@pytest.fixture(scope="session")
def reported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Path, dict]:
    root = tmp_path_factory.mktemp("report")
    generate_district(root / "sample", [DAY], scale="test")
    settings = Settings.for_district(root / "data", root / "sample")
    run_day(DAY, settings, validate=False)
    summary = validate_day(DAY, settings)
    return settings, build_report(DAY, settings), summary
