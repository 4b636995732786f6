"""Benchmark one full-scale district night: parse → transform → load → validate → publish → alerts.

Usage: ``uv run python -m benchmarks.run_benchmark [--repeats 3] [--out benchmarks/out]``

Each repeat runs in a fresh process (``--single``), so each night's peak RSS is its own.
Generates (once, cached by seed) a district-day at full scale: 2,000 monitoring points —
1,600 wastewater points sending 2051 data every 10 min with 6 pollutants and 400 stacks
sending 2011 data every 30 s with 8 pollutants — then runs each stage ``--repeats`` times
and reports medians of wall time, MB/s, rows/s and peak RSS per stage. All four streams
(wastewater, exhaust gas, solid waste: 800 facilities' ledgers and manifests, dust: 200
construction sites and their station), then the controls, the analysts' snapshot and the
alert queue (queued, not sent: no SMTP server in a benchmark). In the same run it
measures DuckDB's own ``read_csv`` on a plain CSV of the same size (the rate to beat) and
prints the ratio. Results go to ``<out>/results.json`` and a Markdown table on stdout,
ending with the verdict against each of issue 8's targets (:mod:`benchmarks.targets`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any

from benchmarks.targets import markdown, night_verdicts
from zwy.contracts import DUST_STREAM, TELEMETRY_STREAMS

DAY = date(2024, 5, 1)
#: The streams whose telemetry arrives as HJ 212 logs (and the exports beside them).
HJ212_STREAMS = (*TELEMETRY_STREAMS, DUST_STREAM)
#: Bumped whenever the benchmark district's generator changes what it writes (2: value
#: faults planted on about 2 % of the points).
BENCH_DISTRICT_VERSION = 2


def district_dir(out: Path, scale: str = "benchmark") -> Path:
    """Return where the benchmark district of ``scale`` is generated and cached under ``out``.

    The generator's version is in the name, so a district cached by an older generator
    (e.g. one without planted faults) is not reused.
    """
    return out / f"district-{scale}-v{BENCH_DISTRICT_VERSION}"


class PeakRSS:
    """Sample this process's resident set size in a thread; report the peak since start()."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def current() -> int:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def __enter__(self) -> PeakRSS:
        self.peak = self.current()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.current())
            time.sleep(self.interval)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        self.peak = max(self.peak, self.current())


def machine(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict[str, object]:
    """The processor, its cores and Python: where a run's seconds were measured.

    ``cpu`` is the model name with its family and model numbers where Linux gives them:
    these VMs name every generation "AMD EPYC", and only the numbers tell a Zen 4
    (family 25 model 17) from a Zen 5 (family 26 model 2).
    """
    model = platform.processor()
    if cpuinfo.is_file():
        fields: dict[str, str] = {}
        for line in cpuinfo.read_text().splitlines():
            key, sep, value = line.partition(":")
            if not sep:
                break  # the first processor's block ends at its blank line
            fields.setdefault(key.strip(), value.strip())
        model = fields.get("model name", model)
        if "cpu family" in fields and "model" in fields:
            model = f"{model} (family {fields['cpu family']} model {fields['model']})"
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version()}


def cpu_seconds() -> float:
    """User plus system CPU time of this process so far: all threads, and waited-for children.

    Children count because a stage may hand work to worker processes (the alerts' and
    the report's charts); their CPU time is added once they are waited for.
    """
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def timed(fn: Callable[[], Any]) -> tuple[float, int, Any, float]:
    """Run ``fn``; return (wall s, peak RSS bytes, its result, CPU s of the process)."""
    with PeakRSS() as rss:
        c0 = cpu_seconds()
        t0 = time.perf_counter()
        res = fn()
        dt = time.perf_counter() - t0
        cpu = cpu_seconds() - c0
    return dt, rss.peak, res, cpu


