"""The big staging tables as Parquet partitions behind DuckDB views.

``stg_readings`` and ``stg_packets`` are views. Each ``batch_day`` partition is one Parquet
file written by Polars (zstd, sorted by ``mn, data_time_utc``), stored next to the DuckDB
file::

    <dir of zwy.duckdb>/<stem>_parquet/<table>/batch_day=YYYY-MM-DD/<run_id>-<uuid>.parquet

(``data/warehouse/zwy.duckdb`` → ``data/warehouse/zwy_parquet/…``; the stem keeps two
warehouses in one folder apart). ``meta_partitions`` records the current file of each
``(table_name, batch_day)`` with its path *relative to that folder*; the views list the
current files with *absolute* paths, because DuckDB resolves a relative ``read_parquet``
path against the process's working directory, not against the database file. So after
moving the warehouse folder, run :func:`refresh_views` (``python -m warehouse
refresh-views <file>``) once to point the views at the new place.

Replacing a partition is atomic: the new file gets a unique name, and the switch is the
``meta_partitions`` row plus ``CREATE OR REPLACE VIEW`` in the loader's transaction (DDL
is transactional in DuckDB). Superseded files are deleted only after the commit; files
that no ``meta_partitions`` row names (a crash between write and commit, or between commit
and delete) are orphans and are removed by :func:`remove_orphan_files`, which the loader
runs for the batch it loads. Only the single writer (it holds the DuckDB lock) may do so.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow.parquet as pq

from zwy.contracts import (
    PACKETS,
    READINGS,
    TZ_LOCAL,
    UTC_DT,
    conform_lazy,
    sink_parquet_chunks,
)
from zwy.errors import WarehouseError

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


def stg_packets(packets: pl.LazyFrame, batch_day: date, stream: pl.Expr) -> pl.LazyFrame:
    """Return the accepted frames among PACKETS rows in the :data:`STG_PACKETS` contract.

    Rows whose ``status`` is not ``ok`` are left out; ``stream`` gives each row's stream;
    ``data_time`` (aware) becomes the Beijing wall clock as sent plus ``data_time_utc``.
    The parse writes its accepted frames this way, and the loader shapes other PACKETS
    input the same way.
    """
    if "status" in packets.collect_schema().names():
        packets = packets.filter(pl.col("status") == "ok")
    local = pl.col("data_time").dt.convert_time_zone(TZ_LOCAL)
    return conform_lazy(
        packets.with_columns(
            batch_day=pl.lit(batch_day),
            stream=stream,
            data_time_utc=pl.col("data_time").dt.convert_time_zone("UTC"),
            # DuckDB keeps no zone per value: store what the device sent, the Beijing wall clock.
            data_time=local.dt.replace_time_zone(None),
        ),
        STG_PACKETS,
    )


#: The staging tables kept as Parquet partitions: view name → column contract.
STAGING_TABLES: dict[str, pl.Schema] = {
    "stg_packets": STG_PACKETS,
    "stg_readings": READINGS,
}

#: Sort order inside a partition file: row groups then prune well on device and time.
SORT_KEY: tuple[str, ...] = ("mn", "data_time_utc")

#: The column whose days a partition file records in ``meta_partitions.local_days``.
_DAYS_COLUMN: dict[str, str] = {"stg_readings": "local_day"}

#: Rows per Parquet row group. Readings rows are small (~3 bytes compressed): 256 Ki rows
#: make ~0.8 MB row groups, 68 per full district day. Packets carry the raw frame text
#: (~450 bytes): 64 Ki rows keep a row group near 30 MB uncompressed.
ROW_GROUP_ROWS: dict[str, int] = {"stg_readings": 262_144, "stg_packets": 65_536}

#: Comments of the views (``CREATE OR REPLACE VIEW`` drops them: they are set again).
VIEW_COMMENTS: dict[str, str] = {
    "stg_packets": (
        "staging layer: one row per accepted HJ 212 frame; partition batch_day; view over "
        "Parquet partitions (zstd files per batch_day, each sorted by mn, data_time_utc, "
        "listed in meta_partitions)"
    ),
    "stg_readings": (
        "staging layer: one row per measurement value (mn, cn, data_time, pollutant, field) "
        "per delivery; partition batch_day; late re-sends kept, deduplicated in the marts; "
        "view over Parquet partitions (zstd files per batch_day, one per stream when "
        "copied in as staged, each sorted by mn, data_time_utc, listed in meta_partitions)"
    ),
}
COLUMN_COMMENTS: dict[str, dict[str, str]] = {
    "stg_packets": {"data_time": "HJ 212 DataTime as sent: Beijing wall clock (UTC+8)"},
    "stg_readings": {
        "local_day": "Asia/Shanghai calendar day of data_time_utc (the compliance day)"
    },
}

_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


def _duckdb_type(dtype: pl.DataType) -> str:
    if isinstance(dtype, pl.Datetime):
        return "TIMESTAMPTZ" if dtype.time_zone else "TIMESTAMP"
    types: dict[type[pl.DataType], str] = {
        pl.Date: "DATE",
        pl.String: "VARCHAR",
        pl.Categorical: "VARCHAR",
        pl.Int64: "BIGINT",
        pl.Float64: "DOUBLE",
        pl.Boolean: "BOOLEAN",
    }
    for polars_type, sql_type in types.items():
        if isinstance(dtype, polars_type):
            return sql_type
    raise WarehouseError(f"no DuckDB type for Polars {dtype}")  # pragma: no cover


def schema_hash(schema: pl.Schema) -> str:
    """Fingerprint of a column contract (names and types, in order).

    Text is text: a column of dictionary codes (Categorical) counts as String, so files
    written before the staging contracts coded their text columns keep their contract.
    """
    text = ",".join(
        f"{name}:{pl.String() if isinstance(dtype, pl.Categorical) else dtype}"
        for name, dtype in schema.items()
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def sql_string(text: str) -> str:
    """Return ``text`` as a SQL string literal (quotes doubled), for SQL built as text."""
    return "'" + text.replace("'", "''") + "'"


# --- where the files are -------------------------------------------------------------------


def database_path(con: duckdb.DuckDBPyConnection) -> Path:
    """Return the file of the connection's database.

    Raises:
        WarehouseError: the database is in memory (it has no folder for Parquet files).

    """
    row = con.execute(
        "select path from duckdb_databases() where database_name = current_database()"
    ).fetchone()
    if row is None or not row[0] or row[0] == ":memory:":
        raise WarehouseError(
            "the warehouse is an in-memory database: pass parquet_dir for its Parquet partitions"
        )
    return Path(row[0]).resolve()


def parquet_dir_of(con: duckdb.DuckDBPyConnection) -> Path:
    """Return the Parquet folder of a warehouse file: ``<dir>/<stem>_parquet``."""
    db = database_path(con)
    return db.parent / f"{db.stem}_parquet"


def partition_dir(parquet_dir: Path, table: str, batch_day: date) -> Path:
    """Return the folder of one partition's files."""
    return parquet_dir / table / f"batch_day={batch_day.isoformat()}"


