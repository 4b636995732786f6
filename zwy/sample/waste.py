"""Solid-waste sample data: monthly ledgers (Excel) and daily transfer-manifest exports (CSV).

Ledgers (台账) are written as real ones look: a title row merged across the sheet, a
facility row, a two-level header with merged cells (本月去向 over 自行利用 / 委外转移 /
自行处置), a unit row (吨, or 千克 in one workbook), the data rows and a 合计 totals row.
Manifests (转移联单) come as the national system's daily CSV export, GB18030 with Chinese
headers. Receivers (licensed operators with the HW categories they may accept) go into the
registry's ``receivers.csv``.

Hazardous-waste codes are real codes of the 2021 National List common in an electronics,
automotive and biopharma park (shared/domain/BRIEF.md §5.1). General industrial solid
waste carries no code: the SW codes are UNVERIFIED (BRIEF §5.2), so none is invented.

What the controls must find is planted (test and demo scales) and returned in the
``solid_waste`` section of ``planted.json``.
"""

from __future__ import annotations

import csv
import io
import random
import re
import zipfile
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from zwy.sample.district import District

#: Hazardous wastes of the sample facilities: code, name (2021 list), unit price of nothing.
HW_WASTES: tuple[tuple[str, str], ...] = (
    ("900-041-49", "废弃包装物、容器、过滤吸附介质"),
    ("900-039-49", "废活性炭"),
    ("900-249-08", "废矿物油"),
    ("336-064-17", "表面处理废液及污泥"),
    ("900-252-12", "废油漆、涂料"),
)
#: General industrial solid waste (一般工业固体废物): names only, no invented codes.
SW_WASTES: tuple[str, ...] = ("废金属边角料", "废包装纸箱", "废塑料")

LEDGER_COLUMNS: tuple[tuple[str, str | None], ...] = (
    # (level-1 header, level-2 header or None when the level-1 cell is merged down)
    ("废物代码", None),
    ("废物名称", None),
    ("废物类别", None),
    ("期初库存", None),
    ("本月产生量", None),
    ("本月去向", "自行利用"),
    ("本月去向", "委外转移"),
    ("本月去向", "自行处置"),
    ("期末库存", None),
    ("贮存起始日期", None),
)
MANIFEST_HEADER: tuple[str, ...] = (
    "联单编号",
    "移出单位编号",
    "移出单位",
    "接受单位",
    "接受单位许可证编号",
    "废物代码",
    "废物名称",
    "转移量(吨)",
    "接收量(吨)",
    "转移日期",
    "接收确认日期",
)


@dataclass(frozen=True)
class Receiver:
    """A licensed hazardous-waste operator (fictional)."""

    receiver_id: str
    name: str
    licence_no: str
    categories: tuple[str, ...]
    valid_to: date


RECEIVERS: tuple[Receiver, ...] = (
    Receiver(
        "R001",
        "北京亦清环保处置有限公司",
        "京危许001",
        ("HW08", "HW12", "HW17", "HW49"),
        date(2027, 12, 31),
    ),
    Receiver("R002", "北京润泽再生资源有限公司", "京危许002", ("HW08",), date(2026, 6, 30)),
)


@dataclass
class WasteDay:
    """Files and truth of one day's solid-waste inputs."""

    files: dict[str, bytes] = field(default_factory=dict)  # path relative to the inbox
    totals: dict[str, dict[str, int]] = field(default_factory=dict)
    planted: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def plant(self, key: str, item: dict[str, Any]) -> None:
        """Record one planted item under ``key``."""
        self.planted.setdefault(key, []).append(item)


