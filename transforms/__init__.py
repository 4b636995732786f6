"""Pure Polars transforms: values → readings → hourly → daily. No file or database I/O.

Public entry points: :func:`transforms.readings.build_readings`,
:func:`transforms.hourly.aggregate_hourly`, :func:`transforms.daily.aggregate_daily`.
"""

from __future__ import annotations

import polars as pl


def conform_lazy(frame: pl.LazyFrame, schema: pl.Schema) -> pl.LazyFrame:
    """Select and cast a lazy ``frame`` to ``schema`` (the lazy twin of ``contracts.conform``).

    Missing columns become typed nulls, extra columns are dropped, order follows ``schema``.
    """
    names = set(frame.collect_schema().names())
    return frame.select(
        [
            (pl.col(name) if name in names else pl.lit(None)).cast(dtype).alias(name)
            for name, dtype in schema.items()
        ]
    )
