"""The compiled pass of :mod:`transforms.periods` (imports numba: import it only to run it)."""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
import numpy.typing as npt

#: How the pass ended: done; the rows were not in time order within a (mn, pollutant)
#: (sort them and run again); or something the reference must decide (two units in a
#: period, a period start that goes back in time).
DONE, OUT_OF_ORDER, UNEXPECTED = 0, 1, 2

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]


@numba.njit(inline="always")
def _add(sums: F64, comp: F64, j: int, g: int, x: float) -> None:  # pragma: no cover
    # Kahan summation, as Polars' in-memory grouped sum and mean (checked against Polars
    # on random groups of 1-300 values: the same bits; a plain running sum was not).
    y = x - comp[j, g]
    t = sums[j, g] + y
    comp[j, g] = (t - sums[j, g]) - y
    sums[j, g] = t


@numba.njit(nogil=True, cache=True)
def periods_pass(  # pragma: no cover  (compiled; the tests run it through group_periods)
    mn: I64,
    pollutant: I64,
    start: I64,
    time: I64,
    order: I64,
    slots: int,
    unit: I64,
    valid: B,
    usable: B,
    flag_t: B,
    flag_s: B,
    vu: F64,
    vu_ok: B,
    w: F64,
    w_ok: B,
    cw: F64,
    cw_ok: B,
    cou: F64,
    cou_ok: B,
) -> tuple[Any, ...]:
    """Sum every capture period of the rows, visited in ``order``; see :mod:`transforms.periods`.

    Within one (mn, pollutant) the period starts never go back in time (a period lies in
    its hour, after its own start, and an hour has one source), so a pair only needs its
    current period: the pair is found by open addressing in a table of ``slots`` (a power
    of two, more than twice the pairs), and a row with a new start opens the next period.
    Every sum adds its period's rows in visiting order with Kahan's compensation, as
    Polars' grouped sum and mean do over the time-sorted rows: the caller makes sure the
    visiting order is time order within each pair (checked here: else ``OUT_OF_ORDER``).

    Returns:
        ``(first, unit_row, counts, sums, status)``: per period its first row, a row
        holding its unit (-1: none), the counts (values, valid, usable, T, S, ``_vu``,
        ``_w``, ``_cou`` non-null) and sums (``_vu``, ``_w``, ``_cw``, ``_cou``), each
        an array per column, periods in the order they opened; ``status`` (``DONE`` or why
        not, the arrays then empty).

    """
    n = len(order)
    mask = slots - 1
    pair_mn = np.empty(slots, np.int64)
    pair_pol = np.empty(slots, np.int64)
    pair_start = np.empty(slots, np.int64)
    pair_time = np.empty(slots, np.int64)
    pair_group = np.full(slots, -1, np.int64)
    first = np.empty(n, np.int64)
    unit_row = np.empty(n, np.int64)
    counts = np.zeros((8, n), np.int64)
    sums = np.zeros((4, n), np.float64)
    comp = np.zeros((4, n), np.float64)  # the sums' Kahan compensations
    groups = 0
    status = DONE
    for k in range(n):
        i = order[k]
        m = mn[i]
        p = pollutant[i]
        h = ((m * 0x9E3779B1 + p * 0x85EBCA77) ^ (m >> 7)) & mask
        while pair_group[h] >= 0 and (pair_mn[h] != m or pair_pol[h] != p):
            h = (h + 1) & mask
        g = pair_group[h]
        if g >= 0 and time[i] <= pair_time[h]:
            status = OUT_OF_ORDER
            break
        pair_time[h] = time[i]
        if g < 0 or pair_start[h] != start[i]:
            if g < 0:
                pair_mn[h] = m
                pair_pol[h] = p
            elif start[i] < pair_start[h]:
                status = UNEXPECTED
                break
            g = groups
            groups += 1
            first[g] = i
            unit_row[g] = -1
            pair_start[h] = start[i]
            pair_group[h] = g
        counts[0, g] += 1
        counts[1, g] += valid[i]
        counts[2, g] += usable[i]
        counts[3, g] += flag_t[i]
        counts[4, g] += flag_s[i]
        if unit[i] >= 0:
            u = unit_row[g]
            if u < 0:
                unit_row[g] = i
            elif unit[u] != unit[i]:
                status = UNEXPECTED
                break
        if vu_ok[i]:
            _add(sums, comp, 0, g, vu[i])
            counts[5, g] += 1
        if w_ok[i]:
            _add(sums, comp, 1, g, w[i])
            counts[6, g] += 1
        if cw_ok[i]:
            _add(sums, comp, 2, g, cw[i])
        if cou_ok[i]:
            _add(sums, comp, 3, g, cou[i])
            counts[7, g] += 1
    if status != DONE:
        groups = 0
    return first[:groups], unit_row[:groups], counts[:, :groups], sums[:, :groups], status
