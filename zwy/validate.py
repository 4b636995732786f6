"""``zwy validate``: run the compliance controls of one day and persist what they find.

:func:`validate_day` is the API the pipeline and the DAG call after the day is loaded:

1. **Measure** (:mod:`expectations.measures`): read the day's marts, registry and staging
   summary from the warehouse and build the five batches the controls judge.
2. **Judge** (:mod:`expectations.suites`): build the GX suites from the control catalog and
   the limits in force that day (``limits.csv`` + ``<registry>/permit_limits.csv``) and
   run one Checkpoint over the batches. Its results are kept as JSON under
   ``<data_dir>/gx/<day>/<run_id>/``, next to the Parquet batches it validated.
3. **Persist** (:mod:`expectations.findings`, :mod:`expectations.evidence`): the
   unexpected rows become ``breaches`` and ``dq_issues`` rows with their evidence; the
   day's rows are replaced in one transaction, so a rerun never duplicates a finding.

It opens the warehouse read-write for the whole run: it is a writer, so call it only where
the DuckDB single-writer rule allows (after ``load_day``, in the same slot).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any

import duckdb
import polars as pl
import typer

from expectations.controls import (
    Control,
    load_controls,
    load_dust_controls,
    load_permit_limits,
    load_waste_controls,
    resolve_limits,
)
from expectations.docs import save_specs
from expectations.dust import dust_batches, dust_findings, dust_specs
from expectations.errors import ControlRunError
from expectations.evidence import attach_evidence
from expectations.findings import BREACHES, DQ_ISSUES, breach_rows, dq_rows
from expectations.measures import build_batches, read_day
from expectations.suites import (
    DEFAULT_ENGINE,
    ENGINES,
    Engine,
    expectation_specs,
    failures_frame,
    import_gx,
    run_suites,
    write_batches,
)
from expectations.waste import waste_batches, waste_findings, waste_specs
from zwy.errors import ZwyError
from zwy.runtime import batch_stage
from zwy.settings import Settings, get_settings, settings_from_options
from zwy.waste.reference import load_holidays


def gx_dir(settings: Settings) -> Path:
    """Return the folder of GX results: ``<data_dir>/gx``."""
    return settings.data_dir / "gx"


def _params(controls: tuple[Control, ...]) -> dict[str, dict[str, Any]]:
    return {c.control_id: dict(c.params) for c in controls}


def _replace_day(
    con: duckdb.DuckDBPyConnection, day: date, breaches: pl.DataFrame, issues: pl.DataFrame
) -> None:
    """Replace the day's rows of ``breaches`` and ``dq_issues`` in one transaction."""
    con.execute("begin transaction")
    try:
        for table, frame in (("breaches", breaches), ("dq_issues", issues)):
            con.execute(f"delete from {table} where local_day = ?", [day])
            if frame.height:
                con.register("_zwy_rows", frame.to_arrow())
                try:
                    con.execute(f"insert into {table} by name select * from _zwy_rows")
                finally:
                    con.unregister("_zwy_rows")
        con.execute("commit")
    except duckdb.Error:
        con.execute("rollback")
        raise


def _counts(
    controls: tuple[Control, ...],
    breaches: pl.DataFrame,
    issues: pl.DataFrame,
    evaluated: dict[str, int],
) -> dict[str, dict[str, int]]:
    b = dict(breaches.group_by("control_id").len().iter_rows()) if breaches.height else {}
    d = dict(issues.group_by("control_id").len().iter_rows()) if issues.height else {}
    return {
        c.control_id: {
            "findings": int(
                b.get(c.control_id, 0) if c.kind == "breach" else d.get(c.control_id, 0)
            ),
            "expectations": int(evaluated.get(c.control_id, 0)),
        }
        for c in controls
    }


