"""Loaders for the regulatory reference tables kept as data in ``expectations/catalog/``.

Limits and reference O2 values live in CSV files with their legal source and a
``verified``/``unverified`` status taken from ``shared/domain/BRIEF.md``; code never holds a
limit. These functions are the I/O edge that reads them.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import polars as pl

from zwy.errors import ConfigError

CATALOG = "catalog"


def _read(name: str) -> pl.DataFrame:
    try:
        text = resources.files("expectations").joinpath(CATALOG, name).read_bytes()
    except FileNotFoundError as exc:
        raise ConfigError(f"expectations/{CATALOG}/{name} is missing") from exc
    return pl.read_csv(text, infer_schema=False)


@lru_cache(maxsize=1)
def load_reference_o2() -> pl.DataFrame:
    """Return the reference-O2 table: standard, applies_to, reference_o2_pct, source, status."""
    df = _read("reference_o2.csv")
    return df.with_columns(pl.col("reference_o2_pct").cast(pl.Float64))


@lru_cache(maxsize=1)
def load_limits() -> pl.DataFrame:
    """Return the limits table (one row per standard, class, pollutant, period and validity)."""
    df = _read("limits.csv")
    return df.with_columns(
        pl.col("limit_low").replace("", None).cast(pl.Float64),
        pl.col("limit_high").replace("", None).cast(pl.Float64),
        pl.col("valid_from").str.to_date(),
        pl.col("valid_to").replace("", None).str.to_date(),
    )
