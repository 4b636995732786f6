"""``zwy report``: the daily compliance report, one static HTML page per day.

:func:`build_report` reads what ``zwy validate`` stored for the day (``breaches``,
``dq_issues``, ``ops_validations``) and the marts behind each breach, and writes
``<reports>/<day>/compliance_<day>.html``: the district status at a glance, then every
facility in breach with a chart of the offending series against its limit line (a
matplotlib PNG embedded as base64, so the page is one self-contained file), the control,
its legal basis with UNVERIFIED marked, and the evidence (files, line ranges, SQL); then
the data-quality issues. The page has no script and loads nothing from the network.

It opens the warehouse read-only: run it after the validation, not while a writer holds
the file.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any

import duckdb
import polars as pl
import typer

from expectations.controls import controls_by_id
from expectations.measures import day_bounds_utc
from zwy.charts import Call, ChartSpec, draw_all
from zwy.contracts import TZ_LOCAL
from zwy.errors import ZwyError
from zwy.runtime import batch_stage
from zwy.settings import Settings, get_settings

SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3}

#: Colours of the page and the charts (one palette for both).
RED = "#c62828"
AMBER = "#b26a00"
GREEN = "#2e7d32"
BLUE = "#1f5fa8"


@dataclass(frozen=True)
class ReportData:
    """Everything the page shows, read from the warehouse."""

    day: date
    facilities: pl.DataFrame
    outlets: pl.DataFrame
    points: pl.DataFrame
    breaches: pl.DataFrame
    issues: pl.DataFrame
    hourly: pl.DataFrame  # hours of the (mn, pollutant) pairs in breach
    validation: dict[str, Any] | None  # latest ops_validations row of the day
    sites: pl.DataFrame = field(default_factory=pl.DataFrame)  # ref_dust_sites
    dust_hours: pl.DataFrame = field(  # mart_dust_hourly of the day
        default_factory=lambda: pl.DataFrame(schema={"mn": pl.String})
    )


def report_path(day: date, settings: Settings) -> Path:
    """Return where the report of ``day`` is written."""
    return settings.reports / day.isoformat() / f"compliance_{day.isoformat()}.html"


def read_report_data(
    day: date, settings: Settings, con: duckdb.DuckDBPyConnection | None = None
) -> ReportData:
    """Read the day's findings and the series behind its breaches.

    Opens the warehouse read-only, or reads through ``con`` when given (a process that
    holds the read-write connection cannot open a second, read-only one).
    """
    from warehouse.db import connect

    if con is not None:
        return _read_report_data(day, settings, con)
    with connect(settings.warehouse, read_only=True) as ro:
        return _read_report_data(day, settings, ro)


def _read_report_data(day: date, settings: Settings, con: duckdb.DuckDBPyConnection) -> ReportData:
    tables = {r[0] for r in con.execute("select table_name from duckdb_tables()").fetchall()}
    if "breaches" not in tables:
        raise ZwyError(
            f"{settings.warehouse} has no breaches table: run `zwy validate --day {day}` first"
        )
    facilities = con.execute("select * from ref_facilities order by facility_id").pl()
    outlets = con.execute("select * from ref_outlets order by outlet_id").pl()
    points = con.execute("select * from ref_monitoring_points order by mn").pl()
    breaches = con.execute(
        "select * from breaches where local_day = ? order by facility_id, mn, pollutant, period_start_utc",
        [day],
    ).pl()
    issues = con.execute(
        "select * from dq_issues where local_day = ? order by facility_id, mn, pollutant, period_start_utc",
        [day],
    ).pl()
    pairs = breaches.select("mn", "pollutant").unique()
    hourly = pl.DataFrame()
    if pairs.height:
        con.register("_pairs", pairs.to_arrow())
        try:
            hourly = con.execute(
                "select h.* from mart_hourly_values h join _pairs p using (mn, pollutant) "
                "where h.local_day = ? order by h.mn, h.pollutant, h.hour_start_utc",
                [day],
            ).pl()
        finally:
            con.unregister("_pairs")
    row = con.execute(
        "select run_id, finished_at, engine, counts from ops_validations where day = ? "
        "order by finished_at desc limit 1",
        [day],
    ).fetchone()
    validation = None
    if row is not None:
        validation = {"run_id": row[0], "finished_at": row[1], "engine": row[2], "counts": row[3]}
    sites = (
        con.execute("select * from ref_dust_sites").pl()
        if "ref_dust_sites" in tables
        else pl.DataFrame(schema={"site_id": pl.String, "project_name": pl.String})
    )
    dust_hours = (
        con.execute("select * from mart_dust_hourly where local_day = ?", [day]).pl()
        if "mart_dust_hourly" in tables
        else pl.DataFrame(schema={"mn": pl.String})
    )
    return ReportData(
        day, facilities, outlets, points, breaches, issues, hourly, validation, sites, dust_hours
    )


# --- charts -----------------------------------------------------------------------------


def breach_chart_spec(hours: pl.DataFrame, group: pl.DataFrame, day: date) -> ChartSpec:
    """Describe the chart of one (device, pollutant, control) series of the day vs its limit.

    Args:
        hours: the day's hourly rows of the device and pollutant (``mart_hourly_values``).
        group: the breach rows of that device, pollutant and control.
        day: the compliance day.

    """
    first = group.row(0, named=True)
    corrected = bool(first["corrected_o2"])
    column = "value_zs" if corrected else "value"
    start, _ = day_bounds_utc(day)
    h = hours.with_columns(
        x=((pl.col("hour_start_utc") - pl.lit(start)).dt.total_minutes() / 60.0),
    ).sort("x")
    valid = h.filter(pl.col("valid"))
    invalid = h.filter(~pl.col("valid") & pl.col(column).is_not_null())
    label = "hourly mean, O2-corrected" if corrected else "hourly mean"
    calls: list[Call] = [
        (
            "plot",
            (valid["x"].to_list(), valid[column].to_list()),
            {"marker": "o", "ms": 3.5, "lw": 1.6, "color": BLUE, "label": label},
        )
    ]
    if invalid.height:
        calls.append(
            (
                "scatter",
                (invalid["x"].to_list(), invalid[column].to_list()),
                {
                    "marker": "x",
                    "color": "#777777",
                    "label": "invalid hour (not judged)",
                    "zorder": 3,
                },
            )
        )
    unit = first["unit"] or ""
    unverified = first["verified_status"] == "unverified"
    tag = " (UNVERIFIED)" if unverified else ""
    if first["limit_high"] is not None:
        limit = f"limit {first['limit_high']:g} {unit}{tag}"
        calls.append(
            (
                "axhline",
                (first["limit_high"],),
                {"color": RED, "ls": "--", "lw": 1.8, "label": limit},
            )
        )
    if first["limit_low"] is not None:
        low = f"lower limit {first['limit_low']:g} {unit}"
        calls.append(
            ("axhline", (first["limit_low"],), {"color": RED, "ls": ":", "lw": 1.8, "label": low})
        )
    if first["averaging_period"] == "hour":
        for r in group.iter_rows(named=True):
            x0 = (r["period_start_utc"] - start).total_seconds() / 3600.0
            calls.append(("axvspan", (x0 - 0.5, x0 + 0.5), {"color": RED, "alpha": 0.12, "lw": 0}))
    else:
        mean = f"daily mean {first['observed']:.3g} {unit}"
        calls.append(("axhline", (first["observed"],), {"color": AMBER, "lw": 2.2, "label": mean}))
    return ChartSpec(
        title=f"{first['mn']} · {first['pollutant']} · {first['control_id']}",
        xlabel=f"{day.isoformat()} (Beijing time)",
        ylabel=unit,
        calls=tuple(calls),
    )


def dust_chart_spec(hours: pl.DataFrame, group: pl.DataFrame, day: date) -> ChartSpec:
    """Describe the chart of a site's hourly PM10 vs the nearest station's, breaches shaded.

    Args:
        hours: the site's ``mart_dust_hourly`` rows of the day.
        group: the site's breach (or issue) rows of one dust control.
        day: the compliance day.

    """
    from expectations.controls import controls_by_id

    first = group.row(0, named=True)
    c = controls_by_id().get(str(first["control_id"]))
    h = hours.sort("hour_local")
    ok = h.filter(pl.col("valid"))
    station = first.get("station") or h["station"][0]
    calls: list[Call] = [
        (
            "plot",
            (ok["hour_local"].to_list(), ok["pm10_site"].to_list()),
            {
                "marker": "o",
                "ms": 3.5,
                "lw": 1.6,
                "color": BLUE,
                "label": "site PM10 (valid hours)",
            },
        ),
        (
            "plot",
            (h["hour_local"].to_list(), h["pm10_station"].to_list()),
            {"lw": 1.4, "color": "#555555", "ls": "-.", "label": f"station PM10 ({station})"},
        ),
    ]
    if c is not None and "margin_ugm3" in c.params:
        margin = float(c.params["margin_ugm3"])
        calls.append(
            (
                "plot",
                (
                    h["hour_local"].to_list(),
                    (h["pm10_station"] + margin).fill_null(float("nan")).to_list(),
                ),
                {
                    "lw": 1.2,
                    "color": RED,
                    "ls": "--",
                    "label": f"station + {margin:g} µg/m³ (policy, UNVERIFIED)",
                },
            )
        )
    if c is not None and c.batch == "dust_hours":
        threshold = f"threshold {c.params['max']} µg/m³ (policy, UNVERIFIED)"
        calls.append(
            (
                "axhline",
                (float(c.params["max"]),),
                {"color": RED, "ls": "--", "lw": 1.8, "label": threshold},
            )
        )
    tz_start, _ = day_bounds_utc(day)
    for r in group.iter_rows(named=True):
        x0 = (r["period_start_utc"] - tz_start).total_seconds() / 3600.0
        x1 = (r["period_end_utc"] - tz_start).total_seconds() / 3600.0
        calls.append(("axvspan", (x0 - 0.5, x1 - 0.5), {"color": RED, "alpha": 0.12, "lw": 0}))
    missing = h.filter(pl.col("n_values") == 0)["hour_local"].to_list()
    if missing:
        calls.append(
            (
                "scatter",
                (missing, [0] * len(missing)),
                {"marker": "|", "s": 120, "color": AMBER, "label": "no data (monitor offline)"},
            )
        )
    return ChartSpec(
        title=f"site {first['facility_id']} · {first['mn']} · PM10 · {first['control_id']}",
        xlabel=f"{day.isoformat()} (Beijing time)",
        ylabel="µg/m³",
        calls=tuple(calls),
    )


# --- page ---------------------------------------------------------------------------------

CSS = """
body{font-family:"Noto Sans CJK SC","WenQuanYi Zen Hei","Microsoft YaHei",Arial,sans-serif;
margin:0;background:#f4f6f8;color:#1d2733}
header{background:#16324f;color:#fff;padding:18px 32px}
header h1{margin:0;font-size:22px} header p{margin:4px 0 0;opacity:.85;font-size:13px}
main{padding:20px 32px;max-width:1180px}
section{background:#fff;border-radius:6px;padding:16px 20px;margin:0 0 18px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
h2{font-size:18px;margin:0 0 10px} h3{font-size:15px;margin:16px 0 6px}
.cards{display:flex;gap:12px;flex-wrap:wrap}
.card{flex:1;min-width:150px;border-radius:6px;padding:10px 14px;background:#eef2f6}
.card b{display:block;font-size:26px}
.status{display:inline-block;padding:4px 12px;border-radius:14px;color:#fff;font-weight:bold}
.s-breach{background:#c62828}.s-issues{background:#b26a00}.s-ok{background:#2e7d32}.s-unknown{background:#666}
table{border-collapse:collapse;width:100%;font-size:13px;margin:6px 0}
th,td{border-bottom:1px solid #e1e5ea;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#f0f3f6}
.sev{padding:1px 7px;border-radius:9px;color:#fff;font-size:11px}
.critical{background:#c62828}.high{background:#d84315}.medium{background:#b26a00}.low{background:#607d8b}
.unverified{background:#6a1b9a;color:#fff;padding:1px 7px;border-radius:9px;font-size:11px;font-weight:bold}
.verified{color:#2e7d32;font-size:12px}
img.chart{width:100%;max-width:960px;border:1px solid #e1e5ea;border-radius:4px}
code,pre{font-family:Consolas,monospace;font-size:12px}
pre{white-space:pre-wrap;background:#f6f8fa;padding:6px;border-radius:4px}
details{margin:2px 0} summary{cursor:pointer;color:#1f5fa8}
.muted{color:#5f6b77;font-size:12px}
"""


def _e(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return html.escape(f"{value:.4g}")
    return html.escape(str(value))


def _local(ts: datetime | None) -> str:
    if ts is None:
        return ""
    from zoneinfo import ZoneInfo

    return ts.astimezone(ZoneInfo(TZ_LOCAL)).strftime("%Y-%m-%d %H:%M")


def _status_badge(status: str) -> str:
    label = {
        "breach": "超标 BREACH",
        "issues": "数据问题 DATA ISSUES",
        "ok": "正常 OK",
        "unknown": "未校验 NOT VALIDATED",
    }[status]
    return f'<span class="status s-{status}">{label}</span>'


def _verified(status: str | None) -> str:
    if status == "unverified":
        return '<span class="unverified">UNVERIFIED 未核实</span>'
    if status == "policy":
        return '<span class="muted">policy 管理规定</span>'
    return '<span class="verified">verified 已核实</span>'


def _evidence(text: str | None) -> str:
    if not text:
        return ""
    ev = json.loads(text)
    parts = [
        f"<code>{_e(s['file'])}</code>"
        + (f" sheet {_e(s['sheet'])}" if s.get("sheet") else "")
        + f" lines {_e(s['lines'])} ({_e(s['n'])} {'rows' if 'sheet' in s else 'values'})"
        for s in ev.get("sources", [])
    ]
    flags = ev.get("flags") or {}
    if flags:
        parts.append("flags: " + ", ".join(f"{_e(k)}×{_e(v)}" for k, v in flags.items()))
    queries = [q for q in (ev.get("mart_sql"), ev.get("readings_sql"), ev.get("waste_sql")) if q]
    sql = (
        "<details><summary>SQL</summary>"
        f"<pre>{';'.join(chr(10) * 2 + _e(q) for q in queries).strip()};</pre></details>"
    )
    return "<br>".join(parts or ["no staged readings"]) + sql


def _facility_name(data: ReportData, facility_id: str | None) -> str:
    site = data.sites.filter(pl.col("site_id") == facility_id) if facility_id else data.sites
    if facility_id and site.height:
        return f"{site['project_name'][0]} (工地 site {facility_id})"
    return _facility_name_registry(data, facility_id)


def _facility_name_registry(data: ReportData, facility_id: str | None) -> str:
    if facility_id is None:
        return "未登记设备 unregistered device"
    row = data.facilities.filter(pl.col("facility_id") == facility_id)
    return f"{row['name'][0]} ({facility_id})" if row.height else facility_id


def _facility_status(data: ReportData) -> pl.DataFrame:
    fac = data.facilities.select("facility_id", "name")
    if data.sites.height:  # construction sites are listed like facilities
        fac = pl.concat(
            [
                fac,
                data.sites.select(
                    pl.col("site_id").alias("facility_id"), pl.col("project_name").alias("name")
                ),
            ],
            how="vertical_relaxed",
        )
    b = data.breaches.group_by("facility_id").agg(
        n_breaches=pl.len(), n_unverified=(pl.col("verified_status") == "unverified").sum()
    )
    i = data.issues.group_by("facility_id").agg(
        n_issues=pl.len(),
        worst=pl.col("severity").replace_strict(SEVERITY_ORDER, default=9).min(),
    )
    out = (
        fac.join(b, on="facility_id", how="left")
        .join(i, on="facility_id", how="left")
        .with_columns(pl.col("n_breaches", "n_unverified", "n_issues").fill_null(0))
    )
    return out.with_columns(
        status=pl.when(pl.col("n_breaches") > 0)
        .then(pl.lit("breach"))
        .when(pl.col("n_issues") > 0)
        .then(pl.lit("issues"))
        .otherwise(pl.lit("ok"))
    ).sort(pl.col("status").replace_strict({"breach": 0, "issues": 1, "ok": 2}), "facility_id")


def render(data: ReportData, chart_workers: int = 1) -> str:
    """Render the report page (pure: data in, HTML out; charts drawn in ``chart_workers``)."""
    ctl = controls_by_id()
    day = data.day
    if data.validation is None:
        status = "unknown"
    elif data.breaches.height:
        status = "breach"
    elif data.issues.height:
        status = "issues"
    else:
        status = "ok"
    fs = _facility_status(data)
    n_unverified = (
        int((data.breaches["verified_status"] == "unverified").sum()) if data.breaches.height else 0
    )
    sev_counts = (
        dict(data.issues.group_by("severity").len().iter_rows()) if data.issues.height else {}
    )
    charts: list[tuple[int, str, ChartSpec]] = []  # (place in out, alt text, chart)
    out: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="zh-CN"><head><meta charset="utf-8">',
        f"<title>亦庄每日合规报告 Daily compliance report {day.isoformat()}</title>",
        '<link rel="icon" href="data:,">',
        f"<style>{CSS}</style></head><body>",
        "<header>",
        f"<h1>无废亦庄 · 每日合规报告 — Daily compliance report {day.isoformat()}</h1>",
        f"<p>北京经济技术开发区 Beijing E-Town · compliance day {day.isoformat()} (Asia/Shanghai) · "
        f"generated {datetime.now(tz=UTC).strftime('%Y-%m-%d %H:%M UTC')}</p>",
        "</header><main>",
        '<section id="status"><h2>区域概况 District status</h2>',
        f"<p>{_status_badge(status)}</p>",
    ]
    if data.validation is None:
        out.append(
            f"<p><b>No validation run for {day}.</b> Run <code>zwy validate --day {day}</code> first.</p>"
        )
    out += [
        '<div class="cards">',
        f'<div class="card"><b>{fs.height}</b>facilities 企业</div>',
        f'<div class="card"><b>{int((fs["status"] == "breach").sum())}</b>in breach 超标企业</div>',
        f'<div class="card"><b>{data.breaches.height}</b>breaches 超标记录'
        + (f' <span class="unverified">{n_unverified} UNVERIFIED</span>' if n_unverified else "")
        + "</div>",
        f'<div class="card"><b>{data.issues.height}</b>data-quality issues 数据问题<br>'
        + " ".join(
            f'<span class="sev {s}">{s} {sev_counts[s]}</span>'
            for s in SEVERITY_ORDER
            if s in sev_counts
        )
        + "</div></div>",
        "<table><tr><th>facility 企业</th><th>status</th><th>breaches</th><th>data-quality issues</th></tr>",
    ]
    for r in fs.iter_rows(named=True):
        out.append(
            f"<tr><td>{_e(r['name'])} ({_e(r['facility_id'])})</td><td>{_status_badge(r['status'])}</td>"
            f"<td>{r['n_breaches']}{' (' + str(r['n_unverified']) + ' UNVERIFIED)' if r['n_unverified'] else ''}</td>"
            f"<td>{r['n_issues']}</td></tr>"
        )
    out.append("</table>")
    if data.validation:
        v = data.validation
        out.append(
            f'<p class="muted">validation run <code>{_e(v["run_id"])}</code> finished '
            f"{_e(_local(v['finished_at']))} (GX engine {_e(v['engine'])})</p>"
        )
    out.append("</section>")

    # Facilities in breach: one chart per (device, pollutant, control).
    for fid in fs.filter(pl.col("status") == "breach")["facility_id"].to_list():
        fb = data.breaches.filter(pl.col("facility_id") == fid)
        out.append(
            f'<section class="facility" id="facility-{_e(fid)}"><h2>超标 Breach — {_e(_facility_name(data, fid))}</h2>'
        )
        for (mn, pollutant, cid), group in fb.group_by(
            ["mn", "pollutant", "control_id"], maintain_order=True
        ):
            c = ctl.get(str(cid))
            first = group.row(0, named=True)
            hours = (
                data.hourly.filter((pl.col("mn") == mn) & (pl.col("pollutant") == pollutant))
                if mn is not None
                else data.hourly.clear()
            )
            where = (
                f"{_e(first['outlet_id'])} · MN {_e(mn)} · {_e(pollutant)}"
                if mn is not None
                else "固体废物 Solid waste"  # ledgers and manifests: no device, no series
            )
            out.append(
                f"<h3>{where} — {_e(c.name_zh if c else cid)} / {_e(c.name_en if c else '')}</h3>"
            )
            site_hours = data.dust_hours.filter(pl.col("mn") == mn) if mn is not None else None
            # Charts are drawn together at the end (in processes when there are many).
            if hours.height:
                alt = f"{_e(pollutant)} of {_e(mn)} against its limit"
                charts.append((len(out), alt, breach_chart_spec(hours, group, day)))
                out.append("")
            elif site_hours is not None and site_hours.height:
                alt = f"PM10 of site {_e(fid)} against the station"
                charts.append((len(out), alt, dust_chart_spec(site_hours, group, day)))
                out.append("")
            out.append(
                f"<p><b>Control</b> <code>{_e(cid)}</code>: {_e(c.description_en if c else '')}<br>"
                f"{_e(c.description_zh if c else '')}<br>"
                f"<b>Legal basis 依据</b>: {_e(first['legal_basis'])} {_verified(first['verified_status'])}"
                + (
                    " — the O2-corrected values use a reference O2 that is UNVERIFIED (BRIEF §3.4)"
                    if first["corrected_o2"] and first["verified_status"] == "unverified"
                    else ""
                )
                + "</p>"
            )
            out.append(
                "<table><tr><th>period (Beijing)</th><th>observed</th><th>limit</th><th>limit id</th>"
                "<th>status</th><th>evidence 证据</th></tr>"
            )
            for r in group.iter_rows(named=True):
                limit = " – ".join(
                    _e(x) for x in (r["limit_low"], r["limit_high"]) if x is not None
                )
                when = (
                    f"{_e(r['subject'])} (checked {_e(day.isoformat())})"
                    if r.get("subject")
                    else f"{_e(_local(r['period_start_utc']))} → {_e(_local(r['period_end_utc']))} "
                    f"({_e(r['averaging_period'])})"
                )
                out.append(
                    f"<tr><td>{when}</td>"
                    f"<td><b>{_e(r['observed'])}</b> {_e(r['unit'])}</td><td>{limit} {_e(r['unit'])}</td>"
                    f"<td><code>{_e(r['limit_id'])}</code></td><td>{_verified(r['verified_status'])}</td>"
                    f"<td>{_evidence(r['evidence'])}</td></tr>"
                )
            out.append("</table>")
        out.append("</section>")

    # Data-quality issues, worst first.
    out.append('<section id="dq"><h2>数据质量问题 Data-quality issues</h2>')
    if data.issues.height == 0:
        out.append("<p>None.</p>")
    else:
        issues = data.issues.with_columns(
            _o=pl.col("severity").replace_strict(SEVERITY_ORDER, default=9)
        ).sort("_o", "facility_id", "mn", "control_id", "period_start_utc", nulls_last=True)
        out.append(
            "<table><tr><th>severity</th><th>facility</th><th>MN · parameter</th><th>control</th>"
            "<th>period (Beijing)</th><th>finding</th><th>basis</th><th>evidence</th></tr>"
        )
        for r in issues.iter_rows(named=True):
            out.append(
                f'<tr><td><span class="sev {_e(r["severity"])}">{_e(r["severity"])}</span></td>'
                f"<td>{_e(_facility_name(data, r['facility_id']))}</td>"
                f"<td>{_e(r['mn'] or r.get('subject'))}"
                f"{' · ' + _e(r['pollutant']) if r['pollutant'] else ''}</td>"
                f"<td><code>{_e(r['control_id'])}</code></td>"
                f"<td>{_e(_local(r['period_start_utc']))} → {_e(_local(r['period_end_utc']))}</td>"
                f"<td>{_e(r['message'])}</td><td>{_e(r['legal_basis'])} {_verified(r['verified_status'])}</td>"
                f"<td><details><summary>show</summary>{_evidence(r['evidence'])}</details></td></tr>"
            )
        out.append("</table>")
    out.append("</section>")

    out.append(_unverified_section(data))
    out.append(
        '<p class="muted">Limits: expectations/catalog/limits.csv and registry permit_limits.csv; '
        "controls: expectations/catalog/controls.csv and waste_controls.csv; facts and their status: shared/domain/BRIEF.md. "
        "A limit or reference value marked UNVERIFIED has not been checked against the primary text "
        "of the standard.</p>"
    )
    out.append("</main></body></html>")
    pngs = draw_all([spec for _, _, spec in charts], chart_workers)
    for (i, alt, _), png in zip(charts, pngs, strict=True):
        out[i] = f'<img class="chart" alt="{alt}" src="data:image/png;base64,{png}">'
    return "\n".join(out)


def _unverified_section(data: ReportData) -> str:
    """List every UNVERIFIED fact this page relies on."""
    from expectations.reference import load_limits, load_reference_o2

    rows: list[str] = []
    if data.breaches.height:
        used = data.breaches.filter(pl.col("verified_status") == "unverified")
        limits = load_limits()
        for lid in sorted(set(used["limit_id"].to_list())):
            row = limits.filter(pl.col("limit_id") == lid)
            if row.height and row["status"][0] == "unverified":
                rows.append(f"<li>limit <code>{_e(lid)}</code>: {_e(row['source'][0])}</li>")
        refs = used.filter(pl.col("corrected_o2")).select("reference_o2").unique()
        if refs.height:
            o2 = load_reference_o2().filter(pl.col("status") == "unverified")
            for r in o2.iter_rows(named=True):
                rows.append(
                    f"<li>reference O2 {_e(r['reference_o2_pct'])} % for {_e(r['standard'])} "
                    f"{_e(r['applies_to'])}: {_e(r['source'])}</li>"
                )
    if not rows:
        return '<section id="unverified"><h2>未核实事项 UNVERIFIED facts used</h2><p>None on this page.</p></section>'
    return (
        '<section id="unverified"><h2>未核实事项 UNVERIFIED facts used</h2>'
        "<p>These values were not verified against the standard's text; findings that use them "
        "are marked UNVERIFIED.</p><ul>" + "".join(rows) + "</ul></section>"
    )


@batch_stage
def build_report(day: date, settings: Settings | None = None) -> Path:
    """Write the compliance report of ``day`` and return its path.

    Raises:
        zwy.errors.WarehouseError: the warehouse cannot be opened read-only.
        zwy.errors.ZwyError: the warehouse has no results tables (migrated by a zwy older
            than migration 0010 and never validated since).

    """
    settings = settings or get_settings()
    data = read_report_data(day, settings)
    path = report_path(day, settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(data, settings.chart_workers), encoding="utf-8")
    return path


def report(
    day: Annotated[str, typer.Option(help="Day of the report, YYYY-MM-DD (Asia/Shanghai)")],
    warehouse: Annotated[Path | None, typer.Option(help="DuckDB warehouse file")] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Root of local state (default ./data)")
    ] = None,
    reports: Annotated[
        Path | None, typer.Option(help="Reports folder (default <data_dir>/reports)")
    ] = None,
) -> None:
    """Write the daily compliance report (one static HTML page) of one day."""
    from rich.console import Console

    from zwy.settings import settings_from_options
    from zwy.validate import _parse_day

    console = Console()
    settings = settings_from_options(warehouse=warehouse, data_dir=data_dir, reports=reports)
    try:
        path = build_report(_parse_day(day), settings)
    except ZwyError as exc:
        console.print(f"[red]report of {day} failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    console.print(f"report: {path}")
