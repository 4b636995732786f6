from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest

from zwy.contracts import FACILITIES, MONITORING_POINTS, OUTLETS
from zwy.sample.district import build_district, load_catalog, uscc_check
from zwy.sample.generate import Planted

_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_W = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]


def _uscc_ok(code: str) -> bool:
    # GB 32100-2015 check digit, implemented independently of zwy.sample.district
    if len(code) != 18 or any(c not in _CHARS for c in code):
        return False
    total = sum(_CHARS.index(c) * w for c, w in zip(code[:17], _W, strict=True))
    return _CHARS[(31 - total % 31) % 31] == code[17]


def _org_ok(org: str) -> bool:
    # GB 11714-1997 organisation code check (characters 9-17 of the USCC)
    total = sum(int(c) * w for c, w in zip(org[:8], [3, 7, 9, 10, 5, 8, 4, 2], strict=True))
    check = 11 - total % 11
    return org[8] == ("X" if check == 10 else "0" if check == 11 else str(check))


@pytest.mark.parametrize(
    ("name", "schema"),
    [("facilities", FACILITIES), ("outlets", OUTLETS), ("monitoring_points", MONITORING_POINTS)],
)
def test_registry_columns_match_contracts(
    run: tuple[Path, Planted], name: str, schema: pl.Schema
) -> None:
    out, _ = run
    path = out / "registry" / f"{name}.csv"
    frame = pl.read_csv(path, schema=schema)
    assert pl.read_csv(path, infer_schema=False).columns == list(schema.names())
    assert frame.height > 0
    assert frame.null_count().sum_horizontal().item() == 0


def test_registry_content(run: tuple[Path, Planted]) -> None:
    out, _ = run
    fac = pl.read_csv(out / "registry" / "facilities.csv", schema=FACILITIES)
    outl = pl.read_csv(out / "registry" / "outlets.csv", schema=OUTLETS)
    pts = pl.read_csv(out / "registry" / "monitoring_points.csv", schema=MONITORING_POINTS)
    assert fac["facility_id"].to_list() == [f"F{i:04d}" for i in range(1, fac.height + 1)]
    for row in fac.iter_rows(named=True):
        assert row["name"].startswith("北京") and row["name"].endswith("有限公司")
        assert row["uscc"].startswith("911103") and _uscc_ok(row["uscc"]), row["uscc"]
        assert _org_ok(row["uscc"][8:17])
        assert row["ehs_email"] == f"ehs@{row['facility_id'].lower()}.example.org"
    assert fac["name"].n_unique() == fac.height
    for row in outl.iter_rows(named=True):
        assert re.fullmatch(r"F\d{4}-(WS|DA)\d", row["outlet_id"])
        assert row["outlet_id"].startswith(row["facility_id"])
        kind = (row["outlet_type"], row["standard"], row["table_class"])
        assert kind in {
            ("wastewater_sewer", "DB11/307-2013", "Table 3"),
            ("wastewater_direct", "DB11/307-2013", "Table 1 B"),
            ("stack", "DB11/139-2015", "new boilers"),
            ("stack", "DB11/139-2015", "in-use boilers, high-polluting-fuel ban zone"),
        }
        if row["outlet_type"] == "stack":
            assert row["applies_to"] in {"boiler_new", "boiler_in_use_ban_zone"}
    assert set(pts["outlet_id"]) == set(outl["outlet_id"])
    assert pts["mn"].n_unique() == pts.height
    for mn in pts["mn"]:
        assert re.fullmatch(r"\d{14}|[0-9A-F]{24}", mn)
    assert set(pts["protocol"]) <= {"2017", "2005"}
    assert set(pts["crc_policy"]) <= {"tolerant", "strict"}
    assert set(pts["rtd_interval_s"]) <= {30, 60}
    assert set(pts["min_interval_min"]) == {10}
    assert set(pts["delivery"]) == {"hj212", "platform_export"}


def test_demo_registry_variety() -> None:
    d = build_district("demo", 212)
    assert len(d.facilities) == 8 and len(d.devices) == 16
    assert {x.protocol for x in d.devices} == {"2017", "2005"}
    assert {x.crc_policy for x in d.devices} == {"tolerant", "strict"}
    assert {x.crc_variant for x in d.devices} == {"appendix_a", "modbus", "modbus_swapped"}
    assert {x.outlet.outlet_type for x in d.devices} == {
        "wastewater_sewer",
        "wastewater_direct",
        "stack",
    }
    assert {x.prefix_style for x in d.devices} == {"plain", "bracket", "stamp_line"}
    assert {x.line_ending for x in d.devices} == {"\r\n", "\n"}
    assert any(x.hex_lower for x in d.devices)
    assert {x.packet_flag for x in d.devices} == {4, 5}
    assert sum(x.delivery == "platform_export" for x in d.devices) == 3
    # strict devices sign with Appendix A, so no frame of theirs fails the CRC policy
    assert all(
        x.crc_variant == "appendix_a" and not x.hex_lower
        for x in d.devices
        if x.crc_policy == "strict"
    )


def test_benchmark_registry_size() -> None:
    d = build_district("benchmark", 212)
    assert len(d.devices) == 2000
    assert sum(x.stream == "wastewater" for x in d.devices) == 1600
    assert sum(x.stream == "exhaust_gas" for x in d.devices) == 400
    assert len({x.mn for x in d.devices}) == 2000
    assert len({f.name for f in d.facilities}) == len(d.facilities)
    assert all(uscc_check(f.uscc[:17]) == f.uscc[17] for f in d.facilities)


def test_unknown_scale() -> None:
    with pytest.raises(ValueError, match="unknown scale"):
        build_district("huge", 1)


def test_catalog_limits_used() -> None:
    from datetime import date

    cat = load_catalog()
    d = build_district("demo", 212)
    direct = next(x for x in d.devices if x.outlet.outlet_type == "wastewater_direct")
    winter = cat.limit_for(direct.outlet, "w21003", date(2024, 1, 15))
    summer = cat.limit_for(direct.outlet, "w21003", date(2024, 6, 15))
    assert winter is not None and winter.limit_high == 2.5
    assert summer is not None and summer.limit_high == 1.5
    boiler = next(x for x in d.devices if x.outlet.applies_to == "boiler_new")
    old = cat.limit_for(boiler.outlet, "a21002", date(2016, 6, 1))
    new = cat.limit_for(boiler.outlet, "a21002", date(2024, 6, 1))
    assert old is not None and old.limit_high == 80
    assert new is not None and new.limit_high == 30
    assert cat.o2_ref(boiler.outlet) == 3.5
