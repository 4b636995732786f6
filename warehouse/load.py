"""Loading one batch day into the warehouse, switched atomically.

A batch is what one day's inbox delivered; everything it loads is partitioned by
``batch_day`` and replaced whole.

* The small raw tables (raw_ingest_files, raw_quarantine), the ref tables and the marts
  are DuckDB tables: ``DELETE`` + ``INSERT … SELECT`` from Arrow.
* The big staging tables stg_packets and stg_readings are views over Parquet files per
  ``batch_day`` (:mod:`warehouse.partitions`): Polars writes the batch's new file under a
  unique name (or, for readings and packets staged as files that already meet the
  partition's contract, the loader copies those files in, one per stream), and the
  transaction that
  replaces the raw partitions also points ``meta_partitions`` and the views at them.
  Superseded files are deleted after the commit; on any error the new files are deleted
  and the old files and views stay.
* The marts are partitioned by ``local_day``: the (device, day) pairs a batch touches
  (those of its new readings and of its previous file) are rebuilt from *all* current
  readings of those pairs (the new frame plus the other batches' files), so a late packet
  of device X delivered in batch D for day D-1 updates X's D-1 (and only that), and
  reloading batch D gives the same marts again.

Memory: nothing is copied whole. The new rows are sorted, written and re-aggregated one
range of devices (``mn``) at a time, about ``chunk_rows`` readings per range, and the other
batches' files are read lazily, filtered on those devices and days (the files are sorted by
``mn``, so the filter skips most row groups). The nightly cost depends on the size of the
batch and of the days it touches, not on the length of the history.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import polars as pl

from warehouse.partitions import (
    STAGING_TABLES,
    STG_PACKETS,
    ChunkedFrame,
    MnRange,
    PartitionFile,
    adopt_files,
    chunk_count,
    create_views,
    current_partitions,
    delete_files,
    mn_predicate,
    parquet_dir_of,
    plan_mn_ranges,
    record_partitions,
    remove_orphan_files,
    scan_partitions,
    sql_string,
    stg_packets,
    write_partition,
)
from zwy.contracts import (
    DAILY,
    FACILITIES,
    HOURLY,
    INGEST_FILES,
    MONITORING_POINTS,
    OUTLETS,
    QUARANTINE,
    READINGS,
    conform,
    conform_lazy,
    empty,
)
from zwy.errors import AccountingError, WarehouseError

__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "STG_PACKETS",
    "LoadResult",
    "Rebuild",
    "check_accounting",
    "load_batch",
    "prepare_frames",
]

log = logging.getLogger(__name__)

#: Rebuilds the marts from staged readings: (hourly, daily). The loader calls it once per
#: range of devices with every reading of the affected (mn, local_day) pairs of those
#: devices, so it must compute a device's day from that device's readings of that day
#: alone (``build_marts`` does: every key and join of the marts contains ``mn``, and a
#: local day is made of whole UTC hours).
Rebuild = Callable[[pl.DataFrame], tuple[pl.DataFrame, pl.DataFrame]]

#: Readings per device range: bounds the memory of sorting and of the mart rebuild
#: (~400 bytes per reading at the peak of ``build_marts``, measured). Each range costs
#: about 15 ms of plan building and optimising whatever its size, and very large ones
#: cost more per reading: a district day's load took 7.5-8.1 s (12.9-13.5 CPU-s, 1.1 GB)
#: at 250 k, 6.8-7.2 s (11.6-12.2 CPU-s, 1.2 GB) at 500 k and 7.1-7.4 s (1.4 GB) at 1 M
#: (an earlier, slower build_marts: 53 CPU-s at 250 k, 60 at 1 M, 70+ in one call).
DEFAULT_CHUNK_ROWS = 500_000
#: A packet row carries the frame text: ~8x a reading row.
_PACKET_ROW_WEIGHT = 8
#: Device ids sampled to cut the ranges.
_SAMPLE_ROWS = 20_000

Frame = pl.DataFrame | pl.LazyFrame

#: registry dict key → (table, contract)
REGISTRY_TABLES: dict[str, tuple[str, pl.Schema]] = {
    "facilities": ("ref_facilities", FACILITIES),
    "outlets": ("ref_outlets", OUTLETS),
    "monitoring_points": ("ref_monitoring_points", MONITORING_POINTS),
}
#: Reference tables replaced when the registry given to the loader carries them.
OPTIONAL_REF_TABLES: dict[str, str] = {
    "receivers": "ref_receivers",
    "hw_codes": "ref_hw_codes",
    "dust_sites": "ref_dust_sites",
}
#: Staging tables of the solid-waste and dust streams: the batch_day partition is replaced.
WASTE_TABLES: tuple[str, ...] = ("stg_waste_ledger", "stg_waste_manifests", "stg_station_hourly")

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


@dataclass(frozen=True)
class LoadResult:
    """What :func:`load_batch` wrote.

    Attributes:
        batch_day: the loaded batch.
        rows: rows written per table (for the staging views: rows of the new files).
        affected_days: local days with rebuilt marts (of some or all devices), ascending.
        duration_s: wall time of the whole load.
        files: the new Parquet files per staging table (relative to the Parquet folder).
        timings: seconds per step (prepare, write_packets, raw_and_accounting,
            write_readings, rebuild, views_marts_commit, cleanup).

    """

    batch_day: date
    rows: dict[str, int]
    affected_days: tuple[date, ...]
    duration_s: float
    files: dict[str, list[str]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


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


def _eager(frame: Frame) -> pl.DataFrame:
    return frame.collect() if isinstance(frame, pl.LazyFrame) else frame


def _check_batch_day(frame: pl.DataFrame, what: str, batch_day: date) -> pl.DataFrame:
    """Fill a missing batch_day; refuse rows of another batch (they would escape the partition)."""
    frame = frame.with_columns(pl.col("batch_day").fill_null(batch_day))
    _refuse_other_days(frame.lazy(), what, batch_day)
    return frame


def _refuse_other_days(frame: pl.LazyFrame, what: str, batch_day: date) -> None:
    others = (
        frame.filter(pl.col("batch_day") != batch_day)
        .select(n=pl.len(), days=pl.col("batch_day").unique().sort().implode())
        .collect()
    )
    if others["n"][0]:
        raise WarehouseError(
            f"load of batch {batch_day}: {others['n'][0]} {what} rows carry batch_day "
            f"{others['days'][0].to_list()}"
        )


def _file_lookup(files: pl.DataFrame) -> pl.DataFrame:
    return files.select(
        pl.col("path").alias("source_file"),
        pl.col("stream").alias("_file_stream"),
        pl.col("sha256").alias("_file_sha256"),
    ).unique(subset="source_file", keep="first", maintain_order=True)


def _file_stream(lookup: pl.DataFrame) -> pl.Expr:
    """Return the stream of each row's ``source_file`` (a dictionary lookup: no join, no copy)."""
    mapping = dict(zip(lookup["source_file"], lookup["_file_stream"], strict=True))
    if not mapping:
        return pl.lit(None, pl.String)
    return pl.col("source_file").replace_strict(mapping, default=None, return_dtype=pl.String)


