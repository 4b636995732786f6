import shutil
import subprocess
import sys
import textwrap
from datetime import date

import duckdb
import polars as pl
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
    "meta_partitions",
    "mart_hourly_values",
    "mart_daily_values",
    "ops_runs",
    "alert_outbox",
    "alert_items",
    "stg_waste_ledger",
    "stg_waste_manifests",
    "ref_hw_codes",
    "ref_receivers",
    "ref_dust_sites",
    "stg_station_hourly",
    "mart_dust_hourly",
    "breaches",
    "dq_issues",
    "ops_validations",
}
EXPECTED_VIEWS = {"stg_packets", "stg_readings"}
VERSIONS = [
    ("0001", "initial"),
    ("0002", "parquet_staging"),
    ("0003", "alerts"),
    ("0004", "solid_waste"),
    ("0005", "dust"),
    ("0010", "controls"),
    ("0011", "partition_files"),
    ("0012", "outbox_files"),
]
ALL = [v for v, _ in VERSIONS]
NEXT = f"{int(ALL[-1]) + 1:04d}"


def test_migrations_apply_on_a_fresh_file(tmp_path):
    path = tmp_path / "new" / "dir" / "zwy.duckdb"
    with connect(path) as con:
        assert migrate(con) == ALL
        tables = dict(con.execute("select table_name, comment from duckdb_tables()").fetchall())
        views = dict(
            con.execute(
                "select view_name, comment from duckdb_views() where not internal"
            ).fetchall()
        )
        versions = con.execute(
            "select version, name from meta_schema_migrations order by 1"
        ).fetchall()
    assert set(tables) == EXPECTED_TABLES
    assert set(views) == EXPECTED_VIEWS
    assert all(comment for comment in [*tables.values(), *views.values()]), (tables, views)
    assert "layer" in views["stg_readings"] and "Parquet" in views["stg_readings"]
    assert versions == VERSIONS


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
        assert con.execute("select count(*) from meta_schema_migrations").fetchone() == (
            len(VERSIONS),
        )


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
        (directory / f"{NEXT}_extra.sql").write_text("create table ops_extra (x int);")
        assert migrate(con, directory) == [NEXT]
        assert con.execute("select count(*) from ops_extra").fetchone() == (0,)


def test_controls_migration_keeps_tables_validation_created_before_it(tmp_path):
    """Before 0010 was a migration, validation created its tables itself; 0010 keeps them."""
    directory = copy_migrations(tmp_path)
    controls = directory / "0010_controls.sql"
    ddl = controls.read_text()
    controls.unlink()
    with connect(tmp_path / "w.duckdb") as con:
        migrate(con, directory)
        con.execute(ddl)  # what validate did then
        con.execute("insert into ops_validations (run_id, day) values ('r1', date '2024-05-01')")
        assert migrate(con) == ["0010"]
        assert con.execute("select run_id from ops_validations").fetchall() == [("r1",)]


def test_partition_files_migration_keeps_rows_and_allows_several_files(tmp_path):
    """0011 rebuilds meta_partitions with the file in its key; the listed files stay."""
    directory = copy_migrations(tmp_path)
    (directory / "0011_partition_files.sql").unlink()
    row = "('stg_readings', date '2024-05-01', '{f}', 3, 10, 'h', 's', [date '2024-05-01'], 'r1', now())"
    with connect(tmp_path / "w.duckdb") as con:
        migrate(con, directory)
        con.execute("insert into meta_partitions values " + row.format(f="a.parquet"))
        with pytest.raises(duckdb.ConstraintException):
            con.execute("insert into meta_partitions values " + row.format(f="b.parquet"))
        assert migrate(con) == ["0011"]
        con.execute("insert into meta_partitions values " + row.format(f="b.parquet"))
        listed = con.execute(
            "select file, rows, local_days from meta_partitions order by file"
        ).fetchall()
        assert listed == [
            ("a.parquet", 3, [date(2024, 5, 1)]),
            ("b.parquet", 3, [date(2024, 5, 1)]),
        ]
        with pytest.raises(duckdb.ConstraintException):
            con.execute("insert into meta_partitions values " + row.format(f="b.parquet"))


def test_failing_migration_rolls_back(tmp_path):
    directory = copy_migrations(tmp_path)
    (directory / f"{NEXT}_broken.sql").write_text(
        "create table half (x int);\nselect * from nowhere;"
    )
    with connect(tmp_path / "w.duckdb") as con:
        with pytest.raises(WarehouseError, match=f"{NEXT}_broken.sql: migration failed"):
            migrate(con, directory)
        versions = con.execute("select version, name from meta_schema_migrations order by 1")
        assert versions.fetchall() == VERSIONS
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


