"""The alert outbox: queue the day's alerts in the warehouse, then deliver what is pending.

Exactly once, nothing lost:

1. :func:`queue_alerts` routes the day's items, leaves out every (recipient, mode, item)
   already in the outbox, renders one email per recipient (digest) or per item
   (immediate), and inserts them as ``pending`` in one transaction. The ``alert_id`` is a
   hash of mode, day, recipient and the sorted item ids, so queueing the same findings
   again inserts nothing.
2. :func:`send_pending` reads every pending alert (of any day), releases the warehouse
   while it talks to the SMTP server, then records each outcome: ``sent``; or still
   ``pending`` with ``attempts`` and ``last_error`` (server down, refused); or ``failed``
   once ``max_attempts`` is reached. The next run, or ``zwy alerts send``, retries.

The Message-ID is ``<alert_id@zwy.alerts>``: if the process dies between the server's
acceptance and the status update, the retry carries the same Message-ID, which mail
systems use to drop the duplicate.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any, Protocol

import polars as pl

from warehouse.messages import (
    StoredMessage,
    delete_messages,
    outbox_dir_of,
    read_message,
    remove_orphan_messages,
    sync_folders,
    write_message,
)
from zwy.alerts import render
from zwy.alerts.catalog import (
    SEVERITY_RANK,
    load_contacts,
    load_events,
    load_routing,
    routing_path,
)
from zwy.alerts.collect import (
    ITEMS,
    PipelineEvent,
    finding_items,
    ingest_items,
    pipeline_items,
    route,
)
from zwy.charts import Drawing
from zwy.charts import preload as preload_charts
from zwy.errors import ConfigError, WarehouseError
from zwy.report import ReportData, read_report_data
from zwy.runtime import batch_stage
from zwy.settings import Settings

log = logging.getLogger(__name__)


class Sender(Protocol):
    """Delivers messages; used as a context manager around one batch of sends."""

    def __enter__(self) -> Sender: ...

    def __exit__(self, *exc: object) -> None: ...

    def send(self, msg: EmailMessage) -> None:
        """Send ``msg`` (From and Date already set) or raise."""

    @property
    def from_email(self) -> str:
        """The sender address to put in From."""


@dataclass
class QueueResult:
    """What :func:`queue_alerts` did."""

    day: date
    items: int = 0
    queued: list[str] = field(default_factory=list)  # new alert ids
    already_queued: int = 0  # (recipient, mode, item) triples left out: alerted before
    unrouted: int = 0  # items no rule or recipient reached


@dataclass
class SendResult:
    """What :func:`send_pending` did."""

    sent: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    error: str | None = None  # the connection error when nothing could be sent


def alert_id(mode: str, day: date, recipient: str, item_ids: Sequence[str]) -> str:
    """Deterministic id of an alert: what it reports, to whom, how."""
    key = "\n".join([mode, day.isoformat(), recipient.lower(), *sorted(item_ids)])
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def _names() -> dict[str, tuple[str, str]]:
    from expectations.controls import controls_by_id

    names = {cid: (c.name_zh, c.name_en) for cid, c in controls_by_id().items()}
    events = load_events()
    names.update(
        {r["event_id"]: (r["name_zh"], r["name_en"]) for r in events.iter_rows(named=True)}
    )
    return names


class _Drawn:
    """The day's charts by the series they show, (mn, pollutant, control_id), as drawn."""

    def __init__(self, keys: list[tuple[str, str, str]], drawing: Drawing | None) -> None:
        self._index = {k: i for i, k in enumerate(keys)}
        self._drawing = drawing

    def __enter__(self) -> _Drawn:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._drawing is not None:
            self._drawing.close()

    def png(self, key: tuple[str, str, str]) -> bytes | None:
        """Return the chart of ``key`` (waiting for it to be drawn); None: it has none."""
        i = self._index.get(key)
        if i is None or self._drawing is None:
            return None
        return render.chart_png(self._drawing.get(i))


_SERIES = ["mn", "pollutant", "control_id"]


