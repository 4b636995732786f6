"""Loading one batch day into the warehouse, in one transaction.

A batch is what one day's inbox delivered. Raw and staging tables are partitioned by
``batch_day`` and replaced whole (``DELETE`` + ``INSERT … SELECT`` from Arrow, the fast path
in shared/PITFALLS.md); the marts are partitioned by ``local_day`` and the days a batch
touches are rebuilt from *all* staged readings of those days, so a late packet delivered
in batch D for day D-1 updates D-1, and reloading batch D gives the same marts again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date

import duckdb
import polars as pl

from zwy.contracts import (
    DAILY,
    FACILITIES,
    HOURLY,
    INGEST_FILES,
    MONITORING_POINTS,
    OUTLETS,
    PACKETS,
    QUARANTINE,
    READINGS,
    TZ_LOCAL,
    UTC_DT,
    conform,
)
from zwy.errors import AccountingError, WarehouseError

#: Rebuilds the marts from the staged readings of whole local days: (hourly, daily).
Rebuild = Callable[[pl.DataFrame], tuple[pl.DataFrame, pl.DataFrame]]

#: registry dict key → (table, contract)
REGISTRY_TABLES: dict[str, tuple[str, pl.Schema]] = {
    "facilities": ("ref_facilities", FACILITIES),
    "outlets": ("ref_outlets", OUTLETS),
    "monitoring_points": ("ref_monitoring_points", MONITORING_POINTS),
}

#: raw_ingest_files: the manifest plus the run that loaded it.
RAW_INGEST_FILES = pl.Schema([*INGEST_FILES.items(), ("run_id", pl.String())])

#: raw_quarantine: where the row came from (batch, stream, run, file hash) + QUARANTINE.
RAW_QUARANTINE = pl.Schema(
    [
        ("batch_day", pl.Date()),
        ("stream", pl.String()),
        ("run_id", pl.String()),
        *QUARANTINE.items(),
        ("sha256", pl.String()),
    ]
)

#: stg_packets: accepted frames; ``data_time`` is the Beijing wall clock as sent (naive).
STG_PACKETS = pl.Schema(
    [
        ("batch_day", pl.Date()),
        ("stream", pl.String()),
        *((k, v) for k, v in PACKETS.items() if k not in {"status", "rule", "reason", "data_time"}),
        ("data_time", pl.Datetime("us")),
        ("data_time_utc", UTC_DT),
    ]
)


@dataclass(frozen=True)
class LoadResult:
    """What :func:`load_batch` wrote.

    Attributes:
        batch_day: the loaded batch.
        rows: rows inserted per table.
        affected_days: local days whose marts were rebuilt, ascending.
        duration_s: wall time of the whole transaction.

    """

    batch_day: date
    rows: dict[str, int]
    affected_days: tuple[date, ...]
    duration_s: float


@contextmanager
def _registered(con: duckdb.DuckDBPyConnection, name: str, frame: pl.DataFrame) -> Iterator[str]:
    """Expose ``frame`` to SQL as ``name`` through Arrow (zero-copy), then drop the view."""
    con.register(name, frame.to_arrow())
    try:
        yield name
    finally:
        con.unregister(name)


def _insert(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> int:
    with _registered(con, f"_zwy_new_{table}", frame) as view:
        try:
            con.execute(f"insert into {table} by name select * from {view}")
        except duckdb.Error as exc:
            raise WarehouseError(f"insert into {table}: {exc}") from exc
    return frame.height


def _check_batch_day(frame: pl.DataFrame, what: str, batch_day: date) -> pl.DataFrame:
    """Fill a missing batch_day; refuse rows of another batch (they would escape the partition)."""
    frame = frame.with_columns(pl.col("batch_day").fill_null(batch_day))
    others = frame.filter(pl.col("batch_day") != batch_day)
    if others.height:
        raise WarehouseError(
            f"load of batch {batch_day}: {others.height} {what} rows carry batch_day "
            f"{others['batch_day'].unique().sort().to_list()}"
        )
    return frame


def _file_lookup(files: pl.DataFrame) -> pl.DataFrame:
    return files.select(
        pl.col("path").alias("source_file"),
        pl.col("stream").alias("_file_stream"),
        pl.col("sha256").alias("_file_sha256"),
    ).unique(subset="source_file", keep="first", maintain_order=True)


def prepare_frames(
    batch_day: date,
    run_id: str,
    files: pl.DataFrame,
    packets: pl.DataFrame,
    readings: pl.DataFrame,
    quarantine: pl.DataFrame,
) -> dict[str, pl.DataFrame]:
    """Shape the stage outputs into the column sets of the raw and staging tables.

    ``source_file`` of packets, readings and quarantine rows must equal the ``path`` of
    their file in ``files``: stream and file hash are looked up through it when the frame
    does not carry them.

    Returns:
        ``{table: frame}`` for raw_ingest_files, raw_quarantine, stg_packets, stg_readings.

    Raises:
        WarehouseError: a frame carries rows of another batch_day.

    """
    manifest = _check_batch_day(
        conform(files.with_columns(run_id=pl.lit(run_id)), RAW_INGEST_FILES), "file", batch_day
    )
    lookup = _file_lookup(manifest)

    q = quarantine.join(lookup, on="source_file", how="left")
    q_cols = q.columns
    q = q.with_columns(
        batch_day=pl.lit(batch_day),
        run_id=pl.lit(run_id),
        stream=pl.coalesce("stream", "_file_stream")
        if "stream" in q_cols
        else pl.col("_file_stream"),
        sha256=pl.coalesce("sha256", "_file_sha256")
        if "sha256" in q_cols
        else pl.col("_file_sha256"),
    )

    p = packets.filter(pl.col("status") == "ok") if "status" in packets.columns else packets
    p = p.join(lookup, on="source_file", how="left")
    local = pl.col("data_time").dt.convert_time_zone(TZ_LOCAL)
    p = p.with_columns(
        batch_day=pl.lit(batch_day),
        stream=pl.coalesce("stream", "_file_stream")
        if "stream" in p.columns
        else pl.col("_file_stream"),
        data_time_utc=pl.col("data_time").dt.convert_time_zone("UTC"),
        # DuckDB keeps no zone per value: store what the device sent, the Beijing wall clock.
        data_time=local.dt.replace_time_zone(None),
    )
    return {
        "raw_ingest_files": manifest,
        "raw_quarantine": conform(q, RAW_QUARANTINE),
        "stg_packets": conform(p, STG_PACKETS),
        "stg_readings": _check_batch_day(conform(readings, READINGS), "reading", batch_day),
    }


def _replace_registry(
    con: duckdb.DuckDBPyConnection, registry: Mapping[str, pl.DataFrame], rows: dict[str, int]
) -> None:
    missing = sorted(set(REGISTRY_TABLES) - set(registry))
    if missing:
        raise WarehouseError(f"registry frames missing: {missing} (keys {sorted(REGISTRY_TABLES)})")
    for key, (table, schema) in REGISTRY_TABLES.items():
        con.execute(f"delete from {table}")
        rows[table] = _insert(con, table, conform(registry[key], schema))


def _local_days(con: duckdb.DuckDBPyConnection, batch_day: date) -> set[date]:
    found = con.execute(
        "select distinct local_day from stg_readings where batch_day = ? and local_day is not null",
        [batch_day],
    ).fetchall()
    return {row[0] for row in found}


def _rebuild_marts(
    con: duckdb.DuckDBPyConnection,
    batch_day: date,
    new_readings: pl.DataFrame,
    days: list[date],
    rebuild: Rebuild,
    rows: dict[str, int],
) -> None:
    """Replace the marts of ``days`` with ``rebuild`` over every staged reading of those days."""
    day_frame = pl.DataFrame({"d": days}, schema={"d": pl.Date})
    with _registered(con, "_zwy_days", day_frame) as view:
        # Other batches' readings come from the table; this batch's are still in memory,
        # which saves reading back the rows just inserted (the bulk of a nightly batch).
        others = con.execute(
            f"select * from stg_readings where local_day in (select d from {view}) "
            "and batch_day <> ?",
            [batch_day],
        ).to_arrow_table()
        others_frame = pl.from_arrow(others)
        assert isinstance(others_frame, pl.DataFrame)  # a Table always gives a frame
        ours = new_readings.filter(pl.col("local_day").is_in(days))
        staged = pl.concat([conform(others_frame, READINGS), ours], how="vertical")
        hourly, daily = rebuild(staged)
        hourly, daily = conform(hourly, HOURLY), conform(daily, DAILY)
        for name, frame in (("hourly", hourly), ("daily", daily)):
            stray = frame.filter(~pl.col("local_day").is_in(days) | pl.col("local_day").is_null())
            if stray.height:
                raise WarehouseError(
                    f"rebuild returned {stray.height} {name} rows outside the rebuilt days "
                    f"{[d.isoformat() for d in days]}"
                )
        for table, frame in (("mart_hourly_values", hourly), ("mart_daily_values", daily)):
            con.execute(f"delete from {table} where local_day in (select d from {view})")
            rows[table] = _insert(con, table, frame)


_ACCOUNTING_SQL = """
with files as (
    select path, parser,
           coalesce(frames_found, 0) as found,
           coalesce(frames_loaded, 0) as loaded,
           coalesce(frames_quarantined, 0) as quarantined
    from raw_ingest_files where batch_day = $day
),
q as (select source_file, count(*) as n from raw_quarantine where batch_day = $day group by all),
p as (select source_file, count(*) as n from stg_packets where batch_day = $day group by all),
checked as (
    select f.path, f.parser, f.found, f.loaded, f.quarantined,
           coalesce(q.n, 0) as quarantine_rows, coalesce(p.n, 0) as packet_rows
    from files f
    left join q on q.source_file = f.path
    left join p on p.source_file = f.path
)
select path, found, loaded, quarantined, quarantine_rows, packet_rows,
       'frames_found != frames_loaded + frames_quarantined, or rows do not match' as problem
