"""Tiny warehouses for golden control tests: one facility-day built by hand.

:class:`GoldenDay` starts from a clean day (every hour valid, values well under every limit)
for a few devices and lets a test change what it needs: a daily mean above a limit, a
flatlined sensor, an offline gap. :meth:`GoldenDay.write` puts the registry, marts and a
few staged readings into a fresh warehouse file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl

from warehouse.db import connect, migrate
from zwy.contracts import DAILY, HOURLY, READINGS, conform
from zwy.settings import Settings

DAY = date(2024, 6, 3)
TZ = ZoneInfo("Asia/Shanghai")

#: (facility, outlet, mn, outlet_type, stream, standard, table_class, applies_to)
DEVICES = {
    "W1": (
        "F1",
        "F1-WS1",
        "W1",
        "wastewater_sewer",
        "wastewater",
        "DB11/307-2013",
        "Table 3",
        "process",
    ),
    "W2": (
        "F2",
        "F2-WS1",
        "W2",
        "wastewater_sewer",
        "wastewater",
        "DB11/307-2013",
        "Table 3",
        "process",
    ),
    "G1": (
        "F1",
        "F1-DA1",
        "G1",
        "stack",
        "exhaust_gas",
        "DB11/139-2015",
        "new boilers",
        "boiler_new",
    ),
}

#: pollutant → (unit, base value, step per hour) of a clean day.
WATER = {
    "w00000": ("L/s", 5.0, 0.1),
    "w01018": ("mg/L", 100.0, 1.0),
    "w01001": ("pH", 7.0, 0.01),
    "w21003": ("mg/L", 10.0, 0.1),
}
GAS = {
    "a00000": ("m3/s", 3.0, 0.01),
    "a19001": ("%", 6.0, 0.01),
    "a21002": ("mg/m3", 15.0, 0.1),
    "a21026": ("mg/m3", 2.0, 0.01),
}


def hour_utc(h: int, day: date = DAY) -> datetime:
    """The UTC start of local clock hour ``h`` of ``day``."""
    return (datetime(day.year, day.month, day.day, tzinfo=TZ) + timedelta(hours=h)).astimezone(UTC)


@dataclass
class GoldenDay:
    """The registry, marts and readings of one hand-made day."""

    devices: list[str] = field(default_factory=lambda: ["W1", "G1"])
    day: date = DAY
    hourly: dict[tuple[str, str, int], dict[str, Any]] = field(default_factory=dict)
    daily_override: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    daily_history: list[dict[str, Any]] = field(default_factory=list)
    readings: list[dict[str, Any]] = field(default_factory=list)
    registered: list[str] | None = None

    def __post_init__(self) -> None:
        for mn in self.devices:
            fac, out, _, _, stream, *_ = DEVICES[mn]
            params = WATER if stream == "wastewater" else GAS
            for p, (unit, base, step) in params.items():
                for h in range(24):
                    v = base + step * h
                    zs = v * 1.2 if stream == "exhaust_gas" and p in ("a21002", "a21026") else None
                    self.hourly[(mn, p, h)] = {
                        "local_day": self.day,
                        "hour_start_utc": hour_utc(h, self.day),
                        "facility_id": fac,
                        "outlet_id": out,
                        "mn": mn,
                        "stream": stream,
                        "pollutant": p,
                        "value": v,
                        "value_zs": zs,
                        "o2_measured": 6.0 if zs is not None else None,
                        "o2_ref": 3.5 if zs is not None else None,
                        "discharge": None,
                        "unit": unit,
                        "n_values": 6,
                        "n_valid": 6,
                        "valid_minutes": 60,
                        "valid": True,
                        "n_flag_t": 0,
                        "n_flag_s": 0,
                        "source_cn": "2051",
                    }

    def set(self, mn: str, pollutant: str, hours: range | list[int], **values: Any) -> None:
        """Change columns of some hours of one parameter."""
        for h in hours:
            self.hourly[(mn, pollutant, h)].update(values)

    def drop(self, mn: str, pollutant: str | None, hours: range | list[int]) -> None:
        """Remove hours of one parameter (or of every parameter of the device)."""
        for key in list(self.hourly):
            if key[0] == mn and (pollutant is None or key[1] == pollutant) and key[2] in hours:
                del self.hourly[key]

    def hourly_frame(self) -> pl.DataFrame:
        return conform(
            pl.DataFrame(list(self.hourly.values()), schema_overrides=dict(HOURLY)), HOURLY
        )

    def daily_frame(self) -> pl.DataFrame:
        """Daily values from the hours (mean of valid hours), like transforms.daily."""
        h = self.hourly_frame()
        daily = (
            h.group_by("mn", "pollutant", "local_day")
            .agg(
                pl.col("facility_id", "outlet_id", "stream", "unit").first(),
                value=pl.col("value").filter(pl.col("valid")).mean(),
                value_zs=pl.col("value_zs").filter(pl.col("valid")).mean(),
                valid_hours=pl.col("valid").sum().cast(pl.Int64),
                n_flag_t=pl.col("n_flag_t").sum(),
                n_flag_s=pl.col("n_flag_s").sum(),
            )
            .with_columns(
                valid=pl.when(pl.col("stream") == "exhaust_gas")
                .then(pl.col("valid_hours") >= 20)
                .otherwise(pl.col("valid_hours") >= 1)
            )
        )
        daily = conform(daily, DAILY)
        if self.daily_override:
            rows = daily.to_dicts()
            for r in rows:
                r.update(self.daily_override.get((r["mn"], r["pollutant"]), {}))
            daily = conform(pl.DataFrame(rows, schema_overrides=dict(DAILY)), DAILY)
        if self.daily_history:
            daily = pl.concat(
                [
                    daily,
                    conform(pl.DataFrame(self.daily_history, schema_overrides=dict(DAILY)), DAILY),
                ]
            )
        return daily

    def set_daily(self, mn: str, pollutant: str, **values: Any) -> None:
        """Override columns of the computed daily row of one parameter."""
        self.daily_override.setdefault((mn, pollutant), {}).update(values)

    def write(self, settings: Settings, registry_extra: dict[str, tuple] | None = None) -> None:
        """Write registry, marts and readings into ``settings.warehouse`` (created)."""
        devices = dict(DEVICES) | (registry_extra or {})
        reg = self.registered if self.registered is not None else self.devices
        outlets = pl.DataFrame(
            [
                {
                    "outlet_id": d[1],
                    "facility_id": d[0],
                    "outlet_type": d[3],
                    "stream": d[4],
                    "standard": d[5],
                    "table_class": d[6],
                    "applies_to": d[7],
                    "name": d[1],
                }
                for mn, d in devices.items()
                if mn in reg
            ]
        )
        points = pl.DataFrame(
            [
                {
                    "mn": mn,
                    "outlet_id": devices[mn][1],
                    "protocol": "2017",
                    "crc_policy": "tolerant",
                    "rtd_interval_s": 30,
                    "min_interval_min": 10,
                    "delivery": "hj212",
                }
                for mn in reg
            ]
        )
        facilities = pl.DataFrame(
            [
                {
                    "facility_id": f,
                    "name": f"工厂{f}",
                    "uscc": "x",
                    "industry": "x",
                    "ehs_email": "x",
                }
                for f in sorted({devices[mn][0] for mn in reg})
            ]
        )
        daily = self.daily_frame()
        hourly = self.hourly_frame()
        readings_path = settings.data_dir / "golden_readings.parquet"
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        readings = (
            conform(pl.DataFrame(self.readings, schema_overrides=dict(READINGS)), READINGS)
            if self.readings
            else pl.DataFrame(schema=READINGS)
        )
        readings.write_parquet(readings_path)
        with connect(settings.warehouse) as con:
            migrate(con)
            for table, frame in (
                ("ref_facilities", facilities),
                ("ref_outlets", outlets),
                ("ref_monitoring_points", points),
                ("mart_hourly_values", hourly),
                ("mart_daily_values", daily),
            ):
                con.register("_f", frame.to_arrow())
                con.execute(f"insert into {table} by name select * from _f")
                con.unregister("_f")
            # Staging is a view over Parquet partitions (migration 0002); the golden day
            # points it at one small file (or fills the table on a pre-0002 warehouse).
            is_view = con.execute(
                "select count(*) from duckdb_views() where view_name = 'stg_readings'"
            ).fetchone()[0]
            if is_view:
                con.execute(
                    f"create or replace view stg_readings as select * from read_parquet('{readings_path.as_posix()}')"
                )
            else:
                con.execute(
                    f"insert into stg_readings select * from read_parquet('{readings_path.as_posix()}')"
                )


def reading(
    mn: str,
    pollutant: str,
    h: int,
    *,
    code_status: str = "hj212_2017",
    facility: str | None = None,
    line: int = 1,
    file: str = "2024-06-03/wastewater/x.log",
    value: float = 1.0,
    flag: str = "N",
    cn: str = "2051",
    field: str = "Avg",
) -> dict[str, Any]:
    """One staged reading at local hour ``h`` of :data:`DAY`."""
    return {
        "batch_day": DAY,
        "source_file": file,
        "line": line,
        "stream": "wastewater",
        "facility_id": facility,
        "outlet_id": None,
        "mn": mn,
        "cn": cn,
        "data_time_utc": hour_utc(h),
        "local_day": DAY,
        "pollutant": pollutant,
        "code_status": code_status,
        "field": field,
        "value": value,
        "unit": "mg/L",
        "flag": flag,
        "valid": flag == "N",
    }


def settings_for(tmp_path: Path) -> Settings:
    """Settings of a golden warehouse under ``tmp_path`` (registry folder for permits)."""
    (tmp_path / "registry").mkdir(exist_ok=True)
    return Settings(data_dir=tmp_path / "data", registry_dir=tmp_path / "registry")
