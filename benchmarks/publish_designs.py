"""Compare two ways to publish the analysts' snapshot on a warehouse with history.

Usage: ``uv run python -m benchmarks.publish_designs <data_dir> [--repeats 3]``

``<data_dir>`` holds a warehouse built by ``zwy run`` over many days (e.g. a year of the
test-scale sample: ``benchmarks/build_history.py``). In the same run, each design is timed
publishing after the last day:

- **A, partitions + catalog** (:func:`warehouse.publish.publish`): the first publish exports
  everything; a nightly publish exports only the changed days' partitions, hard-links the
  staging files and swaps a small catalog file.
- **B, file copy**: copy the DuckDB file and its Parquet folder to a snapshot folder and swap
  it in (``shutil.copy2`` + ``os.replace``), what "copy the warehouse every night" costs.

Reports medians (seconds, MB written) and the history size.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import time
from datetime import date
from pathlib import Path


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    from warehouse.db import connect
    from warehouse.publish import publish

    wh = args.data_dir / "warehouse" / "zwy.duckdb"
    pq_dir = wh.parent / f"{wh.stem}_parquet"
    with connect(wh, read_only=True) as con:
        last, n_days = con.execute(
            "select max(batch_day), count(distinct batch_day) from raw_ingest_files"
        ).fetchone()  # type: ignore[misc]
    out = args.data_dir / "bench_publish"
    shutil.rmtree(out, ignore_errors=True)
    a_dir, b_dir = out / "a", out / "b"

    from warehouse.db import migrate

    with connect(wh) as con:
        migrate(con)  # a history built by an older zwy may lack the compliance tables
    t = time.perf_counter()
    with connect(wh) as con:
        first = publish(con, a_dir, None)
    full_s = time.perf_counter() - t
    a_times, a_bytes, b_times = [], [], []
    for _ in range(args.repeats):
        t = time.perf_counter()
        with connect(wh) as con:
            res = publish(con, a_dir, {last, date.fromordinal(last.toordinal() - 1)})
        a_times.append(time.perf_counter() - t)
        a_bytes.append(res.bytes_written)
        t = time.perf_counter()
        tmp = b_dir / ".next"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        shutil.copy2(wh, tmp / wh.name)
        shutil.copytree(pq_dir, tmp / pq_dir.name)
        if (b_dir / "current").exists():
            os.replace(b_dir / "current", b_dir / "old")
        os.replace(tmp, b_dir / "current")
        shutil.rmtree(b_dir / "old", ignore_errors=True)
        b_times.append(time.perf_counter() - t)
    history_mb = (_size(wh) + _size(pq_dir)) / 1e6
    print(f"history: {n_days} days, warehouse {history_mb:.1f} MB (DuckDB file + Parquet)")
    print("| design | publish after a night, median s | MB written | first publish s |")
    print("|---|---:|---:|---:|")
    print(
        f"| A partitions + catalog | {statistics.median(a_times):.3f} | "
        f"{statistics.median(a_bytes) / 1e6:.2f} | {full_s:.2f} ({first.bytes_written / 1e6:.1f} MB) |"
    )
    print(f"| B file copy | {statistics.median(b_times):.3f} | {history_mb:.2f} | |")
    shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
