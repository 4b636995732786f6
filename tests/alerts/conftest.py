"""A real SMTP server on loopback (aiosmtpd) and a validated one-day sample district.

The district's first facility is renamed to a hostile name (HTML and SQL injection) before
the run, so every test sees it travel through the warehouse into the emails.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from tests.alerts.smtp_server import LoopbackSmtp
from zwy.pipeline import run_day
from zwy.sample.generate import generate_district
from zwy.settings import AlertSettings, Settings

DAY = date(2024, 5, 1)
HOSTILE = "<script>alert('x')</script>'; DROP TABLE alert_outbox; -- 佳讯"


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackSmtp]:
    server = LoopbackSmtp()
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", server.connection_env())
    server.start()
    yield server
    server.stop()


def make_district(root: Path) -> Settings:
    """Generate the test-scale district with a hostile facility name; return its settings."""
    generate_district(root / "sample", [DAY], scale="test")
    registry = root / "sample" / "registry"
    fac = pl.read_csv(registry / "facilities.csv", infer_schema=False)
    fac = fac.with_columns(
        pl.when(pl.col("facility_id") == "F0001")
        .then(pl.lit(HOSTILE))
        .otherwise(pl.col("name"))
        .alias("name")
    )
    fac.write_csv(registry / "facilities.csv")
    return Settings(
        data_dir=root / "data",
        inbox_dir=root / "sample" / "inbox",
        registry_dir=registry,
        alerts=AlertSettings(report_base_url="https://zwy.example.org/reports"),
    )


@pytest.fixture(scope="session")
def validated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One validated day (no alerts yet), copied by each test that changes the warehouse."""
    root = tmp_path_factory.mktemp("alerts")
    settings = make_district(root)
    run_day(DAY, settings)
    return root


@pytest.fixture
def district(validated_template: Path, tmp_path: Path) -> Settings:
    """A private copy of the validated district: each test starts with an empty outbox."""
    import shutil

    root = tmp_path / "d"
    shutil.copytree(validated_template, root)
    return Settings.for_district(root / "data", root / "sample").model_copy(
        update={"alerts": AlertSettings(report_base_url="https://zwy.example.org/reports")}
    )
