from datetime import UTC, date, datetime

import polars as pl
import pytest
from transform_builders import BJ, DAY, T0, value_row

from transforms.readings import build_readings, local_dates
from zwy.contracts import READINGS, VALUES, conform


def test_build_readings_keeps_measurement_fields_joins_registry_and_units(make_readings):
    rows = [
        value_row("GAS60", "2011", T0, "a21026", 12.5),
        value_row("GAS60", "2011", T0, "a21026", None, field="SampleTime"),
        value_row("GAS60", "2011", T0, "a21026", 3.0, field="EFlag"),
        value_row("WAT", "2051", T0, "w01018", 20.0, field="Avg"),
        value_row("WAT", "2051", T0, "w01018", 0.5, field="Cou"),
    ]
    out = make_readings(rows)
    assert out.schema == READINGS
    assert out["field"].to_list() == ["Rtd", "Avg", "Cou"]
    assert out["facility_id"].to_list() == ["F1"] * 3
    assert out["outlet_id"].to_list() == ["F1-S1", "F1-W1", "F1-W1"]
    assert out["stream"].to_list() == ["exhaust_gas", "wastewater", "wastewater"]
    assert out["unit"].to_list() == ["mg/m3", "mg/L", "mg/L"]
    assert out["batch_day"].unique().to_list() == [DAY]


def test_local_dates_of_repeated_instants_equal_converting_each_row():
    # Many rows on few clock marks (the lookup path) across the Beijing midnight, a null,
    # and an instant of 1988, when China kept summer time (UTC+9).
    marks = [
        datetime(2024, 5, 1, 15, 59, 30, tzinfo=UTC),  # 23:59:30 Beijing, 1 May
        datetime(2024, 5, 1, 16, 0, tzinfo=UTC),  # 00:00 Beijing, 2 May
        datetime(1988, 6, 1, 15, 30, tzinfo=UTC),  # 00:30 of 2 June at UTC+9
        None,
    ]
    s = pl.Series("t", marks * 50, dtype=pl.Datetime("us", "UTC"))
    got = pl.select(local_dates(pl.lit(s))).to_series()
    assert got.to_list()[:4] == [date(2024, 5, 1), date(2024, 5, 2), date(1988, 6, 2), None]
    assert got.equals(s.dt.convert_time_zone("Asia/Shanghai").dt.date().alias(got.name))


def test_midnight_edges_utc_and_local_day(make_readings):
    late = datetime(2024, 5, 1, 23, 30, tzinfo=BJ)  # 15:30 UTC on 1 May
    early = datetime(2024, 5, 1, 0, 30, tzinfo=BJ)  # 16:30 UTC on 30 April
    out = make_readings(
        [
            value_row("GAS60", "2011", late, "a21026", 1.0),
            value_row("GAS60", "2011", early, "a21026", 2.0),
        ]
    )
    assert out["data_time_utc"].to_list() == [
        datetime(2024, 5, 1, 15, 30, tzinfo=UTC),
        datetime(2024, 4, 30, 16, 30, tzinfo=UTC),
    ]
    assert out["local_day"].to_list() == [date(2024, 5, 1), date(2024, 5, 1)]


@pytest.mark.parametrize(
    ("flag", "valid"),
    [("N", True), (None, True), ("T", False), ("S", False), ("D", False), ("F", False)],
)
def test_only_n_or_no_flag_is_valid(make_readings, flag, valid):
    out = make_readings([value_row("GAS60", "2011", T0, "a21026", 1.0, flag=flag)])
    assert out["valid"].to_list() == [valid]


def test_non_numeric_value_is_not_valid(make_readings):
    out = make_readings([value_row("GAS60", "2011", T0, "a21026", None)])
    assert out["valid"].to_list() == [False]


def test_unknown_mn_stream_from_st(points, outlets, units):
    rows = [
        value_row("UNKNOWN32", "2011", T0, "w01018", 1.0),
        value_row("UNKNOWN31", "2011", T0, "a21026", 1.0),
        value_row("UNKNOWN99", "2011", T0, "a21026", 1.0),
    ]
    values = conform(pl.DataFrame(rows), VALUES).with_columns(st=pl.Series(["32", "31", "99"]))
    out = build_readings(values, points, outlets, units, DAY)
    assert out["stream"].to_list() == ["wastewater", "exhaust_gas", None]
    assert out["facility_id"].to_list() == [None, None, None]


def test_unknown_mn_without_st_has_no_stream(make_readings):
    out = make_readings([value_row("NOBODY", "2011", T0, "a21026", 1.0)])
    assert out["stream"].to_list() == [None]
    assert out["unit"].to_list() == ["mg/m3"]


def test_duplicate_registry_rows_do_not_multiply_readings(points, outlets, units):
    doubled = pl.concat([points, points])
    values = conform(pl.DataFrame([value_row("GAS60", "2011", T0, "a21026", 1.0)]), VALUES)
    out = build_readings(values, doubled, pl.concat([outlets, outlets]), units, DAY)
    assert out.height == 1
