"""Full-scale timing and memory of ``load_batch`` (not a test: run it by hand).

    uv run python tests/warehouse/bench_load_batch.py [--out DIR] [--long-days 361]

Loads the benchmark district day ``benchmarks/out/run0/staging/2024-05-01`` (17.6 M
readings, 1.38 M packets; another folder via ``ZWY_BENCH_STAGING``, e.g. the
``staging/2024-05-01`` of a ``parse_stream`` + ``transform_stream`` run over
``benchmarks/out/district-benchmark-v2``) into fresh warehouses, each measurement in its own process so
that the peak RSS (VmHWM) is its own:

* ``first``: a fresh warehouse, first load of the day;
* ``reload``: the same day again (same contents, new files);
* ``history``: the day after 3 earlier days (copies shifted by 1-3 days) were loaded;
* ``long``: ``history`` plus ``--long-days`` more days of partitions in meta_partitions
  (hard links of the day's files) and of marts (copies of the day's rows: 111 M hourly
  rows), to show the cost does not grow with history;
* ``late-all`` / ``late-2%``: ``history`` with 1 % of the readings of every device / of
  2 % of the devices moved to the day before (late re-sends): the affected devices' day
  before is rebuilt too, read back from its file;
* ``lazy``: ``first`` with the staging files passed as LazyFrames (what load_day could do).

The frames are read as ``zwy.pipeline.load_day`` reads them. Prints one JSON line per run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # run as a script: the benchmarks package is at the root

from benchmarks.run_benchmark import district_dir  # noqa: E402

STAGING = Path(os.environ.get("ZWY_BENCH_STAGING", ROOT / "benchmarks/out/run0/staging/2024-05-01"))
REGISTRY = district_dir(ROOT / "benchmarks/out") / "registry"
DAY = date(2024, 5, 1)


def status() -> dict[str, float]:
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS", "VmHWM")):
            key, value = line.split(":")
            out[key] = int(value.split()[0]) / 1e6  # GB
    return out


def reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def frames(shift: int = 0, lazy: bool = False) -> dict[str, pl.DataFrame | pl.LazyFrame]:
    """The day's staging frames (both streams), shifted ``shift`` days earlier."""
    parts: dict[str, list[pl.DataFrame | pl.LazyFrame]] = {
        k: [] for k in ("files", "packets", "readings", "quarantine")
    }
    for stream in ("wastewater", "exhaust_gas"):
        d = STAGING / stream
        parts["files"].append(pl.read_parquet(d / "files.parquet"))
        packets = (
            pl.scan_parquet(d / "packets.parquet")
            if lazy
            else pl.read_parquet(d / "packets.parquet")
        )
        parts["packets"].append(packets)  # staged as the warehouse keeps them (stg_packets)
        readings = (
            pl.scan_parquet(d / "readings.parquet")
            if lazy
            else pl.read_parquet(d / "readings.parquet")
        )
        parts["readings"].append(readings)
        parts["quarantine"].append(
            pl.read_parquet(d / "quarantine.parquet").with_columns(pl.lit(stream).alias("stream"))
        )
    out: dict[str, pl.DataFrame | pl.LazyFrame] = {
        k: pl.concat(v, how="diagonal_relaxed")
        for k, v in parts.items()  # type: ignore[type-var]
    }
    if shift:
        back = timedelta(days=shift)
        out["files"] = out["files"].with_columns(pl.col("batch_day") - back)
        out["packets"] = out["packets"].with_columns(
            pl.col("batch_day") - back, pl.col("data_time") - back, pl.col("data_time_utc") - back
        )
        out["readings"] = out["readings"].with_columns(
            pl.col("batch_day") - back, pl.col("local_day") - back, pl.col("data_time_utc") - back
        )
    return out


def load(
    warehouse: Path, shift: int, lazy: bool, chunk_rows: int | None, late: float = 0.0
) -> dict[str, object]:
    from warehouse.db import connect, migrate
    from warehouse.load import load_batch
    from zwy.pipeline import rebuild_marts
    from zwy.registry import load_registry
    from zwy.settings import Settings

    registry = load_registry(REGISTRY)
    rebuild = rebuild_marts(registry, Settings())
    f = frames(shift, lazy)
    if late:  # 1 % of the readings of some devices are re-sends of the day before
        back = (pl.col("line") % 100 == 0) & (pl.col("mn").hash(seed=1) % 1000 < late * 1000)
        f["readings"] = f["readings"].with_columns(
            pl.when(back).then(pl.col(c) - timedelta(days=1)).otherwise(pl.col(c)).alias(c)
            for c in ("local_day", "data_time_utc")
        )
    held = status()["VmRSS"]
    reset_peak()
    wall, cpu = time.perf_counter(), time.process_time()
    with connect(warehouse) as con:
        migrate(con)
        result = load_batch(
            con,
            batch_day=DAY - timedelta(days=shift),
            run_id=f"bench-{shift}",
            files=f["files"],
            packets=f["packets"],
            readings=f["readings"],
            quarantine=f["quarantine"],
            registry=registry.as_dict(),
            rebuild=rebuild,
            chunk_rows=chunk_rows,
        )
    peak = status()["VmHWM"]
    return {
        "wall_s": round(time.perf_counter() - wall, 2),
        "cpu_s": round(time.process_time() - cpu, 2),
        "frames_held_gb": round(held, 2),
        "peak_rss_gb": round(peak, 2),
        "peak_over_frames_gb": round(peak - held, 2),
        "timings": result.timings,
        "rows": {k: v for k, v in result.rows.items() if k.startswith(("stg", "mart"))},
        "affected_days": [d.isoformat() for d in result.affected_days],
        "loadavg_1m": round(os.getloadavg()[0], 1),
    }


