"""The cost of a district-scale night on a warehouse holding a district-scale year.

Usage: ``uv run python -m benchmarks.history_district <root> [--histories 1 365]
[--repeats 3]``

``benchmarks.history_cost`` builds its histories by loading every night, which is only
practical at test scale (a test-scale night is 2-4 s, so a fixed cost of a few tenths of
a second is a large ratio). A district night takes about 30 s and stages about 1 GB of
Parquet: a year of them would take three hours to build. This benchmark builds the year
another way (:func:`extend_history`): it loads one district night, then copies that
night's rows back in time, day by day, in every table that keeps history, and hard-links
its staging files under the earlier days' folders. Then it runs the next district night
(parse to publish as ``zwy run`` does, then the alerts queued) on a copy of the 1-day and of the H-day warehouse,
repeats interleaved, and prints the medians per stage, the ratio of the median nights and
the paired ratio (the median of each H-day night over the 1-day night run just before it,
which a slow spell of the VM spanning both cancels); every repeat's stages go to
``<root>/results.json`` with the machine.

What the copies reproduce is what can grow with history: the tables' rows and row groups,
the files each staging view lists, the published snapshot's files and catalog. What they
do not: the copied staging files keep the source night's bytes (their readings keep their
times; no query of another day reads them, since the loader and the controls pick files
by the days ``meta_partitions`` records, and those are moved), and monthly waste ledgers
are not copied (they arrive once a month, not every night); the copied alerts name
the source night's message files.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from warehouse.publish import PARTITIONED

if TYPE_CHECKING:
    from zwy.settings import Settings

#: Tables whose rows belong to a day, and that day's column: the rows copied back in time.
#: The published tables' day partitions, less the monthly waste ledgers (not a nightly
#: arrival), plus the runs and the alerts.
DAY_TABLES: dict[str, str] = {
    **{t: c for t, c in PARTITIONED.items() if t != "stg_waste_ledger"},
    "ops_runs": "day",
    "ops_validations": "day",
    "alert_outbox": "day",
}
#: Which rows of each table are the source night's (one ``?``: the night), in copy order.
_SOURCE_ROWS: dict[str, str] = {
    **{t: f"{c} = ?" for t, c in DAY_TABLES.items()},
    "alert_items": "alert_id in (select alert_id from alert_outbox where day = ?)",
    "meta_partitions": "batch_day = ?",
}
#: Text columns that are keys (or unique in practice): the day they name becomes the
#: copy's, and ``~<days back>`` is appended.
KEY_TEXT = frozenset({"run_id", "breach_id", "issue_id", "alert_id", "item_id", "manifest_no"})
#: Text columns that name their day (a staging file's path): the copy's day replaces it.
DAY_TEXT = frozenset({"file"})
_TIME_TYPES = ("DATE", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE")


#: Files the pipeline never changes once written: cloned as hard links.
IMMUTABLE = (".parquet", ".eml")


def clone_tree(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst``: Parquet files and alert messages as hard links, the rest copied.

    The warehouse never changes a Parquet file or an alert message once written (the
    loader, the publisher and the outbox write new names and delete old ones), so a link is
    as good as a copy and a year of district staging costs no space; the DuckDB file, the
    manifests and the rest are rewritten in place and must be copies.
    """
    for folder, _dirs, files in os.walk(src):
        here = Path(folder)
        there = dst / here.relative_to(src)
        there.mkdir(parents=True, exist_ok=True)
        for name in files:
            if name.endswith(IMMUTABLE):
                os.link(here / name, there / name)
            else:
                shutil.copy2(here / name, there / name)


