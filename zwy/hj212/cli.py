"""``zwy hj212 parse``: parse HJ 212 log files into Parquet, with a per-file summary.

The lead mounts :data:`hj212_app` as ``zwy hj212``.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import polars as pl
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from zwy.contracts import LINES
from zwy.errors import InputFileError
from zwy.hj212.parse import ParseResult, parse_lines
from zwy.hj212.reader import read_log_lines

hj212_app = typer.Typer(
    name="hj212",
    help="HJ 212 telemetry logs: parse, check and explode into values.",
    no_args_is_help=True,
)


@hj212_app.callback()
def _hj212() -> None:
    """HJ 212 telemetry logs: parse, check and explode into values."""


class Policy(StrEnum):
    """CRC policy: tolerant accepts Modbus-signed frames (and records it), strict does not."""

    tolerant = "tolerant"
    strict = "strict"


def _summary_table(result: ParseResult, unreadable: dict[str, str]) -> Table:
    """One row per file: lines, noise, frames found / ok / quarantined by rule, values."""
    per_file = result.per_file()
    rules = (
        result.quarantine.group_by("source_file", "rule")
        .len()
        .sort("source_file", "len", descending=[False, True])
    )
    by_rule: dict[str, str] = {}
    for (name,), grp in rules.group_by("source_file", maintain_order=True):
        by_rule[str(name)] = ", ".join(f"{r} {n}" for r, n in grp.select("rule", "len").iter_rows())
    table = Table(title="HJ 212 parse summary", show_lines=False)
    table.add_column("file", overflow="fold", min_width=16)
    for col in ("lines", "noise", "blank", "frames", "ok", "quarantined"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("by rule", overflow="fold", min_width=12)
    table.add_column("values", justify="right", no_wrap=True)
    for row in per_file.iter_rows(named=True):
        name = row["source_file"]
        table.add_row(
            escape(name),
            f"{row['lines_total']:,}",
            f"{row['noise_lines']:,}",
            f"{row['blank_lines']:,}",
            f"{row['frames_found']:,}",
            f"{row['frames_loaded']:,}",
            f"{row['frames_quarantined']:,}",
            escape(by_rule.get(name, "")),
            f"{row['values_loaded']:,}",
        )
    for name in unreadable:
        table.add_row(escape(name), "-", "-", "-", "-", "-", "-", "[red]unreadable[/red]", "-")
    return table


@hj212_app.command("parse")
def parse_command(
    files: Annotated[
        list[Path], typer.Argument(help="HJ 212 log files (one packet per line is fine)")
    ],
    out: Annotated[
        Path, typer.Option("--out", help="folder for packets/values/quarantine.parquet")
    ],
    policy: Annotated[
        Policy, typer.Option("--policy", help="CRC policy for every device")
    ] = Policy.tolerant,
) -> None:
    """Parse FILES and write packets.parquet, values.parquet and quarantine.parquet to OUT.

    An unreadable file (missing, empty, binary, not UTF-8) is reported on one line and
    skipped; the others are parsed, and the exit code is 1 at the end.
    """
    console = Console()
    if not console.is_terminal:
        # Logs (Airflow, CI) are not 80 columns wide; keep the numbers on one line.
        console = Console(width=max(console.width, 160))
    err = Console(stderr=True)
    parts: list[pl.DataFrame] = []
    unreadable: dict[str, str] = {}
    for path in files:
        try:
            parts.append(read_log_lines(path, display_name=str(path)))
        except InputFileError as exc:
            unreadable[str(path)] = exc.reason
            err.print(
                f"[red]error:[/red] {escape(str(path))}: {escape(exc.reason)}",
                highlight=False,
                soft_wrap=True,
            )
    lines = pl.concat(parts) if parts else pl.DataFrame(schema=LINES)
    result = parse_lines(lines, default_policy=policy.value)
    out.mkdir(parents=True, exist_ok=True)
    result.packets.write_parquet(out / "packets.parquet")
    result.values.write_parquet(out / "values.parquet")
    result.quarantine.write_parquet(out / "quarantine.parquet")
    console.print(_summary_table(result, unreadable))
    console.print(
        f"wrote {result.packets.height:,} packets, {result.values.height:,} values, "
        f"{result.quarantine.height:,} quarantined to {escape(str(out))}",
        highlight=False,
    )
    if unreadable:
        raise typer.Exit(code=1)
