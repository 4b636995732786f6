"""zwy.hj212.reader: line splitting, terminators and unreadable files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hj212_helpers import APPENDIX_A_EXAMPLE

from zwy.contracts import LINES
from zwy.errors import InputFileError
from zwy.hj212.exceptions import LogReadError
from zwy.hj212.parse import parse_lines
from zwy.hj212.reader import read_log_lines

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
