"""
### yizhuang_nightly — zero-waste Yizhuang nightly ingestion

Runs daily at **02:00 Asia/Shanghai** for the previous local day: the run's data interval
`[D 02:00, D+1 02:00)` names day **D**. A manual trigger may pass `day` (`YYYY-MM-DD`).

| stage | task | reads | writes |
|---|---|---|---|
| parse | `<stream>.parse_stream` (pool `zwy_parse`, 1 slot per worker machine) | `inbox/<day>/<stream>/*` | `staging/<day>/<stream>/{files,packets,values,quarantine}.parquet` (solid_waste: also `waste_ledger`, `waste_manifests`) |
| transform | `<stream>.transform_stream` | `values.parquet/` and `frames.parquet/` (folders of parts, `zwy.hj212.values`), registry | `readings.parquet` |
| load | `load_day` (pool `zwy_duckdb_writer`, 1 slot) | all streams' staging | the DuckDB warehouse, `ops_runs` |
| validate | `validate_day` (same pool) | the day's marts (and those of days judged before that late packets changed) | `breaches`, `dq_issues`, GX results |
| report | `build_report` (same pool: a reader's lock blocks writers) | the warehouse, read-only | `reports/<day>/compliance_<day>.html` |
| check | `check_arrivals` | the parse results | fails the run when a stream got no input |
| publish | `publish` (same pool) | the warehouse | `published/zwy.duckdb` + Parquet: the analysts' read-only snapshot |
| alert | `send_alerts` (all_done, same pool) | findings, this run's task states | `alert_outbox`; emails via `smtp_default` |

Only paths and counts travel through XCom. `load_day` is the single DuckDB writer and emits
the warehouse tables as Assets, so downstream DAGs are scheduled by data, not by clock.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import Asset, Param, TriggerRule, dag, task, task_group
from airflow.timetables.interval import CronDataIntervalTimetable

TZ = pendulum.timezone("Asia/Shanghai")
STREAMS = ("wastewater", "exhaust_gas", "solid_waste", "dust")
POOL = "zwy_duckdb_writer"
# The parses take turns (1 slot on one machine): each keeps every core busy on its own
# (ZWY_PARSE_WORKERS threads), and four at once on 2 cores measured no faster but peaked at
# 4.3 GB instead of 2.5 GB (docs/performance.md). Give it one slot per worker machine.
PARSE_POOL = "zwy_parse"
# Celery queue served by exactly one worker, on the machine that holds the warehouse file
# (docs/deploy.md). The LocalExecutor and `airflow dags test` ignore it.
WRITER_QUEUE = "duckdb_writer"
WAREHOUSE_ASSETS = [
    Asset("zwy://warehouse/raw_ingest_files"),
    Asset("zwy://warehouse/raw_quarantine"),
    Asset("zwy://warehouse/stg_readings"),
    Asset("zwy://warehouse/mart_hourly_values"),
    Asset("zwy://warehouse/mart_daily_values"),
]
CONTROL_ASSETS = [Asset("zwy://warehouse/breaches"), Asset("zwy://warehouse/dq_issues")]
# Retries with back-off only where I/O can fail transiently (shared storage, the DB file).
IO_RETRIES: dict[str, Any] = {
    "retries": 3,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=15),
}


@dag(
    dag_id="yizhuang_nightly",
    schedule=CronDataIntervalTimetable("0 2 * * *", timezone=TZ),
    start_date=pendulum.datetime(2024, 5, 1, tz=TZ),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 0},
    params={
        "day": Param(
            None,
            type=["null", "string"],
            format="date",
            description="Day to process (YYYY-MM-DD); empty: the data interval's day",
        )
    },
    tags=["zwy", "nightly"],
    doc_md=__doc__,
)
def yizhuang_nightly() -> None:
    """Build the graph. Nothing runs at import: every project import happens inside a task."""

    @task
    def resolve_day(**context: Any) -> str:
        """Return the day: the run's `day` param, else its data interval's local day. Writes nothing."""
        day = (context.get("params") or {}).get("day")
        if day:
            return str(day)
        start = context["data_interval_start"] or context["dag_run"].run_after
        return str(start.in_timezone(TZ).date().isoformat())

    day = resolve_day()
    results = []
    for stream in STREAMS:

        @task_group(group_id=stream)
        def stream_group(day: str, stream: str = stream) -> Any:
            @task(task_id="parse_stream", pool=PARSE_POOL, multiple_outputs=False, **IO_RETRIES)
            def parse_stream(day: str) -> dict[str, Any]:
                """Parse inbox/<day>/<stream>/*; write staging/<day>/<stream>/*.parquet."""
                from datetime import date

                from zwy.pipeline import parse_stream as parse

                return parse(date.fromisoformat(day), stream)

            @task(task_id="transform_stream", **IO_RETRIES)
            def transform_stream(parsed: dict[str, Any]) -> list[dict[str, Any]]:
                """Read staging values.parquet and the registry; write readings.parquet."""
                from datetime import date

                from zwy.pipeline import transform_stream as transform

                return [parsed, transform(date.fromisoformat(parsed["day"]), stream)]

            return transform_stream(parse_stream(day))

        results.append(stream_group(day))

    @task(
        pool=POOL,
        queue=WRITER_QUEUE,
        outlets=WAREHOUSE_ASSETS,
        multiple_outputs=False,
        **IO_RETRIES,
    )
    def load_day(day: str, upstream: list[list[dict[str, Any]]], **context: Any) -> dict[str, Any]:
        """Read staging/<day>/*/*.parquet; write the DuckDB warehouse and ops_runs (single writer)."""
        from datetime import date

        from zwy.pipeline import load_day as load
        from zwy.pipeline import record_stages

        d = date.fromisoformat(day)
        run_id = f"{day}_airflow_{context['run_id']}"
        loaded = load(d, run_id=run_id)
        stages = [r for pair in upstream for r in pair] + [loaded]
        record_stages(d, run_id, "airflow", context["dag_run"].start_date, stages)
        affected = loaded.get("affected_days") or []
        return {"day": day, "run_id": run_id, "stages": stages, "affected_days": affected}

    @task(pool=POOL, queue=WRITER_QUEUE, outlets=CONTROL_ASSETS, multiple_outputs=False)
    def validate_day(loaded: dict[str, Any], **context: Any) -> dict[str, Any]:
        """Read the day's marts; write breaches, dq_issues and GX results (single writer)."""
        from datetime import date

        from zwy.pipeline import record_stages
        from zwy.validate import validate_loaded

        d = date.fromisoformat(loaded["day"])
        # Also the days judged before whose marts this load changed (late packets).
        res = validate_loaded(d, loaded.get("affected_days"))
        counts = {k: len(v) if isinstance(v, list) else v for k, v in res.items()}
        stage = {
            "stage": "validate_day",
            "stream": None,
            **{k: v for k, v in counts.items() if isinstance(v, int)},
        }
        record_stages(
            d,
            loaded["run_id"],
            "airflow",
            context["dag_run"].start_date,
            [*loaded["stages"], stage],
        )
        return {
            "day": loaded["day"],
            "breaches": counts.get("breaches", 0),
            "dq_issues": counts.get("dq_issues", 0),
            "rejudged_days": res["rejudged_days"],
        }

    # A reader holds a DuckDB file lock that blocks writers (runs of a backfill overlap):
    # the report takes the writer slot too, on the machine that holds the file.
    @task(pool=POOL, queue=WRITER_QUEUE, multiple_outputs=False, **IO_RETRIES)
    def build_report(validated: dict[str, Any]) -> str:
        """Read the warehouse read-only; write reports/<day>/compliance_<day>.html.

        Also rewrites the reports of the days validate_day judged again.
        """
        from datetime import date

        from zwy.report import build_report as build
        from zwy.validate import rejudged_days

        for again in rejudged_days(validated):
            build(again)
        return str(build(date.fromisoformat(validated["day"])))

    @task
    def check_arrivals(upstream: list[list[dict[str, Any]]]) -> None:
        """Read the parse results; fail the run if a stream had no input (never a silent success)."""
        from airflow.sdk.exceptions import AirflowFailException

        empty = [pair[0]["stream"] for pair in upstream if pair[0]["nothing_arrived"]]
        if empty:
            raise AirflowFailException(
                f"nothing arrived for {', '.join(empty)} on {upstream[0][0]['day']}: "
                "the other streams were loaded; see ops_runs"
            )

    @task(
        pool=POOL,
        queue=WRITER_QUEUE,
        trigger_rule=TriggerRule.ALL_DONE,
        multiple_outputs=False,
        outlets=[Asset("zwy://warehouse/alert_outbox")],
        **IO_RETRIES,
    )
    def send_alerts(**context: Any) -> dict[str, Any]:
        """Read the day's findings and this run's task states; write alert_outbox; send what is pending.

        Runs whatever happened upstream (all_done): a failed stage becomes a pipeline alert.
        """
        from datetime import date

        from zwy.alerts import events_from_stages, run_alerts
        from zwy.settings import get_settings
        from zwy.validate import rejudged_days

        ti, dag_run = context["ti"], context["dag_run"]
        day = ti.xcom_pull(task_ids="resolve_day")
        if not day:
            raise RuntimeError("resolve_day produced no day: nothing to alert on")
        states = ti.get_task_states(dag_id=dag_run.dag_id, run_ids=[dag_run.run_id])
        states = states.get(dag_run.run_id, states)
        stages: list[dict[str, Any]] = []
        for task_id, state in sorted(states.items()):
            if state == "failed" and task_id not in ("check_arrivals", "send_alerts"):
                stream, _, name = task_id.rpartition(".")
                stages.append(
                    {
                        "name": name,
                        "stream": stream or None,
                        "status": "failed",
                        "message": f"Airflow task {task_id} failed in run {dag_run.run_id}: see its log",
                    }
                )
        for stream in STREAMS:
            parsed = ti.xcom_pull(task_ids=f"{stream}.parse_stream")
            if parsed and parsed.get("nothing_arrived"):
                stages.append(
                    {"name": "parse_stream", "stream": stream, "status": "nothing_arrived"}
                )
        # Days validate_day judged again (late packets): their new findings go out too.
        validated = ti.xcom_pull(task_ids="validate_day") or {}
        return run_alerts(
            date.fromisoformat(day),
            get_settings(),
            events_from_stages(stages),
            run_id=f"{day}_airflow_{dag_run.run_id}",
            also_days=rejudged_days(validated),
        )

    @task(
        pool=POOL,
        queue=WRITER_QUEUE,
        multiple_outputs=False,
        outlets=[Asset("zwy://published/zwy.duckdb")],
        **IO_RETRIES,
    )
    def publish(loaded: dict[str, Any]) -> dict[str, Any]:
        """Read the warehouse; write the analysts' snapshot (published/zwy.duckdb + Parquet)."""
        from datetime import date

        from zwy.pipeline import publish_day

        load = next((s for s in loaded["stages"] if s.get("stage") == "load_day"), {})
        return publish_day(
            date.fromisoformat(loaded["day"]),
            days=load.get("affected_days"),
            run_id=loaded["run_id"],
        )

    loaded = load_day(day, results)
    report = build_report(validate_day(loaded))
    published = publish(loaded)
    report >> published
    # Two leaves: check_arrivals fails the run when a stream got nothing (or upstream failed);
    # send_alerts runs in every case.
    report >> check_arrivals(results)
    published >> send_alerts()


nightly = yizhuang_nightly()
