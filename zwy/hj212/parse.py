"""Parse HJ 212 frames out of log lines into the PACKETS, VALUES and QUARANTINE contracts.

Every frame found ends either ``ok`` or ``quarantined`` with one rule and a reason; a rule
failure is data, not an exception. Rules are checked in this order, the first failure wins:

``truncated``/``length`` → ``crc`` → ``syntax`` → ``st`` → ``cn`` → ``flag`` → ``mn`` →
``datatime`` → ``duplicate``.

Nothing loops per line or per value in Python. With numba installed (a dependency), the
frames of simple lines, the CRCs and the ``key=value`` items come from compiled passes over
the bytes of the lines (:mod:`zwy.hj212.scan`); otherwise, and as the reference both must
agree with, everything runs on whole columns:

- frames are cut out of lines with Polars string kernels (:func:`zwy.hj212.frames.find_frames`);
- the CRCs are numpy table walks over the Arrow bytes (:func:`zwy.hj212.frames.crc_column`),
  in a worker thread while the items are split;
- the data segments are cut into ``key=value`` items in one pass of Polars' CSV reader (``;``,
  ``,`` and ``&`` translated to line feeds, ``=`` as the separator), the keys read as a
  categorical: every later step (header fields, DataTime, ``-Flag`` matching, 2005 code
  mapping) is integer arithmetic on key ids over the few distinct keys. Frames the CSV
  reader cannot represent exactly (an item with two ``=``, a stray ``&``) are split by
  ``split`` + ``explode`` + ``splitn`` instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache, cached_property

import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa

from zwy.contracts import CODE, LINES, LOCAL_DT, PACKETS, QUARANTINE, TZ_LOCAL, conform
from zwy.hj212 import codes, scan
from zwy.hj212.exceptions import CrcPolicyError
from zwy.hj212.frames import crc_column, find_frames
from zwy.hj212.values import FRAME_COLUMNS, FRAMES, KEYS, ROWS, CompactValues

POLICIES: tuple[str, ...] = ("tolerant", "strict")

#: Header fields of the data segment (HJ 212-2017 Table 3).
HEADER_KEYS: tuple[str, ...] = ("QN", "ST", "CN", "PW", "MN", "Flag", "PNUM", "PNO")

FILE_STATS = pl.Schema(
    {
        "source_file": pl.String,
        "lines_total": pl.Int64,
        "noise_lines": pl.Int64,
        "blank_lines": pl.Int64,
    }
)

PER_FILE = pl.Schema(
    {
        "source_file": pl.String,
        "lines_total": pl.Int64,
        "noise_lines": pl.Int64,
        "blank_lines": pl.Int64,
        "frames_found": pl.Int64,
        "frames_loaded": pl.Int64,
        "frames_quarantined": pl.Int64,
        "values_loaded": pl.Int64,
    }
)

_DATETIME_RE = r"^[0-9]{14}(?:[0-9]{3})?$"
_BLANK_RE = r"^\s*$"  # a blank line: empty or whitespace only (Unicode \s)
_HEX4_RE = r"^[0-9A-Fa-f]{4}$"
_MAX_DECLARABLE = 9999  # the largest data length the 4-digit field can declare


@dataclass(frozen=True)
class ParseResult:
    """What :func:`parse_lines` found.

    Attributes:
        packets: one row per frame (PACKETS), ``ok`` or ``quarantined``.
        compact: the CP values of the accepted data frames, compact (:class:`CompactValues`);
            :attr:`values` spells them out.
        quarantine: one row per quarantined frame (QUARANTINE).
        noise_lines: non-blank lines holding no frame (receiver timestamps, Modbus hex...).
        blank_lines: lines that are empty or whitespace only.
        lines_total: lines read.
        file_stats: per ``source_file``: lines_total, noise_lines, blank_lines.

    """

    packets: pl.DataFrame
    compact: CompactValues
    quarantine: pl.DataFrame
    noise_lines: int
    blank_lines: int
    lines_total: int
    file_stats: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=FILE_STATS))

    @cached_property
    def values(self) -> pl.DataFrame:
        """One row per CP value of the accepted data frames (VALUES), built on first use."""
        return self.compact.expand()

    def per_file(self) -> pl.DataFrame:
        """Return the counts per source file (every file of the input, even without frames).

        Columns: source_file, lines_total, noise_lines, blank_lines, frames_found,
        frames_loaded, frames_quarantined, values_loaded. For each file
        ``frames_found == frames_loaded + frames_quarantined``.
        """
        frames = self.packets.group_by("source_file").agg(
            pl.len().cast(pl.Int64).alias("frames_found"),
            (pl.col("status") == "ok").sum().cast(pl.Int64).alias("frames_loaded"),
            (pl.col("status") == "quarantined").sum().cast(pl.Int64).alias("frames_quarantined"),
        )
        out = (
            self.file_stats.join(frames, on="source_file", how="full", coalesce=True)
            .join(self.compact.per_source_file(), on="source_file", how="left")
            .with_columns(pl.exclude("source_file").fill_null(0))
            .sort("source_file")
        )
        return conform(out, PER_FILE)


def _policy_expr(policies: Mapping[str, str] | None, default_policy: str) -> pl.Expr:
    for name, pol in [("default_policy", default_policy), *(policies or {}).items()]:
        if pol not in POLICIES:
            raise CrcPolicyError(f"CRC policy {pol!r} for {name}: expected one of {POLICIES}")
    # Only the MNs whose policy differs from the default are looked up: a registry that
    # lists every device with the default (the usual case) costs nothing per frame, where
    # looking up 2,000 MNs cost 5 ms a 32 MB group.
    overrides = {mn: pol for mn, pol in (policies or {}).items() if pol != default_policy}
    if not overrides:
        return pl.lit(default_policy)
    return (
        pl.col("mn")
        .replace_strict(overrides, default=default_policy, return_dtype=pl.String)
        .fill_null(default_policy)
    )


def _crc_text() -> pl.Expr:
    """Return the CRC text of frame ``raw``: its last 4 characters, "" when fewer follow ``##dddd``.

    Computed where a reason quotes it (failed frames only), not kept per frame.
    """
    raw = pl.col("raw")
    return pl.when(raw.str.len_chars() - 6 >= 4).then(raw.str.tail(4)).otherwise(pl.lit(""))


def _frame_fields(frames: pl.DataFrame) -> pl.DataFrame:
    """Add length fields, data segment, the CRC sent and where the CP area is.

    ``_crc_sent``: the CRC text (:func:`_crc_text`) as a number when it is 4 hex digits,
    else -1.
    """
    raw = pl.col("raw")
    rest_chars = raw.str.len_chars().cast(pl.Int64) - 6
    crc_text = _crc_text()
    df = frames.with_columns(
        raw.str.slice(2, 4).cast(pl.Int64).alias("declared_length"),
        (raw.str.len_bytes().cast(pl.Int64) - 6).alias("_rest_bytes"),
        # Fewer than 4 characters after the length field: no CRC, all of it is data.
        pl.when(rest_chars >= 4)
        .then(raw.str.slice(6, rest_chars - 4))
        .otherwise(raw.str.slice(6))
        .alias("_data"),
        pl.when(crc_text.str.contains(_HEX4_RE))
        .then(crc_text.str.to_integer(base=16, strict=False))
        .fill_null(-1)
        .cast(pl.Int64)
        .alias("_crc_sent"),
    )
    data = pl.col("_data")
    cp_pos = data.str.find("CP=&&", literal=True).cast(pl.Int64)
    n_bytes = data.str.len_bytes().cast(pl.Int64)
    return df.with_columns(
        n_bytes.alias("actual_length"),
        cp_pos.is_not_null().alias("_has_cp"),
        (data.str.ends_with("&&") & (cp_pos + 7 <= n_bytes)).fill_null(False).alias("_cp_closed"),
    )


@dataclass(frozen=True)
class _Spans:
    """Where each frame's data segment lies in a byte buffer, for the compiled scanner."""

    buf: npt.NDArray[np.uint8]
    starts: npt.NDArray[np.int64]
    ends: npt.NDArray[np.int64]

    def lengths(self) -> npt.NDArray[np.int64]:
        return self.ends - self.starts

    def crc(self, algorithm: str, rows: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        return scan.crc_spans(self.buf, self.starts[rows], self.ends[rows], algorithm)


@dataclass(frozen=True)
class _Located:
    """The frames of some lines with their fields (:func:`_frame_fields`), and line stats.

    ``frames``: one row per frame in (``_lid``, ``_fno``) order, ``_fid`` its row number;
    ``blank`` and ``noise``: per line; ``spans``: the data segments' bytes, when located by
    the compiled scanner.
    """

    frames: pl.DataFrame
    blank: pl.Series
    noise: pl.Series
    spans: _Spans | None


def _locate(lines: pl.DataFrame) -> _Located:
    """Cut the frames out of ``lines`` (with ``_lid``) with Polars string kernels."""
    frames = find_frames(lines)
    blank = lines.get_column("text").str.contains(_BLANK_RE)
    framed = lines.get_column("_lid").is_in(frames.get_column("_lid").unique().implode())
    df = frames.with_row_index("_fid").with_columns(pl.col("_fid").cast(pl.Int64))
    return _Located(_frame_fields(df), blank, ~blank & ~framed, None)


def _locate_compiled(
    lines: pl.DataFrame, text_spans: scan.TextSpans | None = None
) -> _Located | None:
    """:func:`_locate` by one compiled pass over the lines' bytes (same frames and stats).

    Simple lines (ASCII, one ``##`` followed by four digits: nearly all of them) are cut
    and their fields computed from byte offsets (the CRC sent read from its 4 hex digits);
    the strings (``raw``, ``_data``) are views over the lines' bytes, not copies. Any other
    line with ``##`` goes through :func:`zwy.hj212.frames.find_frames`. None: the lines are
    too large for string views (over 2 GiB), for the caller to use :func:`_locate`.
    ``text_spans``: where the lines' text already lies in a buffer (:func:`parse_lines`).
    """
    text = lines.get_column("text")
    if text_spans is not None and (
        len(text_spans.starts) != len(text)
        or not np.array_equal(text_spans.ends - text_spans.starts, text.str.len_bytes().to_numpy())
    ):
        text_spans = None  # not these lines' text: copy it out instead
    if text_spans is None:
        buf, offs = scan.string_buffers(text)
        text_spans = scan.TextSpans(buf, offs[:-1], offs[1:])
    text_buf = text_spans.buf
    if len(text_buf) > scan.MAX_VIEW_BUFFER:
        return None
    found = scan.frame_lines(text_buf, text_spans.starts, text_spans.ends)
    sf = scan.simple_frames(text_buf, found)
    simple, raw_s, raw_e, data_e = sf.line, sf.raw_start, sf.raw_end, sf.data_end
    rest = raw_e - raw_s - 6
    data_s = raw_s + 6
    actual = data_e - data_s
    rows = pl.Series(simple)
    fast = pl.DataFrame(
        [
            pl.Series("_lid", simple, dtype=pl.Int64),
            pl.Series("_fno", np.ones(len(simple), dtype=np.int64)),
            lines.get_column("source_file").gather(rows),
            lines.get_column("line").gather(rows),
            scan.view_series("raw", text_buf, raw_s, raw_e),
            pl.Series("declared_length", sf.declared, dtype=pl.Int64),
            pl.Series("_rest_bytes", rest, dtype=pl.Int64),
            scan.view_series("_data", text_buf, data_s, data_e),
            pl.Series("_crc_sent", sf.crc_sent, dtype=pl.Int64),
            pl.Series("actual_length", actual, dtype=pl.Int64),
            pl.Series("_has_cp", sf.has_cp),
            pl.Series("_cp_closed", sf.cp_closed),
        ]
    )
    framed = found.kind == 1
    other_lines = np.flatnonzero(found.kind == 2)
    spans = _Spans(text_buf, data_s, data_e)
    if len(other_lines):
        others = find_frames(lines.gather(pl.Series(other_lines)))
        framed[others.get_column("_lid").to_numpy()] = True
        others = _frame_fields(others)
        if not others.is_empty():
            both = pl.concat([fast, others.select(fast.columns)]).with_row_index("_src")
            both = both.sort("_lid", "_fno", maintain_order=True)
            order = both.get_column("_src").cast(pl.Int64).to_numpy()
            fast = both.drop("_src")
            # The other frames' segments are copied after the lines' bytes: one buffer.
            extra_buf, extra_offs = scan.string_buffers(others.get_column("_data"))
            buf = np.concatenate([text_buf, extra_buf])
            starts = np.concatenate([data_s, extra_offs[:-1] + len(text_buf)])[order]
            ends = np.concatenate([data_e, extra_offs[1:] + len(text_buf)])[order]
            spans = _Spans(buf, starts, ends)
    df = fast.with_row_index("_fid").with_columns(pl.col("_fid").cast(pl.Int64))
    blank_code = found.blank
    undecided = np.flatnonzero(blank_code < 0)
    blank = blank_code == 1
    if len(undecided):
        text = lines.get_column("text").gather(pl.Series(undecided))
        blank[undecided] = text.str.contains(_BLANK_RE).to_numpy()
    return _Located(df, pl.Series(blank), pl.Series(~blank & ~framed), spans)


_ITEMS = pl.Schema({"_fid": pl.Int64, "key": pl.String, "value_text": pl.String})


def _items_slow(frames: pl.DataFrame) -> pl.DataFrame:
    """Items by split + explode + splitn: exact for any text, used for the rare frames."""
    data = pl.col("_data")
    text = (
        pl.when(data.str.ends_with("&&") & (data.str.len_bytes() >= 7))
        .then(data.str.head(-2))
        .otherwise(data)
        .str.replace("CP=&&", "\nCP=\n", literal=True)
        .str.replace_all("[;,]", "\n")
        .str.split("\n")
    )
    items = (
        frames.select("_fid", text.alias("_item"))
        .explode("_item")
        .with_columns(pl.col("_item").str.splitn("=", 2).alias("_kv"))
        .select(
            "_fid",
            pl.col("_kv").struct.field("field_0").alias("key"),
            pl.col("_kv").struct.field("field_1").alias("value_text"),
        )
    )
    return conform(items, _ITEMS)


_ITEM_SEPARATORS = bytes.maketrans(b";,&", b"\n\n\n")


def _read_items(blob: bytes) -> pl.DataFrame | None:
    """Read ``key=value`` lines; None when the CSV reader refuses the text."""
    try:
        return pl.read_csv(
            blob,
            has_header=False,
            separator="=",
            quote_char=None,
            comment_prefix=None,
            new_columns=["key", "value_text"],
            schema={"key": pl.String, "value_text": pl.String},
            truncate_ragged_lines=True,
            empty_string_is_null=False,
        )
    except pl.exceptions.PolarsError:
        return None


def _items_csv(frames: pl.DataFrame) -> tuple[pl.DataFrame, npt.NDArray[np.int64]]:
    """Items by one pass of the CSV reader (``=`` as the separator) over all frames.

    Only for frames whose data segment ends with ``&&`` and holds exactly four ``&``: then
    replacing ``;``, ``,`` and ``&`` by line feeds ends each frame's text with a line feed and
    turns ``CP=&&`` into a ``CP=`` item that marks where the CP area starts.

    Returns:
        The items, and the ``_fid`` of frames whose items the reader cut short (an item with
        two ``=``) or could not read, which the caller must split with :func:`_items_slow`.

    """
    arr = frames.get_column("_data").to_arrow(compat_level=pl.CompatLevel.oldest())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    offs = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset : arr.offset + len(arr) + 1]
    data = arr.buffers()[2].slice(int(offs[0]), int(offs[-1] - offs[0])).to_pybytes()
    # Byte-level: ";", "," and "&" are ASCII and never inside a UTF-8 multi-byte character.
    blob = data.translate(_ITEM_SEPARATORS)
    n_lines_eq = frames.select(
        pl.col("_data").str.count_matches("[;,&]").cast(pl.Int64).alias("lines"),
        pl.col("_data").str.count_matches("=", literal=True).cast(pl.Int64).alias("eq"),
    )
    counts = n_lines_eq.get_column("lines").to_numpy()
    eq = n_lines_eq.get_column("eq").to_numpy()
    fids = frames.get_column("_fid").to_numpy().astype(np.int64)
    kv = _read_items(blob)
    if kv is None or kv.height != int(counts.sum()):
        # The first line fixes the number of columns: retry after a sentinel "k=v" line.
        kv = _read_items(b"k=v\n" + blob)
        if kv is None or kv.height != int(counts.sum()) + 1:
            return pl.DataFrame(schema=_ITEMS), fids
        kv = kv.slice(1)
    # The reader shows "k" and "k=" alike (value ""), and "a=b=c" as "a=b": frames with such
    # an item, or with more "=" than items that certainly hold one, go the slow path.
    key, value = pl.col("key").fill_null(""), pl.col("value_text").fill_null("")
    flags = kv.select(
        ((key != "") | (value != "")).cast(pl.Int64).alias("eq"),
        ((key != "") & (value == "") & (key != "CP")).cast(pl.Int64).alias("amb"),
    )
    ends = np.cumsum(counts)
    per_frame = []
    for col in ("eq", "amb"):
        cum = np.concatenate([[0], np.cumsum(flags.get_column(col).to_numpy())])
        per_frame.append(cum[ends] - cum[ends - counts])
    cut = fids[(eq != per_frame[0]) | (per_frame[1] > 0)]
    # Blank lines stay as key "": _encode_items treats the empty key as an empty item.
    items = kv.select(
        pl.Series("_fid", np.repeat(fids, counts), dtype=pl.Int64), "key", "value_text"
    )
    if len(cut):
        items = items.filter(~pl.col("_fid").is_in(pl.Series(cut).implode()))
    return items, cut


