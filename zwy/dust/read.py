"""Read the nearest station's hourly data (UCI Beijing multi-site layout) and the site registry.

The station file has split date columns (``year, month, day, hour``, Beijing clock time),
``NA`` for a missing value and one row per hour; every row ends in ``stg_station_hourly``
or in quarantine (rule ``station_time``: the date parts are not a valid hour;
``station_value``: a value that is neither a number nor ``NA``; ``layout``: the header is not
the UCI one) with file, line and reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from zwy.contracts import QUARANTINE, TZ_LOCAL, UTC_DT, conform, schema
from zwy.errors import InputFileError

#: The pollutant and weather columns of the UCI files and their staging names.
UCI_VALUES: dict[str, str] = {
    "PM2.5": "pm25",
    "PM10": "pm10",
    "SO2": "so2",
    "NO2": "no2",
    "CO": "co",
    "O3": "o3",
    "TEMP": "temp",
    "PRES": "pres",
    "DEWP": "dewp",
    "RAIN": "rain",
    "WSPM": "wspm",
}
UCI_REQUIRED = ("year", "month", "day", "hour", "PM10", "station")

STATION_HOURLY = schema(
    {
        "batch_day": pl.Date,
        "source_file": pl.String,
        "line": pl.Int64,
        "station": pl.String,
        "hour_start_utc": UTC_DT,
        "local_day": pl.Date,
        **{v: pl.Float64 for v in UCI_VALUES.values()},
        "wd": pl.String,
    }
)

DUST_SITES = pl.Schema(
    {
        "site_id": pl.String,
        "project_name": pl.String,
        "developer": pl.String,
        "address": pl.String,
        "mn": pl.String,
        "station": pl.String,
        "start_date": pl.Date,
        "end_date": pl.Date,
        "ehs_email": pl.String,
    }
)


@dataclass(frozen=True)
class StationRead:
    """Rows of one station file: loaded (STATION_HOURLY without batch_day) and quarantined."""

    rows: pl.DataFrame
    quarantine: pl.DataFrame
    lines_total: int

    @property
    def rows_found(self) -> int:
        """Data rows found: loaded + quarantined."""
        return self.rows.height + self.quarantine.height


def read_station_file(path: Path, source_file: str) -> StationRead:
    """Read one UCI-layout hourly file.

    Raises:
        InputFileError: the file is empty or not UTF-8 text.

    """
    data = path.read_bytes()
    if not data:
        raise InputFileError(source_file, "file is empty (0 bytes)")
    try:
        df = pl.read_csv(data, infer_schema=False, null_values=["NA"])
    except pl.exceptions.PolarsError as exc:
        raise InputFileError(source_file, f"not a readable CSV: {exc}") from exc
    n = df.height
    df = df.with_row_index("_i").with_columns((pl.col("_i").cast(pl.Int64) + 2).alias("line"))
    missing = [c for c in UCI_REQUIRED if c not in df.columns]
    if missing:
        q = pl.DataFrame(
            {
                "source_file": [source_file],
                "line": [1],
                "raw": [",".join(df.columns)],
                "rule": ["layout"],
                "reason": [f"line 1: not the UCI station layout, missing {', '.join(missing)}"],
            },
        )
        return StationRead(_empty_rows(), conform(q, QUARANTINE), n + 1)
    ints = {
        c: pl.col(c).str.strip_chars().cast(pl.Int32, strict=False)
        for c in ("year", "month", "day", "hour")
    }
    # Through text: an impossible calendar day (Feb 30) parses to null instead of raising.
    naive = pl.format(
        "{}-{}-{} {}:00",
        ints["year"].cast(pl.String).str.zfill(4),
        *(ints[c].cast(pl.String).str.zfill(2) for c in ("month", "day", "hour")),
    ).str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M", strict=False)
    typed = df.with_columns(
        _bad_time=ints["year"].is_null()
        | ints["month"].is_null()
        | ints["day"].is_null()
        | ints["hour"].is_null()
        | ~ints["hour"].is_between(0, 23)
        | ~ints["month"].is_between(1, 12)
        | ~ints["day"].is_between(1, 31),
    )
    # An impossible calendar day (Feb 30) builds no datetime: also a bad time.
    typed = typed.with_columns(_local=pl.when(~pl.col("_bad_time")).then(naive)).with_columns(
        _bad_time=pl.col("_bad_time") | pl.col("_local").is_null()
    )
    values = {
        name: pl.col(src).str.strip_chars().cast(pl.Float64, strict=False)
        for src, name in UCI_VALUES.items()
        if src in df.columns
    }
    bad_value = pl.lit(False)
    first_bad = pl.lit(None, pl.String)
    for src in reversed([c for c in UCI_VALUES if c in df.columns]):
        wrong = (
            pl.col(src).is_not_null()
            & pl.col(src).str.strip_chars().cast(pl.Float64, strict=False).is_null()
        )
        bad_value = bad_value | wrong
        first_bad = (
            pl.when(wrong).then(pl.format("{} '{}'", pl.lit(src), pl.col(src))).otherwise(first_bad)
        )
    typed = typed.with_columns(_bad_value=bad_value, _what=first_bad)
    raw = pl.concat_str(
        [pl.col(c).fill_null("NA") for c in df.columns if c not in ("_i", "line")], separator=","
    )
    bad = typed.filter(pl.col("_bad_time") | pl.col("_bad_value")).select(
        pl.lit(source_file).alias("source_file"),
        "line",
        raw.alias("raw"),
        pl.when(pl.col("_bad_time"))
        .then(pl.lit("station_time"))
        .otherwise(pl.lit("station_value"))
        .alias("rule"),
        pl.when(pl.col("_bad_time"))
        .then(
            pl.format(
                "line {}: year/month/day/hour {}-{}-{} {}h is not a valid hour",
                pl.col("line"),
                pl.col("year"),
                pl.col("month"),
                pl.col("day"),
                pl.col("hour"),
            )
        )
        .otherwise(
            pl.format("line {}: {} is neither a number nor NA", pl.col("line"), pl.col("_what"))
        )
        .alias("reason"),
    )
    local = pl.col("_local").dt.replace_time_zone(TZ_LOCAL, non_existent="null")
    good = typed.filter(~pl.col("_bad_time") & ~pl.col("_bad_value")).select(
        pl.lit(source_file).alias("source_file"),
        "line",
        pl.col("station").str.strip_chars(),
        local.dt.convert_time_zone("UTC").alias("hour_start_utc"),
        local.dt.date().alias("local_day"),
        *[e.alias(k) for k, e in values.items()],
        pl.col("wd") if "wd" in df.columns else pl.lit(None, pl.String).alias("wd"),
    )
    schema = {k: v for k, v in STATION_HOURLY.items() if k != "batch_day"}
    rows = good.select(
        [
            (pl.col(c) if c in good.columns else pl.lit(None)).cast(t).alias(c)
            for c, t in schema.items()
        ]
    )
    return StationRead(rows, conform(bad, QUARANTINE), n + 1)


def _empty_rows() -> pl.DataFrame:
    return pl.DataFrame(schema={k: v for k, v in STATION_HOURLY.items() if k != "batch_day"})


def load_dust_sites(registry: Path) -> pl.DataFrame:
    """Read ``<registry>/dust_sites.csv`` (absent: no construction sites registered).

    Raises:
        ConfigError: a column is missing or a value does not have its type.

    """
    from zwy.registry import read_optional_table

    return read_optional_table(registry / "dust_sites.csv", DUST_SITES)
