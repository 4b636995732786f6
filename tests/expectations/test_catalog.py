"""The control catalog, the limits table and the permit overrides, checked as data."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from expectations.controls import (
    BATCHES,
    CONTROL_COLUMNS,
    EFFECTIVE_LIMITS,
    comparable_limits,
    limits_in_force,
    load_controls,
    load_permit_limits,
    load_units,
    parse_controls,
    parse_permit_limits,
    resolve_limits,
    season_contains,
)
from expectations.errors import ControlCatalogError
from expectations.reference import load_limits, load_reference_o2
from zwy.hj212.codes import units as hj212_units

OUTLETS = pl.DataFrame(
    {
        "outlet_id": ["F1-WS1", "F1-DA1", "F2-WS1", "F3-WS1"],
        "facility_id": ["F1", "F1", "F2", "F3"],
        "outlet_type": ["wastewater_sewer", "stack", "wastewater_direct", "wastewater_direct"],
        "stream": ["wastewater", "exhaust_gas", "wastewater", "wastewater"],
        "standard": ["DB11/307-2013", "DB11/139-2015", "DB11/307-2013", "DB11/307-2013"],
        "table_class": ["Table 3", "new boilers", "Table 1 A", "Table 1 B"],
        "applies_to": ["process", "boiler_new", "process", "process"],
        "name": ["a", "b", "c", "d"],
    }
)


# --- controls.csv ----------------------------------------------------------------------


def test_control_ids_are_unique_and_every_field_is_filled():
    controls = load_controls()
    ids = [c.control_id for c in controls]
    assert len(ids) == len(set(ids))
    for c in controls:
        for name in CONTROL_COLUMNS:
            if name in ("note", "params", "outlet_types"):
                continue
            assert str(getattr(c, name)).strip(), (c.control_id, name)
        assert c.name_zh != c.name_en and c.description_zh != c.description_en
        assert any("\u4e00" <= ch <= "\u9fff" for ch in c.name_zh), c.control_id
        assert c.batch in BATCHES


def test_the_issue_asks_for_these_controls():
    rules = {c.control_id for c in load_controls()}
    assert {
        "ZWY-LIM-W-DAY",
        "ZWY-LIM-W-PH",
        "ZWY-LIM-G-HOUR",
        "ZWY-DQ-HOUR-CAPTURE",
        "ZWY-DQ-DAY-CAPTURE",
        "ZWY-DQ-NO-DATA",
        "ZWY-DQ-OFFLINE",
        "ZWY-DQ-FLATLINE",
        "ZWY-DQ-S-SHARE",
        "ZWY-DQ-PINNED",
        "ZWY-DQ-T-FLAG",
        "ZWY-DQ-UNKNOWN-MN",
        "ZWY-DQ-UNKNOWN-CODE",
    } <= rules


def test_policy_rules_say_policy_and_standards_name_a_clause():
    for c in load_controls():
        if c.basis == "policy":
            assert c.status == "policy" and c.legal_basis == "policy", c.control_id
        else:
            assert c.status in ("verified", "unverified"), c.control_id
            assert c.legal_basis[:2] in ("DB", "HJ", "GB"), c.control_id
            assert c.clause and c.source, c.control_id


def test_controls_on_o2_corrected_values_are_unverified_like_the_reference_o2():
    o2_unverified = (load_reference_o2()["status"] == "unverified").all()
    assert o2_unverified, "BRIEF §3.4: every reference O2 is still UNVERIFIED"
    for c in load_controls():
        if c.params.get("value_column") == "value_zs":
            assert c.status == "unverified", c.control_id
            assert "UNVERIFIED" in c.note


def test_limit_controls_say_how_to_match_limits():
    for c in load_controls():
        if c.is_limit:
            assert c.params["averaging_period"] in ("hour", "day")
            assert set(c.params["match_on"]) <= {
                "standard",
                "table_class",
                "outlet_type",
                "applies_to",
            }
            assert c.kind == "breach"
        else:
            assert c.kind == "dq"


def _controls_csv(rows: list[dict[str, str]]) -> str:
    base = {c: "x" for c in CONTROL_COLUMNS} | {
        "kind": "dq",
        "stream": "any",
        "rule": "max_value",
        "params": "{}",
        "batch": "daily",
        "severity": "low",
        "basis": "policy",
        "status": "policy",
        "legal_basis": "policy",
    }
    lines = [",".join(CONTROL_COLUMNS)]
    for r in rows:
        merged = base | r
        lines.append(",".join(f'"{merged[c]}"' for c in CONTROL_COLUMNS))
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"control_id": "A"}, {"control_id": "A"}], "duplicate control_id A"),
        ([{"control_id": "A", "severity": "urgent"}], "severity 'urgent'"),
        ([{"control_id": "A", "status": "verified"}], "policy rule has status"),
        ([{"control_id": "A", "params": "[1]"}], "JSON object"),
        ([{"control_id": "A", "params": "{oops"}], "not JSON"),
        ([{"control_id": "A", "name_en": ""}], "name_en is empty"),
        ([{"control_id": "A", "kind": "breach"}], "breach controls are exactly the limit rules"),
    ],
)
def test_a_broken_control_catalog_is_refused_with_its_line(rows, message):
    with pytest.raises(ControlCatalogError, match=message):
        parse_controls(_controls_csv(rows), "controls.csv")


def test_a_control_catalog_without_a_column_is_refused():
    text = _controls_csv([{"control_id": "A"}]).replace("severity,", "sev,", 1)
    with pytest.raises(ControlCatalogError, match="missing columns"):
        parse_controls(text)


# --- limits.csv ------------------------------------------------------------------------


def test_every_limit_has_an_id_a_source_and_a_status():
    limits = load_limits()
    assert limits["limit_id"].n_unique() == limits.height
    assert limits["source"].null_count() == 0 and (limits["source"].str.len_chars() > 10).all()
    assert set(limits["status"]) <= {"verified", "unverified"}
    assert (limits["limit_low"].is_not_null() | limits["limit_high"].is_not_null()).all()
    both = limits.filter(pl.col("limit_low").is_not_null() & pl.col("limit_high").is_not_null())
    assert (both["limit_low"] < both["limit_high"]).all()


def test_limit_units_are_consistent_with_the_hj212_code_table():
    limits = load_limits()
    code_units = hj212_units()
    units = load_units()
    known = {
        (r["limit_unit"], r["code_unit"]): r["comparable"] for r in units.iter_rows(named=True)
    }
    # one unit per pollutant across the whole table
    per_pollutant = limits.group_by("pollutant_name").agg(pl.col("unit").n_unique())
    assert (per_pollutant["unit"] == 1).all(), per_pollutant
    for row in limits.filter(pl.col("pollutant").is_not_null()).iter_rows(named=True):
        code_unit = code_units.get(row["pollutant"])
        assert code_unit, f"{row['limit_id']}: {row['pollutant']} has no unit in the code table"
        assert (row["unit"], code_unit) in known, (
            f"{row['limit_id']}: limit unit {row['unit']!r} vs code unit {code_unit!r} is not "
            "in expectations/catalog/units.csv"
        )


def test_non_comparable_units_are_never_applied():
    usable = comparable_limits(load_limits(), hj212_units())
    assert "DB11-307-2013-T3-色度" not in usable["limit_id"].to_list()
    assert "DB11-307-2013-T3-COD_Cr" in usable["limit_id"].to_list()
    # Rows without an HJ 212 code (动植物油, 总余氯) cannot match any data either.
    assert usable["pollutant"].null_count() == 0


def test_validity_periods_never_overlap():
    limits = load_limits().with_columns(
        pl.col("valid_to").fill_null(date(9999, 12, 31)), pl.col("season").fill_null("")
    )
    key = ["standard", "table_class", "outlet_type", "pollutant_name", "averaging_period", "season"]
    for _, group in limits.group_by(key):
        rows = group.sort("valid_from").rows(named=True)
        for a, b in zip(rows, rows[1:], strict=False):
            assert a["valid_to"] < b["valid_from"], (a["limit_id"], b["limit_id"])


def test_reference_o2_rows_carry_their_unverified_status():
    ref = load_reference_o2()
    assert set(ref["status"]) == {"unverified"}
    assert ref.select("standard", "applies_to").is_duplicated().sum() == 0


def test_season_wraps_the_year_end():
    assert season_contains("12-01..03-31", date(2024, 12, 1))
    assert season_contains("12-01..03-31", date(2025, 3, 31))
    assert not season_contains("12-01..03-31", date(2025, 4, 1))
    assert not season_contains("12-01..03-31", date(2024, 11, 30))
    assert season_contains("", date(2024, 6, 1))


def test_winter_limit_replaces_the_normal_one_in_winter_only():
    def nh3(day: date) -> list[str]:
        rows = limits_in_force(load_limits(), day).filter(
            (pl.col("pollutant") == "w21003") & (pl.col("table_class") == "Table 1 A")
        )
        return rows["limit_id"].to_list()

    assert nh3(date(2024, 1, 15)) == ["DB11-307-2013-T1A-NH3-N-winter"]
    assert nh3(date(2024, 6, 15)) == ["DB11-307-2013-T1A-NH3-N"]


def test_nox_limit_follows_the_dates_of_the_limits_rows():
    def nox(day: date) -> tuple[str, float]:
        eff = resolve_limits(day, OUTLETS).filter(pl.col("outlet_id") == "F1-DA1")
        return eff["limit_id"].item(), eff["limit_high"].item()

    assert nox(date(2017, 3, 31)) == ("DB11-139-2015-NOx-new-2015", 80.0)
    assert nox(date(2017, 4, 1)) == ("DB11-139-2015-NOx-new-2017", 30.0)
    assert (
        resolve_limits(date(2015, 6, 30), OUTLETS).filter(pl.col("outlet_id") == "F1-DA1").height
        == 0
    )


def test_resolved_limits_match_outlet_class_and_mark_the_o2_reference():
    eff = resolve_limits(date(2024, 5, 1), OUTLETS)
    assert eff.schema == EFFECTIVE_LIMITS
    cod = {
        r["outlet_id"]: r["limit_high"]
        for r in eff.filter(pl.col("pollutant") == "w01018").iter_rows(named=True)
    }
    assert cod == {"F1-WS1": 500.0, "F2-WS1": 20.0, "F3-WS1": 30.0}
    ph = eff.filter(
        (pl.col("control_id") == "ZWY-LIM-W-PH") & (pl.col("outlet_id") == "F2-WS1")
    ).row(0, named=True)
    assert (ph["limit_low"], ph["limit_high"]) == (6.5, 8.5)
    nox = eff.filter(pl.col("outlet_id") == "F1-DA1").row(0, named=True)
    assert nox["value_column"] == "value_zs" and nox["reference_o2"] == 3.5
    assert nox["status"] == "unverified" and nox["o2_status"] == "unverified"
    assert eff.filter(pl.col("outlet_id") != "F1-DA1")["status"].unique().to_list() == ["verified"]


# --- registry/permit_limits.csv ---------------------------------------------------------

PERMIT_HEADER = (
    "facility_id,outlet_id,pollutant,averaging_period,limit_low,limit_high,unit,valid_from,"
    "valid_to,permit_no,clause,source,status,note\n"
)


def test_no_permit_file_means_no_permit_limits(tmp_path):
    assert load_permit_limits(tmp_path).height == 0


def test_a_stricter_permit_limit_overrides_and_a_looser_one_is_ignored(tmp_path):
    (tmp_path / "permit_limits.csv").write_text(
        PERMIT_HEADER
        + "F1,,w01018,day,,300,mg/L,2024-01-01,,91110000TEST001P,§3,permit scan,verified,\n"
        + "F1,F1-WS1,w21003,day,,60,mg/L,2024-01-01,,91110000TEST001P,§3,permit scan,verified,looser\n"
        + "F1,,a21002,hour,,20,mg/m3,2024-01-01,2024-04-30,91110000TEST001P,§4,permit scan,unverified,expired\n",
        encoding="utf-8",
    )
    permits = load_permit_limits(tmp_path)
    eff = resolve_limits(date(2024, 5, 1), OUTLETS, permits=permits).filter(
        pl.col("outlet_id") == "F1-WS1"
    )
    cod = eff.filter(pl.col("pollutant") == "w01018").row(0, named=True)
    assert cod["limit_id"] == "PERMIT-91110000TEST001P-F1-WS1-w01018-day"
    assert cod["limit_high"] == 300.0
    assert cod["standard_limit_id"] == "DB11-307-2013-T3-COD_Cr"
    assert "stricter than DB11/307-2013 Table 3" in cod["legal_basis"]
    nh3 = eff.filter(pl.col("pollutant") == "w21003").row(0, named=True)
    assert (nh3["limit_id"], nh3["limit_high"]) == ("DB11-307-2013-T3-NH3-N", 45.0)
    nox_may = resolve_limits(date(2024, 5, 1), OUTLETS, permits=permits).filter(
        pl.col("outlet_id") == "F1-DA1"
    )
    assert nox_may["limit_high"].item() == 30.0
    nox_april = resolve_limits(date(2024, 4, 1), OUTLETS, permits=permits).filter(
        pl.col("outlet_id") == "F1-DA1"
    )
    assert nox_april["limit_high"].item() == 20.0
    assert nox_april["status"].item() == "unverified"


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("F1,,w01018,day,,300,mg/L,2024-01-01,,,§3,scan,verified,", "permit_no is empty"),
        ("F1,,w01018,day,,300,mg/L,2024-01-01,,P1,§3,scan,checked,", "status 'checked'"),
        ("F1,,w01018,week,,300,mg/L,2024-01-01,,P1,§3,scan,verified,", "hour or day"),
        ("F1,,w01018,day,,,mg/L,2024-01-01,,P1,§3,scan,verified,", "limit_low or limit_high"),
        ("F1,,w01018,day,,lots,mg/L,2024-01-01,,P1,§3,scan,verified,", "does not parse"),
    ],
)
def test_a_broken_permit_row_is_refused(tmp_path, row, message):
    (tmp_path / "permit_limits.csv").write_text(PERMIT_HEADER + row + "\n", encoding="utf-8")
    with pytest.raises(ControlCatalogError, match=message):
        load_permit_limits(tmp_path)


def test_permit_parser_needs_its_columns():
    with pytest.raises(ControlCatalogError, match="missing columns"):
        parse_permit_limits(pl.DataFrame({"facility_id": ["F1"]}))
