"""Pollutant classes and units: which code is a flow, which is averaged arithmetically.

Units come from the HJ 212-2017 Appendix B code table (``zwy/reference/hj212_codes.csv``,
columns ``code_2017, unit, ...``); the classification of codes below is what the hourly and
daily aggregations need to pick a formula. Everything here is pure: frames in, frames out.
"""

from __future__ import annotations

import polars as pl

#: Wastewater flow (污水): Rtd/Avg in L/s, Cou in m3 (HJ 212-2017 Table B.1).
WATER_FLOW = "w00000"
#: Flue-gas flow (废气): m3/s, Cou in m3.
GAS_FLOW = "a00000"
#: Flue-gas O2 content (氧气含量), % by volume, the input of formula 28.
O2 = "a19001"

#: Water parameters averaged arithmetically, never flow-weighted and with no load:
#: pH (w01001) and water temperature (w01010). A load of pH is meaningless.
WATER_ARITHMETIC: frozenset[str] = frozenset({"w01001", "w01010"})

#: Fields that carry a measurement (HJ 212-2017 Table 4). Everything else (Flag, EFlag,
#: SampleTime, RS, RT, vendor suffixes, ...) stays in the values Parquet, out of staging.
MEASUREMENT_FIELDS: tuple[str, ...] = (
    "Rtd",
    "Avg",
    "Min",
    "Max",
    "Cou",
    "ZsRtd",
    "ZsAvg",
    "ZsMin",
    "ZsMax",
)

#: Litres per cubic metre: flows arrive in L/s, discharges are summed in m3.
L_PER_M3 = 1000.0


def is_o2_correctable(pollutant: pl.Expr) -> pl.Expr:
    """Return whether a gas code is a pollutant concentration that formula 28 corrects.

    Appendix B groups gaseous pollutants under ``a2xxxx`` (SO2 a21026, NOx a21002, CO a21005,
    NMHC a24088, ...) and particulates under ``a3xxxx`` (smoke dust a34013). Flow
    (a00000), flue parameters (a01xxx: velocity, temperature, pressure, humidity) and O2
    itself (a19001) are not corrected.

    Args:
        pollutant: expression evaluating to the HJ 212-2017 code.

    Returns:
        A boolean expression.

    """
    return pollutant.str.starts_with("a2") | pollutant.str.starts_with("a3")


def attach_units(frame: pl.LazyFrame, units: pl.DataFrame) -> pl.LazyFrame:
    """Add a ``unit`` column looked up by ``pollutant`` in the code table.

    Args:
        frame: any frame with a ``pollutant`` column (HJ 212-2017 code); an existing
            ``unit`` column is replaced.
        units: the code table with at least ``code_2017`` and ``unit``; duplicate codes keep
            the first row so the join cannot multiply readings.

    Returns:
        ``frame`` with ``unit`` (null for vendor codes and codes not in the table), of the
        same text type as ``pollutant`` (String, or Categorical codes).

    """
    # The small table takes the frame's text type, not the frame the table's.
    text = frame.collect_schema()["pollutant"]
    lookup = (
        units.lazy()
        .select(pl.col("code_2017").cast(text), pl.col("unit").cast(text))
        .unique(subset="code_2017", keep="first", maintain_order=True)
    )
    return frame.drop("unit", strict=False).join(
        lookup, left_on="pollutant", right_on="code_2017", how="left", maintain_order="left"
    )