# --- meta_partitions ------------------------------------------------------------------------


@dataclass(frozen=True)
class PartitionFile:
    """One Parquet file of a staging table partition (a ``meta_partitions`` row)."""

    table_name: str
    batch_day: date
    file: str  # relative to the Parquet folder, '/'-separated
    rows: int
    bytes: int
    sha256: str
    schema_hash: str
    local_days: tuple[date, ...] | None  # stg_readings: the local days it holds
    run_id: str

    def path(self, parquet_dir: Path) -> Path:
        """Absolute path of the file under ``parquet_dir``."""
        return parquet_dir / self.file

    @classmethod
    def written(
        cls,
        path: Path,
        parquet_dir: Path,
        table: str,
        batch_day: date,
        run_id: str,
        rows: int,
        local_days: tuple[date, ...] | None,
    ) -> PartitionFile:
        """Describe the file just written at ``path`` (its size and hash read from disk)."""
        return cls(
            table_name=table,
            batch_day=batch_day,
            file=path.relative_to(parquet_dir).as_posix(),
            rows=rows,
            bytes=os.path.getsize(path),
            sha256=_sha256(path),
            schema_hash=schema_hash(STAGING_TABLES[table]),
            local_days=local_days,
            run_id=run_id,
        )


_META_COLUMNS = "table_name, batch_day, file, rows, bytes, sha256, schema_hash, local_days, run_id"


