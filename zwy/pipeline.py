"""The nightly pipeline for one day: discover → parse → transform → load, stage by stage.

Each stage is a plain function of ``(day, stream, settings)`` that reads and writes Parquet
files under ``staging/<day>/<stream>/`` and returns a small JSON-able dict of paths and counts,
so that ``zwy run`` and the Airflow DAG call exactly the same code and never pass DataFrames
between tasks. Only :func:`load_day` opens the DuckDB warehouse (the single writer).

Layout of the inbox: ``<inbox>/<YYYY-MM-DD>/<stream>/<file>``; ``*.log``/``*.txt`` are HJ 212
packet logs, ``*.csv`` platform exports. Any other file is recorded as unreadable.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import json
import queue
import shutil
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import polars as pl

from zwy.contracts import (
    CODE,
    DUST_STREAM,
    INGEST_FILES,
    QUARANTINE,
    READINGS,
    STREAMS,
    WASTE_STREAM,
    conform,
    conform_lazy,
    empty,
    sink_parquet_chunks,
)
from zwy.errors import InputFileError
from zwy.hj212.values import CompactValues, frames_dir, read_staged, write_staged
from zwy.locks import file_lock, remove_held
from zwy.registry import Registry, load_registry
from zwy.runtime import batch_stage
from zwy.settings import Settings, get_settings

HJ212_SUFFIXES = {".log", ".txt", ".hj212"}
EXPORT_SUFFIXES = {".csv"}
WASTE_SUFFIXES = {".xlsx", ".xls", ".csv"}

StageCallback = Callable[[str, str | None, str], None]


@dataclass(frozen=True)
class InputFile:
    """One file found in the inbox for a day and stream."""

    stream: str
    path: Path
    rel_path: str  # relative to the inbox root: stable across machines, used as source_file
    parser: str  # hj212 | platform_export | unsupported


@dataclass
class RunSummary:
    """What a one-day run did, for the CLI's summary table and the runs table."""

    run_id: str
    day: date
    status: str
    stages: list[dict[str, Any]] = field(default_factory=list)
    files: pl.DataFrame = field(default_factory=lambda: empty(INGEST_FILES))
    duration_s: float = 0.0


if TYPE_CHECKING:
    from polars._typing import ParquetCompression


@dataclass
class _GroupParsed:
    """A parse worker's answer for one group of logs (its values part already written).

    Attributes:
        errors: the group's unreadable logs, by name.
        prints: each log's (sha256, bytes, arrival time).
        packets: every frame found (PACKETS); None when the logs held no line.
        quarantine: the quarantined frames (QUARANTINE).
        per_file: the counts per log (:meth:`zwy.hj212.parse.ParseResult.per_file`).
        n_values: the rows of the group's values part.

    """

    errors: dict[str, InputFileError]
    prints: dict[str, tuple[str, int, datetime]]
    packets: pl.DataFrame | None = None
    quarantine: pl.DataFrame | None = None
    per_file: pl.DataFrame | None = None
    n_values: int = 0


def staging_day(settings: Settings, day: date) -> Path:
    """Return ``day``'s staging folder (one sub-folder per stream, the loaded marker)."""
    return settings.staging / day.isoformat()


def stage_dir(settings: Settings, day: date, stream: str) -> Path:
    """Return the staging folder of ``day`` and ``stream`` (created if needed)."""
    d = staging_day(settings, day) / stream
    d.mkdir(parents=True, exist_ok=True)
    return d


#: Written into a day's staging folder when the day is loaded: the folder's files up to
#: then are in the warehouse.
LOADED_MARKER = "_loaded.json"

#: Folder of the staging root holding one lock file per day (``<day>.lock``).
LOCKS_DIR = ".locks"

_P = ParamSpec("_P")
_R = TypeVar("_R")


def staging_lock(settings: Settings, day: date) -> Path:
    """Return the lock file of ``day``'s staging folder (see :mod:`zwy.locks`)."""
    return settings.staging / LOCKS_DIR / f"{day.isoformat()}.lock"


def uses_staging(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Decorate a stage taking ``day`` and ``settings``: it holds the day's staging lock shared.

    :func:`prune_staging` never removes a day's folder while a stage of that day (a
    backfill's parse, say) is using it; stages of one day do not block one another.
    """
    sig = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        bound = sig.bind(*args, **kwargs)
        settings = bound.arguments.get("settings") or get_settings()
        with file_lock(staging_lock(settings, bound.arguments["day"]), shared=True):
            return fn(*args, **kwargs)

    return wrapper


def mark_loaded(settings: Settings, day: date, run_id: str) -> Path:
    """Record in ``day``'s staging folder that its files are loaded (run id and time)."""
    marker = staging_day(settings, day) / LOADED_MARKER
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(
        json.dumps(
            {"day": day.isoformat(), "run_id": run_id, "loaded_at": datetime.now(UTC).isoformat()}
        )
    )
    return marker


def prune_staging(settings: Settings, loaded_day: date) -> list[date]:
    """Remove the staging folders of days more than ``staging_keep_days`` before ``loaded_day``.

    A day's staging is a copy of what its load put in the warehouse (the packets and
    readings files are copied into the warehouse's partitions), plus the parsed values it
    was made from; at district scale about 240 MB a day, more than the warehouse grows by.
    Only folders that were loaded (:data:`LOADED_MARKER`) and have not been staged again
    since (no file newer than the marker: a rerun in progress) go; folders that are not a
    day's, and days staged but never loaded, stay. ``staging_keep_days = 0`` keeps all.
    A day whose lock a stage holds (:func:`uses_staging`) is left for a later load.

    Returns:
        The days whose staging was removed, oldest first.

    """
    keep = settings.staging_keep_days
    root = settings.staging
    if keep == 0 or not root.is_dir():
        return []
    cutoff = loaded_day - timedelta(days=keep)
    removed: list[date] = []
    for folder in sorted(root.iterdir()):
        try:
            day = date.fromisoformat(folder.name)
        except ValueError:
            continue
        # Checked first without the lock (which would leave a lock file for every day kept),
        # then again under it.
        if day >= cutoff or not folder.is_dir() or not _prunable(folder):
            continue
        lock = staging_lock(settings, day)
        # Without waiting: a stage of that day (a backfill) is using the folder; the next
        # night's load will try again.
        with file_lock(lock, shared=False, blocking=False) as held:
            if not held or not _prunable(folder):
                continue
            shutil.rmtree(folder)
            remove_held(lock)
        removed.append(day)
    return removed


def _prunable(folder: Path) -> bool:
    """Whether a day's staging folder was loaded and not staged again since."""
    marker = folder / LOADED_MARKER
    if not marker.is_file():
        return False
    loaded_at = marker.stat().st_mtime
    files = (p for p in folder.rglob("*") if p.is_file() and p != marker)
    return not any(p.stat().st_mtime > loaded_at for p in files)


def discover_inputs(inbox: Path, day: date, stream: str) -> list[InputFile]:
    """List the files delivered for ``day`` and ``stream``, sorted by name.

    Telemetry streams: ``.log``/``.txt``/``.hj212`` are HJ 212 logs, ``.csv`` platform
    exports. The solid-waste stream: ``.xlsx``/``.xls``/``.csv`` are ledgers and manifests.
    The dust stream: HJ 212 logs of the site monitors, ``.csv`` the station's hourly data.
    """
    folder = inbox / day.isoformat() / stream
    if not folder.is_dir():
        return []
    out = []
    for p in sorted(folder.iterdir()):
        if not p.is_file() or p.name.startswith("."):
            continue
        suffix = p.suffix.lower()
        if stream == WASTE_STREAM:
            parser = "waste" if suffix in WASTE_SUFFIXES else "unsupported"
        elif stream == DUST_STREAM and suffix in EXPORT_SUFFIXES:
            parser = "station"  # the nearest station's hourly file (UCI layout)
        else:
            parser = (
                "hj212"
                if suffix in HJ212_SUFFIXES
                else "platform_export"
                if suffix in EXPORT_SUFFIXES
                else "unsupported"
            )
        out.append(InputFile(stream, p, p.relative_to(inbox).as_posix(), parser))
    return out


def fingerprint(path: Path, data: bytes | memoryview | None = None) -> tuple[str, int, datetime]:
    """Return (sha256 hex, size in bytes, arrival time) of a file; arrival is its mtime, UTC.

    ``data``: the file's bytes when the caller has read them already (hashed instead of
    reading the file again).
    """
    h = hashlib.sha256()
    if data is not None:
        h.update(data)
    else:
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):
                h.update(chunk)
    st = path.stat()
    return h.hexdigest(), st.st_size, datetime.fromtimestamp(st.st_mtime, tz=UTC)


