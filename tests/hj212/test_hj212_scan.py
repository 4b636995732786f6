"""The compiled scanner (zwy.hj212.scan) agrees with the reference CRCs and the Polars path."""

from __future__ import annotations

import random
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hj212_helpers import APPENDIX_A_EXAMPLE, assert_same_result
from polars.testing import assert_frame_equal

import zwy.hj212.parse as parse_mod
from zwy.hj212 import scan
from zwy.hj212.crc import crc_appendix_a, crc_modbus
from zwy.hj212.parse import parse_lines
from zwy.hj212.reader import log_lines_many
from zwy.sample.generate import generate_district

pytestmark = pytest.mark.skipif(not scan.AVAILABLE, reason="numba is not installed")


def test_crc_many_equals_scalar_reference() -> None:
    rng = random.Random(5)
    texts = ["", "a", "QN=1", "中文=值"] + [
        "".join(chr(rng.randrange(32, 127)) for _ in range(rng.randrange(0, 300)))
        for _ in range(50)
    ]
    buf, offs = scan.string_buffers(pl.Series(texts))
    raw = [t.encode("utf-8") for t in texts]
    assert scan.crc_many(buf, offs).tolist() == [crc_appendix_a(b) for b in raw]
    assert scan.crc_many(buf, offs, "modbus").tolist() == [crc_modbus(b) for b in raw]
    rows = np.array([3, 0, 7], dtype=np.int64)
    assert scan.crc_many(buf, offs, rows=rows).tolist() == [crc_appendix_a(raw[i]) for i in rows]
    # The standard's own example: Appendix A CRC 1C80 over the data segment.
    segment = APPENDIX_A_EXAMPLE[6:-4]
    buf, offs = scan.string_buffers(pl.Series([segment]))
    assert scan.crc_many(buf, offs).tolist() == [0x1C80]


def test_split_items_cuts_like_the_reference() -> None:
    segments = ["ST=32;CP=&&DataTime=1;a-Rtd=1.5,a-Flag=N&&", "k;=5;;x=y=z", "CP=&&&&", ""]
    buf, offs = scan.string_buffers(pl.Series(segments))
    got = scan.split_items(buf, offs)
    assert got is not None
    rows = [
        (int(f), got.keys[int(k)], v)
        for f, k, v in zip(got.fid, got.kid, got.value_text.to_list(), strict=True)
    ]
    assert rows == [
        (0, "ST", "32"),
        (0, "CP", ""),
        (0, "DataTime", "1"),
        (0, "a-Rtd", "1.5"),
        (0, "a-Flag", "N"),
        (1, "k", None),  # no "=": a null value; "=5" and "" have no key and are left out
        (1, "x", "y=z"),  # split at the first "="
        (2, "CP", ""),
    ]


def test_split_items_predicted_keys_cut_like_the_reference() -> None:
    """Random segments where a key is often, but not always, the one predicted from the
    last segment: prefixes of other keys, keys without "=", values holding "=" and
    separators right after a key. Every item equals the reference split's."""
    rng = random.Random(23)
    keys = ["a", "a-Rtd", "a-Rtdx", "DataTime", "b-Flag", "CP", "é-Avg"]
    values = ["1.5", "", "x=y", "N", "20240501120000"]
    segments = []
    for _ in range(400):
        pieces = []
        # Mostly the same order segment after segment (what the prediction relies on).
        order = keys if rng.random() < 0.7 else rng.sample(keys, rng.randrange(0, len(keys)))
        for key in order:
            roll = rng.random()
            piece = key if roll < 0.1 else f"{key}={rng.choice(values)}"
            pieces.append("=3" if roll > 0.97 else piece)
        text = "".join(p + rng.choice(";;;,") for p in pieces).rstrip(";,")
        head, _, tail = text.partition("DataTime")
        segments.append(f"{head}CP=&&DataTime{tail}&&" if tail and rng.random() < 0.5 else text)
    data = pl.DataFrame({"_fid": range(len(segments)), "_data": segments})
    ref = parse_mod._items_slow(data.with_columns(pl.col("_fid").cast(pl.Int64)))
    ref = ref.filter(pl.col("key").is_not_null() & (pl.col("key") != ""))
    buf, offs = scan.string_buffers(data.get_column("_data"))
    got = scan.split_items(buf, offs)
    assert got is not None
    rows = [
        (int(f), got.keys[int(k)], v)
        for f, k, v in zip(got.fid, got.kid, got.value_text.to_list(), strict=True)
    ]
    assert rows == list(ref.iter_rows())
    assert len(rows) > 2000