def _split_items(df: pl.DataFrame) -> pl.DataFrame:
    """Split every frame's data segment into ``key=value`` items (``_fid, key, value_text``).

    Items are separated by ``;`` and ``,`` and split at their first ``=``; the CP area starts
    after an item with key ``CP``. ``key`` is null or empty for an empty item and
    ``value_text`` is null for an item without ``=``. Rows are in frame order, then item
    order (frames from the fast and the slow path are merged by a stable sort).
    """
    data = pl.col("_data")
    fast_mask = data.str.ends_with("&&") & (data.str.count_matches("&", literal=True) == 4)
    frames = df.select("_fid", "_data", fast_mask.fill_null(False).alias("_fast"))
    fast = frames.filter(pl.col("_fast"))
    parts = []
    slow_ids = frames.filter(~pl.col("_fast")).get_column("_fid")
    if not fast.is_empty():
        items, cut = _items_csv(fast)
        parts.append(items)
        if len(cut):
            slow_ids = pl.concat([slow_ids, pl.Series(cut, dtype=pl.Int64)])
    if not slow_ids.is_empty():
        parts.append(_items_slow(frames.filter(pl.col("_fid").is_in(slow_ids.implode()))))
    items = pl.concat(parts) if parts else pl.DataFrame(schema=_ITEMS)
    if len(parts) > 1:
        items = items.sort("_fid", maintain_order=True)
    return items