def current_partitions(
    con: duckdb.DuckDBPyConnection,
    table: str | None = None,
    batch_day: date | None = None,
    touching: Sequence[date] | None = None,
) -> list[PartitionFile]:
    """Return the current files, from ``meta_partitions``, ordered by table and batch_day.

    ``touching``: only files whose local days (``local_days``) include one of these days,
    or are unknown.
    """
    sql = f"select {_META_COLUMNS} from meta_partitions where true"
    params: list[Any] = []
    if table is not None:
        sql += " and table_name = ?"
        params.append(table)
    if batch_day is not None:
        sql += " and batch_day = ?"
        params.append(batch_day)
    if touching is not None:
        sql += " and (local_days is null or list_has_any(local_days, ?::date[]))"
        params.append(list(touching))
    rows = con.execute(sql + " order by table_name, batch_day, file", params).fetchall()
    return [
        PartitionFile(
            table_name=r[0],
            batch_day=r[1],
            file=r[2],
            rows=r[3],
            bytes=r[4],
            sha256=r[5],
            schema_hash=r[6],
            local_days=None if r[7] is None else tuple(r[7]),
            run_id=r[8],
        )
        for r in rows
    ]


def batch_filter(
    con: duckdb.DuckDBPyConnection,
    first: date,
    last: date,
    alias: str = "",
    table: str = "stg_readings",
) -> str:
    """Return SQL (`` and ...``) keeping the rows of the batches whose files hold a local day in ``[first, last]``.

    A filter on ``local_day`` alone makes DuckDB open every file of the view to read its
    statistics (0.08-0.15 s a query at a year of history, measured); ``meta_partitions``
    records each file's local days (:func:`current_partitions` ``touching``), and a filter on
    ``batch_day`` (a folder name) skips the other files unopened. Empty when no file is
    recorded or some file's days are unknown (the view is then read whole, as before);
    `` and false`` when no file holds those days.

    Args:
        con: an open warehouse connection.
        first: first local day wanted.
        last: last local day wanted.
        alias: the view's alias in the query (``r`` → ``r.batch_day``), or empty.
        table: the staging view.

    """
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    try:
        # The files holding those days, and those whose days are unknown.
        parts = current_partitions(con, table, touching=days)
        if not parts:  # none: an empty view, or one whose files meta_partitions lacks
            recorded = con.execute(
                "select 1 from meta_partitions where table_name = ? limit 1", [table]
            ).fetchone()
            return " and false" if recorded else ""
    except duckdb.CatalogException:  # a warehouse from before migration 0002: no partitions
        return ""
    if any(p.local_days is None for p in parts):
        return ""
    keep = sorted({p.batch_day for p in parts})
    column = f"{alias}.batch_day" if alias else "batch_day"
    return f" and {column} in (" + ", ".join(f"DATE '{b.isoformat()}'" for b in keep) + ")"


def record_partitions(
    con: duckdb.DuckDBPyConnection,
    batch_day: date,
    files: Sequence[PartitionFile],
    tables: Sequence[str] = tuple(STAGING_TABLES),
) -> None:
    """Make ``files`` the current files of ``tables`` for ``batch_day`` (no transaction)."""
    con.execute(
        "delete from meta_partitions where batch_day = ? and list_contains(?, table_name)",
        [batch_day, list(tables)],
    )
    for f in files:
        con.execute(
            f"insert into meta_partitions ({_META_COLUMNS}, written_at) "
            "values (?, ?, ?, ?, ?, ?, ?, ?, ?, now())",
            [
                f.table_name,
                f.batch_day,
                f.file,
                f.rows,
                f.bytes,
                f.sha256,
                f.schema_hash,
                None if f.local_days is None else list(f.local_days),
                f.run_id,
            ],
        )