@pytest.mark.parametrize("item_bytes", [1, 10**9])
def test_split_items_sized_by_a_guess_or_counted(
    monkeypatch: pytest.MonkeyPatch, item_bytes: int
) -> None:
    """The outputs sized by a guess of the items (one per ``_ITEM_BYTES`` bytes) or, when
    the items overflow it, counted and cut again: the same items either way."""
    segments = ["ST=32;CP=&&DataTime=1;a-Rtd=1.5,a-Flag=N&&", "k;=5;;x=y=z", "CP=&&&&", ""]
    segments += [";".join(f"k{i % 5}={i}" for i in range(n)) for n in range(0, 60, 7)]
    buf, offs = scan.string_buffers(pl.Series(segments))
    want = scan.split_items(buf, offs)
    counted = []
    separators = scan._separators

    def counting(*args: object) -> int:
        counted.append(1)
        return int(separators(*args))

    monkeypatch.setattr(scan, "_ITEM_BYTES", item_bytes)
    monkeypatch.setattr(scan, "_separators", counting)
    got = scan.split_items(buf, offs)
    assert got is not None and want is not None
    assert got.fid.tolist() == want.fid.tolist()
    assert [got.keys[k] for k in got.kid] == [want.keys[k] for k in want.kid]
    assert got.value_text.to_list() == want.value_text.to_list()
    assert np.array_equal(got.views, want.views)
    assert len(counted) == (item_bytes > 1)  # a guess of 3 items a segment is too few


