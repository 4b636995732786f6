"""Capture periods in one compiled pass (numba), to the bit what the Polars group-by gives.

:func:`transforms.hourly._group_periods` is the reference: it sorts the samples by time and
groups them by ``(mn, pollutant, period_start)`` with a hash group-by. At district scale
that group-by was half of the marts' rebuild (0.30 of 0.62 CPU-s for 40 stacks' 1.2 M
readings), most of it hashing three keys for groups of two samples. Here the rows are
bucketed by ``(mn, pollutant)`` (a counting sort), each pair's rows in time order (sorted
only where they are not: they usually come in time order); a pair's periods then follow
one another, and each is summed in registers. Each sum is Kahan's compensated sum in time
order, which is what Polars' in-memory grouped sum and mean compute: the same bits (the
tests compare both, with periods of 1 to 20 samples, in and out of order; the benchmark
district's 18 M readings gave identical marts).

The pass needs the keys as integers: ``mn``, ``pollutant`` and ``unit`` dictionary-coded
(Categorical, as :func:`transforms.hourly.aggregate_hourly` makes them). Anything else
(text keys, a null ``mn`` or time, two samples of a pair at one time, a period with two
different units) goes to the reference, which is always right; so does everything when
numba is not installed.
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


def _frozen(array: npt.NDArray[Any]) -> npt.NDArray[Any]:
    # Every input read-only: Polars hands out some arrays read-only and some writable,
    # and numba compiles (and caches) one version of the kernel per combination.
    view = array.view()
    view.flags.writeable = False
    return view


def _codes(series: pl.Series) -> I64:
    return _frozen(series.to_physical().cast(pl.Int64).fill_null(-1).to_numpy())


def _floats(series: pl.Series) -> tuple[F64, B]:
    return _frozen(series.fill_null(0.0).to_numpy()), _frozen(series.is_not_null().to_numpy())


def _bools(series: pl.Series) -> B:
    return _frozen(series.fill_null(False).to_numpy())


def _inputs(rows: pl.DataFrame) -> tuple[Any, ...]:
    """Return the arguments of ``periods_pass`` for ``rows`` (keys, times, table size, columns)."""
    time = _frozen(rows.get_column("data_time_utc").to_physical().to_numpy())
    # Pairs in the kernel's table: at most (MNs x pollutants), at most one per row.
    pairs = min(
        len(time),
        rows.get_column("mn").n_unique() * rows.get_column("pollutant").n_unique(),
    )
    return (
        _codes(rows.get_column("mn")),
        _codes(rows.get_column("pollutant")),
        _frozen(rows.get_column("period_start").to_physical().to_numpy()),
        time,
        1 << max(4, (2 * pairs).bit_length()),
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
        The reference's columns and values; periods by (mn, pollutant) in the order the
        pairs first appear, each pair's in time (the reference's row order is arbitrary;
        nothing depends on it).

    """
    schema = rows.schema
    takes = (
        AVAILABLE
        and all(isinstance(schema[c], pl.Categorical) for c in ("mn", "pollutant", "unit"))
        and not rows.get_column("mn").null_count()
        and not rows.get_column("period_start").null_count()
        and not rows.get_column("data_time_utc").null_count()
    )
    if not takes:
        return reference(rows.lazy()).collect(engine="in-memory")
    k = _kernel()
    first, unit_row, counts, sums, status = k.periods_pass(*_inputs(rows))
    if status != k.DONE:  # what only the reference decides (the module docstring)
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