# --- views ----------------------------------------------------------------------------------


def view_sql(table: str, paths: Sequence[str], union_by_name: bool) -> str:
    """``SELECT`` of a staging view: the contract's columns, typed, over ``paths`` (POSIX)."""
    schema = STAGING_TABLES[table]
    if not paths:
        cols = ", ".join(
            f'cast(null as {_duckdb_type(dtype)}) as "{name}"' for name, dtype in schema.items()
        )
        return f"select {cols} where false"
    cols = ", ".join(
        f'cast("{name}" as {_duckdb_type(dtype)}) as "{name}"' for name, dtype in schema.items()
    )
    listing = ", ".join(sql_string(p) for p in paths)
    # batch_day also comes from the folder name (the loader writes only rows of the folder's
    # day): a filter on it then skips the other files unopened (1 s → 0.02 s at a year).
    return (
        f"select {cols} from read_parquet([{listing}], hive_partitioning = true, "
        "hive_types = {'batch_day': DATE}, "
        f"union_by_name = {'true' if union_by_name else 'false'})"
    )


def create_views(
    con: duckdb.DuckDBPyConnection, parquet_dir: Path, check_files: bool = False
) -> dict[str, int]:
    """``CREATE OR REPLACE`` the staging views from ``meta_partitions`` (no transaction).

    ``union_by_name`` makes DuckDB read every file's footer whenever a query is bound (1 s
    per query at a year of history, measured): it is used only while files of different
    column contracts coexist (after a schema change), detected from
    ``meta_partitions.schema_hash``; otherwise DuckDB takes the columns from the first file
    (the view's explicit, typed column list fixes names and types either way).

    Returns:
        Number of files per view.

    Raises:
        WarehouseError: ``check_files`` and a listed file is missing.

    """
    counts: dict[str, int] = {}
    for table, schema in STAGING_TABLES.items():
        parts = current_partitions(con, table)
        # Strings, not Paths: a year of history is thousands of files a night.
        base = parquet_dir.as_posix()
        paths = [f"{base}/{p.file}" for p in parts]
        if check_files:
            missing = [p for p in paths if not os.path.isfile(p)]
            if missing:
                raise WarehouseError(
                    f"{table}: {len(missing)} partition file(s) listed in meta_partitions are "
                    f"missing under {parquet_dir}: {missing[:5]}"
                )
        contract = schema_hash(schema)
        mixed = any(p.schema_hash != contract for p in parts)
        con.execute(f"create or replace view {table} as {view_sql(table, paths, mixed)}")
        con.execute(f"comment on view {table} is {sql_string(VIEW_COMMENTS[table])}")
        for column, text in COLUMN_COMMENTS[table].items():
            con.execute(f"comment on column {table}.{column} is {sql_string(text)}")
        counts[table] = len(paths)
    return counts


def refresh_views(
    con: duckdb.DuckDBPyConnection, parquet_dir: Path | None = None
) -> dict[str, int]:
    """Rebuild the staging views from ``meta_partitions`` and the warehouse's current folder.

    Run it after moving the warehouse folder (the views hold absolute paths). Needs a
    read-write connection; one transaction.

    Args:
        con: read-write connection to a migrated warehouse.
        parquet_dir: the Parquet folder; default: ``<stem>_parquet`` next to the DuckDB file.

    Returns:
        Number of files per view.

    Raises:
        WarehouseError: a listed file is missing (nothing changes).

    """
    folder = parquet_dir or parquet_dir_of(con)
    con.execute("begin transaction")
    try:
        counts = create_views(con, folder, check_files=True)
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return counts


# --- files ----------------------------------------------------------------------------------