def test_split_items_word_path_cuts_like_the_byte_path_and_the_reference() -> None:
    """Predicted keys are compared, and value views built, from 64-bit words (for all but
    the buffer's last bytes). Keys of 1-20 bytes (a key of 16 or more has no word pattern),
    values of 0-20 bytes (views inline up to 12, by offset from 13), prefix keys, values
    holding "=", every separator: the word path cuts exactly as the byte path, which the
    kernel takes when given no words, and as the reference split."""
    rng = random.Random(31)
    keys = ["k" * n for n in range(1, 21)] + ["a-Rtd", "a-Rtdx", "a-Flag", "CP"]
    alphabet = "0123456789.-=NxZ"
    segments = []
    for _ in range(1500):
        order = keys if rng.random() < 0.8 else rng.sample(keys, rng.randrange(1, len(keys)))
        pieces = []
        for key in order:
            value = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 21)))
            pieces.append(key if rng.random() < 0.05 else f"{key}={value}")
        text = "".join(p + rng.choice(";;;,,\n") for p in pieces).rstrip(";,\n")
        segments.append(f"ST=32;CP=&&{text}&&" if rng.random() < 0.5 else text)
    data = pl.DataFrame({"_fid": range(len(segments)), "_data": segments})
    buf, offs = scan.string_buffers(data.get_column("_data"))
    starts, ends = offs[:-1], offs[1:]

    def kernel(words: np.ndarray) -> list[np.ndarray]:
        total = scan._separators(buf, starts, ends)
        out = [np.zeros(total, np.int64), np.zeros(total, np.int64), np.zeros(total, np.bool_)]
        out.append(np.zeros(2 * total, np.uint64))
        _, _, w, n_keys = scan._split_kernel(
            buf, words, starts, ends, scan.MAX_KEYS, scan._HASH_SLOTS, *out
        )
        assert n_keys > 0
        return [out[0][:w], out[1][:w], out[2][:w], out[3][: 2 * w]]

    words = buf[: len(buf) // 8 * 8].view(np.uint64)
    by_words, by_bytes = kernel(words), kernel(words[:2])  # 2 words: no piece before wlim
    assert all(np.array_equal(a, b) for a, b in zip(by_words, by_bytes, strict=True))
    got = scan.split_items(buf, offs)
    assert got is not None
    ref = parse_mod._items_slow(data.with_columns(pl.col("_fid").cast(pl.Int64)))
    ref = ref.filter(pl.col("key").is_not_null() & (pl.col("key") != ""))
    rows = [
        (int(f), got.keys[int(k)], v)
        for f, k, v in zip(got.fid, got.kid, got.value_text.to_list(), strict=True)
    ]
    assert rows == list(ref.iter_rows())
    assert len(rows) > 30_000


def test_too_many_distinct_keys_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    segments = [f"k{i}=1;CP=&&a-Rtd=1&&" for i in range(10)]
    buf, offs = scan.string_buffers(pl.Series(segments))
    monkeypatch.setattr(scan, "MAX_KEYS", 4)
    assert scan.split_items(buf, offs) is None
    # parse_lines then takes the Polars path and still gives the same result.
    lines = pl.DataFrame(
        {"source_file": "f.log", "line": range(1, 11), "text": [f"##0000{s}0000" for s in segments]}
    )
    assert_same_result(parse_lines(lines, compiled=True), parse_lines(lines, compiled=False))


@pytest.mark.skipif(not scan.AVAILABLE, reason="numba is not installed")
def test_value_rows_picks_rows_and_first_flags_by_frame() -> None:
    # Keys: 0 a-Rtd (code 1), 1 a-Flag (code 1), 2 DataTime, 3 b-Rtd (code 2), 4 QN (no code).
    is_flag = np.array([False, True, False, False, False])
    is_dt = np.array([False, False, True, False, False])
    code = np.array([1, 1, 0, 2, 0], dtype=np.int64)
    # Frame 0: QN (header), DataTime, a-Flag=T, a-Rtd, a-Flag (a second flag: ignored),
    # b-Rtd, an item without key. Frame 1 is not accepted. Frame 2: a-Rtd without flag.
    fid = np.array([0, 0, 0, 0, 0, 0, 0, 1, 1, 2], dtype=np.int64)
    kid = np.array([4, 2, 1, 0, 1, 3, -1, 0, 1, 0], dtype=np.int64)
    in_cp = np.array([False, True, True, True, True, True, True, True, True, True])
    ok = np.array([True, False, True])
    picked = scan.value_rows(fid, kid, in_cp, ok, is_flag, is_dt, code)
    assert picked is not None
    assert picked.rows.tolist() == [3, 5, 9]
    assert picked.flag_of_row.tolist() == [2, -1, -1]  # a-Rtd takes the frame's first a-Flag
    # Frames 0 and 2 have values: numbered 0 and 1.
    assert picked.frame_no.tolist() == [0, 0, 1]
    assert picked.key.tolist() == [0, 3, 0]
    assert picked.used.tolist() == [True, False, True]
    # Items not grouped by frame: the caller takes the numpy reference.
    assert scan.value_rows(fid[::-1].copy(), kid, in_cp, ok, is_flag, is_dt, code) is None
    late = np.array([0, 0, 0, 0, 0, 0, 1, 1, 0, 2], dtype=np.int64)  # frame 0 again after 1
    assert scan.value_rows(late, kid, in_cp, ok, is_flag, is_dt, code) is None
    last = np.array([0, 0, 0, 0, 0, 0, 0, 2, 2, 1], dtype=np.int64)  # a lower frame last
    assert scan.value_rows(last, kid, in_cp, ok, is_flag, is_dt, code) is None


def test_item_roles_and_header_columns_match_the_numpy_reference() -> None:
    """The compiled roles and per-frame firsts equal the numpy arithmetic, item by item."""
    names = ["CN", "CP", "DataTime", "MN", "QN", "a01-Flag", "a01-Rtd", "x"]
    k = {name: i for i, name in enumerate(names)}
    # (frame, key or None for an empty item, value or None for an item without "=")
    items = [
        (0, "QN", "1"),
        (0, "MN", "m"),
        (0, "MN", "m2"),
        (0, "CN", None),  # repeat, no value
        (0, "CP", ""),
        (0, "DataTime", "20240501"),
        (0, "a01-Rtd", "1"),
        (0, "QN", "9"),
        (1, "QN", "2"),
        (1, "DataTime", "h"),
        (1, None, "5"),  # no CP: all header
        (2, "CP", ""),
        (2, "a01-Flag", "N"),
        (2, "CP", ""),
        (2, "DataTime", "d2"),
        (4, "x", "1"),
        (4, "CP", ""),  # frame 3 has no items
    ]
    fid = np.array([f for f, _, _ in items], dtype=np.int64)
    kid = np.array([-1 if key is None else k[key] for _, key, _ in items], dtype=np.int64)
    text = pl.Series("value_text", [v for _, _, v in items], dtype=pl.String)
    rng = random.Random(11)  # and random days: any key anywhere, frames of 0-12 items
    cases = [(fid, kid, text, 5)]
    for _ in range(20):
        sizes = [rng.randrange(0, 13) for _ in range(rng.randrange(1, 30))]
        f = np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)
        kk = np.array([rng.randrange(-1, len(names)) for _ in f], dtype=np.int64)
        vv = pl.Series([None if rng.random() < 0.2 else "v" for _ in f], dtype=pl.String)
        cases.append((f, kk, vv, len(sizes)))
    for f, kk, vv, n in cases:
        ref = parse_mod._items_from_ids(f, kk, vv, names, n, compiled=False)
        got = parse_mod._items_from_ids(f, kk, vv, names, n, compiled=True)
        assert got.in_header.tolist() == ref.in_header.tolist()
        assert got.in_cp.tolist() == ref.in_cp.tolist()
        want = pl.DataFrame(parse_mod._frame_item_columns(n, ref, compiled=False))
        assert_frame_equal(pl.DataFrame(parse_mod._frame_item_columns(n, got, compiled=True)), want)
    first = pl.DataFrame(
        parse_mod._frame_item_columns(
            5,
            got_first := parse_mod._items_from_ids(fid, kid, text, names, 5, compiled=True),
            compiled=True,
        )
    )
    assert got_first.in_header.tolist()[:5] == [True, True, True, True, False]
    assert first.get_column("_h_MN").to_list() == ["m", None, None, None, None]
    assert first.get_column("_h_QN").to_list() == ["1", "2", None, None, None]
    assert first.get_column("_bad_item").to_list() == ["CN", None, None, None, None]
    assert first.get_column("_dup_item").to_list() == ["MN", None, None, None, None]
    assert first.get_column("_dt_text").to_list() == ["20240501", None, "d2", None, None]
    assert first.get_column("_has_values").to_list() == [True, False, True, False, False]


