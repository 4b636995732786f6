"""Row builders and constants for the transform tests (imported by tests and conftest)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

BJ = ZoneInfo("Asia/Shanghai")
DAY = date(2024, 5, 1)
#: 10:00 Beijing on DAY, a whole hour far from midnight
T0 = datetime(2024, 5, 1, 10, 0, tzinfo=BJ)


def value_row(
    mn: str,
    cn: str,
    t: datetime,
    pollutant: str,
    value: float | None,
    field: str = "Rtd",
    flag: str | None = "N",
    source_file: str = "inbox/f.log",
    line: int = 1,
) -> dict[str, Any]:
    return {
        "source_file": source_file,
        "line": line,
        "mn": mn,
        "cn": cn,
        "data_time": t,
        "pollutant": pollutant,
        "code_raw": pollutant,
        "code_status": "hj212_2017",
        "field": field,
        "field_known": True,
        "value": value,
        "value_text": None if value is None else str(value),
        "flag": flag,
    }


def minutes(n: int, start: datetime = T0, step_s: int = 60) -> list[datetime]:
    return [start + timedelta(seconds=step_s * i) for i in range(n)]