#: The per-file counts of ``raw_ingest_files`` that parsing fills in (0 for a file that has
#: none, e.g. an unreadable one).
_COUNT_KEYS = (
    "lines_total",
    "noise_lines",
    "frames_found",
    "frames_loaded",
    "frames_quarantined",
    "values_loaded",
)


def _file_counts(
    *, lines: int, noise: int, found: int, loaded: int, quarantined: int, values: int = 0
) -> dict[str, int]:
    """Return the counts of a file read by a non-HJ 212 reader (its rows stand for frames)."""
    return dict(zip(_COUNT_KEYS, (lines, noise, found, loaded, quarantined, values), strict=True))


def _remove(path: Path) -> None:
    """Remove a staging file or dataset folder of an earlier run, if there is one."""
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _reset_dataset(path: Path) -> None:
    """Make ``path`` an empty folder (a rerun must not find an earlier run's parts)."""
    _remove(path)
    path.mkdir(parents=True)


#: Footer metadata of a staged values part written without statistics: its smallest and
#: largest ``mn`` and how many rows have none, as JSON ``[lo, hi, nulls]``.
MN_BOUNDS_KEY = "zwy:mn_bounds"


class _StagedValues:
    """Write a parse's values into the stage folder, group by group, compact (bounded memory).

    ``path`` (``values.parquet``) becomes a folder of ``part-NNNNN.parquet`` files, one per
    parse group or platform export, each a :func:`zwy.hj212.values.write_staged` part: the
    values' rows with their frame and key numbers, the frames beside them in
    ``frames.parquet/``, the keys and the part's ``mn`` bounds (:data:`MN_BOUNDS_KEY`, all
    the transform reads before it reads a part) in its footer. Written by Polars' own writer
    without statistics; an earlier run's parts are removed first, so a rerun leaves only its
    own. A part can be numbered first (:meth:`reserve`) and written later from another
    thread (:meth:`write_part`), as the parse workers do with their groups' values.
    """

    def __init__(self, path: Path, compression: ParquetCompression = "snappy") -> None:
        """Start the dataset at ``path`` (removing an earlier run's parts and frames)."""
        self.path = path
        self.compression = compression
        self.rows = 0
        self._parts = 0  # reserved
        self._written = 0
        _reset_dataset(path)
        _reset_dataset(frames_dir(path))

    def write(self, values: pl.DataFrame) -> None:
        """Write a VALUES frame (e.g. a platform export's) as the next part."""
        if not values.height and self._parts:
            return
        self.add(self.write_part(self.reserve(), CompactValues.of(values)))

    def reserve(self) -> int:
        """Return the number of the next part, to be written later by :meth:`write_part`.

        Parts are numbered in the order they are reserved, whichever thread writes them
        and whenever: a rerun numbers the same groups the same way.
        """
        self._parts += 1
        return self._parts - 1

    def write_part(self, part: int, values: CompactValues) -> int:
        """Write ``values`` as part ``part`` (from :meth:`reserve`); return its rows.

        Safe from a worker thread (it writes its own files and no shared state); the
        caller counts the rows in with :meth:`add`.
        """
        bounds = {MN_BOUNDS_KEY: json.dumps(list(values.mn_bounds()))}
        return write_staged(
            _staged_values(values),
            self.path / f"part-{part:05d}.parquet",
            compression=self.compression,
            metadata=bounds,
        )

    def add(self, rows: int) -> None:
        """Count ``rows`` written by :meth:`write_part` into the dataset's total."""
        self.rows += rows
        self._written += 1

    def close(self) -> int:
        """Finish the dataset (one empty part when nothing was written); return rows."""
        if not self._written:
            self.add(self.write_part(self.reserve(), CompactValues.empty()))
        return self.rows