def prepare_frames(
    batch_day: date,
    run_id: str,
    files: Frame,
    packets: Frame,
    readings: Frame,
    quarantine: Frame,
) -> dict[str, Frame]:
    """Shape the stage outputs into the column sets of the raw and staging tables.

    ``source_file`` of packets, readings and quarantine rows must equal the ``path`` of
    their file in ``files``: stream and file hash are looked up through it when the frame
    does not carry them.

    Returns:
        ``{table: frame}``: DataFrames for raw_ingest_files and raw_quarantine, LazyFrames
        (plans over the inputs, nothing copied) for stg_packets and stg_readings.

    Raises:
        WarehouseError: a frame carries rows of another batch_day.

    """
    manifest = _check_batch_day(
        conform(_eager(files).with_columns(run_id=pl.lit(run_id)), RAW_INGEST_FILES),
        "file",
        batch_day,
    )
    lookup = _file_lookup(manifest)

    q = _eager(quarantine).join(lookup, on="source_file", how="left")
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

    p = packets.lazy()
    p_cols = p.collect_schema().names()
    if "data_time_utc" in p_cols:  # already staged (the parse's accepted frames)
        p = _conformed(p, STG_PACKETS, batch_day)
        _refuse_other_days(p, "packet", batch_day)
    else:
        if "status" in p_cols and (
            # Filtering copies every column: skip it when every row is "ok".
            isinstance(packets, pl.DataFrame)
            and packets.get_column("status").eq_missing("ok").all()
        ):
            p = p.drop("status")
        file_stream = _file_stream(lookup)
        p = stg_packets(
            p,
            batch_day,
            pl.coalesce("stream", file_stream) if "stream" in p_cols else file_stream,
        )
    r = _conformed(readings, READINGS, batch_day)
    _refuse_other_days(r, "reading", batch_day)
    return {
        "raw_ingest_files": manifest,
        "raw_quarantine": conform(q, RAW_QUARANTINE),
        "stg_packets": p,
        "stg_readings": r,
    }


def _conformed(frame: Frame, schema: pl.Schema, batch_day: date) -> pl.LazyFrame:
    """``frame`` in a staging contract, rows without a ``batch_day`` given ``batch_day``."""
    return conform_lazy(frame.lazy(), schema).with_columns(pl.col("batch_day").fill_null(batch_day))


