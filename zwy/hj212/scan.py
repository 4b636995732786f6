"""Compiled single-pass scanning of HJ 212 data segments (numba): CRCs and ``key=value`` items.

The parser's whole-column Polars/numpy path (:mod:`zwy.hj212.parse`, :mod:`zwy.hj212.frames`)
makes several whole-column passes over every item of a day (CSV reader, key encoding);
this module walks the bytes of the data segments in compiled loops and gives the parser the
same things:

- :func:`crc_many`: the Appendix A or CRC-16/MODBUS register of each string, equal to
  :func:`zwy.hj212.crc.crc_appendix_a` / :func:`~zwy.hj212.crc.crc_modbus` byte for byte;
- :func:`split_items`: each segment cut into items exactly as the parser's reference split
  (``_items_slow``) cuts it, with each item's key as an integer id over the distinct keys
  and its value text (null for an item without ``=``).

Both release the GIL (``nogil``), so two parse workers run on two cores. Compiled code is
cached next to this file (``__pycache__``; ``NUMBA_CACHE_DIR`` moves it), so only the first
run on a machine pays the compilation (about 2 s; loading the cached code: 0.2-0.4 s).

When numba cannot be imported the parser keeps its Polars/numpy path (:data:`AVAILABLE`),
and both paths must agree: ``tests/hj212/test_hj212_scan.py`` checks it on generated logs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa

from zwy.hj212.crc import TABLE_APPENDIX_A, TABLE_MODBUS

try:  # numba has wheels for the supported Pythons; a platform without them parses anyway
    import numba

    AVAILABLE = True
except ImportError:  # pragma: no cover
    AVAILABLE = False

F = TypeVar("F", bound=Callable[..., Any])


def _compiled(fn: F) -> F:
    """Compile ``fn`` with numba (nopython, GIL released, cached on disk) when installed."""
    if not AVAILABLE:  # pragma: no cover
        return fn
    return cast(F, numba.njit(nogil=True, cache=True)(fn))


U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]
U16 = npt.NDArray[np.uint16]

_TA = np.asarray(TABLE_APPENDIX_A, dtype=np.uint16)
_TM = np.asarray(TABLE_MODBUS, dtype=np.uint16)

#: Distinct keys one call may hold; past it :func:`split_items` answers None (the caller
#: uses the reference path). Real days have a few hundred; this bounds a garbage day.
MAX_KEYS = 1 << 15
_HASH_SLOTS = 1 << 16

_SEMI, _COMMA, _LF, _EQ, _AMP = 59, 44, 10, 61, 38  # ; , \n = &
_CP_MARK = np.frombuffer(b"CP=&&", dtype=np.uint8).copy()


# --- kernels ----------------------------------------------------------------------------------


@_compiled
def _crc_step(reg: int, b: int, modbus: bool, ta: U16, tm: U16) -> int:  # pragma: no cover
    if modbus:
        return int((reg >> 8) ^ tm[(reg ^ b) & 0xFF])
    return int(ta[(reg >> 8) ^ b])


@_compiled
def _crc_kernel(
    buf: U8, starts: I64, ends: I64, modbus: bool, ta: U16, tm: U16
) -> I64:  # pragma: no cover
    # A CRC is a chain of dependent table look-ups (each waits for the last), so one string
    # at a time leaves the core idle between them. Four strings walked side by side, over
    # the length they share, keep four chains in flight: 3.2x the rate of one at a time on
    # a district day's exhaust-gas frames (0.071 -> 0.022 s per 32 MB; eight lanes gave
    # no more). The 16-bit tables halve the cache they occupy.
    n = len(starts)
    out = np.empty(n, dtype=np.int64)
    i = 0
    while i + 4 <= n:
        s0, s1, s2, s3 = starts[i], starts[i + 1], starts[i + 2], starts[i + 3]
        l0, l1, l2, l3 = ends[i] - s0, ends[i + 1] - s1, ends[i + 2] - s2, ends[i + 3] - s3
        shared = min(min(l0, l1), min(l2, l3))
        r0 = r1 = r2 = r3 = 0xFFFF
        for k in range(shared):
            r0 = _crc_step(r0, buf[s0 + k], modbus, ta, tm)
            r1 = _crc_step(r1, buf[s1 + k], modbus, ta, tm)
            r2 = _crc_step(r2, buf[s2 + k], modbus, ta, tm)
            r3 = _crc_step(r3, buf[s3 + k], modbus, ta, tm)
        for k in range(s0 + shared, s0 + l0):
            r0 = _crc_step(r0, buf[k], modbus, ta, tm)
        for k in range(s1 + shared, s1 + l1):
            r1 = _crc_step(r1, buf[k], modbus, ta, tm)
        for k in range(s2 + shared, s2 + l2):
            r2 = _crc_step(r2, buf[k], modbus, ta, tm)
        for k in range(s3 + shared, s3 + l3):
            r3 = _crc_step(r3, buf[k], modbus, ta, tm)
        out[i], out[i + 1], out[i + 2], out[i + 3] = r0, r1, r2, r3
        i += 4
    for q in range(i, n):
        reg = 0xFFFF
        for k in range(starts[q], ends[q]):
            reg = _crc_step(reg, buf[k], modbus, ta, tm)
        out[q] = reg
    return out


@_compiled
def _text_end(buf: U8, s: int, e: int) -> int:  # pragma: no cover
    # The closing "&&" is not part of the last item (the reference path drops it when the
    # segment has at least 7 bytes, i.e. room for "CP=&&" and "&&").
    if e - s >= 7 and buf[e - 1] == _AMP and buf[e - 2] == _AMP:
        return e - 2
    return e


@_compiled
def _find_mark(buf: U8, s: int, e: int, mark: U8) -> int:  # pragma: no cover
    m = len(mark)
    for p in range(s, e - m + 1):
        ok = True
        for k in range(m):
            if buf[p + k] != mark[k]:
                ok = False
                break
        if ok:
            return p
    return -1


@_compiled
def _is_sep(b: int) -> bool:  # pragma: no cover
    return b == _SEMI or b == _COMMA or b == _LF


@_compiled
def _pieces(buf: U8, s: int, e: int) -> int:  # pragma: no cover
    c = 1
    for j in range(s, e):
        if _is_sep(buf[j]):
            c += 1
    return c


@_compiled
def _emit(
    buf: U8,
    s: int,
    e: int,
    fid: int,
    row: int,
    item_fid: I64,
    key_s: I64,
    key_e: I64,
    val_s: I64,
    val_e: I64,
) -> int:  # pragma: no cover
    # Cut [s, e) at ; , \n into pieces; each piece at its first "=" into key and value.
    start = s
    for j in range(s, e + 1):
        if j == e or _is_sep(buf[j]):
            eq = -1
            for k in range(start, j):
                if buf[k] == _EQ:
                    eq = k
                    break
            item_fid[row] = fid
            key_s[row] = start
            if eq < 0:
                key_e[row] = j
                val_s[row] = -1
                val_e[row] = -1
            else:
                key_e[row] = eq
                val_s[row] = eq + 1
                val_e[row] = j
            row += 1
            start = j + 1
    return row


@_compiled
def _split_kernel(
    buf: U8, offs: I64, mark: U8, max_keys: int, slots: int
) -> tuple[I64, I64, I64, U8, I64, I64, npt.NDArray[np.bool_], int]:  # pragma: no cover
    n = len(offs) - 1
    # Pass 1: items per segment, to size the outputs.
    total = 0
    marks = np.empty(n, dtype=np.int64)
    for i in range(n):
        s, e = offs[i], offs[i + 1]
        t = _text_end(buf, s, e)
        p = _find_mark(buf, s, t, mark)
        marks[i] = p
        if p >= 0:
            total += _pieces(buf, s, p) + 1 + _pieces(buf, p + 5, t)
        else:
            total += _pieces(buf, s, t)
    item_fid = np.empty(total, dtype=np.int64)
    key_s = np.empty(total, dtype=np.int64)
    key_e = np.empty(total, dtype=np.int64)
    val_s = np.empty(total, dtype=np.int64)
    val_e = np.empty(total, dtype=np.int64)
    # Pass 2: the items. "CP=&&" becomes the item "CP=" (key CP, empty value) between the
    # items before and after it, as the reference path's "\nCP=\n" replacement does.
    row = 0
    for i in range(n):
        s, e = offs[i], offs[i + 1]
        t = _text_end(buf, s, e)
        p = marks[i]
        if p >= 0:
            row = _emit(buf, s, p, i, row, item_fid, key_s, key_e, val_s, val_e)
            item_fid[row] = i
            key_s[row] = p
            key_e[row] = p + 2
            val_s[row] = p + 3
            val_e[row] = p + 3
            row += 1
            row = _emit(buf, p + 5, t, i, row, item_fid, key_s, key_e, val_s, val_e)
        else:
            row = _emit(buf, s, t, i, row, item_fid, key_s, key_e, val_s, val_e)
    # Pass 3: key ids (open addressing on FNV-1a, keys compared byte by byte) and the value
    # bytes copied into one Arrow-style buffer with offsets.
    table = np.full(slots, -1, dtype=np.int64)
    rep_s = np.empty(max_keys, dtype=np.int64)
    rep_e = np.empty(max_keys, dtype=np.int64)
    n_keys = 0
    # Items with an empty key ("", "=5") are left out: every rule of the parser ignores
    # them, and they are not values.
    out_fid = np.empty(total, dtype=np.int64)
    kid = np.empty(total, dtype=np.int64)
    has_val = np.empty(total, dtype=np.bool_)
    val_off = np.empty(total + 1, dtype=np.int64)
    val_buf = np.empty(max(1, offs[n] - offs[0]), dtype=np.uint8)
    pos = 0
    w = 0
    mask = slots - 1
    for r in range(total):
        a, b = key_s[r], key_e[r]
        if b == a:
            continue
        h = np.uint64(14695981039346656037)
        for j in range(a, b):
            h = (h ^ np.uint64(buf[j])) * np.uint64(1099511628211)
        slot = np.int64(h & np.uint64(mask))
        while True:
            k = table[slot]
            if k < 0:
                if n_keys >= max_keys:
                    return out_fid, kid, val_off, val_buf, rep_s, rep_e, has_val, -1
                table[slot] = n_keys
                rep_s[n_keys] = a
                rep_e[n_keys] = b
                k = n_keys
                n_keys += 1
                break
            if rep_e[k] - rep_s[k] == b - a:
                same = True
                for j in range(b - a):
                    if buf[rep_s[k] + j] != buf[a + j]:
                        same = False
                        break
                if same:
                    break
            slot = (slot + 1) & mask
        out_fid[w] = item_fid[r]
        kid[w] = k
        val_off[w] = pos
        has_val[w] = val_s[r] >= 0
        if val_s[r] >= 0:
            for j in range(val_s[r], val_e[r]):
                val_buf[pos] = buf[j]
                pos += 1
        w += 1
    val_off[w] = pos
    return (
        out_fid[:w],
        kid[:w],
        val_off[: w + 1],
        val_buf[:pos],
        rep_s[:n_keys],
        rep_e[:n_keys],
        has_val[:w],
        n_keys,
    )


# --- Python side ------------------------------------------------------------------------------


def string_buffers(values: pl.Series) -> tuple[U8, I64]:
    """Return the UTF-8 bytes and int64 offsets of a String series (nulls as empty strings)."""
    arr = values.fill_null("").to_arrow(compat_level=pl.CompatLevel.oldest())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if not pa.types.is_large_string(arr.type):
        arr = arr.cast(pa.large_string())
    n = len(arr)
    offs = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset : arr.offset + n + 1]
    data = arr.buffers()[2]
    buf = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
    return buf, offs


def crc_many(buf: U8, offs: I64, algorithm: str = "appendix_a", rows: I64 | None = None) -> I64:
    """CRC register of each string ``buf[offs[i]:offs[i+1]]`` (empty strings give 0xFFFF).

    ``rows``: only these strings (the answer is aligned with ``rows``).
    """
    if algorithm not in ("appendix_a", "modbus"):
        raise ValueError(f"unknown CRC algorithm {algorithm!r}")
    starts, ends = offs[:-1], offs[1:]
    if rows is not None:
        starts, ends = starts[rows], ends[rows]
    out: I64 = _crc_kernel(buf, starts, ends, algorithm == "modbus", _TA, _TM)
    return out


@dataclass(frozen=True)
class SplitItems:
    """Items of every segment, in segment order then item order.

    Attributes:
        fid: the segment (row) of each item.
        kid: the item's key as a row of ``keys`` (sorted distinct keys). Items with an
            empty key (``;;``, ``=5``) are left out: the parser ignores them.
        keys: the distinct non-empty keys, sorted.
        value_text: the text after the first ``=``; null for an item without ``=``.

    """

    fid: I64
    kid: I64
    keys: list[str]
    value_text: pl.Series


def split_items(buf: U8, offs: I64) -> SplitItems | None:
    """Cut each segment into ``key=value`` items; None past :data:`MAX_KEYS` distinct keys.

    The cut is the reference path's: the closing ``&&`` of a segment of at least 7 bytes
    is dropped, the first ``CP=&&`` becomes an item ``CP=`` of its own, items are separated
    by ``;`` and ``,`` and split at their first ``=``.
    """
    fid, kid, val_off, val_buf, rep_s, rep_e, has_value, n_keys = _split_kernel(
        buf, offs, _CP_MARK, MAX_KEYS, _HASH_SLOTS
    )
    if n_keys < 0:
        return None
    names = [bytes(buf[int(a) : int(b)]).decode("utf-8") for a, b in zip(rep_s, rep_e, strict=True)]
    order = sorted(range(len(names)), key=names.__getitem__)
    lut = np.empty(len(names), dtype=np.int64)
    lut[np.asarray(order, dtype=np.int64)] = np.arange(len(names), dtype=np.int64)
    kid = lut[kid]
    # Values without "=" are null (the kernel left them empty).
    bitmap = pa.py_buffer(np.packbits(has_value, bitorder="little"))
    arr = pa.LargeStringArray.from_buffers(
        len(fid), pa.py_buffer(val_off), pa.py_buffer(val_buf), bitmap
    )
    value_text = pl.Series("value_text", arr, dtype=pl.String)
    return SplitItems(fid=fid, kid=kid, keys=[names[i] for i in order], value_text=value_text)
