"""The cost of one night as the warehouse's history grows (1, 90, 365 days...).

Usage: ``uv run python -m benchmarks.history_cost <root> [--histories 1 90 365] [--repeats 7]``

Builds (once, cached under ``<root>``) a test-scale sample of ``max(histories) + 1`` days.
The night is always the last of them, so every history runs the same inbox, with the same
planted faults and findings; a history of H days is the H days before it. For each H a
warehouse holding those days is built (or reused), copied, and the night is run on the copy
end to end (parse, transform, load, validate, report, publish) ``--repeats`` times, the
repeats interleaved across the histories; medians per stage and the ratio to the shortest
history are printed. The test scale keeps a year buildable in minutes; the cost that could
grow with history (loader, marts, validation, publish) is what is compared.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import time
from datetime import date, timedelta
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("root", type=Path)
    ap.add_argument("--histories", type=int, nargs="+", default=[1, 90, 365])
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()

    from benchmarks.run_benchmark import warm
    from zwy.pipeline import run_day
    from zwy.sample.generate import generate_district
    from zwy.settings import Settings

    first = date(2024, 1, 1)
    longest = max(args.histories)
    days = [first + timedelta(days=i) for i in range(longest + 1)]
    sample = args.root / "sample"
    if not (sample / "inbox" / days[-1].isoformat()).is_dir():
        generate_district(sample, days, scale="test")
    night = days[-1]
    bases = {}
    for h in sorted(args.histories):
        base = args.root / f"history_{h}_before_{night.isoformat()}"
        settings = Settings.for_district(base, sample)
        if not (base / "warehouse" / "zwy.duckdb").exists():
            for d in days[longest - h : longest]:
                run_day(d, settings, validate=False)
        bases[h] = base
    # Repeats interleaved across the histories (1, 90, 365, 1, 90, 365, ...): a slow spell
    # of this shared machine then hits every history alike instead of one of them.
    stages: dict[int, dict[str, list[float]]] = {h: {} for h in bases}
    for _ in range(args.repeats):
        for h, base in bases.items():
            work = args.root / "work"
            shutil.rmtree(work, ignore_errors=True)
            shutil.copytree(base, work)
            # The copy's dirty pages would be written back during the night, and the
            # longer the history the more of them: flush first, so only the night counts.
            os.sync()
            # The night's logs as a night finds them, just arrived (see run_benchmark.warm).
            warm([sample / "inbox" / night.isoformat()])
            s = Settings.for_district(work, sample)
            t0 = time.perf_counter()
            summary = run_day(night, s)
            stages[h].setdefault("night", []).append(time.perf_counter() - t0)
            for st in summary.stages:
                if st["stream"] is None:
                    stages[h].setdefault(st["name"], []).append(st["duration_s"])
    rows = [(h, {k: statistics.median(v) for k, v in stages[h].items()}) for h in bases]
    base_costs = rows[0][1]
    names = list(base_costs)
    print("| history (days) | " + " | ".join(names) + " | night ratio |")
    print("|---:|" + "---:|" * (len(names) + 1))
    for h, med in rows:
        cells = " | ".join(f"{med.get(n, 0):.2f}" for n in names)
        print(f"| {h} | {cells} | {med['night'] / base_costs['night']:.2f}x |")


if __name__ == "__main__":
    main()
