"""Capture periods in one compiled pass (numba), to the bit what the Polars group-by gives.

:func:`transforms.hourly._group_periods` is the reference: it sorts the samples by time and
groups them by ``(mn, pollutant, period_start)`` with a hash group-by. At district scale
that group-by was half of the marts' rebuild (0.30 of 0.62 CPU-s for 40 stacks' 1.2 M
readings), most of it hashing three keys for groups of two samples. Here one pass visits
the rows in time order within each ``(mn, pollutant)`` (the order they are staged in, else
sorted): a pair's periods follow one another, so a row either adds to its pair's current
period or opens the next one. Each sum is Kahan's compensated sum in time order, which is
what Polars' in-memory grouped sum and mean compute: the same bits (the tests compare both,
with periods of 1 to 20 samples; the benchmark district's 18 M readings gave identical
marts).

The pass needs the keys as integers: ``mn``, ``pollutant`` and ``unit`` dictionary-coded
(Categorical, as :func:`transforms.hourly.aggregate_hourly` makes them). Anything else
(text keys, a null ``mn`` or time, a period with two different units) goes to the
reference, which is always right; so does everything when numba is not installed.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

#: Whether the compiled pass can run (numba is a dependency; a platform without its wheels
#: computes the periods with the reference group-by).
AVAILABLE = importlib.util.find_spec("numba") is not None

#: The sample's columns a period takes from its first sample, in time order.
FIRSTS: tuple[str, ...] = ("hour_start_utc", "cn", "stream", "p_min", "threshold", "delivery")
#: The period's key: one period per distinct value of these.
KEY: tuple[str, ...] = ("mn", "pollutant", "period_start")

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]


@cache
def _kernel() -> Any:
    # numba's import (0.3 s) only in the processes that compute periods.
    from transforms import _periods_kernel

    return _periods_kernel


def _codes(series: pl.Series) -> I64:
    return series.to_physical().cast(pl.Int64).fill_null(-1).to_numpy()


def _floats(series: pl.Series) -> tuple[F64, B]:
    return series.fill_null(0.0).to_numpy(), series.is_not_null().to_numpy()


def _bools(series: pl.Series) -> B:
    return series.fill_null(False).to_numpy()


def _columns(rows: pl.DataFrame) -> tuple[npt.NDArray[Any], ...]:
    """Return the kernel's per-row inputs that follow its keys, times, order and table size."""
    return (
        _codes(rows.get_column("unit")),
        _bools(rows.get_column("_valid")),
        _bools(rows.get_column("_usable")),
        _bools(rows.get_column("_t")),
        _bools(rows.get_column("_s")),
        *_floats(rows.get_column("_vu")),
        *_floats(rows.get_column("_w")),
        *_floats(rows.get_column("_cw")),
        *_floats(rows.get_column("_cou")),
    )


def group_periods(
    rows: pl.DataFrame, reference: Callable[[pl.LazyFrame], pl.LazyFrame]
) -> pl.DataFrame:
    """One row per capture period of ``rows``: what ``reference(rows.lazy())`` collects.

    Args:
        rows: samples with their period columns and masks
            (:func:`transforms.hourly._period_rows`).
        reference: the Polars aggregation (:func:`transforms.hourly._group_periods`), used
            when the compiled pass cannot take ``rows`` (see the module docstring).

    Returns:
        The reference's columns and values, periods in the order they open in time order
        (the reference's row order is arbitrary; nothing depends on it).

    """
    schema = rows.schema
    coded = all(isinstance(schema[c], pl.Categorical) for c in ("mn", "pollutant", "unit"))
    if (
        not AVAILABLE
        or not coded
        or rows.get_column("mn").null_count()
        or rows.get_column("period_start").null_count()
        or rows.get_column("data_time_utc").null_count()
    ):
        return reference(rows.lazy()).collect(engine="in-memory")
    mn = _codes(rows.get_column("mn"))
    pollutant = _codes(rows.get_column("pollutant"))
    start = rows.get_column("period_start").to_physical().to_numpy()
    time = rows.get_column("data_time_utc").to_physical().to_numpy()
    columns = _columns(rows)
    # Pairs in the kernel's table: at most (MNs x pollutants), at most one per row.
    pairs = min(
        len(time),
        rows.get_column("mn").n_unique() * rows.get_column("pollutant").n_unique(),
    )
    slots = 1 << max(4, (2 * pairs).bit_length())
    # The rows as they come first: the readings are staged by (mn, time), so each
    # (mn, pollutant) is usually in time order already, and reading them in place is
    # 3x faster than through a sort. Otherwise in time order, as the reference sorts
    # (within a period every timestamp is unique, so time alone fixes its sums' order).
    k = _kernel()
    first, unit_row, counts, sums, status = k.periods_pass(
        mn, pollutant, start, time, np.arange(len(time)), slots, *columns
    )
    if status == k.OUT_OF_ORDER:
        first, unit_row, counts, sums, status = k.periods_pass(
            mn, pollutant, start, time, np.argsort(time, kind="stable"), slots, *columns
        )
    if status != k.DONE:
        return reference(rows.lazy()).collect(engine="in-memory")
    firsts = rows.select(*KEY, *FIRSTS).gather(pl.Series(first))
    unit = rows.get_column("unit").gather(pl.Series(unit_row).set(pl.Series(unit_row < 0), None))
    n_vu = counts[5]
    mean = np.divide(sums[0], n_vu, out=np.zeros(len(n_vu)), where=n_vu > 0)
    return firsts.with_columns(
        unit,
        pl.Series("n_values", counts[0]),
        pl.Series("n_valid", counts[1]),
        pl.Series("n_usable", counts[2]),
        pl.Series("n_flag_t", counts[3]),
        pl.Series("n_flag_s", counts[4]),
        pl.Series("mean_u", mean).set(pl.Series(n_vu == 0), None),
        pl.Series("sum_w", sums[1]),
        pl.Series("sum_cw", sums[2]),
        pl.Series("n_w", counts[6]).cast(pl.UInt32),
        pl.Series("load_sent", sums[3]),
        pl.Series("n_load_sent", counts[7]).cast(pl.UInt32),
    )
