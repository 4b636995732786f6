"""A small, independent HJ 212 log reader for checking the sample generator.

It shares no code with ``zwy``: its own CRC tables, rule order, code map and limit lookup,
so the tests recompute the planted truth from the files alone.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from pathlib import Path

CATALOG = Path(__file__).resolve().parents[2] / "expectations" / "catalog"

KNOWN_ST = {str(x) for x in [*range(21, 28), *range(31, 40), 41, 51, 52, 91]}
# fmt: off
KNOWN_CN = {
    str(x)
    for x in [
        1000, 1001, 1011, 1012, 1013, 1021, 1022, 1031, 1032, 1041, 1042, 1061, 1062,
        1063, 1064, 1072, 2011, 2012, 2021, 2022, 2031, 2041, 2051, 2061, 2071, 2072,
        2081, *range(3011, 3022), 9011, 9012, 9013, 9014,
    ]
}
CODE_2005 = {
    "B01": "w00000", "011": "w01018", "060": "w21003", "001": "w01001", "101": "w21011",
    "065": "w21001", "B02": "a00000", "S01": "a19001", "S03": "a01012", "03": "a21002",
    "02": "a21026", "01": "a34013", "S02": "a01011", "S05": "a01014",
}
# fmt: on


def _table() -> list[int]:
    out = []
    for x in range(256):
        reg = x
        for _ in range(8):
            reg = (reg >> 1) ^ 0xA001 if reg & 1 else reg >> 1
        out.append(reg)
    return out


_T = _table()


def crc_hj212(data: bytes) -> int:
    reg = 0xFFFF
    for b in data:
        reg = _T[(reg >> 8) ^ b]
    return reg


def crc_modbus(data: bytes) -> int:
    reg = 0xFFFF
    for b in data:
        reg = (reg >> 8) ^ _T[(reg ^ b) & 0xFF]
    return reg


@dataclass
class Frame:
    line: int
    text: str
    rule: str | None
    head: dict[str, str] = field(default_factory=dict)
    cp: dict[str, dict[str, str]] = field(default_factory=dict)
    data_time: datetime | None = None

    @property
    def cn(self) -> str:
        return self.head.get("CN", "")


def classify(
    text: str,
) -> tuple[str | None, dict[str, str], dict[str, dict[str, str]], datetime | None]:
    if not re.match(r"##\d{4}", text):
        return "syntax", {}, {}, None
    declared = int(text[2:6])
    data = text[6:-4]
    if declared > len(data):
        return "truncated", {}, {}, None
    if declared < len(data):
        return "length", {}, {}, None
    raw = data.encode("ascii")
    crc = text[-4:].upper()
    if crc != f"{crc_hj212(raw):04X}":
        m = crc_modbus(raw)
        swapped = ((m & 0xFF) << 8) | (m >> 8)
        if crc not in {f"{m:04X}", f"{swapped:04X}"}:
            return "crc", {}, {}, None
    if "CP=&&" not in data or not data.endswith("&&"):
        return "syntax", {}, {}, None
    head_text, cp_text = data.split("CP=&&", 1)
    head = dict(kv.split("=", 1) for kv in head_text.rstrip(";").split(";") if kv)
    if head.get("ST") not in KNOWN_ST:
        return "st", head, {}, None
    if head.get("CN") not in KNOWN_CN:
        return "cn", head, {}, None
    if "Flag" in head and not (head["Flag"].isdigit() and 0 <= int(head["Flag"]) <= 255):
        return "flag", head, {}, None
    if not re.fullmatch(r"[0-9A-Za-z]+", head.get("MN", "")):
        return "mn", head, {}, None
    cp: dict[str, dict[str, str]] = {}
    dt = None
    for group in cp_text[:-2].split(";"):
        for item in group.split(","):
            key, value = item.split("=", 1)
            if key == "DataTime":
                try:
                    dt = datetime.strptime(value, "%Y%m%d%H%M%S")
                except ValueError:
                    return "datatime", head, {}, None
                continue
            code, suffix = key.rsplit("-", 1)
            cp.setdefault(CODE_2005.get(code, code), {})[suffix] = value
    return None, head, cp, dt


@cache
def read_log(path: Path) -> tuple[list[Frame], int, int]:
    """Return the frames of a log, the number of noise lines and of lines (cached)."""
    frames: list[Frame] = []
    seen: set[str] = set()
    lines = path.read_bytes().decode("ascii").splitlines()
    for no, line in enumerate(lines, start=1):
        pos = line.find("##")
        if pos < 0:
            continue
        text = line[pos:]
        rule, head, cp, dt = classify(text)
        if rule is None and text in seen:
            rule = "duplicate"
        seen.add(text)
        frames.append(Frame(no, text, rule, head, cp, dt))
    return frames, len(lines) - len(frames), len(lines)


@dataclass(frozen=True)
class LimitRow:
    limit_id: str
    high: float | None
    low: float | None


def limit_for(catalog: Path, outlet: dict[str, str], pollutant: str, day: date) -> LimitRow | None:
    rows = []
    with (catalog / "limits.csv").open(encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            if (r["pollutant"], r["standard"], r["table_class"], r["outlet_type"]) != (
                pollutant,
                outlet["standard"],
                outlet["table_class"],
                outlet["outlet_type"],
            ):
                continue
            if outlet["outlet_type"] == "stack" and r["applies_to"] != outlet["applies_to"]:
                continue
            if day < date.fromisoformat(r["valid_from"]):
                continue
            if r["valid_to"] and day > date.fromisoformat(r["valid_to"]):
                continue
            rows.append(r)
    winter = day.month in (12, 1, 2, 3)
    seasonal = [r for r in rows if r["season"]]
    chosen = seasonal if (winter and seasonal) else [r for r in rows if not r["season"]]
    if not chosen:
        return None
    r = chosen[0]
    return LimitRow(
        r["limit_id"],
        float(r["limit_high"]) if r["limit_high"] else None,
        float(r["limit_low"]) if r["limit_low"] else None,
    )


def reference_o2(catalog: Path, outlet: dict[str, str]) -> float:
    with (catalog / "reference_o2.csv").open(encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            if (r["standard"], r["applies_to"]) == (outlet["standard"], outlet["applies_to"]):
                return float(r["reference_o2_pct"])
    raise KeyError(outlet["outlet_id"])
