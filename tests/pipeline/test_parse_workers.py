"""Parsing with several workers writes exactly what one worker writes, in the same order."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from zwy.hj212.values import read_staged_dataset
from zwy.pipeline import parse_stream
from zwy.sample.generate import generate_district
from zwy.settings import Settings

DAY = date(2024, 5, 1)


def _staged(settings: Settings, stream: str) -> dict[str, pl.DataFrame]:
    folder = Path(parse_stream(DAY, stream, settings)["dir"])
    return {
        "packets": pl.read_parquet(folder / "packets.parquet"),
        "values": read_staged_dataset(folder / "values.parquet"),
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


def test_packets_stream_writes_one_file_of_every_frame_in_order(tmp_path: Path) -> None:
    from zwy.pipeline import _ParquetStream

    schema = pl.Schema({"mn": pl.String, "n": pl.Int64})
    frames = [pl.DataFrame({"mn": [f"M{i}"] * 3, "n": [i, i + 1, i + 2]}) for i in range(5)]
    out = _ParquetStream(tmp_path / "packets.parquet", schema, compression="zstd")
    for frame in frames:
        out.write(frame)
    assert out.close() == 15
    assert_frame_equal(pl.read_parquet(tmp_path / "packets.parquet"), pl.concat(frames))
    assert [p.name for p in tmp_path.iterdir()] == ["packets.parquet"]  # no temporary left

    empty = _ParquetStream(tmp_path / "none.parquet", schema)
    assert empty.close() == 0
    assert pl.read_parquet(tmp_path / "none.parquet").schema == schema


def test_an_aborted_or_failing_packets_stream_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import zwy.pipeline
    from zwy.pipeline import _ParquetStream

    schema = pl.Schema({"mn": pl.String})
    aborted = _ParquetStream(tmp_path / "a.parquet", schema)
    aborted.write(pl.DataFrame({"mn": ["M1"]}))
    aborted.abort()
    assert list(tmp_path.iterdir()) == []

    def broken_sink(chunks, schema, path, **options):  # type: ignore[no-untyped-def]
        next(iter(chunks()))  # takes one frame, then the disk is full
        raise OSError(28, "No space left on device")

    # The sink fails: its error reaches the caller, and nothing waits forever on the queue.
    monkeypatch.setattr(zwy.pipeline, "sink_parquet_chunks", broken_sink)
    failing = _ParquetStream(tmp_path / "b.parquet", schema)
    with pytest.raises(OSError, match="No space left"):
        for _ in range(10):
            failing.write(pl.DataFrame({"mn": ["M1"]}))
        failing.close()
    assert list(tmp_path.iterdir()) == []


def test_parts_are_ordered_by_device_and_overlapping_ones_merged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import zwy.pipeline
    from zwy.pipeline import plan_part_order

    def part(name: str, mns: list[str | None]) -> Path:
        path = tmp_path / f"{name}.parquet"
        pl.DataFrame({"mn": mns}, schema={"mn": pl.String}).write_parquet(path)
        return path

    logs_high = part("part-00000", ["E", "F", "G"] * 4)  # inbox order need not be device order
    logs_low = part("part-00001", ["A", "B", "C"] * 4)
    export = part("part-00002", ["B2", "F2"])  # its devices fall among the logs'
    empty = part("part-00003", [])
    chain, strays = plan_part_order([logs_high, logs_low, export, empty])
    assert chain == [logs_low, logs_high] and strays == [export]

    # Too many values to hold, or a device without MN: the parts stay as they are.
    monkeypatch.setattr(zwy.pipeline, "MAX_STRAY_VALUES", 1)
    assert plan_part_order([logs_high, logs_low, export]) == ([logs_high, logs_low, export], [])
    monkeypatch.undo()
    unknown = part("part-00004", ["D", None])
    assert plan_part_order([logs_low, unknown]) == ([logs_low, unknown], [])


def test_parts_without_statistics_are_ordered_by_the_bounds_in_their_footer(
    tmp_path: Path,
) -> None:
    """The parse writes its values parts without statistics, their MN bounds as metadata."""
    import pyarrow.parquet as pq

    from zwy.pipeline import MN_BOUNDS_KEY, _StagedValues, plan_part_order

    out = _StagedValues(tmp_path / "values.parquet")
    for mns in (["E", "F", "G"] * 4, ["A", "B", "C"] * 4, ["F2", "B2"], ["D", None]):
        out.write(_values(mns))
    parts = sorted((tmp_path / "values.parquet").glob("part-*.parquet"))
    meta = pq.read_metadata(parts[0])
    assert meta.row_group(0).column(0).statistics is None  # none written...
    assert meta.metadata[MN_BOUNDS_KEY.encode()] == b'["E", "G", 0]'  # ...only the bounds
    high, low, export, unknown = parts
    assert plan_part_order([high, low, export]) == ([low, high], [export])
    assert plan_part_order([low, unknown]) == ([low, unknown], [])  # a row without MN


def _values(mns: list[str | None], value: float = 1.0) -> pl.DataFrame:
    """VALUES rows of one key, one per MN (a platform export's shape)."""
    from zwy.contracts import VALUES, conform

    n = len(mns)
    return conform(
        pl.DataFrame(
            {
                "source_file": ["export.csv"] * n,
                "line": list(range(2, n + 2)),
                "mn": mns,
                "pollutant": ["w01018"] * n,
                "field": ["Avg"] * n,
                "value": [value + i for i in range(n)],
            }
        ),
        VALUES,
    )


def test_a_small_stream_is_cut_into_more_groups_never_past_the_cap() -> None:
    from zwy.pipeline import MIN_GROUP_BYTES, SMALL_STREAM_GROUPS, parse_group_bytes

    mb = 1_000_000
    assert parse_group_bytes([200 * mb, 237 * mb], 32 * mb) == 32 * mb  # a big stream: the cap
    dust = [290_000] * 200  # 58 MB of small logs
    assert parse_group_bytes(dust, 32 * mb) == -(-sum(dust) // SMALL_STREAM_GROUPS)
    assert parse_group_bytes([mb], 32 * mb) == MIN_GROUP_BYTES  # not below the floor...
    assert parse_group_bytes([mb], mb // 2) == mb // 2  # ...unless the cap is
    assert parse_group_bytes([], 0) == 0  # 0: every log a group of its own


def test_staged_values_keep_the_text_of_values_that_are_not_numbers(tmp_path: Path) -> None:
    """Staging keeps ``value_text`` only where it is not a number; the frame keeps all."""
    from zwy.hj212.crc import sign

    generate_district(tmp_path / "sample", [DAY], scale="demo")
    settings = Settings.for_district(tmp_path / "data", tmp_path / "sample")
    log = sorted((Path(settings.inbox) / DAY.isoformat() / "wastewater").glob("*.log"))[0]
    mn = log.name.split("_")[0]
    segment = (
        f"QN=20240501235959000;ST=32;CN=2051;PW=123456;MN={mn};Flag=4;"
        "CP=&&DataTime=20240501235500;w01018-Avg=n/a,w01018-Flag=N;w21003-Avg=1.250,"
        "w21003-Flag=N&&"
    )
    with log.open("a", encoding="utf-8", newline="") as fh:
        fh.write(sign(segment) + "\r\n")
    staged = _staged(settings, "wastewater")
    values = staged["values"]
    assert values.height > 10
    assert values.filter(pl.col("value").is_not_null())["value_text"].null_count() == (
        values.filter(pl.col("value").is_not_null()).height
    )
    mine = values.filter(pl.col("mn").cast(pl.String) == mn)
    mine = mine.filter(pl.col("line") == mine["line"].max()).sort("pollutant")
    assert mine.select("pollutant", "value", "value_text").rows() == [
        ("w01018", None, "n/a"),
        ("w21003", 1.25, None),
    ]
    # The number's text as sent ("1.250") is still in the accepted frame's raw text.
    raw = staged["packets"].filter(pl.col("raw").str.contains("w01018-Avg=n/a"))["raw"]
    assert raw.len() == 1 and "w21003-Avg=1.250" in raw[0]


def test_parts_are_numbered_as_reserved_whatever_order_they_are_written_in(
    tmp_path: Path,
) -> None:
    """Parse workers write their values parts as they finish; the numbers are the groups'."""
    from zwy.hj212.values import CompactValues
    from zwy.pipeline import _StagedValues

    out = _StagedValues(tmp_path / "values.parquet")
    first, second, empty_group = out.reserve(), out.reserve(), out.reserve()
    # The second group's worker finishes first; the third group held no line (no part).
    out.add(out.write_part(second, CompactValues.of(_values(["B", "B"], 2.0))))
    out.add(out.write_part(first, CompactValues.of(_values(["A"]))))
    assert out.close() == 3  # no empty part added: parts were written
    parts = sorted((tmp_path / "values.parquet").glob("part-*.parquet"))
    assert [p.name for p in parts] == ["part-00000.parquet", "part-00001.parquet"]
    staged = read_staged_dataset(tmp_path / "values.parquet")
    assert staged.select(pl.col("mn").cast(pl.String), "value").rows() == [
        ("A", 1.0),
        ("B", 2.0),
        ("B", 3.0),
    ]
    assert empty_group == 2

    nothing = _StagedValues(tmp_path / "none" / "values.parquet")
    nothing.reserve()  # a group whose logs were all unreadable
    assert nothing.close() == 0
    assert len(list((tmp_path / "none" / "values.parquet").glob("part-*.parquet"))) == 1
    assert read_staged_dataset(tmp_path / "none" / "values.parquet").height == 0