def warm(paths: list[Path]) -> int:
    """Read ``paths`` once (untimed) so the timed read finds them in the page cache; return bytes.

    A folder stands for every file under it.

    These VMs reclaim idle page cache (``kdamond``) even with most memory free: between
    repeats the district's logs and the CSV were read back from disk, which made one
    repeat's parse I/O-bound (0.9 cores busy) and moved ``read_csv`` by 15 %. A night's
    files have just arrived, and both sides of the ratio start from cached bytes now.
    """
    files = [f for p in paths for f in (sorted(p.rglob("*")) if p.is_dir() else [p])]
    total = 0
    for path in (f for f in files if f.is_file()):
        with path.open("rb") as fh:
            while chunk := fh.read(8 << 20):
                total += len(chunk)
    return total


def make_plain_csv(path: Path, target_bytes: int) -> int:
    """Write a plain CSV (mn,time,pollutant,value,flag) of about ``target_bytes``; return rows."""
    import polars as pl

    one = pl.DataFrame(
        {
            "mn": [f"{i:014d}" for i in range(1000)],
            "data_time": ["2024-05-01 00:00:00"] * 1000,
            "pollutant": ["w01018"] * 1000,
            "value": [123.456 + i for i in range(1000)],
            "flag": ["N"] * 1000,
        }
    )
    row_bytes = len(one.write_csv()) / 1000
    n = int(target_bytes / row_bytes)
    reps = n // 1000 + 1
    big = pl.concat([one] * reps).head(n)
    big.write_csv(path)
    return n


def duckdb_read_csv_rate(path: Path) -> tuple[float, int]:
    import duckdb

    con = duckdb.connect()
    t0 = time.perf_counter()
    con.execute(f"CREATE TABLE t AS SELECT * FROM read_csv('{path}')")
    dt = time.perf_counter() - t0
    n = con.execute("SELECT count(*) FROM t").fetchone()[0]  # type: ignore[index]
    con.close()
    return dt, int(n)


def parse_in_memory(settings: Any, streams: tuple[str, ...]) -> tuple[float, float, int, int]:
    """Parse the day's HJ 212 logs of ``streams`` as the stage does, writing nothing.

    The parse stage's rate is that of its whole job: reading the logs, finding and checking
    every frame (CRC included), exploding the values, and writing the staged values and
    packets Parquet the transform and the loader read. ``read_csv`` only reads its file
    into memory. This is the part of the stage that does what ``read_csv`` does: the same
    groups (``parse_group_bytes``), the same number of worker threads, each group's result
    dropped once made.

    Returns:
        (wall s, CPU s of the process, log bytes, frames found).

    """
    from concurrent.futures import ThreadPoolExecutor

    from zwy.hj212.parse import parse_lines
    from zwy.hj212.reader import log_lines_group, read_log_group
    from zwy.pipeline import discover_inputs, parse_group_bytes
    from zwy.registry import load_registry

    policies = load_registry(settings.registry).crc_policies()
    groups: list[list[tuple[Path, str]]] = []
    total = 0
    for stream in streams:
        logs = [f for f in discover_inputs(settings.inbox, DAY, stream) if f.parser == "hj212"]
        sizes = [f.path.stat().st_size for f in logs]
        total += sum(sizes)
        cap = parse_group_bytes(sizes, settings.parse_chunk_mb * 1_000_000)
        group: list[tuple[Path, str]] = []
        size = 0
        for f, n in zip(logs, sizes, strict=True):
            group.append((f.path, f.rel_path))
            size += n
            if size >= cap:
                groups.append(group)
                group, size = [], 0
        if group:
            groups.append(group)

    def parse(group: list[tuple[Path, str]]) -> int:
        split = log_lines_group(read_log_group(group))
        res = parse_lines(
            split.lines,
            policies,
            default_policy=settings.default_crc_policy,
            text_spans=split.spans,
        )
        return res.packets.height

    c0, t0 = cpu_seconds(), time.perf_counter()
    with ThreadPoolExecutor(max_workers=settings.parse_workers) as pool:
        frames = sum(pool.map(parse, groups))
    return time.perf_counter() - t0, cpu_seconds() - c0, total, frames


