"""zwy.hj212.reader: line splitting, terminators and unreadable files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from hj212_helpers import APPENDIX_A_EXAMPLE, assert_same_result
from polars.testing import assert_frame_equal

from zwy.contracts import LINES
from zwy.errors import InputFileError
from zwy.hj212.exceptions import LogReadError
from zwy.hj212.parse import parse_lines
from zwy.hj212.reader import (
    log_lines,
    log_lines_group,
    log_lines_many,
    read_log_group,
    read_log_lines,
)

TEXTS = ["[2024-05-01 00:00:03]", APPENDIX_A_EXAMPLE, "", "0E0F00000006010400000064", "设备 ok"]


@pytest.mark.parametrize("eol", ["\r\n", "\n"])
def test_crlf_and_lf_read_the_same(write_log: Callable[..., Path], eol: str) -> None:
    path = write_log(f"x{len(eol)}.log", TEXTS, eol=eol)
    df = read_log_lines(path, display_name="inbox/x.log")
    assert df.schema == LINES
    assert df["text"].to_list() == TEXTS
    assert df["line"].to_list() == [1, 2, 3, 4, 5]
    assert df["source_file"].unique().to_list() == ["inbox/x.log"]
    assert parse_lines(df).packets["status"].to_list() == ["ok"]


def test_last_line_without_terminator_and_bom(write_log: Callable[..., Path]) -> None:
    path = write_log("y.log", "\ufeffa\r\nb\nc")
    assert read_log_lines(path)["text"].to_list() == ["a", "b", "c"]


def test_double_cr_and_blank_lines(write_log: Callable[..., Path]) -> None:
    path = write_log("z.log", b"a\r\r\n\r\n\n  \r\nb")
    df = read_log_lines(path)
    assert df["text"].to_list() == ["a", "", "", "  ", "b"]
    assert df["source_file"].to_list() == [str(path)] * 5


def test_quotes_and_commas_untouched(write_log: Callable[..., Path]) -> None:
    path = write_log("q.log", ['a"b,c', '"quoted"', "#comment"], eol="\n")
    assert read_log_lines(path)["text"].to_list() == ['a"b,c', '"quoted"', "#comment"]


def test_empty_file_raises(write_log: Callable[..., Path]) -> None:
    path = write_log("empty.log", b"")
    with pytest.raises(InputFileError, match=r"empty\.log: file is empty"):
        read_log_lines(path)


def test_binary_file_raises(write_log: Callable[..., Path]) -> None:
    path = write_log("bin.log", b"##0101\r\nab\x00cd")
    with pytest.raises(LogReadError) as info:
        read_log_lines(path, display_name="in/bin.log")
    err = info.value
    assert isinstance(err, InputFileError) and isinstance(err, OSError)
    assert str(err).startswith("in/bin.log: binary file: NUL byte at byte offset 10 (line 2)")
    assert (err.path, err.byte_offset, err.line) == ("in/bin.log", 10, 2)


def test_non_utf8_file_raises(write_log: Callable[..., Path]) -> None:
    path = write_log("gbk.log", b"ok line\n" + "数据".encode("gbk") + b"\n")
    with pytest.raises(LogReadError) as info:
        read_log_lines(path)
    assert str(path) in str(info.value)
    assert "not valid UTF-8: byte 0xCA at byte offset 8 (line 2)" in str(info.value)
    assert info.value.line == 2


def test_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="nope.log: cannot read file"):
        read_log_lines(tmp_path / "nope.log")


_MANY = [
    (b"\xef\xbb\xbf##0001a\r\n\r\nb\r\r\n", "bom_crlf.log"),
    (b"x\n\n\ny", "no_terminator.log"),
    (b"", "empty.log"),
    (b'"q",1\n##0002b\n', "quotes.log"),
    (b"a\x00b\n", "binary.log"),
    (b"\n", "one_blank.log"),
]


def test_many_logs_in_one_pass_equal_one_by_one() -> None:
    lines, errors = log_lines_many(_MANY)
    expected = []
    for data, name in _MANY:
        try:
            expected.append(log_lines(data, name))
        except LogReadError as exc:
            assert errors[name].reason == exc.reason
    assert sorted(errors) == ["binary.log", "empty.log"]
    assert_frame_equal(lines, pl.concat(expected))
    assert lines.filter(pl.col("source_file") == "no_terminator.log")["line"].to_list() == [
        1,
        2,
        3,
        4,
    ]


def test_a_group_read_into_one_buffer_splits_as_the_logs_one_by_one(tmp_path: Path) -> None:
    """read_log_group + log_lines_group: the lines and errors of log_lines_many, each log's
    own bytes (for its hash), and a file that cannot be opened reported by name."""
    files = []
    for data, name in _MANY:
        (tmp_path / name).write_bytes(data)
        files.append((tmp_path / name, name))
    files.insert(2, (tmp_path / "missing.log", "missing.log"))
    group = read_log_group(files)
    assert group.names == ["bom_crlf.log", "no_terminator.log", "quotes.log", "one_blank.log"]
    assert {n: bytes(v) for n, v in group.data().items()} == {
        name: data for data, name in _MANY if name in group.names
    }
    lines, errors, spans = log_lines_group(group)
    assert spans is not None and len(spans.starts) == lines.height
    many_lines, many_errors = log_lines_many(_MANY)
    assert_frame_equal(lines, many_lines)
    assert sorted(errors) == ["binary.log", "empty.log", "missing.log"]
    assert errors["binary.log"].reason == many_errors["binary.log"].reason
    assert "cannot read file" in errors["missing.log"].reason


@pytest.mark.parametrize("delta", [-3, 4])
def test_a_group_takes_a_log_that_changed_size_since_it_was_measured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, delta: int
) -> None:
    # A log measured at its size + delta (it grew or shrank between stat and read).
    from types import SimpleNamespace

    logs = {"a.log": b"one\ntwo\nthree\n", "b.log": b"four\nfive", "c.log": b"six\n"}
    for name, data in logs.items():
        (tmp_path / name).write_bytes(data)
    real_stat = Path.stat

    def stat(self: Path, **kwargs: object) -> object:
        st = real_stat(self)
        if self.name == "a.log":
            return SimpleNamespace(st_size=max(st.st_size + delta, 0))
        return st

    monkeypatch.setattr(Path, "stat", stat)
    group = read_log_group([(tmp_path / n, n) for n in logs])
    monkeypatch.setattr(Path, "stat", real_stat)
    assert {n: bytes(v) for n, v in group.data().items()} == logs
    lines, errors, _ = log_lines_group(group)
    assert not errors
    assert lines["text"].to_list() == ["one", "two", "three", "four", "five", "six"]


def test_parse_reads_a_groups_lines_in_place_with_the_same_result(tmp_path: Path) -> None:
    """parse_lines with the group's text spans (no copy of the lines) gives what it gives
    without them; spans that are not the lines' are not used."""
    from zwy.hj212 import scan

    if not scan.AVAILABLE:
        pytest.skip("numba is not installed")
    logs = {
        "a.log": f"[2024-05-01 00:00:03] {APPENDIX_A_EXAMPLE}\r\nnoise\r\n\r\n##0",
        "b.log": f"\ufeff{APPENDIX_A_EXAMPLE}\n{APPENDIX_A_EXAMPLE[:-4]}FFFF\n##12",
    }
    for name, text in logs.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    lines, errors, spans = log_lines_group(read_log_group([(tmp_path / n, n) for n in logs]))
    assert not errors and spans is not None
    in_place = parse_lines(lines, text_spans=spans)
    assert in_place.packets["status"].to_list() == ["ok", "ok", "quarantined"]
    assert_same_result(in_place, parse_lines(lines))
    shifted = scan.TextSpans(spans.buf, spans.starts[1:], spans.ends[1:])
    assert_same_result(parse_lines(lines, text_spans=shifted), in_place)


