"""One district night scheduled as ``yizhuang_nightly`` runs it: each task its own process.

The whole-night benchmark's main line runs the stages one after the other in one process.
Airflow does not: each task is a process of its own (paying its own imports), and the four
streams' ``parse_stream`` → ``transform_stream`` chains run side by side, up to the
executor's parallelism (4 in the embedded default and the production examples), the parses
taking turns in the one-slot pool ``zwy_parse`` while a transform may run beside them; then
``load_day``, ``validate_day``, ``publish`` and the alerts one at a time (the one-slot
writer pool and the graph's edges). This module replays that schedule without Airflow's own
start-up (no scheduler, no metadata database), so the number is the night's work as the DAG
lays it out, including what running streams side by side costs in memory.

Used by ``benchmarks.run_benchmark`` (``--schedule``); one task per process:
``python -m benchmarks.dag_night TASK DAY DATA_DIR DISTRICT [STREAM]`` writes
``<DATA_DIR>/_tasks/<name>.json`` with its wall time, CPU time, peak RSS and result.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from zwy.airflow_local import PARSE_POOL, POOLS

#: The executor's parallelism: task processes at once (AIRFLOW__CORE__PARALLELISM).
PARALLELISM = 4
#: Parse tasks at once: the slots of the DAG's ``zwy_parse`` pool as ``zwy demo`` creates it.
PARSE_SLOTS = {name: slots for name, slots, _ in POOLS}[PARSE_POOL]


@dataclass
class _Task:
    name: str  # e.g. "parse.exhaust_gas", as in the sequential table
    args: list[str]  # task kind, then stream (if any)
    after: list[str] = field(default_factory=list)


def _graph(streams: tuple[str, ...]) -> list[_Task]:
    """The DAG's tasks in its priority order (Airflow's downstream weights: parses first)."""
    tasks = [_Task(f"parse.{s}", ["parse", s]) for s in streams]
    tasks += [_Task(f"transform.{s}", ["transform", s], [f"parse.{s}"]) for s in streams]
    tasks.append(_Task("load", ["load"], [f"transform.{s}" for s in streams]))
    tasks.append(_Task("validate", ["validate"], ["load"]))
    tasks.append(_Task("publish", ["publish"], ["validate"]))
    tasks.append(_Task("alerts_queued", ["alerts"], ["publish"]))
    return tasks


def _rss(pid: int) -> int:
    """Resident bytes of ``pid`` and its child processes (0 once it has gone)."""
    total = 0
    pids = [pid]
    while pids:
        p = pids.pop()
        try:
            with open(f"/proc/{p}/statm") as fh:
                total += int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            with open(f"/proc/{p}/task/{p}/children") as fh:
                pids.extend(int(c) for c in fh.read().split())
        except (OSError, ValueError):
            continue
    return total


def dag_night(
    data: Path,
    district: Path,
    day: date,
    streams: tuple[str, ...],
    parse_slots: int | None = PARSE_SLOTS,
) -> dict[str, Any]:
    """Run one night under the DAG's schedule; return per-task and whole-night measures.

    ``parse_slots``: parse tasks at once (the ``zwy_parse`` pool); None: no pool, as many as
    the parallelism allows.

    Returns:
        ``{"tasks": {name: {"wall_s", "cpu_s", "peak_rss_mb", "import_s", "start_s",
        "rows"}}, ...}`` (rows: frames found by a parse, readings of a transform),
        then ``"wall_s", "cpu_s", "peak_rss_mb", "parallelism"``; the night's peak RSS is the
        largest sum over the task processes alive at the same moment (sampled every 20 ms).

    Raises:
        RuntimeError: a task process failed (its stderr's tail in the message).

    """
    tasks = _graph(streams)
    results = data / "_tasks"
    results.mkdir(parents=True, exist_ok=True)
    running: dict[str, subprocess.Popen[bytes]] = {}
    done: set[str] = set()
    starts: dict[str, float] = {}
    peak = 0
    lock = threading.Lock()
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            with lock:
                pids = [p.pid for p in running.values()]
            peak = max(peak, sum(_rss(p) for p in pids))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    t0 = time.perf_counter()
    c0 = os.times()
    sampler.start()
    try:
        while len(done) < len(tasks):
            for t in tasks:
                ready = all(d in done for d in t.after)
                if t.name in done or t.name in running or not ready:
                    continue
                if len(running) >= PARALLELISM:
                    break
                parsing = sum(n.startswith("parse.") for n in running)
                if parse_slots and t.args[0] == "parse" and parsing >= parse_slots:
                    continue
                cmd = [sys.executable, "-m", "benchmarks.dag_night", t.args[0], day.isoformat()]
                cmd += [str(data), str(district), *t.args[1:]]
                with lock:
                    starts[t.name] = time.perf_counter() - t0
                    running[t.name] = subprocess.Popen(cmd, stderr=subprocess.PIPE)
            time.sleep(0.01)
            for name, proc in list(running.items()):
                if proc.poll() is None:
                    continue
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                with lock:
                    del running[name]
                if proc.returncode != 0:
                    raise RuntimeError(f"task {name} exited {proc.returncode}:\n{err[-3000:]}")
                done.add(name)
    finally:
        stop.set()
        sampler.join()
        for proc in running.values():
            proc.kill()
            proc.wait()
    wall = time.perf_counter() - t0
    c1 = os.times()
    cpu = (c1.children_user - c0.children_user) + (c1.children_system - c0.children_system)
    per_task = {}
    for t in tasks:
        rec = json.loads((results / f"{t.name}.json").read_text())
        out = rec.pop("result", None) or {}
        rows = out.get("frames_found", out.get("readings"))
        per_task[t.name] = {**rec, "start_s": round(starts[t.name], 2), "rows": rows}
    return {
        "tasks": per_task,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "peak_rss_mb": round(peak / 1e6),
        "parallelism": PARALLELISM,
        "parse_slots": parse_slots,
    }


def _peak_rss() -> int:
    """This process's peak resident bytes since its ``exec`` (``VmHWM``).

    Not ``ru_maxrss``: Linux carries that over ``execve`` from the forking parent, so every
    task would report the benchmark process's own peak.
    """
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def _run_task(kind: str, day: date, data: Path, district: Path, stream: str | None) -> None:
    """Run one task in this process, as an Airflow task process would, and record it."""
    t0 = time.perf_counter()
    import zwy  # noqa: F401  # first: the package sets Polars' allocator default
    from zwy.settings import Settings

    settings = Settings.for_district(data, district)
    state = data / "_tasks" / "state.json"  # what the DAG passes on through XCom
    # Each task imports what its DAG task imports (GX only in validate, charts in alerts).
    out: dict[str, Any] | None = None
    if kind in ("parse", "transform") and stream:
        from zwy.pipeline import parse_stream, transform_stream

        imported = time.perf_counter() - t0
        out = (parse_stream if kind == "parse" else transform_stream)(day, stream, settings)
    elif kind == "load":
        from zwy.pipeline import load_day

        imported = time.perf_counter() - t0
        out = load_day(day, settings=settings)
        passed = {"affected_days": out.get("affected_days"), "run_id": out["run_id"]}
        state.write_text(json.dumps(passed))
    elif kind == "validate":
        from zwy.validate import validate_loaded

        imported = time.perf_counter() - t0
        out = validate_loaded(day, json.loads(state.read_text())["affected_days"], settings)
    elif kind == "publish":
        from zwy.pipeline import publish_day

        imported = time.perf_counter() - t0
        loaded = json.loads(state.read_text())
        out = publish_day(day, settings, loaded["affected_days"], loaded["run_id"])
    elif kind == "alerts":
        from zwy.alerts import queue_alerts

        imported = time.perf_counter() - t0
        queue_alerts(day, settings)
    else:
        raise SystemExit(f"unknown task {kind!r} (stream {stream!r})")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)  # chart workers, once waited for
    name = ("alerts_queued" if kind == "alerts" else kind) + (f".{stream}" if stream else "")
    record = {
        "wall_s": round(time.perf_counter() - t0, 3),
        "import_s": round(imported, 3),
        "cpu_s": round(usage.ru_utime + usage.ru_stime + kids.ru_utime + kids.ru_stime, 2),
        "peak_rss_mb": round(_peak_rss() / 1e6),
        "result": out,
    }
    (data / "_tasks" / f"{name}.json").write_text(json.dumps(record, default=str))


if __name__ == "__main__":
    _kind, _day, _data, _district, *_stream = sys.argv[1:]
    _run_task(
        _kind,
        date.fromisoformat(_day),
        Path(_data),
        Path(_district),
        _stream[0] if _stream else None,
    )
    # Airflow 3 ends a task process with os._exit once the task has returned (the task
    # SDK's supervisor, ``_fork_main``), so the interpreter's finalization never runs
    # there. Here it would: tearing down GX's modules took 0.8-1.0 s after validate's work
    # was done, the other tasks' 0.2 s (measured), all of it on the night's critical path.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