def test_gather_texts_equals_series_gather_with_nulls() -> None:
    """Header texts copied as views equal ``Series.gather`` of the items' texts, -1 as null.

    Texts of 0-30 bytes (inline views up to 12, buffer views past it, Chinese included),
    items without a value (null) and rows with no item, over several columns at once.
    """
    rng = random.Random(5)
    alphabet = "QN=20240501;MN,CP&&-.0123456789浓度"
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 31))) for _ in range(400)]
    nulls = np.array([rng.random() < 0.15 for _ in texts])
    encoded = [t.encode() for t in texts]
    buf = np.frombuffer(b"".join(encoded), dtype=np.uint8).copy()
    ends = np.cumsum([len(b) for b in encoded]).astype(np.int64)
    starts = ends - np.array([len(b) for b in encoded], dtype=np.int64)
    views = scan._views_kernel(buf, starts, ends)
    valid = np.packbits(~nulls, bitorder="little")
    value_text = scan._string_views("value_text", views, buf, valid)
    assert value_text.null_count() == int(nulls.sum())
    n = 257  # not a multiple of 8: the last validity byte is partial
    first = np.array(
        [[rng.randrange(-1, len(texts)) for _ in range(5)] for _ in range(n)], dtype=np.int64
    )
    cols = [4, 0, 2]
    names = ["d", "a", "c"]
    got = scan.gather_texts(names, views, buf, nulls, first, cols)
    assert got is not None
    for series, name, col in zip(got, names, cols, strict=True):
        want = parse_mod._gather_nullable(value_text, first[:, col]).alias(name)
        assert series.name == name
        assert series.to_list() == want.to_list()
        assert series.null_count() == want.null_count() > 0
    assert scan.gather_texts(["x"], views, buf, nulls, first[:0], [1])[0].len() == 0  # type: ignore[index]


