"""Compact values: the VALUES rows a parse found, stored as frame and key numbers."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal

from zwy.contracts import VALUES
from zwy.hj212.crc import sign
from zwy.hj212.parse import parse_lines
from zwy.hj212.values import CompactValues, read_staged, read_staged_dataset, write_staged

MN = "010000A8900016F000169DC0"


def _lines(*segments: str) -> pl.DataFrame:
    """Log lines: each data segment signed into a frame, any other text as it is (noise)."""
    texts = [sign(s) if s.startswith("QN=") else s for s in segments]
    return pl.DataFrame(
        {"source_file": ["a.log"] * len(texts), "line": range(1, len(texts) + 1), "text": texts}
    )


def _segment(minute: int, so2: str, flag: str = "N") -> str:
    return (
        f"QN=2024050100{minute:02d}00000;ST=31;CN=2011;PW=123456;MN={MN};Flag=5;"
        f"CP=&&DataTime=2024050100{minute:02d}00;a21026-Rtd={so2},a21026-Flag={flag};"
        "a01012-Rtd=120.5,a01012-Flag=N&&"
    )


def test_a_parse_keeps_each_frame_and_key_once_and_spells_every_value_out() -> None:
    res = parse_lines(_lines(_segment(1, "12.5"), "not a packet", _segment(2, "n/a", "D")))
    compact = res.compact
    assert compact.frames.height == 2 and compact.keys.height >= 2  # not one per value
    values = res.values
    assert values.schema == VALUES
    assert values.select(
        "line",
        pl.col("pollutant").cast(pl.String),
        "value",
        "value_text",
        pl.col("flag").cast(pl.String),
    ).rows() == [
        (1, "a21026", 12.5, "12.5", "N"),
        (1, "a01012", 120.5, "120.5", "N"),
        (3, "a21026", None, "n/a", "D"),
        (3, "a01012", 120.5, "120.5", "N"),
    ]
    assert values["mn"].cast(pl.String).unique().to_list() == [MN]
    counts = res.per_file().select("source_file", "frames_found", "values_loaded").rows()
    assert counts == [("a.log", 2, 4)]
    # A reader asks for the columns it needs, in the contract's order and types.
    some = compact.expand(["value", "mn", "field"])
    assert some.columns == ["mn", "field", "value"]
    assert_frame_equal(some, values.select("mn", "field", "value"))


def test_staged_parts_read_back_as_they_were_written(tmp_path: Path) -> None:
    res = parse_lines(_lines(_segment(1, "12.5"), _segment(2, "-0.0")))
    folder = tmp_path / "values.parquet"
    part = folder / "part-00000.parquet"
    folder.mkdir()
    assert write_staged(res.compact, part, metadata={"other": "kept"}) == 4
    assert (tmp_path / "frames.parquet" / "part-00000.parquet").is_file()
    back = read_staged(part)
    # Staging keeps the text of values that are not numbers only ("-0.0" is in the raw).
    staged = res.values.with_columns(
        pl.when(pl.col("value").is_null()).then(pl.col("value_text")).alias("value_text")
    )
    assert staged["value_text"].null_count() == 4
    assert_frame_equal(back.expand(), staged)
    assert_frame_equal(read_staged_dataset(folder), staged)
    # Every value a number: the part leaves its all-null value_text out, reading puts it back.
    assert "value_text" not in pl.read_parquet_schema(part)
    mixed = folder / "part-00002.parquet"
    res_mixed = parse_lines(_lines(_segment(3, "n/a", "D")))
    write_staged(res_mixed.compact, mixed)
    assert "value_text" in pl.read_parquet_schema(mixed)
    assert read_staged(mixed).expand()["value_text"].to_list() == ["n/a", None]
    empty = folder / "part-00001.parquet"
    write_staged(CompactValues.empty(), empty)
    assert read_staged(empty).expand().schema == VALUES
    assert read_staged_dataset(folder).height == 6


def test_a_values_frame_compacts_and_expands_to_itself() -> None:
    """A platform export's values: each row its own frame, its keys shared."""
    values = parse_lines(_lines(_segment(1, "1"), _segment(2, "2"), _segment(3, "x"))).values
    compact = CompactValues.of(values)
    assert compact.frames.height == values.height
    assert compact.keys.height == values.select("pollutant", "field").n_unique()
    assert_frame_equal(compact.expand(), values)
    assert_frame_equal(CompactValues.of(values.clear()).expand(), values.clear())


def test_a_part_that_is_not_a_staged_part_is_named_with_the_reason(tmp_path: Path) -> None:
    import pytest

    from zwy.hj212.exceptions import StagedValuesError

    folder = tmp_path / "values.parquet"
    folder.mkdir()
    part = folder / "part-00000.parquet"
    pl.DataFrame({"mn": ["A"]}).write_parquet(part)  # an older release's full VALUES part
    with pytest.raises(StagedValuesError, match="frames.parquet/part-00000.parquet is missing"):
        read_staged(part)
    (tmp_path / "frames.parquet").mkdir()
    pl.DataFrame({"mn": ["A"]}).write_parquet(tmp_path / "frames.parquet" / part.name)
    with pytest.raises(StagedValuesError, match="part-00000.parquet: no zwy:keys in its footer"):
        read_staged(part)
