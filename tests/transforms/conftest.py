"""Tiny registry and frame builders shared by the transform tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import polars as pl
import pytest
from transform_builders import DAY

from transforms.readings import build_readings
from zwy.contracts import HOURLY, MONITORING_POINTS, OUTLETS, VALUES, conform
from zwy.settings import ValiditySettings


@pytest.fixture
def points() -> pl.DataFrame:
    return conform(
        pl.DataFrame(
            {
                "mn": ["GAS60", "GAS5", "GAS30", "EXP1", "WAT", "WAT300", "GASNOREF"],
                "outlet_id": ["F1-S1", "F1-S1", "F1-S1", "F1-S2", "F1-W1", "F1-W1", "F1-S3"],
                "rtd_interval_s": [60, 5, 30, 60, 60, 300, 60],
                "min_interval_min": [10, 10, 10, 10, 10, 10, 10],
                "delivery": ["hj212"] * 3 + ["platform_export"] + ["hj212"] * 3,
            }
        ),
        MONITORING_POINTS,
    )


@pytest.fixture
def outlets() -> pl.DataFrame:
    return conform(
        pl.DataFrame(
            {
                "outlet_id": ["F1-S1", "F1-S2", "F1-W1", "F1-S3"],
                "facility_id": ["F1", "F1", "F1", "F1"],
                "outlet_type": ["stack", "stack", "wastewater_direct", "stack"],
                "stream": ["exhaust_gas", "exhaust_gas", "wastewater", "exhaust_gas"],
                "standard": ["DB11/139-2015", "DB11/139-2015", "DB11/307-2013", "DB11/501-2017"],
                "applies_to": ["boiler_new", "boiler_new", "all", "process"],
            }
        ),
        OUTLETS,
    )


@pytest.fixture
def units() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "code_2017": ["a21026", "a19001", "a21002", "w00000", "w01018", "w01001"],
            "unit": ["mg/m3", "%", "mg/m3", "L/s", "mg/L", "pH"],
        }
    )


@pytest.fixture
def o2_ref() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "standard": ["DB11/139-2015"],
            "applies_to": ["boiler_new"],
            "reference_o2_pct": [3.5],
        }
    )


@pytest.fixture
def validity() -> ValiditySettings:
    return ValiditySettings()


@pytest.fixture
def make_readings(
    points: pl.DataFrame, outlets: pl.DataFrame, units: pl.DataFrame
) -> Callable[..., pl.DataFrame]:
    """rows (dicts from value_row) → READINGS through build_readings."""

    def build(rows: list[dict[str, Any]], batch_day: date = DAY) -> pl.DataFrame:
        values = conform(pl.DataFrame(rows), VALUES)
        return build_readings(values, points, outlets, units, batch_day)

    return build


@pytest.fixture(params=["compiled", "reference"])
def hourly_of(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    make_readings: Callable[..., pl.DataFrame],
    points: pl.DataFrame,
    outlets: pl.DataFrame,
    o2_ref: pl.DataFrame,
    validity: ValiditySettings,
) -> Callable[..., pl.DataFrame]:
    """rows → HOURLY frame, sorted by mn, pollutant, hour.

    Every test of the hours runs twice: capture periods by the compiled pass and by the
    Polars reference group-by (:mod:`transforms.periods`).
    """
    from transforms import periods
    from transforms.hourly import aggregate_hourly

    if request.param == "reference":
        monkeypatch.setattr(periods, "AVAILABLE", False)
    elif not periods.AVAILABLE:
        pytest.skip("numba is not installed: only the reference group-by runs")

    def run(rows: list[dict[str, Any]] | pl.DataFrame, settings: ValiditySettings | None = None):
        readings = rows if isinstance(rows, pl.DataFrame) else make_readings(rows)
        out = aggregate_hourly(readings.lazy(), points, outlets, o2_ref, settings or validity)
        frame = out.collect()
        assert frame.schema == HOURLY
        return frame.sort("mn", "pollutant", "hour_start_utc")

    return run