def _key(row: dict[str, Any]) -> tuple[str, str, str]:
    return (row["mn"], row["pollutant"], row["control_id"])


def _ranked(data: ReportData | None) -> pl.DataFrame | None:
    """Return the day's device breaches worst first (the order charts are picked in)."""
    if data is None:
        return None
    # Series charts exist for device breaches only (solid-waste findings are tables).
    return (
        data.breaches.filter(pl.col("mn").is_not_null())
        .with_columns(
            _rank=pl.col("severity").replace_strict(SEVERITY_RANK, default=9, return_dtype=pl.Int64)
        )
        .sort("_rank", "facility_id", "mn", "pollutant", "control_id", nulls_last=True)
    )


def _series(
    settings: Settings, ranked: pl.DataFrame | None, items: pl.DataFrame
) -> list[dict[str, Any]]:
    """Pick the breached series among ``items``, worst first, at most ``max_charts``: a row each.

    A series is a (device, pollutant, control); its row is its worst breach's.
    ``ranked`` is :func:`_ranked` of the day, sorted once for every email.
    """
    breach_ids = items.filter(pl.col("kind") == "breach")["item_id"]
    if ranked is None or breach_ids.is_empty() or settings.alerts.max_charts <= 0:
        return []
    series = ranked.filter(pl.col("breach_id").is_in(breach_ids.implode())).unique(
        _SERIES, keep="first", maintain_order=True
    )
    return list(series.head(settings.alerts.max_charts).iter_rows(named=True))


def _draw(
    day: date, settings: Settings, data: ReportData | None, series: list[dict[str, Any]]
) -> _Drawn:
    """Draw each series once, whichever emails carry it (in processes when there are many).

    A chart shows its series' whole day with every breach of the day on it (the hours in
    breach shaded), whichever of them an email is about: an immediate alert on one hour
    shows the hours around it too. So a chart depends on its series only: the same
    breaches go to the facility, the bureau's digest and each officer, and drawing (about
    0.1 s a chart) dominated queueing a day with findings when each email drew its own
    (40 charts drawn about 250 times: 37 of 40 s). The charts are drawn while the caller
    goes on (:class:`zwy.charts.Drawing`, closed by the caller), in the order of
    ``series``: the first email's first.
    """
    from zwy.report import breach_chart_spec

    if data is None or not series:
        return _Drawn([], None)
    device_breaches = data.breaches.filter(pl.col("mn").is_not_null())
    keys, specs = [], []
    for first in {_key(row): row for row in series}.values():
        hours = data.hourly.filter(
            (pl.col("mn") == first["mn"]) & (pl.col("pollutant") == first["pollutant"])
        )
        if hours.is_empty():
            continue  # nothing to draw: the email lists the breach without a chart
        group = device_breaches.filter(
            pl.all_horizontal(pl.col(c) == first[c] for c in _SERIES)
        ).sort("period_start_utc")
        keys.append(_key(first))
        specs.append(breach_chart_spec(hours, group, day))
    return _Drawn(keys, Drawing(specs, settings.chart_workers))


def _charts(series: list[dict[str, Any]], drawn: _Drawn) -> list[render.Chart]:
    """Return the charts of ``series`` (from :func:`_series`) that were drawn, in that order."""
    charts: list[render.Chart] = []
    for first in series:
        png = drawn.png(_key(first))
        if png is None:
            continue
        # Named by its picture only, so that every email carrying it carries the same part.
        cid = f"chart-{hashlib.sha1(png).hexdigest()[:16]}"
        title = (
            f"{first['outlet_id']} · MN {first['mn']} · {first['pollutant']} "
            f"({first['control_id']}) vs limit 对比限值"
        )
        charts.append(render.Chart(cid=cid, png=png, title=title))
    return charts


def report_link(day: date, settings: Settings) -> str:
    """Where the reader opens the day's report: the configured URL, else the file path."""
    from zwy.report import report_path

    rel = f"{day.isoformat()}/compliance_{day.isoformat()}.html"
    base = settings.alerts.report_base_url
    if base:
        return base.rstrip("/") + "/" + rel
    return str(report_path(day, settings).resolve())


