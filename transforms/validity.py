"""Data-flag and data-capture rules shared by the hourly and daily aggregations.

Flags (HJ 212-2017 Table 8, pipeline handling from ``shared/domain/BRIEF.md`` §1.6):

* ``N`` (or no flag sent): valid. Only these count toward data capture (``n_valid``, minute,
  period, hour and day validity), as Appendix C derives minute and hour flags from N data.
* ``T`` (above the measuring range): **not valid, but not dropped.** A T value is a *lower
  bound* of the true concentration. It enters the mean at face value, so an hour (or day)
  containing T data carries a value that is a lower bound of the true mean, and it is
  counted in ``n_flag_t``. Data capture still counts N only, so a saturated hour can be
  ``valid = False`` while its ``value`` (a floor) and ``n_flag_t`` stay visible. Controls
  read ``n_flag_t > 0`` as: exceedance certain if ``value`` is above the limit, possible
  otherwise. We rejected "max(mean, max T value)": it turns one saturated second into an
  hourly mean, which overstates rather than bounds. Without T data the values are exactly
  those of Annex D.
* ``S`` (manually set value): excluded from means and from capture (a common falsification
  vector), counted in ``n_flag_s`` for audit.
* ``F``, ``M``, ``D``, ``C``, ``B`` and unknown flags: excluded from means and capture.

Data capture (HJ 212-2017 Annex D, thresholds in :class:`zwy.settings.ValiditySettings`):

* Gas minute from real-time data: ``n >= min(gas_minute_min_values, ceil(60 / rtd_interval_s))``
  valid values. Formula 23's 12 values a minute assume 5 s sampling; a device that uploads
  every 30-60 s (RtdInterval) cannot send 12, so full coverage at its own interval is
  required instead. The gas hour needs ``gas_hour_min_minutes`` valid minutes, the gas day
  ``gas_day_min_hours`` valid hours.
* Water period from real-time data: full coverage at the device interval, capped at the
  5 s slices of Annex D.1 (120 slices per 10 min): ``n >= ceil(period_s / max(interval, 5))``.
  A water hour needs ``water_hour_min_periods`` valid periods, a water day
  ``water_day_min_hours`` valid hours.
"""

from __future__ import annotations

import polars as pl

#: Flag of normal instrument data.
FLAG_NORMAL = "N"
#: Flag of data above the measuring range (kept as a lower bound).
FLAG_OVER_RANGE = "T"
#: Flag of manually set data (excluded, audited).
FLAG_SET_MANUALLY = "S"

#: Shortest real-time slice Annex D knows (instantaneous values at least every 5 s).
MIN_SLICE_S = 5


def is_valid(flag: pl.Expr, value: pl.Expr) -> pl.Expr:
    """Return whether a value counts as valid data: a number flagged N or not flagged."""
    return value.is_not_null() & (flag.is_null() | (flag == FLAG_NORMAL))


def is_usable(flag: pl.Expr, value: pl.Expr) -> pl.Expr:
    """Return whether a value enters a mean: valid, or over-range T (as a lower bound)."""
    return is_valid(flag, value) | (value.is_not_null() & (flag == FLAG_OVER_RANGE))


def is_flag(flag: pl.Expr, code: str) -> pl.Expr:
    """Return a null-safe test of ``flag == code``."""
    return (flag == code).fill_null(False)


def gas_minute_min_values(rtd_interval_s: pl.Expr, minute_min_values: int) -> pl.Expr:
    """Return the valid values a gas minute needs: ``min(n_min, ceil(60 / interval))``.

    Args:
        rtd_interval_s: the device's real-time interval in seconds (positive).
        minute_min_values: ``ValiditySettings.gas_minute_min_values`` (12 in Annex D).

    Returns:
        An Int64 expression, at least 1.

    """
    per_minute = (60.0 / rtd_interval_s.clip(lower_bound=1)).ceil().cast(pl.Int64)
    return pl.min_horizontal(per_minute, pl.lit(minute_min_values, pl.Int64)).clip(lower_bound=1)


def water_period_min_slices(rtd_interval_s: pl.Expr, period_min: pl.Expr) -> pl.Expr:
    """Return the valid real-time slices a water period needs (full coverage, 5 s cap).

    Args:
        rtd_interval_s: the device's real-time interval in seconds.
        period_min: the period length in minutes (the device's MinInterval).

    Returns:
        An Int64 expression, at least 1.

    """
    slice_s = rtd_interval_s.clip(lower_bound=MIN_SLICE_S)
    return ((period_min * 60) / slice_s).ceil().cast(pl.Int64).clip(lower_bound=1)
