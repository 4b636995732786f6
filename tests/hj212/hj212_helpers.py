"""Helpers for the HJ 212 tests: packet builders and LINES frames (imported by the tests)."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from zwy.contracts import LINES
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


def parse_texts(texts: Sequence[str], **kwargs: object) -> ParseResult:
    """Parse ``texts`` as the lines of one file."""
    return parse_lines(lines_frame(texts), **kwargs)  # type: ignore[arg-type]


__all__ = ["APPENDIX_A_EXAMPLE", "MN", "data_2011", "lines_frame", "parse_texts", "sign"]
