r"""Read a text log into the LINES contract: one row per physical line, 1-based numbers.

The file is read whole and split by Polars' CSV reader with a separator that cannot occur
(NUL, rejected beforehand), no quoting and no comment prefix, so no Python code runs per
line. ``\r\n`` and ``\n`` endings both work (trailing ``\r`` are removed), a last line
without a terminator is kept, and a leading UTF-8 byte-order mark is dropped.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import polars as pl

from zwy.contracts import LINES, conform, empty
from zwy.hj212 import scan
from zwy.hj212.exceptions import LogReadError

_BOM = "\ufeff"
_BOM_BYTES = _BOM.encode("utf-8")


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _check_bytes(data: bytes | npt.NDArray[np.uint8], name: str) -> None:
    """Raise for a log that is empty or holds a NUL byte (a binary file), naming the line.

    ``data``: the log's bytes, or its part of a group's buffer (:func:`read_log_group`);
    the NUL search is vectorised over a view of either, not a copy.
    """
    arr = np.frombuffer(data, dtype=np.uint8)
    if not len(arr):
        raise LogReadError(name, "file is empty (0 bytes)")
    if arr.min() == 0:
        nul = int(arr.argmin())
        raw = bytes(arr)
        line = _line_of(raw, nul)
        raise LogReadError(
            name,
            f"binary file: NUL byte at byte offset {nul} (line {line}); "
            "expected a text log of HJ 212 packets",
            byte_offset=nul,
            line=line,
        )


def _unreadable(name: str, exc: OSError) -> LogReadError:
    return LogReadError(name, f"cannot read file: {exc.strerror or exc}")


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


def _clean(text: pl.Series, any_bom: bool) -> pl.Series:
    if any_bom:
        text = text.str.strip_prefix(_BOM)
    # Logs written through two CRLF conversions end lines in "\r\r\n": drop every trailing
    # CR, touching only the lines that have one left (stripping all lines copies them all).
    idx = (text.str.tail(1) == "\r").arg_true()
    if not idx.is_empty():
        text = text.scatter(idx, text.gather(idx).str.strip_chars_end("\r"))
    return text


def _lines_frame(names: Sequence[str], counts: Sequence[int], text: pl.Series) -> pl.DataFrame:
    n = text.len()
    sizes = np.asarray(counts, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    which = np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)
    return conform(
        pl.DataFrame(
            {
                "source_file": pl.Series(list(names), dtype=pl.String).gather(which),
                "line": np.arange(1, n + 1, dtype=np.int64) - np.repeat(starts, sizes),
                "text": text,
            }
        ),
        LINES,
    )


def log_lines(data: bytes, name: str) -> pl.DataFrame:
    """Split the bytes of one UTF-8 text log into a LINES frame (see :func:`read_log_lines`).

    Raises:
        LogReadError: the bytes are empty, hold a NUL byte or are not valid UTF-8.

    """
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
    text = _clean(text, data.startswith(_BOM_BYTES))
    return _lines_frame([name], [text.len()], text)


@dataclass(frozen=True)
class LogGroup:
    """Several logs read into one buffer, each ending in a line feed, for one split.

    ``blob[starts[i]:ends[i]]`` is the ``i``-th readable log's bytes as read (its hash is
    taken over them); a line feed follows each, added when the log has none. ``errors``:
    the logs that could not be read, or are empty or binary, by name; they are not in
    ``blob``.
    """

    blob: npt.NDArray[np.uint8]
    names: list[str]
    starts: list[int]
    ends: list[int]
    errors: dict[str, LogReadError]

    def data(self) -> dict[str, memoryview]:
        """Each readable log's bytes by name (views into ``blob``, not copies)."""
        view = self.blob.data
        return {n: view[s:e] for n, s, e in zip(self.names, self.starts, self.ends, strict=True)}


class GroupLines(NamedTuple):
    """A :class:`LogGroup` split into lines (:func:`log_lines_group`)."""

    lines: pl.DataFrame  # LINES rows of the readable logs, in order
    errors: dict[str, LogReadError]  # the group's own errors, and a log that is not UTF-8
    # Where each line's text lies in the group's buffer, for parse_lines to read in place
    # (None when the lines were split by the slower path).
    spans: scan.TextSpans | None


