"""The column CRC of zwy.hj212.frames agrees with the scalar reference on random data."""

from __future__ import annotations

import random

import numpy as np
import polars as pl
import pytest

from zwy.hj212.crc import crc_appendix_a, crc_modbus
from zwy.hj212.crcvec import crc_appendix_a_many, crc_modbus_many
from zwy.hj212.frames import crc_column

SCALAR = {"appendix_a": crc_appendix_a, "modbus": crc_modbus}


def random_strings(n: int, seed: int) -> list[str | None]:
    rng = random.Random(seed)
    out: list[str | None] = ["", "a", "ab", "x" * 12, "x" * 13, "中文", None]
    for _ in range(n):
        length = rng.choice([rng.randrange(0, 20), rng.randrange(0, 1100)])
        wide = rng.random() < 0.1
        out.append(
            "".join(
                chr(rng.randrange(0x4E00, 0x9FA5))
                if wide and rng.random() < 0.2
                else chr(rng.randrange(32, 127))
                for _ in range(length)
            )
        )
    return out


@pytest.mark.parametrize("algorithm", ["appendix_a", "modbus"])
def test_column_crc_equals_scalar(algorithm: str) -> None:
    values = random_strings(1500, seed=7)
    got = crc_column(pl.Series(values, dtype=pl.String), algorithm)  # type: ignore[arg-type]
    expected = [SCALAR[algorithm]((v or "").encode("utf-8")) for v in values]
    assert got.dtype == np.uint16
    assert got.tolist() == expected


@pytest.mark.parametrize("algorithm", ["appendix_a", "modbus"])
def test_column_crc_on_slices_and_many_buffers(algorithm: str) -> None:
    values = random_strings(400, seed=11)
    series = pl.Series(values, dtype=pl.String)
    # A sliced column and substrings of another column (views into shared buffers).
    sliced = series.slice(37, 200)
    subs = pl.Series([f"pre{v or ''}post" for v in values]).str.slice(3)
    for col in (sliced, subs):
        expected = [SCALAR[algorithm]((v or "").encode("utf-8")) for v in col.to_list()]
        assert crc_column(col, algorithm).tolist() == expected  # type: ignore[arg-type]


def test_column_crc_agrees_with_crcvec() -> None:
    values = [v or "" for v in random_strings(300, seed=3)]
    data = [v.encode("utf-8") for v in values]
    series = pl.Series(values)
    assert crc_column(series, "appendix_a").tolist() == crc_appendix_a_many(data).tolist()
    assert crc_column(series, "modbus").tolist() == crc_modbus_many(data).tolist()


def test_column_crc_empty() -> None:
    assert crc_column(pl.Series([], dtype=pl.String)).tolist() == []
    assert crc_column(pl.Series(["", None])).tolist() == [0xFFFF, 0xFFFF]


def test_appendix_a_reference_value() -> None:
    data = "QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;Flag=5;CP=&&RtdInterval=30&&"
    assert crc_column(pl.Series([data])).tolist() == [0x1C80]


@pytest.mark.parametrize("algorithm", ["appendix_a", "modbus"])
def test_column_crc_long_strings_use_scalar_path(algorithm: str) -> None:
    rng = random.Random(5)
    values = ["".join(chr(rng.randrange(32, 127)) for _ in range(n)) for n in (16383, 16385, 40000)]
    expected = [SCALAR[algorithm](v.encode()) for v in values]
    assert crc_column(pl.Series(values), algorithm).tolist() == expected  # type: ignore[arg-type]
