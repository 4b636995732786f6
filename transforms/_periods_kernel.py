"""The compiled pass of :mod:`transforms.periods` (imports numba: import it only to run it)."""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
import numpy.typing as npt

#: How the pass ended: done, or something the reference must decide (two units in one
#: period, two samples of a (mn, pollutant) at the same time, a missing key).
DONE, UNEXPECTED = 0, 1

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]


@numba.njit(nogil=True, cache=True)
def _pairs(mn: I64, pollutant: I64, slots: int) -> tuple[I64, int]:  # pragma: no cover
    # Each row's (mn, pollutant) as a dense id, in order of first appearance: open
    # addressing in a table of ``slots`` (a power of two, more than twice the pairs).
    mask = slots - 1
    key_mn = np.empty(slots, np.int64)
    key_pol = np.empty(slots, np.int64)
    pid = np.full(slots, -1, np.int64)
    pair = np.empty(len(mn), np.int64)
    n_pairs = 0
    for i in range(len(mn)):
        m = mn[i]
        p = pollutant[i]
        # Slots as unsigned indexes: numba checks a signed index for wrap-around (a
        # negative one counts from the end) on every access; these never are.
        h = np.uint64(((m * 0x9E3779B1 + p * 0x85EBCA77) ^ (m >> 7)) & mask)
        while pid[h] >= 0 and (key_mn[h] != m or key_pol[h] != p):
            h = (h + np.uint64(1)) & np.uint64(mask)
        if pid[h] < 0:
            key_mn[h] = m
            key_pol[h] = p
            pid[h] = n_pairs
            n_pairs += 1
        pair[i] = pid[h]
    return pair, n_pairs


@numba.njit(nogil=True, cache=True)
def _by_pair_in_time(
    pair: I64, n_pairs: int, time: I64
) -> tuple[I64, I64, bool]:  # pragma: no cover
    # Row numbers grouped by pair (a counting sort: stable), each pair's rows in time
    # order (sorted only where they are not already). False: two rows of a pair at the
    # same time, whose order the reference leaves to its sort.
    n = len(pair)
    offsets = np.zeros(n_pairs + 1, np.int64)
    # Indexes read from arrays are cast to unsigned (see _pairs).
    for i in range(n):
        offsets[np.uint64(pair[i] + 1)] += 1
    for p in range(n_pairs):
        offsets[p + 1] += offsets[p]
    fill = offsets[:-1].copy()
    rows = np.empty(n, np.int64)
    for i in range(n):
        pu = np.uint64(pair[i])
        rows[np.uint64(fill[pu])] = i
        fill[pu] += 1
    for p in range(n_pairs):
        a, b = offsets[p], offsets[p + 1]
        in_order = True
        for j in range(a + 1, b):
            if time[np.uint64(rows[j])] <= time[np.uint64(rows[j - 1])]:
                in_order = False
                break
        if not in_order:
            seg = rows[a:b].copy()
            rows[a:b] = seg[np.argsort(time[seg], kind="mergesort")]
            for j in range(a + 1, b):
                if time[rows[j]] == time[rows[j - 1]]:
                    return rows, offsets, False
    return rows, offsets, True


@numba.njit(inline="always")
def _add(s: float, c: float, x: float) -> tuple[float, float]:  # pragma: no cover
    # One step of Kahan's compensated sum: what Polars' in-memory grouped sum and mean do
    # (checked against Polars on random groups of 1-300 values: the same bits; a plain
    # running sum was not).
    y = x - c
    t = s + y
    return t, (t - s) - y


@numba.njit(nogil=True, cache=True)
def periods_pass(  # pragma: no cover  (compiled; the tests run it through group_periods)
    mn: I64,
    pollutant: I64,
    start: I64,
    time: I64,
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
    """Sum every capture period of the rows; see :mod:`transforms.periods`.

    The rows are taken (mn, pollutant) by (mn, pollutant), each pair's in time order.
    Within a pair the period starts never go back in time (a period lies in its hour,
    after its own start, and an hour has one source), so a pair's periods are runs of
    rows with the same start, each summed in its own registers. Every sum is Kahan's, in
    time order, as Polars' in-memory grouped sum and mean over the time-sorted rows.

    Returns:
        ``(first, unit_row, counts, sums, status)``: per period its first row (in time),
        a row holding its unit (-1: none), the counts (values, valid, usable, T, S,
        ``_vu``, ``_w``, ``_cou`` non-null) and the sums (``_vu``, ``_w``, ``_cw``,
        ``_cou``) as one array per column, periods pair by pair in time; ``status``
        (``DONE``, or ``UNEXPECTED`` with empty arrays).

    """
    n = len(mn)
    pair, n_pairs = _pairs(mn, pollutant, slots)
    rows, offsets, ok = _by_pair_in_time(pair, n_pairs, time)
    first = np.empty(n, np.int64)
    unit_row = np.empty(n, np.int64)
    counts = np.empty((8, n), np.int64)
    sums = np.empty((4, n), np.float64)
    g = 0
    status = DONE if ok else UNEXPECTED
    for p in range(n_pairs if ok else 0):
        j = offsets[p]
        end = offsets[p + 1]
        while j < end:
            i0 = rows[j]
            st = start[np.uint64(i0)]
            u = -1
            c0 = c1 = c2 = c3 = c4 = c5 = c6 = c7 = 0
            s0 = s1 = s2 = s3 = 0.0
            k0 = k1 = k2 = k3 = 0.0
            # Row numbers as unsigned indexes (see _pairs): some fifteen accesses a row.
            while j < end and start[np.uint64(rows[j])] == st:
                i = rows[j]
                iu = np.uint64(i)
                c0 += 1
                c1 += valid[iu]
                c2 += usable[iu]
                c3 += flag_t[iu]
                c4 += flag_s[iu]
                if unit[iu] >= 0:
                    if u < 0:
                        u = i
                    elif unit[np.uint64(u)] != unit[iu]:
                        status = UNEXPECTED
                if vu_ok[iu]:
                    s0, k0 = _add(s0, k0, vu[iu])
                    c5 += 1
                if w_ok[iu]:
                    s1, k1 = _add(s1, k1, w[iu])
                    c6 += 1
                if cw_ok[iu]:
                    s2, k2 = _add(s2, k2, cw[iu])
                if cou_ok[iu]:
                    s3, k3 = _add(s3, k3, cou[iu])
                    c7 += 1
                j += 1
            if j < end and start[np.uint64(rows[j])] < st:
                status = UNEXPECTED
            first[g] = i0
            unit_row[g] = u
            counts[0, g] = c0
            counts[1, g] = c1
            counts[2, g] = c2
            counts[3, g] = c3
            counts[4, g] = c4
            counts[5, g] = c5
            counts[6, g] = c6
            counts[7, g] = c7
            sums[0, g] = s0
            sums[1, g] = s1
            sums[2, g] = s2
            sums[3, g] = s3
            g += 1
        if status != DONE:
            break
    if status != DONE:
        g = 0
    return first[:g], unit_row[:g], counts[:, :g], sums[:, :g], status