def _shifted(con: duckdb.DuckDBPyConnection, table: str, source: date) -> str:
    """The ``SELECT`` list copying ``table``'s rows ``{back}`` days earlier, to ``{day}``.

    A template. Key texts may hold their day (``<day>|<control>|<subject>``, run ids): it
    is replaced by the copy's day, so that a copy's key is the one the pipeline would give
    that day's row (the next night's controls re-judge earlier days and must not collide).
    """
    cols = con.execute(
        "select column_name, data_type from duckdb_columns() "
        "where schema_name = 'main' and table_name = ? order by column_index",
        [table],
    ).fetchall()
    out = []
    for name, dtype in cols:
        q = f'"{name}"'
        if dtype == "DATE":
            expr = f"{q} - {{back}}"
        elif dtype in _TIME_TYPES:
            expr = f"{q} - interval {{back}} day"
        elif dtype == "DATE[]":
            expr = f"list_transform({q}, d -> d - {{back}})"
        elif name in KEY_TEXT and dtype == "VARCHAR":
            expr = f"replace({q}, '{source.isoformat()}', '{{day}}') || '~{{back}}'"
        elif name in DAY_TEXT and dtype == "VARCHAR":
            expr = f"replace({q}, '{source.isoformat()}', '{{day}}')"
        else:
            expr = q
        out.append(f"{expr} as {q}")
    return ", ".join(out)


def extend_history(warehouse: Path, source_day: date, days_back: int) -> dict[str, int]:
    """Copy the loaded ``source_day`` to the ``days_back`` days before it.

    Oldest day first, each a day of its own (as nights would have appended them): the rows
    of :data:`DAY_TABLES` whose day is ``source_day`` (and the alert items of its alerts),
    with every date and time moved back and :data:`KEY_TEXT` ids made unique; its staging
    files hard-linked under the earlier days' folders and recorded in
    ``meta_partitions``. The staging views are rebuilt and the snapshot republished in
    full. One transaction for the rows; run it on a warehouse no one else has open.

    Returns:
        Rows added per table (``meta_partitions``: the staging files linked).

    """
    from warehouse.db import connect
    from warehouse.partitions import create_views, parquet_dir_of
    from warehouse.publish import publish, published_dir

    added: Counter[str] = Counter()
    with connect(warehouse) as con:
        folder = parquet_dir_of(con)
        present = {r[0] for r in con.execute("select table_name from duckdb_tables()").fetchall()}
        files = [
            r[0]
            for r in con.execute(
                "select file from meta_partitions where batch_day = ?", [source_day]
            ).fetchall()
        ]
        tables = [t for t in _SOURCE_ROWS if t in present]
        select = {t: _shifted(con, t, source_day) for t in tables}
        con.execute("begin transaction")
        for back in range(days_back, 0, -1):
            day_iso = (source_day - timedelta(days=back)).isoformat()
            for table in tables:
                n = con.execute(
                    f"insert into {table} select {select[table].format(back=back, day=day_iso)} "
                    f"from {table} where {_SOURCE_ROWS[table]}",
                    [source_day],
                ).fetchone()
                added[table] += n[0] if n else 0
            for file in files:  # the files the copied meta_partitions rows name
                target = folder / file.replace(source_day.isoformat(), day_iso)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.link(folder / file, target)
        create_views(con, folder)
        con.execute("commit")
        con.execute("checkpoint")
        publish(con, published_dir(warehouse), days=None)
    return dict(added)