class _ParquetStream:
    """Write frames of one contract into one Parquet file as they come (bounded memory).

    Polars' streaming sink runs in a thread and pulls the frames :meth:`write` queues (at
    most two wait), so the file is written while the caller goes on, as the parts of
    :class:`_ParquetAppender` are, but is one file: the loader copies a staged file that
    already meets its partition's contract into the warehouse as it is, and a partition
    of one file per stream keeps the staging views short (one part per parse group would
    be some twenty files a day). The file appears under its name only when complete.
    """

    _DONE = None

    def __init__(self, path: Path, schema: pl.Schema, **options: Any) -> None:
        self.path = path
        self.schema = schema
        self.rows = 0
        self._tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
        self._queue: queue.Queue[pl.DataFrame | None] = queue.Queue(maxsize=2)
        self._error: BaseException | None = None
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._sink, args=(options,), name="zwy-parquet-stream", daemon=True
        )
        _remove(path)
        self._thread.start()

    def _frames(self) -> Iterator[pl.DataFrame]:
        while (frame := self._queue.get()) is not self._DONE:
            yield frame

    def _sink(self, options: dict[str, Any]) -> None:
        try:
            sink_parquet_chunks(self._frames, self.schema, self._tmp, **options)
        except BaseException as exc:  # handed to the caller by write() or close()
            self._error = exc
        finally:
            self._stopped.set()

    def _put(self, item: pl.DataFrame | None) -> None:
        # The sink may have failed: never wait forever on a queue nobody reads.
        while not self._stopped.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue
        if self._error is not None:
            raise self._error

    def write(self, df: pl.DataFrame) -> None:
        """Queue ``df`` (of the contract) for the file."""
        self._put(conform(df, self.schema))
        self.rows += df.height

    def close(self) -> int:
        """Finish the file (an empty typed file when nothing was written); return rows."""
        self._put(self._DONE)
        self._thread.join()
        if self._error is not None:
            self._tmp.unlink(missing_ok=True)
            raise self._error
        self._tmp.replace(self.path)
        return self.rows

    def abort(self) -> None:
        """Stop after a failure elsewhere: the sink ends and its partial file goes."""
        if self._thread.is_alive():
            with contextlib.suppress(BaseException):
                self._put(self._DONE)
            self._thread.join()
        self._tmp.unlink(missing_ok=True)


#: The smallest parse group: below it, a group's fixed costs (compiled passes, a part
#: file) would outweigh the cores kept busy.
MIN_GROUP_BYTES = 4_000_000
#: A small stream is cut into about this many groups (four for each of the default two
#: workers), whatever the number of workers: the staged parts do not depend on it.
SMALL_STREAM_GROUPS = 8


def _staged_values(values: CompactValues) -> CompactValues:
    """``values`` as the stage folder keeps them: ``value_text`` only where ``value`` is null.

    The transform never reads the text of a number, and the text as sent stays where it
    came from: an HJ 212 frame's ``raw`` (staged with the packets, kept in ``stg_packets``),
    a platform export's file (recorded with its hash in the ingest manifest). A text that
    is not a number is kept here, the one place staging has it. Writing a district day's
    18 M number texts cost about 3 % of the exhaust-gas parse stage (8.87 → 8.56 CPU-s).
    ``zwy hj212 parse`` writes the full VALUES contract, texts included. A parse's values
    are already so (their every text is in ``values.texts``, not in the rows).
    """
    if values.texts is not None:
        return values
    rows = values.rows.with_columns(
        pl.when(pl.col("value").is_null()).then(pl.col("value_text")).alias("value_text")
    )
    return CompactValues(values.frames, values.keys, rows)