def test_compiled_header_texts_equal_the_gathered_ones() -> None:
    """``_frame_item_columns`` from the compiled split's views equals it without them."""
    frames = [
        "QN=1;ST=22;CN=2011;PW=123456;MN=m1;Flag=5;CP=&&DataTime=20240501000000;a01-Rtd=1&&",
        "QN=2;ST=;CN=2011;MN;Flag=4;PNUM=2;PNO=1;CP=&&a01-Rtd=1&&",
        "MN=一个很长的设备编号000000000000;CN=2051;CN=2061;CP=&&DataTime=x&&",
        "",
        "CP=&&DataTime=20240501000000&&",
    ]
    encoded = [f.encode() for f in frames]
    buf = np.frombuffer(b"".join(encoded), dtype=np.uint8).copy()
    ends = np.cumsum([len(b) for b in encoded]).astype(np.int64)
    starts = ends - np.array([len(b) for b in encoded], dtype=np.int64)
    spans = parse_mod._Spans(buf, starts, ends)
    items = parse_mod._compiled_items(spans, len(frames))
    assert items is not None and items.text_views is not None
    plain = parse_mod._Items(**{**items.__dict__, "text_views": None})
    got = pl.DataFrame(parse_mod._frame_item_columns(len(frames), items, compiled=True))
    want = pl.DataFrame(parse_mod._frame_item_columns(len(frames), plain, compiled=True))
    assert_frame_equal(got, want)
    assert got.get_column("_h_MN").to_list() == [
        "m1",
        None,
        "一个很长的设备编号000000000000",
        None,
        None,
    ]
    assert got.get_column("_h_ST").to_list() == ["22", "", None, None, None]
    assert got.get_column("_dt_text").to_list() == [
        "20240501000000",
        None,
        "x",
        None,
        "20240501000000",
    ]


def test_generated_district_parses_the_same_both_ways(tmp_path: Path) -> None:
    """Every log of a generated district (all planted faults) gives identical results."""
    day = date(2024, 5, 1)
    generate_district(tmp_path, [day], scale="test")
    logs = sorted((tmp_path / "inbox").rglob("*.log"))
    assert logs
    lines, errors = log_lines_many([(p.read_bytes(), p.name) for p in logs])
    assert not errors
    compiled = parse_lines(lines, compiled=True)
    vectorised = parse_lines(lines, compiled=False)
    assert_same_result(compiled, vectorised)
    statuses = set(compiled.packets["status"].to_list())
    assert statuses == {"ok", "quarantined"}
    assert compiled.values.height > 0


def _located_both_ways(texts: list[str]) -> tuple[parse_mod._Located, parse_mod._Located]:
    """Locate the frames of ``texts`` (one line each) both ways; assert the same frames and
    line stats; return (compiled, reference)."""
    lines = (
        pl.DataFrame({"source_file": "f.log", "line": range(1, len(texts) + 1), "text": texts})
        .with_row_index("_lid")
        .with_columns(pl.col("_lid").cast(pl.Int64))
    )
    compiled = parse_mod._locate_compiled(lines)
    reference = parse_mod._locate(lines)
    assert compiled is not None
    assert_frame_equal(compiled.frames, reference.frames.select(compiled.frames.columns))
    assert compiled.blank.to_list() == reference.blank.to_list()
    assert compiled.noise.to_list() == reference.noise.to_list()
    return compiled, reference


