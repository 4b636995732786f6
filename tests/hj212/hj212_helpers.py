"""Helpers for the HJ 212 tests: packet builders and LINES frames (imported by the tests)."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl
from polars.testing import assert_frame_equal

from zwy.contracts import LINES
from zwy.hj212 import scan
from zwy.hj212.crc import sign
from zwy.hj212.parse import ParseResult, parse_lines

APPENDIX_A_EXAMPLE = (
    "##0101QN=20160801085857223;ST=32;CN=1062;PW=100000;"
    "MN=010000A8900016F000169DC0;Flag=5;CP=&&RtdInterval=30&&1C80"
)

MN = "010000A8900016F000169DC0"


def data_2011(
    *,
    mn: str = MN,
    st: str = "32",
    cn: str = "2011",
    flag: str | None = "5",
    dt: str | None = "20240501120000",
    cp: str = "w01018-Rtd=25.1,w01018-Flag=N;w21003-Rtd=1.2,w21003-Flag=N",
    qn: str | None = "20240501120000123",
    extra_header: str = "",
) -> str:
    """Return a data segment; pieces set to None are left out."""
    head = []
    if qn is not None:
        head.append(f"QN={qn}")
    head += [f"ST={st}", f"CN={cn}", "PW=123456", f"MN={mn}"]
    if flag is not None:
        head.append(f"Flag={flag}")
    if extra_header:
        head.append(extra_header)
    items = ([f"DataTime={dt}"] if dt is not None else []) + ([cp] if cp else [])
    return ";".join(head) + ";CP=&&" + ";".join(items) + "&&"


def lines_frame(texts: Sequence[str], source_file: str = "test.log") -> pl.DataFrame:
    """Return a LINES frame holding ``texts`` as lines 1..n of ``source_file``."""
    return pl.DataFrame(
        {
            "source_file": [source_file] * len(texts),
            "line": list(range(1, len(texts) + 1)),
            "text": list(texts),
        },
        schema=LINES,
    )


def assert_same_result(a: ParseResult, b: ParseResult) -> None:
    """Both parse paths must give the same frames, values, quarantine and counts."""
    assert_frame_equal(a.packets, b.packets)
    assert_frame_equal(a.values, b.values)
    assert_frame_equal(a.quarantine, b.quarantine)
    assert_frame_equal(a.per_file(), b.per_file())
    assert (a.noise_lines, a.blank_lines, a.lines_total) == (
        b.noise_lines,
        b.blank_lines,
        b.lines_total,
    )


def parse_both(lines: pl.DataFrame, **kwargs: object) -> ParseResult:
    """Parse ``lines`` by the compiled scanner and by the Polars/numpy path; they must agree."""
    vectorised = parse_lines(lines, compiled=False, **kwargs)  # type: ignore[arg-type]
    if not scan.AVAILABLE:
        return vectorised
    compiled = parse_lines(lines, compiled=True, **kwargs)  # type: ignore[arg-type]
    assert_same_result(compiled, vectorised)
    return compiled


def parse_texts(texts: Sequence[str], **kwargs: object) -> ParseResult:
    """Parse ``texts`` as the lines of one file (both parse paths, which must agree)."""
    return parse_both(lines_frame(texts), **kwargs)


__all__ = [
    "APPENDIX_A_EXAMPLE",
    "MN",
    "assert_same_result",
    "data_2011",
    "lines_frame",
    "parse_both",
    "parse_texts",
    "sign",
]