def test_migration_0002_moves_old_staging_rows_to_parquet(tmp_path):
    """A warehouse of 0001 keeps its staged rows: 0002 writes them to Parquet partitions."""
    only_first = tmp_path / "m1"
    only_first.mkdir()
    shutil.copy(MIGRATIONS_DIR / "0001_initial.sql", only_first)
    path = tmp_path / "w.duckdb"
    with connect(path) as con:
        assert migrate(con, only_first) == ["0001"]
        con.execute(
            "insert into stg_readings (batch_day, mn, data_time_utc, local_day, value) values "
            "('2024-05-01', 'B', '2024-04-30 16:01:00+00', '2024-05-01', 2.5), "
            "('2024-05-01', 'A', '2024-04-30 15:59:00+00', '2024-04-30', 1.5), "
            "('2024-05-02', 'A', '2024-05-01 16:00:00+00', '2024-05-02', null)"
        )
        con.execute(
            "insert into stg_packets (batch_day, source_file, line, raw, mn, data_time) values "
            "('2024-05-01', 'f.log', 1, '##0001x', 'A', '2024-05-01 00:00:00')"
        )
        before = {
            t: con.execute(f"select * from {t} order by all").fetchall()
            for t in ("stg_readings", "stg_packets")
        }
        assert migrate(con) == ALL[1:]
        after = {
            t: con.execute(f"select * from {t} order by all").fetchall()
            for t in ("stg_readings", "stg_packets")
        }
        meta = con.execute(
            "select table_name, batch_day, rows, local_days, file from meta_partitions order by 1, 2"
        ).fetchall()
        names = {r[0] for r in con.execute("select table_name from duckdb_tables()").fetchall()}
    assert after == before
    assert [m[:4] for m in meta] == [
        ("stg_packets", date(2024, 5, 1), 1, None),
        ("stg_readings", date(2024, 5, 1), 2, [date(2024, 4, 30), date(2024, 5, 1)]),
        ("stg_readings", date(2024, 5, 2), 1, [date(2024, 5, 2)]),
    ]
    for *_, file in meta:
        assert (tmp_path / "w_parquet" / file).is_file()
    assert not {"_stg_readings_0001", "_stg_packets_0001"} & names
    # Sorted by mn, data_time_utc inside a file.
    first = pl.read_parquet(tmp_path / "w_parquet" / meta[1][4])
    assert first["mn"].to_list() == ["A", "B"]


def test_0012_moves_alert_messages_out_of_the_warehouse_into_files(tmp_path):
    from warehouse.messages import read_message

    old = tmp_path / "migrations"
    old.mkdir()
    for m in discover_migrations():
        if m.version <= "0011":
            shutil.copy(m.path, old / m.path.name)
    path = tmp_path / "w" / "zwy.duckdb"
    messages = {f"a{i}": f"Subject: {i}\r\n\r\nbody {i}\r\n".encode() * (i + 1) for i in range(3)}
    with connect(path) as con:
        migrate(con, old)
        for i, (aid, data) in enumerate(messages.items()):
            con.execute(
                "insert into alert_outbox (alert_id, day, mode, recipient, n_items, subject, "
                "message, status, attempts, created_at) "
                "values (?, ?, 'digest', 'x@example.org', 1, 's', ?, 'sent', 1, now())",
                [aid, date(2024, 5, 1 + i), data],
            )
        assert migrate(con) == ["0012"]
        rows = con.execute(
            "select alert_id, day, message_file, message_sha256, message_bytes, status "
            "from alert_outbox order by 1"
        ).fetchall()
        columns = {
            r[0]
            for r in con.execute(
                "select column_name from duckdb_columns() where table_name = 'alert_outbox'"
            ).fetchall()
        }
        (comment,) = con.execute(
            "select comment from duckdb_tables() where table_name = 'alert_outbox'"
        ).fetchone()
    assert "message" not in columns and comment.startswith("alerts layer")
    assert [r[0] for r in rows] == sorted(messages)
    folder = path.parent / "zwy_outbox"
    for aid, day, file, sha, size, status in rows:
        assert read_message(folder, file, sha) == messages[aid]
        assert size == len(messages[aid]) and status == "sent"
        assert file.startswith(f"{day.isoformat()}/{aid}.")
    # A file that is not the one recorded is refused, naming it.
    (folder / rows[0][2]).write_bytes(b"other")
    with pytest.raises(WarehouseError, match=r"zwy_outbox/.*SHA-256"):
        read_message(folder, rows[0][2], rows[0][3])