def add_history(warehouse: Path, days: int) -> None:
    """List ``days`` more old partitions (hard links of the current files) in meta_partitions."""
    from warehouse.db import connect
    from warehouse.partitions import current_partitions, parquet_dir_of, record_partitions

    with connect(warehouse) as con:
        folder = parquet_dir_of(con)
        template = [p for p in current_partitions(con) if p.batch_day == DAY - timedelta(days=3)]
        con.execute("begin transaction")
        for i in range(4, 4 + days):
            day = DAY - timedelta(days=i)
            parts = []
            for p in template:
                rel = f"{p.table_name}/batch_day={day.isoformat()}/linked.parquet"
                (folder / rel).parent.mkdir(parents=True, exist_ok=True)
                os.link(folder / p.file, folder / rel)
                # The links hold other days' rows; meta says they hold `day` only, so they
                # are listed in the views but never read by the rebuild (no overlap).
                parts.append(
                    p.__class__(
                        **{**p.__dict__, "batch_day": day, "file": rel, "local_days": (day,)}
                    )
                )
            record_partitions(con, day, parts)
        # And a year of marts: copies of that day's rows.
        template_day = DAY - timedelta(days=3)
        for table, shift_hour in (("mart_hourly_values", True), ("mart_daily_values", False)):
            replace = "local_day - cast(i as integer) as local_day"
            if shift_hour:
                replace += ", hour_start_utc - to_days(cast(i as integer)) as hour_start_utc"
            con.execute(
                f"insert into {table} select t.* replace ({replace}) from {table} t, "
                f"range(4, {4 + days}) as r(i) where t.local_day = ?",
                [template_day],
            )
        con.execute("commit")


def child(args: argparse.Namespace) -> None:
    warehouse = Path(args.warehouse)
    for shift in args.prepare:
        load(warehouse, shift, lazy=False, chunk_rows=args.chunk_rows)
    if args.history:
        add_history(warehouse, args.history)
    if args.measure:
        print(json.dumps(load(warehouse, 0, args.lazy, args.chunk_rows, args.late)), flush=True)


def run(name: str, warehouse: Path, *extra: str) -> None:
    cmd = [sys.executable, __file__, "--child", "--warehouse", str(warehouse), *extra]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.startswith("{"):
            print(json.dumps({"run": name, **json.loads(line)}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="/tmp/zwy-bench")
    parser.add_argument("--long-days", type=int, default=361)
    parser.add_argument("--history", type=int, default=0)
    parser.add_argument("--runs", default="first,reload,history,long,late,lazy")
    parser.add_argument("--chunk-rows", type=int, default=500_000)
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--warehouse")
    parser.add_argument("--prepare", type=int, nargs="*", default=[])
    parser.add_argument("--no-measure", dest="measure", action="store_false")
    parser.add_argument("--lazy", action="store_true")
    parser.add_argument("--late", type=float, default=0.0, help="share of devices with late data")
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    runs = args.runs.split(",")
    chunk = ["--chunk-rows", str(args.chunk_rows)]
    if "first" in runs or "reload" in runs:
        run("first", out / "a" / "w.duckdb", *chunk)
        if "reload" in runs:
            run("reload", out / "a" / "w.duckdb", *chunk)
    if {"history", "long", "late"} & set(runs):
        run("prepare", out / "b" / "w.duckdb", "--prepare", "3", "2", "1", "--no-measure", *chunk)
        shutil.copytree(out / "b", out / "c")
        shutil.copytree(out / "b", out / "e")
        if "history" in runs:
            run("history", out / "b" / "w.duckdb", *chunk)
        if "long" in runs:
            run("long", out / "c" / "w.duckdb", "--history", str(args.long_days), *chunk)
        if "late" in runs:
            shutil.copytree(out / "e", out / "f")
            run("late-all", out / "e" / "w.duckdb", "--late", "1", *chunk)
            run("late-2%", out / "f" / "w.duckdb", "--late", "0.02", *chunk)
    if "lazy" in runs:
        run("lazy", out / "d" / "w.duckdb", "--lazy", *chunk)


if __name__ == "__main__":
    main()
