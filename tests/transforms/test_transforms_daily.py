from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest

from transforms.daily import aggregate_daily, build_marts
from zwy.contracts import DAILY, HOURLY, conform
from zwy.settings import ValiditySettings

DAY = date(2024, 5, 1)
#: 00:00 Beijing on DAY
MIDNIGHT_UTC = datetime(2024, 4, 30, 16, 0, tzinfo=UTC)


def hours(mn, stream, pollutant, values, valid, discharge=None, value_zs=None, n_flag_t=0):
    n = len(values)
    return conform(
        pl.DataFrame(
            {
                "local_day": [DAY] * n,
                "hour_start_utc": [MIDNIGHT_UTC + timedelta(hours=i) for i in range(n)],
                "facility_id": ["F1"] * n,
                "outlet_id": ["F1-X"] * n,
                "mn": [mn] * n,
                "stream": [stream] * n,
                "pollutant": [pollutant] * n,
                "value": values,
                "value_zs": value_zs if value_zs is not None else [None] * n,
                "discharge": discharge if discharge is not None else [None] * n,
                "unit": ["u"] * n,
                "n_values": [1] * n,
                "n_valid": [1] * n,
                "valid_minutes": [60] * n,
                "valid": valid,
                "n_flag_t": [n_flag_t] * n,
                "n_flag_s": [0] * n,
                "source_cn": ["2061"] * n,
            }
        ),
        HOURLY,
    )


def daily(frame, settings=None):
    out = aggregate_daily(frame.lazy(), settings or ValiditySettings()).collect()
    assert out.schema == DAILY
    return out.sort("mn", "pollutant")


@pytest.mark.parametrize(("n_valid", "valid"), [(19, False), (20, True)])
def test_gas_day_needs_20_valid_hours(n_valid, valid):
    values = [10.0] * n_valid + [500.0] * (24 - n_valid)
    flags = [True] * n_valid + [False] * (24 - n_valid)
    row = daily(
        hours("G", "exhaust_gas", "a21026", values, flags, value_zs=[v * 2 for v in values])
    ).row(0, named=True)
    assert (row["valid_hours"], row["valid"]) == (n_valid, valid)
    # Invalid hours stay out of the mean.
    assert row["value"] == pytest.approx(10.0)
    assert row["value_zs"] == pytest.approx(20.0)


def test_day_without_valid_hours_has_no_value_but_keeps_flag_counts():
    row = daily(hours("G", "exhaust_gas", "a21026", [5.0, 6.0], [False, False], n_flag_t=2)).row(
        0, named=True
    )
    assert (row["value"], row["valid"], row["valid_hours"], row["n_flag_t"]) == (None, False, 0, 4)


def test_water_day_is_flow_weighted_over_valid_hours():
    flow = hours(
        "W",
        "wastewater",
        "w00000",
        [2.78, 8.33, 1.0],
        [True, True, False],
        discharge=[10.0, 30.0, 3.6],
    )
    cod = hours(
        "W",
        "wastewater",
        "w01018",
        [10.0, 30.0, 99.0],
        [True, True, False],
        discharge=[0.1, 0.9, 0.36],
    )
    ph = hours("W", "wastewater", "w01001", [6.0, 9.0, 14.0], [True, True, False])
    out = daily(pl.concat([flow, cod, ph]))
    by = {r["pollutant"]: r for r in out.to_dicts()}
    # (0.1 + 0.9) kg / (10 + 30) m3 × 1e3 = 25 mg/L (arithmetic would be 20)
    assert by["w01018"]["value"] == pytest.approx(25.0)
    assert by["w01018"]["discharge"] == pytest.approx(1.0)
    assert by["w00000"]["discharge"] == pytest.approx(40.0)
    assert by["w00000"]["value"] == pytest.approx((2.78 + 8.33) / 2)
    assert (by["w01001"]["value"], by["w01001"]["discharge"]) == (7.5, None)
    assert all(r["valid"] for r in by.values())


def test_water_day_without_flow_falls_back_to_arithmetic():
    cod = hours("W", "wastewater", "w01018", [10.0, 30.0], [True, True])
    assert daily(cod)["value"].to_list() == [20.0]


def test_build_marts_returns_contract_frames():
    from zwy.contracts import MONITORING_POINTS, OUTLETS, READINGS, empty

    hourly, day = build_marts(
        empty(READINGS),
        empty(MONITORING_POINTS),
        empty(OUTLETS),
        pl.DataFrame(
            schema={"standard": pl.String, "applies_to": pl.String, "reference_o2_pct": pl.Float64}
        ),
        ValiditySettings(),
    )
    assert (hourly.schema, day.schema, hourly.height, day.height) == (HOURLY, DAILY, 0, 0)


