"""Profile one district night stage by stage with pyinstrument; write what dominates.

Usage: ``uv run python -m benchmarks.profile_night [--scale benchmark] [--out benchmarks/out]``

Uses the district the whole-night benchmark generated (generates it when missing), runs
parse → transform for every stream, then load → validate → publish → alerts queued, each
under its own pyinstrument profiler, and writes ``<out>/profile/<stage>.txt`` (call tree,
frames of at least 2 % of the stage) and ``<out>/profile/<stage>.html``. The summary on
stdout lists each stage's wall time and its three most expensive functions of this
project (self time plus callees), which is where to look first.
"""

from __future__ import annotations

import argparse
import shutil
import time
from collections.abc import Callable
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any

DAY = date(2024, 5, 1)


def _own_hotspots(session: Any, root_dir: Path, top: int = 3) -> list[tuple[str, float]]:
    """The ``top`` project functions by total time (each function counted once per path)."""
    totals: dict[str, float] = {}

    def walk(frame: Any, seen: frozenset[str]) -> None:
        path = frame.file_path or ""
        name = f"{frame.function} ({Path(path).name}:{frame.line_no})"
        ours = str(root_dir) in path and ".venv" not in path
        if ours and name not in seen:
            totals[name] = totals.get(name, 0.0) + frame.time
            seen = seen | {name}
        for child in frame.children:
            walk(child, seen)

    root = session.root_frame()
    if root is None:
        return []
    walk(root, frozenset())
    # The harness, the stage decorators and the stage's own entry function hold the whole
    # stage's time and say nothing about where it goes: a function holding 90 % of the
    # stage is one of them (or the stage is that one function, which its profile shows).
    skip = ("main", "<module>", "profile", "_stage", "stage ", "wrapper ")
    whole = 0.9 * root.time
    ranked = sorted(
        ((k, v) for k, v in totals.items() if not k.startswith(skip) and v < whole),
        key=lambda kv: -kv[1],
    )
    return ranked[:top]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out"))
    ap.add_argument("--scale", default="benchmark")
    args = ap.parse_args()

    from pyinstrument import Profiler

    from benchmarks.run_benchmark import district_dir
    from zwy.alerts import queue_alerts
    from zwy.contracts import STREAMS
    from zwy.pipeline import load_day, parse_stream, publish_day, transform_stream
    from zwy.sample.generate import generate_district
    from zwy.settings import Settings
    from zwy.validate import validate_loaded

    district = district_dir(args.out, args.scale)
    if not (district / "inbox" / DAY.isoformat() / "dust").is_dir():
        generate_district(district, [DAY], scale=args.scale)
    data = args.out / "profile-run"
    shutil.rmtree(data, ignore_errors=True)
    settings = Settings.for_district(data, district)
    prof_dir = args.out / "profile"
    prof_dir.mkdir(parents=True, exist_ok=True)
    root_dir = Path(__file__).resolve().parent.parent
    summary: list[tuple[str, float, list[tuple[str, float]]]] = []
    state: dict[str, Any] = {}

    def stage(name: str, fn: Callable[[], Any]) -> Any:
        profiler = Profiler(interval=0.005)
        t0 = time.perf_counter()
        profiler.start()
        res = fn()
        profiler.stop()
        dt = time.perf_counter() - t0
        (prof_dir / f"{name}.txt").write_text(
            profiler.output_text(unicode=True, color=False, show_all=False)
        )
        (prof_dir / f"{name}.html").write_text(profiler.output_html())
        session = profiler.last_session
        summary.append((name, dt, _own_hotspots(session, root_dir) if session else []))
        return res

    for stream in STREAMS:
        stage(f"parse.{stream}", partial(parse_stream, DAY, stream, settings))
        stage(f"transform.{stream}", partial(transform_stream, DAY, stream, settings))
    state["loaded"] = stage("load", partial(load_day, DAY, settings=settings))
    loaded = state["loaded"]
    stage("validate", partial(validate_loaded, DAY, loaded.get("affected_days"), settings))
    stage(
        "publish",
        partial(publish_day, DAY, settings, loaded.get("affected_days"), loaded["run_id"]),
    )
    stage("alerts_queued", partial(queue_alerts, DAY, settings))
    shutil.rmtree(data, ignore_errors=True)

    print("| stage | wall s | where the time goes (function: s, callees included) |")
    print("|---|---:|---|")
    for name, dt, hot in summary:
        spots = "; ".join(f"{fn}: {s:.2f}" for fn, s in hot)
        print(f"| {name} | {dt:.2f} | {spots} |")
    print(f"\nprofiles: {prof_dir}/<stage>.txt and .html")


if __name__ == "__main__":
    main()
