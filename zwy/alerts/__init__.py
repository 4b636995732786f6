"""Alert emails: breach, data-quality and pipeline alerts that reach the right person once.

:func:`run_alerts` is what the nightly run (``zwy run``, the DAG's ``send_alerts`` task)
and ``zwy alerts send`` call: queue the day's new alerts in the warehouse outbox, then
deliver everything pending. See :mod:`zwy.alerts.outbox` for the exactly-once design,
:mod:`zwy.alerts.catalog` for routing as data and docs/alerts.md for the set-up.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date
from typing import Any

from zwy.alerts.collect import PipelineEvent
from zwy.alerts.outbox import Sender, list_alerts, queue_alerts, send_pending
from zwy.runtime import batch_stage
from zwy.settings import Settings

__all__ = [
    "PipelineEvent",
    "events_from_runs",
    "events_from_stages",
    "list_alerts",
    "queue_alerts",
    "run_alerts",
    "send_pending",
]

log = logging.getLogger(__name__)

#: Stage statuses that raise a pipeline alert, and the event kind each raises.
_EVENT_OF_STATUS = {"failed": "ZWY-OPS-STAGE-FAILED", "nothing_arrived": "ZWY-OPS-NOTHING-ARRIVED"}


def events_from_stages(stages: Sequence[dict[str, Any]]) -> list[PipelineEvent]:
    """Pipeline events of stage records (``name``/``stage``, ``stream``, ``status``, ``message``).

    A failed load whose message names the accounting invariant becomes an accounting event.
    """
    events = []
    for s in stages:
        event = _EVENT_OF_STATUS.get(str(s.get("status")))
        if event is None:
            continue
        name = str(s.get("name") or s.get("stage") or "?")
        message = str(s.get("message") or s.get("error") or "")
        if event == "ZWY-OPS-STAGE-FAILED" and "accounting" in message.lower():
            event = "ZWY-OPS-ACCOUNTING"
        if not message:
            stream = s.get("stream")
            message = (
                f"no input file arrived for {stream}"
                if event == "ZWY-OPS-NOTHING-ARRIVED"
                else f"stage {name} failed"
            )
        events.append(PipelineEvent(event, name, s.get("stream"), message))
    return events


def events_from_runs(day: date, settings: Settings) -> list[PipelineEvent]:
    """Pipeline events of the latest ``ops_runs`` row of ``day`` (for ``zwy alerts send``)."""
    from warehouse.db import connect

    if not settings.warehouse.exists():
        return []
    with connect(settings.warehouse, read_only=True) as con:
        row = con.execute(
            "select stages from ops_runs where day = ? order by started_at desc limit 1", [day]
        ).fetchone()
    if row is None or not row[0]:
        return []
    return events_from_stages(list(row[0]))


@batch_stage
def run_alerts(
    day: date,
    settings: Settings,
    events: Sequence[PipelineEvent] = (),
    run_id: str | None = None,
    sender: Sender | None = None,
    also_days: Sequence[date] = (),
) -> dict[str, Any]:
    """Queue the day's new alerts, then deliver every pending one; return a JSON-able summary.

    ``also_days``: days the run judged again (late packets changed their marts): their
    findings not yet alerted are queued too, in their own day's emails; what was alerted
    before is not sent again (``queued_other_days`` counts the new ones).
    ``sender`` defaults to Airflow's SMTP provider over ``settings.alerts.smtp_conn_id``.
    A server that is down does not raise: the alerts stay pending and the summary says so
    (``pending`` > 0, ``smtp_error``).
    """
    from zwy.alerts.smtp import AirflowSmtpSender

    queued = queue_alerts(day, settings, events, run_id)
    other = [queue_alerts(d, settings, (), run_id) for d in sorted(set(also_days) - {day})]
    sender = sender or AirflowSmtpSender(settings.alerts.smtp_conn_id, settings.alerts.from_email)
    sent = send_pending(settings, sender)
    if sent.pending or sent.failed:
        log.warning(
            "alerts of %s: %d sent, %d still pending, %d failed for good; SMTP: %s "
            "(pending alerts go out with the next run or `zwy alerts send --day %s`)",
            day,
            len(sent.sent),
            len(sent.pending),
            len(sent.failed),
            sent.error,
            day,
        )
    return {
        "stage": "send_alerts",
        "stream": None,
        "day": day.isoformat(),
        "items": queued.items,
        "queued": len(queued.queued),
        "queued_other_days": sum(len(q.queued) for q in other),
        "already_alerted": queued.already_queued,
        "unrouted": queued.unrouted,
        "sent": len(sent.sent),
        "pending": len(sent.pending),
        "failed": len(sent.failed),
        "smtp_error": sent.error,
    }
