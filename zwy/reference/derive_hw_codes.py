"""Derive ``hw_codes_2021.csv`` from the National Hazardous Waste List (2021) kept in ``shared/domain``.

Usage::

    uv run python -m zwy.reference.derive_hw_codes ../shared/domain/hazardous_waste_list_2021.csv

The input is the list's table text-extracted from the PDF in
``Fungwingwaa/cee@22aa4af`` (国家危险废物名录（2021年版）, 部令第15号, in force 2021-01-01),
columns ``waste_code, hw_category, category_name, industry_code_digits_1_3,
description_raw, hazard_characteristics, source``. The output keeps the facts the controls
need: the 8-digit code, its HW category and the category's name, the industry digits and
the hazard characteristics (T, C, I, R, In). Descriptions are left out: the PDF extraction
wraps them into neighbouring cells. Four rows have an empty or garbled hazard column in the
extraction (shared/domain/BRIEF.md §5.1): 900-039-49 is T per the brief; the other three
stay empty and are marked in ``note``.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from pathlib import Path

SOURCE = "国家危险废物名录（2021年版）(部令第15号), via Fungwingwaa/cee@22aa4af gjwxfwml.pdf"
CODE = re.compile(r"^\d{3}-\d{3}-\d{2}$")
HAZARDS = {"T", "C", "I", "R", "In"}
#: Corrections the brief states (shared/domain/BRIEF.md §5.1).
KNOWN_HAZARDS = {"900-039-49": "T"}

HEADER = [
    "waste_code",
    "hw_category",
    "category_name",
    "industry_code",
    "hazard_characteristics",
    "note",
    "source",
]


def derive(rows: list[dict[str, str]]) -> list[list[str]]:
    """Return the output rows (sorted by code); raise ValueError on a malformed code."""
    out = []
    seen: set[str] = set()
    for r in rows:
        code = r["waste_code"].strip()
        if not CODE.match(code):
            raise ValueError(f"malformed waste code {code!r}")
        if code in seen:
            raise ValueError(f"duplicate waste code {code}")
        seen.add(code)
        category = r["hw_category"].strip()
        if category != f"HW{code[-2:]}":
            raise ValueError(f"{code}: category {category} does not match its last two digits")
        hazards = [h.strip() for h in r["hazard_characteristics"].split("/") if h.strip()]
        note = ""
        if code in KNOWN_HAZARDS:
            hazards, note = [KNOWN_HAZARDS[code]], "hazard from BRIEF §5.1 (PDF cell garbled)"
        elif not hazards or not set(hazards) <= HAZARDS:
            hazards, note = [], "hazard characteristics garbled in the PDF extraction: unknown"
        out.append(
            [code, category, r["category_name"].strip(), code[:3], "/".join(hazards), note, SOURCE]
        )
    return sorted(out)


def main(argv: list[str] | None = None) -> int:
    """Write the derived table; return the exit code."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("source", type=Path)
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("hw_codes_2021.csv"))
    args = ap.parse_args(argv)
    with args.source.open(encoding="utf-8", newline="") as fh:
        rows = derive(list(csv.DictReader(fh)))
    with args.out.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(HEADER)
        w.writerows(rows)
    print(f"{len(rows)} codes written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
