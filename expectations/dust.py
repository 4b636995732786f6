"""The construction-dust controls: batches from ``mart_dust_hourly``, GX expectations, findings.

Catalog: ``expectations/catalog/dust_controls.csv``. Batches:

- ``dust_hours``: every valid site-hour of the day (``pm10_site``, ``pm10_station``,
  ``pm10_diff``), judged by the absolute threshold.
- ``dust_runs``: runs of consecutive hours per site, of two kinds: ``diff`` (valid hours with
  ``pm10_diff`` above the control's margin) and ``offline`` (working hours without any
  value); ``hours`` is the run's length, judged against ``min_hours - 1``.

Findings are about a site (``facility_id`` carries the site id, ``mn`` its monitor,
``pollutant`` a34002) and a period; evidence: the site's log file and lines, and the SQL over
``mart_dust_hourly`` that shows the hours.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import duckdb
import polars as pl

from expectations.controls import Control
from expectations.findings import BREACHES, DQ_ISSUES
from expectations.suites import ExpectationSpec, param_specs, with_row_id
from zwy.contracts import conform, schema

RUNS = schema(
    {
        "site_id": pl.String,
        "mn": pl.String,
        "station": pl.String,
        "run_kind": pl.String,
        "start_utc": pl.Datetime("us", "UTC"),
        "end_utc": pl.Datetime("us", "UTC"),
        "hours": pl.Int64,
        "max_pm10_site": pl.Float64,
        "max_pm10_diff": pl.Float64,
    }
)


def _runs(hours: pl.DataFrame, flag: pl.Expr, kind: str) -> pl.DataFrame:
    """Consecutive flagged hours per site as runs."""
    h = hours.sort("site_id", "hour_start_utc").with_columns(_f=flag.fill_null(False))
    h = h.with_columns(
        _grp=(pl.col("_f") != pl.col("_f").shift(1).over("site_id"))
        .fill_null(True)
        .cum_sum()
        .over("site_id")
    ).filter(pl.col("_f"))
    if h.is_empty():
        return pl.DataFrame(schema=RUNS)
    return (
        h.group_by("site_id", "_grp", maintain_order=True)
        .agg(
            pl.col("mn", "station").first(),
            pl.col("hour_start_utc").min().alias("start_utc"),
            (pl.col("hour_start_utc").max() + pl.duration(hours=1)).alias("end_utc"),
            pl.len().cast(pl.Int64).alias("hours"),
            pl.col("pm10_site").max().alias("max_pm10_site"),
            pl.col("pm10_diff").max().alias("max_pm10_diff"),
        )
        .with_columns(run_kind=pl.lit(kind))
        .select(RUNS.names())
    )


def dust_batches(
    con: duckdb.DuckDBPyConnection, day: date, controls: Sequence[Control]
) -> dict[str, pl.DataFrame]:
    """Measure the dust batches of ``day`` from ``mart_dust_hourly``."""
    tables = {r[0] for r in con.execute("select table_name from duckdb_tables()").fetchall()}
    if "mart_dust_hourly" not in tables:
        return {}
    hours = con.execute(
        "select * from mart_dust_hourly where local_day = ? order by site_id, hour_start_utc", [day]
    ).pl()
    p = {c.control_id: c.params for c in controls}
    diff = p.get("ZWY-DUST-DIFF", {})
    off = p.get("ZWY-DUST-OFFLINE", {})
    runs = [pl.DataFrame(schema=RUNS)]
    if diff:
        runs.append(
            _runs(
                hours, pl.col("valid") & (pl.col("pm10_diff") > float(diff["margin_ugm3"])), "diff"
            )
        )
    if off:
        working = pl.col("hour_local").is_between(
            int(off["work_start_hour"]), int(off["work_end_hour"]) - 1
        )
        runs.append(_runs(hours, working & (pl.col("n_values") == 0), "offline"))
    return {
        "dust_hours": with_row_id(hours.filter(pl.col("valid"))),
        "dust_runs": with_row_id(pl.concat(runs).sort("site_id", "run_kind", "start_utc")),
    }


def dust_specs(controls: Sequence[Control]) -> list[ExpectationSpec]:
    """One expectation per dust control (runs are judged per kind through a row condition)."""
    return param_specs(controls)


def _sql(mn: pl.Expr, start: pl.Expr, end: pl.Expr) -> pl.Expr:
    return pl.format(
        "select * from mart_dust_hourly where mn = '{}' and hour_start_utc >= '{}' "
        "and hour_start_utc < '{}' order by hour_start_utc",
        mn,
        start.dt.to_string("%Y-%m-%d %H:%M:%S+00"),
        end.dt.to_string("%Y-%m-%d %H:%M:%S+00"),
    )


def dust_findings(
    day: date,
    batches: dict[str, pl.DataFrame],
    failures: pl.DataFrame,
    controls: Sequence[Control],
    con: duckdb.DuckDBPyConnection,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Turn GX's unexpected rows into (breaches, dq issues), evidence from the site's log."""
    breaches, issues = [], []
    files = (
        dict(
            con.execute(
                "select mn, any_value(source_file) from stg_packets where batch_day = ? group by mn",
                [day],
            ).fetchall()
        )
        if batches
        else {}
    )
    for c in controls:
        batch = batches.get(c.batch)
        if batch is None:
            continue
        failed = failures.filter(pl.col("control_id") == c.control_id).select("row_id")
        rows = batch.join(failed, on="row_id").sort("row_id")
        if rows.is_empty():
            continue
        p = c.params
        if c.batch == "dust_hours":
            rows = rows.with_columns(
                start_utc=pl.col("hour_start_utc"),
                end_utc=pl.col("hour_start_utc") + pl.duration(hours=1),
                observed=pl.col("pm10_site"),
                what=pl.format(
                    "hourly PM10 {} µg/m³ (station {})",
                    pl.col("pm10_site"),
                    pl.col("pm10_station").cast(pl.String).fill_null("NA"),
                ),
            )
            unit, bound = "µg/m3", float(p["max"])
        elif p.get("run_kind") == "diff":
            rows = rows.with_columns(
                observed=pl.col("hours").cast(pl.Float64),
                what=pl.format(
                    "{} consecutive hours above the station by > {} µg/m³ (max +{})",
                    pl.col("hours"),
                    pl.lit(p["margin_ugm3"]),
                    pl.col("max_pm10_diff"),
                ),
            )
            unit, bound = "hours", float(p["min_hours"])
        else:
            rows = rows.with_columns(
                observed=pl.col("hours").cast(pl.Float64),
                what=pl.format("no data for {} consecutive working hours", pl.col("hours")),
            )
            unit, bound = "hours", float(p["min_hours"])
        rows = rows.with_columns(
            _file=pl.col("mn").replace_strict(files, default=None, return_dtype=pl.String)
        )
        local = pl.col("start_utc").dt.convert_time_zone("Asia/Shanghai")
        common: dict[str, Any] = {
            "local_day": pl.lit(day),
            "control_id": pl.lit(c.control_id),
            "facility_id": pl.col("site_id"),
            "mn": pl.col("mn"),
            "pollutant": pl.lit("a34002"),
            "subject": pl.format("site {}", pl.col("site_id")),
            "period_start_utc": pl.col("start_utc"),
            "period_end_utc": pl.col("end_utc"),
            "period_start_local": local.dt.replace_time_zone(None),
            "observed": pl.col("observed"),
            "unit": pl.lit(unit),
            "severity": pl.lit(c.severity),
            "legal_basis": pl.lit(c.basis_text()),
            "verified_status": pl.lit(c.status),
            "message": pl.format(
                "{} / {}: site {} ({}) {}; {}",
                pl.lit(c.name_zh),
                pl.lit(c.name_en),
                pl.col("site_id"),
                pl.col("mn"),
                pl.col("what"),
                pl.lit(c.clause),
            ),
            "evidence": pl.struct(
                sources=pl.concat_list(
                    pl.struct(file=pl.col("_file"), lines=pl.lit("all"), n=pl.lit(None, pl.Int64))
                ),
                mart_sql=_sql(pl.col("mn"), pl.col("start_utc"), pl.col("end_utc")),
            ).struct.json_encode(),
        }
        ident = pl.concat_str(
            [
                pl.lit(day.isoformat()),
                pl.lit(c.control_id),
                pl.col("site_id"),
                pl.col("start_utc").dt.to_string("%Y-%m-%dT%H:%M"),
            ],
            separator="|",
        )
        if c.kind == "breach":
            breaches.append(
                rows.select(
                    breach_id=ident,
                    averaging_period=pl.lit("hour"),
                    limit_high=pl.lit(bound),
                    limit_id=pl.lit(f"{c.control_id}:{p['column']}"),
                    corrected_o2=pl.lit(False),
                    **common,
                )
            )
        else:
            issues.append(
                rows.select(
                    issue_id=ident,
                    threshold=pl.lit(bound),
                    details=pl.struct("hours").struct.json_encode(),
                    **common,
                )
            )
    b = pl.concat(breaches, how="diagonal_relaxed") if breaches else pl.DataFrame(schema=BREACHES)
    d = pl.concat(issues, how="diagonal_relaxed") if issues else pl.DataFrame(schema=DQ_ISSUES)
    return conform(b, BREACHES), conform(d, DQ_ISSUES)
