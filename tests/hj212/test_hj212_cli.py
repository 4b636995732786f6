"""zwy hj212 parse (Typer sub-app)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl
from hj212_helpers import APPENDIX_A_EXAMPLE, data_2011, sign
from typer.testing import CliRunner

from zwy.contracts import PACKETS, QUARANTINE, VALUES
from zwy.hj212.cli import hj212_app


def test_parse_writes_parquet_and_reports_unreadable(
    write_log: Callable[..., Path], tmp_path: Path
) -> None:
    good = write_log("good.log", [APPENDIX_A_EXAMPLE, sign(data_2011()), "[noise]"])
    plain = write_log("plain.txt", [sign(data_2011(cn="2051", dt="20240501121000"))], eol="\n")
    bad = write_log("bad.log", b"\xff\xfe binary\x00")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        hj212_app,
        ["parse", str(good), str(bad), str(plain), "--out", str(out)],
        env={"COLUMNS": "300"},
    )
    assert result.exit_code == 1, result.output
    assert f"{bad}: binary file" in result.output
    packets = pl.read_parquet(out / "packets.parquet")
    assert packets.schema == PACKETS
    assert packets.height == 3
    assert pl.read_parquet(out / "values.parquet").schema == VALUES
    assert pl.read_parquet(out / "quarantine.parquet").schema == QUARANTINE
    assert "good.log" in result.output and "plain.txt" in result.output


def test_parse_strict_policy_exit_zero(write_log: Callable[..., Path], tmp_path: Path) -> None:
    path = write_log("m.log", [sign(data_2011(), "modbus")])
    out = tmp_path / "o"
    result = CliRunner().invoke(
        hj212_app,
        ["parse", str(path), "--out", str(out), "--policy", "strict"],
        env={"COLUMNS": "300"},
    )
    assert result.exit_code == 0, result.output
    q = pl.read_parquet(out / "quarantine.parquet")
    assert q["rule"].to_list() == ["crc"]
    assert "crc 1" in result.output