def remove_orphan_files(
    con: duckdb.DuckDBPyConnection,
    parquet_dir: Path | None = None,
    batch_day: date | None = None,
) -> list[Path]:
    """Delete partition files that ``meta_partitions`` does not list; return them.

    Only the process holding the read-write connection (the single writer) may call this.

    Args:
        con: read-write connection.
        parquet_dir: the Parquet folder; default next to the DuckDB file.
        batch_day: look only in this batch's folders (the loader's case).

    """
    folder = parquet_dir or parquet_dir_of(con)
    # Only the batch's own files when one is named: a year of history lists thousands.
    current = {p.path(folder) for p in current_partitions(con, batch_day=batch_day)}
    removed: list[Path] = []
    for table in STAGING_TABLES:
        pattern = f"batch_day={batch_day.isoformat()}" if batch_day else "batch_day=*"
        for day_dir in sorted((folder / table).glob(pattern)):
            for path in sorted(day_dir.glob("*.parquet")):
                if path not in current:
                    path.unlink(missing_ok=True)
                    removed.append(path)
            _remove_if_empty(day_dir)
    return removed


def _remove_if_empty(directory: Path) -> None:
    try:
        directory.rmdir()
    except OSError:
        pass  # not empty, or already gone


def delete_files(paths: Sequence[Path]) -> list[str]:
    """Delete ``paths`` (and their partition folder when it gets empty); return the failures."""
    failures = []
    for path in paths:
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            failures.append(f"{path}: {exc}")
        _remove_if_empty(path.parent)
    return failures


def new_file_path(parquet_dir: Path, table: str, batch_day: date, run_id: str) -> Path:
    """Return a fresh, unique file name in the partition's folder (never the current file)."""
    stem = _SAFE_NAME.sub("_", run_id).strip("._") or "run"
    name = f"{stem[:80]}-{uuid.uuid4().hex[:12]}.parquet"
    return partition_dir(parquet_dir, table, batch_day) / name


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


# --- device ranges --------------------------------------------------------------------------

#: A half-open range of device ids ``[low, high)``; ``None`` is open. The first range of a
#: plan also holds the rows without an ``mn``.
MnRange = tuple[str | None, str | None]


def mn_predicate(mn_range: MnRange, first: bool) -> pl.Expr:
    """Rows of ``mn_range`` (and rows without mn when ``first``)."""
    low, high = mn_range
    expr = pl.lit(True)
    if low is not None:
        expr = expr & (pl.col("mn") >= pl.lit(low))
    if high is not None:
        expr = expr & (pl.col("mn") < pl.lit(high))
    return (pl.col("mn").is_null() | expr) if first else (pl.col("mn").is_not_null() & expr)