def test_compiled_framing_cuts_every_kind_of_line_like_the_reference() -> None:
    """Simple lines are cut by the compiled pass, the others by find_frames: same frames."""
    good = APPENDIX_A_EXAMPLE
    texts = [
        good,
        f"[2024-05-01 00:00:00.123] {good}",  # a receiver's prefix
        f"{good}  \t",  # trailing spaces are not part of the frame
        f"{good}##0011",  # two frames on one line
        f"#{good}",  # "###": one match, not followed by four digits
        f"##ab {good}",  # a "##" that starts no frame, then a frame
        f"中文前缀 {good}",  # non-ASCII line
        "##0001x",  # shorter than a CRC: all of it is data
        "##0000",
        "##12",  # too short for the length field
        "###",
        "",
        "   \t",
        "\u3000",  # an ideographic space only: blank by the regex's Unicode \s
        "\u3000中",
        "7E 01 03 00 ## no frame",
        "no hash at all",
        "##0010QN=1;CP=&&1c8f",  # a CRC in lower-case hex
        "##0010QN=1;CP=&&1G80",  # a CRC that is not hex
        # Where the CP area closes: the data segment (before the 4 CRC characters) must end
        # with "&&" after CP=&&'s own, and under 4 characters after the length field are
        # all data.
        "##0010QN=1;CP=&&ABCD",  # ends with CP=&&'s own "&&": not closed
        "##0011QN=1;CP=&&&ABCD",  # "&&&": still CP=&&'s own, one "&" more: not closed
        "##0012QN=1;CP=&&a&&ABCD",  # a declared length that is not the actual one
        "##0005CP=&&",  # 5 after the length: data "C", CRC "P=&&"
        "##0002&&",  # no CRC: data "&&", no CP area
    ]
    compiled, reference = _located_both_ways(texts)
    assert compiled.spans is not None
    # The spans the kernels read are the data segments.
    spans = compiled.spans
    segments = [
        bytes(spans.buf[s:e]).decode() for s, e in zip(spans.starts, spans.ends, strict=True)
    ]
    assert segments == reference.frames["_data"].to_list()
    assert compiled.blank.to_list()[11:14] == [True, True, True]
    assert compiled.frames.height == 17  # "##12", "###" and "## no frame" start none
    # The CRC sent, as a number: 4 hex digits of either case, else -1 (no CRC, not hex).
    sent = dict(zip(compiled.frames["line"], compiled.frames["_crc_sent"], strict=True))
    assert (sent[18], sent[19], sent[1], sent[8]) == (0x1C8F, -1, 0x1C80, -1)
    closing = compiled.frames.tail(5)
    assert closing.get_column("_cp_closed").to_list() == [False, False, True, False, False]
    assert closing.get_column("declared_length").to_list() == [10, 11, 12, 5, 2]
    assert closing.get_column("actual_length").to_list() == [10, 11, 13, 1, 2]


def test_find_cp_finds_the_first_mark_like_bytes_find() -> None:
    """The CP area's mark is looked for at every second byte: the same first match as
    bytes.find in texts dense with its own characters ("&&&", "CP=&", "CCP=&&", ...),
    at every start and end, a match at either edge included."""
    rng = random.Random(7)
    for _ in range(3000):
        text = "".join(rng.choice("CP=&&x") for _ in range(rng.randrange(0, 14)))
        if rng.random() < 0.3:
            at = rng.randrange(len(text) + 1)
            text = text[:at] + "CP=&&" + text[at:]
        buf = np.frombuffer(text.encode(), dtype=np.uint8)
        s = rng.randrange(len(text) + 1)
        e = rng.randrange(s, len(text) + 1)
        assert scan._find_cp(buf, s, e) == text.encode().find(b"CP=&&", s, e), (text, s, e)


