"""Read solid-waste ledgers and transfer manifests into staging rows, or quarantine them.

A file is read as a grid of text cells (Excel through calamine, CSV as UTF-8 or GB18030),
then the layout is found rather than assumed: the header row is the row holding the
fields' Chinese names (synonyms accepted), a second header row under merged cells is
joined to it, a unit row (吨 / t / 千克 / kg) sets each quantity column's factor, and totals
(合计) and blank rows are skipped. Every data row ends either as a staging row or in
quarantine with file, sheet, row and a reason; a file whose layout cannot be found is one
quarantined record (rule ``workbook`` or ``layout``), so the accounting of every file
still adds up: ``rows_found = loaded + quarantined``.

Rows are few (a ledger has tens, a day's manifests hundreds): a plain loop per row is
clearer than a vectorised plan here and costs nothing.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from zwy.errors import InputFileError
from zwy.waste.contracts import WASTE_LEDGER, WASTE_MANIFESTS, WASTE_QUARANTINE

Grid = list[list[str | None]]

LEDGER_FIELDS: dict[str, tuple[str, ...]] = {
    "waste_code": ("废物代码", "危废代码", "危险废物代码"),
    "waste_name": ("废物名称", "危废名称"),
    "waste_class": ("废物类别", "类别"),
    "opening_t": ("期初库存", "上月结存", "期初贮存量"),
    "generated_t": ("本月产生量", "产生量"),
    "utilised_t": ("自行利用", "自行利用量"),
    "transferred_t": ("委外转移", "委外转移量", "转移量"),
    "disposed_t": ("自行处置", "自行处置量"),
    "closing_t": ("期末库存", "本月结存", "期末贮存量"),
    "storage_start": ("贮存起始日期", "贮存开始日期"),
}
QUANTITIES = ("opening_t", "generated_t", "utilised_t", "transferred_t", "disposed_t", "closing_t")
MANIFEST_FIELDS: dict[str, tuple[str, ...]] = {
    "manifest_no": ("联单编号",),
    "facility_id": ("移出单位编号",),
    "consignor_name": ("移出单位", "移出单位名称"),
    "receiver_name": ("接受单位", "接受单位名称", "接收单位"),
    "receiver_licence": ("接受单位许可证编号", "许可证编号", "接收单位许可证编号"),
    "waste_code": ("废物代码",),
    "waste_name": ("废物名称",),
    "shipped_t": ("转移量", "转移量(吨)"),
    "received_t": ("接收量", "接收量(吨)"),
    "ship_date": ("转移日期",),
    "confirmed_date": ("接收确认日期", "接收日期"),
}
UNIT_FACTORS = {"吨": 1.0, "t": 1.0, "千克": 0.001, "公斤": 0.001, "kg": 0.001}
CLASSES = {
    "危险废物": "hazardous",
    "危废": "hazardous",
    "一般工业固体废物": "general",
    "一般固废": "general",
    "一般固体废物": "general",
}
MANIFEST_NO = re.compile(r"^\d{14}$")
_UNIT_IN_NAME = re.compile(r"[（(]\s*(吨|t|千克|公斤|kg)\s*[)）]")
_TOTALS = ("合计", "总计", "小计")


#: The rows of a file as read, before ``batch_day`` is known (the pipeline adds it).
_LEDGER_ROWS = pl.Schema({k: v for k, v in WASTE_LEDGER.items() if k != "batch_day"})
_MANIFEST_ROWS = pl.Schema({k: v for k, v in WASTE_MANIFESTS.items() if k != "batch_day"})


@dataclass(frozen=True)
class WasteRead:
    """What one file gave: staging rows, quarantined rows and the file's counts.

    The rows stay Python records until a frame is asked for: a district day is 800
    workbooks, and the pipeline builds one frame of all of them (three frames a file
    cost 0.35 s of a 1.5 s stage).
    """

    ledger_rows: list[dict[str, Any]]  # _LEDGER_ROWS records
    manifest_rows: list[dict[str, Any]]  # _MANIFEST_ROWS records
    quarantine_rows: list[dict[str, Any]]  # WASTE_QUARANTINE records
    lines_total: int  # rows of the sheets (lines of a CSV) read
    other_rows: int  # title, header, unit, totals and blank rows

    @classmethod
    def of_files(cls, reads: Sequence[WasteRead]) -> WasteRead:
        """Return the records of several files as one read (one frame each for a stream)."""
        return cls(
            ledger_rows=[r for w in reads for r in w.ledger_rows],
            manifest_rows=[r for w in reads for r in w.manifest_rows],
            quarantine_rows=[r for w in reads for r in w.quarantine_rows],
            lines_total=sum(w.lines_total for w in reads),
            other_rows=sum(w.other_rows for w in reads),
        )

    @property
    def ledger(self) -> pl.DataFrame:
        """WASTE_LEDGER rows without batch_day."""
        return pl.DataFrame(self.ledger_rows, schema=_LEDGER_ROWS)

    @property
    def manifests(self) -> pl.DataFrame:
        """WASTE_MANIFESTS rows without batch_day."""
        return pl.DataFrame(self.manifest_rows, schema=_MANIFEST_ROWS)

    @property
    def quarantine(self) -> pl.DataFrame:
        """WASTE_QUARANTINE rows."""
        return pl.DataFrame(self.quarantine_rows, schema=WASTE_QUARANTINE)

    @property
    def rows_loaded(self) -> int:
        """Records staged: ledger and manifest rows."""
        return len(self.ledger_rows) + len(self.manifest_rows)

    @property
    def rows_found(self) -> int:
        """Records found: loaded + quarantined."""
        return self.rows_loaded + len(self.quarantine_rows)


def _norm(text: str | None) -> str:
    return re.sub(r"\s+", "", text or "")


#: The header vocabularies by table, so that a header lookup can be memoised.
_FIELDS = {"ledger": LEDGER_FIELDS, "manifest": MANIFEST_FIELDS}


# Memoised: the same headers (and the first rows' cells, searched for a header) recur in
# every one of a night's hundreds of workbooks; the lookup was a fifth of reading them.
@functools.lru_cache(maxsize=8192)
def _field_of(name: str, table: str) -> str | None:
    """Return the field a header cell names in ``table`` (``ledger`` or ``manifest``), or None."""
    fields = _FIELDS[table]
    bare = _UNIT_IN_NAME.sub("", _norm(name))
    for field, names in fields.items():
        if bare in names or _norm(name) in names:
            return field
    return None


def _cell(row: Sequence[str | None], i: int | None) -> str | None:
    if i is None or i >= len(row):
        return None
    v = row[i]
    return None if v is None or not str(v).strip() else str(v).strip()


def parse_number(text: str | None) -> float | None:
    """Parse a quantity cell; empty is None; raise ValueError when it is not a number."""
    if text is None:
        return None
    v = float(text.replace(",", "") if re.fullmatch(r"-?[\d,]+(\.\d+)?", text) else text)
    if v != v or v in (float("inf"), float("-inf")):
        raise ValueError(text)
    return v


def parse_day(text: str | None) -> date | None:
    """Parse a date cell (ISO, slashes, 年月日, an Excel serial or a timestamp); None if empty."""
    if text is None:
        return None
    t = text.strip()
    m = re.fullmatch(
        r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?", t
    )
    if m:
        return date(int(m[1]), int(m[2]), int(m[3]))
    if re.fullmatch(r"\d{5}(\.0+)?", t):  # Excel serial day (1900 date system)
        return date(1899, 12, 30) + timedelta(days=int(float(t)))
    raise ValueError(text)


def _header_row(grid: Grid, table: str, key: str) -> int | None:
    for i, row in enumerate(grid[:30]):
        if any(_field_of(c or "", table) == key for c in row):
            return i
    return None


def _columns(grid: Grid, h: int, table: str) -> tuple[dict[str, int], int]:
    """Map fields to column indexes from the header row ``h`` (and a sub-header row under it).

    Returns the mapping and the index of the first row after the header.
    """
    top = grid[h]
    sub = grid[h + 1] if h + 1 < len(grid) else []
    sub_names = [_field_of(c or "", table) for c in sub]
    has_sub = any(sub_names)
    cols: dict[str, int] = {}
    for i in range(max(len(top), len(sub))):
        name = sub_names[i] if has_sub and i < len(sub_names) and sub_names[i] else None
        name = name or _field_of(_cell(top, i) or "", table)
        if name and name not in cols:
            cols[name] = i
    return cols, h + (2 if has_sub else 1)


def _unit_row(
    grid: Grid, start: int, cols: dict[str, int]
) -> tuple[dict[str, float], dict[str, str], int]:
    """Factors per quantity column from a unit row at ``start`` (if any); default tonnes."""
    factors = dict.fromkeys(QUANTITIES, 1.0)
    units = dict.fromkeys(QUANTITIES, "吨")
    if start >= len(grid):
        return factors, units, start
    row = grid[start]
    found = {q: _norm(_cell(row, cols.get(q))) for q in QUANTITIES if q in cols}
    if found and all(u in UNIT_FACTORS for u in found.values() if u) and any(found.values()):
        for q, u in found.items():
            if u:
                factors[q], units[q] = UNIT_FACTORS[u], u
        return factors, units, start + 1
    return factors, units, start


def _raw(row: Sequence[str | None]) -> str:
    return ",".join("" if v is None else str(v) for v in row).rstrip(",")


def _is_blank(row: Sequence[str | None]) -> bool:
    return all(v is None or not str(v).strip() for v in row)


def _is_totals(row: Sequence[str | None]) -> bool:
    first = next((str(v).strip() for v in row if v is not None and str(v).strip()), "")
    return first.replace(" ", "").startswith(_TOTALS)


def _meta(grid: Grid, above: int) -> tuple[str | None, date | None]:
    """Facility id and month written above the header (企业编号：F0001, 统计期：2024-04)."""
    facility = month = None
    for row in grid[:above]:
        for v in row:
            text = _norm(v)
            m = re.search(r"企业编号[:：]([A-Za-z0-9_-]+)", text)
            if m:
                facility = m[1]
            m = re.search(r"统计期[:：](\d{4})[-/.年](\d{1,2})", text)
            if m:
                month = date(int(m[1]), int(m[2]), 1)
    return facility, month


def _from_name(path: Path) -> tuple[str | None, date | None]:
    m = re.match(r"ledger_([A-Za-z0-9-]+)_(\d{4})(\d{2})", path.stem)
    if not m:
        return None, None
    return m[1], date(int(m[2]), int(m[3]), 1)


class _Rows:
    """Collects loaded and quarantined rows of one file."""

    def __init__(self, source_file: str) -> None:
        self.source_file = source_file
        self.ok: list[dict[str, Any]] = []
        self.bad: list[dict[str, Any]] = []
        self.lines = 0
        self.other = 0

    def quarantine(
        self, sheet: str | None, line: int | None, raw: str, rule: str, reason: str
    ) -> None:
        where = f"sheet {sheet} row {line}" if sheet else f"line {line}"
        if line is None:
            where = f"sheet {sheet}" if sheet else "file"
        self.bad.append(
            {
                "source_file": self.source_file,
                "sheet": sheet,
                "line": line,
                "raw": raw[:2000],
                "rule": rule,
                "reason": f"{where}: {reason}",
            }
        )

    def result(self) -> WasteRead:
        return WasteRead(
            ledger_rows=[r for r in self.ok if "opening_t" in r],
            manifest_rows=[r for r in self.ok if "manifest_no" in r],
            quarantine_rows=self.bad,
            lines_total=self.lines,
            other_rows=self.other,
        )


def _ledger_sheet(rows: _Rows, path: Path, sheet: str, grid: Grid, h: int) -> None:
    cols, start = _columns(grid, h, "ledger")
    missing = [q for q in ("waste_name", *QUANTITIES) if q not in cols]
    facility, month = _meta(grid, h)
    name_facility, name_month = _from_name(path)
    facility, month = facility or name_facility, month or name_month
    factors, units, start = _unit_row(grid, start, cols)
    rows.other += start - h  # header (one or two rows) and unit row; rows above: the caller
    if missing or facility is None or month is None:
        what = (
            f"ledger columns missing: {', '.join(LEDGER_FIELDS[m][0] for m in missing)}"
            if missing
            else "cannot tell the facility and month: expected 企业编号：… and 统计期：YYYY-MM "
            "above the header, or a file name ledger_<facility>_<YYYYMM>.xlsx"
        )
        rows.quarantine(sheet, h + 1, _raw(grid[h]), "layout", what)
        rows.other -= 1  # the header row is the quarantined record
        return
    for i in range(start, len(grid)):
        row = grid[i]
        line = i + 1
        if _is_blank(row) or _is_totals(row):
            rows.other += 1
            continue
        out: dict[str, Any] = {
            "source_file": rows.source_file,
            "sheet": sheet,
            "row": line,
            "facility_id": facility,
            "period_month": month,
            "waste_code": _cell(row, cols.get("waste_code")),
            "waste_name": _cell(row, cols.get("waste_name")),
        }
        problem = None
        for q in QUANTITIES:
            text = _cell(row, cols[q])
            try:
                v = parse_number(text)
            except ValueError:
                problem = ("number", f"{LEDGER_FIELDS[q][0]} '{text}' is not a number ({units[q]})")
                break
            if v is not None and v < 0:
                problem = ("number", f"{LEDGER_FIELDS[q][0]} {text} is negative")
                break
            out[q] = round((v or 0.0) * factors[q], 6)
        out["unit_as_sent"] = units["generated_t"]
        if problem is None:
            text = _cell(row, cols.get("storage_start"))
            try:
                out["storage_start"] = parse_day(text)
            except ValueError:
                problem = ("date", f"贮存起始日期 '{text}' is not a date (YYYY-MM-DD)")
        if problem is None:
            cls = _cell(row, cols.get("waste_class"))
            if cls is None:
                out["waste_class"] = "hazardous" if out["waste_code"] else "general"
            elif _norm(cls) in CLASSES:
                out["waste_class"] = CLASSES[_norm(cls)]
            else:
                problem = ("class", f"废物类别 '{cls}' is neither 危险废物 nor 一般工业固体废物")
        if problem is None and not (out["waste_code"] or out["waste_name"]):
            problem = ("missing", "neither 废物代码 nor 废物名称 is filled in")
        if problem:
            rows.quarantine(sheet, line, _raw(row), *problem)
        else:
            rows.ok.append(out)


def _manifest_grid(rows: _Rows, sheet: str | None, grid: Grid, h: int) -> None:
    cols, start = _columns(grid, h, "manifest")
    rows.other += start - h
    missing = [f for f in ("manifest_no", "waste_code", "shipped_t", "ship_date") if f not in cols]
    if missing:
        rows.quarantine(
            sheet,
            h + 1,
            _raw(grid[h]),
            "layout",
            f"manifest columns missing: {', '.join(MANIFEST_FIELDS[m][0] for m in missing)}",
        )
        rows.other -= 1
        return
    for i in range(start, len(grid)):
        row = grid[i]
        line = i + 1
        if _is_blank(row):
            rows.other += 1
            continue

        def get(f: str, row: list[str | None] = row) -> str | None:
            return _cell(row, cols.get(f))

        no = get("manifest_no")
        out: dict[str, Any] = {
            "source_file": rows.source_file,
            "sheet": sheet,
            "row": line,
            **{
                f: get(f)
                for f in (
                    "manifest_no",
                    "facility_id",
                    "consignor_name",
                    "receiver_name",
                    "receiver_licence",
                    "waste_code",
                    "waste_name",
                )
            },
        }
        problem = None
        if no is None or not MANIFEST_NO.match(no):
            problem = (
                "manifest_no",
                f"联单编号 '{no or ''}' is not 14 digits "
                "(危险废物转移管理办法 Art. 15: year, province, city, 6-digit serial)",
            )
        for f, label in (("shipped_t", "转移量"), ("received_t", "接收量")):
            if problem:
                break
            try:
                v = parse_number(get(f))
            except ValueError:
                problem = ("number", f"{label} '{get(f)}' is not a number (t)")
                break
            if f == "shipped_t" and v is None:
                problem = ("missing", "转移量 is empty")
            out[f] = v
        for f, label in (("ship_date", "转移日期"), ("confirmed_date", "接收确认日期")):
            if problem:
                break
            try:
                out[f] = parse_day(get(f))
            except ValueError:
                problem = ("date", f"{label} '{get(f)}' is not a date (YYYY-MM-DD)")
            if f == "ship_date" and problem is None and out[f] is None:
                problem = ("missing", "转移日期 is empty")
        if problem:
            rows.quarantine(sheet, line, _raw(row), *problem)
        else:
            rows.ok.append(out)


def _excel_grids(path: Path, name: str) -> dict[str, Grid]:
    # fastexcel (calamine) directly, every cell as text: Polars' read_excel builds a frame
    # per sheet first, 1.0 against 0.15 ms a workbook, the same cells.
    import fastexcel

    try:
        reader = fastexcel.read_excel(path)
        grids: dict[str, Grid] = {}
        for sheet in reader.sheet_names:
            table = reader.load_sheet(sheet, header_row=None, dtypes="string").to_arrow()
            columns = [column.to_pylist() for column in table.columns]
            grids[sheet] = [list(row) for row in zip(*columns, strict=True)]
    except Exception as exc:  # calamine raises its own types for broken zips and formats
        raise InputFileError(name, f"not a readable Excel workbook: {exc}") from exc
    return grids


def _csv_grid(path: Path, name: str) -> Grid:
    data = path.read_bytes()
    if not data:
        raise InputFileError(name, "file is empty (0 bytes)")
    for enc in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(enc)
            break
        except UnicodeDecodeError:
            continue
    else:  # pragma: no cover - gb18030 decodes any byte string
        raise InputFileError(name, "neither UTF-8 nor GB18030")
    import csv
    import io

    return [[c if c != "" else None for c in r] for r in csv.reader(io.StringIO(text))]


def read_waste_file(path: Path, source_file: str) -> WasteRead:
    """Read one ledger workbook or manifest export (.xlsx, .xls, .csv).

    Raises:
        InputFileError: the file cannot be opened as a workbook or text at all (recorded in
            the ingest manifest as unreadable).

    """
    rows = _Rows(source_file)
    if path.suffix.lower() == ".csv":
        grid = _csv_grid(path, source_file)
        rows.lines = len(grid)
        h = _header_row(grid, "manifest", "manifest_no")
        if h is None:
            rows.quarantine(
                None,
                None,
                _raw(grid[0]) if grid else "",
                "layout",
                "no header with 联单编号 in the first 30 lines: not a manifest export",
            )
            rows.other = len(grid)
        else:
            rows.other += h
            _manifest_grid(rows, None, grid, h)
        return rows.result()
    grids = _excel_grids(path, source_file)
    recognised = False
    for sheet, grid in grids.items():
        rows.lines += len(grid)
        h = _header_row(grid, "ledger", "opening_t")
        if h is not None:
            rows.other += h
            _ledger_sheet(rows, path, sheet, grid, h)
            recognised = True
            continue
        h = _header_row(grid, "manifest", "manifest_no")
        if h is not None:
            rows.other += h
            _manifest_grid(rows, sheet, grid, h)
            recognised = True
            continue
        rows.other += len(grid)
    if not recognised:
        rows.quarantine(
            ", ".join(grids),
            None,
            "",
            "workbook",
            "no sheet has a ledger header (废物代码 … 期初库存 … 期末库存) or a manifest header "
            "(联单编号 …): not a solid-waste ledger or manifest workbook",
        )
    return rows.result()
