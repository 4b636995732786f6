"""``zwy``: the command-line tool of the zero-waste Yizhuang pipeline (Typer + Rich)."""

from __future__ import annotations

import os
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from zwy.errors import ZwyError

app = typer.Typer(
    name="zwy",
    help="Zero-waste Yizhuang (无废亦庄) monitoring pipeline: HJ 212 logs and platform exports "
    "in, audited DuckDB warehouse out.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()


def parse_day(value: str) -> date:
    """Parse a ``YYYY-MM-DD`` day given on the command line."""
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{value!r} is not a day like 2024-05-01") from exc


InboxOpt = Annotated[Path | None, typer.Option(help="Inbox root: <inbox>/<YYYY-MM-DD>/<stream>/")]
RegistryOpt = Annotated[Path | None, typer.Option(help="Registry folder (facilities.csv, ...)")]
WarehouseOpt = Annotated[Path | None, typer.Option(help="DuckDB warehouse file")]
DataDirOpt = Annotated[Path | None, typer.Option(help="Root of local state (default ./data)")]


@app.command()
def run(
    day: Annotated[str, typer.Option(help="Day to process, YYYY-MM-DD (Asia/Shanghai)")],
    inbox: InboxOpt = None,
    registry: RegistryOpt = None,
    warehouse: WarehouseOpt = None,
    data_dir: DataDirOpt = None,
    alerts: Annotated[
        bool,
        typer.Option(
            "--alerts",
            help="Also queue the day's alerts and send all pending "
            "(SMTP: the smtp_default connection, see docs/alerts.md)",
        ),
    ] = False,
) -> None:
    """Process one day end to end into the warehouse (parse → transform → load → validate → report)."""
    from zwy.settings import settings_from_options

    settings = settings_from_options(
        inbox=inbox, registry=registry, warehouse=warehouse, data_dir=data_dir
    )
    summary = _run_with_progress(parse_day(day), settings, alerts=alerts)
    _print_summary(summary, settings)
    if summary.status == "failed":
        raise typer.Exit(1)


def _run_with_progress(d: date, settings, alerts: bool = False):  # type: ignore[no-untyped-def]
    from zwy.contracts import STREAMS
    from zwy.pipeline import RunSummary, run_day

    total = len(STREAMS) * 2 + 4 + int(alerts)
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task(f"{d} starting", total=total)

        def on_stage(name: str, stream: str | None, status: str) -> None:
            label = f"{d} {name}" + (f" [{stream}]" if stream else "")
            if status == "running":
                progress.update(task, description=label)
            else:
                progress.advance(task)

        try:
            summary: RunSummary = run_day(d, settings, on_stage=on_stage, alerts=alerts)
        except ZwyError as exc:
            console.print(f"[red]run of {d} failed:[/red] {exc}")
            raise typer.Exit(1) from exc
        except Exception as exc:
            # Unexpected: say what and where in one line; ZWY_DEBUG=1 shows the traceback.
            if os.environ.get("ZWY_DEBUG"):
                raise
            console.print(
                f"[red]run of {d} failed with an internal error[/red] "
                f"{type(exc).__name__}: {exc} (set ZWY_DEBUG=1 for the traceback; "
                "the run is recorded as failed in ops_runs)"
            )
            raise typer.Exit(2) from exc
    return summary


def _print_summary(summary, settings) -> None:  # type: ignore[no-untyped-def]
    import polars as pl

    from zwy.pipeline import stage_dir

    files = summary.files
    colour = {"success": "green", "nothing_arrived": "yellow"}.get(summary.status, "red")
    table = Table(
        title=f"{summary.day}: [{colour}]{summary.status}[/{colour}]  ({summary.run_id})",
        title_justify="left",
    )
    for col in (
        "stream",
        "files",
        "unreadable",
        "frames",
        "loaded",
        "quarantined",
        "noise",
        "values",
    ):
        table.add_column(col, justify="left" if col == "stream" else "right", no_wrap=True)
    if files.height:
        agg = (
            files.group_by("stream")
            .agg(
                pl.len().alias("files"),
                (pl.col("status") == "unreadable").sum().alias("unreadable"),
                pl.col("frames_found").sum(),
                pl.col("frames_loaded").sum(),
                pl.col("frames_quarantined").sum(),
                pl.col("noise_lines").sum(),
                pl.col("values_loaded").sum(),
            )
            .sort("stream")
        )
        for r in agg.iter_rows():
            table.add_row(*[f"{v:,}" if isinstance(v, int) else str(v) for v in r])
    console.print(table)
    q = [
        pl.read_parquet(p)
        for s in {st["stream"] for st in summary.stages if st["stream"]}
        if (p := stage_dir(settings, summary.day, s) / "quarantine.parquet").exists()
    ]
    quarantine = pl.concat(q) if q else pl.DataFrame()
    if quarantine.height:
        rules = Table(title="quarantined, by rule", title_justify="left")
        for col in ("rule", "count", "first example (file:line)", "reason"):
            rules.add_column(col, overflow="fold")
        by_rule = (
            quarantine.sort("source_file", "line")
            .group_by("rule", maintain_order=True)
            .agg(pl.len().alias("n"), pl.first("source_file"), pl.first("line"), pl.first("reason"))
            .sort("n", descending=True)
        )
        for r in by_rule.iter_rows(named=True):
            rules.add_row(r["rule"], str(r["n"]), f"{r['source_file']}:{r['line']}", r["reason"])
        console.print(rules)
    bad = files.filter(pl.col("status") == "unreadable") if files.height else files
    for r in bad.iter_rows(named=True):
        console.print(f"[yellow]unreadable file[/yellow] {r['path']}: {r['error']}")
    for st in summary.stages:
        if st["status"] == "nothing_arrived":
            console.print(f"[yellow]nothing arrived[/yellow] for {st['stream']} on {summary.day}")
    for st in summary.stages:
        if st["name"] == "validate_day" and st["status"] == "success":
            c = st.get("counts") or {}
            console.print(
                f"controls: [bold]{c.get('breaches', 0)}[/bold] breaches "
                f"({c.get('unverified_breaches', 0)} resting on UNVERIFIED values), "
                f"{c.get('dq_issues', 0)} data-quality issues, "
                f"{c.get('facilities_in_breach', 0)} facilities in breach"
            )
            from zwy.report import report_path

            console.print(f"report: {report_path(summary.day, settings)}")
        if st["name"] == "send_alerts" and st["status"] == "success":
            c = st.get("counts") or {}
            line = (
                f"alerts: {c.get('queued', 0)} new, {c.get('sent', 0)} sent, "
                f"{c.get('already_alerted', 0)} findings alerted before"
            )
            if c.get("pending"):
                line += (
                    f", [yellow]{c['pending']} pending (SMTP unavailable; "
                    "`zwy alerts send` retries)[/yellow]"
                )
            console.print(line)
    console.print(f"warehouse: {settings.warehouse}  ({summary.duration_s:.1f} s)\n")


@app.command()
def demo(
    days: Annotated[int, typer.Option(help="How many sample days to generate and run")] = 3,
    start: Annotated[str, typer.Option(help="First sample day")] = "2024-05-01",
    data_dir: DataDirOpt = None,
    airflow: Annotated[
        bool,
        typer.Option(help="Run each day through Airflow (`airflow dags test`, SQLite metadata)"),
    ] = False,
) -> None:
    """Generate the built-in sample district, run each day, and say what to look at next."""
    from zwy.sample.generate import generate_district
    from zwy.settings import Settings

    settings = Settings(data_dir=data_dir) if data_dir else Settings()
    first = parse_day(start)
    day_list = [first + timedelta(days=i) for i in range(days)]
    sample_dir = settings.data_dir / "sample"
    with console.status(f"generating the sample district ({days} days) in {sample_dir}"):
        generate_district(sample_dir, day_list, scale="demo")
    settings = Settings.for_district(settings.data_dir, sample_dir)
    if airflow:
        _demo_airflow(day_list, settings)
    else:
        for d in day_list:
            summary = _run_with_progress(d, settings)
            _print_summary(summary, settings)
    console.print(
        "\n[bold]Next:[/bold]\n"
        '  • query the published snapshot: uv run zwy sql "SELECT * FROM v_compliance_status" '
        f"--data-dir {settings.data_dir}\n"
        '  • see what was rejected and why: uv run zwy sql "SELECT rule, count(*) FROM '
        f'raw_quarantine GROUP BY 1" --data-dir {settings.data_dir}\n'
        f"  • the daily report: {settings.reports}/<day>/compliance_<day>.html\n"
        f"  • what the generator planted: {sample_dir / 'planted.json'}\n"
        "  • rerun a day (idempotent): zwy run --day "
        f"{day_list[0]} --inbox {sample_dir / 'inbox'} --registry {sample_dir / 'registry'}"
    )


def _demo_airflow(day_list: list[date], settings) -> None:  # type: ignore[no-untyped-def]
    import time

    from zwy.airflow_local import dags_test, ensure_metadata
    from zwy.pipeline import summary_from_warehouse

    with console.status("preparing Airflow metadata (SQLite) and the writer pool"):
        ensure_metadata(settings)
    for d in day_list:
        t0 = time.perf_counter()
        try:
            with console.status(f"{d}: airflow dags test yizhuang_nightly (real Airflow run)"):
                log = dags_test(settings, d)
        except ZwyError as exc:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from exc
        summary = summary_from_warehouse(d, settings)
        summary.duration_s = time.perf_counter() - t0
        _print_summary(summary, settings)
        console.print(f"Airflow log: {log}")


def _mount() -> None:
    from zwy.alerts.cli import alerts_app
    from zwy.analyst import shell as analyst_shell
    from zwy.analyst import sql as analyst_sql
    from zwy.hj212.cli import hj212_app
    from zwy.report import report
    from zwy.sample.generate import sample
    from zwy.validate import validate

    app.add_typer(hj212_app, name="hj212", help="Parse HJ 212 packet logs.")
    app.add_typer(alerts_app, name="alerts", help="Alert emails: send pending, list the outbox.")
    app.command("sample", help="Generate the built-in sample district (deterministic).")(sample)
    app.command("validate")(validate)
    app.command("report")(report)
    app.command("sql")(analyst_sql)
    app.command("shell")(analyst_shell)


_mount()