_KEYS = pl.Schema(
    {
        "key": pl.String,
        "code_raw": pl.String,
        "field": pl.String,
        "pollutant": pl.String,
        "code_status": pl.String,
        "field_known": pl.Boolean,
        "is_flag": pl.Boolean,
        "is_datatime": pl.Boolean,
    }
)


def _key_table(keys: list[str]) -> pl.DataFrame:
    """Describe each distinct CP key (few per file): code, field, 2017 code, status."""
    rows: list[tuple[str, str | None, str, str | None, str | None, bool, bool, bool]] = []
    for key in keys:
        code, sep, suffix = key.partition("-")
        if sep:
            pollutant, status = codes.classify_code(code)
            known = suffix in codes.TABLE4_SUFFIXES
            rows.append((key, code, suffix, pollutant, status, known, suffix == "Flag", False))
        else:
            known = key in codes.TABLE4_KEYS
            rows.append((key, None, key, None, None, known, False, key == "DataTime"))
    return pl.DataFrame(rows, schema=_KEYS, orient="row")


@dataclass(frozen=True)
class _Items:
    """Items with their key as an integer id, split into header and CP parts per frame."""

    fid: npt.NDArray[np.int64]  # frame id of each item
    kid: npt.NDArray[np.int64]  # row of the item's key in ``keys`` (-1: empty item)
    value_text: pl.Series
    keys: pl.DataFrame  # _KEYS rows
    in_header: npt.NDArray[np.bool_]  # before the frame's "CP=" item (all items without one)
    in_cp: npt.NDArray[np.bool_]  # after the frame's "CP=" item
    # value_text's Arrow views and the bytes they point into, from the compiled split
    # (numbers read by :func:`zwy.hj212.scan.decimals`); None from the reference split.
    text_views: tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint8]] | None = None

    def first_per_frame(self, mask: npt.NDArray[np.bool_], n_frames: int) -> npt.NDArray[np.int64]:
        """Item row of the first item matching ``mask`` in each frame (-1 when none)."""
        rows = np.flatnonzero(mask)
        out = np.full(n_frames, -1, dtype=np.int64)
        # np.unique's first index per frame: a fancy assignment's order is unspecified.
        frames, at = np.unique(self.fid[rows], return_index=True)
        out[frames] = rows[at]
        return out


