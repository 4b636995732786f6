"""Derive ``hj212_codes.csv`` from the HJ 212-2017 Appendix B table kept in ``shared/domain``.

Usage::

    uv run python -m zwy.reference.derive_codes ../shared/domain/hj212_pollutant_codes.csv

The input is ``srdgame/lua-HJ212@f7c2e7d:hj212.csv`` (MIT), columns ``ID, NAME,
原编码（HJ2005), 单位, 排放量, 数据类型, 备注``. The output keeps the facts the pipeline
needs, with the Chinese unit text normalised to symbols. Every unit text must be in
:data:`UNITS` or :data:`DISCHARGE_UNITS`: an unknown one stops the derivation rather than
passing through unnormalised.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

SOURCE = "HJ 212-2017 Appendix B (via srdgame/lua-HJ212@f7c2e7d hj212.csv, MIT)"

#: Concentration / measurement units as printed in Appendix B -> symbol.
UNITS: dict[str, str | None] = {
    "": None,
    "毫克/升": "mg/L",
    "微克/升": "ug/L",
    "纳克/升": "ng/L",
    "毫克/立方米": "mg/m3",
    "纳克/立方米": "ng/m3",
    "千克/立方米": "kg/m3",
    "升/秒": "L/s",
    "立方米/秒": "m3/s",
    "立方米/小时": "m3/h",
    "米/秒": "m/s",
    "摄氏度": "°C",
    "无量纲": "1",
    "%": "%",
    "千帕": "kPa",
    "帕": "Pa",
    "分贝": "dB",
    "安[培]": "A",
    "伏[特]": "V",
    "毫伏[特]": "mV",
    "米": "m",
    "平方米": "m2",
    "千克": "kg",
    "[角]度": "°",
    "[色]度": "colour degree",
    "个/升": "1/L",
    "贝可[勒尔]/升": "Bq/L",
    "微西[门子]/厘米": "uS/cm",
    "分钟": "min",
    "秒": "s",
    "千瓦[特][小]时": "kWh",
    "转/分钟": "r/min",
    "吨/平方千米x月": "t/(km2·month)",
    "年月日时分秒": None,  # a timestamp (i13006), not a unit
}

#: Discharge (排放量) units -> symbol.
DISCHARGE_UNITS: dict[str, str | None] = {
    "": None,
    "千克": "kg",
    "克": "g",
    "毫克": "mg",
    "立方米": "m3",
}

#: Codes whose unit the standard prints as ng/m3 while devices send ug/m3 (BRIEF §1.9).
UG_NOT_NG = {"a34001", "a34002", "a34004"}

COLUMNS = [
    "code_2017",
    "name_zh",
    "code_2005",
    "unit",
    "discharge_unit",
    "data_type",
    "unit_note",
    "source",
]


def derive(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """Return the output rows for the Appendix B input rows.

    Raises:
        ValueError: a unit text is not in :data:`UNITS` / :data:`DISCHARGE_UNITS`.

    """
    out: list[dict[str, str]] = []
    for row in rows:
        code = row["ID"].strip()
        unit_text = row["单位"].strip()
        discharge_text = row["排放量"].strip()
        if unit_text not in UNITS:
            raise ValueError(f"{code}: unknown unit text {unit_text!r}; add it to UNITS")
        if discharge_text not in DISCHARGE_UNITS:
            raise ValueError(
                f"{code}: unknown discharge unit text {discharge_text!r}; add it to DISCHARGE_UNITS"
            )
        unit = UNITS[unit_text]
        note = ""
        if unit_text == "无量纲" and code == "w01001":
            unit = "pH"
        if code in UG_NOT_NG:
            unit = "ug/m3"
            note = "the standard prints ng/m3 (纳克/立方米), a printing error: devices send ug/m3"
        out.append(
            {
                "code_2017": code,
                "name_zh": row["NAME"].strip(),
                "code_2005": row["原编码（HJ2005)"].strip(),
                "unit": unit or "",
                "discharge_unit": DISCHARGE_UNITS[discharge_text] or "",
                "data_type": row["数据类型"].strip(),
                "unit_note": note,
                "source": SOURCE,
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    """Read the Appendix B CSV given on the command line and write ``hj212_codes.csv``."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("source_csv", type=Path, help="shared/domain/hj212_pollutant_codes.csv")
    ap.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).with_name("hj212_codes.csv"),
        help="output CSV (default: beside this script)",
    )
    args = ap.parse_args(argv)
    with args.source_csv.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    derived = derive(rows)
    with args.out.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(derived)
    print(f"wrote {len(derived)} codes to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
