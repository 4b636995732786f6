"""Ledger and manifest readers on small files the tests write themselves."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from zwy.errors import InputFileError
from zwy.sample.waste import ledger_workbook
from zwy.waste.read import parse_day, read_waste_file

ROWS = [
    ["900-249-08", "废矿物油", "危险废物", 1.0, 2.0, 0.0, 2.5, 0.0, 0.5, "2024-03-02"],
    ["", "废包装纸箱", "一般工业固体废物", 3.0, 10.0, 9.0, 1.0, 0.0, 3.0, ""],
    ["900-041-49", "废弃包装物", "危废", 0.2, "0.3", 0.0, 0.1, 0.0, 0.4, "45352"],
]


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def test_ledger_with_merged_headers_unit_row_and_totals(tmp_path):
    path = write(
        tmp_path,
        "ledger_F0009_202404.xlsx",
        ledger_workbook("F0009", "测试企业", date(2024, 4, 1), ROWS),
    )
    r = read_waste_file(path, "in/ledger.xlsx")
    assert r.quarantine.is_empty()
    assert r.ledger.height == 3 and r.rows_found == 3
    first = r.ledger.row(0, named=True)
    assert first["facility_id"] == "F0009" and first["period_month"] == date(2024, 4, 1)
    assert (
        first["sheet"] == "台账" and first["row"] == 6
    )  # title, facility, 2 header rows, unit row
    assert (first["opening_t"], first["transferred_t"], first["closing_t"]) == (1.0, 2.5, 0.5)
    assert r.ledger["waste_class"].to_list() == ["hazardous", "general", "hazardous"]
    assert r.ledger["waste_code"].to_list() == ["900-249-08", None, "900-041-49"]
    # An Excel serial day (45352) is 2024-03-01; the totals row and header rows are "other".
    assert r.ledger["storage_start"].to_list()[2] == date(2024, 3, 1)
    assert r.other_rows == 6 and r.lines_total == 9


def test_an_empty_extra_sheet_does_not_make_the_workbook_unreadable(tmp_path):
    from io import BytesIO

    from openpyxl import load_workbook

    data = ledger_workbook("F0009", "测试企业", date(2024, 4, 1), ROWS)
    wb = load_workbook(BytesIO(data))
    wb.create_sheet("备注")  # a blank sheet, as people add them
    path = tmp_path / "ledger_F0009_202404.xlsx"
    wb.save(path)
    r = read_waste_file(path, "in/ledger.xlsx")
    assert r.ledger.height == 3 and r.quarantine.is_empty()
    assert r.lines_total == 9  # the blank sheet has no rows


def test_kilograms_are_converted_to_tonnes(tmp_path):
    path = write(
        tmp_path,
        "ledger_F0009_202404.xlsx",
        ledger_workbook("F0009", "测试企业", date(2024, 4, 1), ROWS[:1], unit="千克"),
    )
    row = read_waste_file(path, "x").ledger.row(0, named=True)
    assert row["generated_t"] == pytest.approx(2.0) and row["unit_as_sent"] == "千克"


def test_bad_rows_are_quarantined_with_sheet_row_and_reason(tmp_path):
    bad = [
        ["900-249-08", "废矿物油", "危险废物", 1.0, "约2", 0.0, 0.0, 0.0, 1.0, ""],
        ["900-249-08", "废矿物油", "危险废物", 1.0, 1.0, 0.0, 0.0, 0.0, 2.0, "上个月"],
        ["900-249-08", "废矿物油", "不知道", 1.0, 1.0, 0.0, 0.0, 0.0, 2.0, ""],
        ["", "", "", 1.0, 1.0, 0.0, 0.0, 0.0, 2.0, ""],
        ["900-249-08", "废矿物油", "危险废物", -1.0, 1.0, 0.0, 0.0, 0.0, 0.0, ""],
    ]
    path = write(
        tmp_path,
        "ledger_F0009_202404.xlsx",
        ledger_workbook("F0009", "测试企业", date(2024, 4, 1), bad),
    )
    r = read_waste_file(path, "in/l.xlsx")
    assert r.ledger.is_empty()
    q = r.quarantine.sort("line")
    assert q["line"].to_list() == [6, 7, 8, 9, 10]
    assert q["rule"].to_list() == ["number", "date", "class", "missing", "number"]
    assert q["sheet"].to_list() == ["台账"] * 5
    assert q["reason"][0].startswith("sheet 台账 row 6: 本月产生量 '约2' is not a number")
    assert "约2" in q["raw"][0]
    assert r.rows_found == 5


def test_a_workbook_without_a_ledger_is_one_quarantined_record(tmp_path):
    from zwy.sample.waste import broken_workbook

    path = write(tmp_path, "ledger_F0009_202404_draft.xlsx", broken_workbook("F0009"))
    r = read_waste_file(path, "in/draft.xlsx")
    assert r.rows_found == 1 and r.quarantine["rule"].to_list() == ["workbook"]
    assert "Sheet1" in r.quarantine["sheet"][0] and "废物代码" in r.quarantine["reason"][0]


def test_ledger_without_facility_or_month_is_a_layout_error(tmp_path):
    data = ledger_workbook("F0009", "测试企业", date(2024, 4, 1), ROWS)
    # Renamed and without the facility row: the reader cannot tell whose ledger it is.
    from io import BytesIO

    from openpyxl import load_workbook

    wb = load_workbook(BytesIO(data))
    ws = wb.active
    for col in range(1, 11):
        ws.cell(2, col).value = None
    out = BytesIO()
    wb.save(out)
    path = write(tmp_path, "april.xlsx", out.getvalue())
    r = read_waste_file(path, "in/april.xlsx")
    assert r.ledger.is_empty() and r.quarantine["rule"].to_list() == ["layout"]
    assert "企业编号" in r.quarantine["reason"][0]


MANIFEST = (
    "联单编号,移出单位编号,移出单位,接受单位,接受单位许可证编号,废物代码,废物名称,转移量(吨),接收量(吨),转移日期,接收确认日期\r\n"
    "20241101000001,F0009,测试企业,处置厂,京危许001,900-249-08,废矿物油,1.5,1.5,2024-04-30,2024-05-01\r\n"
    "20241101000002,F0009,测试企业,处置厂,京危许001,900-249-08,废矿物油,2,,2024/4/29,\r\n"
    "2024110100003,F0009,测试企业,处置厂,京危许001,900-249-08,废矿物油,2,2,2024-04-29,\r\n"
    "20241101000004,F0009,测试企业,处置厂,京危许001,900-249-08,废矿物油,两吨,2,2024-04-29,\r\n"
)


@pytest.mark.parametrize("encoding", ["gb18030", "utf-8-sig"])
def test_manifest_csv_in_either_encoding(tmp_path, encoding):
    path = write(tmp_path, "manifests.csv", MANIFEST.encode(encoding))
    r = read_waste_file(path, "in/m.csv")
    assert r.manifests["manifest_no"].to_list() == ["20241101000001", "20241101000002"]
    assert r.manifests["confirmed_date"].to_list() == [date(2024, 5, 1), None]
    assert r.manifests["received_t"].to_list() == [1.5, None]
    assert r.manifests["ship_date"].to_list() == [date(2024, 4, 30), date(2024, 4, 29)]
    q = r.quarantine.sort("line")
    assert q["line"].to_list() == [4, 5] and q["rule"].to_list() == ["manifest_no", "number"]
    assert "not 14 digits" in q["reason"][0] and q["sheet"].to_list() == [None, None]
    assert r.rows_found == 4 and r.lines_total == 5


def test_a_csv_that_is_not_a_manifest_export(tmp_path):
    path = write(tmp_path, "other.csv", b"a,b\n1,2\n")
    r = read_waste_file(path, "in/other.csv")
    assert r.rows_found == 1 and r.quarantine["rule"].to_list() == ["layout"]


def test_unreadable_workbook_raises_an_input_error(tmp_path):
    path = write(tmp_path, "ledger.xlsx", b"PK\x03\x04 not really a zip")
    with pytest.raises(InputFileError, match="not a readable Excel workbook"):
        read_waste_file(path, "in/ledger.xlsx")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-04-01", date(2024, 4, 1)),
        ("2024/4/1", date(2024, 4, 1)),
        ("2024年4月1日", date(2024, 4, 1)),
        ("2024-04-01 00:00:00", date(2024, 4, 1)),
        ("45383", date(2024, 4, 1)),
        (None, None),
    ],
)
def test_parse_day(text, expected):
    assert parse_day(text) == expected


def test_manifests_as_an_excel_sheet(tmp_path):
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "联单"
    for row in MANIFEST.strip().split("\r\n"):
        ws.append(row.split(","))
    path = tmp_path / "manifests.xlsx"
    wb.save(path)
    r = read_waste_file(path, "in/m.xlsx")
    assert r.manifests["manifest_no"].to_list() == ["20241101000001", "20241101000002"]
    assert set(r.manifests["sheet"]) == {"联单"}
    assert r.quarantine.sort("line")["line"].to_list() == [4, 5]
    assert r.quarantine["reason"][0].startswith("sheet 联单 row")
