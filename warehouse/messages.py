"""Alert emails as files beside the warehouse, not BLOBs in it.

An alert's message (RFC 5322: HTML, plain text and inline PNG charts, 20-100 KB) is written
once to ``<dir>/<stem>_outbox/<day>/<alert_id>.<sha256[:12]>.eml`` next to the DuckDB
file ``<dir>/<stem>.duckdb``, and ``alert_outbox`` keeps its path, SHA-256 and size. A
year of a district's emails as BLOBs was 3.9 GB in one row group, which every night's
appends and status updates made DuckDB's checkpoint rewrite (migration 0012).

A file is written (and synced to disk) before the row that names it is committed, and is
never changed after: a file no row names is an orphan of a failed queueing and may be
deleted; a row whose file is missing or differs from its hash is reported when it is sent,
never sent as something else.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from warehouse.partitions import database_path
from zwy.errors import WarehouseError


@dataclass(frozen=True)
class StoredMessage:
    """Where one message was written: ``file`` relative to the outbox folder."""

    file: str
    sha256: str
    size: int


def outbox_dir_of(con: duckdb.DuckDBPyConnection) -> Path:
    """Return the message folder of a warehouse file: ``<dir>/<stem>_outbox``."""
    db = database_path(con)
    return db.parent / f"{db.stem}_outbox"


def write_message(folder: Path, day: date, alert_id: str, data: bytes) -> StoredMessage:
    """Write one message (atomically, synced); return where.

    The name holds the content's hash, so writing the same alert again with other bytes
    (a re-rendering) never replaces the file a committed row names.

    Raises:
        WarehouseError: the file cannot be written.

    """
    digest = hashlib.sha256(data).hexdigest()
    rel = f"{day.isoformat()}/{alert_id}.{digest[:12]}.eml"
    target = folder / rel
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fdatasync(f.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise WarehouseError(f"cannot write alert message {target}: {exc}") from exc
    return StoredMessage(rel, digest, len(data))


def sync_folders(folder: Path, files: list[StoredMessage]) -> None:
    """Sync the day folders that received ``files`` (their names are durable then)."""
    for day_dir in sorted({(folder / m.file).parent for m in files}):
        fd = os.open(day_dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def read_message(folder: Path, file: str, sha256: str) -> bytes:
    """Return the bytes of a stored message, checked against its hash.

    Raises:
        WarehouseError: the file is missing, unreadable or not the one recorded.

    """
    path = folder / file
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise WarehouseError(f"alert message file {path} cannot be read: {exc}") from exc
    if hashlib.sha256(data).hexdigest() != sha256:
        raise WarehouseError(f"alert message file {path} is not the one queued (SHA-256 differs)")
    return data


def remove_orphan_messages(con: duckdb.DuckDBPyConnection, folder: Path, day: date) -> list[str]:
    """Delete the files of ``day``'s folder that no ``alert_outbox`` row names.

    They are left by a queueing that died between writing its messages and committing
    their rows. Call it only as the warehouse's writer (no queueing is in flight then).

    Returns:
        The deleted files, relative to ``folder``.

    """
    day_dir = folder / day.isoformat()
    if not day_dir.is_dir():
        return []
    named = {
        r[0]
        for r in con.execute(
            "select message_file from alert_outbox where message_file like ?",
            [f"{day.isoformat()}/%"],
        ).fetchall()
    }
    removed = []
    for path in sorted(day_dir.iterdir()):
        rel = f"{day.isoformat()}/{path.name}"
        if path.is_file() and rel not in named:
            path.unlink(missing_ok=True)
            removed.append(rel)
    return removed


def delete_messages(folder: Path, files: list[StoredMessage]) -> None:
    """Delete files written for rows that were not committed (best effort)."""
    for m in files:
        (folder / m.file).unlink(missing_ok=True)


def move_messages_to_files(con: duckdb.DuckDBPyConnection) -> None:
    """Migration 0012's step: write every ``alert_outbox.message`` out, swap the tables.

    Runs in the migration's transaction, after its SQL created ``_alert_outbox_0012``. The
    messages are read a thousand at a time (a year of them is gigabytes).
    """
    import polars as pl

    stored: list[tuple[str, str, str, int]] = []
    (n,) = con.execute("select count(*) from alert_outbox").fetchone() or (0,)
    if n:  # (an empty warehouse may be in memory: it has no folder)
        folder = outbox_dir_of(con)
        res = con.execute(
            "select alert_id, day, message from alert_outbox order by created_at, alert_id"
        )
        while batch := res.fetchmany(1000):
            for alert_id, day, message in batch:
                m = write_message(folder, day, alert_id, bytes(message))
                stored.append((alert_id, m.file, m.sha256, m.size))
    files = pl.DataFrame(
        stored,
        schema={"alert_id": pl.String, "file": pl.String, "sha256": pl.String, "size": pl.Int64},
        orient="row",
    )
    con.register("_outbox_files_0012", files)
    try:
        con.execute(
            """
            insert into _alert_outbox_0012
            select o.alert_id, o.day, o.run_id, o.mode, o.recipient, o.recipient_name,
                   o.audiences, o.n_items, o.worst_severity, o.subject, f.file, f.sha256,
                   f.size, o.status, o.attempts, o.last_error, o.created_at,
                   o.last_attempt_at, o.sent_at
            from alert_outbox o join _outbox_files_0012 f using (alert_id)
            """
        )
    finally:
        con.unregister("_outbox_files_0012")
    con.execute("drop table alert_outbox")
    con.execute("alter table _alert_outbox_0012 rename to alert_outbox")