def receivers_csv() -> bytes:
    """Return ``receivers.csv`` (receiver_id, name, licence_no, licensed_categories, valid_to)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["receiver_id", "name", "licence_no", "licensed_categories", "licence_valid_to"])
    for r in RECEIVERS:
        w.writerow([r.receiver_id, r.name, r.licence_no, "|".join(r.categories), r.valid_to])
    return buf.getvalue().encode("utf-8")


def deterministic_xlsx(wb: Any) -> bytes:
    """Save an openpyxl workbook with fixed timestamps, so the same data gives the same bytes."""
    raw = io.BytesIO()
    wb.save(raw)
    out = io.BytesIO()
    stamp = "2024-01-01T00:00:00Z"
    with zipfile.ZipFile(raw) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in sorted(src.infolist(), key=lambda i: i.filename):
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                data = re.sub(
                    rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*(</dcterms:)",
                    rb"\g<1>" + stamp.encode() + rb"\g<2>",
                    data,
                )
            fixed = zipfile.ZipInfo(info.filename, date_time=(2024, 1, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(fixed, data)
    return out.getvalue()


def _t(x: float) -> float:
    return round(x, 3)


def ledger_rows(rng: random.Random, month_end: date, n_hw: int, n_sw: int) -> list[list[Any]]:
    """Return balanced ledger rows.

    Each row: code, name, category, opening, generated, utilised, transferred, disposed,
    closing (tonnes), storage start (ISO date or empty).
    """
    rows: list[list[Any]] = []
    for code, name in rng.sample(HW_WASTES, n_hw):
        opening = _t(rng.uniform(0.2, 3.0))
        generated = _t(rng.uniform(0.5, 5.0))
        transferred = _t(min(opening + generated, rng.uniform(0.3, 4.0)))
        closing = _t(opening + generated - transferred)
        start = month_end - timedelta(days=rng.randint(20, 200)) if closing > 0 else None
        rows.append(
            [
                code,
                name,
                "危险废物",
                opening,
                generated,
                0.0,
                transferred,
                0.0,
                closing,
                start.isoformat() if start else "",
            ]
        )
    for name in rng.sample(SW_WASTES, n_sw):
        opening = _t(rng.uniform(1.0, 10.0))
        generated = _t(rng.uniform(10.0, 60.0))
        utilised = _t(generated * rng.uniform(0.97, 0.995))
        transferred = _t(min(opening, rng.uniform(0.5, 2.0)))
        closing = _t(opening + generated - utilised - transferred)
        rows.append(
            [
                "",
                name,
                "一般工业固体废物",
                opening,
                generated,
                utilised,
                transferred,
                0.0,
                closing,
                "",
            ]
        )
    return rows


def ledger_workbook(
    facility_id: str, facility_name: str, month: date, rows: list[list[Any]], unit: str = "吨"
) -> bytes:
    """Write one monthly ledger as an .xlsx with merged headers, a unit row and a totals row."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "台账"
    ncol = len(LEDGER_COLUMNS)
    ws.cell(1, 1, f"危险废物及一般工业固体废物管理台账（{month.year}年{month.month}月）")
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=ncol)
    ws.cell(2, 1, f"企业编号：{facility_id}")
    ws.cell(2, 4, f"企业名称：{facility_name}")
    ws.cell(2, 8, f"统计期：{month:%Y-%m}")
    c = 1
    while c <= ncol:
        top, sub = LEDGER_COLUMNS[c - 1]
        if sub is None:
            ws.cell(3, c, top)
            ws.merge_cells(start_row=3, start_column=c, end_row=4, end_column=c)
            c += 1
            continue
        span = [i for i, (t, _) in enumerate(LEDGER_COLUMNS, start=1) if t == top]
        ws.cell(3, span[0], top)
        ws.merge_cells(start_row=3, start_column=span[0], end_row=3, end_column=span[-1])
        for i in span:
            ws.cell(4, i, LEDGER_COLUMNS[i - 1][1])
        c = span[-1] + 1
    for i in range(4, 10):
        ws.cell(5, i, unit)
    factor = 1000.0 if unit == "千克" else 1.0
    r = 6
    for row in rows:
        for j, v in enumerate(row, start=1):
            if isinstance(v, float) and 4 <= j <= 9:
                v = round(v * factor, 3)
            ws.cell(r, j, v)
        r += 1
    ws.cell(r, 1, "合计")
    for j in range(4, 10):
        total = sum(x[j - 1] for x in rows if isinstance(x[j - 1], float))
        ws.cell(r, j, round(total * factor, 3))
    return deterministic_xlsx(wb)