def plan_mn_ranges(sample: pl.Series, n_chunks: int) -> list[MnRange]:
    """Split the device ids into ``n_chunks`` ranges of about equal rows.

    Args:
        sample: ``mn`` of every k-th row (any order, nulls ignored).
        n_chunks: wanted number of ranges (a device is never split, so there may be fewer).

    Returns:
        Half-open ranges covering every possible ``mn``, ascending.

    """
    values = sample.drop_nulls().sort()
    bounds: list[str] = []
    if n_chunks > 1 and values.len():
        for i in range(1, n_chunks):
            bound = values[(i * values.len()) // n_chunks]
            if (not bounds or bound > bounds[-1]) and bound > values[0]:
                bounds.append(bound)
    lows: list[str | None] = [None, *bounds]
    highs: list[str | None] = [*bounds, None]
    return list(zip(lows, highs, strict=True))


def chunk_count(rows: int, chunk_rows: int | None) -> int:
    """Return the number of device ranges for ``rows`` rows at ``chunk_rows`` rows each."""
    if not chunk_rows or rows <= chunk_rows:
        return 1
    return math.ceil(rows / chunk_rows)


class ChunkedFrame:
    """The rows of a frame, one device range at a time.

    An in-memory frame gets each row's range number once (a binary search of its ``mn``
    in the range bounds), so taking a range is an integer comparison; a lazy frame (e.g.
    a scan of staging files) is filtered on the ``mn`` bounds, which Parquet statistics
    can push down.
    """

    def __init__(self, frame: pl.DataFrame | pl.LazyFrame, ranges: Sequence[MnRange]) -> None:
        """Split ``frame`` by ``ranges`` (from :func:`plan_mn_ranges`)."""
        self.ranges = list(ranges)
        self._frame: pl.DataFrame | None = None
        self._ids: pl.Series | None = None
        self._lazy = frame.lazy()
        if isinstance(frame, pl.DataFrame):
            self._frame = frame
            if len(self.ranges) > 1:
                bounds = pl.Series([high for _, high in self.ranges[:-1]], dtype=pl.String)
                mn = frame.get_column("mn").cast(pl.String)  # codes (readings) or text
                ids = bounds.search_sorted(mn, side="right")
                self._ids = pl.select(
                    pl.when(mn.is_null()).then(pl.lit(0, ids.dtype)).otherwise(ids)
                ).to_series()

    def __len__(self) -> int:
        """Return the number of ranges."""
        return len(self.ranges)

    def chunk(self, i: int, predicate: pl.Expr | None = None) -> pl.DataFrame:
        """Return the rows of range ``i`` (that match ``predicate``)."""
        if self._frame is not None:
            part = self._frame if self._ids is None else self._frame.filter(self._ids == i)
            return part if predicate is None else part.filter(predicate)
        lf = self._lazy.filter(mn_predicate(self.ranges[i], first=i == 0))
        return (lf if predicate is None else lf.filter(predicate)).collect()


# --- writing --------------------------------------------------------------------------------


def in_key_order(frame: pl.DataFrame, key: Sequence[str], *, nulls_last: bool = False) -> bool:
    """Tell whether ``frame`` is already in ``key`` order (ties in any order).

    True exactly when the stable ``frame.sort(key, nulls_last=nulls_last)`` would return
    the rows as they are. Staging rows usually arrive that way (a device's log is in time
    order, the inbox in device order), and checking adjacent rows costs a few
    milliseconds where sorting a device range by a string and a time key cost about
    0.1 s of two cores (13 CPU-s for a district day's readings).
    """
    if frame.height < 2:
        return True
    n = frame.height - 1
    earlier_equal: pl.Expr = pl.lit(True)
    descents: list[pl.Expr] = []
    for name in key:
        a, b = pl.col(name).head(n), pl.col(name).tail(n)
        # Out of order at this column, given equal earlier columns: a null where nulls
        # come last and a value after it, or a value where nulls come first and a null
        # after it, or a larger value then a smaller one.
        misplaced_null = (
            (a.is_null() & b.is_not_null()) if nulls_last else (a.is_not_null() & b.is_null())
        )
        descents.append(earlier_equal & (misplaced_null | (a > b)))
        earlier_equal = earlier_equal & a.eq_missing(b)
    return not frame.select(pl.any_horizontal(descents).any()).item()


def write_partition(
    frame: ChunkedFrame,
    table: str,
    batch_day: date,
    run_id: str,
    parquet_dir: Path,
    rows: int,
    local_days: tuple[date, ...] | None = None,
    on_chunk: Callable[[int, pl.DataFrame], None] | None = None,
) -> PartitionFile:
    """Write one partition file from ``frame`` (already of the table's contract).

    The frame is sorted one device range at a time and streamed into the Parquet writer
    of Polars (an IO-plugin source feeding ``sink_parquet``), so the sort needs memory for
    one range, not for the whole batch (a full sort of a district day took +6 GB and 16 s).
    Ranges ascend, so the file is sorted by :data:`SORT_KEY` throughout.

    Args:
        frame: the rows, of the table's contract, split into device ranges.
        table: a key of :data:`STAGING_TABLES`.
        batch_day: the partition.
        run_id: goes into the file name and ``meta_partitions``.
        parquet_dir: the warehouse's Parquet folder.
        rows: the number of rows expected: the written file is checked against it.
        local_days: stg_readings: the local days of the rows.
        on_chunk: called with each range's number and sorted rows (empty ranges too), in
            range order, before they are written: lets the caller reuse the rows it
            would otherwise read again (the loader's marts rebuild). What it raises
            aborts the write.

    Returns:
        The written file (not yet current: the caller records it).

    Raises:
        WarehouseError: writing failed or the file holds another number of rows (the
            partial file is removed).

    """
    schema = STAGING_TABLES[table]
    path = new_file_path(parquet_dir, table, batch_day, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)

    def chunks() -> Iterator[pl.DataFrame]:
        for i in range(len(frame)):
            chunk = frame.chunk(i)
            if chunk.height and not in_key_order(chunk, SORT_KEY):
                chunk = chunk.sort(list(SORT_KEY), nulls_last=False, maintain_order=True)
            if on_chunk is not None:
                on_chunk(i, chunk)
            if chunk.height:
                yield chunk

    try:
        sink_parquet_chunks(
            chunks,
            schema,
            path,
            compression="zstd",
            statistics=True,
            row_group_size=ROW_GROUP_ROWS[table],
        )
        written = pq.read_metadata(path).num_rows
    except (OSError, pl.exceptions.PolarsError) as exc:
        path.unlink(missing_ok=True)
        raise WarehouseError(f"writing {path}: {exc}") from exc
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    if written != rows:
        path.unlink(missing_ok=True)
        raise WarehouseError(f"{path}: wrote {written} rows, expected {rows}")
    return PartitionFile.written(path, parquet_dir, table, batch_day, run_id, rows, local_days)


def adopt_files(
    paths: Sequence[Path],
    table: str,
    batch_day: date,
    run_id: str,
    parquet_dir: Path,
) -> tuple[list[PartitionFile], list[Path]]:
    """Copy the staged files that already are partition files into the partition, as they are.

    A staged file qualifies when its columns are the table's contract (names, order,
    types), every row's ``batch_day`` is ``batch_day``, and its rows are in
    :data:`SORT_KEY` order. A copy is what :func:`write_partition` would write for the
    file's rows, minus reading, sorting and encoding them again (for a district day's
    readings: 17 of the load's 33 CPU-s). Empty files qualify and are not copied.

    Returns:
        The copies (not yet current: the caller records them), and the files that do not
        qualify, whose rows the caller writes itself.

    Raises:
        WarehouseError: a copy failed (the copies made are removed).

    """
    schema = STAGING_TABLES[table]
    days_column = _DAYS_COLUMN.get(table)
    qualified: list[tuple[Path, int, tuple[date, ...] | None]] = []
    rest: list[Path] = []
    for src in paths:
        try:
            same = list(pl.read_parquet_schema(src).items()) == list(schema.items())
            key = (
                pl.read_parquet(
                    src, columns=[*SORT_KEY, "batch_day", *([days_column] if days_column else [])]
                )
                if same
                else None
            )
        except (OSError, pl.exceptions.PolarsError):
            key = None  # the writer reads it again and reports what is wrong
        if key is None or not (
            key["batch_day"].eq_missing(batch_day).all() and in_key_order(key, SORT_KEY)
        ):
            rest.append(src)
        elif key.height:
            local = None
            if days_column is not None:
                found = key[days_column].drop_nulls().unique().sort()
                local = tuple(found.to_list())
            qualified.append((src, key.height, local))
    copies: list[PartitionFile] = []
    try:
        for src, n, local in qualified:
            dst = new_file_path(parquet_dir, table, batch_day, run_id)
            dst.parent.mkdir(parents=True, exist_ok=True)
            # A copy, not a link: the staging folder is rewritten by the next run of the day.
            shutil.copyfile(src, dst)
            copies.append(
                PartitionFile.written(dst, parquet_dir, table, batch_day, run_id, n, local)
            )
    except OSError as exc:
        delete_files([c.path(parquet_dir) for c in copies])
        raise WarehouseError(f"copying staged {table} files into batch {batch_day}: {exc}") from exc
    return copies, rest


def scan_partitions(parquet_dir: Path, parts: Sequence[PartitionFile]) -> pl.LazyFrame | None:
    """Lazy scan of partition files with the table's columns (None when no file).

    Files of different column types mix: those written before the staging contracts held
    their text columns as dictionary codes (Categorical) hold them as String. The files
    are scanned in groups of the same footer schema, each cast to the contract.
    """
    if not parts:
        return None
    tables = {p.table_name for p in parts}
    if len(tables) != 1:
        raise WarehouseError(f"scan of files of several tables: {sorted(tables)}")
    schema = STAGING_TABLES[tables.pop()]
    groups: dict[tuple[tuple[str, str], ...], list[Path]] = {}
    for part in parts:
        path = part.path(parquet_dir)
        kind = tuple((name, str(dtype)) for name, dtype in pl.read_parquet_schema(path).items())
        groups.setdefault(kind, []).append(path)
    scans = []
    for paths in groups.values():
        lf = pl.scan_parquet(
            paths, hive_partitioning=False, missing_columns="insert", extra_columns="ignore"
        )
        scans.append(conform_lazy(lf, schema))
    return scans[0] if len(scans) == 1 else pl.concat(scans, how="vertical")


# --- migration 0002: staging tables → Parquet -----------------------------------------------

LEGACY_TABLES: dict[str, str] = {
    "stg_packets": "_stg_packets_0001",
    "stg_readings": "_stg_readings_0001",
}


def adopt_legacy_staging(con: duckdb.DuckDBPyConnection, parquet_dir: Path | None = None) -> None:
    """Move the rows of the old staging tables into Parquet partitions (migration 0002).

    Runs inside the migration's transaction, after its SQL renamed the old tables to
    :data:`LEGACY_TABLES`: writes one file per (table, batch_day) with DuckDB's ``COPY``,
    records them, drops the old tables, creates the views. On error the written files
    are removed (the caller rolls back).
    """
    written: list[Path] = []
    try:
        needs_folder = any(
            con.execute(f"select count(*) from {legacy}").fetchone() != (0,)
            for legacy in LEGACY_TABLES.values()
        )
        folder = parquet_dir or (parquet_dir_of(con) if needs_folder else Path("."))
        for table, legacy in LEGACY_TABLES.items():
            schema = STAGING_TABLES[table]
            cols = ", ".join(f'"{name}"' for name in schema)
            days = [
                r[0]
                for r in con.execute(
                    f"select distinct batch_day from {legacy} order by 1"
                ).fetchall()
            ]
            parts = []
            for day in days:
                path = new_file_path(folder, table, day, "migrated-0002")
                path.parent.mkdir(parents=True, exist_ok=True)
                written.append(path)
                con.execute(
                    f"copy (select {cols} from {legacy} where batch_day = {sql_string(day.isoformat())} "
                    f"order by mn nulls first, data_time_utc nulls first) to {sql_string(path.as_posix())} "
                    f"(format parquet, compression zstd, row_group_size {ROW_GROUP_ROWS[table]})"
                )
                n, local_days = con.execute(
                    f"select count(*), list_sort(list(distinct local_day) filter (where local_day is not null)) "
                    f"from {legacy} "
                    f"where batch_day = ?"
                    if table == "stg_readings"
                    else f"select count(*), null from {legacy} where batch_day = ?",
                    [day],
                ).fetchone() or (0, None)
                days_of = None if local_days is None else tuple(local_days)
                parts.append(
                    PartitionFile.written(path, folder, table, day, "migration-0002", n, days_of)
                )
            for day in days:
                record_partitions(con, day, [p for p in parts if p.batch_day == day], [table])
            con.execute(f"drop table {legacy}")
        create_views(con, folder)
    except BaseException:
        delete_files(written)
        raise