def test_build_marts_is_bit_identical_for_any_row_order(points, outlets, o2_ref, make_readings):
    import random

    from transform_builders import T0, minutes, value_row

    # A day of several devices, values with many significant bits: any change in the
    # order floats are summed would show in the last bits.
    rng = random.Random(7)
    start = T0.replace(hour=0)
    rows = [
        value_row(mn, "2011", t, p, rng.uniform(0, 100) / 3, line=i)
        for mn, step in (("GAS30", 30), ("GAS60", 60), ("GAS5", 5))
        for i, t in enumerate(
            minutes(86400 // step // (1 if step > 5 else 2), start=start, step_s=step)
        )
        for p in ("a21026", "a19001", "a21002")
    ]
    rows += [
        value_row(
            mn,
            "2051" if mn == "WAT" else "2061",
            t,
            p,
            rng.uniform(0, 100) / 7,
            field=f,
            line=100_000 + i,
        )
        for mn, pairs in (
            ("WAT", (("w00000", "Cou"), ("w01018", "Avg"), ("w01001", "Avg"))),
            ("EXP1", (("a21026", "Avg"), ("a19001", "Avg"), ("a34013", "Avg"))),
        )
        for i, t in enumerate(
            minutes(144 if mn == "WAT" else 24, start=start, step_s=600 if mn == "WAT" else 3600)
        )
        for p, f in pairs
    ]
    readings = make_readings(rows)
    first = build_marts(readings, points, outlets, o2_ref, ValiditySettings())
    for seed in (1, 2, 3):
        shuffled = readings.sample(fraction=1.0, shuffle=True, seed=seed)
        again = build_marts(shuffled, points, outlets, o2_ref, ValiditySettings())
        for a, b in zip(first, again, strict=True):
            key = [c for c in ("mn", "pollutant", "hour_start_utc", "local_day") if c in a.columns]
            assert a.sort(key).equals(b.sort(key))


def test_devices_that_get_no_hours_are_dropped_first_and_the_marts_do_not_change(
    points, outlets, o2_ref, make_readings
):
    from transform_builders import T0, minutes, value_row

    from transforms.hourly import aggregate_hourly, aggregated_devices

    start = T0.replace(hour=0)
    rows = [
        value_row(mn, "2011", t, p, 10.0 + i % 7, line=i)
        for mn in ("GAS60", "WAT", "DUST1", "MIX")
        for i, t in enumerate(minutes(180, start=start, step_s=60))
        for p in (("w00000", "w01018") if mn in ("WAT", "MIX") else ("a21026", "a34013"))
    ]
    readings = make_readings(rows)
    stream = readings.schema["stream"]
    line = pl.col("line")
    # DUST1: an unregistered dust monitor. WAT: registered as water, half its readings
    # labelled dust. MIX: unregistered, labelled water and dust by turns.
    label = (
        pl.when(pl.col("mn") == "DUST1")
        .then(pl.lit("dust"))
        .when((pl.col("mn") == "WAT") & (line % 2 == 0))
        .then(pl.lit("dust"))
        .when(pl.col("mn") == "MIX")
        .then(pl.when(line % 2 == 0).then(pl.lit("dust")).otherwise(pl.lit("wastewater")))
        .otherwise(pl.col("stream").cast(pl.String))
    )
    readings = readings.with_columns(label.cast(stream).alias("stream"))

    kept = aggregated_devices(readings, points, outlets)
    assert sorted(kept["mn"].unique().cast(pl.String).to_list()) == ["GAS60", "MIX", "WAT"]
    assert kept.height == readings.height - readings.filter(pl.col("mn") == "DUST1").height

    hourly, daily = build_marts(readings, points, outlets, o2_ref, ValiditySettings())
    # aggregate_hourly itself keeps every device: the reference.
    reference = aggregate_hourly(
        readings.lazy(), points, outlets, o2_ref, ValiditySettings()
    ).collect(engine="in-memory")
    key = ["mn", "pollutant", "hour_start_utc"]
    assert hourly.sort(key).equals(reference.sort(key))
    assert sorted(hourly["mn"].unique().to_list()) == ["GAS60", "MIX", "WAT"]
    assert daily.height > 0
