"""``zwy alerts send`` and ``zwy alerts list``: the same code the nightly run uses."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from zwy.errors import ZwyError

alerts_app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)
console = Console()

RegistryOpt = Annotated[
    Path | None, typer.Option(help="Registry folder (facilities.csv, contacts.csv)")
]
WarehouseOpt = Annotated[Path | None, typer.Option(help="DuckDB warehouse file")]
DataDirOpt = Annotated[Path | None, typer.Option(help="Root of local state (default ./data)")]


def _day(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{value!r} is not a day like 2024-05-01") from exc


@alerts_app.command("send")
def send(
    day: Annotated[str, typer.Option(help="Day whose findings to alert on, YYYY-MM-DD")],
    registry: RegistryOpt = None,
    warehouse: WarehouseOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Queue the day's new alerts (breaches, data quality, the day's last run) and send all pending."""
    from zwy.alerts import events_from_runs, run_alerts
    from zwy.settings import settings_from_options

    settings = settings_from_options(registry=registry, warehouse=warehouse, data_dir=data_dir)
    d = _day(day)
    assert d is not None
    try:
        with console.status(f"{d}: queueing and sending alerts"):
            res = run_alerts(d, settings, events_from_runs(d, settings), run_id=f"{d}_cli")
    except ZwyError as exc:
        console.print(f"[red]alerts for {d} failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    table = Table(title=f"alerts {d}")
    for col in (
        "findings",
        "new alerts",
        "already alerted",
        "unrouted",
        "sent",
        "pending",
        "failed",
    ):
        table.add_column(col, justify="right")
    table.add_row(
        *(
            str(res[k])
            for k in ("items", "queued", "already_alerted", "unrouted", "sent", "pending", "failed")
        )
    )
    console.print(table)
    if res["smtp_error"]:
        console.print(
            f"[yellow]SMTP unavailable, {res['pending']} alert(s) stay pending:[/yellow] "
            f"{escape(res['smtp_error'])}\nrerun `zwy alerts send --day {d}` when the server is back"
        )
        raise typer.Exit(3)


@alerts_app.command("list")
def list_(
    day: Annotated[str | None, typer.Option(help="Only this day")] = None,
    status: Annotated[str | None, typer.Option(help="pending | sent | failed")] = None,
    warehouse: WarehouseOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Show the outbox: every alert with its status, attempts and last error."""
    from zwy.alerts import list_alerts
    from zwy.settings import settings_from_options

    settings = settings_from_options(warehouse=warehouse, data_dir=data_dir)
    rows = list_alerts(settings, _day(day), status)
    if rows.is_empty():
        console.print(
            "no alerts"
            + (f" for {day}" if day else "")
            + (f" with status {status}" if status else "")
        )
        return
    table = Table(title=f"alert outbox ({rows.height})")
    for col in (
        "day",
        "mode",
        "status",
        "attempts",
        "recipient",
        "items",
        "worst",
        "subject",
        "last error",
    ):
        table.add_column(col, overflow="fold")
    colour = {"sent": "green", "pending": "yellow", "failed": "red"}
    for r in rows.iter_rows(named=True):
        table.add_row(
            str(r["day"]),
            r["mode"],
            f"[{colour.get(r['status'], 'white')}]{r['status']}[/]",
            str(r["attempts"]),
            escape(r["recipient"]),
            str(r["n_items"]),
            r["worst_severity"] or "",
            escape(r["subject"]),
            escape(r["last_error"] or ""),
        )
    # Piped into a file or another program: wide enough that addresses and subjects stay whole.
    out = console if console.is_terminal else Console(width=200)
    out.print(table)