def one_night(out: Path, district: Path, r: int, csv_path: Path) -> dict[str, Any]:
    """Run one night of ``district`` in ``out/run<r>``; return per-stage (seconds, peak RSS)."""
    import zwy  # noqa: F401  # first: as in ``zwy run``, the package sets Polars' allocator default
    from expectations.benchmark import judge_timings
    from zwy.alerts import queue_alerts
    from zwy.contracts import STREAMS
    from zwy.pipeline import load_day, parse_stream, publish_day, transform_stream
    from zwy.settings import Settings
    from zwy.validate import validate_loaded

    stage_rows: dict[str, int] = {}  # rows each stage handled (frames or records, readings)
    data = out / f"run{r}"
    shutil.rmtree(data, ignore_errors=True)
    settings = Settings.for_district(data, district)
    rec: dict[str, Any] = {}

    def stage(name: str, fn: Callable[[], Any]) -> Any:
        dt, peak, res, cpu = timed(fn)
        rec[name] = (dt, peak, cpu)
        return res

    warm([district / "inbox" / DAY.isoformat()])
    total0, cpu0 = time.perf_counter(), cpu_seconds()
    frames = values = readings = 0
    for stream in STREAMS:
        res = stage(f"parse.{stream}", partial(parse_stream, DAY, stream, settings))
        stage_rows[f"parse.{stream}"] = res["frames_found"]
        frames += res["frames_found"]
        values += res["values"]
        res = stage(f"transform.{stream}", partial(transform_stream, DAY, stream, settings))
        stage_rows[f"transform.{stream}"] = res["readings"]
        readings += res["readings"]
    loaded = stage("load", partial(load_day, DAY, settings=settings))
    checked = stage(
        "validate", partial(validate_loaded, DAY, loaded.get("affected_days"), settings)
    )
    findings = checked["breaches"] + checked["dq_issues"]
    stage(
        "publish",
        partial(publish_day, DAY, settings, loaded.get("affected_days"), loaded["run_id"]),
    )
    queued = stage("alerts_queued", partial(queue_alerts, DAY, settings))
    rec["total"] = (
        time.perf_counter() - total0,
        max(p for _, p, _ in rec.values()),
        cpu_seconds() - cpu0,
    )
    recall = planted_recall(district, settings.warehouse)
    warm([district / "inbox" / DAY.isoformat()])
    dt, cpu, log_bytes, parsed_frames = parse_in_memory(settings, HJ212_STREAMS)
    rec["parse_in_memory"] = (dt, 0, cpu)
    warm([csv_path])
    dt, _, _, cpu = timed(lambda: duckdb_read_csv_rate(csv_path))
    rec["duckdb_read_csv"] = (dt, 0, cpu)
    # The controls' floor: the GX suites against the same checks as one plain DuckDB
    # query, over the same batches of the night just loaded (GX already imported).
    judges = judge_timings(settings.warehouse, DAY, repeats=1)
    rec["controls.gx_sql"] = (judges["gx_sql"], 0, 0.0)
    rec["controls.plain_query"] = (judges["plain_duckdb"], 0, 0.0)
    rec["controls.read_and_build"] = (judges["read"] + judges["build"], 0, 0.0)
    rec["controls.gx_floor"] = (judges["gx_floor"], 0, 0.0)
    shutil.rmtree(data, ignore_errors=True)
    return {
        "rec": rec,
        "stage_rows": stage_rows,
        "frames": frames,
        "values": values,
        "readings": readings,
        "findings": findings,
        "alerts_queued": len(queued.queued),
        "recall": recall,
        "parse_in_memory": {"log_bytes": log_bytes, "frames": parsed_frames},
    }


def planted_recall(district: Path, warehouse: Path) -> dict[str, list[int]]:
    """Return, per planted kind, ``[planted, found]``: the night must find what was planted.

    Exceedances are matched to breaches on (mn, pollutant, averaging period), flatlined
    windows to ``ZWY-DQ-FLATLINE`` issues on (mn, pollutant).
    """
    import duckdb

    planted = json.loads((district / "planted.json").read_text(encoding="utf-8"))
    with duckdb.connect(str(warehouse), read_only=True) as con:
        breaches = set(
            con.execute("select mn, pollutant, averaging_period from breaches").fetchall()
        )
        flat = set(
            con.execute(
                "select mn, pollutant from dq_issues where control_id = 'ZWY-DQ-FLATLINE'"
            ).fetchall()
        )
    exceed = [(e["mn"], e["pollutant"], e["period"]) for e in planted["exceedances"]]
    flats = [(f["mn"], f["pollutants"][0]) for f in planted["flatlined"]]
    return {
        "exceedances": [len(exceed), sum(e in breaches for e in exceed)],
        "flatlined": [len(flats), sum(f in flat for f in flats)],
    }