def _encode_items(items: pl.DataFrame, n_frames: int) -> _Items:
    key = items.get_column("key")
    names = key.unique().drop_nulls().sort()
    # An Enum over the distinct keys turns each key into its index in ``names`` (a hash
    # lookup per item, much cheaper than a Categorical read by the CSV reader).
    phys = (
        key.cast(pl.Enum(names.to_list()))
        .to_physical()
        .cast(pl.Int64)
        .fill_null(len(names))
        .to_numpy()
    )
    keep = (names != "").to_numpy()  # the empty key ("=5") counts as an empty item
    # lut: index in names -> key row; the extra last slot (-1) takes null keys.
    lut = np.full(len(names) + 1, -1, dtype=np.int64)
    lut[np.flatnonzero(keep)] = np.arange(int(keep.sum()))
    fid = items.get_column("_fid").to_numpy().astype(np.int64)
    return _items_from_ids(
        fid,
        lut[phys],
        items.get_column("value_text"),
        names.filter(names != "").to_list(),
        n_frames,
        compiled=False,
    )


def _item_roles_numpy(
    fid: npt.NDArray[np.int64], kid: npt.NDArray[np.int64], cp_k: int, n_frames: int
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """:func:`zwy.hj212.scan.item_roles` in numpy (the reference): in_header, in_cp."""
    marks = np.flatnonzero(kid == cp_k) if cp_k >= 0 else np.zeros(0, dtype=np.int64)
    cp_row = np.full(n_frames, len(fid), dtype=np.int64)
    frames, at = np.unique(fid[marks], return_index=True)  # each frame's first CP
    cp_row[frames] = marks[at]
    rel = np.arange(len(fid), dtype=np.int64) - cp_row[fid]
    return rel < 0, rel > 0


def _items_from_ids(
    fid: npt.NDArray[np.int64],
    kid: npt.NDArray[np.int64],
    value_text: pl.Series,
    key_names: list[str],
    n_frames: int,
    *,
    compiled: bool,
    text_views: tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint8]] | None = None,
) -> _Items:
    """Items from frame ids, key ids (rows of ``key_names``, -1 empty) and value texts.

    ``compiled``: each item's role (header or CP area) by one compiled pass
    (:func:`zwy.hj212.scan.item_roles`), else by the numpy reference.
    """
    keys = _key_table(key_names)
    cp_kid = np.flatnonzero((keys.get_column("key") == "CP").to_numpy())
    cp_k = int(cp_kid[0]) if len(cp_kid) else -1
    roles = scan.item_roles(fid, kid, cp_k, n_frames) if compiled else None
    if roles is None:
        roles = _item_roles_numpy(fid, kid, cp_k, n_frames)
    return _Items(
        fid=fid,
        kid=kid,
        value_text=value_text,
        keys=keys,
        in_header=roles[0],
        in_cp=roles[1],
        text_views=text_views,
    )


def _compiled_items(spans: _Spans, n: int) -> _Items | None:
    """Items by the compiled scanner (:mod:`zwy.hj212.scan`); None past its key limit."""
    split = scan.split_spans(spans.buf, spans.starts, spans.ends)
    if split is None:
        return None
    return _items_from_ids(
        split.fid,
        split.kid,
        split.value_text,
        split.keys,
        n,
        compiled=True,
        text_views=(split.views, split.buf),
    )


def _frame_firsts_numpy(
    it: _Items,
    value_null: npt.NDArray[np.bool_],
    slot_of_key: npt.NDArray[np.int64],
    is_dt_k: npt.NDArray[np.bool_],
    has_code_k: npt.NDArray[np.bool_],
    n: int,
    n_slots: int,
) -> tuple[
    npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.bool_]
]:
    """:func:`zwy.hj212.scan.frame_firsts` in numpy (the reference): first, bad, dup, has."""
    kid = it.kid  # -1 indexes the extra last slot of the key tables, which is -1 / False
    slot = np.where(it.in_header, slot_of_key[kid], -1)
    slot = np.where(it.in_cp & is_dt_k[kid], n_slots, slot)
    rows = np.flatnonzero(slot >= 0)
    flat = np.full(n * (n_slots + 1), -1, dtype=np.int64)
    # np.unique gives each (frame, slot)'s first row: numpy leaves the order of a fancy
    # assignment with repeated indices unspecified (a 2-D one took the last here).
    cells, at = np.unique(it.fid[rows] * (n_slots + 1) + slot[rows], return_index=True)
    flat[cells] = rows[at]
    bad = it.first_per_frame(it.in_header & (kid >= 0) & value_null, n)
    # A header slot taken again: every row of a header cell but its first.
    again = np.zeros(len(kid), dtype=bool)
    again[rows[slot[rows] < n_slots]] = True
    again[rows[at]] = False
    dup = it.first_per_frame(again, n)
    has = np.bincount(it.fid[it.in_cp & has_code_k[kid]], minlength=n) > 0
    return flat.reshape(n, n_slots + 1), bad, dup, has


def _frame_item_columns(n: int, it: _Items, *, compiled: bool) -> list[pl.Series]:
    """Per frame: header fields ``_h_<KEY>``, ``_bad_item``, ``_dup_item``, ``_dt_text``, ``_has_values``.

    ``_bad_item`` is the first header item that is not KEY=value; ``_dup_item`` the first
    header field (of :data:`HEADER_KEYS`) given a second time; ``_dt_text`` the first
    DataTime of the CP area; ``_has_values`` tells whether the CP area has a ``code-field`` key.
    ``compiled``: the first items found by one compiled pass
    (:func:`zwy.hj212.scan.frame_firsts`) and, with the compiled split's views, their
    texts copied as views in one more (:func:`zwy.hj212.scan.gather_texts`); else the
    numpy reference and ``Series.gather``.
    """
    names = it.keys.get_column("key").to_list()
    # One slot per wanted (part, key): header keys, then DataTime in the CP area. Each
    # per-key table has an extra last entry for the items without a key (kid -1).
    slot_of_key = np.full(len(names) + 1, -1, dtype=np.int64)
    for k, name in enumerate(names):
        if name in HEADER_KEYS:
            slot_of_key[k] = HEADER_KEYS.index(name)
    dt_slot = len(HEADER_KEYS)
    is_dt = np.zeros(len(names) + 1, dtype=bool)
    if "DataTime" in names:
        is_dt[names.index("DataTime")] = True
    has_code_k = np.append(it.keys.get_column("code_raw").is_not_null().to_numpy(), False)
    value_null = it.value_text.is_null().to_numpy()
    tables = (value_null, slot_of_key, is_dt, has_code_k, n, dt_slot)
    found = scan.frame_firsts(it.fid, it.kid, it.in_header, it.in_cp, *tables) if compiled else None
    if found is None:
        found = _frame_firsts_numpy(it, *tables)
    first, bad_row, dup_row, has_values = found
    text_columns = [*(f"_h_{k}" for k in HEADER_KEYS), "_dt_text"]  # one per slot
    slots = list(range(dt_slot + 1))
    texts = (
        scan.gather_texts(text_columns, *it.text_views, value_null, first, slots)
        if compiled and it.text_views is not None
        else None
    )
    if texts is None:
        texts = [
            _gather_nullable(it.value_text, first[:, s]).alias(name)
            for s, name in zip(slots, text_columns, strict=True)
        ]
    cols = texts[:dt_slot]
    key_names = it.keys.get_column("key")
    for name, row in (("_bad_item", bad_row), ("_dup_item", dup_row)):
        kid_of_row = np.where(row >= 0, it.kid[np.maximum(row, 0)], -1)
        cols.append(_gather_nullable(key_names, kid_of_row).alias(name))
    cols.append(texts[dt_slot])
    cols.append(pl.Series("_has_values", has_values))
    return cols