def validate_day(
    day: date,
    settings: Settings | None = None,
    *,
    engine: Engine = DEFAULT_ENGINE,
    data_docs: bool = False,
) -> dict[str, Any]:
    """Run every control of the catalog on ``day`` and persist breaches and dq issues.

    Args:
        day: the compliance day (Asia/Shanghai calendar day).
        settings: paths and validity thresholds (default: from the environment).
        engine: GX execution engine, ``sql`` (default: DuckDB over the batches, see
            docs/controls.md) or ``pandas``.
        data_docs: also build GX Data Docs for this run (slow; off the critical path).

    Returns:
        A JSON-able summary: ``day``, ``run_id``, ``status``, ``breaches``,
        ``unverified_breaches``, ``dq_issues``, ``per_control`` (findings and expectations
        per control id), ``facilities_in_breach``, ``gx_success``, ``results_path``,
        ``batches_dir``, ``timings_s`` and ``data_docs`` (index path or None).

    Raises:
        zwy.errors.WarehouseError: the warehouse cannot be opened (e.g. another writer).
        expectations.errors.ControlCatalogError: the catalog or a permit file is broken.
        expectations.errors.ControlRunError: GX failed on an expectation.

    """
    from warehouse.db import connect, migrate

    settings = settings or get_settings()
    t0 = time.perf_counter()
    started = datetime.now(tz=UTC)
    run_id = f"{day.isoformat()}_validate_{uuid.uuid4().hex[:8]}"
    controls = load_controls()
    waste_controls = load_waste_controls()
    dust_controls = load_dust_controls()
    holidays = load_holidays(settings.holidays_file)
    params = _params(controls)
    permits = load_permit_limits(settings.registry)
    run_dir = gx_dir(settings) / day.isoformat() / run_id
    # GX's import (2.5 s of pure Python) runs in a thread while DuckDB and Polars, which
    # release the GIL, measure the day; the suites wait for it below.
    gx_import = threading.Thread(target=import_gx, name="zwy-gx-import", daemon=True)
    gx_import.start()
    timings: dict[str, float] = {}
    with connect(settings.warehouse) as con:
        migrate(con)
        t = time.perf_counter()
        data = read_day(con, day, lookback_days=int(params["ZWY-DQ-PINNED"]["lookback_days"]))
        limits = resolve_limits(day, data.outlets, permits=permits)
        batches = {
            **build_batches(data, limits, params),
            **waste_batches(con, day, holidays),
            **dust_batches(con, day, dust_controls),
        }
        paths = write_batches(batches, run_dir / "batches")
        timings["measure"] = time.perf_counter() - t
        specs = expectation_specs(controls, limits, settings.validity)
        if "waste_ledger" in batches:
            specs += waste_specs(waste_controls)
        if "dust_hours" in batches:
            specs += dust_specs(dust_controls)
        save_specs(specs, run_dir)
        t = time.perf_counter()
        gx_import.join()
        timings["gx_import_wait"] = time.perf_counter() - t
        run = run_suites(
            specs,
            paths,
            engine=engine,
            name=f"zwy_{day:%Y%m%d}_{run_id[-8:]}",
            row_counts={k: v.height for k, v in batches.items()},
        )
        timings["gx"] = run.seconds
        results_path = run_dir / "validation_results.json"
        results_path.write_text(
            json.dumps(
                {
                    "run_id": run_id,
                    "day": day.isoformat(),
                    "engine": engine,
                    "success": run.success,
                    "validations": run.results,
                },
                ensure_ascii=False,
                default=str,
                indent=1,
            ),
            encoding="utf-8",
        )
        t = time.perf_counter()
        failures = failures_frame(run)
        validated_at = datetime.now(tz=UTC)
        stamp = {
            "run_id": pl.lit(run_id),
            "validated_at": pl.lit(validated_at, pl.Datetime("us", "UTC")),
        }
        waste_breaches, waste_issues = waste_findings(day, batches, failures, waste_controls)
        dust_breaches, dust_issues = dust_findings(day, batches, failures, dust_controls, con)
        breaches = (
            pl.concat(
                [
                    attach_evidence(
                        con,
                        day,
                        breach_rows(day, batches, failures, limits, controls),
                        "breach_id",
                    ),
                    waste_breaches,
                    dust_breaches,
                ],
                how="diagonal_relaxed",
            )
            .with_columns(**stamp)
            .select(BREACHES.names())
        )
        issues = (
            pl.concat(
                [
                    attach_evidence(
                        con,
                        day,
                        dq_rows(day, batches, failures, controls, settings.validity),
                        "issue_id",
                    ),
                    waste_issues,
                    dust_issues,
                ],
                how="diagonal_relaxed",
            )
            .with_columns(**stamp)
            .select(DQ_ISSUES.names())
        )
        _replace_day(con, day, breaches, issues)
        timings["persist"] = time.perf_counter() - t
        per_control = _counts(
            (*controls, *waste_controls, *dust_controls), breaches, issues, run.evaluated
        )
        summary: dict[str, Any] = {
            "day": day.isoformat(),
            "run_id": run_id,
            "status": "breach" if breaches.height else ("dq_issues" if issues.height else "clean"),
            "engine": engine,
            "breaches": breaches.height,
            "unverified_breaches": int((breaches["verified_status"] == "unverified").sum()),
            "dq_issues": issues.height,
            "facilities_in_breach": sorted(set(breaches["facility_id"].drop_nulls().to_list())),
            "per_control": per_control,
            "expectations": len(specs),
            "gx_success": run.success,
            "results_path": str(results_path),
            "batches_dir": str(run_dir / "batches"),
            "data_docs": None,
        }
        finished = datetime.now(tz=UTC)
        summary["timings_s"] = {k: round(v, 3) for k, v in timings.items()} | {
            "total": round(time.perf_counter() - t0, 3)
        }
        con.execute(
            "insert into ops_validations values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                run_id,
                day,
                started,
                finished,
                "success",
                engine,
                run.success,
                json.dumps(
                    {
                        k: v
                        for k, v in summary.items()
                        if k in ("breaches", "dq_issues", "per_control")
                    }
                ),
                str(results_path),
                summary["timings_s"]["total"],
            ],
        )
    if data_docs:
        summary["data_docs"] = str(build_data_docs(day, settings, run_dir))
    return summary