def _night(
    settings_for: Callable[[Path], Settings], night: date, base: Path, work: Path
) -> dict[str, float]:
    from benchmarks.run_benchmark import warm
    from zwy.alerts import queue_alerts
    from zwy.pipeline import run_day

    shutil.rmtree(work, ignore_errors=True)
    clone_tree(base, work)
    os.sync()  # the copy's dirty pages are not the night's to write back
    settings = settings_for(work)
    warm([settings.inbox / night.isoformat()])
    t0 = time.perf_counter()
    summary = run_day(night, settings)
    t1 = time.perf_counter()
    queue_alerts(night, settings)
    out = {"night": time.perf_counter() - t0, "alerts_queued": time.perf_counter() - t1}
    for st in summary.stages:
        key = st["name"] if st["stream"] is None else f"{st['name']}.{st['stream']}"
        out[key] = st["duration_s"]
    return out


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("root", type=Path)
    ap.add_argument("--histories", type=int, nargs="+", default=[1, 365])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--scale", default="benchmark", help="the sample's scale (test for a trial)")
    args = ap.parse_args(argv)

    import zwy  # noqa: F401  # first: as in ``zwy run``, the package sets Polars' allocator default
    from benchmarks.run_benchmark import DAY, machine
    from benchmarks.targets import history_verdicts, markdown
    from zwy.alerts import queue_alerts
    from zwy.pipeline import run_day
    from zwy.sample.generate import generate_district
    from zwy.settings import Settings

    source, night = DAY - timedelta(days=1), DAY
    sample = args.root / f"sample-{args.scale}"
    if not (sample / "inbox" / night.isoformat()).is_dir():
        t0 = time.perf_counter()
        generate_district(sample, [source, night], scale=args.scale)
        print(f"generated {sample} in {time.perf_counter() - t0:.0f} s", flush=True)

    def settings_for(data: Path) -> Settings:
        return Settings.for_district(data, sample)

    bases: dict[int, Path] = {}
    for h in sorted(args.histories):
        base = args.root / f"history_{h}_{args.scale}"
        if not (base / "warehouse" / "zwy.duckdb").exists():
            t0 = time.perf_counter()
            shutil.rmtree(base, ignore_errors=True)
            one = args.root / f"history_1_{args.scale}"
            if h == 1 or not (one / "warehouse" / "zwy.duckdb").exists():
                shutil.rmtree(one, ignore_errors=True)
                run_day(source, settings_for(one))
                queue_alerts(source, settings_for(one))
            if h > 1:
                clone_tree(one, base)
                added = extend_history(base / "warehouse" / "zwy.duckdb", source, h - 1)
                print(f"history {h}: {added}", flush=True)
            print(f"built {base} in {time.perf_counter() - t0:.0f} s", flush=True)
        bases[h] = base
    # Interleaved (1, 365, 1, 365, ...): a slow spell of the VM hits every history alike.
    runs: dict[int, list[dict[str, float]]] = {h: [] for h in bases}
    for r in range(args.repeats):
        for h, base in bases.items():
            res = _night(settings_for, night, base, args.root / "work")
            runs[h].append(res)
            print(f"repeat {r + 1}, {h} day(s): night {res['night']:.1f} s", flush=True)
    shutil.rmtree(args.root / "work", ignore_errors=True)
    names = [n for n in runs[min(runs)][0] if "." not in n]
    first = {n: statistics.median(x[n] for x in runs[min(runs)]) for n in names}
    print("\n| history (days) | " + " | ".join(names) + " | night ratio | paired ratio |")
    print("|---:|" + "---:|" * (len(names) + 2))
    summary: dict[int, dict[str, float]] = {}
    for h, rs in runs.items():
        med = {n: statistics.median(x.get(n, 0.0) for x in rs) for n in names}
        # Each repeat's night against the 1-day night run just before it: a slow spell of
        # the VM that spans the pair cancels out, one that hits only one night does not.
        paired = statistics.median(
            x["night"] / one["night"] for x, one in zip(rs, runs[min(runs)], strict=True)
        )
        summary[h] = {**med, "ratio": med["night"] / first["night"], "paired_ratio": paired}
        cells = " | ".join(f"{med[n]:.2f}" for n in names)
        print(f"| {h} | {cells} | {summary[h]['ratio']:.3f}x | {paired:.3f}x |")
    results: dict[str, Any] = {"machine": machine(), "repeats": runs, "medians": summary}
    judged = history_verdicts(summary)
    if judged:
        results["targets"] = [v.as_json() for v in judged]
        print("\n" + markdown(judged, args.scale))
    out = args.root / "results.json"
    out.write_text(json.dumps(results, indent=1, default=str))
    print(f"\nevery repeat's stages: {out}")


if __name__ == "__main__":
    main()
