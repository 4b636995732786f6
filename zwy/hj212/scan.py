"""Compiled single-pass scanning of HJ 212 lines and data segments (numba).

The parser's whole-column Polars/numpy path (:mod:`zwy.hj212.parse`, :mod:`zwy.hj212.frames`)
makes several whole-column passes over every line and item of a day; this module walks the
bytes in compiled loops and gives the parser the same things:

- :func:`frame_lines`: which lines hold a frame, and for the simple ones (ASCII, one ``##``
  followed by four digits: nearly all) where the frame and its ``CP=&&`` are, so that
  :func:`zwy.hj212.parse._locate_compiled` computes the frame fields from byte offsets
  and hands the strings to Polars as views over the lines' bytes (:func:`view_series`);
- :func:`crc_spans` / :func:`crc_many`: the Appendix A or CRC-16/MODBUS register of each
  string, equal to :func:`zwy.hj212.crc.crc_appendix_a` / :func:`~zwy.hj212.crc.crc_modbus`
  byte for byte;
- :func:`split_spans` / :func:`split_items`: each segment cut into items exactly as the
  parser's reference split (``_items_slow``) cuts it, with each item's key as an integer id
  over the distinct keys and its value text (null for an item without ``=``);
- :func:`item_roles`, :func:`frame_firsts`, :func:`gather_texts` and :func:`value_rows`:
  one pass each over the items for what the parser's numpy arithmetic and gathers compute
  in several (each item's part of its frame, each frame's header fields and their texts,
  the VALUES rows and their flags).

All release the GIL (``nogil``), so two parse workers run on two cores. Compiled code is
cached next to this file (``__pycache__``; ``NUMBA_CACHE_DIR`` moves it), so only the first
run on a machine pays the compilation (a few seconds; loading the cached code: 0.2-0.4 s).

When numba cannot be imported the parser keeps its Polars/numpy path (:data:`AVAILABLE`),
and both paths must agree: ``tests/hj212/test_hj212_scan.py`` checks it on generated logs
and on every kind of line the framing distinguishes.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar, cast

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


def _inlined(fn: F) -> F:
    """Compile a small helper that numba inlines into its callers (no call per byte or item).

    A compiled call passes each array as several machine words; per item, that cost more
    than the helper's own work.
    """
    if not AVAILABLE:  # pragma: no cover
        return fn
    return cast(F, numba.njit(nogil=True, cache=True, inline="always")(fn))


U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]
U16 = npt.NDArray[np.uint16]
U32 = npt.NDArray[np.uint32]
U64 = npt.NDArray[np.uint64]

_TA = np.asarray(TABLE_APPENDIX_A, dtype=np.uint16)
_TM = np.asarray(TABLE_MODBUS, dtype=np.uint16)

#: Distinct keys one call may hold; past it :func:`split_items` answers None (the caller
#: uses the reference path). Real days have a few hundred; this bounds a garbage day.
MAX_KEYS = 1 << 15
_HASH_SLOTS = 1 << 16

_SEMI, _COMMA, _LF, _EQ, _AMP, _HASH, _C, _P = 59, 44, 10, 61, 38, 35, 67, 80  # ; , \n = & # C P
# Word-wide byte tests (eight bytes at a time): each byte of a word set to 0x01, 0x7F, 0x80,
# or a separator.
_ONES = np.uint64(0x0101010101010101)
_LOW7 = np.uint64(0x7F7F7F7F7F7F7F7F)
_HIGHS = np.uint64(0x8080808080808080)
_SEMIS = np.uint64(_SEMI * 0x0101010101010101)
_COMMAS = np.uint64(_COMMA * 0x0101010101010101)
_LFS = np.uint64(_LF * 0x0101010101010101)


# --- kernels ----------------------------------------------------------------------------------


@_inlined
def _crc_step(
    reg: np.uint64, b: np.uint8, modbus: bool, ta: U16, tm: U16
) -> np.uint64:  # pragma: no cover
    # The register stays unsigned: numba checks a signed index for wrap-around (a negative
    # one counts from the array's end), and in a CRC that check sits in the chain of
    # dependent look-ups, one per byte.
    if modbus:
        return (reg >> np.uint64(8)) ^ np.uint64(tm[(reg ^ np.uint64(b)) & np.uint64(0xFF)])
    return np.uint64(ta[(reg >> np.uint64(8)) ^ np.uint64(b)])


@_compiled
def _crc_kernel(
    buf: U8, starts: I64, ends: I64, modbus: bool, ta: U16, tm: U16
) -> I64:  # pragma: no cover
    # A CRC is a chain of dependent table look-ups (each waits for the last), so one string
    # at a time leaves the core idle between them. Four strings walked side by side, over
    # the length they share, keep four chains in flight: 3.2x the rate of one at a time on
    # a district day's exhaust-gas frames (0.071 -> 0.022 s per 32 MB; eight lanes gave
    # no more). The 16-bit tables halve the cache they occupy.
    # Each string is read through its own slice, indexed from 0 over range(shared), where
    # the compiler can see an index is never negative and drops the wrap-around checks
    # (with the unsigned register, 0.045 -> 0.025 s per 32 MB, measured interleaved).
    n = len(starts)
    out = np.empty(n, dtype=np.int64)
    i = 0
    while i + 4 <= n:
        b0, b1 = buf[starts[i] : ends[i]], buf[starts[i + 1] : ends[i + 1]]
        b2, b3 = buf[starts[i + 2] : ends[i + 2]], buf[starts[i + 3] : ends[i + 3]]
        shared = min(min(len(b0), len(b1)), min(len(b2), len(b3)))
        r0 = r1 = r2 = r3 = np.uint64(0xFFFF)
        for k in range(shared):
            r0 = _crc_step(r0, b0[k], modbus, ta, tm)
            r1 = _crc_step(r1, b1[k], modbus, ta, tm)
            r2 = _crc_step(r2, b2[k], modbus, ta, tm)
            r3 = _crc_step(r3, b3[k], modbus, ta, tm)
        for c in b0[shared:]:
            r0 = _crc_step(r0, c, modbus, ta, tm)
        for c in b1[shared:]:
            r1 = _crc_step(r1, c, modbus, ta, tm)
        for c in b2[shared:]:
            r2 = _crc_step(r2, c, modbus, ta, tm)
        for c in b3[shared:]:
            r3 = _crc_step(r3, c, modbus, ta, tm)
        out[i], out[i + 1] = np.int64(r0), np.int64(r1)
        out[i + 2], out[i + 3] = np.int64(r2), np.int64(r3)
        i += 4
    for q in range(i, n):
        reg = np.uint64(0xFFFF)
        for c in buf[starts[q] : ends[q]]:
            reg = _crc_step(reg, c, modbus, ta, tm)
        out[q] = np.int64(reg)
    return out


@_inlined
def _text_end(buf: U8, s: int, e: int) -> int:  # pragma: no cover
    # The closing "&&" is not part of the last item (the reference path drops it when the
    # segment has at least 7 bytes, i.e. room for "CP=&&" and "&&").
    if e - s >= 7 and buf[e - 1] == _AMP and buf[e - 2] == _AMP:
        return e - 2
    return e


@_inlined
def _data_end(s: int, e: int) -> int:  # pragma: no cover
    # Where the data segment of frame buf[s:e] ends: before the 4 CRC characters when at
    # least 4 follow "##dddd", else at the frame's end (as parse._frame_fields cuts it).
    return e - 4 if e - s - 6 >= 4 else e


@_inlined
def _find_cp(buf: U8, s: int, e: int) -> int:  # pragma: no cover
    # Where the first "CP=&&" of buf[s:e] starts, or -1. The "&&" is looked for at every
    # second byte (a pair has an "&" at one of any two neighbours), then "CP=" before it:
    # comparing the five bytes at every position was 9 ms of a 32 MB group's framing and
    # as much of its split (measured).
    q = s + 3  # where the "&&" of a match at s would be
    while q + 1 < e:
        if buf[np.uint64(q + 1)] != _AMP:  # unsigned: no wrap-around check
            q += 2  # no pair starts at q or q + 1
        elif (
            buf[np.uint64(q)] == _AMP
            and buf[np.uint64(q - 1)] == _EQ
            and buf[np.uint64(q - 2)] == _P
            and buf[np.uint64(q - 3)] == _C
        ):
            return q - 3
        else:
            q += 1
    return -1


@_compiled
def _separators(buf: U8, starts: I64, ends: I64) -> int:  # pragma: no cover
    # Items of all segments are at most their separators plus 3 per segment (one more
    # piece before and after "CP=&&", and the "CP" item itself): sizes the outputs when
    # :func:`split_spans`' guess was too small.
    # Each segment is iterated as a slice, not indexed as buf[j] over range(start, end):
    # numba checks a signed index for wrap-around (a negative one counts from the end) on
    # every access, and that check kept LLVM from vectorising the loop (40 -> 14 ms for a
    # 32 MB exhaust-gas group's 80 k segments, measured).
    total = 3 * len(starts)
    for i in range(len(starts)):
        for b in buf[starts[i] : ends[i]]:
            total += (b == _SEMI) | (b == _COMMA) | (b == _LF)
    return total


# --- words: eight bytes at a time --------------------------------------------------------------
# The split reads a predicted key and a value's view from ``words``: the buffer viewed as
# little-endian uint64 (its last ``len(buf) % 8`` bytes left out). Everything stays uint64:
# numba turns arithmetic mixing uint64 and int64 into float64.

#: _LOW_BYTES[n]: a mask of a word's n low bytes (0 <= n <= 8). A table, not a shift: the
#: shift (with its test for n = 8) made building a view 2.6x slower than the table.
_LOW_BYTES = np.array([(1 << (8 * n)) - 1 for n in range(9)], dtype=np.uint64)


@_inlined
def _load8(words: U64, p: int) -> np.uint64:  # pragma: no cover
    # The bytes p to p + 7 as a little-endian word, for p < 8 * len(words) - 8 (the
    # caller's check). No fallback for the buffer's end in here: a loop in this helper, even
    # one never run, made every load 20 times slower (0.9 -> 20 ns, measured).
    i = p >> 3
    sh = np.uint64((p & 7) * 8)
    # (x << 1) << (63 - sh) is x << (64 - sh), and 0 (not x) when sh is 0.
    iu = np.uint64(i)  # an unsigned index: no wrap-around check (see _split_kernel)
    word: np.uint64 = (words[iu] >> sh) | (
        (words[iu + np.uint64(1)] << np.uint64(1)) << (np.uint64(63) - sh)
    )
    return word


@_inlined
def _put_view_words(views: U64, row: int, words: U64, s: int, e: int) -> None:  # pragma: no cover
    # :func:`_put_view` from two word loads instead of a loop over the value's bytes.
    n = e - s
    # Unsigned indexes: no wrap-around checks (see _split_kernel).
    w0 = np.uint64(n) | ((_load8(words, s) & _LOW_BYTES[np.uint64(min(n, 4))]) << np.uint64(32))
    w1 = _load8(words, s + 4) & _LOW_BYTES[np.uint64(min(max(n - 4, 0), 8))]
    if n > 12:
        w1 = np.uint64(s) << np.uint64(32)
    r = np.uint64(2 * row)
    views[r] = w0
    views[r + np.uint64(1)] = w1


@_inlined
def _zero_bytes(x: np.uint64) -> np.uint64:  # pragma: no cover
    # The high bit of each zero byte of x; exact for the lowest zero byte (a borrow only
    # marks bytes above a zero byte).
    r: np.uint64 = (x - _ONES) & ~x & _HIGHS
    return r


@_inlined
def _first_byte(m: np.uint64) -> int:  # pragma: no cover
    # The index i (0-7) of the lowest byte of m whose high bit is set (m != 0). Its lowest
    # set bit moved down 7 is 1 << 8i; times 0x0001020304050607 that shifts the constant
    # left by i bytes, so the product's top byte is the constant's byte 7 - i, which is i.
    low = m & (~m + np.uint64(1))
    return int(((low >> np.uint64(7)) * np.uint64(0x0001020304050607)) >> np.uint64(56))


@_inlined
def _key_pattern(
    buf: U8, k: int, rep_s: I64, rep_e: I64, pat: U64, mask: U64
) -> None:  # pragma: no cover
    # Key k's text followed by "=" as two words and their masks (pat[2k], pat[2k + 1]); a
    # key of 16 bytes or more gets no pattern (mask[2k] 0: compared byte by byte).
    a, n = rep_s[k], rep_e[k] - rep_s[k]
    pat[2 * k] = pat[2 * k + 1] = mask[2 * k] = mask[2 * k + 1] = np.uint64(0)
    if n + 1 > 16:
        return
    for j in range(n + 1):
        b = np.uint64(buf[a + j]) if j < n else np.uint64(_EQ)
        pat[2 * k + j // 8] |= b << np.uint64(8 * (j % 8))
    mask[2 * k] = _LOW_BYTES[min(n + 1, 8)]
    mask[2 * k + 1] = _LOW_BYTES[max(n + 1 - 8, 0)]


@_inlined
def _same_key(buf: U8, a: int, b: int, k: int, rep_s: I64, rep_e: I64) -> bool:  # pragma: no cover
    # Whether buf[a:b] is the text of key k (k >= 0).
    if rep_e[k] - rep_s[k] != b - a:
        return False
    r = rep_s[k]
    for j in range(b - a):
        if buf[r + j] != buf[a + j]:
            return False
    return True


@_inlined
def _key_id(
    buf: U8,
    a: int,
    b: int,
    table: I64,
    rep_s: I64,
    rep_e: I64,
    pat: U64,
    pmask: U64,
    n_keys: int,
    max_keys: int,
) -> tuple[int, int]:  # pragma: no cover
    # The id of key buf[a:b] (open addressing on FNV-1a, keys compared byte by byte); a new
    # key takes the next id and its word pattern (:func:`_key_pattern`). Returns (id, number
    # of keys); (-1, -1) past max_keys keys.
    mask = len(table) - 1
    h = np.uint64(14695981039346656037)
    for j in range(a, b):
        h = (h ^ np.uint64(buf[j])) * np.uint64(1099511628211)
    slot = np.int64(h & np.uint64(mask))
    while True:
        k = table[slot]
        if k < 0:
            if n_keys >= max_keys:
                return -1, -1
            table[slot] = n_keys
            rep_s[n_keys] = a
            rep_e[n_keys] = b
            _key_pattern(buf, n_keys, rep_s, rep_e, pat, pmask)
            return n_keys, n_keys + 1
        if _same_key(buf, a, b, k, rep_s, rep_e):
            return k, n_keys
        slot = (slot + 1) & mask


@_inlined
def _next_key(
    buf: U8,
    a: int,
    b: int,
    prev: int,
    nxt: I64,
    table: I64,
    rep_s: I64,
    rep_e: I64,
    pat: U64,
    pmask: U64,
    n_keys: int,
    max_keys: int,
) -> tuple[int, int]:  # pragma: no cover
    # The id of key buf[a:b] that follows key ``prev``: the one that followed it last time
    # when the bytes match, else looked up (and remembered). (-1, -1) past max_keys keys.
    k = nxt[prev]
    if k < 0 or not _same_key(buf, a, b, k, rep_s, rep_e):
        k, n_keys = _key_id(buf, a, b, table, rep_s, rep_e, pat, pmask, n_keys, max_keys)
        if k >= 0:
            nxt[prev] = k
    return k, n_keys


@_compiled
def _split_kernel(
    buf: U8,
    words: U64,
    starts: I64,
    ends: I64,
    max_keys: int,
    slots: int,
    out_fid: I64,
    kid: I64,
    has_val: npt.NDArray[np.bool_],
    views: U64,
) -> tuple[I64, I64, int, int]:  # pragma: no cover
    # One pass over each segment: pieces cut at ; , and \n, each at its first "=" into key
    # and value; the key's id, the value as an Arrow string view over ``buf``. "CP=&&"
    # becomes the item "CP=" (key CP, empty value) between the items before and after it,
    # as the reference path's "\nCP=\n" replacement does. Items with an empty key ("",
    # "=5") are left out: every rule of the parser ignores them, and they are not values.
    # The outputs are sized by the caller (:func:`split_spans`) and filled here; returns
    # the keys' spans, the number of items and of keys (-1: too many keys; -2: more items
    # than the outputs hold).
    n = len(starts)
    cap = len(kid)
    table = np.full(slots, -1, dtype=np.int64)
    rep_s = np.empty(max_keys, dtype=np.int64)
    rep_e = np.empty(max_keys, dtype=np.int64)
    # The key that followed each key last time (slot max_keys: the first of a segment).
    # A device sends the same keys in the same order frame after frame, so the predicted
    # key is tried first: when its text and an "=" are where the piece starts, the key
    # bytes are not scanned and no hash is computed (the kernel 0.14 -> 0.10 s per 35 MB
    # of exhaust-gas logs, measured). The match is exact: a key's text holds no separator
    # and no "=", so the piece's first "=" is the one after it.
    nxt = np.full(max_keys + 1, -1, dtype=np.int64)
    # Each key's text and "=" as masked words, made with the key (:func:`_key_pattern`): a
    # predicted key is checked by two word compares, and its value's view built from words.
    # Words are read up to 16 bytes past a piece's start and 12 past its end, so only the
    # pieces of parts ending before ``wlim`` (all but the buffer's last bytes) take that path.
    pat = np.zeros(2 * max_keys, dtype=np.uint64)
    pmask = np.zeros(2 * max_keys, dtype=np.uint64)
    wlim = 8 * len(words) - 24
    # Hot indexes are cast to np.uint64 (all are >= 0): numba checks a signed index for
    # wrap-around (a negative one counts from the end) on every access, and some twenty
    # accesses an item made that check a fifth of the pass (75.8 -> 58.5 ms per 32 MB
    # group, measured interleaved). (Arithmetic mixing uint64 and int64 becomes float64
    # in numba, so only the indexes are cast, at the access.)
    n_keys = 0
    w = 0
    for i in range(n):
        s, e = starts[i], ends[i]
        t = _text_end(buf, s, e)
        p = _find_cp(buf, s, t)
        prev = max_keys
        # The pieces of [s, p), the CP item, the pieces of [p + 5, t); or those of [s, t).
        # (One loop over the three parts: an inlined helper called for each part instead
        # made the kernel 20 % slower, measured.)
        for part in range(3):
            if part == 1:
                if p < 0:
                    break
                k, n_keys = _next_key(
                    buf, p, p + 2, prev, nxt, table, rep_s, rep_e, pat, pmask, n_keys, max_keys
                )
                if k < 0:
                    return rep_s, rep_e, w, -1
                if w >= cap:
                    return rep_s, rep_e, w, -2
                prev = k
                out_fid[w] = i
                kid[w] = k
                has_val[w] = True
                views[2 * w] = 0  # the empty string
                views[2 * w + 1] = 0
                w += 1
                continue
            # (part 2 comes only after a CP item: part 1 stops the loop when there is none)
            lo = s if part == 0 else p + 5
            hi = (p if p >= 0 else t) if part == 0 else t
            start = lo
            while start <= hi:  # one piece [start, j) a turn; the last one ends at hi
                eq = -1
                j = start
                by_words = False  # the predicted key checked (and its view built) by words
                k = nxt[np.uint64(prev)]
                if k >= 0:
                    q = start + rep_e[np.uint64(k)] - rep_s[np.uint64(k)]
                    if q >= hi:
                        k = -1
                    elif hi < wlim and pmask[np.uint64(2 * k)]:
                        # The key and its "=" as two masked words. The pass 72 -> 32 ms per
                        # 32 MB group of exhaust-gas logs (measured), most of it the views.
                        if (_load8(words, start) & pmask[np.uint64(2 * k)]) == pat[
                            np.uint64(2 * k)
                        ] and (_load8(words, start + 8) & pmask[np.uint64(2 * k + 1)]) == pat[
                            np.uint64(2 * k + 1)
                        ]:
                            eq, j, by_words = q, q + 1, True
                        else:
                            k = -1
                    elif buf[q] == _EQ and _same_key(buf, start, q, k, rep_s, rep_e):
                        eq, j = q, q + 1  # the predicted key: only the value's bytes are walked
                    else:
                        k = -1
                first = np.uint64(0)  # the value's first 8 bytes, when it ends in them (0: not)
                if by_words:
                    # The value's end by words: the first ; , or \n of each 8 bytes by the
                    # zero-byte test (exact for the lowest byte found), with no branch per
                    # byte to mispredict where a value of 3-6 bytes ends. With the view
                    # made from the same word, the kernel 0.92x (alternated in one process).
                    while j < hi:
                        x = _load8(words, j)
                        m = (
                            _zero_bytes(x ^ _SEMIS)
                            | _zero_bytes(x ^ _COMMAS)
                            | _zero_bytes(x ^ _LFS)
                        )
                        if m:
                            if j == eq + 1:  # the value's first word
                                first = x
                            j += _first_byte(m)
                            break
                        j += 8
                    j = min(j, hi)
                # Byte by byte when the key was not predicted (its "=" is looked for too).
                while j < hi:
                    c = buf[np.uint64(j)]
                    if c == _SEMI or c == _COMMA or c == _LF:
                        break
                    if c == _EQ and eq < 0:
                        eq = j
                    j += 1
                key_end = eq if eq >= 0 else j
                if key_end > start:
                    if k < 0:
                        k, n_keys = _next_key(
                            buf,
                            start,
                            key_end,
                            prev,
                            nxt,
                            table,
                            rep_s,
                            rep_e,
                            pat,
                            pmask,
                            n_keys,
                            max_keys,
                        )
                        if k < 0:
                            return rep_s, rep_e, w, -1
                    if w >= cap:
                        return rep_s, rep_e, w, -2
                    prev = k
                    out_fid[np.uint64(w)] = i
                    kid[np.uint64(w)] = k
                    has_val[np.uint64(w)] = eq >= 0
                    if first:
                        # The view from the word already read (a value of at most 7 bytes).
                        nv = j - eq - 1
                        r = np.uint64(2 * w)
                        views[r] = np.uint64(nv) | (
                            (first & _LOW_BYTES[np.uint64(min(nv, 4))]) << np.uint64(32)
                        )
                        views[r + np.uint64(1)] = (first >> np.uint64(32)) & _LOW_BYTES[
                            np.uint64(max(nv - 4, 0))
                        ]
                    elif by_words:
                        _put_view_words(views, w, words, eq + 1, j)
                    elif eq >= 0:
                        _put_view(views, w, buf, eq + 1, j)
                    else:
                        views[2 * w] = 0
                        views[2 * w + 1] = 0
                    w += 1
                start = j + 1
    return rep_s[:n_keys], rep_e[:n_keys], w, n_keys


@_inlined
def _put_view(views: U64, row: int, buf: U8, s: int, e: int) -> None:  # pragma: no cover
    # Arrow's string view as two little-endian words: the length (int32), then the bytes
    # inline when they fit in 12 (zero-padded), else their first 4 bytes, the data
    # buffer's index (0) and the offset in it (int32). Whole words, not byte by byte.
    n = e - s
    w0 = np.uint64(n)
    w1 = np.uint64(0)
    for k in range(min(n, 4)):
        w0 |= np.uint64(buf[s + k]) << np.uint64(32 + 8 * k)
    if n <= 12:
        for k in range(4, n):
            w1 |= np.uint64(buf[s + k]) << np.uint64(8 * (k - 4))
    else:
        w1 = np.uint64(s) << np.uint64(32)
    views[2 * row] = w0
    views[2 * row + 1] = w1


@_compiled
def _views_kernel(buf: U8, starts: I64, ends: I64) -> U64:  # pragma: no cover
    views = np.empty(len(starts) * 2, dtype=np.uint64)
    for i in range(len(starts)):
        _put_view(views, i, buf, starts[i], ends[i])
    return views


@_inlined
def _all_digits(buf: U8, s: int, e: int) -> bool:  # pragma: no cover
    # Whether buf[s:e] is ASCII digits only.
    for k in range(s, e):
        if buf[k] < 48 or buf[k] > 57:
            return False
    return True


@_inlined
def _is_space(b: int) -> bool:  # pragma: no cover
    # ASCII White_Space (Rust's char::is_whitespace, which Polars' strip_chars and the
    # regex class \s use): \t \n \v \f \r and space.
    return b == 32 or (b >= 9 and b <= 13)


@_compiled
def _frame_kernel(
    buf: U8, starts: I64, ends: I64
) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.int8], I64, I64, I64]:  # pragma: no cover
    n = len(starts)
    kind = np.zeros(n, dtype=np.int8)
    blank = np.zeros(n, dtype=np.int8)
    raw_s = np.full(n, -1, dtype=np.int64)
    raw_e = np.full(n, -1, dtype=np.int64)
    cp = np.full(n, -1, dtype=np.int64)
    for i in range(n):
        a, b = starts[i], ends[i]
        # One loop the compiler vectorises (it iterates slices: indexing buf[k] over
        # range(a, b) checks each index for wrap-around, which keeps a loop scalar): the
        # "##" pairs counted, overlapping ones too, and an OR of all bytes for non-ASCII.
        # Counting "###" as two pairs sends it where one pair followed by a "#" went
        # anyway: to the general framing (the kernel 27 -> 20 ms per 32 MB group against
        # looking at every second byte and a separate OR, measured).
        matches = 0
        high = np.uint8(0)
        if b > a:
            left, right = buf[a : b - 1], buf[a + 1 : b]
            for k in range(b - a - 1):
                c = left[k]
                high |= c
                matches += (c == _HASH) & (right[k] == _HASH)
            high |= buf[b - 1]
        if matches == 0:
            # Blank (regex ^\\s*$): only spaces; not blank: a visible ASCII byte; -1: spaces
            # and other characters only (Unicode spaces?), for the caller to decide. A line
            # with "##" is not blank (``blank`` starts at 0).
            spaces = True
            visible = False
            for k in range(a, b):
                c = buf[k]
                if not _is_space(c):
                    spaces = False
                    if c < 128:
                        visible = True
            blank[i] = 1 if spaces else (0 if visible else -1)
            continue
        kind[i] = 2
        if matches > 1 or high >= 128:  # several frames, or not ASCII
            continue
        first = a
        while buf[first] != _HASH or buf[first + 1] != _HASH:  # the one pair is there
            first += 1
        if first + 6 > b or not _all_digits(buf, first + 2, first + 6):
            continue
        kind[i] = 1
        end = b
        while _is_space(buf[end - 1]):  # the frame starts with "##dddd": never all spaces
            end -= 1
        raw_s[i] = first
        raw_e[i] = end
        cp[i] = _find_cp(buf, first + 6, _data_end(first, end))
    return kind, blank, raw_s, raw_e, cp


@_compiled
def _value_rows_kernel(
    fid: I64,
    kid: I64,
    in_cp: npt.NDArray[np.bool_],
    ok_frame: npt.NDArray[np.bool_],
    is_flag_k: npt.NDArray[np.bool_],
    is_dt_k: npt.NDArray[np.bool_],
    code_id_k: I64,
    n_codes: int,
    rows: I64,
    flag_of: I64,
    frame_no: U32,
    key: U32,
    used: npt.NDArray[np.bool_],
) -> int:  # pragma: no cover
    # Fills the outputs (allocated by the caller, see split_spans) and returns their length,
    # or -1 when the items are not grouped by frame (a frame id lower than the one before).
    n = len(fid)
    stamp = np.full(n_codes, -1, dtype=np.int64)  # frame whose -Flag of a code is in first
    first = np.empty(n_codes, dtype=np.int64)
    m = 0
    frames = 0  # frames with a row so far: the next one's number
    i = 0
    while i < n:
        f = fid[i]
        j = i + 1
        while j < n and fid[j] == f:
            j += 1
        if j < n and fid[j] < f:
            return -1
        # Indexes read from the arrays are cast to unsigned (all are >= 0 where used): no
        # wrap-around check on each access (see _split_kernel).
        if ok_frame[np.uint64(f)]:
            m0 = m
            for r in range(i, j):  # the first -Flag of each code in the frame
                k = kid[r]
                if k >= 0 and in_cp[r] and is_flag_k[np.uint64(k)]:
                    c = np.uint64(code_id_k[np.uint64(k)])
                    if stamp[c] != f:
                        stamp[c] = f
                        first[c] = r
            for r in range(i, j):
                k = kid[r]
                if k >= 0 and in_cp[r]:
                    ku = np.uint64(k)
                    if is_flag_k[ku] or is_dt_k[ku]:
                        continue
                    rows[m] = r
                    key[m] = np.uint32(k)
                    frame_no[m] = np.uint32(frames)
                    c = code_id_k[ku]
                    flag_of[m] = first[np.uint64(c)] if c > 0 and stamp[np.uint64(c)] == f else -1
                    m += 1
            if m > m0:
                used[np.uint64(f)] = True
                frames += 1
        i = j
    return m


@_compiled
def _item_roles_kernel(
    fid: I64, kid: I64, cp_k: int, n_frames: int
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:  # pragma: no cover
    n = len(fid)
    cp_row = np.full(n_frames, n, dtype=np.int64)  # each frame's first CP item (n: none)
    if cp_k >= 0:
        for r in range(n):
            f = np.uint64(fid[r])  # unsigned: no wrap-around check (see _split_kernel)
            if kid[r] == cp_k and cp_row[f] == n:
                cp_row[f] = r
    in_header = np.empty(n, dtype=np.bool_)
    in_cp = np.empty(n, dtype=np.bool_)
    for r in range(n):
        c = cp_row[np.uint64(fid[r])]
        in_header[r] = r < c
        in_cp[r] = r > c
    return in_header, in_cp


@_compiled
def _frame_firsts_kernel(
    fid: I64,
    kid: I64,
    in_header: npt.NDArray[np.bool_],
    in_cp: npt.NDArray[np.bool_],
    value_null: npt.NDArray[np.bool_],
    slot_of_key: I64,
    is_dt_k: npt.NDArray[np.bool_],
    has_code_k: npt.NDArray[np.bool_],
    n_frames: int,
    n_slots: int,
) -> tuple[I64, I64, I64, npt.NDArray[np.bool_]]:  # pragma: no cover
    first = np.full((n_frames, n_slots + 1), -1, dtype=np.int64)
    bad = np.full(n_frames, -1, dtype=np.int64)
    dup = np.full(n_frames, -1, dtype=np.int64)
    has = np.zeros(n_frames, dtype=np.bool_)
    for r in range(len(fid)):
        k = kid[r]
        if k < 0:
            continue
        # Unsigned indexes: no wrap-around checks (see _split_kernel).
        ku, f = np.uint64(k), np.uint64(fid[r])
        if in_header[r]:
            sl = slot_of_key[ku]
            if sl >= 0:
                if first[f, np.uint64(sl)] < 0:
                    first[f, np.uint64(sl)] = r
                elif dup[f] < 0:
                    dup[f] = r
            if value_null[r] and bad[f] < 0:
                bad[f] = r
        elif in_cp[r]:
            if is_dt_k[ku] and first[f, np.uint64(n_slots)] < 0:
                first[f, np.uint64(n_slots)] = r
            if has_code_k[ku]:
                has[f] = True
    return first, bad, dup, has


#: The first year from which Asia/Shanghai is UTC+8 all year (China kept summer time from
#: 1986 to 1991; IANA tz database). Earlier DataTimes go through Polars' time-zone rules.
FIXED_OFFSET_FROM_YEAR = 1992
_UTC8_US = 8 * 3600 * 1_000_000


@_inlined
def _digits(buf: U8, s: int, n: int) -> int:  # pragma: no cover
    v = 0
    for k in range(n):
        v = v * 10 + (buf[s + k] - 48)
    return v


@_compiled
def _datatime_kernel(buf: U8, offs: I64) -> tuple[I64, U8, bool]:  # pragma: no cover
    # Each string as HJ 212's DataTime (YYYYMMDDhhmmss, optionally with milliseconds):
    # microseconds since the epoch in UTC, read as Asia/Shanghai local time at UTC+8.
    # ok[i] = 0 for a string that is not such a time (a calendar check as strict as
    # strptime's: month 1-12, the month's days with leap years, hour 0-23, minute and
    # second 0-59). ``sure`` is False when a string is a time this pass does not decide
    # (a year before FIXED_OFFSET_FROM_YEAR, a 60th second): the caller asks Polars.
    n = len(offs) - 1
    out = np.zeros(n, np.int64)
    ok = np.zeros(n, np.uint8)
    sure = True
    for i in range(n):
        s = offs[i]
        m = offs[i + 1] - s
        if m != 14 and m != 17:
            continue
        if not _all_digits(buf, s, s + m):
            continue
        year = _digits(buf, s, 4)
        month = _digits(buf, s + 4, 2)
        day = _digits(buf, s + 6, 2)
        hour = _digits(buf, s + 8, 2)
        minute = _digits(buf, s + 10, 2)
        second = _digits(buf, s + 12, 2)
        millis = _digits(buf, s + 14, 3) if m == 17 else 0
        if year < FIXED_OFFSET_FROM_YEAR or second == 60:
            sure = False
            continue
        leap = (year % 4 == 0 and year % 100 != 0) or year % 400 == 0
        if month == 2:
            last = 29 if leap else 28
        elif month == 4 or month == 6 or month == 9 or month == 11:
            last = 30
        else:
            last = 31
        if month < 1 or month > 12 or day < 1 or day > last:
            continue
        if hour > 23 or minute > 59 or second > 59:
            continue
        # days from 1970-01-01 (Howard Hinnant's days_from_civil)
        y = year - 1 if month <= 2 else year
        era = y // 400
        yoe = y - era * 400
        mp = month + 9 if month <= 2 else month - 3
        doy = (153 * mp + 2) // 5 + day - 1
        doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
        days = era * 146097 + doe - 719468
        local = ((days * 24 + hour) * 60 + minute) * 60 + second
        out[i] = local * 1_000_000 + millis * 1000 - _UTC8_US
        ok[i] = 1
    return out, ok, sure


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


def datatimes(values: pl.Series) -> tuple[pl.Series, bool] | None:
    """Parse HJ 212 DataTimes (``YYYYMMDDhhmmss[fff]``, Asia/Shanghai) in one compiled pass.

    Returns:
        ``(utc, sure)``: the instants as a ``Datetime("us", "UTC")`` series, null where a
        string is not a valid DataTime; ``sure`` is False when some string needs the time
        zone's history (a year before :data:`FIXED_OFFSET_FROM_YEAR`) or is a leap second,
        which this pass leaves to Polars. None without numba.

    """
    if not AVAILABLE:  # pragma: no cover
        return None
    buf, offs = string_buffers(values)
    micros, ok, sure = _datatime_kernel(buf, offs)
    utc = (
        pl.Series(values.name, micros).cast(pl.Datetime("us", "UTC")).set(pl.Series(ok == 0), None)
    )
    return utc, bool(sure)


def crc_many(buf: U8, offs: I64, algorithm: str = "appendix_a", rows: I64 | None = None) -> I64:
    """CRC register of each string ``buf[offs[i]:offs[i+1]]`` (empty strings give 0xFFFF).

    ``rows``: only these strings (the answer is aligned with ``rows``).
    """
    starts, ends = offs[:-1], offs[1:]
    if rows is not None:
        starts, ends = starts[rows], ends[rows]
    return crc_spans(buf, starts, ends, algorithm)


def crc_spans(buf: U8, starts: I64, ends: I64, algorithm: str = "appendix_a") -> I64:
    """CRC register of each ``buf[starts[i]:ends[i]]`` (empty spans give 0xFFFF)."""
    if algorithm not in ("appendix_a", "modbus"):
        raise ValueError(f"unknown CRC algorithm {algorithm!r}")
    out: I64 = _crc_kernel(buf, starts, ends, algorithm == "modbus", _TA, _TM)
    return out


@_compiled
def _count_feeds(blob: U8, words: U64) -> int:  # pragma: no cover
    # Line feeds eight bytes at a time: for x = word ^ 0x0A.., ~(((x & 0x7F..) + 0x7F..) |
    # x | 0x7F..) has 0x80 in exactly the bytes of x that are zero (no borrow between
    # bytes); the multiply adds those bits up. bytes.count(b"\n") took 0.033 s for 32 MB.
    n = 0
    for wi in range(len(words)):
        x = words[wi] ^ _LFS
        y = ~(((x & _LOW7) + _LOW7) | x | _LOW7)
        n += int(((y >> np.uint64(7)) * _ONES) >> np.uint64(56))
    for j in range(8 * len(words), len(blob)):
        n += blob[j] == 10
    return n


@_inlined
def _put_line(
    blob: U8, s: int, e: int, strip_bom: bool, starts: I64, ends: I64, m: int
) -> None:  # pragma: no cover
    # Line m is blob[s:e] (up to its line feed) without its trailing CRs and, when asked,
    # a leading byte order mark.
    while e > s and blob[np.uint64(e - 1)] == 13:
        e -= 1
    if (
        strip_bom
        and e - s >= 3
        and blob[np.uint64(s)] == 0xEF
        and blob[np.uint64(s + 1)] == 0xBB
        and blob[np.uint64(s + 2)] == 0xBF
    ):
        s += 3
    starts[m] = s
    ends[m] = e


@_compiled
def _lines_kernel(
    blob: U8, words: U64, n_lines: int, strip_bom: bool
) -> tuple[I64, I64, I64, bool]:  # pragma: no cover
    # Eight bytes at a time: a word holds a line feed when (x - 0x01..) & ~x & 0x80.. is
    # not zero for x = word ^ 0x0A.. (the has-zero-byte test: never wrong when it says no);
    # only such words are looked at byte by byte. The OR of every word tells ASCII.
    # ``n_lines``: the blob's line feeds (:func:`_count_feeds`).
    starts = np.empty(n_lines, dtype=np.int64)
    ends = np.empty(n_lines, dtype=np.int64)
    feeds = np.empty(n_lines, dtype=np.int64)
    high = np.uint64(0)
    m = 0
    s = 0
    for wi in range(len(words)):
        w = words[wi]
        high |= w
        x = w ^ _LFS
        if (x - _ONES) & ~x & _HIGHS:
            for j in range(8 * wi, 8 * wi + 8):
                if blob[j] == 10:
                    _put_line(blob, s, j, strip_bom, starts, ends, m)
                    feeds[m] = j
                    m += 1
                    s = j + 1
    for j in range(8 * len(words), len(blob)):
        c = blob[j]
        high |= np.uint64(c)
        if c == 10:
            _put_line(blob, s, j, strip_bom, starts, ends, m)
            feeds[m] = j
            m += 1
            s = j + 1
    return starts, ends, feeds, (high & _HIGHS) == 0


class TextSpans(NamedTuple):
    """Where each string of a String column lies in a byte buffer: ``buf[starts[i]:ends[i]]``."""

    buf: U8
    starts: I64
    ends: I64


class SplitLines(NamedTuple):
    """The lines of a blob (:func:`split_lines`)."""

    text: pl.Series  # views over the blob
    feeds: I64  # the offset of each line's line feed
    spans: TextSpans  # where each line's text lies in the blob


def split_lines(blob: bytes | bytearray | U8, strip_bom: bool) -> SplitLines | None:
    """Return the lines of ``blob`` (UTF-8, ending in a line feed) as views over it, or None.

    Each line is without its line feed and trailing CRs and, with ``strip_bom``, without a
    leading byte order mark (what the CSV reader's split and
    :func:`zwy.hj212.reader._clean` give). None when the blob is over 2 GiB or not valid
    UTF-8 (the caller's slower path then reports which log is at fault). No line's bytes
    are copied.
    """
    if not AVAILABLE or len(blob) > MAX_VIEW_BUFFER:  # pragma: no cover
        return None
    arr = np.frombuffer(blob, dtype=np.uint8)
    words = arr[: len(arr) // 8 * 8].view(np.uint64)
    starts, ends, feeds, ascii_only = _lines_kernel(arr, words, _count_feeds(arr, words), strip_bom)
    if not ascii_only:
        try:
            codecs.utf_8_decode(arr.data, None, True)
        except UnicodeDecodeError:
            return None
    return SplitLines(view_series("text", arr, starts, ends), feeds, TextSpans(arr, starts, ends))


def view_series(name: str, buf: U8, starts: I64, ends: I64) -> pl.Series:
    """Return a String series of ``buf[starts[i]:ends[i]]`` (valid UTF-8) without copying it.

    Polars keeps strings as Arrow string views (16 bytes each: short strings inline, longer
    ones as an offset into a buffer), so a series of views over ``buf`` arrives without a
    copy; it keeps ``buf`` alive. Each span must lie within the first 2 GiB of ``buf``
    (see :data:`MAX_VIEW_BUFFER`).
    """
    return _string_views(name, _views_kernel(buf, starts, ends), buf)


def _string_views(name: str, views: U64, buf: U8, valid: U8 | None = None) -> pl.Series:
    """Return a String series of the Arrow string views ``views`` (two words each) over ``buf``.

    ``valid``: the validity bitmap (little-endian bits), None when every row is set.
    """
    arr = pa.Array.from_buffers(
        pa.string_view(),
        len(views) // 2,
        [None if valid is None else pa.py_buffer(valid), pa.py_buffer(views), pa.py_buffer(buf)],
    )
    return pl.Series(name, arr, dtype=pl.String)


#: A string view's offset is a signed 32-bit integer: views over larger buffers are not made.
MAX_VIEW_BUFFER = (1 << 31) - 1


@dataclass(frozen=True)
class LineFrames:
    """Where the frames of simple lines are, from :func:`frame_lines` (one row per line).

    ``kind``: 0 no ``##`` in the line; 1 a simple line (ASCII, one ``##``, followed by four
    digits), whose frame is ``buf[raw_start:raw_end]`` (trailing spaces removed) and whose
    data segment holds ``CP=&&`` at ``cp`` (absolute offset, -1 when absent); 2 any other
    line with ``##``, for the reference framing. ``blank``: 1 only spaces, 0 not blank,
    -1 undecided (spaces and non-ASCII characters only).
    """

    kind: npt.NDArray[np.int8]
    blank: npt.NDArray[np.int8]
    raw_start: I64
    raw_end: I64
    cp: I64


def frame_lines(buf: U8, starts: I64, ends: I64) -> LineFrames:
    """Classify each line ``buf[starts[i]:ends[i]]`` and locate the frame of simple lines.

    The same cut as :func:`zwy.hj212.frames.find_frames` for the lines of kind 1.
    """
    kind, blank, raw_s, raw_e, cp = _frame_kernel(buf, starts, ends)
    return LineFrames(kind=kind, blank=blank, raw_start=raw_s, raw_end=raw_e, cp=cp)


@_inlined
def _hex_digits(buf: U8, s: int, n: int) -> int:  # pragma: no cover
    # buf[s:s + n] as a hex number (either case), or -1 when a byte is not a hex digit.
    v = 0
    for k in range(n):
        h = int(buf[np.uint64(s + k)])
        if h >= 48 and h <= 57:
            h -= 48
        elif h >= 65 and h <= 70:
            h -= 55
        elif h >= 97 and h <= 102:
            h -= 87
        else:
            return -1
        v = v * 16 + h
    return v


@_compiled
def _simple_frames_kernel(
    buf: U8, kind: npt.NDArray[np.int8], raw_s: I64, raw_e: I64, cp: I64
) -> tuple[
    I64, I64, I64, I64, I64, npt.NDArray[np.bool_], npt.NDArray[np.bool_], I64
]:  # pragma: no cover
    m = 0
    for i in range(len(kind)):
        if kind[i] == 1:
            m += 1
    line = np.empty(m, dtype=np.int64)
    s_out = np.empty(m, dtype=np.int64)
    e_out = np.empty(m, dtype=np.int64)
    data_e = np.empty(m, dtype=np.int64)
    declared = np.empty(m, dtype=np.int64)
    closed = np.empty(m, dtype=np.bool_)
    has_cp = np.empty(m, dtype=np.bool_)
    sent = np.empty(m, dtype=np.int64)
    q = 0
    for i in range(len(kind)):
        if kind[i] != 1:
            continue
        s, e, c = raw_s[i], raw_e[i], cp[i]
        de = _data_end(s, e)
        actual = de - s - 6
        ends_amp = actual >= 2 and buf[np.uint64(de - 2)] == _AMP and buf[np.uint64(de - 1)] == _AMP
        line[q], s_out[q], e_out[q], data_e[q] = i, s, e, de
        declared[q] = _digits(buf, s + 2, 4)  # the four digits after "##" (the framing checked)
        has_cp[q] = c >= 0
        closed[q] = ends_amp and c >= 0 and c - (s + 6) + 7 <= actual
        sent[q] = _hex_digits(buf, de, 4) if e - de == 4 else -1  # the CRC text, if any
        q += 1
    return line, s_out, e_out, data_e, declared, has_cp, closed, sent


class SimpleFrames(NamedTuple):
    """The frames of the simple lines (kind 1 of :class:`LineFrames`), one row per frame."""

    line: I64  # the line's row
    raw_start: I64  # the frame: buf[raw_start:raw_end]
    raw_end: I64
    data_end: I64  # the data segment: buf[raw_start + 6:data_end]; the CRC text follows
    declared: I64  # the length field's four digits as a number
    has_cp: npt.NDArray[np.bool_]
    cp_closed: npt.NDArray[np.bool_]  # "CP=&&" present and the data segment ends with "&&"
    crc_sent: I64  # the 4 characters after the data segment as a hex number, else -1


def simple_frames(buf: U8, found: LineFrames) -> SimpleFrames:
    """Return the fields of each simple line's frame that byte offsets give, in one pass.

    What :func:`zwy.hj212.parse._frame_fields` computes with string kernels for any frame
    (and ``_locate_compiled`` did with a dozen numpy passes over the frames: 5.8 ms a group
    of 80 k frames): the data segment ends 4 characters before the frame when at least 4
    follow the length field (the CRC), else at the frame's end; the CP area is closed when
    the data segment ends with ``&&`` after ``CP=&&``'s own; the CRC sent is read from its
    4 hex digits (what ``_frame_fields`` asks a regex and Polars' base-16 parse: 3.3 ms a
    group, and a column of string views for its text, 3.7 ms).
    """
    return SimpleFrames(
        *_simple_frames_kernel(buf, found.kind, found.raw_start, found.raw_end, found.cp)
    )


@dataclass(frozen=True)
class SplitItems:
    """Items of every segment, in segment order then item order.

    Attributes:
        fid: the segment (row) of each item.
        kid: the item's key as a row of ``keys`` (sorted distinct keys). Items with an
            empty key (``;;``, ``=5``) are left out: the parser ignores them.
        keys: the distinct non-empty keys, sorted.
        value_text: the text after the first ``=``; null for an item without ``=``.
        views: ``value_text``'s Arrow string views (two words an item), over ``buf``.
        buf: the bytes the segments and the views' longer texts are in.

    """

    fid: I64
    kid: I64
    keys: list[str]
    value_text: pl.Series
    views: U64
    buf: U8


#: :func:`split_spans`' guess of the items its segments hold: one per this many bytes, the
#: separator included ("a21026-Rtd=12.3;" is 16, "ST=22;" 6; a district day's items average
#: 15). Segments of shorter items on average overflow it and are counted and cut again.
_ITEM_BYTES = 8


@_compiled
def _remap(ids: I64, lut: I64) -> None:  # pragma: no cover
    # ids[i] = lut[ids[i]] in place: numpy's lut[ids] makes a new array (17 MB a group).
    for i in range(len(ids)):
        ids[i] = lut[np.uint64(ids[i])]


def split_items(buf: U8, offs: I64) -> SplitItems | None:
    """Cut each segment into ``key=value`` items; None past :data:`MAX_KEYS` distinct keys.

    The cut is the reference path's: the closing ``&&`` of a segment of at least 7 bytes
    is dropped, the first ``CP=&&`` becomes an item ``CP=`` of its own, items are separated
    by ``;`` and ``,`` and split at their first ``=``.
    """
    return split_spans(buf, offs[:-1], offs[1:])


def split_spans(buf: U8, starts: I64, ends: I64) -> SplitItems | None:
    """:func:`split_items` of the segments ``buf[starts[i]:ends[i]]``."""
    if len(buf) > MAX_VIEW_BUFFER:
        return None  # the values are views into ``buf``
    # The outputs are allocated here by numpy, not in the kernel: numpy asks the kernel for
    # transparent huge pages on large arrays, so first touching the 80 MB of a 35 MB group's
    # items costs half as much as numba's own allocation (0.07 -> 0.035 s, measured).
    # They are sized by a guess, at most one item per _ITEM_BYTES bytes: only the pages
    # the items fill are ever touched, and counting the separators first was a pass over
    # every byte (15 ms a 32 MB group). Segments of shorter items overflow the guess; they
    # are counted and cut again.
    guess = int((ends - starts).sum()) // _ITEM_BYTES + 3 * len(starts)
    # ``buf`` as words for the kernel's word reads (a view: nothing copied).
    words = buf[: len(buf) // 8 * 8].view(np.uint64)

    def split_into(total: int) -> tuple[I64, I64, npt.NDArray[np.bool_], U64, I64, I64, int, int]:
        fid = np.empty(total, dtype=np.int64)
        kid = np.empty(total, dtype=np.int64)
        has_value = np.empty(total, dtype=np.bool_)
        views = np.empty(2 * total, dtype=np.uint64)
        rep_s, rep_e, w, n_keys = _split_kernel(
            buf, words, starts, ends, MAX_KEYS, _HASH_SLOTS, fid, kid, has_value, views
        )
        return fid, kid, has_value, views, rep_s, rep_e, w, n_keys

    fid, kid, has_value, views, rep_s, rep_e, w, n_keys = split_into(guess)
    if n_keys == -2:  # more items than guessed: the exact count
        fid, kid, has_value, views, rep_s, rep_e, w, n_keys = split_into(
            _separators(buf, starts, ends)
        )
    if n_keys < 0:
        return None
    fid, kid, has_value, views = fid[:w], kid[:w], has_value[:w], views[: 2 * w]
    names = [bytes(buf[int(a) : int(b)]).decode("utf-8") for a, b in zip(rep_s, rep_e, strict=True)]
    order = sorted(range(len(names)), key=names.__getitem__)
    lut = np.empty(len(names), dtype=np.int64)
    lut[np.asarray(order, dtype=np.int64)] = np.arange(len(names), dtype=np.int64)
    _remap(kid, lut)
    # Values without "=" are null (the kernel left their views empty). The values are
    # views over ``buf``: importing them copies nothing (0.03 s per 2 M values as offsets).
    valid = np.packbits(has_value, bitorder="little")
    value_text = _string_views("value_text", views, buf, valid)
    return SplitItems(
        fid=fid,
        kid=kid,
        keys=[names[i] for i in order],
        value_text=value_text,
        views=views,
        buf=buf,
    )


#: 10**k for k = 0..22, each exact in a double.
_POW10 = np.array([10.0**k for k in range(23)], dtype=np.float64)

#: Digits of the largest mantissa :func:`decimals` converts itself: below 2**53, exact.
DECIMAL_DIGITS = 15


@_inlined
def _view_byte(w0: np.uint64, w1: np.uint64, buf: U8, j: int) -> int:  # pragma: no cover
    # Byte j of an Arrow string view (w0, w1) over ``buf`` (see :func:`_put_view`).
    n = w0 & np.uint64(0xFFFFFFFF)
    if n <= np.uint64(12):
        if j < 4:
            return int((w0 >> np.uint64(32 + 8 * j)) & np.uint64(0xFF))
        return int((w1 >> np.uint64(8 * (j - 4))) & np.uint64(0xFF))
    return int(buf[(w1 >> np.uint64(32)) + np.uint64(j)])


@_compiled
def _decimals_kernel(
    views: U64, buf: U8, rows: I64, pow10: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:  # pragma: no cover
    n = len(rows)
    out = np.zeros(n, dtype=np.float64)
    sure = np.zeros(n, dtype=np.bool_)
    for i in range(n):
        r = np.uint64(2 * rows[i])
        w0, w1 = views[r], views[r + np.uint64(1)]
        length = int(w0 & np.uint64(0xFFFFFFFF))
        j = 0
        neg = False
        if length > 0 and _view_byte(w0, w1, buf, 0) == 45:  # "-"
            neg = True
            j = 1
        mantissa = 0
        digits = 0
        frac = -1  # digits after the ".", -1: no "."
        ok = True
        while j < length:
            c = _view_byte(w0, w1, buf, j)
            if c >= 48 and c <= 57:
                mantissa = mantissa * 10 + (c - 48)
                digits += 1
                if frac >= 0:
                    frac += 1
            elif c == 46 and frac < 0 and digits > 0:  # ".", after a digit
                frac = 0
            else:
                ok = False
                break
            j += 1
        if not ok or digits == 0 or digits > DECIMAL_DIGITS or frac == 0:
            continue
        x = mantissa / pow10[max(frac, 0)]
        out[i] = -x if neg else x
        sure[i] = True
    return out, sure


def decimals(
    views: U64, buf: U8, rows: I64
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    r"""Return the number each ``rows`` item's text spells if a plain decimal, and ``sure``.

    ``sure`` is False for a row whose text is not a plain decimal (its number is 0 then).
    A plain decimal is ``-?[0-9]+(\.[0-9]+)?`` with at most :data:`DECIMAL_DIGITS` digits,
    which is what monitors send. Its value is the mantissa divided by a power of ten, both
    exact in a double, in one correctly rounded division (the fast path of Clinger's
    algorithm), so it is the double nearest the decimal: the number Polars' cast reads
    from the same text, to the bit (tested). Every other text (empty, null, an exponent,
    "+1", ".5", "NaN", 16 or more digits) is left to the caller, which asks Polars. On its
    own the pass costs about what Polars' cast does (19 against 20-24 ms for 0.86 M values);
    ``parse_lines`` with it took 0.92-0.96x the time, paired, in three runs.
    ``views``/``buf``: :class:`SplitItems`' ``views`` and ``buf``.
    """
    return _decimals_kernel(views, buf, rows, _POW10)


@_compiled
def _one_byte_kernel(
    views: U64, rows: I64
) -> tuple[npt.NDArray[np.uint32], U8, bool]:  # pragma: no cover
    n = len(rows)
    byte = np.zeros(n, dtype=np.uint8)
    seen = np.zeros(128, dtype=np.bool_)
    for i in range(n):
        r = rows[i]
        if r < 0:
            continue
        w0 = views[np.uint64(2 * r)]
        b = (w0 >> np.uint64(32)) & np.uint64(0xFF)
        if (w0 & np.uint64(0xFFFFFFFF)) != np.uint64(1) or b == 0 or b >= 128:
            return np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=np.uint8), False
        byte[i] = np.uint8(b)
        seen[b] = True
    # Each byte's rank among the distinct bytes seen, from 1 (0: no text).
    rank = np.zeros(128, dtype=np.uint32)
    present = np.zeros(128, dtype=np.uint8)
    m = 0
    for b in range(1, 128):
        if seen[b]:
            present[m] = b
            m += 1
            rank[b] = m
    out = np.empty(n, dtype=np.uint32)
    for i in range(n):
        out[i] = rank[byte[i]]
    return out, present[:m], True


def one_byte_texts(views: U64, rows: I64) -> tuple[npt.NDArray[np.uint32], U8] | None:
    """Return each ``rows`` item's text as one ASCII byte: ``(rank, bytes)``, or None.

    ``bytes``: the distinct bytes, ascending; ``rank[i]``: row i's byte as 1 + its index
    in ``bytes`` (0 for row -1, no text). None when some row's text is anything else
    (empty, null, longer, not ASCII): the caller reads those texts as strings. ``views``:
    :class:`SplitItems`' ``views``. A ``-Flag`` value is one letter (N, F, M, S, D, C, T,
    B): its code is looked up from this rank instead of each row's text being gathered
    and hashed.
    """
    rank, present, ok = _one_byte_kernel(views, rows)
    return (rank, present) if ok else None


@_compiled
def _gather_views_kernel(
    views: U64, null: npt.NDArray[np.bool_], first: I64, cols: I64
) -> tuple[U64, U8]:  # pragma: no cover
    # Every word and validity byte written once, none read first: fresh memory read before
    # it is written is mapped to the kernel's zero page, and the first write then costs a
    # copy-on-write fault that flushes the other cores' TLBs.
    n = first.shape[0]
    m = len(cols)
    out = np.empty((m, 2 * n), dtype=np.uint64)
    valid = np.empty((m, (n + 7) // 8), dtype=np.uint8)
    zero = np.uint64(0)
    bits = np.zeros(m, dtype=np.uint8)  # the validity byte being filled, per column
    for r in range(n):
        for c in range(m):
            j = first[r, cols[c]]
            ok = j >= 0 and not null[np.uint64(j)]  # unsigned: no wrap-around check
            u = np.uint64(j) if ok else np.uint64(0)
            out[c, 2 * r] = views[np.uint64(2) * u] if ok else zero
            out[c, 2 * r + 1] = views[np.uint64(2) * u + np.uint64(1)] if ok else zero
            if ok:
                bits[c] |= np.uint8(1 << (r & 7))
        if r & 7 == 7 or r == n - 1:
            for c in range(m):
                valid[c, r >> 3] = bits[c]
                bits[c] = 0
    return out, valid


def gather_texts(
    names: list[str],
    views: U64,
    buf: U8,
    null: npt.NDArray[np.bool_],
    first: I64,
    cols: list[int],
) -> list[pl.Series] | None:
    """Return, for each ``cols[c]``, the String series ``names[c]`` of item ``first[:, cols[c]]``.

    Row ``r`` of series ``c`` is the text of item ``first[r, cols[c]]`` (the views
    ``views`` over ``buf``, two words an item, as :class:`SplitItems` has them), null
    where that is -1 or the item's ``null`` is set: ``Series.gather`` of the items' texts
    with -1 as null, for all the columns in one pass, the views copied by word instead
    of gathered column by column (a frame's header fields: 10.7 -> 2.8 ms per group of
    80 k frames). The series are views over ``buf``, as the items' texts are. None when
    numba is missing.
    """
    if not AVAILABLE:
        return None
    out, valid = _gather_views_kernel(
        views,
        np.ascontiguousarray(null, dtype=np.bool_),
        np.ascontiguousarray(first, dtype=np.int64),
        np.asarray(cols, dtype=np.int64),
    )
    return [_string_views(name, out[c], buf, valid[c]) for c, name in enumerate(names)]


class ValueRows(NamedTuple):
    """The items that become VALUES rows (:func:`value_rows`), with what each row needs."""

    rows: I64  # item row of each value, ascending
    flag_of_row: I64  # item row of its flag (-1: none)
    frame_no: U32  # its frame, numbered over the frames that have values (0, 1, ...)
    key: U32  # its key id
    used: npt.NDArray[np.bool_]  # per frame: whether it has values


def value_rows(
    fid: I64,
    kid: I64,
    in_cp: npt.NDArray[np.bool_],
    ok_frame: npt.NDArray[np.bool_],
    is_flag_k: npt.NDArray[np.bool_],
    is_dt_k: npt.NDArray[np.bool_],
    code_id_k: I64,
) -> ValueRows | None:
    """Which items become VALUES rows, and the ``-Flag`` item of each, in one pass.

    An item becomes a row when its frame is ``ok_frame``, it is in the CP area, has a key
    (``kid`` >= 0) and its key is neither a ``-Flag`` nor DataTime; its flag item is the
    first ``-Flag`` item of the same code (``code_id_k`` > 0) in the same frame, else -1.
    The same as :func:`zwy.hj212.parse._value_rows_numpy`, the numpy arithmetic that stays the
    reference (tested equal). Returns a :class:`ValueRows`, or None when the items are
    not grouped by frame (``fid`` decreasing somewhere) or numba is missing.
    """
    if not AVAILABLE:
        return None
    n_codes = int(code_id_k.max()) + 1 if len(code_id_k) else 1
    # Allocated by numpy, as in split_spans: the pass alone 13.5 -> 7.8 ms a 32 MB group
    # (measured; the parse as a whole moved less than its noise).
    n = len(fid)
    out = ValueRows(
        np.empty(n, dtype=np.int64),
        np.empty(n, dtype=np.int64),
        np.empty(n, dtype=np.uint32),
        np.empty(n, dtype=np.uint32),
        np.zeros(len(ok_frame), dtype=np.bool_),
    )
    m = _value_rows_kernel(
        fid,
        kid,
        np.ascontiguousarray(in_cp, dtype=np.bool_),
        np.ascontiguousarray(ok_frame, dtype=np.bool_),
        np.ascontiguousarray(is_flag_k, dtype=np.bool_),
        np.ascontiguousarray(is_dt_k, dtype=np.bool_),
        np.ascontiguousarray(code_id_k, dtype=np.int64),
        n_codes,
        *out,
    )
    if m < 0:  # not grouped by frame (the kernel checks as it goes: no pass of its own)
        return None
    return ValueRows(out.rows[:m], out.flag_of_row[:m], out.frame_no[:m], out.key[:m], out.used)


def item_roles(
    fid: I64, kid: I64, cp_k: int, n_frames: int
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]] | None:
    """Which items are before (header) and after (CP area) their frame's first ``CP`` item.

    ``cp_k`` is the key id of ``CP`` (-1: no frame has one: every item is a header item).
    The same as :func:`zwy.hj212.parse._item_roles_numpy`, the reference (tested equal).
    Returns ``(in_header, in_cp)``, or None when numba is missing.
    """
    if not AVAILABLE:
        return None
    return _item_roles_kernel(fid, kid, cp_k, n_frames)


def frame_firsts(
    fid: I64,
    kid: I64,
    in_header: npt.NDArray[np.bool_],
    in_cp: npt.NDArray[np.bool_],
    value_null: npt.NDArray[np.bool_],
    slot_of_key: I64,
    is_dt_k: npt.NDArray[np.bool_],
    has_code_k: npt.NDArray[np.bool_],
    n_frames: int,
    n_slots: int,
) -> tuple[I64, I64, I64, npt.NDArray[np.bool_]] | None:
    """Per frame, in one pass over the items: the first item of each header slot, etc.

    ``first[f, s]`` is the first header item of frame ``f`` whose key has slot ``s``
    (``slot_of_key``: below ``n_slots``, -1: none), and ``first[f, n_slots]`` its first
    DataTime item in the CP area (``is_dt_k``); ``bad[f]`` its first header item with a key
    but no value (``value_null``); ``dup[f]`` its first header item whose slot an earlier
    item of the frame's header already took; ``has[f]`` whether its CP area has a key of
    ``has_code_k``. -1 where there is none. The same as
    :func:`zwy.hj212.parse._frame_firsts_numpy`, the reference (tested equal). Returns
    ``(first, bad, dup, has)``; None when numba is missing.
    """
    if not AVAILABLE:
        return None
    return _frame_firsts_kernel(
        fid,
        kid,
        np.ascontiguousarray(in_header, dtype=np.bool_),
        np.ascontiguousarray(in_cp, dtype=np.bool_),
        np.ascontiguousarray(value_null, dtype=np.bool_),
        np.ascontiguousarray(slot_of_key, dtype=np.int64),
        np.ascontiguousarray(is_dt_k, dtype=np.bool_),
        np.ascontiguousarray(has_code_k, dtype=np.bool_),
        n_frames,
        n_slots,
    )