def _adopt_staged(
    files: Sequence[Path],
    table: str,
    batch_day: date,
    run_id: str,
    folder: Path,
    expected: int,
) -> tuple[list[PartitionFile], pl.LazyFrame, int]:
    """Copy the qualifying staged ``files`` in (:func:`adopt_files`); return what is left.

    Returns the copies, the other files' rows (in the table's contract) and their count.

    Raises:
        WarehouseError: the files hold another number of rows than ``expected``, the rows
            given for the table (the copies are removed).

    """
    schema = STAGING_TABLES[table]
    copies, rest = adopt_files(files, table, batch_day, run_id, folder)
    rest_lf = _conformed(
        pl.concat([pl.scan_parquet(p) for p in rest]) if rest else empty(schema), schema, batch_day
    )
    n_rest: int = rest_lf.select(pl.len()).collect().item()
    held = n_rest + sum(c.rows for c in copies)
    if held != expected:
        delete_files([c.path(folder) for c in copies])
        what = table.removeprefix("stg_")
        raise WarehouseError(
            f"batch {batch_day}: the staged {what} files hold {held} rows, the {what} {expected}"
        )
    return copies, rest_lf, n_rest


def _reference_frames(registry: Mapping[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """Return the reference tables ``registry`` replaces: table → its rows (conformed).

    Raises:
        WarehouseError: a required registry frame is missing.

    """
    missing = sorted(set(REGISTRY_TABLES) - set(registry))
    if missing:
        raise WarehouseError(f"registry frames missing: {missing} (keys {sorted(REGISTRY_TABLES)})")
    frames = {
        table: conform(registry[key], schema) for key, (table, schema) in REGISTRY_TABLES.items()
    }
    frames.update({t: registry[k] for k, t in OPTIONAL_REF_TABLES.items() if k in registry})
    return frames


def _replace_registry(
    con: duckdb.DuckDBPyConnection, references: Mapping[str, pl.DataFrame], rows: dict[str, int]
) -> None:
    for table, frame in references.items():
        rows[table] = _replace_if_changed(con, table, frame)


#: A reference table is compacted when it holds this many more slots than rows, and more
#: than twice as many.
RECLAIM_MIN_DEAD_SLOTS = 1024


def table_slots(con: duckdb.DuckDBPyConnection, table: str) -> tuple[int, int]:
    """Return (slots, rows) of ``table``: the rows its storage holds, deleted ones included."""
    # The rows of the first column's segments (its validity mask is another path; segments
    # not yet checkpointed may be split, so distinct segment counts would over-count).
    found = con.execute(
        f"select coalesce(sum(count), 0), (select count(*) from {table}) "
        f"from pragma_storage_info('{table}') where column_path = '[0]'"
    ).fetchone()
    return (int(found[0]), int(found[1])) if found else (0, 0)


def reclaim_reference_slots(con: duckdb.DuckDBPyConnection, tables: Sequence[str]) -> list[str]:
    """Compact reference tables whose storage is mostly deleted rows; return their names.

    Warehouses loaded before :func:`_replace_if_changed` rewrote every reference table each
    night, and each rewrite left the old rows as deleted slots. DuckDB frees a row group
    only when a checkpoint finds all of its rows deleted (``VACUUM`` does not, measured on
    DuckDB 1.5), so a table is compacted by deleting its rows, checkpointing, and putting
    them back: three commits, outside the load's transaction. The single writer holds the
    file, so no one sees the table empty; if the process dies in between, the next load
    puts the registry's rows back (its reference tables then differ from the registry).
    """
    done: list[str] = []
    for table in tables:
        slots, live = table_slots(con, table)
        if slots - live < RECLAIM_MIN_DEAD_SLOTS or slots < 2 * live:
            continue
        keep = f"_zwy_keep_{table}"
        con.execute(f"create or replace temp table {keep} as select * from {table}")
        con.execute(f"delete from {table}")
        try:
            con.execute("checkpoint")
            done.append(table)
        except duckdb.Error:  # best effort: the rows go back, not compacted this time
            pass
        finally:
            con.execute(f"insert into {table} by name select * from {keep}")
            con.execute(f"drop table {keep}")
    return done


def _replace_if_changed(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> int:
    """Make ``frame`` the rows of reference ``table``, unless they already are; return its rows.

    Why not always delete and insert: rows deleted in the transaction that appends their
    replacements stay in the table's row group as deleted rows, so a nightly rewrite grew
    the reference tables with the history (ref_hw_codes: 467 rows held in 170 k slots after
    a year, measured) and every checkpoint and scan paid for them. The comparison is of the
    frame's columns, as multisets (row order is not part of the reference data).
    """
    names = ", ".join(f'"{c}"' for c in frame.columns)
    with _registered(con, f"_zwy_ref_{table}", frame) as view:
        try:
            same = con.execute(
                f"select (select count(*) from {table}) = {frame.height} and not exists "
                f"(select {names} from {view} except all select {names} from {table})"
            ).fetchone()
        except duckdb.Error:  # types that do not compare: replace, as before
            same = None
    if same and same[0]:
        return frame.height
    con.execute(f"delete from {table}")
    return _insert(con, table, frame)


def _collect_like(given: Frame, prepared: Frame) -> Frame:
    """Return ``prepared`` eager when the caller gave a DataFrame, else lazy (read by range)."""
    return _eager(prepared) if isinstance(given, pl.DataFrame) else prepared.lazy()


def _days_of(parquet_dir: Path, part: PartitionFile) -> set[date]:
    """Local days of a readings file: from ``meta_partitions``, else from its column."""
    if part.local_days is not None:
        return set(part.local_days)
    lf = scan_partitions(parquet_dir, [part])
    assert lf is not None  # one file given
    found = lf.select(pl.col("local_day").drop_nulls().unique()).collect()
    return set(found["local_day"].to_list())


def _mn_sample(frame: pl.LazyFrame | None, step: int) -> pl.Series:
    if frame is None:
        return pl.Series("mn", [], dtype=pl.String)
    # As String: the readings hold MNs as codes, the other batches' files may hold text.
    return frame.select(pl.col("mn").drop_nulls().gather_every(step).cast(pl.String)).collect()[
        "mn"
    ]


def _plan(
    ours: pl.LazyFrame,
    ours_rows: int,
    others: pl.LazyFrame | None,
    others_rows: int,
    chunk_rows: int | None,
) -> list[MnRange]:
    """Device ranges of about ``chunk_rows`` rows over the new rows and ``others``."""
    n_chunks = chunk_count(ours_rows + others_rows, chunk_rows)
    if n_chunks == 1:
        return [(None, None)]
    step = max(1, (ours_rows + others_rows) // _SAMPLE_ROWS)
    sample = pl.concat([_mn_sample(ours, step), _mn_sample(others, step)])
    # others_rows counts whole files; the sample counts only the rows of the affected days.
    n_chunks = chunk_count(sample.len() * step, chunk_rows)
    return plan_mn_ranges(sample, n_chunks)


_PAIR = ["mn", "local_day"]


def _pairs(frame: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """Return the distinct (mn, local_day) of the rows of ``frame`` that have a local_day.

    ``mn`` as String, as in the marts (readings hold it as a dictionary code).
    """
    lf = frame.lazy().filter(pl.col("local_day").is_not_null()).select(_PAIR).unique()
    return lf.with_columns(pl.col("mn").cast(pl.String)).collect()


@dataclass
class _Marts:
    hourly: pl.DataFrame
    daily: pl.DataFrame
    pairs: pl.DataFrame  # the (mn, local_day) whose mart rows they replace


class _Abandoned(Exception):
    """The load failed elsewhere: the readings' writer stops at its next range."""


#: One device range's rebuilt (hourly, daily) and the (mn, local_day) pairs they replace.
_RangeMarts = tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]


class _MartsRebuild:
    """Marts of the affected (mn, local_day) pairs from every current reading of them.

    The affected pairs are those of the new readings and of the batch's previous file
    (``previous``); their readings are the new ones plus the other batches' (``others``,
    files holding some of ``days``). A late packet of device X for day D-1 rebuilds X's
    D-1, not the whole of D-1. One call of ``rebuild`` per device range: memory for one
    range, not for whole days.

    The new readings arrive range by range through :meth:`add` (the rows the partition
    writer has just read and sorted, so they are read once); ``workers`` ranges are
    rebuilt at once while the writer goes on, and at most ``workers + 1`` ranges wait.
    :meth:`result` gathers them in range order, so the marts do not depend on which range
    finished first.
    """

    def __init__(
        self,
        ours: ChunkedFrame,
        previous: pl.LazyFrame | None,
        others: pl.LazyFrame | None,
        days: list[date],
        rebuild: Rebuild,
        workers: int = 2,
    ) -> None:
        self._ours = ours
        self._previous = previous
        self._others = others
        self._days = days
        self._rebuild = rebuild
        workers = max(1, workers)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="zwy-marts")
        self._slots = threading.BoundedSemaphore(workers + 1)
        self._futures: dict[int, Future[_RangeMarts | None]] = {}

    def close(self) -> None:
        """Stop: ranges not yet started are dropped; waits for the running ones."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def add(self, i: int, new_rows: pl.DataFrame) -> None:
        """Rebuild range ``i`` with ``new_rows``, all new readings of the range (in the background)."""
        if i in self._futures:  # the rows of a range are its rows: a second call adds nothing
            return
        self._slots.acquire()
        future = self._pool.submit(self._one_range, i, new_rows)
        future.add_done_callback(lambda _: self._slots.release())
        self._futures[i] = future

    def result(self) -> _Marts:
        """Wait for every range (reading the ones never added); return the marts."""
        n = len(self._ours)
        for i in range(n):
            if i not in self._futures:
                self.add(i, self._ours.chunk(i))
        done = [r for r in (self._futures[i].result() for i in range(n)) if r]
        return _Marts(
            hourly=pl.concat([r[0] for r in done]) if done else pl.DataFrame(schema=HOURLY),
            daily=pl.concat([r[1] for r in done]) if done else pl.DataFrame(schema=DAILY),
            pairs=pl.concat([r[2] for r in done])
            if done
            else pl.DataFrame(schema={"mn": pl.String, "local_day": pl.Date}),
        )

    def _one_range(self, i: int, new_rows: pl.DataFrame) -> _RangeMarts | None:
        rows = mn_predicate(self._ours.ranges[i], first=i == 0)
        mine = new_rows.filter(pl.col("local_day").is_not_null())
        pairs = _pairs(mine)
        if self._previous is not None:
            pairs = pl.concat([pairs, _pairs(self._previous.filter(rows))]).unique()
        if not pairs.height:
            return None
        frames = [mine]
        if self._others is not None:
            theirs = (
                self._others.filter(rows & pl.col("local_day").is_in(self._days))
                .join(
                    pairs.lazy().with_columns(pl.col("mn").cast(READINGS["mn"])),
                    on=_PAIR,
                    how="semi",
                    nulls_equal=True,
                )
                .collect()
            )
            frames.insert(0, theirs)
        staged = pl.concat(frames, how="vertical") if len(frames) > 1 else frames[0]
        del mine, frames
        hourly, daily = (
            self._rebuild(staged)
            if staged.height
            else (pl.DataFrame(schema=HOURLY), pl.DataFrame(schema=DAILY))
        )
        del staged
        for name, frame in (("hourly", hourly), ("daily", daily)):
            stray = frame.join(pairs, on=_PAIR, how="anti", nulls_equal=True)
            if stray.height:
                raise WarehouseError(
                    f"rebuild returned {stray.height} {name} rows outside the rebuilt "
                    f"(mn, local_day) pairs, e.g. {stray.select(_PAIR).row(0)}"
                )
        return conform(hourly, HOURLY), conform(daily, DAILY), pairs


def _finished(job: Future[list[PartitionFile]]) -> list[PartitionFile]:
    """Return the files a finished background write made (none: failed or cancelled)."""
    if job.cancelled() or not job.done() or job.exception() is not None:
        return []
    return job.result()


def _replace_marts(
    con: duckdb.DuckDBPyConnection, marts: _Marts, days: list[date], rows: dict[str, int]
) -> None:
    """Replace the mart rows of the rebuilt pairs (the day range lets zone maps skip the rest)."""
    with _registered(con, "_zwy_pairs", marts.pairs) as view:
        for table, frame in (
            ("mart_hourly_values", marts.hourly),
            ("mart_daily_values", marts.daily),
        ):
            con.execute(
                f"delete from {table} where local_day between ? and ? and exists ("
                f"select 1 from {view} p where p.local_day = {table}.local_day "
                f"and p.mn is not distinct from {table}.mn)",
                [min(days), max(days)],
            )
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
p as (select source_file, count(*) as n from {packets} group by all),
w as (
    select source_file, count(*) as n from (
        select source_file from stg_waste_ledger where batch_day = $day
        union all
        select source_file from stg_waste_manifests where batch_day = $day
        union all
        select source_file from stg_station_hourly where batch_day = $day
    ) group by all
),
checked as (
    select f.path, f.parser, f.found, f.loaded, f.quarantined,
           coalesce(q.n, 0) as quarantine_rows,
           case when f.parser in ('waste', 'station') then coalesce(w.n, 0)
                else coalesce(p.n, 0) end
               as packet_rows
    from files f
    left join q on q.source_file = f.path
    left join p on p.source_file = f.path
    left join w on w.source_file = f.path
)
select path, found, loaded, quarantined, quarantine_rows, packet_rows,
       'frames_found != frames_loaded + frames_quarantined, or rows do not match' as problem
from checked
where found != loaded + quarantined
   or quarantined != quarantine_rows
   or (parser in ('hj212', 'waste', 'station') and loaded != packet_rows)
union all
select source_file, null, null, null, n, null, 'quarantine rows of a file not in raw_ingest_files'
from q where source_file is null or source_file not in (select path from files)
union all
select source_file, null, null, null, null, n, 'packets of a file not in raw_ingest_files'
from p where source_file is null or source_file not in (select path from files)
order by 1
"""

_PACKETS_OF_BATCH = "(select source_file from stg_packets where batch_day = $day)"
_NO_PACKETS = "(select cast(null as varchar) as source_file where false)"


def _packets_of_files(paths: Sequence[Path]) -> str:
    if not paths:
        return _NO_PACKETS
    quoted = ", ".join(sql_string(p.as_posix()) for p in paths)
    return f"(select source_file from read_parquet([{quoted}], hive_partitioning = false))"


def check_accounting(
    con: duckdb.DuckDBPyConnection, batch_day: date, packets_sql: str = _PACKETS_OF_BATCH
) -> None:
    """Check the nothing-lost invariant of a loaded batch, file by file.

    For each ``raw_ingest_files`` row of the batch: ``frames_found = frames_loaded +
    frames_quarantined``; ``frames_quarantined`` = its ``raw_quarantine`` rows; for hj212
    files ``frames_loaded`` = its ``stg_packets`` rows. Quarantine or packet rows of a file
    missing from the manifest fail too.

    Args:
        con: connection to the warehouse.
        batch_day: the batch to check.
        packets_sql: a relation with the ``source_file`` of the batch's accepted packets;
            default the batch's rows of the ``stg_packets`` view (the loader passes its
            new file before the view is committed).

    Raises:
        AccountingError: naming every failing file and its numbers.

    """
    bad = con.execute(_ACCOUNTING_SQL.format(packets=packets_sql), {"day": batch_day}).fetchall()
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
    files: Frame,
    packets: Frame,
    readings: Frame,
    quarantine: Frame,
    registry: Mapping[str, pl.DataFrame],
    rebuild: Rebuild,
    *,
    parquet_dir: Path | None = None,
    chunk_rows: int | None = DEFAULT_CHUNK_ROWS,
    waste: Mapping[str, pl.DataFrame] | None = None,
    workers: int = 2,
    readings_files: Sequence[Path] = (),
    packets_files: Sequence[Path] = (),
) -> LoadResult:
    """Load one batch day; on any error nothing changes.

    1. Write the batch's accepted packets to a new Parquet file (unique name, sorted by
       ``mn, data_time_utc``, device range by device range), or copy ``packets_files``
       in when they qualify (see :func:`~warehouse.partitions.adopt_files`).
    2. Begin a DuckDB transaction: replace the ref tables with ``registry`` (keys
       ``facilities``, ``outlets``, ``monitoring_points``) and the ``batch_day`` partition
       of raw_ingest_files and raw_quarantine; check the accounting invariant
       (:func:`check_accounting`, over the new packets file).
    3. Meanwhile, from the start, in a background thread: write the readings to a new
       Parquet file the same way (or copy ``readings_files`` in when they qualify, see
       :func:`~warehouse.partitions.adopt_files`) and, range by range, rebuild the marts
       of its affected (mn, local_day) pairs (those of the new readings and of the
       batch's previous readings file) from the new readings plus the other batches'
       current files, calling ``rebuild`` once per device range. If steps 1-2 fail, it
       stops at its next range.
    4. Make the new files current in ``meta_partitions`` and the stg_packets/stg_readings
       views, replace the marts of the affected days, commit.
    5. Delete the batch's superseded files.

    Loading the same inputs again leaves every table and view with the same contents
    (apart from ``run_id``), to the last bit when ``rebuild`` is deterministic
    (``build_marts`` is). DuckDB allows one writer: the caller holds the only read-write
    connection, which also makes this process the only one writing the Parquet folder.

    Args:
        con: read-write connection to a migrated warehouse.
        batch_day: the inbox day being loaded.
        run_id: the run, stored on raw rows and in the new files' names.
        files: INGEST_FILES rows of the batch.
        packets: PACKETS rows (``status`` "ok" rows are staged; optional ``stream``), or
            rows already in the stg_packets contract (the parse's staged files). A
            LazyFrame (e.g. a ``scan_parquet`` of the staging files) is read range by range.
        readings: READINGS rows of the batch; a DataFrame or LazyFrame.
        quarantine: QUARANTINE rows; optional ``stream``, ``sha256``.
        registry: FACILITIES, OUTLETS, MONITORING_POINTS frames.
        rebuild: staged readings of whole (mn, local_day) pairs → (HOURLY, DAILY) of those
            pairs (see :data:`Rebuild`).
        parquet_dir: the Parquet folder; default ``<stem>_parquet`` next to the DuckDB file.
        chunk_rows: readings per device range (memory bound); None for one range.
        waste: the solid-waste staging frames of the batch, ``stg_waste_ledger`` and
            ``stg_waste_manifests`` (replaced for ``batch_day``; absent: emptied), checked
            by the accounting invariant like the packets.
        workers: device ranges rebuilt at once (threads); memory grows with
            ``workers x chunk_rows``.
        readings_files: the Parquet files ``readings`` scans, when it is a scan of whole
            files (the pipeline's staged readings, one per stream). Each one that already
            is a partition file (contract, batch_day, sorted) is copied in as one of the
            partition's files; the rows of the others are written to one more file.
        packets_files: the same for ``packets``: Parquet files of accepted frames in the
            stg_packets contract (the parse's staged files), copied in when they qualify.

    Returns:
        Rows written per table, the rebuilt days, the duration, the new files, timings
        (laps of the calling thread: ``write_packets`` and ``raw_and_accounting`` overlap
        the background's readings and rebuild; ``write_readings`` and ``rebuild`` are
        what was left of them to wait for).

    Raises:
        AccountingError: the invariant fails (rolled back, new files deleted).
        WarehouseError: a frame does not fit, a DuckDB or write error, or rebuild rows
            outside the rebuilt pairs (rolled back, new files deleted).

    """
    started = time.perf_counter()
    timings: dict[str, float] = {}

    def lap(name: str, since: float) -> float:
        now = time.perf_counter()
        timings[name] = round(now - since, 3)
        return now

    folder = parquet_dir or parquet_dir_of(con)
    frames = prepare_frames(batch_day, run_id, files, packets, readings, quarantine)
    raw_files, raw_quarantine = _eager(frames["raw_ingest_files"]), _eager(frames["raw_quarantine"])
    # In-memory inputs stay in memory: collecting the prepared plans shares their columns.
    packets_in = _collect_like(packets, frames["stg_packets"])
    readings_in = _collect_like(readings, frames["stg_readings"])
    packets_lf, readings_lf = packets_in.lazy(), readings_in.lazy()

    # The single writer owns the folder: leftovers of a crashed load of this batch go first.
    remove_orphan_files(con, folder, batch_day)
    references = _reference_frames(registry)
    reclaim_reference_slots(con, list(references))
    previous = current_partitions(con, batch_day=batch_day)
    old_days: set[date] = set()
    for part in previous:
        if part.table_name == "stg_readings":
            old_days |= _days_of(folder, part)
    counts = readings_lf.select(
        n=pl.len(), days=pl.col("local_day").drop_nulls().unique().sort().implode()
    ).collect()
    n_readings: int = counts["n"][0]
    new_days: list[date] = counts["days"][0].to_list()
    n_packets: int = packets_lf.select(pl.len()).collect().item()
    days = sorted(old_days | set(new_days))
    # The other batches' readings files that hold some of those days (a year of history
    # lists thousands of files: the filter runs in the query).
    other_parts = [
        p
        for p in current_partitions(con, table="stg_readings", touching=days)
        if p.batch_day != batch_day
    ]
    others = scan_partitions(folder, other_parts) if days else None
    previous_readings = scan_partitions(
        folder, [p for p in previous if p.table_name == "stg_readings"]
    )
    t = lap("prepare", started)

    new_files: list[PartitionFile] = []
    rows: dict[str, int] = {}
    in_transaction = False
    others_rows = sum(p.rows for p in other_parts) if others is not None else 0
    relevant = None if others is None else others.filter(pl.col("local_day").is_in(days))
    ours = ChunkedFrame(
        readings_in, _plan(readings_lf, n_readings, relevant, others_rows, chunk_rows)
    )
    abandon = threading.Event()
    marts_rebuild = _MartsRebuild(ours, previous_readings, others, days, rebuild, workers)

    def hand_over(i: int, chunk: pl.DataFrame) -> None:
        if abandon.is_set():
            raise _Abandoned
        if days:
            marts_rebuild.add(i, chunk)

    def write_readings() -> list[PartitionFile]:
        if not n_readings:
            return []
        if not readings_files:
            return [
                write_partition(
                    ours,
                    "stg_readings",
                    batch_day,
                    run_id,
                    folder,
                    n_readings,
                    local_days=tuple(new_days),
                    on_chunk=hand_over,
                )
            ]
        copies, rest_lf, rest_rows = _adopt_staged(
            readings_files, "stg_readings", batch_day, run_id, folder, n_readings
        )
        try:
            return copies + write_rest(copies, rest_lf, rest_rows)
        except BaseException:
            delete_files([c.path(folder) for c in copies])
            raise

    def write_rest(
        copies: list[PartitionFile], rest_lf: pl.LazyFrame, rest_rows: int
    ) -> list[PartitionFile]:
        # The rebuild needs every reading of each device range: those of the files copied
        # in (read here, range by range) and those of the rest, as they are written.
        copied = (
            ChunkedFrame(
                _conformed(
                    pl.concat([pl.scan_parquet(f.path(folder)) for f in copies]),
                    READINGS,
                    batch_day,
                ),
                ours.ranges,
            )
            if copies
            else None
        )
        if not rest_rows:
            assert copied is not None  # n_readings > 0 rows are somewhere
            for i in range(len(copied) if days else 0):
                hand_over(i, copied.chunk(i))
            return []

        def with_copied(i: int, chunk: pl.DataFrame) -> None:
            hand_over(i, chunk if copied is None else pl.concat([copied.chunk(i), chunk]))

        days_of_rest = rest_lf.select(pl.col("local_day").drop_nulls().unique().sort())
        written = write_partition(
            ChunkedFrame(rest_lf, ours.ranges),
            "stg_readings",
            batch_day,
            run_id,
            folder,
            rest_rows,
            local_days=tuple(days_of_rest.collect().to_series().to_list()),
            on_chunk=with_copied,
        )
        return [written]

    # The readings (written, then their marts rebuilt range by range as the writer reads
    # them) go on in a background thread while this one writes the packets and checks the
    # accounting: neither keeps both cores busy alone. Only this thread touches DuckDB.
    background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="zwy-readings")
    readings_job = background.submit(write_readings)
    try:
        if n_packets:
            source: Frame = packets_in
            n_source = n_packets
            if packets_files:
                copies, source, n_source = _adopt_staged(
                    packets_files, "stg_packets", batch_day, run_id, folder, n_packets
                )
                new_files.extend(copies)
            if n_source:
                packet_rows = (
                    None if chunk_rows is None else max(1, chunk_rows // _PACKET_ROW_WEIGHT)
                )
                ranges = _plan(source.lazy(), n_source, None, 0, packet_rows)
                new_files.append(
                    write_partition(
                        ChunkedFrame(source, ranges),
                        "stg_packets",
                        batch_day,
                        run_id,
                        folder,
                        n_source,
                    )
                )
        t = lap("write_packets", t)

        # Raw partitions and the accounting check first: a violation fails in seconds.
        con.execute("begin transaction")
        in_transaction = True
        _replace_registry(con, references, rows)
        for table, frame in (("raw_ingest_files", raw_files), ("raw_quarantine", raw_quarantine)):
            con.execute(f"delete from {table} where batch_day = ?", [batch_day])
            rows[table] = _insert(con, table, frame)
        for table in WASTE_TABLES:
            # The day's ledger and manifest rows (none when the stream was not loaded).
            con.execute(f"delete from {table} where batch_day = ?", [batch_day])
            given = (waste or {}).get(table)
            if given is not None:
                rows[table] = _insert(
                    con,
                    table,
                    _check_batch_day(
                        given.with_columns(run_id=pl.lit(run_id)), "waste row", batch_day
                    ),
                )
        check_accounting(
            con,
            batch_day,
            _packets_of_files([f.path(folder) for f in new_files if f.table_name == "stg_packets"]),
        )
        t = lap("raw_and_accounting", t)

        new_files.extend(readings_job.result())
        t = lap("write_readings", t)
        marts = marts_rebuild.result() if days else None
        t = lap("rebuild", t)

        record_partitions(con, batch_day, new_files)
        create_views(con, folder)
        rows["stg_packets"], rows["stg_readings"] = n_packets, n_readings
        if marts is not None:
            _replace_marts(con, marts, days, rows)
        else:
            rows["mart_hourly_values"] = rows["mart_daily_values"] = 0
        con.execute("commit")
        in_transaction = False
        t = lap("views_marts_commit", t)
    except BaseException as exc:
        abandon.set()
        if in_transaction:
            try:
                con.execute("rollback")
            except duckdb.Error:  # e.g. the commit itself failed: nothing left to roll back
                log.exception("rollback of batch %s failed", batch_day)
        background.shutdown(wait=True)  # before deleting what it wrote
        # A readings file the background finished before it heard of the failure goes too.
        finished = [f for f in _finished(readings_job) if f not in new_files]
        delete_files([f.path(folder) for f in new_files + finished])
        if isinstance(exc, duckdb.Error) or (
            isinstance(exc, WarehouseError) and not isinstance(exc, AccountingError)
        ):
            raise WarehouseError(f"load of batch {batch_day} (run {run_id}) failed: {exc}") from exc
        raise
    finally:
        background.shutdown(wait=True)
        marts_rebuild.close()

    current = {f.file for f in new_files}
    failures = delete_files([p.path(folder) for p in previous if p.file not in current])
    for failure in failures:  # committed: a file left behind is an orphan, removed next time
        log.warning("could not delete superseded partition file %s", failure)
    lap("cleanup", t)
    return LoadResult(
        batch_day=batch_day,
        rows=rows,
        affected_days=tuple(days),
        duration_s=time.perf_counter() - started,
        files={
            table: [f.file for f in new_files if f.table_name == table]
            for table in sorted({f.table_name for f in new_files})
        },
        timings=timings,
    )
