"""Collect the day's alertable findings and route them to recipients (pure once read).

An *item* is one finding a person must hear about: a breach (``breaches``), a data-quality
issue (``dq_issues``, plus unreadable files and quarantine spikes from the ingest
manifest) or a pipeline event (a stage failed, nothing arrived, an accounting mismatch).
Its ``item_id`` is the finding's own id (``breach_id``, ``issue_id``) or, for what the
pipeline raises, an id made of the day, event kind and what it is about, so the same
finding always has the same id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import duckdb
import polars as pl

from zwy.alerts.catalog import FACILITY_EHS, SEVERITY_RANK

ITEMS = pl.Schema(
    {
        "item_id": pl.String,
        "kind": pl.String,  # breach | dq | pipeline
        "control_id": pl.String,  # controls.csv or events.csv id
        "severity": pl.String,
        "facility_id": pl.String,
        "stream": pl.String,
        "mn": pl.String,
        "pollutant": pl.String,
        "subject": pl.String,  # a manifest or ledger line (solid waste), else null
        "period_local": pl.String,  # Beijing wall clock, "YYYY-MM-DD HH:MM"
        "observed": pl.Float64,
        "limit_value": pl.Float64,  # the limit (breach) or the threshold (dq)
        "unit": pl.String,
        "verified_status": pl.String,
        "message": pl.String,
    }
)

ROUTED = pl.Schema(
    {
        "recipient": pl.String,
        "recipient_name": pl.String,
        "audience": pl.String,
        "mode": pl.String,
        "item_id": pl.String,
    }
)


@dataclass(frozen=True)
class PipelineEvent:
    """Something that happened to the run itself (not to a facility's data).

    Attributes:
        event_id: an ``events.csv`` id, e.g. ``ZWY-OPS-STAGE-FAILED``.
        stage: the stage (``parse_stream``, ``load_day``, ...).
        stream: the stream it concerns, or None.
        message: what happened, for a person (the error text).

    """

    event_id: str
    stage: str
    stream: str | None
    message: str


def _frame(rows: list[dict[str, object]]) -> pl.DataFrame:
    if not rows:
        return pl.DataFrame(schema=ITEMS)
    return pl.DataFrame(rows, schema=ITEMS)


def pipeline_items(
    day: date, events: Sequence[PipelineEvent], catalog: pl.DataFrame
) -> pl.DataFrame:
    """Turn pipeline events into items (severity from ``events.csv``)."""
    sev = dict(zip(catalog["event_id"], catalog["severity"], strict=True))
    kind = dict(zip(catalog["event_id"], catalog["kind"], strict=True))
    rows = [
        {
            # One id per day, event kind, stage and stream: a rerun that fails the same way
            # reports the same item, which is not sent again.
            "item_id": f"{day.isoformat()}|{e.event_id}|{e.stage}|{e.stream or '-'}",
            "kind": kind.get(e.event_id, "pipeline"),
            "control_id": e.event_id,
            "severity": sev.get(e.event_id, "critical"),
            "stream": e.stream,
            "message": f"{e.stage}" + (f" [{e.stream}]" if e.stream else "") + f": {e.message}",
        }
        for e in events
    ]
    return _frame(rows)


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in con.execute("select table_name from duckdb_tables()").fetchall()}


#: The two finding tables: (table, id column, kind, the bound a finding is compared with).
_FINDINGS = (
    ("breaches", "breach_id", "breach", "coalesce(f.limit_high, f.limit_low)"),
    ("dq_issues", "issue_id", "dq", "f.threshold"),
)


def finding_items(con: duckdb.DuckDBPyConnection, day: date) -> pl.DataFrame:
    """Read the day's breaches and dq issues as items (empty when the day was not validated).

    A finding without a device (a manifest, a ledger line, a construction site) takes its
    stream from its control in the catalogs.
    """
    from expectations.controls import controls_by_id

    tables = _tables(con)
    parts = [
        con.execute(
            f"""
            select {id_col} as item_id, '{kind}' as kind, f.control_id, f.severity,
                   f.facility_id, o.stream, f.mn, f.pollutant, f.subject,
                   strftime(f.period_start_local, '%Y-%m-%d %H:%M') as period_local,
                   f.observed, {bound} as limit_value, f.unit, f.verified_status, f.message
            from {table} f left join ref_outlets o using (outlet_id)
            where f.local_day = ?
            """,
            [day],
        ).pl()
        for table, id_col, kind, bound in _FINDINGS
        if table in tables
    ]
    if not parts:
        return pl.DataFrame(schema=ITEMS)
    streams = {cid: c.stream for cid, c in controls_by_id().items()}
    items = pl.concat([p.cast(ITEMS) for p in parts]).select(ITEMS.names())
    return items.with_columns(
        pl.coalesce(
            "stream",
            pl.col("control_id").replace_strict(streams, default=None, return_dtype=pl.String),
        )
    )


def ingest_items(
    con: duckdb.DuckDBPyConnection, day: date, spike_share: float, catalog: pl.DataFrame
) -> pl.DataFrame:
    """Unreadable input files and quarantine spikes of the day's ingest manifest."""
    if "raw_ingest_files" not in _tables(con):
        return pl.DataFrame(schema=ITEMS)
    files = con.execute(
        """
        select f.path, f.stream, f.status, f.error, f.frames_found, f.frames_quarantined,
               p.mn, o.facility_id
        from raw_ingest_files f
        left join (select source_file, min(mn) as mn from stg_packets
                   where batch_day = ? group by source_file) p on p.source_file = f.path
        left join ref_monitoring_points mp on mp.mn = p.mn
        left join ref_outlets o on o.outlet_id = mp.outlet_id
        where f.batch_day = ?
        order by f.path
        """,
        [day, day],
    ).pl()
    sev = dict(zip(catalog["event_id"], catalog["severity"], strict=True))
    rows: list[dict[str, object]] = []
    for r in files.iter_rows(named=True):
        found = int(r["frames_found"] or 0)
        quarantined = int(r["frames_quarantined"] or 0)
        if r["status"] == "unreadable":
            event, message = "ZWY-OPS-UNREADABLE", f"{r['path']}: {r['error']}"
            observed, limit = None, None
        elif found and quarantined / found > spike_share:
            event = "ZWY-OPS-QUARANTINE-SPIKE"
            observed, limit = quarantined / found, spike_share
            message = (
                f"{r['path']}: {quarantined} of {found} frames quarantined "
                f"({observed:.1%} > {spike_share:.0%}); see raw_quarantine for the rules"
            )
        else:
            continue
        rows.append(
            {
                "item_id": f"{day.isoformat()}|{event}|{r['path']}",
                "kind": "dq",
                "control_id": event,
                "severity": sev.get(event, "medium"),
                "facility_id": r["facility_id"],
                "stream": r["stream"],
                "mn": r["mn"],
                "observed": observed,
                "limit_value": limit,
                "unit": "share of frames" if observed is not None else None,
                "message": message,
            }
        )
    return _frame(rows)


def route(
    items: pl.DataFrame,
    rules: pl.DataFrame,
    contacts: pl.DataFrame,
    facilities: pl.DataFrame,
) -> pl.DataFrame:
    """Return who gets which item how: one ROUTED row per (recipient, mode, item).

    A rule matches an item of its ``kind`` whose severity is at least ``min_severity``.
    ``facility_ehs`` resolves to the item's facility's ``ehs_email`` (items without a
    facility, or a facility without an email, do not reach a facility); any other audience
    to every contact with that role. A recipient reached by several rules gets the item
    once per mode.
    """
    if items.is_empty() or rules.is_empty():
        return pl.DataFrame(schema=ROUTED)
    rank = pl.col("severity").replace_strict(SEVERITY_RANK, default=0, return_dtype=pl.Int64)
    min_rank = pl.col("min_severity").replace_strict(SEVERITY_RANK, return_dtype=pl.Int64)
    matched = (
        items.select("item_id", "kind", "facility_id", rank.alias("_rank"))
        .join(rules.select("kind", "audience", "mode", min_rank.alias("_min")), on="kind")
        .filter(pl.col("_rank") <= pl.col("_min"))
    )
    ehs = (
        matched.filter(pl.col("audience") == FACILITY_EHS)
        .join(
            facilities.select(
                "facility_id",
                pl.col("ehs_email").alias("recipient"),
                pl.concat_str(pl.col("name"), pl.lit(" EHS")).alias("recipient_name"),
            ),
            on="facility_id",
        )
        .filter(pl.col("recipient").is_not_null() & (pl.col("recipient") != ""))
    )
    roles = matched.filter(pl.col("audience") != FACILITY_EHS).join(
        contacts.select(
            pl.col("role").alias("audience"),
            pl.col("email").alias("recipient"),
            pl.col("name").alias("recipient_name"),
        ),
        on="audience",
    )
    out = pl.concat([ehs.select(ROUTED.names()), roles.select(ROUTED.names())])
    # Several rules may reach one person with one item: keep it once per mode, and keep
    # every audience that reached them (shown in the email and the outbox).
    return (
        out.group_by("recipient", "mode", "item_id", maintain_order=True)
        .agg(pl.col("recipient_name").first(), pl.col("audience").unique().sort().str.join(","))
        .select(ROUTED.names())
        .sort("recipient", "mode", "item_id")
    )
