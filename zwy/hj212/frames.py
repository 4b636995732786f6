"""Find HJ 212 frames in lines of text and compute their CRCs over whole columns.

A frame starts at every ``##`` followed by four ASCII digits and runs to the next frame start
or the end of the line. Lines are cut with Polars string kernels; only lines where a ``##`` is
not followed by four digits (``###0123``, ``##abc``) go through a per-line regular expression.

The CRCs are computed over the UTF-8 bytes of a string column without making Python objects:
the Arrow buffers of the column are cut into blocks of 8,192 packets of similar length, each
block is transposed so that one numpy step handles the same byte pair of every packet, and a
byte pair costs one lookup in a 65,536-entry table (register state XOR the two bytes fits in
16 bits: 8 bits of state for Appendix A, 16 for Modbus). Measured here: about twice as fast
as :mod:`zwy.hj212.crcvec` (one step per byte, grouped by exact length), and it agrees with
:mod:`zwy.hj212.crc` byte for byte.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Literal

import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa
from numpy.lib.stride_tricks import sliding_window_view

from zwy.hj212.crc import TABLE_APPENDIX_A, TABLE_MODBUS, crc_appendix_a, crc_modbus

CrcAlgorithm = Literal["appendix_a", "modbus"]

U8 = npt.NDArray[np.uint8]
U16 = npt.NDArray[np.uint16]
I64 = npt.NDArray[np.int64]

_BLOCK_ROWS = 8192
_MAX_VECTOR_BYTES = 16384
_FRAME_START = re.compile(r"##[0-9]{4}")

_TA: U16 = np.asarray(TABLE_APPENDIX_A, dtype=np.uint16)
_TM: U16 = np.asarray(TABLE_MODBUS, dtype=np.uint16)
_X = np.arange(65536, dtype=np.uint32)
# Appendix A keeps one byte of state h; for idx = h ^ (b0 | b1 << 8) the register after both
# bytes is _FIN_A[idx], and the state carried on is its high byte.
_FIN_A: U16 = _TA[(_TA[_X & 0xFF] >> 8) ^ (_X >> 8)].astype(np.uint16)
_STEP_A: U16 = (_FIN_A >> 8).astype(np.uint16)
# Modbus keeps 16 bits; for idx = reg ^ (b0 | b1 << 8) the register after both bytes:
_STEP_M: U16 = ((_TM[_X & 0xFF] >> 8) ^ _TM[((_X >> 8) ^ _TM[_X & 0xFF]) & 0xFF]).astype(np.uint16)


# --- CRC over a column ------------------------------------------------------------------------


def _regions(values: pl.Series) -> Iterator[tuple[U8, I64, I64, I64]]:
    """Yield ``(buffer, starts, lengths, row_indices)`` covering every non-empty string."""
    arr = values.fill_null("").rechunk().to_arrow(compat_level=pl.CompatLevel.newest())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    n = len(arr)
    if n == 0:
        return
    bufs = arr.buffers()
    if pa.types.is_string_view(arr.type):
        view_bytes = np.frombuffer(bufs[1], dtype=np.uint8)
        views = view_bytes.view(np.int32).reshape(-1, 4)[arr.offset : arr.offset + n]
        lens = views[:, 0].astype(np.int64)
        rows = np.arange(n, dtype=np.int64)
        inline = (lens > 0) & (lens <= 12)
        if inline.any():
            # Strings of up to 12 bytes live inside their 16-byte view, after the length.
            r = rows[inline]
            yield view_bytes, (r + arr.offset) * 16 + 4, lens[inline], r
        long_rows = rows[lens > 12]
        if len(long_rows) == 0:
            return
        # Sliced columns spread over hundreds of small buffers; one copy of the buffers in use
        # keeps the blocks large.
        buf_idx = views[long_rows, 2]
        used = np.unique(buf_idx)
        datas = [np.frombuffer(bufs[2 + int(b)], dtype=np.uint8) for b in used]
        base = np.zeros(int(used.max()) + 1, dtype=np.int64)
        base[used] = np.concatenate([[0], np.cumsum([len(d) for d in datas])[:-1]])
        data = datas[0] if len(datas) == 1 else np.concatenate(datas)
        yield data, base[buf_idx] + views[long_rows, 3].astype(np.int64), lens[long_rows], long_rows
        return
    if pa.types.is_large_string(arr.type) or pa.types.is_string(arr.type):
        off_type = np.int64 if pa.types.is_large_string(arr.type) else np.int32
        offs = np.frombuffer(bufs[1], dtype=off_type)[arr.offset : arr.offset + n + 1]
        offs64: I64 = offs.astype(np.int64)
        lens = np.diff(offs64)
        rows = np.flatnonzero(lens > 0).astype(np.int64)
        data = (
            np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
        )
        yield data, offs64[rows], lens[rows], rows
        return
    raise TypeError(f"expected a string column, got Arrow type {arr.type}")


def _padded(buf: U8, starts: I64, width: int) -> Iterator[tuple[U8, I64, npt.NDArray[np.bool_]]]:
    """Split rows so each can read ``width`` bytes from its start (over-reading is harmless)."""
    fits = starts + width <= len(buf)
    if fits.all():
        yield buf, starts, fits
        return
    if fits.any():
        yield buf, starts[fits], fits
    tail = ~fits
    t0 = int(starts[tail].min())
    ext = np.concatenate([buf[t0:], np.zeros(width, dtype=np.uint8)])
    yield ext, starts[tail] - t0, tail


def _crc_block(mat: U8, lens: I64, algorithm: CrcAlgorithm) -> U16:
    """CRC of each row of ``mat`` (rows sorted by ``lens`` ascending, all lengths >= 1)."""
    m = len(lens)
    hi = int(lens[-1])
    pairs = np.ascontiguousarray(mat.view("<u2").T)
    # cuts[k] is the first row whose length is >= k.
    cuts = np.searchsorted(lens, np.arange(hi + 3), side="left")
    out = np.empty(m, dtype=np.uint16)
    idx = np.empty(m, dtype=np.uint16)
    appendix_a = algorithm == "appendix_a"
    state = np.full(m, 0xFF if appendix_a else 0xFFFF, dtype=np.uint16)
    for p in range((hi + 1) // 2):
        a, o, e = int(cuts[2 * p + 1]), int(cuts[2 * p + 2]), int(cuts[2 * p + 3])
        # Rows [a, o) end on the first byte of this pair, rows [o, e) on its second byte.
        np.bitwise_xor(state[a:], pairs[p, a:], out=idx[a:])
        if appendix_a:
            if o > a:
                out[a:o] = _TA[idx[a:o] & 0xFF]
            if e > o:
                out[o:e] = _FIN_A[idx[o:e]]
            np.take(_STEP_A, idx[e:], out=state[e:])
        else:
            if o > a:
                out[a:o] = (state[a:o] >> 8) ^ _TM[idx[a:o] & 0xFF]
            np.take(_STEP_M, idx[o:], out=state[o:])
            out[o:e] = state[o:e]
    return out


def crc_column(values: pl.Series, algorithm: CrcAlgorithm = "appendix_a") -> U16:
    """Return the CRC of the UTF-8 bytes of every string in ``values``.

    Args:
        values: a String series (nulls count as empty strings).
        algorithm: ``appendix_a`` (HJ 212-2017 Appendix A) or ``modbus`` (CRC-16/MODBUS).

    Returns:
        A ``uint16`` array aligned with ``values``; empty strings give ``0xFFFF`` like the
        scalar functions of :mod:`zwy.hj212.crc`.

    """
    out = np.full(len(values), 0xFFFF, dtype=np.uint16)
    scalar = crc_appendix_a if algorithm == "appendix_a" else crc_modbus
    for buf, starts, lens, rows in _regions(values):
        order = np.argsort(lens, kind="stable")
        starts, lens, rows = starts[order], lens[order], rows[order]
        # A block costs one numpy step per byte pair of its longest string: strings far
        # beyond HJ 212's 1,024-byte data segment (garbage lines) go through the scalar CRC.
        n_vec = int(np.searchsorted(lens, _MAX_VECTOR_BYTES, side="right"))
        for i in range(n_vec, len(lens)):
            out[rows[i]] = scalar(buf[starts[i] : starts[i] + lens[i]].tobytes())
        for b0 in range(0, n_vec, _BLOCK_ROWS):
            blk = slice(b0, min(b0 + _BLOCK_ROWS, n_vec))
            b_starts, b_lens, b_rows = starts[blk], lens[blk], rows[blk]
            width = int(b_lens[-1]) + int(b_lens[-1]) % 2
            for src, s, sel in _padded(buf, b_starts, width):
                mat = sliding_window_view(src, width)[s]
                out[b_rows[sel]] = _crc_block(mat, b_lens[sel], algorithm)
    return out


# --- Frames in lines --------------------------------------------------------------------------

FRAMES_SCHEMA = pl.Schema(
    {
        "_lid": pl.Int64,  # row of the line in the input frame
        "_fno": pl.Int64,  # 1-based frame number within the line
        "source_file": pl.String,
        "line": pl.Int64,
        "raw": pl.String,
    }
)


def _irregular(lines: pl.DataFrame) -> pl.DataFrame:
    # Rare lines ("###0123", "##ab##0123"): a regex per line finds the exact starts.
    rows: list[tuple[int, int, str, int, str]] = []
    for lid, src, line, text in lines.select("_lid", "source_file", "line", "text").iter_rows():
        starts = [m.start() for m in _FRAME_START.finditer(text)]
        for k, s in enumerate(starts):
            end = starts[k + 1] if k + 1 < len(starts) else len(text)
            rows.append((lid, k + 1, src, line, text[s:end]))
    return pl.DataFrame(rows, schema=FRAMES_SCHEMA, orient="row")


def _split_many(cand: pl.DataFrame) -> tuple[pl.DataFrame, pl.Series]:
    # Lines with several "##" (or non-ASCII text): split on "##" and keep the parts that
    # start with four digits; return those frames and the lines needing the regex path.
    parts = (
        cand.with_columns(pl.col("text").str.split("##").alias("part"))
        .with_columns(
            (pl.col("part").list.len().cum_sum() - pl.col("part").list.len()).alias("_p0")
        )
        .drop("text")
        .explode("part")
        .with_row_index("_r")
        .with_columns((pl.col("_r").cast(pl.Int64) - pl.col("_p0")).alias("_fno"))
        .filter(pl.col("_fno") > 0)
        .with_columns(pl.col("part").str.contains("^[0-9]{4}").alias("_start"))
    )
    bad = parts.filter(~pl.col("_start")).get_column("_lid").unique()
    if not bad.is_empty():
        parts = parts.filter(~pl.col("_lid").is_in(bad.implode()))
    frames = parts.select(
        "_lid",
        "_fno",
        "source_file",
        "line",
        pl.concat_str(pl.lit("##"), pl.col("part")).alias("raw"),
    )
    return frames, bad


def find_frames(lines: pl.DataFrame) -> pl.DataFrame:
    """Return every frame in ``lines`` (which must carry a ``_lid`` row id).

    Returns:
        One row per frame (FRAMES_SCHEMA), in line order: the line it starts on, its number
        within the line, and ``raw``: the text from ``##`` to the next frame start or the
        line end, trailing whitespace removed. Text before the first frame is dropped.

    """
    text = pl.col("text")
    cand = lines.filter(text.str.contains("##", literal=True)).select(
        "_lid", "source_file", "line", "text"
    )
    if cand.is_empty():
        return pl.DataFrame(schema=FRAMES_SCHEMA)
    # Common case: one "##" on an ASCII line, where a byte offset is a character offset.
    simple_mask = (text.str.count_matches("##", literal=True) == 1) & (
        text.str.len_bytes() == text.str.len_chars()
    )
    cand = cand.with_columns(simple_mask.alias("_simple"))
    simple = cand.filter(pl.col("_simple")).select(
        "_lid",
        pl.lit(1, dtype=pl.Int64).alias("_fno"),
        "source_file",
        "line",
        text.str.slice(text.str.find("##", literal=True)).alias("raw"),
    )
    ok = simple.get_column("raw").str.contains("^##[0-9]{4}")
    pieces = [simple.filter(ok)]
    bad_ids = [simple.filter(~ok).get_column("_lid")]
    many = cand.filter(~pl.col("_simple")).drop("_simple")
    if not many.is_empty():
        frames_many, bad_many = _split_many(many)
        pieces.append(frames_many)
        bad_ids.append(bad_many)
    bad = pl.concat(bad_ids)
    if not bad.is_empty():
        pieces.append(_irregular(cand.filter(pl.col("_lid").is_in(bad.implode()))))
    frames = pl.concat([p.cast(FRAMES_SCHEMA) for p in pieces], how="vertical")
    if len(pieces) > 1:
        frames = frames.sort("_lid", "_fno")
    return _strip_end(frames)


def _strip_end(frames: pl.DataFrame) -> pl.DataFrame:
    # Stripping every frame copies every string; only the few ending in whitespace need it.
    raw = frames.get_column("raw")
    last = raw.str.tail(1)
    idx = (last.str.strip_chars() != last).arg_true()
    if idx.is_empty():
        return frames
    fixed = raw.scatter(idx, raw.gather(idx).str.strip_chars_end())
    return frames.with_columns(fixed)
