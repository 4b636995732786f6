"""Build a warehouse holding N days of the test-scale sample (no validation), for history tests.

Usage: ``uv run python -m benchmarks.build_history <root> [--days 365]``
(about 1 s per day on a 2-core machine).
"""

from __future__ import annotations

import argparse
import time
from datetime import date, timedelta
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("root", type=Path)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--first", default="2024-01-01")
    args = ap.parse_args()

    from zwy.pipeline import run_day
    from zwy.sample.generate import generate_district
    from zwy.settings import Settings

    first = date.fromisoformat(args.first)
    days = [first + timedelta(days=i) for i in range(args.days)]
    t0 = time.perf_counter()
    generate_district(args.root / "sample", days, scale="test")
    settings = Settings.for_district(args.root / "data", args.root / "sample")
    for i, d in enumerate(days):
        run_day(d, settings, validate=False)
        if i % 30 == 0:
            print(f"{d} ({i + 1}/{len(days)}) {time.perf_counter() - t0:.0f} s", flush=True)
    print(f"built {len(days)} days in {time.perf_counter() - t0:.0f} s: {args.root / 'data'}")


if __name__ == "__main__":
    main()
