"""zwy.hj212.codes and the derived reference table."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from zwy.hj212 import codes
from zwy.reference import derive_codes

SHARED_CODES = Path(__file__).parents[2] / ".." / "shared" / "domain" / "hj212_pollutant_codes.csv"


def test_code_table_columns_and_source() -> None:
    df = codes.code_table()
    assert df.columns == [
        "code_2017", "name_zh", "code_2005", "unit", "discharge_unit", "data_type", "unit_note",
        "source",
    ]  # fmt: skip
    assert df.height > 300
    assert df["source"].unique().to_list() == [derive_codes.SOURCE]


def test_2005_map_and_units() -> None:
    m = codes.map_2005_to_2017()
    assert (m["B01"], m["011"], m["060"], m["001"], m["B02"], m["S01"], m["02"]) == (
        "w00000", "w01018", "w21003", "w01001", "a00000", "a19001", "a21026",
    )  # fmt: skip
    u = codes.units()
    assert (u["w00000"], u["w01018"], u["a00000"], u["a01012"], u["w01001"]) == (
        "L/s", "mg/L", "m3/s", "°C", "pH",
    )  # fmt: skip
    assert (u["a01013"], u["a01011"], u["a19001"], u["a21026"]) == ("kPa", "m/s", "%", "mg/m3")
    for dust in ("a34001", "a34002", "a34004"):
        assert u[dust] == "ug/m3"
    assert codes.discharge_units()["w01018"] == "kg"
    assert codes.discharge_units()["w00000"] == "m3"


def test_classify_code() -> None:
    assert codes.classify_code("w01018") == ("w01018", "hj212_2017")
    assert codes.classify_code("011") == ("w01018", "mapped_2005")
    assert codes.classify_code("a99948") == ("a99948", "vendor")
    assert codes.classify_code("831") == ("831", "vendor")
    assert codes.classify_code("e70101") == ("e70101", "hj212_2017")  # pattern e701xx
    assert codes.classify_code("e701AB") == ("e701AB", "vendor")


def test_code_sets() -> None:
    assert {"21", "31", "32", "39", "91"} <= codes.ST_KNOWN and "101" not in codes.ST_KNOWN
    assert {"2011", "2051", "2061", "2031", "9014"} <= codes.CN_KNOWN
    assert {
        "1001",
        "1021",
        "1022",
        "1031",
        "1032",
        "1041",
        "1042",
        "2071",
        "2072",
    } <= codes.CN_KNOWN
    # 2025 CNs are recorded but not accepted (1001 is known, as a 2005 CN).
    assert codes.CN_HJ212_2025_UNVERIFIED & codes.CN_KNOWN == {"1001"}
    assert {"Rtd", "Avg", "ZsRtd", "Flag", "SampleTime"} <= codes.TABLE4_SUFFIXES
    assert "ZsCou" not in codes.TABLE4_SUFFIXES


@pytest.mark.skipif(not SHARED_CODES.exists(), reason=f"{SHARED_CODES} absent")
def test_derivation_reproduces_packaged_csv(tmp_path: Path) -> None:
    out = tmp_path / "codes.csv"
    assert derive_codes.main([str(SHARED_CODES), "--out", str(out)]) == 0
    packaged = Path(derive_codes.__file__).with_name("hj212_codes.csv")
    assert out.read_text("utf-8") == packaged.read_text("utf-8")


def test_derive_rejects_unknown_unit() -> None:
    row = {
        "ID": "w1",
        "NAME": "n",
        "原编码（HJ2005)": "",
        "单位": "斤",
        "排放量": "",
        "数据类型": "N1",
    }
    with pytest.raises(ValueError, match="unknown unit text '斤'"):
        derive_codes.derive([row])


def test_packaged_csv_is_plain_utf8() -> None:
    packaged = Path(derive_codes.__file__).with_name("hj212_codes.csv")
    with packaged.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert all(r["code_2017"] for r in rows)