def _gather_nullable(values: pl.Series, idx: npt.NDArray[np.int64]) -> pl.Series:
    if len(values) == 0:
        return pl.Series(values.name, [None] * len(idx), dtype=values.dtype)
    index = pl.Series(idx).set(pl.Series(idx < 0), None)
    return values.gather(index)


def _crc_variants(
    df: pl.DataFrame,
    scanned: _Spans | None = None,
) -> list[pl.Series]:
    """Return ``crc_variant`` and ``_crc_expected`` (the Appendix A CRC in hex) per frame.

    ``df`` holds ``_data`` and ``_crc_sent``; ``scanned``: the bytes and spans of
    ``_data`` for the compiled scanner (else the numpy path, which runs in a worker thread:
    numpy and Polars release the GIL, so it overlaps with the item splitting).
    """
    data = df.get_column("_data")
    n_bytes = scanned.lengths() if scanned is not None else data.str.len_bytes().to_numpy()
    # A data segment longer than the 4-digit length field allows fails the length rule:
    # its CRC is not computed (-2 matches nothing).
    sized = np.flatnonzero(n_bytes <= _MAX_DECLARABLE)
    crc_a = np.full(len(data), -2, dtype=np.int64)
    if scanned is not None:
        crc_a[sized] = scanned.crc("appendix_a", sized)
    elif len(sized) == len(data):
        crc_a[:] = crc_column(data, "appendix_a")
    else:
        data = data.gather(pl.Series(sized))
        crc_a[sized] = crc_column(data, "appendix_a")
    sent = df.get_column("_crc_sent").to_numpy()
    # The variant as a code into _VARIANTS (0 "none"): a string per frame made once by a
    # gather, not an object array converted (4-5 ms per 80 k frames).
    variant = np.zeros(len(df), dtype=np.uint8)
    is_a = sent == crc_a
    variant[is_a] = 1
    # Modbus only for the frames that fail Appendix A.
    rest = np.flatnonzero((sent >= 0) & ~is_a & (crc_a >= 0))
    if len(rest):
        if scanned is not None:
            crc_m = scanned.crc("modbus", rest)
        else:
            in_data = rest if len(sized) == len(crc_a) else np.searchsorted(sized, rest)
            crc_m = crc_column(data.gather(pl.Series(in_data)), "modbus").astype(np.int64)
        crc_swapped = ((crc_m & 0xFF) << 8) | (crc_m >> 8)
        got = sent[rest]
        variant[rest[got == crc_m]] = 2
        variant[rest[(got != crc_m) & (got == crc_swapped)]] = 3
    return [
        _VARIANTS.gather(pl.Series(variant)).alias("crc_variant"),
        _to_hex(crc_a).alias("_crc_expected"),
    ]


#: ``crc_variant`` by code, as :func:`_crc_variants` numbers them.
_VARIANTS = pl.Series("crc_variant", ["none", "appendix_a", "modbus", "modbus_swapped"])


@cache
def _hex_table() -> pl.Series:
    # Every 16-bit register as 4 hex digits, then null (for -1, -2: no CRC computed).
    return pl.Series("hex", [*(f"{v:04X}" for v in range(1 << 16)), None], dtype=pl.String)


def _to_hex(values: npt.NDArray[np.int64]) -> pl.Series:
    """Return each 16-bit ``values`` as 4 upper-case hex digits; null where negative.

    Polars has no integer -> hex formatter: a look-up in a table of all 65,536 (made once,
    about 16 ms), where sorting the distinct values first cost 5 ms per 80 k frames.
    """
    return _hex_table().gather(pl.Series(np.where(values >= 0, values, 1 << 16)))


def _datatime(df: pl.DataFrame, *, compiled: bool = False) -> pl.DataFrame:
    """Add ``data_time`` (Asia/Shanghai) and ``_dt_ok`` for frames whose DataTime parses.

    ``compiled``: parse with the compiled pass (:func:`zwy.hj212.scan.datatimes`), which
    leaves the DataTimes that need the time zone's history (before 1992) to this one.
    """
    if compiled:
        parsed = scan.datatimes(df.get_column("_dt_text"))
        if parsed is not None and parsed[1]:
            in_local = parsed[0].dt.convert_time_zone(TZ_LOCAL).cast(LOCAL_DT)
            return df.with_columns(in_local.alias("data_time")).with_columns(
                pl.col("data_time").is_not_null().alias("_dt_ok")
            )
    text = pl.col("_dt_text")
    digits = text.str.contains(_DATETIME_RE).fill_null(False)
    naive = text.str.head(14).str.strptime(pl.Datetime("us"), "%Y%m%d%H%M%S", strict=False)
    millis = pl.when(text.str.len_bytes() == 17).then(text.str.tail(3).cast(pl.Int64, strict=False))
    local = (
        (naive + pl.duration(milliseconds=millis.fill_null(0)))
        .dt.replace_time_zone(TZ_LOCAL, ambiguous="earliest", non_existent="null")
        .cast(LOCAL_DT)
    )
    return df.with_columns(
        pl.when(digits).then(local).alias("data_time"),
    ).with_columns((digits & pl.col("data_time").is_not_null()).alias("_dt_ok"))


def _inherit_datatime(df: pl.DataFrame) -> pl.DataFrame:
    # Split packets (PNUM/PNO): a part without DataTime takes its sibling's (same QN and MN).
    need = df.get_column("_dt_text").is_null() & df.get_column("pnum").is_not_null()
    if not need.any():
        return df
    split = df.filter(pl.col("pnum").is_not_null() & pl.col("qn").is_not_null())
    sib = (
        split.filter(pl.col("_dt_ok"))
        .group_by("qn", "mn")
        .agg(pl.col("data_time").first().alias("_sib_dt"))
    )
    df = df.join(sib, on=["qn", "mn"], how="left", maintain_order="left", nulls_equal=False)
    inherit = pl.col("_dt_text").is_null() & pl.col("pnum").is_not_null()
    return df.with_columns(
        pl.when(inherit).then(pl.col("_sib_dt")).otherwise(pl.col("data_time")).alias("data_time"),
        (pl.col("_dt_ok") | (inherit & pl.col("_sib_dt").is_not_null())).alias("_dt_ok"),
    ).drop("_sib_dt")


