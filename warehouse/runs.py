"""Recording pipeline runs in ``ops_runs``: one row per run, its stages in a list column."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal, get_args

import duckdb
import pyarrow as pa

from zwy.errors import WarehouseError

StageStatus = Literal["success", "failed", "nothing_arrived", "skipped"]
STAGE_STATUSES: frozenset[str] = frozenset(get_args(StageStatus))

_STAGE_TYPE = pa.struct(
    [
        ("name", pa.string()),
        ("stream", pa.string()),
        ("status", pa.string()),
        ("counts", pa.map_(pa.string(), pa.int64())),
        ("duration_s", pa.float64()),
        ("message", pa.string()),
    ]
)


@dataclass(frozen=True)
class StageResult:
    """What one stage of a run did.

    Attributes:
        name: stage name, the same as the task id and the function (e.g. ``parse_hj212_log``).
        stream: the stream the stage handled, or None for a stage over all streams.
        status: ``success``, ``failed``, ``nothing_arrived`` (no input for the stream that
            day: distinct from a failure so the report can say "no data arrived"), or
            ``skipped``.
        counts: named counts (``files``, ``frames``, ``quarantined``, ...).
        duration_s: wall time in seconds.
        message: a person-readable note or the error message.

    """

    name: str
    stream: str | None
    status: StageStatus
    counts: Mapping[str, int] = field(default_factory=dict)
    duration_s: float = 0.0
    message: str | None = None


def _aware(ts: datetime, what: str) -> datetime:
    if ts.tzinfo is None:
        raise WarehouseError(f"ops_runs.{what} must be timezone-aware, got {ts.isoformat()}")
    return ts


def record_run(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    day: date,
    trigger: str,
    started_at: datetime,
    finished_at: datetime | None,
    status: str,
    stages: Sequence[StageResult],
) -> None:
    """Insert or replace the ``ops_runs`` row of ``run_id`` (call it again as stages finish).

    Args:
        con: a read-write connection to a migrated warehouse.
        run_id: the run's id (the Airflow run id, or one the CLI makes).
        day: the batch day the run processed.
        trigger: what started it (``schedule``, ``manual``, ``backfill``, ``cli``).
        started_at: timezone-aware start.
        finished_at: timezone-aware end, or None while running.
        status: the run's overall status (``running``, ``success``, ``failed``, ...).
        stages: the stages so far, in execution order.

    Raises:
        WarehouseError: a naive timestamp or an unknown stage status.

    """
    for stage in stages:
        if stage.status not in STAGE_STATUSES:
            raise WarehouseError(
                f"run {run_id}: stage {stage.name!r} has status {stage.status!r}, "
                f"expected one of {sorted(STAGE_STATUSES)}"
            )
    stage_rows = [
        {
            "name": s.name,
            "stream": s.stream,
            "status": s.status,
            "counts": [(k, int(v)) for k, v in s.counts.items()],
            "duration_s": float(s.duration_s),
            "message": s.message,
        }
        for s in stages
    ]
    row = pa.table(
        {
            "run_id": pa.array([run_id], pa.string()),
            "day": pa.array([day], pa.date32()),
            "trigger": pa.array([trigger], pa.string()),
            "started_at": pa.array([_aware(started_at, "started_at")], pa.timestamp("us", "UTC")),
            "finished_at": pa.array(
                [None if finished_at is None else _aware(finished_at, "finished_at")],
                pa.timestamp("us", "UTC"),
            ),
            "status": pa.array([status], pa.string()),
            "stages": pa.array([stage_rows], pa.list_(_STAGE_TYPE)),
        }
    )
    con.register("_zwy_run_row", row)
    try:
        con.execute("begin transaction")
        try:
            con.execute("delete from ops_runs where run_id = ?", [run_id])
            con.execute("insert into ops_runs by name select * from _zwy_run_row")
            con.execute("commit")
        except duckdb.Error as exc:
            con.execute("rollback")
            raise WarehouseError(f"run {run_id}: cannot record in ops_runs: {exc}") from exc
    finally:
        con.unregister("_zwy_run_row")