def _dag_summary(dags: list[dict[str, Any]], stage_rows: dict[str, int]) -> dict[str, Any]:
    """Medians over the repeats of the DAG-scheduled night, per task and in all.

    Raises:
        RuntimeError: the DAG-scheduled night found other frames or readings than the
            sequential one, or missed planted faults (it did not do the same work).

    """
    for d in dags:
        for name, task in d["tasks"].items():
            if name in stage_rows and task["rows"] is not None and task["rows"] != stage_rows[name]:
                raise RuntimeError(
                    f"{name}: {task['rows']} rows under the DAG's schedule, "
                    f"{stage_rows[name]} in sequence"
                )
        missed = {k: v for k, v in d["recall"].items() if v[0] != v[1]}
        if missed:
            raise RuntimeError(f"the DAG-scheduled night missed planted faults: {missed}")
    med = statistics.median
    tasks = {
        name: {
            k: med(d["tasks"][name][k] for d in dags)
            for k in ("start_s", "wall_s", "import_s", "cpu_s")
        }
        | {"peak_rss_mb": max(d["tasks"][name]["peak_rss_mb"] for d in dags)}
        for name in dags[0]["tasks"]
    }
    return {
        "parallelism": dags[0]["parallelism"],
        "parse_slots": dags[0]["parse_slots"],
        "median_wall_s": round(med(d["wall_s"] for d in dags), 2),
        "median_cpu_s": round(med(d["cpu_s"] for d in dags), 2),
        "peak_rss_mb": max(d["peak_rss_mb"] for d in dags),
        "tasks": tasks,
    }