def judged_before(days: Iterable[date], settings: Settings | None = None) -> list[date]:
    """Return those of ``days`` that have been validated before (a row in ``ops_validations``)."""
    from warehouse.db import connect

    settings = settings or get_settings()
    wanted = sorted(set(days))
    if not wanted or not settings.warehouse.exists():
        return []
    with connect(settings.warehouse, read_only=True) as con:
        rows = con.execute(
            "select distinct day from ops_validations where day in (select unnest(?)) order by 1",
            [wanted],
        ).fetchall()
    return [r[0] for r in rows]


def rejudged_days(validated: Mapping[str, Any]) -> list[date]:
    """Return the days a :func:`validate_loaded` summary judged again (for reports, alerts)."""
    return [date.fromisoformat(d) for d in validated.get("rejudged_days", [])]


@batch_stage
def validate_loaded(
    day: date,
    affected_days: Iterable[date | str] | None,
    settings: Settings | None = None,
    *,
    engine: Engine = DEFAULT_ENGINE,
) -> dict[str, Any]:
    """Judge ``day``, then judge again the other days the load changed that were judged before.

    A late packet of day D-1 that arrives in D's batch rebuilds D-1's marts (the loader's
    ``affected_days``). D-1's findings and their evidence must follow, or D-1 would say one
    thing after the night of D and another after a rerun of D-1. Days never judged are left
    to their own run: judging a day whose batch has not been loaded would report it offline.

    Returns:
        :func:`validate_day`'s summary of ``day``, plus ``rejudged_days`` (ISO dates) and
        ``rejudged_findings`` (their breaches plus dq issues).

    """
    settings = settings or get_settings()
    others = {date.fromisoformat(d) if isinstance(d, str) else d for d in affected_days or ()}
    others.discard(day)
    summary = validate_day(day, settings, engine=engine)
    again = [validate_day(d, settings, engine=engine) for d in judged_before(others, settings)]
    summary["rejudged_days"] = [s["day"] for s in again]
    summary["rejudged_findings"] = sum(s["breaches"] + s["dq_issues"] for s in again)
    return summary


def build_data_docs(day: date, settings: Settings, run_dir: Path | None = None) -> Path:
    """Build GX Data Docs for the latest (or given) validation run of ``day``.

    Off the critical path: it reads only the run's Parquet batches under
    ``<data_dir>/gx/<day>/<run_id>/batches`` (never the warehouse) and re-runs the
    Checkpoint in a file-backed GX context whose site is ``<reports>/data_docs``.

    Returns:
        The ``index.html`` of the Data Docs site.

    Raises:
        ControlRunError: no validation run of ``day`` is on disk.

    """
    from expectations.docs import build_docs

    if run_dir is None:
        runs = sorted(
            (gx_dir(settings) / day.isoformat()).glob("*/batches"), key=lambda p: p.stat().st_mtime
        )
        if not runs:
            raise ControlRunError(
                f"no validation run of {day} under {gx_dir(settings)}: run zwy validate first"
            )
        run_dir = runs[-1].parent
    return build_docs(day, run_dir, settings)


# --- Typer command (mounted by zwy.cli as ``zwy validate``) -------------------------------


def _parse_day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{value!r} is not a day like 2024-05-01") from exc


def validate(
    day: Annotated[str, typer.Option(help="Day to validate, YYYY-MM-DD (Asia/Shanghai)")],
    data_docs: Annotated[
        bool, typer.Option("--data-docs", help="Also build GX Data Docs (slow, optional)")
    ] = False,
    engine: Annotated[str, typer.Option(help="GX engine: sql (DuckDB) or pandas")] = DEFAULT_ENGINE,
    registry: Annotated[Path | None, typer.Option(help="Registry folder")] = None,
    warehouse: Annotated[Path | None, typer.Option(help="DuckDB warehouse file")] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Root of local state (default ./data)")
    ] = None,
) -> None:
    """Run the compliance controls of one day: breaches and data-quality issues."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if engine not in ENGINES:
        raise typer.BadParameter(f"expected one of {', '.join(ENGINES)}", param_hint="--engine")
    settings = settings_from_options(registry=registry, warehouse=warehouse, data_dir=data_dir)
    try:
        summary = validate_day(_parse_day(day), settings, engine=engine, data_docs=data_docs)  # type: ignore[arg-type]
    except ZwyError as exc:
        console.print(f"[red]validation of {day} failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    table = Table(title=f"controls of {summary['day']} ({summary['run_id']})")
    table.add_column("control")
    table.add_column("findings", justify="right")
    table.add_column("expectations", justify="right")
    for cid, c in summary["per_control"].items():
        style = "red" if c["findings"] and cid.startswith("ZWY-LIM") else ""
        table.add_row(
            cid,
            f"[{style}]{c['findings']}[/{style}]" if style else str(c["findings"]),
            str(c["expectations"]),
        )
    console.print(table)
    console.print(
        f"breaches: {summary['breaches']} ({summary['unverified_breaches']} UNVERIFIED), "
        f"dq issues: {summary['dq_issues']}, GX results: {summary['results_path']}"
    )
    if summary["data_docs"]:
        console.print(f"Data Docs: {summary['data_docs']}")
