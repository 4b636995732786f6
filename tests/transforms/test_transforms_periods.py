"""The compiled capture periods (transforms.periods) against the Polars reference, to the bit."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from transforms import periods
from transforms.hourly import _group_periods, _period_rows, _periods
from zwy.contracts import CODE
from zwy.settings import ValiditySettings

pytestmark = pytest.mark.skipif(not periods.AVAILABLE, reason="numba is not installed")

H0 = datetime(2024, 5, 1, 2, 0, tzinfo=UTC)
FLAGS = ["N", "N", "N", "T", "S", "D", None]


#: (mn, cn, stream, interval, pollutants, rtd_s, largest flow weight or None): a gas stack
#: sending 2011 every 20 s, a water outlet sending 2011 every 60 s (10-minute periods), a
#: water outlet sending 2051 every 10 min, a stack's 2061 hour.
DEVICES = [
    ("GAS", "2011", "exhaust_gas", timedelta(seconds=20), ("a21026", "a21002", "a19001"), 20, None),
    ("WRT", "2011", "wastewater", timedelta(seconds=60), ("w00000", "w01018"), 60, 0.5),
    ("W51", "2051", "wastewater", timedelta(minutes=10), ("w00000", "w01018", "w01001"), 60, 30.0),
    ("G61", "2061", "exhaust_gas", timedelta(hours=1), ("a21026",), 60, None),
]
UNITS = {"a19001": "%", "w00000": "L/s", "w01001": "pH"}


def _samples(seed: int = 7) -> pl.DataFrame:
    """Chosen samples as aggregate_hourly hands them to _periods, two hours of DEVICES.

    Random values (some null), flags, Cou and flow weights (some null); seeded.
    """
    rng = random.Random(seed)
    rows: list[dict[str, object]] = []
    for mn, cn, stream, step, pollutants, rtd_s, max_weight in DEVICES:
        t = H0
        while t < H0 + timedelta(hours=2):
            for pollutant in pollutants:
                weight = None
                if max_weight is not None and rng.random() >= 0.1:
                    weight = rng.uniform(0, max_weight)
                rows.append(
                    {
                        "mn": mn,
                        "cn": cn,
                        "data_time_utc": t,
                        "pollutant": pollutant,
                        "value": None if rng.random() < 0.05 else round(rng.uniform(0, 80), 3),
                        "flag": rng.choice(FLAGS),
                        "cou": None if cn == "2011" or rng.random() < 0.2 else rng.uniform(0, 9),
                        "cou_flag": rng.choice(FLAGS),
                        "unit": UNITS.get(
                            pollutant, "mg/m3" if stream == "exhaust_gas" else "mg/L"
                        ),
                        "stream": stream,
                        "delivery": "hj212",
                        "rtd_s": rtd_s,
                        "period_min": 10,
                        "hour_start_utc": t.replace(minute=0, second=0),
                        "_period_s": 3600 if cn == "2061" else 600,
                        "weight_m3": weight,
                    }
                )
            t += step
    return pl.DataFrame(rows, infer_schema_length=None).with_columns(
        pl.col("mn", "cn", "pollutant", "unit", "stream", "delivery").cast(CODE),
        pl.col("flag", "cou_flag").cast(pl.String),
    )


def _both(samples: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    validity = ValiditySettings()
    key = list(periods.KEY)
    compiled = _periods(samples.lazy(), validity, compiled=True).collect(engine="in-memory")
    reference = _periods(samples.lazy(), validity, compiled=False).collect(engine="in-memory")
    return compiled.sort(key), reference.sort(key)


def test_compiled_periods_equal_the_reference_to_the_bit():
    compiled, reference = _both(_samples())
    assert compiled.height == 2 * (60 * 3 + 6 * 2 + 6 * 3 + 1) == reference.height
    assert_frame_equal(compiled, reference, check_exact=True)


def test_rows_in_any_order_give_the_same_periods():
    samples = _samples(seed=11)
    shuffled = samples.sample(fraction=1.0, shuffle=True, seed=3)
    compiled, reference = _both(shuffled)
    assert_frame_equal(compiled, reference, check_exact=True)
    # and the order the rows came in changes nothing: each period sums in time order
    assert_frame_equal(compiled, _both(samples)[1], check_exact=True)


def test_two_samples_of_a_pair_at_one_time_are_left_to_the_reference():
    samples = _samples()
    twice = pl.concat([samples, samples.filter(pl.col("mn") == "W51").head(1)])
    rows = _period_rows(twice.lazy(), ValiditySettings()).collect()
    kernel = periods._kernel()
    *_, status = kernel.periods_pass(*periods._inputs(rows))
    assert status == kernel.UNEXPECTED
    compiled, reference = _both(twice)
    assert_frame_equal(compiled, reference, check_exact=True)
    assert compiled.filter(pl.col("mn") == "W51").get_column("n_values").max() == 2


def test_a_period_with_two_units_is_left_to_the_reference():
    samples = _samples().with_columns(
        unit=pl.when((pl.col("mn") == "GAS") & (pl.int_range(pl.len()) % 7 == 0))
        .then(pl.lit("ppm"))
        .otherwise(pl.col("unit").cast(pl.String))
        .cast(CODE)
    )
    rows = _period_rows(samples.lazy(), ValiditySettings()).collect()
    grouped = periods.group_periods(rows, _group_periods)
    reference = _group_periods(rows.lazy()).collect(engine="in-memory")
    key = list(periods.KEY)
    assert_frame_equal(grouped.sort(key), reference.sort(key), check_exact=True)
    # the reference's max() picked one unit for the mixed periods
    assert grouped.filter(pl.col("mn") == "GAS").get_column("unit").n_unique() >= 2


def test_text_keys_take_the_reference():
    samples = _samples().with_columns(pl.col("mn", "pollutant").cast(pl.String))
    compiled, reference = _both(samples)
    assert_frame_equal(compiled, reference, check_exact=True)
