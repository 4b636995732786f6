"""HJ 212 code sets: pollutant codes (Appendix B), ST, CN, CP field names and data flags.

Pollutant codes come from ``zwy/reference/hj212_codes.csv`` (derived by
``zwy/reference/derive_codes.py``); the ST/CN/field sets restate HJ 212-2017 Tables 4, 5 and 9
as summarised in ``shared/domain/BRIEF.md`` §1.3, §1.4 and §1.7.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import polars as pl

from zwy.errors import ConfigError

#: ST system codes of HJ 212-2017 Table 5 (after GB/T 16706-1996).
ST_KNOWN: frozenset[str] = frozenset(
    {
        "21", "22", "23", "24", "25", "26", "27",
        "31", "32", "33", "34", "35", "36", "37", "38", "39",
        "41", "51", "52", "91",
    }
)  # fmt: skip

#: CN command codes of HJ 212-2017 Table 9.
CN_HJ212_2017: frozenset[str] = frozenset(
    {
        "1000", "1011", "1012", "1013", "1061", "1062", "1063", "1064", "1072",
        "2011", "2012", "2021", "2022", "2031", "2041", "2051", "2061", "2081",
        "3011", "3012", "3013", "3014", "3015", "3016", "3017", "3018", "3019", "3020", "3021",
        "9011", "9012", "9013", "9014",
    }
)  # fmt: skip

#: CNs of HJ/T 212-2005 that 2017 removed (alarm and limit commands), seen in real packets.
CN_HJ212_2005_ONLY: frozenset[str] = frozenset(
    {"1001", "1021", "1022", "1031", "1032", "1041", "1042", "2071", "2072"}
)

#: CNs attributed to HJ 212-2025 by one implementation only (BRIEF §1.7, UNVERIFIED):
#: recorded for reference, NOT accepted as known.
CN_HJ212_2025_UNVERIFIED: frozenset[str] = frozenset(
    {"1001", "1002", "1014", "2013", "2052", "2062", "2111", "3022", "3024", "9015"}
)

#: CNs the parser accepts.
CN_KNOWN: frozenset[str] = CN_HJ212_2017 | CN_HJ212_2005_ONLY

#: Data uploads whose ``DataTime`` must be valid: real-time, minute, hourly, daily.
DATA_CNS: frozenset[str] = frozenset({"2011", "2051", "2061", "2031"})

#: CNs whose CP values are emitted: the data uploads plus the equipment state uploads.
VALUE_CNS: frozenset[str] = DATA_CNS | {"2021", "2041"}

#: ``xxxxxx-<suffix>`` field names of HJ 212-2017 Table 4 (case-sensitive).
TABLE4_SUFFIXES: frozenset[str] = frozenset(
    {
        "Rtd", "Min", "Avg", "Max", "Cou",
        "ZsRtd", "ZsMin", "ZsAvg", "ZsMax",
        "Flag", "EFlag", "SampleTime", "RS", "RT",
        "Data", "DayData", "NightData", "Info", "SN",
    }
)  # fmt: skip

#: Stand-alone CP keys of HJ 212-2017 Table 4.
TABLE4_KEYS: frozenset[str] = frozenset(
    {
        "DataTime", "RtdInterval", "MinInterval", "RestartTime", "PolId", "BeginTime",
        "EndTime", "QnRtn", "ExeRtn", "SystemTime", "OverTime", "ReCount", "NewPW",
        "VaseNo", "CstartTime", "Ctime", "Stime", "InfoId",
    }
)  # fmt: skip

#: Data flags of HJ 212-2017 Table 8.
DATA_FLAGS: frozenset[str] = frozenset({"N", "F", "M", "S", "D", "C", "T", "B"})

#: ``Flag`` version bits (Flag >> 2) -> protocol label.
PROTOCOL_BY_VERSION: dict[int, str] = {0: "2005", 1: "2017", 2: "2025?"}

CODE_STATUS_2017 = "hj212_2017"
CODE_STATUS_2005 = "mapped_2005"
CODE_STATUS_VENDOR = "vendor"

_CODES_SCHEMA = pl.Schema(
    {
        "code_2017": pl.String,
        "name_zh": pl.String,
        "code_2005": pl.String,
        "unit": pl.String,
        "discharge_unit": pl.String,
        "data_type": pl.String,
        "unit_note": pl.String,
        "source": pl.String,
    }
)


@dataclass(frozen=True)
class CodePattern:
    """An Appendix B code with ``x`` placeholders (device number), e.g. ``e701xx``."""

    prefix: str
    length: int
    code_2017: str

    def matches(self, code: str) -> bool:
        """Return True when ``code`` is this pattern with digits in place of the ``x``."""
        tail = code[len(self.prefix) :]
        return (
            len(code) == self.length
            and code.startswith(self.prefix)
            and tail.isascii()
            and tail.isdigit()
        )


@lru_cache(maxsize=1)
def code_table() -> pl.DataFrame:
    """Return the Appendix B code table (``zwy/reference/hj212_codes.csv``).

    Columns: code_2017, name_zh, code_2005, unit, discharge_unit, data_type, unit_note,
    source; empty cells are null. A few pattern codes (``e701xx``, ``g119xx``) appear twice
    with different meanings, as in the standard.

    Raises:
        ConfigError: the packaged CSV is missing or has other columns.

    """
    try:
        text = resources.files("zwy.reference").joinpath("hj212_codes.csv").read_text("utf-8")
    except (FileNotFoundError, ModuleNotFoundError) as exc:
        raise ConfigError(f"reference table zwy/reference/hj212_codes.csv missing: {exc}") from exc
    header = next(csv.reader(io.StringIO(text)))
    if header != list(_CODES_SCHEMA.names()):
        raise ConfigError(
            f"zwy/reference/hj212_codes.csv: columns {header}, expected {list(_CODES_SCHEMA)}"
        )
    df = pl.read_csv(io.StringIO(text), schema=_CODES_SCHEMA)
    return df.with_columns(pl.all().replace("", None))


@lru_cache(maxsize=1)
def map_2005_to_2017() -> dict[str, str]:
    """Return the HJ/T 212-2005 code (原编码) -> HJ 212-2017 code map, e.g. ``011`` -> ``w01018``."""
    df = code_table().filter(pl.col("code_2005").is_not_null())
    return dict(zip(df["code_2005"].to_list(), df["code_2017"].to_list(), strict=True))


@lru_cache(maxsize=1)
def units() -> dict[str, str]:
    """Return HJ 212-2017 code -> concentration unit symbol (codes without a unit omitted)."""
    df = code_table().filter(pl.col("unit").is_not_null()).unique("code_2017", keep="first")
    return dict(zip(df["code_2017"].to_list(), df["unit"].to_list(), strict=True))


@lru_cache(maxsize=1)
def discharge_units() -> dict[str, str]:
    """Return HJ 212-2017 code -> discharge (排放量) unit symbol (codes without one omitted)."""
    df = code_table().filter(pl.col("discharge_unit").is_not_null()).unique("code_2017")
    return dict(zip(df["code_2017"].to_list(), df["discharge_unit"].to_list(), strict=True))


@lru_cache(maxsize=1)
def codes_2017() -> frozenset[str]:
    """Return the exact HJ 212-2017 codes (pattern codes with ``x`` excluded)."""
    return frozenset(c for c in code_table()["code_2017"].to_list() if "x" not in c)


@lru_cache(maxsize=1)
def code_patterns() -> tuple[CodePattern, ...]:
    """Return the pattern codes (``e701xx``, ``i3331x``...) as prefix/length matchers."""
    out = []
    for code in dict.fromkeys(code_table()["code_2017"].to_list()):
        if code.endswith("x"):
            prefix = code.rstrip("x")
            out.append(CodePattern(prefix=prefix, length=len(code), code_2017=code))
    return tuple(out)


def classify_code(code_raw: str) -> tuple[str, str]:
    """Return ``(pollutant, code_status)`` for a code as sent in a CP key.

    A 2017 code (or a 2017 pattern code with its device digits) maps to itself with status
    ``hj212_2017``; a 2005 code (原编码) maps to its 2017 code with status ``mapped_2005``;
    anything else is kept as sent with status ``vendor``.
    """
    if code_raw in codes_2017():
        return code_raw, CODE_STATUS_2017
    mapped = map_2005_to_2017().get(code_raw)
    if mapped is not None:
        return mapped, CODE_STATUS_2005
    if any(p.matches(code_raw) for p in code_patterns()):
        return code_raw, CODE_STATUS_2017
    return code_raw, CODE_STATUS_VENDOR


@lru_cache(maxsize=1)
def code_lookup() -> pl.DataFrame:
    """Return a join table ``code_raw -> pollutant, code_status`` for exact 2017 and 2005 codes.

    Codes absent from it are classified with :func:`classify_code` (patterns, vendor codes).
    """
    rows_2017 = [(c, c, CODE_STATUS_2017) for c in sorted(codes_2017())]
    rows_2005 = [(k, v, CODE_STATUS_2005) for k, v in sorted(map_2005_to_2017().items())]
    return pl.DataFrame(
        rows_2017 + rows_2005,
        schema={"code_raw": pl.String, "pollutant": pl.String, "code_status": pl.String},
        orient="row",
    )