def test_compiled_framing_of_random_hash_lines_equals_the_reference() -> None:
    """Lines of random "#", digits and CP area characters around frames (several "##"
    pairs, overlapping ones, pairs at either end): the compiled framing counts the pairs
    and finds the CP area exactly as find_frames does."""
    rng = random.Random(11)
    texts = []
    for _ in range(2000):
        pieces = [
            "".join(rng.choice("##01 x&=CP") for _ in range(rng.randrange(0, 8))) for _ in range(3)
        ]
        if rng.random() < 0.6:
            pieces.insert(1, rng.choice([APPENDIX_A_EXAMPLE, "##0012QN=1;CP=&&a&&ABCD"]))
        texts.append("".join(pieces))
    _located_both_ways(texts)
    # Both kinds of line are there: simple ones (one pair) and those find_frames cuts.
    buf, offs = scan.string_buffers(pl.Series(texts))
    kind = scan.frame_lines(buf, offs[:-1], offs[1:]).kind
    assert (kind == 1).sum() > 300 and (kind == 2).sum() > 300


DATATIMES = [
    "20240501120000",  # an ordinary time
    "20240501235959123",  # with milliseconds
    "20240229000000",  # a leap day
    "20230229000000",  # not a leap year
    "21000229000000",  # a century that is not a leap year
    "20000229000000",  # one that is
    "20241301000000",  # month 13
    "20240431000000",  # April 31
    "20240501240000",  # hour 24
    "20240501126000",  # minute 60
    "20241231160000",  # 08:00 UTC
    "20250101000000",  # local midnight = 16:00 UTC the day before
    "2024050112000",  # 13 digits
    "202405011200001",  # 15 digits
    "2024-05-01 12:0",  # not digits
    "２０２４０５０１１２００００",  # full-width digits: not ASCII
    "",
    None,
]


def _frames(texts: list[str | None]) -> pl.DataFrame:
    return pl.DataFrame({"_dt_text": texts}, schema={"_dt_text": pl.String})


def test_compiled_datatime_parses_like_polars() -> None:
    frames = _frames(DATATIMES)
    compiled = parse_mod._datatime(frames, compiled=True)
    reference = parse_mod._datatime(frames, compiled=False)
    assert_frame_equal(compiled, reference)
    assert compiled.get_column("_dt_ok").to_list()[:6] == [True, True, True, False, False, True]
    # 2024-05-01 12:00 in Beijing is 04:00 UTC; the milliseconds are kept
    utc = compiled.get_column("data_time").dt.convert_time_zone("UTC").to_list()
    assert (utc[0].hour, utc[1].microsecond) == (4, 123_000)


@pytest.mark.parametrize("text", ["19900601120000", "20240501235960"])
def test_datatimes_the_compiled_pass_does_not_decide_go_to_polars(text: str) -> None:
    # Before 1992 China kept summer time some years; a 60th second is a leap second.
    parsed = scan.datatimes(pl.Series([text, "20240501120000"]))
    assert parsed is not None and parsed[1] is False
    frames = _frames([text, "20240501120000"])
    assert_frame_equal(
        parse_mod._datatime(frames, compiled=True), parse_mod._datatime(frames, compiled=False)
    )


def _decimal_texts() -> list[str]:
    """Plain decimals of 1-17 digits (inline views up to 12 bytes, offsets past) and the
    texts around them that are not plain decimals."""
    rng = random.Random(17)
    texts = ["0", "-0", "0.0", "-0.0", "00012.50", "7", "-7", "1.5", "123456789012345"]
    texts += ["1234567890123456", "0.000000000000001", "999999999999999", "-99999999.9999999"]
    texts += ["", "-", ".5", "5.", "+1", "1e3", "1E-2", " 1", "1 ", "1.2.3", "--1", "NaN"]
    texts += ["inf", "-inf", "0x10", "１２", "1,5", "N", "12a", "-.5", "0.", "1.-2"]
    for _ in range(3000):
        digits = rng.randrange(1, 18)
        mantissa = "".join(rng.choice("0123456789") for _ in range(digits))
        dot = rng.randrange(0, digits + 1)
        text = mantissa if dot in (0, digits) else f"{mantissa[:dot]}.{mantissa[dot:]}"
        texts.append(("-" if rng.random() < 0.3 else "") + text)
    return texts