def _rules(df: pl.DataFrame, policy: pl.Expr) -> pl.DataFrame:
    """Add ``rule`` and ``reason``: the first failing rule of each frame (null when ok)."""
    declared = pl.col("declared_length")
    actual = pl.col("actual_length")
    rest_bytes = pl.col("_rest_bytes")
    variant = pl.col("crc_variant")
    st, cn, mn, flag_text = pl.col("st"), pl.col("cn"), pl.col("mn"), pl.col("_h_Flag")
    flag_int = flag_text.cast(pl.Int64, strict=False)
    flag_valid = flag_text.str.contains(r"^[0-9]{1,3}$").fill_null(False) & flag_int.is_between(
        0, 255
    )
    version = flag_int // 4
    s = pl.lit

    truncated = rest_bytes < declared + 4
    bad_length = actual != declared
    crc_ok = (variant == "appendix_a") | (
        (policy == "tolerant") & variant.is_in(["modbus", "modbus_swapped"])
    )
    pnum_bad = pl.col("_h_PNUM").is_not_null() & pl.col("pnum").is_null()
    pno_bad = pl.col("_h_PNO").is_not_null() & pl.col("pno").is_null()
    no_cp = ~pl.col("_has_cp")
    not_closed = ~pl.col("_cp_closed")
    bad_item = pl.col("_bad_item").is_not_null()
    dup_item = pl.col("_dup_item").is_not_null()
    st_bad = st.is_null() | ~st.is_in(sorted(codes.ST_KNOWN))
    cn_bad = cn.is_null() | ~cn.is_in(sorted(codes.CN_KNOWN))
    flag_bad = flag_text.is_not_null() & (
        ~flag_valid | ~version.is_in(list(codes.PROTOCOL_BY_VERSION))
    )
    mn_bad = mn.is_null() | (mn.str.strip_chars() == "")
    data_cn = cn.is_in(sorted(codes.DATA_CNS))
    has_values = pl.col("_has_values")
    dt_present_bad = pl.col("_dt_text").is_not_null() & ~pl.col("_dt_ok")
    dt_missing = pl.col("_dt_text").is_null() & ~pl.col("_dt_ok") & has_values
    dt_bad = data_cn & (dt_present_bad | dt_missing)

    crc_reason = (
        pl.when(variant == "none")
        .then(
            pl.concat_str(
                s("CRC '"),
                _crc_text(),
                s("' matches no known algorithm: expected Appendix A CRC "),
                pl.col("_crc_expected"),
            )
        )
        .otherwise(
            pl.concat_str(
                s("CRC '"),
                _crc_text(),
                s("' is "),
                variant,
                s(" (CRC-16/MODBUS); policy "),
                policy,
                s(" accepts only Appendix A CRC "),
                pl.col("_crc_expected"),
            )
        )
    )
    head = pl.col("_data").str.head(40)
    rules = [
        (
            truncated,
            "truncated",
            pl.concat_str(
                s("frame ends after "),
                rest_bytes.clip(lower_bound=0).cast(pl.String),
                s(" of "),
                (declared + 4).cast(pl.String),
                s(" declared characters (data segment "),
                declared.cast(pl.String),
                s(" + CRC 4)"),
            ),
        ),
        (
            bad_length,
            "length",
            pl.concat_str(
                s("declared data length "),
                declared.cast(pl.String),
                s(", actual "),
                actual.cast(pl.String),
                s(" bytes"),
            ),
        ),
        (~crc_ok, "crc", crc_reason),
        (
            no_cp,
            "syntax",
            pl.concat_str(s("no 'CP=&&' data area in data segment starting '"), head, s("'")),
        ),
        (
            not_closed,
            "syntax",
            s("CP area not closed by &&: expected the data segment to end with '&&'"),
        ),
        (
            bad_item,
            "syntax",
            pl.concat_str(s("header field '"), pl.col("_bad_item"), s("' is not KEY=value")),
        ),
        (
            dup_item,
            "syntax",
            # Two MNs (or CNs, DataTimes of the header...): which one the frame means is a
            # guess, and a guessed MN would put its data on the wrong device.
            pl.concat_str(
                s("header field '"),
                pl.col("_dup_item"),
                s("' appears more than once: the frame is ambiguous"),
            ),
        ),
        (
            pnum_bad | pno_bad,
            "syntax",
            pl.concat_str(
                s("PNUM/PNO must be integers, found PNUM="),
                pl.col("_h_PNUM").fill_null("(absent)"),
                s(" PNO="),
                pl.col("_h_PNO").fill_null("(absent)"),
            ),
        ),
        (
            st_bad,
            "st",
            pl.concat_str(
                s("ST "),
                st.fill_null("(absent)"),
                s(" is not a system code of HJ 212-2017 Table 5"),
            ),
        ),
        (
            cn_bad,
            "cn",
            pl.concat_str(
                s("CN "),
                cn.fill_null("(absent)"),
                s(" is not a command code of HJ 212-2017 Table 9 or HJ/T 212-2005"),
            ),
        ),
        (
            flag_bad,
            "flag",
            pl.when(~flag_valid)
            .then(pl.concat_str(s("Flag '"), flag_text, s("' is not an integer 0-255")))
            .otherwise(
                pl.concat_str(
                    s("Flag "),
                    flag_text,
                    s(" has version bits "),
                    version.cast(pl.String).str.zfill(2),
                    s(" (Flag // 4); expected 0 (2005), 1 (2017) or 2 (2025?)"),
                )
            ),
        ),
        (mn_bad, "mn", s("MN missing: expected the device id MN=... in the header")),
        (
            dt_bad,
            "datatime",
            pl.when(pl.col("_dt_text").is_null())
            .then(
                pl.concat_str(
                    s("DataTime missing in a CN "),
                    cn,
                    s(" data packet (no sibling packet with the same QN and MN carries one)"),
                )
            )
            .otherwise(
                pl.concat_str(
                    s("DataTime '"),
                    pl.col("_dt_text"),
                    s("' is not a valid YYYYMMDDhhmmss[zzz] Beijing time"),
                )
            ),
        ),
    ]
    # Each rule's number where it fails, the first one taken (coalesce), then its name by
    # a gather: a when/then chain of the names zipped a string column per rule over every
    # frame (this function 12.2 -> 8.1 ms a group of 80 k frames, the same rule for each).
    first_failed = df.select(
        pl.coalesce(
            [
                pl.when(cond.fill_null(False)).then(pl.lit(i, dtype=pl.Int32))
                for i, (cond, _, _) in enumerate(rules)
            ]
        )
    ).to_series()
    names = pl.Series("rule", [name for _, name, _ in rules], dtype=pl.String)
    df = df.with_columns(names.gather(first_failed).alias("rule"))
    reason_expr: pl.Expr = pl.lit(None, dtype=pl.String)
    for cond, _, reason in reversed(rules):
        reason_expr = pl.when(cond.fill_null(False)).then(reason).otherwise(reason_expr)
    # A when/then chain computes every branch over every row: the reasons (a dozen string
    # concatenations) only for the few frames that failed a rule.
    failed = df.get_column("rule").is_not_null().arg_true()
    reasons = pl.repeat(None, df.height, dtype=pl.String, eager=True).alias("reason")
    if not failed.is_empty():
        reasons = reasons.scatter(failed, df.gather(failed).select(reason_expr).to_series())
    return df.with_columns(reasons)


