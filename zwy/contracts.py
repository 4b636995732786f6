"""Column contracts of the frames that move between stages.

Every stage reads and writes Parquet files whose columns are exactly these schemas, so a
stage can be tested alone and the Airflow tasks only pass paths. A frame that does not match
is a programming error, caught by :func:`conform`.

Times: HJ 212 ``DataTime`` is Beijing clock time (UTC+8, no DST). Frames carry
``data_time`` as a timezone-aware ``Asia/Shanghai`` datetime; staging and marts add
``data_time_utc`` and the compliance day ``local_day`` (the Asia/Shanghai calendar day).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import polars as pl
from polars.io.plugins import register_io_source


def _schema(columns: Mapping[str, Any]) -> pl.Schema:
    return pl.Schema(columns)


TZ_LOCAL = "Asia/Shanghai"
LOCAL_DT = pl.Datetime("us", TZ_LOCAL)
UTC_DT = pl.Datetime("us", "UTC")
#: Text columns of few distinct values (codes, ids, file names) in the big staging frames
#: (VALUES, READINGS): dictionary codes (Polars Categorical) in memory and in Parquet. A
#: district day has 18 M readings; as codes they are gathered, grouped, joined and written
#: as integers, not strings (writing such a column: half the CPU). They compare with
#: strings as usual (joins need both sides coded, or both cast to String); DuckDB reads
#: them as VARCHAR.
CODE = pl.Categorical()

#: Streams the product knows. Wastewater and exhaust gas arrive as HJ 212 logs and
#: platform exports; dust and solid waste plug in later with their own readers.
STREAMS: tuple[str, ...] = ("wastewater", "exhaust_gas", "solid_waste", "dust")
#: Streams whose inputs are HJ 212 packet logs and platform exports (readings, marts).
TELEMETRY_STREAMS: tuple[str, ...] = ("wastewater", "exhaust_gas")
#: The solid and hazardous waste stream: ledgers and transfer manifests (zwy.waste).
WASTE_STREAM = "solid_waste"
#: Construction-site dust: site monitors (HJ 212, ST=39) and the nearest station (zwy.dust).
DUST_STREAM = "dust"

#: One row per physical line of a text input, as the reader saw it (I/O edge output).
LINES = _schema(
    {
        "source_file": pl.String,
        "line": pl.Int64,  # 1-based line number in the file
        "text": pl.String,  # the line without its line terminator
    }
)

#: One row per HJ 212 frame found (a ``##`` followed by four digits), accepted or not.
PACKETS = _schema(
    {
        "source_file": pl.String,
        "line": pl.Int64,  # 1-based line where the frame starts
        "raw": pl.String,  # the frame text from ``##`` up to the line end (prefix removed)
        "status": pl.String,  # "ok" | "quarantined"
        "rule": pl.String,  # machine-readable rule that failed (null when ok)
        "reason": pl.String,  # person-readable reason (null when ok)
        "crc_variant": pl.String,  # "appendix_a" | "modbus" | "modbus_swapped" | "none"
        "declared_length": pl.Int64,
        "actual_length": pl.Int64,
        "qn": pl.String,
        "st": pl.String,
        "cn": pl.String,
        "pw": pl.String,
        "mn": pl.String,
        "flag": pl.Int64,
        "protocol": pl.String,  # "2017" | "2005" | "2025?" (from Flag version bits / code style)
        "pnum": pl.Int64,
        "pno": pl.Int64,
        "data_time": LOCAL_DT,
    }
)

#: One row per value in the CP area of an accepted frame (or per cell of a platform export).
VALUES = _schema(
    {
        "source_file": CODE,
        "line": pl.Int64,
        "mn": CODE,
        "cn": CODE,
        "data_time": LOCAL_DT,
        "pollutant": CODE,  # HJ 212-2017 code (2005 codes mapped); vendor codes as sent
        "code_raw": CODE,  # the code exactly as sent
        "code_status": CODE,  # "hj212_2017" | "mapped_2005" | "vendor"
        "field": CODE,  # Rtd, Avg, Min, Max, Cou, ZsRtd, ZsAvg, ... (unknown suffixes kept)
        "field_known": pl.Boolean,  # False for suffixes not in HJ 212-2017 Table 4
        "value": pl.Float64,  # null when value_text is not a number
        "value_text": pl.String,
        "flag": CODE,  # the pollutant's -Flag in the same packet (N/F/M/S/D/C/T/B), or null
        "st": CODE,  # the frame's ST (system code): the stream of devices not registered
    }
)

#: Rejected input: every frame or line that did not make it into staging, with why.
QUARANTINE = _schema(
    {
        "source_file": pl.String,
        "line": pl.Int64,  # 1-based line, or worksheet row of a workbook
        "raw": pl.String,
        "rule": pl.String,
        "reason": pl.String,
        "sheet": pl.String,  # worksheet of a workbook row; null for text files
    }
)

#: Staging readings: typed, codes normalised, registry joined, UTC and local day added.
READINGS = _schema(
    {
        "batch_day": pl.Date,  # the day whose inbox delivered the record (the load partition)
        "source_file": CODE,
        "line": pl.Int64,
        "stream": CODE,
        "facility_id": CODE,  # null when the MN is not in the registry
        "outlet_id": CODE,
        "mn": CODE,
        "cn": CODE,
        "data_time_utc": UTC_DT,
        "local_day": pl.Date,
        "pollutant": CODE,
        "code_status": CODE,
        "field": CODE,
        "value": pl.Float64,
        "unit": CODE,
        "flag": CODE,
        "valid": pl.Boolean,  # only flag N (or no flag sent) counts as valid
    }
)

#: Hourly values per monitoring point and pollutant (marts layer).
HOURLY = _schema(
    {
        "local_day": pl.Date,
        "hour_start_utc": UTC_DT,
        "facility_id": pl.String,
        "outlet_id": pl.String,
        "mn": pl.String,
        "stream": pl.String,
        "pollutant": pl.String,
        "value": pl.Float64,  # hourly mean (flow-weighted for wastewater pollutants)
        "value_zs": pl.Float64,  # O2-corrected to the outlet's reference O2 (stacks), else null
        "o2_measured": pl.Float64,
        "o2_ref": pl.Float64,
        "discharge": pl.Float64,  # water: m3 in the hour (flow) or kg load (pollutant)
        "unit": pl.String,
        "n_values": pl.Int64,
        "n_valid": pl.Int64,
        "valid_minutes": pl.Int64,
        "valid": pl.Boolean,
        "n_flag_t": pl.Int64,  # over-range values: the hour is at least this value
        "n_flag_s": pl.Int64,  # manually set values
        "source_cn": pl.String,  # 2051 | 2011 | 2061 | export
    }
)

#: Daily values per monitoring point and pollutant (marts layer).
DAILY = _schema(
    {
        "local_day": pl.Date,
        "facility_id": pl.String,
        "outlet_id": pl.String,
        "mn": pl.String,
        "stream": pl.String,
        "pollutant": pl.String,
        "value": pl.Float64,
        "value_zs": pl.Float64,
        "discharge": pl.Float64,
        "unit": pl.String,
        "valid_hours": pl.Int64,
        "valid": pl.Boolean,
        "n_flag_t": pl.Int64,
        "n_flag_s": pl.Int64,
    }
)


def empty(schema: pl.Schema) -> pl.DataFrame:
    """Return an empty frame with ``schema``."""
    return pl.DataFrame(schema=schema)


def conform(df: pl.DataFrame, schema: pl.Schema) -> pl.DataFrame:
    """Select and cast ``df`` to ``schema``: missing columns become nulls, extras are dropped.

    Raises:
        polars.exceptions.InvalidOperationError: a column cannot be cast to its contract type.

    """
    return df.select(_conform_exprs(set(df.columns), schema))


def conform_lazy(frame: pl.LazyFrame, schema: pl.Schema) -> pl.LazyFrame:
    """Like :func:`conform` for a query plan (nothing is read until it is collected or sunk)."""
    return frame.select(_conform_exprs(set(frame.collect_schema().names()), schema))


def _conform_exprs(names: set[str], schema: pl.Schema) -> list[pl.Expr]:
    return [
        (pl.col(name) if name in names else pl.lit(None)).cast(dtype).alias(name)
        for name, dtype in schema.items()
    ]


#: Rows per Parquet row group of the staging files: small groups let the streaming engine
#: read a file in bounded memory (measured: a 12 M-row values file copies in 0.5 GB with
#: 131,072-row groups, 1.8 GB with pyarrow's default 1 Mi-row groups).
PARQUET_ROW_GROUP = 131_072


def sink_parquet_chunks(
    chunks: Callable[[], Iterable[pl.DataFrame]],
    schema: pl.Schema,
    path: Path,
    **options: Any,
) -> None:
    """Stream the frames ``chunks()`` yields, in order, into one Parquet file at ``path``.

    An IO-plugin source feeding Polars' ``sink_parquet``: memory is that of one chunk, not
    of the file. The frames must have ``schema``; ``options`` go to ``sink_parquet``
    (compression, row group size, statistics).
    """

    def source(
        with_columns: list[str] | None,
        predicate: pl.Expr | None,
        n_rows: int | None,
        batch_size: int | None,
    ) -> Iterator[pl.DataFrame]:
        for chunk in chunks():
            if predicate is not None:
                chunk = chunk.filter(predicate)
            yield chunk if with_columns is None else chunk.select(with_columns)

    register_io_source(source, schema=schema).sink_parquet(path, **options)


# --- Facility registry (reference data; CSV files in the registry folder) -------------------

#: registry/facilities.csv
FACILITIES = _schema(
    {
        "facility_id": pl.String,  # stable id, e.g. "F0001"
        "name": pl.String,  # Chinese name as registered
        "uscc": pl.String,  # 18-character unified social credit code
        "industry": pl.String,
        "ehs_email": pl.String,
    }
)

#: registry/outlets.csv
OUTLETS = _schema(
    {
        "outlet_id": pl.String,  # e.g. "F0001-WS1"
        "facility_id": pl.String,
        "outlet_type": pl.String,  # wastewater_sewer | wastewater_direct | stack
        "stream": pl.String,  # wastewater | exhaust_gas
        "standard": pl.String,  # e.g. "DB11/307-2013"
        "table_class": pl.String,  # e.g. "Table 3", "Table 1 A", "new boilers"
        "applies_to": pl.String,  # source type: boiler_new, boiler_in_use_ban_zone, process, ...
        "name": pl.String,
    }
)

#: registry/monitoring_points.csv: one HJ 212 device (MN) per monitoring point
MONITORING_POINTS = _schema(
    {
        "mn": pl.String,
        "outlet_id": pl.String,
        "protocol": pl.String,  # "2017" | "2005": the code style the device sends
        "crc_policy": pl.String,  # tolerant | strict
        "rtd_interval_s": pl.Int64,  # real-time upload interval (RtdInterval)
        "min_interval_min": pl.Int64,  # minute-data period (MinInterval)
        "delivery": pl.String,  # hj212 | platform_export
    }
)

#: One row per input file seen by a run (the raw layer's ingest manifest).
INGEST_FILES = _schema(
    {
        "batch_day": pl.Date,
        "stream": pl.String,
        "path": pl.String,  # path relative to the inbox root
        "sha256": pl.String,
        "bytes": pl.Int64,
        "arrival_time": UTC_DT,  # file mtime: when the file landed in the inbox
        "parser": pl.String,  # hj212 | platform_export
        "status": pl.String,  # parsed | unreadable
        "error": pl.String,
        "lines_total": pl.Int64,
        "noise_lines": pl.Int64,  # non-HJ 212 lines (receiver timestamps, Modbus hex, blank)
        "frames_found": pl.Int64,  # HJ 212 frames, or data rows of an export
        "frames_loaded": pl.Int64,
        "frames_quarantined": pl.Int64,
        "values_loaded": pl.Int64,
    }
)


def schema(columns: Mapping[str, Any]) -> pl.Schema:
    """Build a contract schema (for modules that define their own staging contracts)."""
    return _schema(columns)
