r"""Read a text log into the LINES contract: one row per physical line, 1-based numbers.

The file is read whole and split by Polars' CSV reader with a separator that cannot occur
(NUL, rejected beforehand), no quoting and no comment prefix, so no Python code runs per
line. ``\r\n`` and ``\n`` endings both work (trailing ``\r`` are removed), a last line
without a terminator is kept, and a leading UTF-8 byte-order mark is dropped.
"""

from __future__ import annotations

import io
from pathlib import Path

import polars as pl

from zwy.contracts import LINES, conform
from zwy.hj212.exceptions import LogReadError

_BOM = "\ufeff"


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _check_bytes(data: bytes, name: str) -> None:
    if not data:
        raise LogReadError(name, "file is empty (0 bytes)")
    nul = data.find(b"\x00")
    if nul >= 0:
        line = _line_of(data, nul)
        raise LogReadError(
            name,
            f"binary file: NUL byte at byte offset {nul} (line {line}); "
            "expected a text log of HJ 212 packets",
            byte_offset=nul,
            line=line,
        )


def _utf8_error(data: bytes, name: str) -> LogReadError | None:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = _line_of(data, exc.start)
        bad = data[exc.start : exc.start + 1].hex().upper()
        return LogReadError(
            name,
            f"not valid UTF-8: byte 0x{bad} at byte offset {exc.start} (line {line}); "
            "HJ 212 logs must be UTF-8 (transcode GB18030/GBK exports first)",
            byte_offset=exc.start,
            line=line,
        )
    return None


def _split(data: bytes) -> pl.Series:
    df = pl.read_csv(
        io.BytesIO(data),
        has_header=False,
        separator="\x00",
        quote_char=None,
        comment_prefix=None,
        new_columns=["text"],
        schema={"text": pl.String},
        eol_char="\n",
    )
    return df.get_column("text").fill_null("")


def read_log_lines(path: Path, display_name: str | None = None) -> pl.DataFrame:
    """Read a UTF-8 text log into a LINES frame.

    Args:
        path: the file to read.
        display_name: the name written to ``source_file`` and error messages
            (default: ``str(path)``), e.g. a path relative to the inbox.

    Returns:
        A frame with the LINES schema: ``source_file``, 1-based ``line`` and ``text``
        without its line terminator, one row per physical line (blank lines included).

    Raises:
        LogReadError: (an ``InputFileError``) the file cannot be opened, is empty, holds a
            NUL byte (binary) or is not valid UTF-8; the message names the file, and the byte
            offset and line of the offending byte.

    """
    name = display_name if display_name is not None else str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LogReadError(name, f"cannot read file: {exc.strerror or exc}") from exc
    _check_bytes(data, name)
    try:
        text = _split(data)
    except pl.exceptions.ComputeError as exc:
        err = _utf8_error(data, name)
        if err is not None:
            raise err from exc
        # Valid UTF-8 that the CSV reader still refused: split in memory instead.
        text = pl.Series("text", data.decode("utf-8").split("\n"))
        if data.endswith(b"\n"):
            text = text.head(-1)
        text = text.str.strip_suffix("\r")
    if data.startswith(_BOM.encode("utf-8")):
        text = text.str.strip_prefix(_BOM)
    # Logs written through two CRLF conversions end lines in "\r\r\n": drop every trailing
    # CR, touching only the lines that have one left (stripping all lines copies them all).
    idx = (text.str.tail(1) == "\r").arg_true()
    if not idx.is_empty():
        text = text.scatter(idx, text.gather(idx).str.strip_chars_end("\r"))
    n = text.len()
    return conform(
        pl.DataFrame(
            {
                "source_file": pl.Series([name], dtype=pl.String).new_from_index(0, n),
                "line": pl.int_range(1, n + 1, eager=True, dtype=pl.Int64),
                "text": text,
            }
        ),
        LINES,
    )
