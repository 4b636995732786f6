"""Time the controls of one day: measure, then judge with GX (pandas, SQL) or plain DuckDB.

Usage::

    uv run python -m expectations.benchmark --warehouse data/warehouse/zwy.duckdb --day 2024-05-01

Opens the warehouse read-only, builds the day's batches once, then judges them
``--repeats`` times with each engine and prints a Markdown table of median wall times. All
three judges must find the same rows (the run fails otherwise). The numbers behind the
default engine are in ``docs/controls.md``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

from expectations.controls import load_controls, resolve_limits
from expectations.measures import build_batches, read_day
from expectations.suites import (
    expectation_specs,
    judge_plain,
    new_context,
    run_suites,
    write_batches,
)
from zwy.settings import ValiditySettings


def judge_timings(warehouse: Path, day: date, repeats: int = 3) -> dict[str, float]:
    """Time the controls of ``day`` in ``warehouse``: GX (SQL and pandas) against plain DuckDB.

    Builds the day's batches once, then judges them ``repeats`` times with each engine.

    Returns:
        Seconds: ``gx_import`` (once per process), ``read``, ``build``, and the medians
        ``gx_sql``, ``gx_pandas``, ``plain_duckdb`` and ``gx_floor`` (GX's least run: the
        first expectation alone, on the first five rows of its batch, SQL engine);
        ``specs``, ``rows`` and ``findings`` as counts.

    Raises:
        SystemExit: the three judges disagree on the failing rows.

    """
    from warehouse.db import connect

    t = time.perf_counter()
    new_context()
    gx_import = time.perf_counter() - t
    controls = load_controls()
    params = {c.control_id: dict(c.params) for c in controls}
    t = time.perf_counter()
    with connect(warehouse, read_only=True) as con:
        data = read_day(con, day)
    t_read = time.perf_counter() - t
    t = time.perf_counter()
    limits = resolve_limits(day, data.outlets)
    batches = build_batches(data, limits, params)
    t_build = time.perf_counter() - t
    specs = expectation_specs(controls, limits, ValiditySettings())
    rows = {k: v.height for k, v in batches.items()}
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_batches(batches, Path(tmp))
        # GX's floor: what a run costs before it has anything to judge. Against it the
        # target (GX within 2x one plain query of every check) can be weighed for any
        # design of the suites, one expectation per limit or one for everything.
        first = specs[0].batch
        tiny = write_batches({first: batches[first].head(5)}, Path(tmp) / "floor")
        timings: dict[str, list[float]] = {
            "gx_sql": [],
            "gx_pandas": [],
            "plain_duckdb": [],
            "gx_floor": [],
        }
        results = {}
        for _ in range(repeats):
            for engine in ("pandas", "sql"):
                run = run_suites(specs, paths, engine=engine, row_counts=rows)
                timings[f"gx_{engine}"].append(run.seconds)
                results[engine] = {k: sorted(v) for k, v in run.failures.items()}
            floor = run_suites(specs[:1], tiny, engine="sql", row_counts={first: 5})
            timings["gx_floor"].append(floor.seconds)
            t = time.perf_counter()
            plain = judge_plain(specs, paths)
            timings["plain_duckdb"].append(time.perf_counter() - t)
            results["plain"] = {k: sorted(v) for k, v in plain.items()}
    if not results["pandas"] == results["sql"] == results["plain"]:
        raise SystemExit(
            "the three judges disagree: " + repr({k: len(v) for k, v in results.items()})
        )
    out = {"gx_import": gx_import, "read": t_read, "build": t_build}
    out.update({k: statistics.median(v) for k, v in timings.items()})
    out.update(
        specs=float(len(specs)),
        rows=float(sum(rows.values())),
        findings=float(sum(len(v) for v in results["plain"].values())),
    )
    return out


def main() -> None:
    """Run the benchmark (see the module docstring)."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--warehouse", type=Path, required=True)
    ap.add_argument("--day", type=date.fromisoformat, required=True)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    res = judge_timings(args.warehouse, args.day, args.repeats)
    print(
        f"day {args.day}: {res['rows']:.0f} batch rows, {res['specs']:.0f} expectations, "
        f"{res['findings']:.0f} unexpected rows"
    )
    print()
    print("| step | median s |")
    print("|---|---|")
    print(f"| GX import + context (once per process) | {res['gx_import']:.2f} |")
    print(f"| read marts + staging summary (DuckDB) | {res['read']:.2f} |")
    print(f"| build batches (Polars) | {res['build']:.2f} |")
    for name in ("gx_pandas", "gx_sql", "plain_duckdb"):
        print(f"| judge: {name} | {res[name]:.3f} |")
    print(f"| GX's floor: one expectation on five rows (sql) | {res['gx_floor']:.3f} |")
    print(f"\nGX (sql) / one plain query: {res['gx_sql'] / res['plain_duckdb']:.1f}x")
    print(f"GX's floor / one plain query: {res['gx_floor'] / res['plain_duckdb']:.1f}x")


if __name__ == "__main__":
    main()