@batch_stage
def queue_alerts(
    day: date,
    settings: Settings,
    events: Sequence[PipelineEvent] = (),
    run_id: str | None = None,
) -> QueueResult:
    """Route and render the day's alerts and add the new ones to the outbox as pending.

    Args:
        day: the compliance day (breaches and dq issues of that local day, the ingest
            manifest of that batch day).
        settings: paths and alert settings.
        events: what the pipeline itself reports (failed stages, nothing arrived).
        run_id: the run that queues them (stored with each alert).

    Raises:
        zwy.errors.ConfigError: a routing, contacts or events file is broken.
        zwy.errors.WarehouseError: the warehouse cannot be opened for writing.

    """
    from warehouse.db import connect, migrate
    from zwy.registry import load_registry

    rules = load_routing(routing_path(settings.registry, settings.alerts.routing_file))
    contacts = load_contacts(settings.registry)
    catalog = load_events()
    result = QueueResult(day)
    with connect(settings.warehouse) as con:
        migrate(con)
        folder = outbox_dir_of(con)
        for orphan in remove_orphan_messages(con, folder, day):
            log.warning("removed alert message %s: no outbox row names it", orphan)
        try:
            facilities = load_registry(settings.registry).facilities
        except ConfigError:
            # A broken registry may be the very failure to alert on: fall back to the copy
            # the last successful load left in the warehouse.
            facilities = con.execute("select * from ref_facilities").pl()
        # Construction sites are addressed like facilities: their findings carry the site
        # id in facility_id, and the site's contact is its EHS contact.
        facilities = pl.concat(
            [
                facilities.select("facility_id", "name", "ehs_email"),
                con.execute(
                    "select site_id as facility_id, project_name as name, ehs_email "
                    "from ref_dust_sites"
                ).pl(),
            ],
            how="vertical_relaxed",
        ).unique("facility_id", keep="first", maintain_order=True)
        items = pl.concat(
            [
                finding_items(con, day),
                ingest_items(con, day, settings.alerts.quarantine_spike_share, catalog),
                pipeline_items(day, events, catalog),
            ]
        ).unique("item_id", keep="first", maintain_order=True)
        result.items = items.height
        routed = route(items, rules, contacts, facilities)
        result.unrouted = items.filter(~pl.col("item_id").is_in(routed["item_id"].implode())).height
        # Only the routed items' history: a year of alert items is not read every night.
        done = con.execute(
            "select o.recipient, o.mode, i.item_id from alert_items i "
            "join alert_outbox o using (alert_id) where i.item_id in (select unnest(?))",
            [routed["item_id"].unique().to_list()],
        ).pl()
        fresh = routed.join(done.cast(pl.String), on=["recipient", "mode", "item_id"], how="anti")
        result.already_queued = routed.height - fresh.height
        if fresh.is_empty():
            return result
        names = _names()
        # The day's breaches and the series behind them: read once for every email.
        kinds = set(items.filter(pl.col("item_id").is_in(fresh["item_id"].implode()))["kind"])
        if "breach" in kinds:
            preload_charts()  # imported while the day's data are read: the charts need it
        data = read_report_data(day, settings, con) if "breach" in kinds else None
        facility_names = dict(zip(facilities["facility_id"], facilities["name"], strict=True))
        link = report_link(day, settings)
        rows: list[dict[str, Any]] = []
        item_rows: list[dict[str, Any]] = []
        emails = []
        ranked = _ranked(data)
        # Sorted once for the whole day (4 ms a sort: 0.9 s over a district day's 187
        # emails); each email's items, filtered out of it, keep that order.
        items = render.sort_items(items)
        for batch in _batches(fresh):
            mine = items.filter(pl.col("item_id").is_in(batch["item_id"].implode()))
            emails.append((batch, mine, _series(settings, ranked, mine)))  # worst first
        # Every chart of the day once, drawn (in processes when there are many) while the
        # emails are built, in the order the emails need them.
        drawn = _draw(day, settings, data, [row for _, _, series in emails for row in series])
        with drawn:  # the charts are drawn while the emails are built
            for batch, mine, series in emails:
                ids = batch["item_id"].to_list()
                first = batch.row(0, named=True)
                aid = alert_id(first["mode"], day, first["recipient"], ids)
                subj = render.subject(day, first["mode"], mine, facility_names, names, ordered=True)
                charts = _charts(series, drawn)
                to = first["recipient_name"] or first["recipient"]
                body = render.render_html(
                    day, subj, to, mine, facility_names, names, charts, link, ordered=True
                )
                text = render.render_text(
                    day, subj, to, mine, facility_names, names, link, ordered=True
                )
                msg = render.build_message(aid, first["recipient"], subj, text, body, charts)
                worst = mine.row(0, named=True)["severity"]
                rows.append(
                    {
                        "alert_id": aid,
                        "day": day,
                        "run_id": run_id,
                        "mode": first["mode"],
                        "recipient": first["recipient"],
                        "recipient_name": first["recipient_name"],
                        "audiences": sorted({a for s in batch["audience"] for a in s.split(",")}),
                        "n_items": len(ids),
                        "worst_severity": worst,
                        "subject": subj,
                        "message": render.message_bytes(msg),
                        "status": "pending",
                        "attempts": 0,
                        "created_at": datetime.now(tz=UTC),
                    }
                )
                item_rows += [
                    {
                        "alert_id": aid,
                        "item_id": r["item_id"],
                        "kind": r["kind"],
                        "severity": r["severity"],
                        "facility_id": r["facility_id"],
                    }
                    for r in mine.iter_rows(named=True)
                ]
        # The messages go to files (written and synced before their rows commit); an alert
        # already in the outbox keeps the message it was queued with.
        queued_before = {
            r[0]
            for r in con.execute(
                "select alert_id from alert_outbox where alert_id in (select unnest(?))",
                [[r["alert_id"] for r in rows]],
            ).fetchall()
        }
        rows = [r for r in rows if r["alert_id"] not in queued_before]
        written: list[StoredMessage] = []
        try:
            for r in rows:
                stored = write_message(folder, day, r["alert_id"], r.pop("message"))
                written.append(stored)
                r |= {
                    "message_file": stored.file,
                    "message_sha256": stored.sha256,
                    "message_bytes": stored.size,
                }
            sync_folders(folder, written)
        except BaseException:
            delete_messages(folder, written)
            raise
        outbox = pl.DataFrame(rows)  # noqa: F841 - read by DuckDB below
        carried = pl.DataFrame(item_rows)  # noqa: F841
        con.execute("begin transaction")
        try:
            new = (
                con.execute(
                    """
                    insert into alert_outbox
                        (alert_id, day, run_id, mode, recipient, recipient_name, audiences,
                         n_items, worst_severity, subject, message_file, message_sha256,
                         message_bytes, status, attempts, created_at)
                    select alert_id, day, run_id, mode, recipient, recipient_name, audiences,
                           n_items, worst_severity, subject, message_file, message_sha256,
                           message_bytes, status, attempts, created_at
                    from outbox
                    on conflict do nothing
                    returning alert_id
                    """
                ).fetchall()
                if rows
                else []
            )
            con.execute(
                "insert into alert_items select alert_id, item_id, kind, severity, facility_id "
                "from carried on conflict do nothing"
            )
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            delete_messages(folder, written)
            raise
        result.queued = sorted(r[0] for r in new)
    return result


