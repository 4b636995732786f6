"""Reference data of the solid-waste controls: HW codes, receivers' licences, working days.

- ``zwy/reference/hw_codes_2021.csv``: the 467 codes of the 2021 National Hazardous Waste
  List (derived by :mod:`zwy.reference.derive_hw_codes`, source named in each row).
- ``<registry>/receivers.csv``: licensed receivers, ``licensed_categories`` as ``HW08|HW49``.
- ``zwy/reference/holidays_cn.csv`` (or ``ZWY_HOLIDAYS_FILE``): public holidays and
  the weekend days worked instead (调休); transcribed, marked UNVERIFIED until checked
  against the State Council notice. Working days = Monday-Friday, minus holidays, plus
  those worked weekend days.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path

import polars as pl

from zwy.errors import ConfigError

REFERENCE = Path(__file__).resolve().parents[1] / "reference"
HW_CODE = re.compile(r"^\d{3}-\d{3}-\d{2}$")
RECEIVERS = pl.Schema(
    {
        "receiver_id": pl.String,
        "name": pl.String,
        "licence_no": pl.String,
        "licensed_categories": pl.String,
        "licence_valid_to": pl.Date,
    }
)


@lru_cache(maxsize=1)
def load_hw_codes() -> pl.DataFrame:
    """Return the 2021 list: waste_code, hw_category, category_name, hazard_characteristics, ..."""
    return pl.read_csv(REFERENCE / "hw_codes_2021.csv", infer_schema=False)


def classify_code(code: str | None, codes: pl.DataFrame) -> tuple[str, str | None]:
    """Return (status, HW category) of a hazardous-waste code as written in a ledger or manifest.

    Status: ``listed`` (in the 2021 list), ``tested`` (``900-000-XX``: found hazardous by
    testing, Art. 6, with XX a category of the list), ``unknown`` (well formed, not listed)
    or ``malformed`` (not ``NNN-NNN-NN``, or missing).
    """
    return _classify(code, set(codes["waste_code"]), set(codes["hw_category"]))


def classify_codes(codes: pl.Series, listed: pl.DataFrame) -> pl.DataFrame:
    """:func:`classify_code` of every code: columns ``code_status`` and ``hw_category``."""
    known, categories = set(listed["waste_code"]), set(listed["hw_category"])
    rows = [_classify(c, known, categories) for c in codes.to_list()]
    return pl.DataFrame(
        rows, schema={"code_status": pl.String, "hw_category": pl.String}, orient="row"
    )


def _classify(code: str | None, known: set[str], categories: set[str]) -> tuple[str, str | None]:
    if code is None or not HW_CODE.match(code.strip()):
        return "malformed", None
    code = code.strip()
    category = f"HW{code[-2:]}"
    if code in known:
        return "listed", category
    if code.startswith("900-000-") and category in categories:
        return "tested", category
    return "unknown", category


def load_receivers(registry: Path) -> pl.DataFrame:
    """Read ``<registry>/receivers.csv``; an absent file means no licensed receiver is known.

    Raises:
        ConfigError: a column is missing or a value does not have its type.

    """
    from zwy.registry import read_optional_table

    return read_optional_table(registry / "receivers.csv", RECEIVERS)


def load_holidays(path: Path | None = None) -> pl.DataFrame:
    """Read the holiday calendar (date, kind holiday|workday, name, status, source)."""
    path = path or REFERENCE / "holidays_cn.csv"
    try:
        df = pl.read_csv(path, infer_schema=False)
        return df.with_columns(pl.col("date").str.to_date())
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise ConfigError(f"{path}: cannot read the holiday calendar: {exc}") from exc


def working_day_index(first: date, last: date, holidays: pl.DataFrame) -> dict[date, int]:
    """Count the working days in ``(first, d]`` for every ``d`` in ``[first, last]``.

    Working days: Monday-Friday minus the holidays, plus the weekend days worked instead.
    """
    off = set(holidays.filter(pl.col("kind") == "holiday")["date"].to_list())
    on = set(holidays.filter(pl.col("kind") == "workday")["date"].to_list())
    out: dict[date, int] = {}
    n = 0
    d = first
    while d <= last:
        if d > first and (d in on or (d.weekday() < 5 and d not in off)):
            n += 1
        out[d] = n
        d += timedelta(days=1)
    return out


def working_days_after(start: date, end: date, holidays: pl.DataFrame) -> int:
    """Count working days in ``(start, end]``: the days after ``start`` up to and including ``end``."""
    if end <= start:
        return 0
    return working_day_index(start, end, holidays)[end]
