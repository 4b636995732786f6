from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest
from transform_builders import BJ, T0, minutes, value_row

from zwy.settings import ValiditySettings


def one(frame: pl.DataFrame, **where) -> dict:
    rows = frame.filter(*[pl.col(k) == v for k, v in where.items()]).to_dicts()
    assert len(rows) == 1, rows
    return rows[0]


# --- deduplication -------------------------------------------------------------------------


def test_late_duplicate_in_a_later_batch_counts_once(make_readings, hourly_of):
    first = [
        value_row("GAS60", "2011", t, "a21026", 10.0, source_file="d1.log", line=i + 1)
        for i, t in enumerate(minutes(45))
    ]
    # The same minute packet re-sent in the next day's file, with another value: the first
    # delivery wins and the re-send neither adds a value nor changes the mean.
    resent = [value_row("GAS60", "2011", T0, "a21026", 99.0, source_file="d2.log", line=7)]
    readings = pl.concat(
        [
            make_readings(resent, batch_day=date(2024, 5, 2)),
            make_readings(first, batch_day=date(2024, 5, 1)),
        ]
    )
    row = one(hourly_of(readings), pollutant="a21026")
    assert row["n_values"] == 45
    assert row["value"] == pytest.approx(10.0)


def test_duplicate_within_a_batch_keeps_the_earliest_line(make_readings, hourly_of):
    rows = [
        value_row("GAS60", "2061", T0, "a21026", 5.0, field="Avg", line=2),
        value_row("GAS60", "2061", T0, "a21026", 7.0, field="Avg", line=1),
    ]
    row = one(hourly_of(make_readings(rows)), pollutant="a21026")
    assert row["value"] == 7.0
    assert row["n_values"] == 1


# --- gas capture rules -----------------------------------------------------------------------


@pytest.mark.parametrize(("n_minutes", "valid"), [(44, False), (45, True)])
def test_gas_hour_needs_45_valid_minutes(hourly_of, n_minutes, valid):
    rows = [value_row("GAS60", "2011", t, "a21026", 10.0) for t in minutes(n_minutes)]
    row = one(hourly_of(rows), pollutant="a21026")
    assert row["valid_minutes"] == n_minutes
    assert row["valid"] is valid
    assert row["value"] == pytest.approx(10.0)  # reported, valid or not
    assert row["source_cn"] == "2011"


@pytest.mark.parametrize(("per_minute", "valid_minutes"), [(12, 1), (11, 0)])
def test_gas_minute_needs_12_values_at_5s(hourly_of, per_minute, valid_minutes):
    rows = [value_row("GAS5", "2011", t, "a21026", 1.0) for t in minutes(per_minute, step_s=5)]
    assert one(hourly_of(rows), pollutant="a21026")["valid_minutes"] == valid_minutes


def test_gas_minute_at_30s_interval_needs_full_coverage_not_12(hourly_of):
    two = [value_row("GAS30", "2011", t, "a21026", 1.0) for t in minutes(2, step_s=30)]
    one_value = [value_row("GAS30", "2011", T0 + timedelta(minutes=5), "a21026", 1.0)]
    assert one(hourly_of(two + one_value), pollutant="a21026")["valid_minutes"] == 1


def test_gas_hour_is_mean_of_minute_means(hourly_of):
    # Minute 0: 12 values at 5 s, mean 2; minute 1: 12 values, mean 10.
    rows = [value_row("GAS5", "2011", t, "a21026", 2.0) for t in minutes(12, step_s=5)]
    rows += [
        value_row("GAS5", "2011", t, "a21026", v)
        for t, v in zip(
            minutes(12, start=T0 + timedelta(minutes=1), step_s=5), [4.0, 16.0] * 6, strict=True
        )
    ]
    assert one(hourly_of(rows), pollutant="a21026")["value"] == pytest.approx(6.0)


@pytest.mark.parametrize(("periods", "valid"), [(4, False), (5, True)])
def test_gas_2051_periods_cover_their_interval(hourly_of, periods, valid):
    rows = [
        value_row("GAS60", "2051", t, "a21026", 10.0 * (i + 1), field="Avg")
        for i, t in enumerate(minutes(periods, step_s=600))
    ]
    row = one(hourly_of(rows), pollutant="a21026")
    assert row["valid_minutes"] == periods * 10
    assert row["valid"] is valid
    assert row["value"] == pytest.approx(10.0 * (periods + 1) / 2)
    assert row["source_cn"] == "2051"


# --- source precedence ----------------------------------------------------------------------


