"""Parsing with several workers writes exactly what one worker writes, in the same order."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal

from zwy.pipeline import parse_stream
from zwy.sample.generate import generate_district
from zwy.settings import Settings

DAY = date(2024, 5, 1)


def _staged(settings: Settings, stream: str) -> dict[str, pl.DataFrame]:
    folder = Path(parse_stream(DAY, stream, settings)["dir"])
    return {
        "packets": pl.read_parquet(folder / "packets.parquet"),
        "values": pl.read_parquet(folder / "values.parquet"),
        "files": pl.read_parquet(folder / "files.parquet").drop("arrival_time"),
        "quarantine": pl.read_parquet(folder / "quarantine.parquet"),
    }


def test_two_workers_write_what_one_writes(tmp_path: Path) -> None:
    generate_district(tmp_path / "sample", [DAY], scale="demo")
    # 1 MB groups: each exhaust-gas log (about 1 MB a day) is a group of its own, so the
    # two workers really overlap, and the platform exports and the dust station file are
    # read while a group is still in flight.
    one = Settings.for_district(tmp_path / "one", tmp_path / "sample").model_copy(
        update={"parse_workers": 1, "parse_chunk_mb": 1}
    )
    two = one.model_copy(update={"data_dir": tmp_path / "two", "parse_workers": 2})
    for stream in ("exhaust_gas", "wastewater", "dust"):
        a, b = _staged(one, stream), _staged(two, stream)
        assert a["packets"].height > 0 and a["values"].height > 0
        if stream == "exhaust_gas":
            parts = (Path(one.data_dir) / "staging").rglob(f"{stream}/values.parquet/part-*")
            assert len(list(parts)) > 2, "the logs should make several groups"
        for name in a:
            assert_frame_equal(a[name], b[name])