def broken_workbook(facility_id: str) -> bytes:
    """Return a workbook someone saved with the wrong sheet: no ledger header anywhere."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Sheet1"
    ws.cell(1, 1, f"{facility_id} 待补充")
    ws.cell(2, 1, "说明")
    ws.cell(2, 2, "本月台账另行提交")
    return deterministic_xlsx(wb)


def _manifest_no(day: date, serial: int) -> str:
    # Year (4) + province 11 (Beijing) + city 01 + a 6-digit serial (办法 Art. 15; the city
    # digits for Beijing are UNVERIFIED, 01 is the sample's choice).
    return f"{day.year}1101{serial:06d}"


def waste_day(district: District, day: date, seed: int) -> WasteDay:
    """Generate the day's solid-waste files: manifests every day, ledgers on the 1st.

    Planted faults are written on ``day``'s files for the first facility (test and demo
    scales); benchmark scale plants nothing.
    """
    out = WasteDay()
    rng = random.Random(f"zwy-waste-{seed}-{day.isoformat()}")
    plant = district.scale != "benchmark"
    folder = f"{day.isoformat()}/solid_waste"
    facilities = district.facilities
    # Monthly ledgers of the previous month, delivered on the first day of the month.
    if day.day == 1:
        month_end = day - timedelta(days=1)
        month = month_end.replace(day=1)
        for k, f in enumerate(facilities):
            rows = ledger_rows(rng, month_end, n_hw=3, n_sw=2)
            path = f"{folder}/ledger_{f.facility_id}_{month:%Y%m}.xlsx"
            unit = "千克" if plant and k == 1 else "吨"
            if plant and k == 0:
                rows = _plant_ledger(out, rows, path, f.facility_id, day)
            out.files[path] = ledger_workbook(f.facility_id, f.name, month, rows, unit)
            bad = sum(1 for r in rows if not isinstance(r[4], float))
            out.totals[path] = {"records": len(rows), "quarantined": bad, "other_rows": 1}
        if plant:
            path = f"{folder}/ledger_{facilities[0].facility_id}_{month:%Y%m}_draft.xlsx"
            out.files[path] = broken_workbook(facilities[0].facility_id)
            out.totals[path] = {"records": 1, "quarantined": 1, "other_rows": 0}
            out.plant(
                "quarantine",
                {
                    "file": path,
                    "sheet": "Sheet1",
                    "row": None,
                    "rule": "workbook",
                    "note": "no ledger header",
                },
            )
    # The day's manifest export.
    rows = []
    serial = 1 + rng.randint(0, 500)
    for f in facilities:
        for _ in range(2):
            code, name = rng.choice(HW_WASTES)
            ship = day - timedelta(days=rng.randint(1, 3))
            qty = _t(rng.uniform(0.5, 4.0))
            confirm = ship + timedelta(days=1)
            rows.append(
                [
                    _manifest_no(ship, serial),
                    f.facility_id,
                    f.name,
                    RECEIVERS[0].name,
                    RECEIVERS[0].licence_no,
                    code,
                    name,
                    qty,
                    qty,
                    ship.isoformat(),
                    confirm.isoformat() if confirm <= day else "",
                ]
            )
            serial += 1
    path = f"{folder}/manifests_{day:%Y%m%d}.csv"
    bad = 0
    if plant:
        bad = _plant_manifests(out, rows, path, facilities[0], day, serial)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(MANIFEST_HEADER)
    w.writerows(rows)
    out.files[path] = buf.getvalue().encode("gb18030")
    out.totals[path] = {"records": len(rows), "quarantined": bad, "other_rows": 1}
    return out


def _plant_ledger(
    out: WasteDay, rows: list[list[Any]], path: str, facility_id: str, day: date
) -> list[list[Any]]:
    sheet = "台账"
    first_data_row = 6
    # 1. Mass balance off by 1.5 t (closing stock not what the flows give).
    rows[0][8] = _t(rows[0][8] + 1.5)
    out.plant(
        "ledger_balance",
        {
            "file": path,
            "sheet": sheet,
            "row": first_data_row,
            "facility_id": facility_id,
            "waste_code": rows[0][0],
            "gap_t": 1.5,
        },
    )
    # 2. Stored for more than a year (storage start 400 days before the day).
    rows[1][9] = (day - timedelta(days=400)).isoformat()
    if rows[1][8] <= 0:
        rows[1][8] = rows[1][3] = _t(rows[1][3] + 1.0)
    out.plant(
        "storage_over_limit",
        {
            "file": path,
            "sheet": sheet,
            "row": first_data_row + 1,
            "facility_id": facility_id,
            "waste_code": rows[1][0],
            "days": 400,
        },
    )
    # 3. An unknown but well-formed code and a malformed one (not 8 digits NNN-NNN-NN).
    unknown = [
        "900-123-49",
        "未列明包装物",
        "危险废物",
        0.5,
        0.5,
        0.0,
        0.5,
        0.0,
        0.5,
        (day - timedelta(days=30)).isoformat(),
    ]
    malformed = ["HW49-041", "沾染废物", "危险废物", 0.0, 0.2, 0.0, 0.2, 0.0, 0.0, ""]
    rows += [unknown, malformed]
    for offset, code, kind in (
        (len(rows) - 2, "900-123-49", "unknown"),
        (len(rows) - 1, "HW49-041", "malformed"),
    ):
        out.plant(
            "hw_code",
            {
                "file": path,
                "sheet": sheet,
                "row": first_data_row + offset,
                "facility_id": facility_id,
                "waste_code": code,
                "kind": kind,
            },
        )
    # 4. A row whose generated quantity is not a number: quarantine, rule "number".
    bad = ["900-252-12", "废油漆、涂料", "危险废物", 0.1, "约2.5", 0.0, 0.0, 0.0, 0.1, ""]
    rows.append(bad)
    out.plant(
        "quarantine",
        {
            "file": path,
            "sheet": sheet,
            "row": first_data_row + len(rows) - 1,
            "rule": "number",
            "note": "本月产生量 '约2.5' is not a number",
        },
    )
    # 5. General waste utilisation far below the zone's target (sets the SW rows' rate).
    for r in rows:
        if r[2] == "一般工业固体废物":
            r[5] = _t(r[4] * 0.5)
            r[6] = 0.0
            r[8] = _t(r[3] + r[4] - r[5])
    out.plant("utilisation_low", {"file": path, "facility_id": facility_id, "rate_max": 0.51})
    return rows


def _plant_manifests(
    out: WasteDay, rows: list[list[Any]], path: str, facility: Any, day: date, serial: int
) -> int:
    header_lines = 1

    def add(row: list[Any]) -> int:
        rows.append(row)
        return len(rows) + header_lines  # 1-based line in the file

    base = [
        facility.facility_id,
        facility.name,
        RECEIVERS[0].name,
        RECEIVERS[0].licence_no,
        "900-041-49",
        "废弃包装物、容器、过滤吸附介质",
    ]
    ship = day - timedelta(days=12)
    no = _manifest_no(ship, serial)
    line = add([no, *base, 1.2, 1.2, ship.isoformat(), ""])
    out.plant(
        "manifest_unconfirmed",
        {"file": path, "line": line, "manifest_no": no, "ship_date": ship.isoformat()},
    )
    recent = day - timedelta(days=2)
    line = add([_manifest_no(recent, serial + 1), *base, 0.8, 0.8, recent.isoformat(), ""])
    out.plant(
        "manifest_pending_ok",
        {"file": path, "line": line, "note": "unconfirmed but within 5 working days"},
    )
    no = _manifest_no(day - timedelta(days=3), serial + 2)
    line = add(
        [
            no,
            *base,
            3.2,
            2.9,
            (day - timedelta(days=3)).isoformat(),
            (day - timedelta(days=2)).isoformat(),
        ]
    )
    out.plant(
        "manifest_quantity",
        {"file": path, "line": line, "manifest_no": no, "shipped_t": 3.2, "received_t": 2.9},
    )
    no = _manifest_no(day - timedelta(days=1), serial + 3)
    line = add(
        [
            no,
            facility.facility_id,
            facility.name,
            RECEIVERS[1].name,
            RECEIVERS[1].licence_no,
            "900-041-49",
            "废弃包装物、容器、过滤吸附介质",
            0.6,
            0.6,
            (day - timedelta(days=1)).isoformat(),
            day.isoformat(),
        ]
    )
    out.plant(
        "manifest_unlicensed",
        {
            "file": path,
            "line": line,
            "manifest_no": no,
            "receiver_licence": RECEIVERS[1].licence_no,
            "category": "HW49",
        },
    )
    line = add([f"{day.year}110100012", *base, 1.0, 1.0, day.isoformat(), ""])
    out.plant(
        "quarantine", {"file": path, "line": line, "rule": "manifest_no", "note": "13 digits"}
    )
    return 1