def test_2051_wins_over_2011_and_2011_over_2061(hourly_of):
    hour2 = T0 + timedelta(hours=1)
    hour3 = T0 + timedelta(hours=2)
    rows = [value_row("GAS60", "2011", t, "a21026", 1.0) for t in minutes(50)]
    rows += [value_row("GAS60", "2051", T0, "a21026", 50.0, field="Avg")]
    rows += [value_row("GAS60", "2011", t, "a21026", 2.0) for t in minutes(50, start=hour2)]
    rows += [value_row("GAS60", "2061", hour2, "a21026", 70.0, field="Avg")]
    rows += [value_row("GAS60", "2061", hour3, "a21026", 80.0, field="Avg")]
    out = hourly_of(rows)
    assert out["source_cn"].to_list() == ["2051", "2011", "2061"]
    assert out["value"].to_list() == pytest.approx([50.0, 2.0, 80.0])
    # The 2061 hour is the device's own hourly value, valid from its N flag.
    assert out["valid"].to_list() == [False, True, True]


def test_platform_export_rows_are_marked_export(hourly_of):
    row = one(
        hourly_of([value_row("EXP1", "2061", T0, "a21026", 12.0, field="Avg")]), pollutant="a21026"
    )
    assert (row["source_cn"], row["value"], row["valid"]) == ("export", 12.0, True)


# --- time -------------------------------------------------------------------------------------


def test_hour_after_local_midnight_belongs_to_the_local_day(hourly_of):
    t = datetime(2024, 5, 1, 0, 30, tzinfo=BJ)
    row = one(
        hourly_of([value_row("GAS60", "2061", t, "a21026", 1.0, field="Avg")]), pollutant="a21026"
    )
    assert row["hour_start_utc"] == datetime(2024, 4, 30, 16, 0, tzinfo=UTC)
    assert row["local_day"] == date(2024, 5, 1)


# --- flags ------------------------------------------------------------------------------------


def test_flags_t_is_a_lower_bound_s_and_d_are_excluded(hourly_of):
    ts = minutes(48)
    rows = [value_row("GAS60", "2011", t, "a21026", 10.0) for t in ts[:45]]
    rows += [
        value_row("GAS60", "2011", ts[45], "a21026", 100.0, flag="T"),
        value_row("GAS60", "2011", ts[46], "a21026", 999.0, flag="S"),
        value_row("GAS60", "2011", ts[47], "a21026", 999.0, flag="D"),
    ]
    row = one(hourly_of(rows), pollutant="a21026")
    assert (row["n_values"], row["n_valid"], row["n_flag_t"], row["n_flag_s"]) == (48, 45, 1, 1)
    assert row["valid_minutes"] == 45
    assert row["valid"] is True
    # T enters at face value (a floor of the true value): (45 × 10 + 100) / 46
    assert row["value"] == pytest.approx(550.0 / 46)


def test_saturated_hour_is_not_valid_but_keeps_its_floor(hourly_of):
    rows = [value_row("GAS60", "2011", t, "a21026", 500.0, flag="T") for t in minutes(60)]
    row = one(hourly_of(rows), pollutant="a21026")
    assert (row["valid"], row["valid_minutes"], row["n_flag_t"]) == (False, 0, 60)
    assert row["value"] == 500.0


def test_hour_of_only_fault_data_has_no_value(hourly_of):
    rows = [value_row("GAS60", "2061", T0, "a21026", 42.0, field="Avg", flag="D")]
    row = one(hourly_of(rows), pollutant="a21026")
    assert (row["value"], row["valid"], row["n_values"], row["n_valid"]) == (None, False, 1, 0)


# --- O2 correction (formula 28) -------------------------------------------------------------


def test_o2_correction_hand_computed(hourly_of):
    rows = [
        value_row("GAS60", "2061", T0, "a21026", 100.0, field="Avg"),
        value_row("GAS60", "2061", T0, "a19001", 9.0, field="Avg"),
    ]
    out = hourly_of(rows)
    so2 = one(out, pollutant="a21026")
    # 100 × (21 − 3.5) / (21 − 9) = 145.833…
    assert so2["value_zs"] == pytest.approx(100.0 * 17.5 / 12.0)
    assert (so2["o2_measured"], so2["o2_ref"]) == (9.0, 3.5)
    o2 = one(out, pollutant="a19001")
    assert (o2["value_zs"], o2["o2_ref"]) == (None, None)


@pytest.mark.parametrize(
    ("mn", "o2", "o2_flag"),
    [("GAS60", 21.0, "N"), ("GAS60", None, "N"), ("GAS60", 9.0, "D"), ("GASNOREF", 9.0, "N")],
    ids=["o2_at_21", "no_o2", "o2_invalid", "no_reference_o2"],
)
def test_o2_correction_is_null_when_undefined(hourly_of, mn, o2, o2_flag):
    rows = [value_row(mn, "2061", T0, "a21026", 100.0, field="Avg")]
    if o2 is not None:
        rows.append(value_row(mn, "2061", T0, "a19001", o2, field="Avg", flag=o2_flag))
    assert one(hourly_of(rows), pollutant="a21026")["value_zs"] is None


# --- water ------------------------------------------------------------------------------------


