"""Reader for the environmental platform's CSV exports of hourly data (GB18030, Chinese headers).

Facilities without a packet log are reported through the municipal platform, whose export is
a GB18030/GBK CSV. Each data row becomes value rows of the VALUES contract with ``cn="2061"``
(hourly data, as a device would upload it); a row that cannot be read goes to quarantine with
its 1-based line number (the header is line 1) and the rule that failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from zwy.contracts import LOCAL_DT, QUARANTINE, TZ_LOCAL, VALUES, conform
from zwy.errors import InputFileError
from zwy.hj212 import codes

#: Export header (Chinese, as the platform writes it) → our column name.
HEADER_MAP: dict[str, str] = {
    "企业名称": "facility_name",
    "监测点编码": "mn",
    "排口编号": "outlet_ref",
    "监测时间": "time_text",
    "污染物编码": "code_raw",
    "污染物名称": "pollutant_name",
    "小时均值": "avg_text",
    "折算值": "zs_text",
    "单位": "unit_text",
    "数据标记": "flag",
}
REQUIRED = ("监测点编码", "监测时间", "污染物编码", "小时均值")
ENCODINGS = ("utf-8", "gb18030")


@dataclass(frozen=True)
class ExportResult:
    """What one export file produced.

    Attributes:
        values: value rows (VALUES contract), one per numeric cell (Avg and ZsAvg).
        quarantine: rejected data rows (QUARANTINE contract).
        rows_found: data rows in the file (header excluded).
        rows_loaded: data rows that produced values.
        lines_total: physical lines including the header.

    """

    values: pl.DataFrame
    quarantine: pl.DataFrame
    rows_found: int
    rows_loaded: int
    lines_total: int


def decode_export(path: Path) -> str:
    """Return the text of an export, trying UTF-8 then GB18030.

    Raises:
        InputFileError: the file is empty, binary, or in neither encoding.

    """
    data = path.read_bytes()
    if not data.strip():
        raise InputFileError(str(path), "file is empty")
    if b"\x00" in data[:65536]:
        raise InputFileError(str(path), "binary content (NUL bytes): not a CSV export")
    for enc in ENCODINGS:
        try:
            return data.decode(enc).lstrip("\ufeff")
        except UnicodeDecodeError:
            continue
    raise InputFileError(str(path), "not decodable as UTF-8 or GB18030")


def parse_export_text(text: str, source_file: str) -> ExportResult:
    """Parse the decoded text of a platform export into values and quarantine rows.

    Args:
        text: the whole file, decoded.
        source_file: the name recorded in every output row.

    Raises:
        InputFileError: the header lacks a required column.

    """
    df = pl.read_csv(
        text.encode("utf-8"), infer_schema=False, truncate_ragged_lines=True, quote_char='"'
    )
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise InputFileError(
            source_file, f"export header lacks required column(s) {', '.join(missing)}"
        )
    df = df.rename({k: v for k, v in HEADER_MAP.items() if k in df.columns})
    for col in HEADER_MAP.values():
        if col not in df.columns:
            df = df.with_columns(pl.lit(None, pl.String).alias(col))
    lines_total = text.count("\n") + (0 if text.endswith("\n") else 1)
    df = df.with_row_index("line", offset=2).with_columns(
        pl.col("line").cast(pl.Int64),
        pl.lit(source_file).alias("source_file"),
        pl.col("time_text")
        .str.strip_chars()
        .str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M:%S", strict=False)
        .dt.replace_time_zone(TZ_LOCAL)
        .alias("data_time"),
        pl.col("avg_text").str.strip_chars().cast(pl.Float64, strict=False).alias("avg"),
        pl.col("zs_text").str.strip_chars().cast(pl.Float64, strict=False).alias("zs"),
    )
    bad_time = pl.col("data_time").is_null()
    bad_mn = pl.col("mn").is_null() | (pl.col("mn").str.strip_chars() == "")
    bad_value = pl.col("avg").is_null()
    df = df.with_columns(
        pl.when(bad_mn)
        .then(pl.lit("export_mn"))
        .when(bad_time)
        .then(pl.lit("export_time"))
        .when(bad_value)
        .then(pl.lit("export_value"))
        .alias("rule")
    )
    raw = pl.concat_str([pl.col(c).fill_null("") for c in HEADER_MAP.values()], separator=",")
    quarantine = df.filter(pl.col("rule").is_not_null()).select(
        "source_file",
        "line",
        raw.alias("raw"),
        "rule",
        pl.when(pl.col("rule") == "export_time")
        .then(
            pl.format("监测时间 '{}' is not a time like 2024-05-01 13:00:00", pl.col("time_text"))
        )
        .when(pl.col("rule") == "export_value")
        .then(pl.format("小时均值 '{}' is not a number", pl.col("avg_text")))
        .otherwise(pl.lit("监测点编码 (MN) is empty"))
        .alias("reason"),
    )
    ok = df.filter(pl.col("rule").is_null())
    code_map = codes.map_2005_to_2017()
    known_2017 = codes.codes_2017()
    ok = ok.with_columns(
        pl.col("code_raw").str.strip_chars().alias("code_raw"),
        pl.col("mn").str.strip_chars().alias("mn"),
        pl.col("flag").str.strip_chars().alias("flag"),
    ).with_columns(
        pl.when(pl.col("code_raw").is_in(list(known_2017)))
        .then(pl.col("code_raw"))
        .otherwise(pl.col("code_raw").replace_strict(code_map, default=pl.col("code_raw")))
        .alias("pollutant"),
        pl.when(pl.col("code_raw").is_in(list(known_2017)))
        .then(pl.lit("hj212_2017"))
        .when(pl.col("code_raw").is_in(list(code_map)))
        .then(pl.lit("mapped_2005"))
        .otherwise(pl.lit("vendor"))
        .alias("code_status"),
        pl.lit("2061").alias("cn"),
    )

    def field_rows(rows: pl.DataFrame, field: str, column: str) -> pl.DataFrame:
        # One VALUES row per export row for one field (Avg, or ZsAvg where it was given).
        return rows.select(
            "source_file",
            "line",
            "mn",
            "cn",
            "data_time",
            "pollutant",
            "code_raw",
            "code_status",
            pl.lit(field).alias("field"),
            pl.lit(True).alias("field_known"),
            pl.col(column).alias("value"),
            pl.col(f"{column}_text").alias("value_text"),
            "flag",
        )

    avg = field_rows(ok, "Avg", "avg")
    zs = field_rows(ok.filter(pl.col("zs").is_not_null()), "ZsAvg", "zs")
    values = conform(pl.concat([avg, zs]).sort("line", "field"), VALUES)
    return ExportResult(
        values=values.with_columns(pl.col("data_time").cast(LOCAL_DT)),
        quarantine=conform(quarantine, QUARANTINE),
        rows_found=df.height,
        rows_loaded=ok.height,
        lines_total=lines_total,
    )


def read_platform_export(path: Path, source_file: str | None = None) -> ExportResult:
    """Read and parse one platform export file (I/O edge).

    Raises:
        InputFileError: the file cannot be read at all.

    """
    name = source_file or str(path)
    try:
        text = decode_export(path)
    except OSError as exc:
        if isinstance(exc, InputFileError):
            raise
        raise InputFileError(name, f"cannot read: {exc}") from exc
    try:
        return parse_export_text(text, name)
    except pl.exceptions.PolarsError as exc:
        raise InputFileError(name, f"not a readable CSV: {exc}") from exc