def _batches(fresh: pl.DataFrame) -> list[pl.DataFrame]:
    """One digest per recipient; one immediate alert per (recipient, item)."""
    digests = fresh.filter(pl.col("mode") == "digest").partition_by(
        "recipient", maintain_order=True
    )
    immediate = fresh.filter(pl.col("mode") == "immediate").partition_by(
        "recipient", "item_id", maintain_order=True
    )
    return [*immediate, *digests]


@batch_stage
def send_pending(settings: Settings, sender: Sender, day: date | None = None) -> SendResult:
    """Deliver every pending alert (of ``day``, or of all days) once; record the outcomes.

    The warehouse is not held while the SMTP server is contacted. A connection failure
    leaves every alert pending with the error; a refusal of one message leaves that one
    pending (``failed`` once it reached ``max_attempts``).
    """
    from warehouse.db import connect, migrate

    with connect(settings.warehouse) as con:
        migrate(con)
        folder = outbox_dir_of(con)
        where, args = ("and day = ?", [day]) if day else ("", [])
        pending = con.execute(
            f"select alert_id, recipient, message_file, message_sha256, attempts "
            f"from alert_outbox where status = 'pending' {where} order by created_at, alert_id",
            args,
        ).fetchall()
    result = SendResult()
    outcomes: list[tuple[str, str, str | None]] = []  # alert_id, status, error
    if pending:
        try:
            with sender as s:
                for aid, _recipient, file, sha256, _attempts in pending:
                    try:
                        raw = read_message(folder, file, sha256)
                    except WarehouseError as exc:  # recorded like a refusal: never sent
                        outcomes.append((aid, "error", _describe(exc)))
                        continue
                    msg = message_from_bytes(raw, policy=policy.default)
                    assert isinstance(msg, EmailMessage)
                    msg["From"] = s.from_email
                    msg["Date"] = formatdate(localtime=False, usegmt=True)
                    try:
                        s.send(msg)
                    except Exception as exc:  # recorded per alert; the others go on
                        outcomes.append((aid, "error", _describe(exc)))
                    else:
                        outcomes.append((aid, "sent", None))
        except Exception as exc:  # could not connect: everything not yet sent stays pending
            result.error = _describe(exc)
            done = {o[0] for o in outcomes}
            outcomes += [(p[0], "error", result.error) for p in pending if p[0] not in done]
    now = datetime.now(tz=UTC)
    with connect(settings.warehouse) as con:
        con.execute("begin transaction")
        for aid, status, error in outcomes:
            if status == "sent":
                con.execute(
                    "update alert_outbox set status = 'sent', attempts = attempts + 1, "
                    "last_error = null, last_attempt_at = ?, sent_at = ? where alert_id = ?",
                    [now, now, aid],
                )
                result.sent.append(aid)
                continue
            row = con.execute(
                "update alert_outbox set attempts = attempts + 1, last_error = ?, "
                "last_attempt_at = ?, status = case when attempts + 1 >= ? then 'failed' "
                "else 'pending' end where alert_id = ? returning status",
                [error, now, settings.alerts.max_attempts, aid],
            ).fetchone()
            (result.failed if row and row[0] == "failed" else result.pending).append(aid)
        con.execute("commit")
    return result


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text if len(text) <= 500 else text[:497] + "..."


def list_alerts(
    settings: Settings, day: date | None = None, status: str | None = None
) -> pl.DataFrame:
    """Return the outbox (without the message bytes), newest first, optionally filtered."""
    from warehouse.db import connect

    if not settings.warehouse.exists():
        return pl.DataFrame()
    conditions: list[str] = []
    args: list[object] = []
    if day:
        conditions.append("day = ?")
        args.append(day)
    if status:
        conditions.append("status = ?")
        args.append(status)
    where = f"where {' and '.join(conditions)}" if conditions else ""
    with connect(settings.warehouse, read_only=True) as con:
        tables = {r[0] for r in con.execute("select table_name from duckdb_tables()").fetchall()}
        if "alert_outbox" not in tables:
            return pl.DataFrame()
        return con.execute(
            "select alert_id, day, mode, status, attempts, recipient, n_items, worst_severity, "
            "subject, last_error, created_at, sent_at from alert_outbox "
            f"{where} order by created_at desc, alert_id",
            args,
        ).pl()


__all__ = [
    "ITEMS",
    "QueueResult",
    "SendResult",
    "Sender",
    "alert_id",
    "list_alerts",
    "queue_alerts",
    "report_link",
    "send_pending",
]
