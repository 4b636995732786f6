"""Construction-site dust: hourly site means with validity, and site minus station PM10.

Pure Polars: readings and registry frames in, the ``mart_dust_hourly`` frame out.

- **Hours.** Every registered site active on a local day gets its 24 Beijing hours, with
  or without data (an hour without data is what the offline control counts). From the
  site monitor's real-time values (CN 2011 ``Rtd``; 2051/2061 ``Avg`` when that is all
  that came): the hour's mean PM10 (``a34002``), PM2.5 (``a34004``) and TSP (``a34001``)
  over valid values (flag N or none), and the number of clock minutes with a valid PM10.
- **Validity.** An hour is valid with at least ``gas_hour_min_minutes`` (45) valid minutes:
  HJ 212-2017 Annex D.2's rule for hourly values, which the product applies to dust monitors
  as well (no dust-specific capture rule is in the brief); a choice, documented.
- **Difference.** ``pm10_diff = pm10_site - pm10_station`` for valid site hours whose station
  hour has a PM10 (the station's ``NA`` leaves it null).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import polars as pl

from transforms.validity import is_valid
from zwy.contracts import TZ_LOCAL, UTC_DT, schema

PM10, PM25, TSP = "a34002", "a34004", "a34001"

DUST_HOURLY = schema(
    {
        "local_day": pl.Date,
        "hour_start_utc": UTC_DT,
        "hour_local": pl.Int8,  # 0-23, Beijing clock
        "site_id": pl.String,
        "mn": pl.String,
        "station": pl.String,
        "n_values": pl.Int64,
        "valid_minutes": pl.Int64,
        "valid": pl.Boolean,
        "pm10_site": pl.Float64,
        "pm25_site": pl.Float64,
        "tsp_site": pl.Float64,
        "pm10_station": pl.Float64,
        "pm10_diff": pl.Float64,
    }
)


def hour_grid(sites: pl.DataFrame, days: list[date]) -> pl.DataFrame:
    """Every (site, hour) of ``days`` for the sites active on that day."""
    tz = ZoneInfo(TZ_LOCAL)
    rows = []
    for d in days:
        active = sites.filter(
            (pl.col("start_date").is_null() | (pl.col("start_date") <= d))
            & (pl.col("end_date").is_null() | (pl.col("end_date") >= d))
        )
        start = datetime.combine(d, time(0), tzinfo=tz)
        for r in active.select("site_id", "mn", "station").iter_rows():
            for h in range(24):
                rows.append((d, (start + timedelta(hours=h)).astimezone(ZoneInfo("UTC")), h, *r))
    return pl.DataFrame(
        rows,
        schema={
            "local_day": pl.Date,
            "hour_start_utc": UTC_DT,
            "hour_local": pl.Int8,
            "site_id": pl.String,
            "mn": pl.String,
            "station": pl.String,
        },
        orient="row",
    )


def dust_hourly(
    readings: pl.DataFrame | pl.LazyFrame,
    sites: pl.DataFrame,
    station: pl.DataFrame,
    days: list[date],
    min_valid_minutes: int,
) -> pl.DataFrame:
    """Compute ``mart_dust_hourly`` rows of ``days``.

    Args:
        readings: READINGS rows of the dust monitors (any stream: filtered on the sites' MNs).
        sites: DUST_SITES registry rows.
        station: station hours (``station, hour_start_utc, pm10``); the last row of a
            (station, hour) wins.
        days: the local days to build.
        min_valid_minutes: valid minutes an hour needs (Annex D.2: 45).

    Returns:
        DUST_HOURLY rows, sorted by site and hour.

    """
    grid = hour_grid(sites, days)
    if grid.is_empty():
        return pl.DataFrame(schema=DUST_HOURLY)
    r = (
        readings.lazy()
        .filter(
            pl.col("mn").is_in(sites["mn"].implode())
            & pl.col("pollutant").is_in([PM10, PM25, TSP])
            & (
                ((pl.col("cn") == "2011") & (pl.col("field") == "Rtd"))
                | (pl.col("cn").is_in(["2051", "2061"]) & (pl.col("field") == "Avg"))
            )
        )
        .with_columns(
            hour_start_utc=pl.col("data_time_utc").dt.truncate("1h"),
            _ok=is_valid(pl.col("flag"), pl.col("value")),
        )
    )
    per_hour = (
        r.group_by("mn", "hour_start_utc")
        .agg(
            n_values=(pl.col("pollutant") == PM10).sum().cast(pl.Int64),
            valid_minutes=pl.col("data_time_utc")
            .filter((pl.col("pollutant") == PM10) & pl.col("_ok"))
            .dt.truncate("1m")
            .n_unique()
            .cast(pl.Int64),
            pm10_site=pl.col("value").filter((pl.col("pollutant") == PM10) & pl.col("_ok")).mean(),
            pm25_site=pl.col("value").filter((pl.col("pollutant") == PM25) & pl.col("_ok")).mean(),
            tsp_site=pl.col("value").filter((pl.col("pollutant") == TSP) & pl.col("_ok")).mean(),
        )
        .with_columns(pl.col("mn").cast(pl.String))  # readings hold MNs as codes
        .collect()
    )
    st = station.select("station", "hour_start_utc", pl.col("pm10").alias("pm10_station")).unique(
        ["station", "hour_start_utc"], keep="last", maintain_order=True
    )
    out = (
        grid.join(per_hour, on=["mn", "hour_start_utc"], how="left")
        .join(st, on=["station", "hour_start_utc"], how="left")
        .with_columns(
            pl.col("n_values", "valid_minutes").fill_null(0),
        )
        .with_columns(valid=pl.col("valid_minutes") >= min_valid_minutes)
        .with_columns(
            pm10_diff=pl.when(pl.col("valid") & pl.col("pm10_station").is_not_null()).then(
                (pl.col("pm10_site") - pl.col("pm10_station")).round(3)
            )
        )
        .with_columns(pl.col("pm10_site", "pm25_site", "tsp_site").round(3))
        .sort("site_id", "hour_start_utc")
    )
    return out.select([pl.col(c).cast(t) for c, t in DUST_HOURLY.items()])