def _duplicates(df: pl.DataFrame) -> pl.DataFrame:
    """Quarantine accepted frames repeating (mn, cn, data_time, pno) of an earlier one."""
    keys = ["mn", "cn", "data_time", "pno"]
    # Only the columns needed here (the frame holds some forty by now): 6.2 -> 5.6 ms a group.
    cand = df.select("_fid", "source_file", "line", "_fno", *keys).filter(
        df.get_column("rule").is_null() & df.get_column("data_time").is_not_null()
    )
    dup = cand.filter(pl.struct(keys).is_duplicated())
    if dup.is_empty():
        return df
    dup = (
        dup.sort("source_file", "line", "_fno")
        .with_columns(
            pl.col("source_file").first().over(keys).alias("_first_file"),
            pl.col("line").first().over(keys).alias("_first_line"),
            pl.int_range(pl.len()).over(keys).alias("_nth"),
        )
        .filter(pl.col("_nth") > 0)
        .select(
            "_fid",
            pl.concat_str(
                pl.lit("duplicate of "),
                pl.col("_first_file"),
                pl.lit(":"),
                pl.col("_first_line").cast(pl.String),
                pl.lit(" (same MN, CN, DataTime and PNO)"),
            ).alias("_dup_reason"),
        )
    )
    df = df.join(dup, on="_fid", how="left", maintain_order="left")
    is_dup = pl.col("_dup_reason").is_not_null()
    return df.with_columns(
        pl.when(is_dup).then(pl.lit("duplicate")).otherwise(pl.col("rule")).alias("rule"),
        pl.when(is_dup).then(pl.col("_dup_reason")).otherwise(pl.col("reason")).alias("reason"),
    ).drop("_dup_reason")


def _value_rows_numpy(
    it: _Items,
    ok_frame: npt.NDArray[np.bool_],
    is_flag_k: npt.NDArray[np.bool_],
    is_dt_k: npt.NDArray[np.bool_],
    code_id_k: npt.NDArray[np.int64],
) -> scan.ValueRows:
    """:func:`zwy.hj212.scan.value_rows` in numpy (the reference)."""
    n = len(ok_frame)
    valid = it.kid >= 0
    kid = np.where(valid, it.kid, 0)
    in_ok = ok_frame[it.fid] & valid & it.in_cp
    keep = in_ok & ~is_flag_k[kid] & ~is_dt_k[kid]
    rows = np.flatnonzero(keep)
    flag_rows = np.flatnonzero(in_ok & is_flag_k[kid])
    # "-Flag" fills the flag of every row of the same pollutant in the same frame: match on
    # frame id * number of codes + code id.
    n_codes = int(code_id_k.max()) + 1
    flag_of_row = np.full(len(rows), -1, dtype=np.int64)
    if len(flag_rows):
        flag_fk = it.fid[flag_rows] * n_codes + code_id_k[kid[flag_rows]]
        row_fk = it.fid[rows] * n_codes + code_id_k[kid[rows]]
        if n * n_codes <= 64_000_000:
            table = np.full(n * n_codes, -1, dtype=np.int64)
            cells, at = np.unique(flag_fk, return_index=True)  # the first -Flag wins
            table[cells] = flag_rows[at]
            flag_of_row = table[row_fk]
        else:
            order = np.argsort(flag_fk, kind="stable")
            uniq, first = np.unique(flag_fk[order], return_index=True)
            pos = np.minimum(np.searchsorted(uniq, row_fk), len(uniq) - 1)
            flag_of_row = np.where(uniq[pos] == row_fk, flag_rows[order[first]][pos], -1)
        flag_of_row = np.where(code_id_k[kid[rows]] > 0, flag_of_row, -1)
    # The frames renumbered over those that have values.
    fid = it.fid[rows]
    used = np.zeros(n, dtype=np.bool_)
    used[fid] = True
    frame_no = (np.cumsum(used, dtype=np.int64) - 1)[fid]
    return scan.ValueRows(
        rows, flag_of_row, frame_no.astype(np.uint32), it.kid[rows].astype(np.uint32), used
    )


def _numbers(it: _Items, rows: npt.NDArray[np.int64]) -> pl.Series:
    """Return the texts of items ``rows`` as Float64, as ``cast(strict=False)``; inf, NaN null.

    With the compiled split's views, plain decimals are read by
    :func:`zwy.hj212.scan.decimals` and only the other texts are gathered and cast by
    Polars.
    """
    if it.text_views is None:
        value = it.value_text.gather(pl.Series(rows)).cast(pl.Float64, strict=False)
    else:
        numbers, sure = scan.decimals(*it.text_views, rows)
        value = pl.Series("value", numbers)
        unsure = np.flatnonzero(~sure)
        if len(unsure):
            texts = it.value_text.gather(pl.Series(rows[unsure]))
            value = value.scatter(unsure, texts.cast(pl.Float64, strict=False))
    return value.set(~value.is_finite().fill_null(False), None).alias("value")


def _flags(it: _Items, flag_of_row: npt.NDArray[np.int64]) -> pl.Series:
    """Return the text of item ``flag_of_row`` of each row (null for -1) as a code.

    With the compiled split's views, flags of one ASCII character each (what devices send)
    are looked up by their byte in a table of this group's few distinct flags, instead of
    every row's text being gathered and hashed; one flag of any other text (empty, none,
    longer, not ASCII) sends the whole group's flags the text way.
    """
    if it.text_views is not None:
        one = scan.one_byte_texts(it.text_views[0], flag_of_row)
        if one is not None:
            rank, present = one
            table = pl.Series("flag", [None, *map(chr, present)], dtype=pl.String).cast(CODE)
            return table.gather(pl.Series(rank))
    return _gather_nullable(it.value_text, flag_of_row).cast(CODE)


def _values(df: pl.DataFrame, it: _Items, *, compiled: bool) -> CompactValues:
    """Build the values (compact) of the CP items of accepted frames of a value CN with a DataTime.

    Index arithmetic on item and key ids only: ``-Flag`` items fill the ``flag`` of the
    same pollutant in the same frame; DataTime and ``-Flag`` items are not rows themselves.
    ``compiled``: pick the rows by the compiled pass (:func:`zwy.hj212.scan.value_rows`),
    else by the numpy reference.
    """
    keys = it.keys
    if keys.is_empty():
        return CompactValues.empty()
    ok_frame = (
        df.select(
            (pl.col("status") == "ok")
            & pl.col("cn").is_in(sorted(codes.VALUE_CNS))
            # Requests (CN 2051 with BeginTime/EndTime...) carry no DataTime and no data.
            & pl.col("data_time").is_not_null()
        )
        .to_series()
        .fill_null(False)
        .to_numpy()
    )
    is_flag_k = keys.get_column("is_flag").to_numpy()
    is_dt_k = keys.get_column("is_datatime").to_numpy()
    code_id_k = (
        keys.select(pl.col("code_raw").rank("dense").fill_null(0).cast(pl.Int64))
        .to_series()
        .to_numpy()
    )
    # One compiled pass over the items (2 M a group; the numpy reference makes a dozen),
    # which is also the fallback when numba is missing or the items are not by frame.
    picked = (
        scan.value_rows(it.fid, it.kid, it.in_cp, ok_frame, is_flag_k, is_dt_k, code_id_k)
        if compiled
        else None
    )
    if picked is None:
        picked = _value_rows_numpy(it, ok_frame, is_flag_k, is_dt_k, code_id_k)
    rows, flag_of_row = picked.rows, picked.flag_of_row
    if not len(rows):
        return CompactValues.empty()
    # The values stay compact: each row names its frame and key by number (the frames
    # renumbered over the frames that have values), and only the frames' and keys' few
    # rows are made codes (Categorical, by ``conform`` below), not one per value. Select,
    # then filter: the frame holds some forty columns by now.
    frames = df.select(FRAME_COLUMNS).filter(pl.Series(picked.used))
    value = _numbers(it, rows)
    # The rows keep the text of values that are not numbers (what staging keeps); every
    # value's text is gathered only when the VALUES frame is spelled out (``texts``).
    not_number = value.is_null().arg_true()
    value_text = pl.repeat(None, len(rows), dtype=pl.String, eager=True)
    if not not_number.is_empty():
        value_text = value_text.scatter(
            not_number, it.value_text.gather(pl.Series(rows[not_number.to_numpy()]))
        )
    own = pl.DataFrame(
        {
            "frame": picked.frame_no,
            "key": picked.key,  # a row's key is never -1
            "value": value,
            "value_text": value_text,
            "flag": _flags(it, flag_of_row),
        }
    )
    return CompactValues(
        conform(frames, FRAMES),
        conform(keys, KEYS),
        conform(own, ROWS),
        texts=(it.value_text, rows),
    )


