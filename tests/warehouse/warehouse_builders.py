"""Tiny batches for the warehouse tests: registry, files, packets, readings, quarantine."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl

from transforms.daily import build_marts
from transforms.readings import build_readings
from zwy.contracts import (
    FACILITIES,
    INGEST_FILES,
    MONITORING_POINTS,
    OUTLETS,
    PACKETS,
    QUARANTINE,
    VALUES,
    conform,
)
from zwy.settings import ValiditySettings

BJ = ZoneInfo("Asia/Shanghai")

TABLES = (
    "ref_facilities",
    "ref_outlets",
    "ref_monitoring_points",
    "raw_ingest_files",
    "raw_quarantine",
    "stg_packets",
    "stg_readings",
    "mart_hourly_values",
    "mart_daily_values",
)

REGISTRY = {
    "facilities": conform(pl.DataFrame({"facility_id": ["F1"], "name": ["某公司"]}), FACILITIES),
    "outlets": conform(
        pl.DataFrame(
            {
                "outlet_id": ["F1-S1", "F1-W1"],
                "facility_id": ["F1", "F1"],
                "outlet_type": ["stack", "wastewater_direct"],
                "stream": ["exhaust_gas", "wastewater"],
                "standard": ["DB11/139-2015", "DB11/307-2013"],
                "applies_to": ["boiler_new", "all"],
            }
        ),
        OUTLETS,
    ),
    "monitoring_points": conform(
        pl.DataFrame(
            {
                "mn": ["GAS", "WAT"],
                "outlet_id": ["F1-S1", "F1-W1"],
                "rtd_interval_s": [60, 60],
                "min_interval_min": [10, 10],
                "delivery": ["hj212", "hj212"],
            }
        ),
        MONITORING_POINTS,
    ),
}
UNITS = pl.DataFrame(
    {"code_2017": ["a21026", "w00000", "w01018"], "unit": ["mg/m3", "L/s", "mg/L"]}
)
O2_REF = pl.DataFrame(
    {"standard": ["DB11/139-2015"], "applies_to": ["boiler_new"], "reference_o2_pct": [3.5]}
)

REBUILD = functools.partial(
    build_marts,
    points=REGISTRY["monitoring_points"],
    outlets=REGISTRY["outlets"],
    o2_ref=O2_REF,
    validity=ValiditySettings(),
)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=BJ)


@dataclass
class Batch:
    batch_day: date
    files: pl.DataFrame
    packets: pl.DataFrame
    readings: pl.DataFrame
    quarantine: pl.DataFrame

    def args(self) -> dict[str, Any]:
        return {
            "batch_day": self.batch_day,
            "files": self.files,
            "packets": self.packets,
            "readings": self.readings,
            "quarantine": self.quarantine,
            "registry": REGISTRY,
            "rebuild": REBUILD,
        }


def gas_packets(
    path: str,
    start: datetime,
    n: int,
    value: float = 10.0,
    mn: str = "GAS",
    pollutant: str = "a21026",
) -> list[dict[str, Any]]:
    """n one-minute real-time packets (default: SO2 of device GAS), one per line of ``path``."""
    return [
        {
            "source_file": path,
            "line": i + 1,
            "mn": mn,
            "cn": "2011",
            "data_time": start + timedelta(minutes=i),
            "pollutant": pollutant,
            "code_raw": pollutant,
            "code_status": "hj212_2017",
            "field": "Rtd",
            "field_known": True,
            "value": value,
            "value_text": str(value),
            "flag": "N",
        }
        for i in range(n)
    ]


def make_batch(
    batch_day: date,
    values: list[dict[str, Any]],
    quarantined: dict[str, int] | None = None,
) -> Batch:
    """A batch whose files are the source_files of ``values`` (+ files with quarantined frames).

    One accepted packet per (source_file, line) of ``values``; ``quarantined`` adds that many
    rejected frames to a file.
    """
    quarantined = quarantined or {}
    frame = conform(pl.DataFrame(values), VALUES)
    readings = build_readings(
        frame, REGISTRY["monitoring_points"], REGISTRY["outlets"], UNITS, batch_day
    )
    packets = (
        frame.group_by("source_file", "line", maintain_order=True)
        .agg(pl.col("mn", "cn", "data_time").first())
        .with_columns(status=pl.lit("ok"), st=pl.lit("31"), crc_variant=pl.lit("appendix_a"))
    )
    packets = conform(packets, PACKETS)
    q_rows = [
        {
            "source_file": path,
            "line": 1000 + i,
            "raw": "##0000bad",
            "rule": "crc",
            "reason": "CRC mismatch",
        }
        for path, n in quarantined.items()
        for i in range(n)
    ]
    quarantine = (
        conform(pl.DataFrame(q_rows), QUARANTINE) if q_rows else pl.DataFrame(schema=QUARANTINE)
    )
    paths = sorted(set(packets["source_file"].to_list()) | set(quarantined))
    loaded = dict(packets.group_by("source_file").len().iter_rows())
    files = conform(
        pl.DataFrame(
            {
                "batch_day": [batch_day] * len(paths),
                "stream": ["exhaust_gas"] * len(paths),
                "path": paths,
                "sha256": [f"sha-{p}" for p in paths],
                "parser": ["hj212"] * len(paths),
                "status": ["parsed"] * len(paths),
                "frames_found": [loaded.get(p, 0) + quarantined.get(p, 0) for p in paths],
                "frames_loaded": [loaded.get(p, 0) for p in paths],
                "frames_quarantined": [quarantined.get(p, 0) for p in paths],
            }
        ),
        INGEST_FILES,
    )
    return Batch(batch_day, files, packets, readings, quarantine)


def snapshot(con: Any, tables: tuple[str, ...] = TABLES) -> dict[str, list[tuple[Any, ...]]]:
    """Full contents of ``tables`` (without run_id), sorted, for equality checks."""
    out = {}
    for table in tables:
        cols = [r[0] for r in con.execute(f"describe {table}").fetchall() if r[0] != "run_id"]
        out[table] = con.execute(f"select {', '.join(cols)} from {table} order by all").fetchall()
    return out


def parquet_files(root: Path) -> list[Path]:
    """Every Parquet partition file under the warehouse folder ``root``, sorted."""
    return sorted(root.rglob("*.parquet"))
