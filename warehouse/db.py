"""Opening the DuckDB warehouse and migrating its schema.

DuckDB allows one process to hold a read-write connection, and while it does no other
process can open the file, not even read-only (shared/PITFALLS.md). :func:`connect` turns
that lock error into a :class:`~zwy.errors.WarehouseError` that says so.

Migrations are the files ``warehouse/migrations/NNNN_name.sql``, applied in version order,
each in its own transaction, and recorded in ``meta_schema_migrations`` with the SHA-256
of the file. Editing an applied migration is refused: add a new one instead. A migration
may have a Python step (:data:`MIGRATION_STEPS`) that runs after its SQL in the same
transaction, for what SQL cannot do (0002 writes the old staging rows to Parquet files).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb

from zwy.errors import WarehouseError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_MIGRATION_NAME = re.compile(r"^(\d{4})_([A-Za-z0-9_]+)\.sql$")

_LOCK_HINT = (
    "another process holds the DuckDB file (one writer at a time, and a writer blocks "
    "readers): close analyst sessions on it or wait for the running load, then retry"
)


def _adopt_legacy_staging(con: duckdb.DuckDBPyConnection) -> None:
    from warehouse.partitions import adopt_legacy_staging

    adopt_legacy_staging(con)


def _move_messages_to_files(con: duckdb.DuckDBPyConnection) -> None:
    from warehouse.messages import move_messages_to_files

    move_messages_to_files(con)


#: Python steps run after a migration's SQL, in its transaction: (version, name) → step.
MIGRATION_STEPS: dict[tuple[str, str], Callable[[duckdb.DuckDBPyConnection], None]] = {
    ("0002", "parquet_staging"): _adopt_legacy_staging,
    ("0012", "outbox_files"): _move_messages_to_files,
}


@dataclass(frozen=True)
class Migration:
    """One schema migration file."""

    version: str
    name: str
    path: Path
    sql: str
    checksum: str


@contextmanager
def connect(path: Path, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse file and close it on exit.

    The session time zone is set to UTC so that TIMESTAMPTZ columns come back as UTC
    datetimes, matching the frame contracts.

    Args:
        path: the DuckDB file. Its parent folder is created for a read-write connection.
        read_only: open without the write lock (still blocked while a writer is open).

    Yields:
        An open connection.

    Raises:
        WarehouseError: the file cannot be opened (locked by another process, missing when
            read-only, not a DuckDB file, written by a newer DuckDB); the message names the
            path and, for a lock, what to do.

    """
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.Error as exc:
        text = str(exc)
        hint = _LOCK_HINT if "lock" in text.lower() else "check the path and the DuckDB version"
        raise WarehouseError(
            f"cannot open warehouse {path}: {text.strip()} (hint: {hint})"
        ) from exc
    try:
        con.execute("set TimeZone = 'UTC'")
        yield con
    finally:
        con.close()


def discover_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """List the migration files of ``directory`` in version order.

    Raises:
        WarehouseError: a ``.sql`` file is not named ``NNNN_name.sql``, or two share a version.

    """
    found: dict[str, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if match is None:
            raise WarehouseError(f"{path}: migration files are named NNNN_name.sql")
        version, name = match.groups()
        if version in found:
            raise WarehouseError(f"{path}: version {version} already used by {found[version].path}")
        sql = path.read_text(encoding="utf-8")
        checksum = hashlib.sha256(sql.encode("utf-8")).hexdigest()
        found[version] = Migration(version, name, path, sql, checksum)
    return [found[v] for v in sorted(found)]


def migrate(con: duckdb.DuckDBPyConnection, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply the migrations not yet applied, each in its own transaction.

    Args:
        con: a read-write connection.
        directory: where the migration files are (tests pass their own).

    Returns:
        The versions applied by this call, e.g. ``["0001"]``; empty when up to date.

    Raises:
        WarehouseError: an applied migration's file changed (checksum differs) or is
            missing, or a migration fails (it is rolled back; earlier ones stay applied).

    """
    con.execute(
        """
        create table if not exists meta_schema_migrations (
            version varchar primary key,
            name varchar not null,
            applied_at timestamptz not null,
            checksum varchar not null
        )
        """
    )
    con.execute(
        "comment on table meta_schema_migrations is "
        "'meta layer: one row per applied schema migration (warehouse/migrations)'"
    )
    applied = {
        version: (name, checksum)
        for version, name, checksum in con.execute(
            "select version, name, checksum from meta_schema_migrations"
        ).fetchall()
    }
    migrations = discover_migrations(directory)
    on_disk = {m.version for m in migrations}
    for version, (name, _) in sorted(applied.items()):
        if version not in on_disk:
            raise WarehouseError(
                f"migration {version}_{name} is applied to the warehouse but missing in {directory}"
            )
    done: list[str] = []
    for migration in migrations:
        if migration.version in applied:
            if applied[migration.version][1] != migration.checksum:
                raise WarehouseError(
                    f"{migration.path}: changed after it was applied (checksum "
                    f"{applied[migration.version][1][:12]}… in the warehouse, "
                    f"{migration.checksum[:12]}… on disk); add a new migration instead"
                )
            continue
        con.execute("begin transaction")
        try:
            con.execute(migration.sql)
            step = MIGRATION_STEPS.get((migration.version, migration.name))
            if step is not None:
                step(con)
            con.execute(
                "insert into meta_schema_migrations values (?, ?, now(), ?)",
                [migration.version, migration.name, migration.checksum],
            )
            con.execute("commit")
        except (duckdb.Error, OSError, WarehouseError) as exc:
            con.execute("rollback")
            raise WarehouseError(f"{migration.path}: migration failed: {exc}") from exc
        except BaseException:
            con.execute("rollback")
            raise
        done.append(migration.version)
    return done
