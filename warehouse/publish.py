"""Publish the warehouse as a consistent, read-only snapshot for analysts.

DuckDB lets one process write a file and locks it against every other process: analysts
cannot open the warehouse itself while the nightly load runs, and an open analyst session
would block the load. So analysts never open it. After each run the publisher (the single
writer's last step) writes a **snapshot** they open instead:

``<published>/zwy.duckdb``
    a small DuckDB file holding only views (over Parquet files), the analysts' model
    (``v_*`` views with comments) and ``meta_publish`` (which publish, which runs). It is
    written under a temporary name and renamed over the previous one: a session that has
    the old file open keeps reading the old snapshot, every new session sees the new one,
    and nobody ever sees a half-published day.
``<published>/files/<table>/...``
    immutable Parquet files: the staging partitions (``stg_readings``, ``stg_packets``) are
    *hard links* to the loader's own files (no copy; they survive the loader replacing its
    file on a rerun), and every other table is exported **partition by partition** (its
    day column), only for the days the runs since the last publish touched. A month is
    exported again as **one file** once it is closed (:data:`COMPACT_AFTER_DAYS` after its
    end; a day that changes later re-exports its month) unless it holds more than
    :data:`COMPACT_MAX_ROWS` rows, so a year of a small table is about twelve files, not
    365, for the catalog to list and for analysts' queries to open. The cost of a publish
    is that of the days it republishes, not of the history (plus, once a month, the small
    tables' month).

Superseded files stay while one of the last ``keep`` snapshots still lists them (a reader
may hold an old snapshot open) and are removed after that.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from warehouse.partitions import (
    STAGING_TABLES,
    current_partitions,
    parquet_dir_of,
    sql_string,
    view_sql,
)
from zwy.errors import WarehouseError

#: DuckDB tables published partition by partition: table -> its day column.
PARTITIONED: dict[str, str] = {
    "raw_ingest_files": "batch_day",
    "raw_quarantine": "batch_day",
    "mart_hourly_values": "local_day",
    "mart_daily_values": "local_day",
    "breaches": "local_day",
    "dq_issues": "local_day",
    "stg_waste_ledger": "batch_day",
    "stg_waste_manifests": "batch_day",
    "stg_station_hourly": "batch_day",
    "mart_dust_hourly": "local_day",
}
#: Small tables published whole every time (reference data, runs, the alert outbox).
WHOLE: tuple[str, ...] = (
    "ref_facilities",
    "ref_outlets",
    "ref_monitoring_points",
    "ref_hw_codes",
    "ref_receivers",
    "ref_dust_sites",
    "ops_runs",
    "ops_validations",
    "alert_outbox",
    "alert_items",
)
#: Columns never published: where the alert mail bodies are (their subjects, statuses and
#: hashes are; the bodies are files beside the writer's warehouse, see warehouse.messages).
PRIVATE_COLUMNS: dict[str, tuple[str, ...]] = {"alert_outbox": ("message_file",)}


def _select_list(table: str) -> str:
    private = PRIVATE_COLUMNS.get(table)
    return f"* exclude ({', '.join(private)})" if private else "*"


CATALOG = "zwy.duckdb"
MANIFEST = "manifest.json"

#: A month of a partitioned table is published as one file once the table holds a day this
#: many days after the month's end (late packets for the month then rarely come, and a day
#: that changes in a compacted month re-exports that month).
COMPACT_AFTER_DAYS = 7
#: ...unless the month holds more rows than this: its day files are then big enough on
#: their own (a district month of hourly marts is 9.2 M rows, and exporting it as one file
#: took 14.6 s, measured), and it stays day by day.
COMPACT_MAX_ROWS = 1_000_000
#: How a closed month is published (the manifest's ``month_layout``, decided once).
ONE_FILE, BY_DAY = "one_file", "by_day"
#: The folder of a month's file: ``<table>/<column>_month=YYYY-MM/``.
_MONTH_FOLDER = "_month="


@dataclass
class PublishResult:
    """What one publish did."""

    publish_id: str
    catalog: Path
    exported: dict[str, int] = field(default_factory=dict)  # table -> partitions written
    linked: int = 0  # staging files newly hard-linked (or copied)
    removed: int = 0  # superseded files deleted
    seconds: float = 0.0
    bytes_written: int = 0


#: Present while a publish writes files: found at the start of the next one, it says a
#: publish crashed and may have left files no manifest lists (see _collect_garbage).
IN_FLIGHT = ".publishing"


def published_dir(warehouse: Path) -> Path:
    """Default snapshot folder: ``<warehouse dir>/published``."""
    return warehouse.parent / "published"


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in con.execute("select table_name from duckdb_tables()").fetchall()}


def _load_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    if not path.is_file():
        return {"tables": {}, "history": []}
    return dict(json.loads(path.read_text(encoding="utf-8")))


def _link(src: Path, dst: Path) -> int:
    """Hard-link ``src`` to ``dst`` (copy across file systems); return bytes copied."""
    if dst.exists():
        return 0
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
        return 0
    except OSError:
        shutil.copy2(src, dst)
        return dst.stat().st_size


def _export(con: duckdb.DuckDBPyConnection, query: str, params: list[Any], target: Path) -> int:
    """Write the rows of ``query`` to the Parquet file ``target``; return its size."""
    target.parent.mkdir(parents=True, exist_ok=True)
    con.execute(
        f"copy ({query}) to {sql_string(target.as_posix())} (format parquet, compression zstd)",
        params,
    )
    return target.stat().st_size


def publish(
    con: duckdb.DuckDBPyConnection,
    folder: Path,
    days: Iterable[date] | None = None,
    run_ids: Sequence[str] = (),
    keep: int = 3,
) -> PublishResult:
    """Publish a snapshot of the warehouse ``con`` (read-write: the caller is the writer).

    Args:
        con: connection to the warehouse.
        folder: the snapshot folder.
        days: the days whose partitions changed since the last publish (batch days and the
            local days their loads rebuilt); None republishes every partition (first publish,
            repair).
        run_ids: the runs this snapshot completes (recorded in ``meta_publish``).
        keep: snapshots whose files are kept for sessions that still have them open.

    Raises:
        WarehouseError: a file cannot be written or the catalog cannot be built.

    """
    t0 = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    files_dir = folder / "files"
    manifest = _load_manifest(folder)
    marker = folder / IN_FLIGHT
    # A full republish, or the marker of a publish that never finished: scan everything.
    full_scan = days is None or marker.exists()
    marker.write_text("in flight\n", encoding="utf-8")
    publish_id = f"{datetime.now(tz=UTC):%Y%m%dT%H%M%S}_{uuid.uuid4().hex[:6]}"
    result = PublishResult(publish_id, folder / CATALOG)
    present = _tables(con)
    tables: dict[str, dict[str, str]] = {t: dict(v) for t, v in manifest.get("tables", {}).items()}
    wanted = None if days is None else sorted({d.isoformat() for d in days})
    columns = _columns(con)
    published_columns = manifest.get("columns", {})
    layouts: dict[str, dict[str, str]] = {
        t: dict(v) for t, v in manifest.get("month_layout", {}).items()
    }
    try:
        for table, column in PARTITIONED.items():
            if table not in present:
                continue
            parts = tables.setdefault(table, {})
            layout = layouts.setdefault(table, {})
            if wanted is not None and published_columns.get(table) == columns.get(table):
                todo = wanted
            else:
                # A full republish; or a table whose columns changed (a migration),
                # republished whole: every file of a view has the same columns, so views
                # never need union_by_name.
                todo = [
                    str(r[0])
                    for r in con.execute(
                        f"select distinct {column} from {table} where {column} is not null order by 1"
                    ).fetchall()
                ]
                parts.clear()
                layout.clear()
            # How a month is published is decided once, when it closes.
            for month in sorted(closed_months([*parts, *todo]) - set(layout)):
                layout[month] = (
                    ONE_FILE
                    if _month_rows(con, table, column, month) <= COMPACT_MAX_ROWS
                    else BY_DAY
                )
            one_file = {m for m, how in layout.items() if how == ONE_FILE}
            months: set[str] = set()  # months to write as one file now
            for day in todo:
                if day[:7] in one_file:
                    months.add(day[:7])  # its rows go into the month's file
                    continue
                n = con.execute(
                    f"select count(*) from {table} where {column} = ?", [day]
                ).fetchone()
                if not n or not n[0]:
                    parts.pop(day, None)
                    continue
                rel = f"{table}/{column}={day}/{table}_{publish_id}.parquet"
                result.bytes_written += _export(
                    con,
                    f"select {_select_list(table)} from {table} where {column} = ? order by all",
                    [day],
                    files_dir / rel,
                )
                parts[day] = rel
                result.exported[table] = result.exported.get(table, 0) + 1
            # A closed month still published day by day is compacted now (once).
            months |= {
                d[:7] for d, rel in parts.items() if d[:7] in one_file and not _is_month_file(rel)
            }
            for month in sorted(months):
                written = _export_month(con, table, column, month, files_dir, publish_id)
                for d in [d for d in parts if d[:7] == month]:
                    del parts[d]
                if written is not None:
                    rel, month_days, size = written
                    parts.update(dict.fromkeys(month_days, rel))
                    result.bytes_written += size
                    result.exported[table] = result.exported.get(table, 0) + 1
        for table in WHOLE:
            if table not in present:
                continue
            rel = f"{table}/{table}_{publish_id}.parquet"
            result.bytes_written += _export(
                con, f"select {_select_list(table)} from {table}", [], files_dir / rel
            )
            tables[table] = {"*": rel}
        # The staging partitions: hard links of the loader's current files (a partition
        # may be several files, one per stream: keyed by day and file name). A file the
        # last snapshot lists is linked already (its name is unique, its bytes never
        # change): only the new ones are linked, not a year's thousands every night
        # (all of them on a full republish or after a crashed one).
        source = parquet_dir_of(con)
        linked = {
            rel for t in STAGING_TABLES for rel in manifest.get("tables", {}).get(t, {}).values()
        }
        staged: dict[str, dict[str, str]] = {}
        for part in current_partitions(con):
            key = f"{part.batch_day.isoformat()}/{part.file.rsplit('/', 1)[-1]}"
            rel = f"{part.table_name}/batch_day={key}"
            if full_scan or rel not in linked:
                result.bytes_written += _link(source / part.file, files_dir / rel)
                result.linked += 1
            staged.setdefault(part.table_name, {})[key] = rel
        for t in STAGING_TABLES:
            tables[t] = staged.get(t, {})
        comments = _comments(con)
        _write_catalog(folder, files_dir, tables, columns, comments, publish_id, run_ids)
    except (duckdb.Error, OSError) as exc:
        raise WarehouseError(f"publish {publish_id} to {folder} failed: {exc}") from exc
    every = [*manifest.get("history", []), {"publish_id": publish_id, "tables": tables}]
    history, dropped = every[-keep:], every[:-keep]
    (folder / MANIFEST).write_text(
        json.dumps(
            {
                "publish_id": publish_id,
                "tables": tables,
                "columns": columns,
                "month_layout": layouts,
                "history": history,
            },
            # Compact: three snapshots of a year of files are over 1 MB, rewritten every night.
            separators=(",", ":"),
        ),
        encoding="utf-8",
    )
    result.removed = _collect_garbage(files_dir, history, None if full_scan else _files_of(dropped))
    marker.unlink(missing_ok=True)
    result.seconds = time.perf_counter() - t0
    return result


def closed_months(days: Iterable[str], after_days: int = COMPACT_AFTER_DAYS) -> set[str]:
    """Return the closed months (``YYYY-MM``) of ``days`` (ISO dates).

    A month is closed when its last day is at least ``after_days`` before the newest of
    ``days``.
    """
    listed = sorted(set(days))
    if not listed:
        return set()
    newest = date.fromisoformat(listed[-1])
    out: set[str] = set()
    for month in {d[:7] for d in listed}:
        last = _month_bounds(month)[1] - timedelta(days=1)
        if (newest - last).days >= after_days:
            out.add(month)
    return out


def _month_bounds(month: str) -> tuple[date, date]:
    """Return the first day of ``month`` (``YYYY-MM``) and the first day of the next."""
    first = date.fromisoformat(f"{month}-01")
    return first, (first.replace(day=28) + timedelta(days=4)).replace(day=1)


def _in_month(column: str) -> str:
    """Return the SQL condition on ``column`` for the two parameters of :func:`_month_bounds`."""
    return f"{column} >= ? and {column} < ?"


def _month_rows(con: duckdb.DuckDBPyConnection, table: str, column: str, month: str) -> int:
    n = con.execute(
        f"select count(*) from {table} where {_in_month(column)}", list(_month_bounds(month))
    ).fetchone()
    return int(n[0]) if n else 0


def _is_month_file(rel: str) -> bool:
    return _MONTH_FOLDER in rel


def _export_month(
    con: duckdb.DuckDBPyConnection,
    table: str,
    column: str,
    month: str,
    files_dir: Path,
    publish_id: str,
) -> tuple[str, list[str], int] | None:
    """Export the rows of ``month`` of ``table`` as one file: (rel, days in it, size), or None."""
    bounds = list(_month_bounds(month))
    days = [
        str(r[0])
        for r in con.execute(
            f"select distinct {column} from {table} where {_in_month(column)} order by 1", bounds
        ).fetchall()
    ]
    if not days:
        return None
    rel = f"{table}/{column}{_MONTH_FOLDER}{month}/{table}_{publish_id}.parquet"
    size = _export(
        con,
        f"select {_select_list(table)} from {table} where {_in_month(column)} order by all",
        bounds,
        files_dir / rel,
    )
    return rel, days, size


def _columns(con: duckdb.DuckDBPyConnection) -> dict[str, list[list[str]]]:
    """Columns and types of every published DuckDB table, in table order."""
    out: dict[str, list[list[str]]] = {}
    for table, column, dtype in con.execute(
        "select table_name, column_name, data_type from duckdb_columns() "
        "where not internal order by table_name, column_index"
    ).fetchall():
        if (table in PARTITIONED or table in WHOLE) and column not in PRIVATE_COLUMNS.get(
            table, ()
        ):
            out.setdefault(table, []).append([column, dtype])
    return out


def _comments(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[str | None, dict[str, str]]]:
    out: dict[str, tuple[str | None, dict[str, str]]] = {}
    for name, comment in con.execute(
        "select table_name, comment from duckdb_tables() union all "
        "select view_name, comment from duckdb_views() where not internal"
    ).fetchall():
        out[name] = (comment, {})
    for table, column, comment in con.execute(
        "select table_name, column_name, comment from duckdb_columns() where comment is not null"
    ).fetchall():
        if table in out:
            out[table][1][column] = comment
    return out


def _write_catalog(
    folder: Path,
    files_dir: Path,
    tables: dict[str, dict[str, str]],
    columns: dict[str, list[list[str]]],
    comments: dict[str, tuple[str | None, dict[str, str]]],
    publish_id: str,
    run_ids: Sequence[str],
) -> None:
    from warehouse.model import create_model

    tmp = folder / f".{CATALOG}.{publish_id}.tmp"
    tmp.unlink(missing_ok=True)
    cat = duckdb.connect(str(tmp))
    try:
        for table in sorted(set(tables) | set(columns)):
            # A month's file stands for each of its days: listed once.
            rels = sorted(set(tables.get(table, {}).values()))
            if table in STAGING_TABLES:
                base = files_dir.as_posix()  # strings, not Paths (see below)
                sql = view_sql(table, [f"{base}/{rel}" for rel in rels], union_by_name=False)
            else:
                cols = columns.get(table, [])
                if not cols:
                    continue
                if rels:
                    # Strings, not Paths: a year of history is thousands of files a night.
                    base = files_dir.as_posix()
                    listing = ", ".join(sql_string(f"{base}/{rel}") for rel in rels)
                    typed = ", ".join(f'cast("{c}" as {t}) as "{c}"' for c, t in cols)
                    # hive_partitioning off: the day column is in the files themselves.
                    sql = (
                        f"select {typed} from read_parquet([{listing}], hive_partitioning = false)"
                    )
                else:  # nothing to publish yet: an empty view with the table's columns
                    typed = ", ".join(f'cast(null as {t}) as "{c}"' for c, t in cols)
                    sql = f"select {typed} where false"
            cat.execute(f"create view {table} as {sql}")
            comment, col_comments = comments.get(table, (None, {}))
            if comment:
                cat.execute(f"comment on view {table} is {sql_string(comment)}")
            published = {c for c, _ in columns.get(table, [])} or None
            for col, text in col_comments.items():
                if published is not None and col not in published:
                    continue  # a column the snapshot leaves out (the outbox's mail bodies)
                cat.execute(f'comment on column {table}."{col}" is {sql_string(text)}')
        create_model(cat)
        cat.execute(
            "create table meta_publish as select ? as publish_id, now() as published_at, "
            "?::varchar[] as run_ids",
            [publish_id, list(run_ids)],
        )
        cat.execute(
            "comment on table meta_publish is "
            "'the snapshot: its id, when it was published, the runs it completes'"
        )
        cat.execute("checkpoint")
    finally:
        cat.close()
    os.replace(tmp, folder / CATALOG)


def _files_of(snapshots: list[dict[str, Any]]) -> set[str]:
    """Files (relative to the files folder) that any of ``snapshots`` lists."""
    return {rel for h in snapshots for parts in h["tables"].values() for rel in parts.values()}


def _collect_garbage(
    files_dir: Path, history: list[dict[str, Any]], candidates: set[str] | None
) -> int:
    """Delete files no kept snapshot lists (on a full scan: and older than a minute).

    ``candidates``: the files to consider (those of the snapshots that just left the kept
    window); None scans the whole folder, which also finds the files of a publish that
    crashed before its manifest was written. Scanning costs a stat per file of the
    history (0.18 s of a night at a year of history, measured), so it runs only on full
    republishes and after a crashed publish (:data:`IN_FLIGHT` left behind).
    """
    keep = _files_of(history)
    removed = 0
    # Only a full scan can meet files of a publish in flight (named by no manifest yet);
    # a dropped snapshot's files are never new. (The age test on those left the files of
    # a quick succession of publishes, a backfill's, in the folder for good.)
    cutoff = time.time() - 60 if candidates is None else math.inf
    paths = (
        list(files_dir.rglob("*.parquet"))  # listed first: emptied folders go below
        if candidates is None
        else (files_dir / rel for rel in sorted(candidates - keep))
    )
    for path in paths:
        rel = path.relative_to(files_dir).as_posix()
        try:
            old = path.stat().st_mtime < cutoff
        except FileNotFoundError:
            continue
        if rel not in keep and old:
            path.unlink(missing_ok=True)
            removed += 1
            # A day's folder empties once its month is compacted: no empty folders left.
            with contextlib.suppress(OSError):
                path.parent.rmdir()
    return removed