def parse_group_bytes(sizes: Iterable[int], cap: int) -> int:
    """Return the bytes per parse group for logs of ``sizes``: ``cap``, less for a small stream.

    A stream of a few groups leaves a core idle while its last group parses alone: the
    district's dust logs (58 MB) made two 32 MB groups and kept 1.2 cores busy. A small
    stream is cut into about :data:`SMALL_STREAM_GROUPS` groups instead (dust: 1.5 → 1.1 s),
    not below :data:`MIN_GROUP_BYTES` unless ``cap`` is. Deterministic in the sizes, so a
    rerun cuts the same groups and writes the same parts.
    """
    total = sum(sizes)
    return min(cap, max(MIN_GROUP_BYTES, -(-total // SMALL_STREAM_GROUPS)))


def _size_or_zero(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:  # unreadable: reported when it is read
        return 0


@batch_stage
@uses_staging
def parse_stream(day: date, stream: str, settings: Settings | None = None) -> dict[str, Any]:
    """Parse every input file of ``stream`` delivered for ``day``.

    Reads ``<inbox>/<day>/<stream>/*``; writes ``files``, ``packets``, ``values`` and
    ``quarantine`` Parquet files into the stage folder. ``packets.parquet`` holds the
    accepted frames, one file in the ``stg_packets`` contract (the rejected ones are in
    ``quarantine.parquet`` with their reasons); ``values.parquet`` is a folder of compact
    parts (:class:`_StagedValues`), one per parse group or platform export, whose frames are
    in ``frames.parquet`` and whose ``value_text`` is kept only for values that are not
    numbers (:func:`_staged_values`). A file that cannot be read is recorded with its error
    and the others go on.

    Returns:
        ``{"day", "stream", "dir", "files", "unreadable", "frames_found", "frames_loaded",
        "frames_quarantined", "values", "nothing_arrived"}``.

    """
    from warehouse.partitions import (
        ROW_GROUP_ROWS,
        SORT_KEY,
        STG_PACKETS,
        in_key_order,
        stg_packets,
    )
    from zwy.dust.read import STATION_HOURLY, read_station_file
    from zwy.exports import read_platform_export
    from zwy.hj212.parse import parse_lines
    from zwy.hj212.reader import log_lines_group, read_log_group
    from zwy.waste.contracts import WASTE_LEDGER, WASTE_MANIFESTS
    from zwy.waste.read import WasteRead, read_waste_file

    t0 = time.perf_counter()
    settings = settings or get_settings()
    registry = load_registry(settings.registry)
    inputs = discover_inputs(settings.inbox, day, stream)
    stream_of_row = pl.lit(stream)
    out = stage_dir(settings, day, stream)

    file_rows: list[dict[str, Any]] = []
    quarantine: list[pl.DataFrame] = []
    wastes: list[WasteRead] = []  # records, made frames once for all files (below)
    stations: list[pl.DataFrame] = []
    counts: dict[str, dict[str, int]] = {}
    # Snappy, not zstd: the values are read once, by the transform, and a district day's
    # group of 0.86 M values encodes in 0.24 instead of 0.30 CPU-s (files 1.5x larger).
    # No statistics, only the part's MN bounds (all the transform uses of them): 0.17 →
    # 0.12 s a part, the bounds 0.02 of it. Compact (frame and key numbers, not their
    # eleven columns per value): 0.144 → about 0.06 s a part.
    values_out = _StagedValues(out / "values.parquet", compression="snappy")
    # The accepted frames, already as the warehouse stages them (one file, in partition
    # order when the inbox is): the loader then copies the file instead of rewriting it.
    # zstd level 1, not the default 3: a group's packets, mostly their raw text, encode in
    # 87 instead of 109 CPU-ms, and the file came out smaller (3.3 against 3.7 MB).
    packets_out = _ParquetStream(
        out / "packets.parquet",
        STG_PACKETS,
        compression="zstd",
        compression_level=1,
        statistics=True,
        row_group_size=ROW_GROUP_ROWS["stg_packets"],
    )
    policies = registry.crc_policies()

    def parse_group(group: list[InputFile], part: int) -> _GroupParsed:
        # Runs in a worker thread, start to end: reading and hashing the logs, parsing
        # them and writing the group's values part (Polars, numpy, numba, hashlib and file
        # reads release the GIL), so two groups keep two cores busy and the main thread
        # only hands out groups and queues the accepted frames. A log is read once: its
        # hash and its lines come from the same bytes.
        logs = read_log_group([(f.path, f.rel_path) for f in group])
        data = logs.data()
        prints = {f.rel_path: fingerprint(f.path, data.get(f.rel_path)) for f in group}
        del data
        split = log_lines_group(logs)
        errors: dict[str, InputFileError] = dict(split.errors)
        del logs
        if not split.lines.height:
            return _GroupParsed(errors, prints)
        result = parse_lines(
            split.lines,
            policies,
            default_policy=settings.default_crc_policy,
            text_spans=split.spans,
        )
        del split
        return _GroupParsed(
            errors,
            prints,
            result.packets,
            result.quarantine,
            result.per_file(),
            values_out.write_part(part, result.compact),
        )

    def finish(rows: list[dict[str, Any]], parsed: Future[_GroupParsed]) -> None:
        got = parsed.result()
        for row in rows:
            row["sha256"], row["bytes"], row["arrival_time"] = got.prints[row["path"]]
            if row["path"] in got.errors:
                row.update(status="unreadable", error=got.errors[row["path"]].reason)
        if got.packets is None or got.quarantine is None or got.per_file is None:
            return
        values_out.add(got.n_values)
        accepted = stg_packets(got.packets.lazy(), day, stream_of_row).collect()
        if not in_key_order(accepted, SORT_KEY):
            accepted = accepted.sort(list(SORT_KEY), nulls_last=False, maintain_order=True)
        packets_out.write(accepted)
        quarantine.append(got.quarantine)
        for r in got.per_file.iter_rows(named=True):
            counts[r["source_file"]] = dict(r)

    workers = settings.parse_workers
    pending: deque[tuple[list[dict[str, Any]], Future[_GroupParsed]]] = deque()

    def flush(group: list[tuple[InputFile, dict[str, Any]]]) -> None:
        # Parse a group of logs at once: vectorised work wants big frames, memory wants
        # bounded ones (at most ``workers`` groups are in flight). Exact re-sends are
        # caught within a group; a device sends one file a day, so a group always holds all
        # of a device's frames for the day. Parts are numbered and frames queued in group
        # order, so reruns write the same parts and file.
        if group:
            rows = [row for _, row in group]
            files = [f for f, _ in group]
            pending.append((rows, pool.submit(parse_group, files, values_out.reserve())))
            group.clear()
        while len(pending) >= workers:
            finish(*pending.popleft())

    def drain() -> None:
        while pending:
            finish(*pending.popleft())

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="zwy-parse")
    group: list[tuple[InputFile, dict[str, Any]]] = []
    group_bytes = 0
    log_sizes = {f.path: _size_or_zero(f.path) for f in inputs if f.parser == "hj212"}
    chunk = parse_group_bytes(log_sizes.values(), settings.parse_chunk_mb * 1_000_000)
    # Every exit, an unexpected error included, waits for the workers and drops queued groups.
    try:
        for f in inputs:
            row: dict[str, Any] = {
                "batch_day": day,
                "stream": stream,
                "path": f.rel_path,
                "sha256": None,  # a log's: filled in from its parse worker (finish)
                "bytes": None,
                "arrival_time": None,
                "parser": f.parser,
                "status": "parsed",
                "error": None,
            }
            file_rows.append(row)
            if f.parser != "hj212":
                row["sha256"], row["bytes"], row["arrival_time"] = fingerprint(f.path)
                # Groups submitted before this file are written first, as with one worker:
                # the staged parts and rows do not depend on the number of workers.
                drain()
            try:
                if f.parser == "hj212":
                    group.append((f, row))
                    group_bytes += log_sizes[f.path]
                    if group_bytes >= chunk:
                        flush(group)
                        group_bytes = 0
                elif f.parser == "waste":
                    waste = read_waste_file(f.path, f.rel_path)
                    wastes.append(waste)
                    counts[f.rel_path] = _file_counts(
                        lines=waste.lines_total,
                        noise=waste.other_rows,
                        found=waste.rows_found,
                        loaded=waste.rows_loaded,
                        quarantined=len(waste.quarantine_rows),
                    )
                elif f.parser == "station":
                    st = read_station_file(f.path, f.rel_path)
                    stations.append(st.rows)
                    quarantine.append(st.quarantine)
                    counts[f.rel_path] = _file_counts(
                        lines=st.lines_total,
                        noise=st.lines_total - st.rows_found,
                        found=st.rows_found,
                        loaded=st.rows.height,
                        quarantined=st.quarantine.height,
                    )
                elif f.parser == "platform_export":
                    res = read_platform_export(f.path, f.rel_path)
                    values_out.write(res.values)
                    quarantine.append(res.quarantine)
                    counts[f.rel_path] = _file_counts(
                        lines=res.lines_total,
                        noise=0,
                        found=res.rows_found,
                        loaded=res.rows_loaded,
                        quarantined=res.rows_found - res.rows_loaded,
                        values=res.values.height,
                    )
                else:
                    expected = ".xlsx, .xls or .csv" if stream == WASTE_STREAM else ".log or .csv"
                    raise InputFileError(
                        f.rel_path, f"unsupported file type {f.path.suffix!r} (expected {expected})"
                    )
            except InputFileError as exc:
                row.update(status="unreadable", error=exc.reason)
        flush(group)
        drain()
    except BaseException:
        packets_out.abort()  # its partial file goes; the workers stop in ``finally``
        raise
    finally:
        pool.shutdown(cancel_futures=True)
    n_values = values_out.close()
    packets_out.close()

    for row in file_rows:
        c = counts.get(row["path"], {})
        row.update({k: int(c.get(k, 0) or 0) for k in _COUNT_KEYS})
    files = (
        conform(pl.DataFrame(file_rows, schema_overrides=dict(INGEST_FILES)), INGEST_FILES)
        if file_rows
        else empty(INGEST_FILES)
    )
    waste_read = WasteRead.of_files(wastes)
    if waste_read.quarantine_rows:
        quarantine.append(conform(waste_read.quarantine, QUARANTINE))
    all_q = conform(pl.concat(quarantine), QUARANTINE) if quarantine else empty(QUARANTINE)

    files.write_parquet(out / "files.parquet")
    all_q.write_parquet(out / "quarantine.parquet")
    if stream == WASTE_STREAM:
        day_col = pl.lit(day, pl.Date).alias("batch_day")
        for name, frame, schema in (
            ("waste_ledger", waste_read.ledger, WASTE_LEDGER),
            ("waste_manifests", waste_read.manifests, WASTE_MANIFESTS),
        ):
            conform(frame.with_columns(day_col), schema).write_parquet(out / f"{name}.parquet")
    if stream == DUST_STREAM:
        frame = pl.concat(stations) if stations else pl.DataFrame()
        conform(
            frame.with_columns(pl.lit(day, pl.Date).alias("batch_day")), STATION_HOURLY
        ).write_parquet(out / "station_hourly.parquet")
    return {
        "stage": "parse_stream",
        "day": day.isoformat(),
        "stream": stream,
        "duration_s": round(time.perf_counter() - t0, 3),
        "dir": str(out),
        "files": files.height,
        "unreadable": int((files["status"] == "unreadable").sum()) if files.height else 0,
        "frames_found": int(files["frames_found"].sum()) if files.height else 0,
        "frames_loaded": int(files["frames_loaded"].sum()) if files.height else 0,
        "frames_quarantined": int(files["frames_quarantined"].sum()) if files.height else 0,
        "values": n_values,
        "waste_rows": waste_read.rows_loaded,
        "station_rows": sum(x.height for x in stations),
        "nothing_arrived": files.height == 0,
    }


#: The most values the transform holds in memory to merge parts that overlap the others
#: (a platform export's devices among the logs') into partition order.
MAX_STRAY_VALUES = 2_000_000


def _part_stats(part: Path) -> tuple[int, tuple[str, str] | None]:
    """Return a Parquet part's rows and its smallest and largest ``mn`` (from its footer).

    The bounds come from the footer's :data:`MN_BOUNDS_KEY` when the parse wrote it, else
    from the ``mn`` column's statistics. They are None when the part is empty, has
    neither, or holds a row without an MN.
    """
    import pyarrow.parquet as pq

    meta = pq.read_metadata(part)
    names = meta.schema.to_arrow_schema().names
    written = (meta.metadata or {}).get(MN_BOUNDS_KEY.encode())
    if meta.num_rows == 0:
        return meta.num_rows, None
    if written is not None:
        lo, hi, nulls = json.loads(written)
        return meta.num_rows, None if nulls or lo is None else (lo, hi)
    if "mn" not in names:
        return meta.num_rows, None
    i = names.index("mn")
    lows, highs = [], []
    for g in range(meta.num_row_groups):
        st = meta.row_group(g).column(i).statistics
        if st is None or not st.has_min_max or st.null_count:
            return meta.num_rows, None  # unknown bounds, or devices without an MN
        lows.append(st.min)
        highs.append(st.max)
    return meta.num_rows, (min(lows), max(highs))


def _planned_parts(parts: list[Path]) -> tuple[list[Path], list[Path], list[str]]:
    """:func:`plan_part_order`, plus each chain part's first device (from the same footers)."""
    stats = {p: _part_stats(p) for p in parts}  # one footer read per part
    bounds: dict[Path, tuple[str, str]] = {}
    for p, (rows, b) in stats.items():
        if rows and b is None:
            return parts, [], []
        if rows and b is not None:
            bounds[p] = b
    sized = sorted(bounds, key=lambda p: (-stats[p][0], p.name))
    chain: list[Path] = []
    for p in sized:  # biggest first: the logs' groups form the chain, exports are strays
        lo, hi = bounds[p]
        if all(hi < bounds[c][0] or lo > bounds[c][1] for c in chain):
            chain.append(p)
    strays = [p for p in sized if p not in chain]
    if sum(stats[p][0] for p in strays) > MAX_STRAY_VALUES:
        return parts, [], []
    chain.sort(key=lambda p: bounds[p][0])
    return chain, strays, [bounds[p][0] for p in chain]


def plan_part_order(parts: list[Path]) -> tuple[list[Path], list[Path]]:
    """Order the values parts so that their readings come out in device order.

    The parse writes one part per group of logs, in inbox order (devices ascending), and
    one per platform export, whose devices fall among the logs'. Returns the parts that do
    not overlap one another, by their first device (the chain), and the ones that do (the
    strays), to be merged into the chain by device. With too many stray values, or bounds
    unknown, it returns the parts as they are and no strays: the file is then written in
    that order and the loader writes it again sorted, as before.
    """
    chain, strays, _ = _planned_parts(parts)
    return chain, strays


@batch_stage
@uses_staging
def transform_stream(day: date, stream: str, settings: Settings | None = None) -> dict[str, Any]:
    """Turn the parsed values of ``day``/``stream`` into staging readings.

    Reads the ``values.parquet`` dataset (a folder of parts) from the stage folder and the
    registry; writes ``readings.parquet`` (READINGS contract: codes normalised, registry
    joined, UTC and local day, validity flag), each part's rows in the partition's sort
    order and row groups, so that the loader can usually copy the file in as it is.
    """
    from transforms.readings import READING_INPUTS, readings_plan
    from warehouse.partitions import ROW_GROUP_ROWS, SORT_KEY, in_key_order
    from zwy.hj212.codes import code_table

    t0 = time.perf_counter()
    settings = settings or get_settings()
    registry = load_registry(settings.registry)
    out = stage_dir(settings, day, stream)
    # Unknown devices take their stream from the frame's ST (a VALUES column), else from the
    # inbox folder. One plan per part of the values, collected in turn and streamed into
    # one file: memory stays that of one parse group (one plan over a district day of
    # exhaust gas peaked at 2.8 GB RSS, part by part at 0.9 GB), and one file a stream is
    # what the loader can copy into the warehouse as it is.
    # Each part is put in (mn, data_time_utc) order, which it usually is already (the
    # check costs milliseconds), and the parts are taken by device (plan_part_order), so
    # the whole file is sorted and the loader copies it in instead of writing it again.
    parts = sorted((out / "values.parquet").glob("part-*.parquet"))

    def part_readings(part: Path) -> pl.DataFrame:
        values = (
            read_staged(part)
            .expand(READING_INPUTS)
            .lazy()
            .with_columns(pl.lit(stream).cast(CODE).alias("stream"))
        )
        plan = readings_plan(
            values,
            registry.monitoring_points,
            registry.outlets,
            code_table(),
            batch_day=day,
        )
        # One part is one parse group, already in memory: the in-memory engine runs its
        # plan in 60 % of the streaming engine's time (0.15 vs 0.26 s per 870 k values),
        # and the memory stays that of the part.
        rows = plan.collect(engine="in-memory")
        if not in_key_order(rows, SORT_KEY):
            rows = rows.sort(list(SORT_KEY), nulls_last=False, maintain_order=True)
        return rows

    # firsts: each chain part's first device, where the strays below it stop.
    chain, strays, firsts = _planned_parts(parts)

    def readings_parts() -> Iterator[pl.DataFrame]:
        # The strays' readings (a platform export's) are merged into the chain part whose
        # devices they fall among, so the whole file comes out in device order.
        merge = (
            pl.concat([part_readings(p) for p in strays]).sort(
                list(SORT_KEY), nulls_last=False, maintain_order=True
            )
            if strays
            else None
        )
        # The next part is computed while the sink encodes this one (Polars releases the
        # GIL): two parts in memory at most, plus the strays.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="zwy-transform") as ahead:
            pending = [ahead.submit(part_readings, part) for part in chain[:1]]
            for i in range(len(chain)):
                rows = pending.pop().result()
                if i + 1 < len(chain):
                    pending.append(ahead.submit(part_readings, chain[i + 1]))
                if merge is not None and merge.height:
                    # Strays below the next chain part's first device go in here (the
                    # first part also takes those below its own).
                    upto = (
                        merge.height
                        if i + 1 == len(chain)
                        else merge["mn"].search_sorted(firsts[i + 1], side="left")
                    )
                    mine, merge = merge.head(upto), merge.slice(upto)
                    if mine.height:
                        rows = pl.concat([rows, mine]).sort(
                            list(SORT_KEY), nulls_last=False, maintain_order=True
                        )
                yield rows

    target = out / "readings.parquet"
    _remove(target)
    sink_parquet_chunks(
        readings_parts,
        READINGS,
        target,
        row_group_size=ROW_GROUP_ROWS["stg_readings"],
        compression="zstd",
        statistics=True,
    )
    n_readings = pl.scan_parquet(target).select(pl.len()).collect().item()
    return {
        "stage": "transform_stream",
        "day": day.isoformat(),
        "stream": stream,
        "duration_s": round(time.perf_counter() - t0, 3),
        "dir": str(out),
        "readings": int(n_readings),
    }


def rebuild_marts(
    registry: Registry, settings: Settings
) -> Callable[[pl.DataFrame], tuple[pl.DataFrame, pl.DataFrame]]:
    """Return the function the loader calls to rebuild hourly and daily marts from readings."""
    from expectations.reference import load_reference_o2
    from transforms.daily import build_marts

    return partial(
        build_marts,
        points=registry.monitoring_points,
        outlets=registry.outlets,
        o2_ref=load_reference_o2(),
        validity=settings.validity,
    )


@batch_stage
@uses_staging
def load_day(
    day: date,
    streams: tuple[str, ...] = STREAMS,
    run_id: str | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Load the staged streams of ``day`` into the warehouse: the only stage that writes DuckDB.

    All streams of ``day`` load in one transaction: the day's staging partitions (Parquet
    files behind the ``stg_*`` views, see :mod:`warehouse.partitions`) and raw tables are
    replaced, the marts of every device-day they touch are rebuilt, and the accounting
    invariant is checked (a violation rolls everything back and raises
    :class:`zwy.errors.AccountingError`).
    """
    from warehouse.db import connect, migrate
    from warehouse.load import load_batch
    from warehouse.partitions import STG_PACKETS

    settings = settings or get_settings()
    registry = load_registry(settings.registry)
    run_id = run_id or new_run_id(day)
    rebuild = rebuild_marts(registry, settings)
    result: dict[str, Any] = {
        "stage": "load_day",
        "stream": None,
        "day": day.isoformat(),
        "run_id": run_id,
    }
    staged = [s for s in streams if (stage_dir(settings, day, s) / "readings.parquet").exists()]
    # The big staging files (packets, readings) go to the loader as scans, read device range
    # by device range; the small ones (files, quarantine) are read whole.
    files = [pl.read_parquet(stage_dir(settings, day, s) / "files.parquet") for s in staged]
    quarantine = [
        pl.read_parquet(stage_dir(settings, day, s) / "quarantine.parquet").with_columns(
            pl.lit(s).alias("stream")
        )
        for s in staged
    ]
    # The parse stages its accepted frames in the stg_packets contract (one file a stream).
    packets_files = [stage_dir(settings, day, s) / "packets.parquet" for s in staged]
    packets = [pl.scan_parquet(path) for path in packets_files]
    readings_files = [stage_dir(settings, day, s) / "readings.parquet" for s in staged]
    # Each conformed alone: a stream staged by an older version holds its text as String.
    readings = [conform_lazy(pl.scan_parquet(path), READINGS) for path in readings_files]
    merged: dict[str, pl.DataFrame | pl.LazyFrame] = {
        "files": pl.concat(files, how="diagonal_relaxed") if files else empty(INGEST_FILES),
        "quarantine": (
            pl.concat(quarantine, how="diagonal_relaxed") if quarantine else empty(QUARANTINE)
        ),
        "packets": pl.concat(packets) if packets else empty(STG_PACKETS).lazy(),
        "readings": pl.concat(readings) if readings else empty(READINGS).lazy(),
    }
    # All streams of a day load in one transaction: the day's partition is replaced whole,
    # so a rerun can never leave one stream new and another old.
    waste: dict[str, pl.DataFrame] = {}
    waste_dir = stage_dir(settings, day, WASTE_STREAM)
    if WASTE_STREAM in staged:
        for table, name in (
            ("stg_waste_ledger", "waste_ledger"),
            ("stg_waste_manifests", "waste_manifests"),
        ):
            if (waste_dir / f"{name}.parquet").exists():
                waste[table] = pl.read_parquet(waste_dir / f"{name}.parquet")
    dust_dir = stage_dir(settings, day, DUST_STREAM)
    if DUST_STREAM in staged and (dust_dir / "station_hourly.parquet").exists():
        waste["stg_station_hourly"] = pl.read_parquet(dust_dir / "station_hourly.parquet")
    with connect(settings.warehouse) as con:
        migrate(con)
        lr = load_batch(
            con,
            batch_day=day,
            run_id=run_id,
            files=merged["files"],
            packets=merged["packets"],
            readings=merged["readings"],
            quarantine=merged["quarantine"],
            registry={**registry.as_dict(), **_waste_reference(settings)},
            rebuild=rebuild,
            waste=waste,
            readings_files=readings_files,
            packets_files=packets_files,
        )
        if DUST_STREAM in staged:
            lr.rows["mart_dust_hourly"] = _load_dust_marts(con, day, settings)
    mark_loaded(settings, day, run_id)
    result["staging_pruned"] = [d.isoformat() for d in prune_staging(settings, day)]
    result["streams"] = staged
    result["rows"] = dict(lr.rows)
    result["affected_days"] = [d.isoformat() for d in lr.affected_days]
    result["duration_s"] = round(lr.duration_s, 3)
    result["timings"] = dict(lr.timings)
    return result


def _waste_reference(settings: Settings) -> dict[str, pl.DataFrame]:
    """Return the HW code list, the receivers and the dust sites, loaded with every batch."""
    from zwy.dust.read import load_dust_sites
    from zwy.waste.reference import load_hw_codes, load_receivers

    return {
        "hw_codes": load_hw_codes(),
        "receivers": load_receivers(settings.registry),
        "dust_sites": load_dust_sites(settings.registry),
    }


def _load_dust_marts(con: Any, day: date, settings: Settings) -> int:
    """Rebuild ``mart_dust_hourly`` for the local days of the batch's dust readings.

    Runs right after the batch's load transaction, in its own: the mart is derived (a rerun
    rebuilds it). Site readings come from the batch's staged readings, station hours from
    every batch in the warehouse (the latest row of a station-hour wins).
    """
    from transforms.dust import dust_hourly
    from zwy.dust.read import load_dust_sites

    sites = load_dust_sites(settings.registry)
    readings = pl.scan_parquet(stage_dir(settings, day, DUST_STREAM) / "readings.parquet")
    days = sorted(
        set(readings.select(pl.col("local_day").drop_nulls().unique()).collect().to_series())
        | {day}
    )
    station = con.execute(
        "select station, hour_start_utc, pm10 from stg_station_hourly "
        "where local_day between ? and ? order by batch_day, source_file, line",
        [days[0], days[-1]],
    ).pl()
    hours = dust_hourly(readings, sites, station, days, settings.validity.gas_hour_min_minutes)
    con.execute("begin transaction")
    try:
        con.execute(
            "delete from mart_dust_hourly where local_day in (select unnest(?::date[]))", [days]
        )
        if hours.height:
            con.register("_zwy_dust", hours.to_arrow())
            try:
                con.execute("insert into mart_dust_hourly by name select * from _zwy_dust")
            finally:
                con.unregister("_zwy_dust")
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    return hours.height


@batch_stage
def publish_day(
    day: date,
    settings: Settings | None = None,
    days: list[str] | None = None,
    run_id: str | None = None,
) -> dict[str, Any]:
    """Publish the analysts' snapshot after a run (the writer's last step on the file).

    ``days`` are the days the run changed (the batch day and the local days its load
    rebuilt, ISO strings); only their partitions are exported. Without a snapshot yet, or
    with ``days=None`` and no snapshot, everything is published.
    """
    from warehouse.db import connect
    from warehouse.publish import MANIFEST, publish

    settings = settings or get_settings()
    changed = None
    if (settings.published / MANIFEST).exists():
        changed = {day} | {date.fromisoformat(d) for d in days or []}
    # The previous day's marts change too when late packets arrive: load_day lists them in
    # affected_days, which the callers pass here.
    from warehouse.db import migrate

    with connect(settings.warehouse) as con:
        # Every table exists (the compliance tables empty before the first validation):
        # the analysts' model always has every view.
        migrate(con)
        res = publish(con, settings.published, changed, [run_id] if run_id else [])
    return {
        "stage": "publish",
        "stream": None,
        "day": day.isoformat(),
        "publish_id": res.publish_id,
        "catalog": str(res.catalog),
        "partitions": sum(res.exported.values()),
        "linked": res.linked,
        "removed": res.removed,
        "bytes_written": res.bytes_written,
        "duration_s": round(res.seconds, 3),
    }


def new_run_id(day: date, trigger: str = "manual") -> str:
    """Return a unique run id that names the day and the trigger."""
    return f"{day.isoformat()}_{trigger}_{uuid.uuid4().hex[:8]}"


@batch_stage
def run_day(
    day: date,
    settings: Settings | None = None,
    streams: tuple[str, ...] = STREAMS,
    trigger: str = "manual",
    on_stage: StageCallback | None = None,
    validate: bool = True,
    alerts: bool = False,
) -> RunSummary:
    """Process one day end to end without Airflow: parse, transform, load, validate, report.

    With ``alerts``, a last stage queues the day's alerts and sends every pending one
    (:func:`zwy.alerts.run_alerts`), whatever happened to the stages before it.

    The run and its per-stage status, counts and durations are written to ``ops_runs``,
    including streams where nothing arrived (status ``nothing_arrived``, never success).
    """
    from warehouse.db import connect, migrate
    from warehouse.runs import StageResult, StageStatus, record_run

    settings = settings or get_settings()
    run_id = new_run_id(day, trigger)
    started = datetime.now(tz=UTC)
    t0 = time.perf_counter()
    stages: list[StageResult] = []
    status = "success"

    def stage(
        name: str, stream: str | None, fn: Callable[[], dict[str, Any]]
    ) -> dict[str, Any] | None:
        nonlocal status
        if on_stage:
            on_stage(name, stream, "running")
        s0 = time.perf_counter()
        try:
            res = fn()
        except Exception as exc:  # recorded, reported, and re-raised after the run row is written
            status = "failed"
            stages.append(
                StageResult(name, stream, "failed", {}, time.perf_counter() - s0, str(exc))
            )
            if on_stage:
                on_stage(name, stream, "failed")
            raise
        counts = {k: int(v) for k, v in res.items() if isinstance(v, int | bool)}
        st: StageStatus = "nothing_arrived" if res.get("nothing_arrived") else "success"
        stages.append(StageResult(name, stream, st, counts, time.perf_counter() - s0, None))
        if on_stage:
            on_stage(name, stream, st)
        return res

    error: BaseException | None = None
    validated: dict[str, Any] = {}  # validate_day's summary (the alerts need rejudged_days)
    try:
        for stream in streams:
            parsed = stage("parse_stream", stream, partial(parse_stream, day, stream, settings))
            if parsed and parsed["nothing_arrived"]:
                status = "nothing_arrived" if status == "success" else status
            stage("transform_stream", stream, partial(transform_stream, day, stream, settings))
        loaded: dict[str, Any] = {}

        def load() -> dict[str, Any]:
            loaded.update(load_day(day, streams, run_id, settings))
            return _flatten(loaded)

        stage("load_day", None, load)
        if validate:
            from zwy.report import build_report
            from zwy.validate import rejudged_days, validate_loaded

            def judge() -> dict[str, Any]:
                # The day, and the days before it whose marts its late packets changed.
                validated.update(validate_loaded(day, loaded.get("affected_days"), settings))
                return _ints(validated)

            def report() -> dict[str, Any]:
                again = rejudged_days(validated)
                for d in again:  # their findings changed: so do their reports
                    build_report(d, settings)
                return {"path": str(build_report(day, settings)), "rejudged_reports": len(again)}

            stage("validate_day", None, judge)
            stage("build_report", None, report)
        stage(
            "publish",
            None,
            lambda: _ints(publish_day(day, settings, loaded.get("affected_days"), run_id)),
        )
    except Exception as exc:
        error = exc
    if alerts:
        # Like the DAG's all_done task: alert whatever happened above, including failures.
        from zwy.alerts import events_from_stages, run_alerts
        from zwy.validate import rejudged_days

        events = events_from_stages([s.__dict__ for s in stages])
        try:
            stage(
                "send_alerts",
                None,
                lambda: _ints(
                    run_alerts(
                        day, settings, events, run_id=run_id, also_days=rejudged_days(validated)
                    )
                ),
            )
        except Exception as exc:  # recorded as a failed stage; never masks the first error
            error = error or exc
    finished = datetime.now(tz=UTC)
    with connect(settings.warehouse) as con:
        migrate(con)
        record_run(con, run_id, day, trigger, started, finished, status, stages)
    file_frames = [
        pl.read_parquet(p)
        for s in streams
        if (p := stage_dir(settings, day, s) / "files.parquet").exists()
    ]
    files = pl.concat(file_frames) if file_frames else empty(INGEST_FILES)
    summary = RunSummary(
        run_id=run_id,
        day=day,
        status=status,
        stages=[s.__dict__ for s in stages],
        files=files,
        duration_s=time.perf_counter() - t0,
    )
    if error is not None:
        raise error
    return summary


def record_stages(
    day: date,
    run_id: str,
    trigger: str,
    started_at: datetime,
    results: list[dict[str, Any]],
    settings: Settings | None = None,
) -> str:
    """Write the ``ops_runs`` row of a run from the dicts its stages returned (Airflow path).

    Each dict carries ``stage``, ``stream`` and ``duration_s`` as :func:`parse_stream`,
    :func:`transform_stream` and :func:`load_day` return them; a parse result with
    ``nothing_arrived`` marks its stream, and the run, ``nothing_arrived``.

    Returns:
        The run status written: ``success`` or ``nothing_arrived``.

    """
    from warehouse.db import connect, migrate
    from warehouse.runs import StageResult, StageStatus

    settings = settings or get_settings()
    stages = []
    status = "success"
    for res in results:
        st: StageStatus = "nothing_arrived" if res.get("nothing_arrived") else "success"
        if st == "nothing_arrived":
            status = "nothing_arrived"
        counts = {k: int(v) for k, v in res.items() if isinstance(v, int | bool)}
        stages.append(
            StageResult(
                res["stage"], res.get("stream"), st, counts, float(res.get("duration_s", 0)), None
            )
        )
    from warehouse.runs import record_run

    with connect(settings.warehouse) as con:
        migrate(con)
        record_run(con, run_id, day, trigger, started_at, datetime.now(tz=UTC), status, stages)
    return status


def _ints(res: dict[str, Any]) -> dict[str, Any]:
    """Keep the counts of a stage result (lists count as their length) for ``ops_runs``."""
    out = {k: len(v) if isinstance(v, list) else v for k, v in res.items()}
    return {k: v for k, v in out.items() if isinstance(v, int) and not isinstance(v, bool)}


def _flatten(res: dict[str, Any]) -> dict[str, Any]:
    return {f"rows.{k}": int(v) for k, v in res.get("rows", {}).items()}


def summary_from_warehouse(day: date, settings: Settings | None = None) -> RunSummary:
    """Return the latest run of ``day`` as recorded in the warehouse (for runs made by Airflow)."""
    from warehouse.db import connect

    settings = settings or get_settings()
    with connect(settings.warehouse, read_only=True) as con:
        run = con.execute(
            "SELECT run_id, status, stages FROM ops_runs WHERE day = ? "
            "ORDER BY started_at DESC LIMIT 1",
            [day],
        ).fetchone()
        files = con.execute("SELECT * FROM raw_ingest_files WHERE batch_day = ?", [day]).pl()
    if run is None:
        return RunSummary(run_id="(none)", day=day, status="not run")
    stages = [
        {
            "name": s["name"],
            "stream": s["stream"],
            "status": s["status"],
            "counts": dict(s.get("counts") or {}),
        }
        for s in (run[2] or [])
    ]
    return RunSummary(
        run_id=str(run[0]),
        day=day,
        status=str(run[1]),
        stages=stages,
        files=conform(files, INGEST_FILES),
    )
