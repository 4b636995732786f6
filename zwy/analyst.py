"""``zwy sql`` and ``zwy shell``: ad-hoc SQL on the published, read-only snapshot.

Analysts never open the warehouse itself (the nightly load's file): they open
``<published>/zwy.duckdb``, the snapshot the last run published (:mod:`warehouse.publish`).
A session is read-only three times over: the catalog is opened read-only; only reading
statements are accepted (``SELECT``, ``WITH``, ``EXPLAIN``, ``DESCRIBE``, ``SHOW``,
``SUMMARIZE``, ``PRAGMA`` queries), so ``INSERT``, ``CREATE``, ``ATTACH``, ``COPY ... TO``,
``INSTALL``/``LOAD`` and ``SET`` are refused with a message; and file access is limited to
the snapshot's folder with the configuration locked, so no function can read or write
elsewhere.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Annotated

import duckdb
import typer
from rich.console import Console
from rich.table import Table

from zwy.errors import ZwyError

console = Console()

#: Statement types a read-only session may run.
READING = {
    duckdb.StatementType.SELECT,
    duckdb.StatementType.EXPLAIN,
    duckdb.StatementType.PRAGMA,
}
FORMATS = ("table", "csv", "json", "parquet")


class ReadOnlyViolation(ZwyError):
    """A statement that would change something or reach outside the snapshot."""


def catalog_path(published: Path) -> Path:
    """Return the snapshot file analysts open."""
    return published / "zwy.duckdb"


def check_read_only(sql: str) -> None:
    """Refuse anything but reading statements, naming the first offending one."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise ReadOnlyViolation(f"cannot parse the SQL: {exc}") from exc
    if not statements:
        raise ReadOnlyViolation("no SQL statement given")
    for st in statements:
        if st.type not in READING:
            kind = st.type.name
            hint = {
                "COPY": "export with --format csv|json|parquet instead of COPY ... TO",
                "ATTACH": "the snapshot is the only database a session sees",
                "SET": "settings are fixed for read-only sessions",
            }.get(kind, "the published snapshot is read-only")
            raise ReadOnlyViolation(f"{kind} statements are refused: {hint}")


def open_snapshot(published: Path) -> duckdb.DuckDBPyConnection:
    """Open the snapshot read-only with file access confined to its folder.

    Raises:
        ZwyError: no snapshot has been published yet.

    """
    path = catalog_path(published)
    if not path.is_file():
        raise ZwyError(
            f"no published snapshot at {path}: run a day first (zwy run / the nightly DAG "
            "publishes after each run)"
        )
    con = duckdb.connect(str(path), read_only=True)
    # In one process DuckDB shares the database instance of a path between connections:
    # the first connection confines and locks it, the later ones find it locked.
    locked = con.execute("select current_setting('lock_configuration')").fetchone()
    if not (locked and locked[0]):
        folder = str(published.resolve()).replace("'", "''")
        con.execute(f"set allowed_directories = ['{folder}']")
        con.execute("set enable_external_access = false")
        con.execute("set lock_configuration = true")
    return con


def run_sql(published: Path, sql: str) -> duckdb.DuckDBPyRelation | None:
    """Check and run ``sql`` on the snapshot; return the last statement's relation."""
    check_read_only(sql)
    con = open_snapshot(published)
    statements = duckdb.extract_statements(sql)
    rel = None
    for st in statements:
        rel = con.sql(st.query)
    return rel


def sql(
    query: Annotated[
        str | None, typer.Argument(help='SQL to run, e.g. "SELECT * FROM v_breaches"')
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="read the SQL from a file")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="table | csv | json | parquet")] = "table",
    out: Annotated[Path | None, typer.Option(help="output file (parquet needs one)")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Root of local state")] = None,
    published: Annotated[Path | None, typer.Option(help="snapshot folder")] = None,
) -> None:
    """Run read-only SQL on the published snapshot (never on the nightly load's file)."""
    from zwy.settings import Settings, get_settings

    if fmt not in FORMATS:
        raise typer.BadParameter(f"expected one of {', '.join(FORMATS)}", param_hint="--format")
    if (query is None) == (file is None):
        raise typer.BadParameter("give the SQL as an argument or --file, not both")
    text = query if query is not None else file.read_text(encoding="utf-8")  # type: ignore[union-attr]
    settings = Settings(data_dir=data_dir) if data_dir else get_settings()
    folder = published or settings.published
    try:
        rel = run_sql(folder, text)
    except ReadOnlyViolation as exc:
        console.print(f"[red]refused:[/red] {exc}")
        raise typer.Exit(2) from exc
    except (ZwyError, duckdb.Error) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    if rel is None:
        return
    df = rel.pl()
    if fmt == "table":
        table = Table(title=f"{df.height} row(s)", title_justify="left")
        for c in df.columns:
            table.add_column(c, overflow="fold")
        for row in df.head(1000).iter_rows():
            table.add_row(*("" if v is None else str(v) for v in row))
        Console(width=max(console.width, 160) if not console.is_terminal else None).print(table)
        if df.height > 1000:
            console.print(f"(first 1000 of {df.height} rows; use --format csv for all)")
    elif fmt == "csv":
        text = df.write_csv()
        (out.write_text(text, encoding="utf-8") if out else sys.stdout.write(text))
    elif fmt == "json":
        text = json.dumps(df.to_dicts(), ensure_ascii=False, default=str, indent=1)
        (out.write_text(text, encoding="utf-8") if out else sys.stdout.write(text + "\n"))
    else:
        if out is None:
            raise typer.BadParameter("parquet needs --out FILE", param_hint="--out")
        df.write_parquet(out)
        console.print(f"{df.height} row(s) written to {out}")


def shell(
    data_dir: Annotated[Path | None, typer.Option(help="Root of local state")] = None,
    published: Annotated[Path | None, typer.Option(help="snapshot folder")] = None,
) -> None:
    """Open the DuckDB shell on the published snapshot, read-only (PyPI duckdb-cli 1.5.6)."""
    from zwy.settings import Settings, get_settings

    settings = Settings(data_dir=data_dir) if data_dir else get_settings()
    folder = published or settings.published
    path = catalog_path(folder)
    if not path.is_file():
        console.print(f"[red]no published snapshot at {path}[/red]: run a day first")
        raise typer.Exit(1)
    exe = shutil.which("duckdb", path=str(Path(sys.executable).parent)) or shutil.which("duckdb")
    if exe is None:
        console.print("[red]the duckdb shell is not installed[/red] (uv sync installs duckdb-cli)")
        raise typer.Exit(1)
    init = (
        f"SET allowed_directories = ['{folder.resolve()}']; "
        "SET enable_external_access = false; SET lock_configuration = true;"
    )
    os.execv(exe, [exe, "-readonly", "-cmd", init, str(path)])