from checked
where found != loaded + quarantined
   or quarantined != quarantine_rows
   or (parser = 'hj212' and loaded != packet_rows)
union all
select source_file, null, null, null, n, null, 'quarantine rows of a file not in raw_ingest_files'
from q where source_file is null or source_file not in (select path from files)
union all
select source_file, null, null, null, null, n, 'packets of a file not in raw_ingest_files'
from p where source_file is null or source_file not in (select path from files)
order by 1
"""


def check_accounting(con: duckdb.DuckDBPyConnection, batch_day: date) -> None:
    """Check the nothing-lost invariant of a loaded batch, file by file.

    For each ``raw_ingest_files`` row of the batch: ``frames_found = frames_loaded +
    frames_quarantined``; ``frames_quarantined`` = its ``raw_quarantine`` rows; for hj212
    files ``frames_loaded`` = its ``stg_packets`` rows. Quarantine or packet rows of a file
    missing from the manifest fail too.

    Raises:
        AccountingError: naming every failing file and its numbers.

    """
    bad = con.execute(_ACCOUNTING_SQL, {"day": batch_day}).fetchall()
    if bad:
        lines = [
            f"{path}: found={found} loaded={loaded} quarantined={quar} "
            f"quarantine_rows={q_rows} packet_rows={p_rows} ({problem})"
            for path, found, loaded, quar, q_rows, p_rows, problem in bad
        ]
        raise AccountingError(
            f"batch {batch_day}: accounting failed for {len(bad)} file(s): " + "; ".join(lines)
        )


def load_batch(
    con: duckdb.DuckDBPyConnection,
    batch_day: date,
    run_id: str,
    files: pl.DataFrame,
    packets: pl.DataFrame,
    readings: pl.DataFrame,
    quarantine: pl.DataFrame,
    registry: Mapping[str, pl.DataFrame],
    rebuild: Rebuild,
) -> LoadResult:
    """Load one batch day in one transaction; on any error nothing changes.

    1. Replace the ref tables with ``registry`` (keys ``facilities``, ``outlets``,
       ``monitoring_points``).
    2. Replace the ``batch_day`` partition of raw_ingest_files, raw_quarantine, stg_packets
       (accepted packets only) and stg_readings.
    3. Rebuild the marts of the affected local days (those of the new readings and of the
       readings this batch had before): read all staged readings of those days, call
       ``rebuild``, replace those ``local_day`` partitions.
    4. Check the accounting invariant (:func:`check_accounting`).

    Loading the same inputs again leaves every table with the same contents (apart from
    ``run_id``), to the last bit when ``rebuild`` is deterministic (``build_marts`` is).
    DuckDB allows one writer: the caller holds the only read-write connection.

    Args:
        con: read-write connection to a migrated warehouse.
        batch_day: the inbox day being loaded.
        run_id: the run, stored on raw rows.
        files: INGEST_FILES rows of the batch.
        packets: PACKETS rows (``status`` "ok" rows are staged); optional ``stream``.
        readings: READINGS rows of the batch.
        quarantine: QUARANTINE rows; optional ``stream``, ``sha256``.
        registry: FACILITIES, OUTLETS, MONITORING_POINTS frames.
        rebuild: staged readings of whole local days → (HOURLY, DAILY) frames.

    Returns:
        Rows written per table, the rebuilt days, the duration.

    Raises:
        AccountingError: the invariant fails (rolled back).
        WarehouseError: a frame does not fit, a DuckDB error, or rebuild rows outside the
            rebuilt days (rolled back).

    """
    started = time.perf_counter()
    frames = prepare_frames(batch_day, run_id, files, packets, readings, quarantine)
    rows: dict[str, int] = {}
    con.execute("begin transaction")
    try:
        _replace_registry(con, registry, rows)
        old_days = _local_days(con, batch_day)
        for table, frame in frames.items():
            con.execute(f"delete from {table} where batch_day = ?", [batch_day])
            rows[table] = _insert(con, table, frame)
        new_days = set(frames["stg_readings"]["local_day"].drop_nulls().unique().to_list())
        days = sorted(old_days | new_days)
        if days:
            _rebuild_marts(con, batch_day, frames["stg_readings"], days, rebuild, rows)
        else:
            rows["mart_hourly_values"] = rows["mart_daily_values"] = 0
        check_accounting(con, batch_day)
        con.execute("commit")
    except duckdb.Error as exc:
        con.execute("rollback")
        raise WarehouseError(f"load of batch {batch_day} (run {run_id}) failed: {exc}") from exc
    except BaseException as exc:
        con.execute("rollback")
        if isinstance(exc, WarehouseError) and not isinstance(exc, AccountingError):
            raise WarehouseError(f"load of batch {batch_day} (run {run_id}) failed: {exc}") from exc
        raise
    return LoadResult(
        batch_day=batch_day,
        rows=rows,
        affected_days=tuple(days),
        duration_s=time.perf_counter() - started,
    )