def test_water_flow_weighted_mean_and_load_hand_computed(hourly_of):
    p1, p2 = T0, T0 + timedelta(minutes=10)
    rows = [
        value_row("WAT", "2051", p1, "w00000", 6.0, field="Cou"),
        value_row("WAT", "2051", p2, "w00000", 18.0, field="Cou"),
        value_row("WAT", "2051", p1, "w01018", 10.0, field="Avg"),
        value_row("WAT", "2051", p2, "w01018", 30.0, field="Avg"),
    ]
    out = hourly_of(rows)
    cod = one(out, pollutant="w01018")
    # (10 × 6 + 30 × 18) / (6 + 18) = 25 mg/L, not the arithmetic 20
    assert cod["value"] == pytest.approx(25.0)
    # Σ C × D × 1e-3 = 600 × 1e-3 kg
    assert cod["discharge"] == pytest.approx(0.6)
    assert (cod["valid"], cod["valid_minutes"], cod["source_cn"]) == (True, 20, "2051")
    flow = one(out, pollutant="w00000")
    assert flow["discharge"] == pytest.approx(24.0)
    # 24 m3 over the 20 covered minutes = 20 L/s
    assert flow["value"] == pytest.approx(20.0)


def test_water_2011_slices_weighted_by_rtd_times_interval(hourly_of):
    # WAT300: 300 s interval, 10 min periods → 2 slices per period for full coverage.
    ts = minutes(2, step_s=300)
    rows = [
        value_row("WAT300", "2011", t, "w00000", q) for t, q in zip(ts, [10.0, 30.0], strict=True)
    ]
    rows += [
        value_row("WAT300", "2011", t, "w01018", c) for t, c in zip(ts, [40.0, 20.0], strict=True)
    ]
    out = hourly_of(rows)
    flow = one(out, pollutant="w00000")
    # slices: 10 L/s × 300 s = 3 m3 and 30 × 300 = 9 m3
    assert flow["discharge"] == pytest.approx(12.0)
    assert flow["valid"] is True
    cod = one(out, pollutant="w01018")
    assert cod["value"] == pytest.approx((40 * 3 + 20 * 9) / 12)
    assert cod["discharge"] == pytest.approx((40 * 3 + 20 * 9) / 1000)


def test_ph_is_arithmetic_without_load(hourly_of):
    p1, p2 = T0, T0 + timedelta(minutes=10)
    rows = [
        value_row("WAT", "2051", p1, "w00000", 1.0, field="Cou"),
        value_row("WAT", "2051", p2, "w00000", 3.0, field="Cou"),
        value_row("WAT", "2051", p1, "w01001", 6.0, field="Avg"),
        value_row("WAT", "2051", p2, "w01001", 8.0, field="Avg"),
    ]
    ph = one(hourly_of(rows), pollutant="w01001")
    assert (ph["value"], ph["discharge"], ph["valid"]) == (7.0, None, True)


def test_pollutant_without_flow_falls_back_to_arithmetic_and_is_not_valid(hourly_of):
    rows = [
        value_row("WAT", "2051", T0, "w01018", 10.0, field="Avg"),
        value_row("WAT", "2051", T0 + timedelta(minutes=10), "w01018", 30.0, field="Avg"),
    ]
    cod = one(hourly_of(rows), pollutant="w01018")
    assert (cod["value"], cod["discharge"], cod["valid"]) == (20.0, None, False)


def test_water_hour_needs_min_periods(hourly_of):
    rows = [
        value_row("WAT", "2051", T0, "w00000", 6.0, field="Cou"),
        value_row("WAT", "2051", T0, "w01018", 10.0, field="Avg"),
    ]
    strict = ValiditySettings(water_hour_min_periods=2)
    assert one(hourly_of(rows), pollutant="w01018")["valid"] is True
    assert one(hourly_of(rows, strict), pollutant="w01018")["valid"] is False


def test_unknown_stream_is_not_aggregated(hourly_of):
    assert hourly_of([value_row("NOBODY", "2061", T0, "a21026", 1.0, field="Avg")]).height == 0


def test_unknown_device_interval_is_inferred_from_its_timestamps(points, outlets, units, hourly_of):
    from transforms.readings import build_readings
    from zwy.contracts import VALUES, conform

    # 45 minutes at 30 s: the registry does not know the MN, the gaps say 30 s, so two
    # values make a valid minute (not 12).
    rows = [value_row("STRANGER", "2011", t, "a21026", 5.0) for t in minutes(90, step_s=30)]
    values = conform(pl.DataFrame(rows), VALUES).with_columns(st=pl.lit("31"))
    readings = build_readings(values, points, outlets, units, date(2024, 5, 1))
    row = one(hourly_of(readings), pollutant="a21026")
    assert (row["stream"], row["facility_id"], row["valid_minutes"], row["valid"]) == (
        "exhaust_gas",
        None,
        45,
        True,
    )