def test_a_group_with_a_non_utf8_log_pins_it(tmp_path: Path) -> None:
    for name, data in [("a.log", b"ok\n"), ("b.log", b"caf\xe9\n"), ("c.log", b"fine")]:
        (tmp_path / name).write_bytes(data)
    group = read_log_group([(tmp_path / n, n) for n in ("a.log", "b.log", "c.log")])
    lines, errors, _ = log_lines_group(group)
    assert list(errors) == ["b.log"] and "0xE9" in errors["b.log"].reason
    assert lines["text"].to_list() == ["ok", "fine"]


def test_many_logs_pin_a_non_utf8_log() -> None:
    logs = [(b"ok\n", "a.log"), (b"caf\xe9\n", "b.log"), (b"fine\n", "c.log")]
    lines, errors = log_lines_many(logs)
    assert list(errors) == ["b.log"]
    assert "0xE9" in errors["b.log"].reason and "line 1" in errors["b.log"].reason
    assert lines["source_file"].to_list() == ["a.log", "c.log"]
    assert lines["text"].to_list() == ["ok", "fine"]


def test_compiled_line_split_equals_the_csv_readers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The compiled split (line feeds found eight bytes at a time, lines as views over the
    logs' bytes) gives the CSV reader's lines: CRLF and CR CR LF ends, blank lines, byte
    order marks at a log's start and inside it, non-ASCII text, logs without a final line
    feed, line feeds at every position of a word and in the bytes after the last word."""
    import random

    from zwy.hj212 import scan

    if not scan.AVAILABLE:
        pytest.skip("numba is not installed")
    rng = random.Random(7)
    pieces = ["a", "##0101QN=1;", " ", "\n", "\r\n", "\r\r\n", "\ufeff", "设备", ",", "\r"]
    logs = []
    for i in range(40):
        text = "".join(rng.choice(pieces) for _ in range(rng.randrange(1, 120)))
        if i % 3 == 0:
            text = "\ufeff" + text
        logs.append((text.encode("utf-8"), f"log{i}.log"))
    blob = b"".join(d if d.endswith(b"\n") else d + b"\n" for d, _ in logs)
    assert scan.split_lines(blob, True) is not None  # the fast path runs
    fast, fast_errors = log_lines_many(logs)
    monkeypatch.setattr(scan, "split_lines", lambda *_: None)
    slow, slow_errors = log_lines_many(logs)
    assert fast_errors == slow_errors == {}
    assert_frame_equal(fast, slow)
    assert fast.height > 200


def test_compiled_line_split_finds_every_line_feed_and_leaves_bad_utf8_to_the_csv_reader() -> None:
    from zwy.hj212 import scan

    if not scan.AVAILABLE:
        pytest.skip("numba is not installed")
    assert scan.split_lines(b"caf\xe9\n", False) is None
    got = scan.split_lines("\ufeffcafé\r\r\n\n\ufeffx\r\n".encode(), True)
    assert got is not None
    assert got.text.to_list() == ["café", "", "x"]
    assert got.feeds.tolist() == [10, 11, 17]
    # The spans are the lines' bytes in the blob.
    buf, starts, ends = got.spans
    assert [bytes(buf[a:b]).decode() for a, b in zip(starts, ends, strict=True)] == [
        "café",
        "",
        "x",
    ]
    kept = scan.split_lines("\ufeffx\n".encode(), False)
    assert kept is not None and kept.text.to_list() == ["\ufeffx"]
    # Line feeds in every byte of a word and after the last word, counted exactly.
    for n in range(0, 40):
        blob = bytes((10 if (i * 7 + n) % 5 == 0 else 97) for i in range(n)) + b"\n"
        text, feeds, _ = scan.split_lines(blob, False)
        assert feeds.tolist() == [i for i, b in enumerate(blob) if b == 10]
        assert text.to_list() == blob.decode().split("\n")[:-1]