def read_log_group(files: Sequence[tuple[Path, str]]) -> LogGroup:
    """Read the logs ``(path, name)`` into one buffer (see :class:`LogGroup`).

    Each log is read straight into its place in a buffer sized from the files' sizes:
    reading each file into its own bytes and joining them cost 39 against 6 ms for a
    32 MB group (a fresh allocation, and its page faults, per copy). The buffer is not
    zeroed first (numpy's ``empty``; a ``bytearray`` is: another pass over 32 MB). A file
    that changes while it is read is taken as it is then (a log that grew: the buffer
    grows).

    Never raises for a file: one that cannot be opened or read, is empty or holds a NUL
    byte is in ``errors`` (named ``name``), the others are read.
    """
    errors: dict[str, LogReadError] = {}
    sizes: list[int] = []
    for path, _ in files:
        try:
            sizes.append(path.stat().st_size)
        except OSError:
            sizes.append(0)  # reported when it is read
    # Room for each log and a line feed after it; ``later[i]``: what the logs after i need.
    later = [0] * len(sizes)
    for i in range(len(sizes) - 2, -1, -1):
        later[i] = later[i + 1] + sizes[i + 1] + 1
    buf = np.empty(sum(sizes) + len(sizes), dtype=np.uint8)
    names: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    off = 0
    for i, ((path, name), size) in enumerate(zip(files, sizes, strict=True)):
        try:
            with path.open("rb", buffering=0) as fh:
                got = fh.readinto(buf[off : off + size].data) or 0
                more = fh.read()
        except OSError as exc:
            errors[name] = _unreadable(name, exc)
            continue
        if more:
            # The file grew since it was measured: take what it holds now.
            need = off + got + len(more) + 1 + later[i]
            if need > len(buf):
                grown = np.empty(need, dtype=np.uint8)
                grown[: off + got] = buf[: off + got]
                buf = grown
            buf[off + got : off + got + len(more)] = np.frombuffer(more, dtype=np.uint8)
            got += len(more)
        try:
            _check_bytes(buf[off : off + got], name)
        except LogReadError as exc:
            errors[name] = exc
            continue
        names.append(name)
        starts.append(off)
        ends.append(off + got)
        off += got
        if buf[off - 1] != 10:
            buf[off] = 10
            off += 1
    return LogGroup(buf[:off], names, starts, ends, errors)


def log_lines_group(group: LogGroup) -> GroupLines:
    """Split a :class:`LogGroup` into lines, every log in one pass (see :func:`log_lines_many`).

    The pass is compiled (:func:`zwy.hj212.scan.split_lines`: the lines are views over the
    group's buffer, nothing copied), else the CSV reader's; when the one pass fails (a log
    that is not UTF-8) or its line count disagrees with the logs' line feeds, every log is
    split on its own, which pins the error to its log.
    """
    errors = dict(group.errors)
    if not group.names:
        return GroupLines(empty(LINES), errors, None)
    names = list(group.names)
    views = group.data()
    any_bom = any(bytes(views[n][:3]) == _BOM_BYTES for n in names)
    # Each log's part of the blob: its bytes and the line feed after them (its own or added).
    part_ends = [*group.starts[1:], len(group.blob)]
    split = scan.split_lines(group.blob, any_bom)
    if split is not None:
        counts = np.diff(np.searchsorted(split.feeds, part_ends), prepend=0).tolist()
        return GroupLines(_lines_frame(names, counts, split.text), errors, split.spans)
    data = bytes(group.blob)
    counts = [data.count(b"\n", a, b) for a, b in zip(group.starts, part_ends, strict=True)]
    text: pl.Series | None
    try:
        text = _split(data)
    except pl.exceptions.ComputeError:
        text = None
    if text is not None and text.len() == sum(counts):
        return GroupLines(_lines_frame(names, counts, _clean(text, any_bom)), errors, None)
    frames = []
    for name in names:
        try:
            frames.append(log_lines(bytes(views[name]), name))
        except LogReadError as exc:
            errors[name] = exc
    return GroupLines(pl.concat(frames) if frames else empty(LINES), errors, None)


def log_lines_many(
    logs: Sequence[tuple[bytes, str]],
) -> tuple[pl.DataFrame, dict[str, LogReadError]]:
    """Split several logs at once: one LINES frame, and the error of each unreadable log.

    Equivalent to :func:`log_lines` per log, concatenated, but splits every log in one pass
    (:func:`log_lines_group`): a district day is thousands of small logs, and a pass per
    log cost about 2 ms each. A log whose bytes are empty or binary is reported and left
    out.

    Args:
        logs: ``(bytes, name)`` per log, ``name`` as written to ``source_file``.

    Returns:
        The LINES rows of the readable logs in the given order, and ``{name: error}``.

    """
    errors: dict[str, LogReadError] = {}
    good: list[tuple[bytes, str]] = []
    for data, name in logs:
        try:
            _check_bytes(data, name)
        except LogReadError as exc:
            errors[name] = exc
        else:
            good.append((data, name))
    parts = [d if d.endswith(b"\n") else d + b"\n" for d, _ in good]
    starts = np.concatenate([[0], np.cumsum([len(p) for p in parts])[:-1]]).tolist()
    group = LogGroup(
        np.frombuffer(b"".join(parts), dtype=np.uint8),
        [n for _, n in good],
        starts,
        [s + len(d) for s, (d, _) in zip(starts, good, strict=True)],
        errors,
    )
    lines, all_errors, _ = log_lines_group(group)
    return lines, all_errors


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
    return log_lines(read_log_bytes(path, name), name)


def read_log_bytes(path: Path, name: str) -> bytes:
    """Return the bytes of a log file.

    Raises:
        LogReadError: the file cannot be opened or read (named ``name``).

    """
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _unreadable(name, exc) from exc