def _empty_result(
    file_stats: pl.DataFrame, lines_total: int, noise: int, blank: int
) -> ParseResult:
    return ParseResult(
        packets=pl.DataFrame(schema=PACKETS),
        compact=CompactValues.empty(),
        quarantine=pl.DataFrame(schema=QUARANTINE),
        noise_lines=noise,
        blank_lines=blank,
        lines_total=lines_total,
        file_stats=file_stats,
    )


def parse_lines(
    lines: pl.DataFrame,
    policies: Mapping[str, str] | None = None,
    default_policy: str = "tolerant",
    compiled: bool | None = None,
    *,
    text_spans: scan.TextSpans | None = None,
) -> ParseResult:
    """Find and check every HJ 212 frame in ``lines`` and explode the accepted data values.

    Args:
        lines: a LINES frame (source_file, line, text), e.g. from
            :func:`zwy.hj212.reader.read_log_lines`; several files may be concatenated.
        policies: CRC policy per MN (``tolerant`` or ``strict``), e.g. from the registry's
            monitoring points; MNs not listed use ``default_policy``.
        default_policy: ``tolerant`` accepts Appendix A and both Modbus variants (recorded in
            ``crc_variant``); ``strict`` accepts only Appendix A.
        compiled: cut items, compute CRCs and pick the value rows with the compiled
            scanner (:mod:`zwy.hj212.scan`); None: when numba is installed. Both paths give the
            same result; False keeps the whole-column Polars/numpy path.
        text_spans: where each line's text lies in a byte buffer, as
            :func:`zwy.hj212.reader.log_lines_group` split them (``GroupLines.spans``): the
            compiled path then reads the text there instead of copying every line into a
            buffer of its own (32 MB a group, and the page faults of a fresh buffer). Spans
            whose lengths are not the lines' are not used.

    Returns:
        A :class:`ParseResult`. Every frame is in ``packets`` with status ``ok`` or
        ``quarantined``; quarantined frames are also in ``quarantine`` with the same rule and
        reason. Never raises on any input text.

    Raises:
        CrcPolicyError: a policy name is not ``tolerant`` or ``strict`` (configuration).

    """
    policy = _policy_expr(policies, default_policy)
    lines = conform(lines, LINES)
    if lines.get_column("text").null_count():
        lines = lines.with_columns(pl.col("text").fill_null(""))
    lines = lines.with_row_index("_lid").with_columns(pl.col("_lid").cast(pl.Int64))
    use_scanner = scan.AVAILABLE if compiled is None else compiled
    located = _locate_compiled(lines, text_spans) if use_scanner else None
    if located is None:
        located = _locate(lines)
    line_stats = pl.DataFrame(
        [
            lines.get_column("source_file"),
            located.blank.alias("_blank"),
            located.noise.alias("_noise"),
        ]
    )
    file_stats = conform(
        line_stats.group_by("source_file", maintain_order=True).agg(
            pl.len().alias("lines_total"),
            pl.col("_noise").sum().alias("noise_lines"),
            pl.col("_blank").sum().alias("blank_lines"),
        ),
        FILE_STATS,
    )
    noise = int(located.noise.sum())
    blanks = int(located.blank.sum())
    df = located.frames
    if df.is_empty():
        return _empty_result(file_stats, lines.height, noise, blanks)

    if use_scanner:
        spans = located.spans
        if spans is None:
            buf, offs = scan.string_buffers(df.get_column("_data"))
            spans = _Spans(buf, offs[:-1], offs[1:])
        crc_columns = _crc_variants(df, spans)
        found = _compiled_items(spans, df.height)
        del spans, located
        # Past the scanner's key limit (a garbage day), the reference split.
        items = found if found is not None else _encode_items(_split_items(df), df.height)
    else:
        with ThreadPoolExecutor(max_workers=1) as pool:
            crc = pool.submit(_crc_variants, df.select("_data", "_crc_sent"))
            items = _encode_items(_split_items(df), df.height)
            crc_columns = crc.result()
    df = df.with_columns(crc_columns)
    df = df.with_columns(_frame_item_columns(df.height, items, compiled=use_scanner))
    df = df.with_columns(
        pl.col("_h_QN").alias("qn"),
        pl.col("_h_ST").alias("st"),
        pl.col("_h_CN").alias("cn"),
        pl.col("_h_PW").alias("pw"),
        pl.col("_h_MN").alias("mn"),
        pl.col("_h_PNUM").cast(pl.Int64, strict=False).alias("pnum"),
        pl.col("_h_PNO").cast(pl.Int64, strict=False).alias("pno"),
    )
    flag_int = pl.col("_h_Flag").cast(pl.Int64, strict=False)
    df = df.with_columns(
        pl.when(flag_int.is_between(0, 255)).then(flag_int).alias("flag"),
    ).with_columns(
        pl.when(pl.col("_h_Flag").is_null())
        .then(pl.lit("2005"))
        .otherwise(
            (pl.col("flag") // 4).replace_strict(
                codes.PROTOCOL_BY_VERSION, default=None, return_dtype=pl.String
            )
        )
        .alias("protocol"),
    )
    df = _datatime(df, compiled=use_scanner)
    df = _inherit_datatime(df)
    df = df.with_columns(policy.alias("_policy"))
    df = _rules(df, pl.col("_policy"))
    df = _duplicates(df)
    df = df.with_columns(
        pl.when(pl.col("rule").is_null())
        .then(pl.lit("ok"))
        .otherwise(pl.lit("quarantined"))
        .alias("status")
    )
    compact = _values(df, items, compiled=use_scanner)
    packets = conform(df, PACKETS)
    quarantine = conform(df.filter(pl.col("status") == "quarantined"), QUARANTINE)
    return ParseResult(
        packets=packets,
        compact=compact,
        quarantine=quarantine,
        noise_lines=noise,
        blank_lines=blanks,
        lines_total=lines.height,
        file_stats=file_stats,
    )
