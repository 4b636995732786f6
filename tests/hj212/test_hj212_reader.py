"""zwy.hj212.reader: line splitting, terminators and unreadable files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from hj212_helpers import APPENDIX_A_EXAMPLE
from polars.testing import assert_frame_equal

from zwy.contracts import LINES
from zwy.errors import InputFileError
from zwy.hj212.exceptions import LogReadError
from zwy.hj212.parse import parse_lines
from zwy.hj212.reader import log_lines, log_lines_many, read_log_lines

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


def test_many_logs_pin_a_non_utf8_log() -> None:
    logs = [(b"ok\n", "a.log"), (b"caf\xe9\n", "b.log"), (b"fine\n", "c.log")]
    lines, errors = log_lines_many(logs)
    assert list(errors) == ["b.log"]
    assert "0xE9" in errors["b.log"].reason and "line 1" in errors["b.log"].reason
    assert lines["source_file"].to_list() == ["a.log", "c.log"]
    assert lines["text"].to_list() == ["ok", "fine"]
