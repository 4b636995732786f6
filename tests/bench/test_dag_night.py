"""The benchmark's DAG-shaped night: the DAG's order, its parallelism, the same results.

Runs ``benchmarks.dag_night`` (every task a real process) over a one-day test district and
compares it with ``zwy run``'s functions run in sequence on the same district. Not timed.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest

from benchmarks.dag_night import PARALLELISM, _graph, dag_night
from zwy.contracts import STREAMS
from zwy.sample.generate import generate_district
from zwy.settings import Settings

DAY = date(2024, 5, 1)


@pytest.fixture(scope="module")
def district(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dag-night") / "sample"
    generate_district(root, [DAY], scale="test")
    return root


def test_graph_is_the_dags_order() -> None:
    tasks = {t.name: t for t in _graph(STREAMS)}
    for s in STREAMS:
        assert tasks[f"parse.{s}"].after == []
        assert tasks[f"transform.{s}"].after == [f"parse.{s}"]
    assert sorted(tasks["load"].after) == sorted(f"transform.{s}" for s in STREAMS)
    assert [tasks[n].after for n in ("validate", "publish", "alerts_queued")] == [
        ["load"],
        ["validate"],
        ["publish"],
    ]


def _counts(warehouse: Path) -> dict[str, int]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return {
            t: int(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0])  # type: ignore[index]
            for t in ("stg_readings", "mart_hourly_values", "breaches", "dq_issues", "alert_outbox")
        }


def test_dag_night_runs_every_task_in_order_and_loads_what_a_sequential_night_does(
    district: Path, tmp_path: Path
) -> None:
    from zwy.alerts import queue_alerts
    from zwy.pipeline import load_day, parse_stream, publish_day, transform_stream
    from zwy.validate import validate_day

    night = dag_night(tmp_path / "dag", district, DAY, STREAMS, parse_slots=None)
    tasks = night["tasks"]
    assert set(tasks) == {t.name for t in _graph(STREAMS)}
    for t in _graph(STREAMS):
        for dep in t.after:  # a task starts only after what it depends on has ended
            assert tasks[t.name]["start_s"] >= tasks[dep]["start_s"] + tasks[dep]["wall_s"]
    spans = [(v["start_s"], v["start_s"] + v["wall_s"]) for v in tasks.values()]
    most = max(sum(a <= s < b for a, b in spans) for s, _ in spans)
    assert 1 < most <= PARALLELISM  # the streams ran side by side, never more than allowed
    assert night["peak_rss_mb"] >= max(v["peak_rss_mb"] for v in tasks.values())
    assert night["cpu_s"] > 0 and night["wall_s"] > 0

    settings = Settings.for_district(tmp_path / "seq", district)
    for s in STREAMS:
        parsed = parse_stream(DAY, s, settings)
        assert tasks[f"parse.{s}"]["rows"] == parsed["frames_found"]
        made = transform_stream(DAY, s, settings)
        assert tasks[f"transform.{s}"]["rows"] == made["readings"]
    loaded = load_day(DAY, settings=settings)
    validate_day(DAY, settings)
    publish_day(DAY, settings, loaded.get("affected_days"), loaded["run_id"])
    queue_alerts(DAY, settings)
    dag_counts = _counts(tmp_path / "dag" / "warehouse" / "zwy.duckdb")
    assert dag_counts == _counts(settings.warehouse)
    assert dag_counts["breaches"] > 0 and dag_counts["alert_outbox"] > 0


def test_parses_take_turns_in_their_pool(district: Path, tmp_path: Path) -> None:
    night = dag_night(tmp_path / "dag", district, DAY, STREAMS)  # the pool's 1 slot
    parses = sorted(
        (v["start_s"], v["start_s"] + v["wall_s"])
        for name, v in night["tasks"].items()
        if name.startswith("parse.")
    )
    assert len(parses) == len(STREAMS)
    for (_, end), (start, _) in zip(parses, parses[1:], strict=False):
        assert start >= end  # one parse at a time


def test_warm_reads_every_byte_of_the_inputs(tmp_path: Path) -> None:
    from benchmarks.run_benchmark import warm

    sizes = {"a.log": 0, "b.log": 3, "c.log": (8 << 20) + 5}  # empty, small, over one chunk
    for name, size in sizes.items():
        (tmp_path / name).write_bytes(b"x" * size)
    assert warm(sorted(tmp_path.iterdir())) == sum(sizes.values())
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "d.log").write_bytes(b"y" * 7)
    assert warm([tmp_path]) == sum(sizes.values()) + 7  # a folder: every file under it


def test_parse_in_memory_finds_the_frames_the_parse_stage_finds_in_the_logs(
    district: Path, tmp_path: Path
) -> None:
    """The benchmark's parser-alone measure parses the same logs into the same frames."""
    import polars as pl

    from benchmarks.run_benchmark import HJ212_STREAMS, parse_in_memory
    from zwy.pipeline import parse_stream

    settings = Settings.for_district(tmp_path / "data", district)
    _, cpu, log_bytes, frames = parse_in_memory(settings, HJ212_STREAMS)
    logs = [
        p
        for s in HJ212_STREAMS
        for p in (district / "inbox" / DAY.isoformat() / s).iterdir()
        if p.suffix == ".log"
    ]
    assert log_bytes == sum(p.stat().st_size for p in logs) and cpu > 0
    staged = 0
    for s in HJ212_STREAMS:
        out = Path(parse_stream(DAY, s, settings)["dir"])
        files = pl.read_parquet(out / "files.parquet").filter(pl.col("parser") == "hj212")
        staged += int(files["frames_found"].sum())
    assert frames == staged > 0
