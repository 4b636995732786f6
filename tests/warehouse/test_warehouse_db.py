import shutil
import subprocess
import sys
import textwrap

import pytest

from warehouse.db import MIGRATIONS_DIR, connect, discover_migrations, migrate
from zwy.errors import WarehouseError

EXPECTED_TABLES = {
    "meta_schema_migrations",
    "ref_facilities",
    "ref_outlets",
    "ref_monitoring_points",
    "raw_ingest_files",
    "raw_quarantine",
    "stg_packets",
    "stg_readings",
    "mart_hourly_values",
    "mart_daily_values",
    "ops_runs",
}


def test_migrations_apply_on_a_fresh_file(tmp_path):
    path = tmp_path / "new" / "dir" / "zwy.duckdb"
    with connect(path) as con:
        assert migrate(con) == ["0001"]
        tables = dict(con.execute("select table_name, comment from duckdb_tables()").fetchall())
        versions = con.execute("select version, name from meta_schema_migrations").fetchall()
    assert set(tables) == EXPECTED_TABLES
    assert all(comment for comment in tables.values()), tables
    assert "layer" in tables["stg_readings"]
    assert versions == [("0001", "initial")]


def test_timestamps_are_timestamptz(tmp_path):
    with connect(tmp_path / "w.duckdb") as con:
        migrate(con)
        types = dict(
            con.execute(
                "select table_name || '.' || column_name, data_type from duckdb_columns() "
                "where column_name in ('data_time_utc', 'hour_start_utc', 'arrival_time')"
            ).fetchall()
        )
    assert set(types.values()) == {"TIMESTAMP WITH TIME ZONE"}, types


def test_migrate_is_idempotent(tmp_path):
    path = tmp_path / "w.duckdb"
    with connect(path) as con:
        migrate(con)
        assert migrate(con) == []
    with connect(path) as con:
        assert migrate(con) == []
        assert con.execute("select count(*) from meta_schema_migrations").fetchone() == (1,)


def copy_migrations(tmp_path):
    directory = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, directory)
    return directory


def test_changed_applied_migration_is_refused(tmp_path):
    directory = copy_migrations(tmp_path)
    with connect(tmp_path / "w.duckdb") as con:
        migrate(con, directory)
        first = directory / "0001_initial.sql"
        first.write_text(first.read_text() + "\n-- edited after release\n")
        with pytest.raises(WarehouseError, match="0001_initial.sql: changed after it was applied"):
            migrate(con, directory)


def test_new_migration_is_applied_after_the_old_ones(tmp_path):
    directory = copy_migrations(tmp_path)
    with connect(tmp_path / "w.duckdb") as con:
        migrate(con, directory)
        (directory / "0002_extra.sql").write_text("create table ops_extra (x int);")
        assert migrate(con, directory) == ["0002"]
        assert con.execute("select count(*) from ops_extra").fetchone() == (0,)


def test_failing_migration_rolls_back(tmp_path):
    directory = copy_migrations(tmp_path)
    (directory / "0002_broken.sql").write_text("create table half (x int);\nselect * from nowhere;")
    with connect(tmp_path / "w.duckdb") as con:
        with pytest.raises(WarehouseError, match="0002_broken.sql: migration failed"):
            migrate(con, directory)
        assert con.execute("select version from meta_schema_migrations").fetchall() == [("0001",)]
        names = {r[0] for r in con.execute("select table_name from duckdb_tables()").fetchall()}
    assert "half" not in names


def test_badly_named_migration_file_is_refused(tmp_path):
    directory = copy_migrations(tmp_path)
    (directory / "2_oops.sql").write_text("select 1;")
    with pytest.raises(WarehouseError, match="NNNN_name.sql"):
        discover_migrations(directory)


def test_read_only_missing_file_is_a_warehouse_error(tmp_path):
    with (
        pytest.raises(WarehouseError, match="missing.duckdb"),
        connect(tmp_path / "missing.duckdb", read_only=True),
    ):
        pass


@pytest.mark.parametrize("read_only", [False, True])
def test_file_locked_by_another_process_gives_a_hint(tmp_path, read_only):
    path = tmp_path / "locked.duckdb"
    with connect(path) as con:
        migrate(con)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, time, duckdb
                con = duckdb.connect({str(path)!r})
                print("ready", flush=True)
                sys.stdin.read()
                """
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(WarehouseError) as caught, connect(path, read_only=read_only):
            pass
        message = str(caught.value)
        assert str(path) in message
        assert "hint: another process holds the DuckDB file" in message
    finally:
        holder.communicate("", timeout=30)
    assert holder.returncode == 0