def _print_dag(summary: dict[str, Any], repeats: int) -> None:
    print(
        f"\nthe same night as yizhuang_nightly schedules it (each task its own process, "
        f"{summary['parallelism']} at once, {summary['parse_slots'] or 'any number of'} "
        f"parse(s) at once; medians of {repeats}):\n\n"
        "| task | starts at s | wall s | of which imports s | CPU s | peak RSS MB |\n"
        "|---|---:|---:|---:|---:|---:|"
    )
    for name, t in summary["tasks"].items():
        print(
            f"| {name} | {t['start_s']:.2f} | {t['wall_s']:.2f} | {t['import_s']:.2f} "
            f"| {t['cpu_s']:.2f} | {t['peak_rss_mb']} |"
        )
    print(
        f"| night | 0 | {summary['median_wall_s']:.2f} | | {summary['median_cpu_s']:.2f} "
        f"| {summary['peak_rss_mb']} (processes at once) |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out"))
    ap.add_argument("--scale", default="benchmark")
    ap.add_argument(
        "--schedule",
        choices=["both", "sequential"],
        default="both",
        help="also run each night as the DAG schedules it (benchmarks.dag_night)",
    )
    ap.add_argument("--single", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()

    from zwy.contracts import STREAMS
    from zwy.sample.generate import generate_district

    out: Path = args.out
    district = district_dir(out, args.scale)
    if not (district / "inbox" / DAY.isoformat() / "dust").is_dir():
        t0 = time.perf_counter()
        generate_district(district, [DAY], scale=args.scale)
        print(f"generated {district} in {time.perf_counter() - t0:.1f} s")
    inbox = district / "inbox"
    input_bytes = sum(p.stat().st_size for p in (inbox / DAY.isoformat()).rglob("*") if p.is_file())

    csv_path = out / "plain.csv"
    if args.single is not None:
        # One repeat in this (fresh) process: the parent reads the JSON.
        night = one_night(out, district, args.single, csv_path)
        if args.schedule == "both":
            from benchmarks.dag_night import dag_night

            data = out / f"dag{args.single}"
            shutil.rmtree(data, ignore_errors=True)
            warm([district / "inbox" / DAY.isoformat()])
            night["dag"] = dag_night(data, district, DAY, STREAMS)
            night["dag"]["recall"] = planted_recall(district, data / "warehouse" / "zwy.duckdb")
            shutil.rmtree(data, ignore_errors=True)
        (out / f"run{args.single}.json").write_text(json.dumps(night))
        return
    csv_rows = make_plain_csv(csv_path, input_bytes)
    runs: list[dict[str, Any]] = []
    dags: list[dict[str, Any]] = []
    for r in range(args.repeats):
        # Each repeat in a fresh process, as a nightly job runs: peak RSS is that night's
        # alone (memory the allocator keeps from an earlier repeat would count), and the
        # one-off imports (GX's 3-4 s) are paid every night, as they are in production.
        subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.run_benchmark",
                "--out",
                str(out),
                "--scale",
                args.scale,
                "--schedule",
                args.schedule,
                "--single",
                str(r),
            ],
            check=True,
        )
        night = json.loads((out / f"run{r}.json").read_text())
        runs.append({k: tuple(v) for k, v in night["rec"].items()})
        if "dag" in night:
            dags.append(night["dag"])
    stage_rows: dict[str, int] = night["stage_rows"]
    frames, values, readings = night["frames"], night["values"], night["readings"]
    findings, n_queued = night["findings"], night["alerts_queued"]
    recall: dict[str, list[int]] = night["recall"]

    med = {k: statistics.median(r[k][0] for r in runs) for k in runs[0]}
    peak = {k: max(r[k][1] for r in runs) for k in runs[0]}
    cpu = {k: statistics.median(r[k][2] for r in runs) for k in runs[0]}
    mb = input_bytes / 1e6
    stream_mb = {
        st: sum(p.stat().st_size for p in (inbox / DAY.isoformat() / st).rglob("*") if p.is_file())
        / 1e6
        for st in STREAMS
    }
    # The HJ 212 parse rate: the three streams of packet logs (and their exports) together.
    parse_s = sum(med[f"parse.{st}"] for st in HJ212_STREAMS)
    hj212_mb = sum(stream_mb[st] for st in HJ212_STREAMS)
    csv_rate = mb / med["duckdb_read_csv"]
    memory_mb = night["parse_in_memory"]["log_bytes"] / 1e6
    parse_rate = hj212_mb / parse_s
    result = {
        "machine": machine(),
        "scale": args.scale,
        "input_mb": round(mb, 1),
        "frames": frames,
        "values": values,
        "readings": readings,
        "findings": findings,
        "alerts_queued": n_queued,
        "planted_found": recall,
        "repeats": args.repeats,
        "median_s": {k: round(v, 2) for k, v in med.items()},
        "peak_rss_mb": {k: round(v / 1e6) for k, v in peak.items()},
        # CPU seconds of the process (all threads) per stage: cpu / wall = cores kept busy.
        "median_cpu_s": {k: round(v, 2) for k, v in cpu.items() if v},
        "parse_mb_s": round(parse_rate, 1),
        "parse_frames_s": round(frames / parse_s),
        "duckdb_read_csv_mb_s": round(csv_rate, 1),
        "duckdb_read_csv_rows": csv_rows,
        "parse_vs_read_csv": round(parse_rate / csv_rate, 2),
        # The parser alone (no staging written), on the logs only, in MB/s of wall time and
        # per CPU-second, against read_csv's.
        "parse_in_memory_mb_s": round(memory_mb / med["parse_in_memory"], 1),
        "parse_in_memory_vs_read_csv": round(memory_mb / med["parse_in_memory"] / csv_rate, 2),
        "mb_per_cpu_s": {
            "parse_stage": round(hj212_mb / sum(cpu[f"parse.{st}"] for st in HJ212_STREAMS), 1),
            "parse_in_memory": round(memory_mb / cpu["parse_in_memory"], 1),
            "duckdb_read_csv": round(mb / cpu["duckdb_read_csv"], 1),
        },
        "total_s": round(med["total"], 1),
        "gx_vs_plain_query": round(med["controls.gx_sql"] / med["controls.plain_query"], 1),
        # GX's least run (one expectation, five rows) against every check as one query.
        "gx_floor_vs_plain_query": round(med["controls.gx_floor"] / med["controls.plain_query"], 1),
        "validate_stage_vs_plain": round(
            (med["controls.read_and_build"] + med["controls.gx_sql"])
            / (med["controls.read_and_build"] + med["controls.plain_query"]),
            2,
        ),
    }
    if dags:
        result["dag_schedule"] = _dag_summary(dags, stage_rows)
    verdicts = night_verdicts(result)
    result["targets"] = [v.as_json() for v in verdicts]
    (out / "results.json").write_text(json.dumps(result, indent=2))
    print(f"\ninput {mb:.0f} MB, {frames:,} frames, {values:,} values; medians of {args.repeats}\n")
    print(
        "| stage | median s | CPU s | cores busy | MB/s | rows/s | peak RSS MB |\n"
        "|---|---:|---:|---:|---:|---:|---:|"
    )
    for k, v in med.items():
        stream = k.split(".", 1)[1] if "." in k else None
        size = stream_mb.get(stream or "", mb if k in ("total", "duckdb_read_csv") else 0.0)
        size = memory_mb if k == "parse_in_memory" else size
        rate = f"{size / v:.0f}" if size else ""
        rows = stage_rows.get(k) or (
            csv_rows
            if k == "duckdb_read_csv"
            else readings
            if k in ("load", "total")
            else night["parse_in_memory"]["frames"]
            if k == "parse_in_memory"
            else 0
        )
        per_s = f"{rows / v:,.0f}" if rows else ""
        busy = f"{cpu[k]:.2f} | {cpu[k] / v:.2f}" if cpu[k] else " | "
        print(f"| {k} | {v:.2f} | {busy} | {rate} | {per_s} | {peak[k] / 1e6:.0f} |")
    print(
        f"\nHJ 212 parse ({hj212_mb:.0f} MB) {parse_rate:.0f} MB/s vs DuckDB read_csv {csv_rate:.0f} MB/s: ratio {result['parse_vs_read_csv']}x"
    )
    per_cpu = result["mb_per_cpu_s"]
    print(
        f"the parser alone, no staging written ({memory_mb:.0f} MB of logs): "
        f"{result['parse_in_memory_mb_s']:.0f} MB/s, {result['parse_in_memory_vs_read_csv']}x "
        f"read_csv; per CPU-second: parse stage {per_cpu['parse_stage']:.0f} MB, parser alone "
        f"{per_cpu['parse_in_memory']:.0f} MB, read_csv {per_cpu['duckdb_read_csv']:.0f} MB"
    )
    print(
        f"controls: GX (sql) judges in {med['controls.gx_sql']:.2f} s, the same checks as one "
        f"plain query in {med['controls.plain_query']:.3f} s ({result['gx_vs_plain_query']}x); "
        f"with reading and building the batches both need: {result['validate_stage_vs_plain']}x; "
        f"GX's floor (one expectation on five rows) {med['controls.gx_floor']:.3f} s "
        f"({result['gx_floor_vs_plain_query']}x)"
    )
    print(
        f"whole night, raw files to published warehouse and queued alerts: {med['total']:.1f} s "
        f"wall, peak RSS {peak['total'] / 1e9:.2f} GB; {findings} findings, "
        f"{n_queued} alerts queued"
    )
    if dags:
        _print_dag(result["dag_schedule"], len(dags))
    missed = {k: v for k, v in recall.items() if v[1] != v[0]}
    print(
        "planted faults found: "
        + ", ".join(f"{k} {found} of {n}" for k, (n, found) in recall.items())
        + (f" -- MISSED: {missed}" if missed else "")
    )
    print("\nissue 8's targets (the history's: benchmarks.history_district):\n")
    print(markdown(verdicts, args.scale))


if __name__ == "__main__":
    main()