def test_decimals_read_plain_decimals_as_polars_does_to_the_bit() -> None:
    """The compiled reader of plain decimals gives the double Polars' cast gives, sign of
    zero included, for every text it is sure of; it is sure of exactly the plain decimals
    of at most 15 digits, and the parser's values equal Polars' cast of every text."""
    import re

    texts = _decimal_texts()
    segment = ";".join(f"k{i % 7}={t}" for i, t in enumerate(texts)) + ";k0;k1="
    buf, offs = scan.string_buffers(pl.Series([segment]))
    got = scan.split_items(buf, offs)
    assert got is not None
    rows = np.arange(len(got.fid), dtype=np.int64)
    numbers, sure = scan.decimals(got.views, got.buf, rows)
    item_texts = got.value_text.to_list()
    plain = re.compile(r"-?[0-9]+(\.[0-9]+)?")
    expect_sure = [
        t is not None and plain.fullmatch(t) is not None and sum(c.isdigit() for c in t) <= 15
        for t in item_texts
    ]
    assert sure.tolist() == expect_sure
    assert sum(expect_sure) > 1500  # most of the generated texts are plain decimals
    cast = got.value_text.cast(pl.Float64, strict=False).to_numpy()
    assert np.array_equal(numbers[sure].view(np.int64), cast[sure].view(np.int64))
    # Through the parser's path: the unsure texts are cast by Polars, so all rows agree.
    items = parse_mod._Items(
        fid=got.fid,
        kid=got.kid,
        value_text=got.value_text,
        keys=pl.DataFrame(),
        in_header=np.zeros(len(rows), np.bool_),
        in_cp=np.ones(len(rows), np.bool_),
        text_views=(got.views, got.buf),
    )
    picked = rows[::3]
    value_text = got.value_text.gather(pl.Series(picked))
    ours = parse_mod._numbers(items, picked)
    theirs = value_text.cast(pl.Float64, strict=False)
    assert theirs.is_nan().any()  # "NaN" is among the texts...
    theirs = theirs.set(~theirs.is_finite().fill_null(False), None)  # ...and becomes null
    assert ours.is_null().to_list() == theirs.is_null().to_list()
    a, b = ours.drop_nulls().to_numpy(), theirs.drop_nulls().to_numpy()
    assert np.array_equal(a.view(np.int64), b.view(np.int64))


@pytest.mark.parametrize(
    ("flags", "by_byte"),
    [
        (["N", "F", "T", "N", "B", "z", "7"], True),
        (["N", "NN", "F"], False),  # a longer flag: every text read as text
        (["N", "", "F"], False),  # an empty one
        (["N", None, "F"], False),  # an item without "="
        (["N", "中", "F"], False),  # not ASCII
    ],
)
def test_flags_by_their_byte_equal_the_flags_read_as_text(
    flags: list[str | None], by_byte: bool
) -> None:
    """A row's -Flag code looked up by its one ASCII byte equals the code of its text,
    rows without a flag (-1) are null, and any other flag text falls back to reading
    every text."""
    segment = ";".join(f"a{i}-Flag" if f is None else f"a{i}-Flag={f}" for i, f in enumerate(flags))
    buf, offs = scan.string_buffers(pl.Series([segment]))
    got = scan.split_items(buf, offs)
    assert got is not None
    n = len(got.fid)
    flag_of_row = np.array([-1] + list(range(n)) + [n - 1, -1, 0], dtype=np.int64)
    one = scan.one_byte_texts(got.views, flag_of_row)
    assert (one is not None) == by_byte
    if one is not None:
        rank, present = one
        assert [chr(b) for b in present] == sorted({f for f in flags if f})
        assert rank[0] == 0 and rank[-2] == 0
    items = parse_mod._Items(
        fid=got.fid,
        kid=got.kid,
        value_text=got.value_text,
        keys=pl.DataFrame(),
        in_header=np.zeros(n, np.bool_),
        in_cp=np.ones(n, np.bool_),
        text_views=(got.views, got.buf),
    )
    ours = parse_mod._flags(items, flag_of_row)
    expected = [None] + flags + [flags[-1], None, flags[0]]
    assert ours.dtype == pl.Categorical
    assert ours.cast(pl.String).to_list() == expected
