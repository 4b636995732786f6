"""Turn the rows GX found unexpected into ``breaches`` and ``dq_issues`` rows.

Pure Polars: batches and failures in, result frames out. Consecutive failing hours of one
device and parameter (hour capture, T flags) are merged into one issue; every other
failing row is one finding. Each finding carries what is needed to gather its evidence
(:mod:`expectations.evidence`): the device, parameter, time window, the ``cn`` of the
readings behind it and the SQL over the marts that shows it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Any

import polars as pl

from expectations.controls import Control
from expectations.measures import SOURCE_CN_TO_CN, day_bounds_utc
from zwy.contracts import TZ_LOCAL, UTC_DT
from zwy.settings import ValiditySettings


def _schema(columns: Mapping[str, Any]) -> pl.Schema:
    return pl.Schema(columns)


BREACHES = _schema(
    {
        "breach_id": pl.String,
        "local_day": pl.Date,
        "control_id": pl.String,
        "facility_id": pl.String,
        "outlet_id": pl.String,
        "mn": pl.String,
        "pollutant": pl.String,
        "averaging_period": pl.String,
        "period_start_utc": UTC_DT,
        "period_end_utc": UTC_DT,
        "period_start_local": pl.Datetime("us"),
        "observed": pl.Float64,
        "limit_low": pl.Float64,
        "limit_high": pl.Float64,
        "unit": pl.String,
        "limit_id": pl.String,
        "severity": pl.String,
        "legal_basis": pl.String,
        "verified_status": pl.String,
        "corrected_o2": pl.Boolean,
        "reference_o2": pl.Float64,
        "message": pl.String,
        "evidence": pl.String,
        "run_id": pl.String,
        "validated_at": UTC_DT,
        "subject": pl.String,  # what a finding without a device is about (a manifest, a ledger line)
        "waste_code": pl.String,  # hazardous-waste code of a solid-waste finding
    }
)

DQ_ISSUES = _schema(
    {
        "issue_id": pl.String,
        "local_day": pl.Date,
        "control_id": pl.String,
        "facility_id": pl.String,
        "outlet_id": pl.String,
        "mn": pl.String,
        "pollutant": pl.String,
        "period_start_utc": UTC_DT,
        "period_end_utc": UTC_DT,
        "period_start_local": pl.Datetime("us"),
        "observed": pl.Float64,
        "threshold": pl.Float64,
        "unit": pl.String,
        "severity": pl.String,
        "legal_basis": pl.String,
        "verified_status": pl.String,
        "message": pl.String,
        "details": pl.String,
        "evidence": pl.String,
        "run_id": pl.String,
        "validated_at": UTC_DT,
        "subject": pl.String,
        "waste_code": pl.String,
    }
)

#: Columns a finding carries for its evidence query, dropped before writing.
SCOPE = _schema(
    {
        "_ev_mn": pl.String,
        "_ev_pollutant": pl.String,  # null: every parameter of the device
        "_ev_start": UTC_DT,
        "_ev_end": UTC_DT,
        "_ev_cns": pl.List(pl.String),  # null: every cn
        "_ev_sql": pl.String,  # SQL over the marts that shows the finding
    }
)


def _local(col: str) -> pl.Expr:
    return pl.col(col).dt.convert_time_zone(TZ_LOCAL).dt.replace_time_zone(None)


def _iso(col: str) -> pl.Expr:
    return pl.col(col).dt.convert_time_zone(TZ_LOCAL).dt.strftime("%Y-%m-%dT%H:%M")


def _fmt_num(col: str) -> pl.Expr:
    return pl.col(col).round(3).cast(pl.String)


def _cns(source_cn: pl.Expr) -> pl.Expr:
    return source_cn.replace(SOURCE_CN_TO_CN)


def _mart_sql_hour(day: date, start: str = "_ev_start", end: str = "_ev_end") -> pl.Expr:
    return pl.format(
        "select * from mart_hourly_values where local_day = DATE '{}' and mn = '{}' "
        "and pollutant = '{}' and hour_start_utc >= TIMESTAMPTZ '{}' "
        "and hour_start_utc < TIMESTAMPTZ '{}' order by hour_start_utc",
        pl.lit(day.isoformat()),
        pl.col("mn"),
        pl.col("pollutant"),
        pl.col(start).dt.strftime("%Y-%m-%d %H:%M:%S+00"),
        pl.col(end).dt.strftime("%Y-%m-%d %H:%M:%S+00"),
    )


def _mart_sql_day(day: date) -> pl.Expr:
    return pl.format(
        "select * from mart_daily_values where local_day = DATE '{}' and mn = '{}' "
        "and pollutant = '{}'",
        pl.lit(day.isoformat()),
        pl.col("mn"),
        pl.col("pollutant"),
    )


def _names() -> dict[str, str]:
    from zwy.hj212.codes import code_table

    t = code_table().unique("code_2017", keep="first")
    return dict(zip(t["code_2017"].to_list(), t["name_zh"].to_list(), strict=True))


def _pollutant_label() -> pl.Expr:
    names = _names()
    return pl.concat_str(
        [
            pl.col("pollutant"),
            pl.lit(" "),
            pl.col("pollutant").replace_strict(names, default="", return_dtype=pl.String),
        ]
    ).str.strip_chars()


def breach_rows(
    day: date,
    batches: Mapping[str, pl.DataFrame],
    failures: pl.DataFrame,
    limits: pl.DataFrame,
    controls: Sequence[Control],
) -> pl.DataFrame:
    """Build one breach per failing (device, pollutant, averaging period) of a limit control.

    Args:
        day: the compliance day.
        batches: the day's batches (:func:`expectations.measures.build_batches`).
        failures: GX's unexpected rows (:func:`expectations.suites.failures_frame`).
        limits: the effective limits of the day (legal basis, reference O2).
        controls: the catalog.

    Returns:
        :data:`BREACHES` columns (``evidence``, ``run_id``, ``validated_at`` still null)
        plus the :data:`SCOPE` columns.

    """
    by_id = {c.control_id: c for c in controls if c.is_limit}
    start, end = day_bounds_utc(day)
    basis = limits.select(
        "control_id", "outlet_id", "pollutant", "legal_basis", "clause", "reference_o2"
    )
    ctl = pl.DataFrame(
        {
            "control_id": list(by_id),
            "severity": [c.severity for c in by_id.values()],
            "averaging_period": [str(c.params["averaging_period"]) for c in by_id.values()],
        },
        schema={"control_id": pl.String, "severity": pl.String, "averaging_period": pl.String},
    )
    parts = []
    for batch in ("daily", "hourly"):
        f = failures.filter((pl.col("batch") == batch) & pl.col("control_id").is_in(list(by_id)))
        if f.height == 0:
            continue
        rows = batches[batch].join(f.select("row_id", "control_id"), on="row_id")
        if batch == "daily":
            # The readings behind a daily mean: the sources its hours were computed from.
            cns = (
                batches["hourly"]
                .filter(pl.col("source_cn").is_not_null())
                .group_by("mn", "pollutant")
                .agg(_cn_list=_cns(pl.col("source_cn")).unique().sort())
            )
            rows = rows.join(cns, on=["mn", "pollutant"], how="left").with_columns(
                _ev_start=pl.lit(start, UTC_DT), _ev_end=pl.lit(end, UTC_DT)
            )
        else:
            rows = rows.with_columns(
                _ev_start=pl.col("hour_start_utc"),
                _ev_end=pl.col("hour_start_utc") + timedelta(hours=1),
                _cn_list=pl.concat_list(_cns(pl.col("source_cn"))),
            )
        rows = rows.join(basis, on=["control_id", "outlet_id", "pollutant"], how="left").join(
            ctl, on="control_id", how="left"
        )
        mart_sql = _mart_sql_day(day) if batch == "daily" else _mart_sql_hour(day)
        parts.append(rows.with_columns(_ev_sql=mart_sql))
    if not parts:
        return pl.DataFrame(schema=BREACHES | SCOPE)
    rows = pl.concat(parts, how="diagonal_relaxed")
    above = pl.col("limit_high").is_not_null() & (pl.col("checked") > pl.col("limit_high"))
    corrected = pl.col("value_column") == "value_zs"
    unverified = pl.col("limit_status") == "unverified"
    bound = (
        pl.when(above)
        .then(pl.format("> limit {} {}", pl.col("limit_high"), pl.col("unit")))
        .otherwise(pl.format("< lower limit {} {}", pl.col("limit_low"), pl.col("unit")))
    )
    message = pl.concat_str(
        [
            _pollutant_label(),
            pl.lit(" "),
            pl.col("averaging_period"),
            pl.lit(" mean "),
            _fmt_num("checked"),
            pl.lit(" "),
            pl.col("unit").fill_null(""),
            pl.when(corrected)
            .then(pl.format(" (O2-corrected to {} %)", pl.col("reference_o2")))
            .otherwise(pl.lit("")),
            pl.lit(" "),
            bound,
            pl.format(" ({}; {})", pl.col("limit_id"), pl.col("legal_basis")),
            pl.when(unverified & corrected)
            .then(pl.lit(" — UNVERIFIED: the reference O2 is not verified (BRIEF §3.4)"))
            .when(unverified)
            .then(pl.lit(" — UNVERIFIED limit"))
            .otherwise(pl.lit("")),
        ]
    )
    out = rows.with_columns(
        local_day=pl.lit(day),
        period_start_utc=pl.col("_ev_start"),
        period_end_utc=pl.col("_ev_end"),
        period_start_local=_local("_ev_start"),
        observed=pl.col("checked"),
        legal_basis=pl.concat_str([pl.col("legal_basis"), pl.col("clause")], separator="; "),
        verified_status=pl.col("limit_status"),
        corrected_o2=corrected,
        reference_o2=pl.when(corrected).then(pl.col("reference_o2")),
        message=message,
        _ev_mn=pl.col("mn"),
        _ev_pollutant=pl.col("pollutant"),
        _ev_cns=pl.col("_cn_list"),
    ).with_columns(
        breach_id=pl.concat_str(
            [
                pl.lit(day.isoformat()),
                pl.col("control_id"),
                pl.col("mn"),
                pl.col("pollutant"),
                _iso("period_start_utc"),
            ],
            separator="|",
        ),
    )
    return _conform(out, BREACHES | SCOPE).sort("control_id", "mn", "pollutant", "period_start_utc")


def _conform(frame: pl.DataFrame, schema: pl.Schema) -> pl.DataFrame:
    return frame.select(
        [
            (pl.col(n) if n in frame.columns else pl.lit(None)).cast(t).alias(n)
            for n, t in schema.items()
        ]
    )


def _hour_runs(rows: pl.DataFrame) -> pl.DataFrame:
    """Merge consecutive failing hours of one (mn, pollutant) into runs."""
    by = ["mn", "pollutant"]
    hour = pl.col("hour_start_utc")
    cont = (hour - hour.shift(1).over(by) == timedelta(hours=1)).fill_null(False)
    return (
        rows.sort([*by, "hour_start_utc"])
        .with_columns(_run=(~cont).cum_sum().over(by))
        .group_by([*by, "_run"])
        .agg(
            pl.col("facility_id", "outlet_id", "stream", "unit").drop_nulls().first(),
            _ev_start=hour.min(),
            _ev_end=hour.max() + timedelta(hours=1),
            hours=pl.len().cast(pl.Int64),
            missing_hours=(~pl.col("present")).sum().cast(pl.Int64),
            max_value=pl.col("value").max(),
            n_flag_t=pl.col("n_flag_t").sum().cast(pl.Int64),
            n_flag_s=pl.col("n_flag_s").sum().cast(pl.Int64),
            min_valid_minutes=pl.col("valid_minutes").min(),
            source_cns=pl.col("source_cn").drop_nulls().unique().sort(),
        )
        .drop("_run")
    )


def dq_rows(
    day: date,
    batches: Mapping[str, pl.DataFrame],
    failures: pl.DataFrame,
    controls: Sequence[Control],
    validity: ValiditySettings,
) -> pl.DataFrame:
    """Build the data-quality issues of a day from GX's unexpected rows.

    Args:
        day: the compliance day.
        batches: the day's batches.
        failures: GX's unexpected rows (:func:`expectations.suites.failures_frame`).
        controls: the catalog.
        validity: the Annex D thresholds (reported as the threshold of capture issues).

    Returns:
        :data:`DQ_ISSUES` columns (``evidence``, ``run_id``, ``validated_at`` null) plus
        the :data:`SCOPE` columns.

    """
    by_id = {c.control_id: c for c in controls if not c.is_limit}
    start, end = day_bounds_utc(day)
    parts: list[pl.DataFrame] = []

    def failed(cid: str, column: str | None = None) -> pl.DataFrame:
        c = by_id[cid]
        f = failures.filter(pl.col("control_id") == cid)
        if column is not None:
            f = f.filter(pl.col("column") == column)
        return batches[c.batch].join(f.select("row_id"), on="row_id")

    def emit(cid: str, frame: pl.DataFrame, tag: str = "") -> None:
        if frame.height == 0:
            return
        c = by_id[cid]
        frame = frame.with_columns(
            control_id=pl.lit(cid),
            severity=pl.lit(c.severity),
            legal_basis=pl.lit(c.basis_text()),
            verified_status=pl.lit(c.status),
            local_day=pl.lit(day),
        )
        if "_p_start" not in frame.columns:
            frame = frame.with_columns(_p_start=pl.col("_ev_start"), _p_end=pl.col("_ev_end"))
        frame = frame.with_columns(
            period_start_utc=pl.col("_p_start"),
            period_end_utc=pl.col("_p_end"),
            period_start_local=_local("_p_start"),
            _ev_mn=pl.col("mn"),
            issue_id=pl.concat_str(
                [
                    pl.lit(day.isoformat()),
                    pl.lit(cid + tag),
                    pl.col("mn"),
                    pl.col("pollutant").fill_null("*"),
                    _iso("_p_start"),
                ],
                separator="|",
            ),
            message=pl.concat_str([pl.lit(f"{c.name_zh} / {c.name_en}: "), pl.col("message")]),
        )
        parts.append(_conform(frame, DQ_ISSUES | SCOPE))

    day_start = pl.lit(start, UTC_DT)
    day_end = pl.lit(end, UTC_DT)

    if "ZWY-DQ-HOUR-CAPTURE" in by_id:
        runs = _hour_runs(failed("ZWY-DQ-HOUR-CAPTURE"))
        emit(
            "ZWY-DQ-HOUR-CAPTURE",
            runs.with_columns(
                _ev_pollutant=pl.col("pollutant"),
                _ev_cns=pl.col("source_cns").list.eval(pl.element().replace(SOURCE_CN_TO_CN)),
                _ev_sql=_mart_sql_hour(day),
                observed=pl.col("hours").cast(pl.Float64),
                unit=pl.lit("hours"),
                threshold=pl.when(pl.col("stream") == "exhaust_gas")
                .then(pl.lit(float(validity.gas_hour_min_minutes)))
                .otherwise(pl.lit(float(validity.water_hour_min_periods))),
                message=pl.format(
                    "{} invalid hour(s) of {} ({} without any value; Annex D needs {} per hour)",
                    pl.col("hours"),
                    _pollutant_label(),
                    pl.col("missing_hours"),
                    pl.when(pl.col("stream") == "exhaust_gas")
                    .then(pl.lit(f"{validity.gas_hour_min_minutes} valid minutes"))
                    .otherwise(
                        pl.lit(f"{validity.water_hour_min_periods} valid period(s) with flow")
                    ),
                ),
                details=pl.struct(
                    "hours", "missing_hours", "min_valid_minutes", "n_flag_t", "n_flag_s"
                ).struct.json_encode(),
            ),
        )

    if "ZWY-DQ-T-FLAG" in by_id:
        rows = failed("ZWY-DQ-T-FLAG")
        daily = batches["daily"].select(
            "mn",
            "pollutant",
            pl.col("limit_id").alias("day_limit_id"),
            pl.col("limit_high").alias("day_limit_high"),
        )
        hour_limits = rows.group_by("mn", "pollutant").agg(
            pl.col("limit_id").drop_nulls().first().alias("hour_limit_id"),
            pl.col("limit_high").drop_nulls().first().alias("hour_limit_high"),
        )
        runs = (
            _hour_runs(rows)
            .join(daily, on=["mn", "pollutant"], how="left")
            .join(hour_limits, on=["mn", "pollutant"], how="left")
            .with_columns(
                _limit_id=pl.coalesce("hour_limit_id", "day_limit_id"),
                threshold=pl.coalesce("hour_limit_high", "day_limit_high"),
            )
        )
        emit(
            "ZWY-DQ-T-FLAG",
            runs.with_columns(
                _ev_pollutant=pl.col("pollutant"),
                _ev_cns=pl.col("source_cns").list.eval(pl.element().replace(SOURCE_CN_TO_CN)),
                _ev_sql=_mart_sql_hour(day),
                observed=pl.col("max_value"),
                message=pl.format(
                    "{} hour(s) of {} above the measuring range (T): the true value is at "
                    "least {} {}{}",
                    pl.col("hours"),
                    _pollutant_label(),
                    _fmt_num("max_value"),
                    pl.col("unit").fill_null(""),
                    pl.when(pl.col("threshold").is_not_null())
                    .then(
                        pl.format(
                            "; possible exceedance of {} ({} {})",
                            pl.col("_limit_id"),
                            pl.col("threshold"),
                            pl.col("unit").fill_null(""),
                        )
                    )
                    .otherwise(pl.lit("")),
                ),
                details=pl.struct("hours", "n_flag_t", "_limit_id").struct.json_encode(),
            ),
        )

    if "ZWY-DQ-DAY-CAPTURE" in by_id:
        rows = failed("ZWY-DQ-DAY-CAPTURE")
        emit(
            "ZWY-DQ-DAY-CAPTURE",
            rows.with_columns(
                threshold=pl.when(pl.col("capture_class") == "gas")
                .then(pl.lit(float(validity.gas_day_min_hours)))
                .otherwise(pl.lit(float(validity.water_day_min_hours))),
            ).with_columns(
                _ev_start=day_start,
                _ev_end=day_end,
                _ev_pollutant=pl.col("pollutant"),
                _ev_sql=_mart_sql_day(day),
                observed=pl.col("valid_hours").cast(pl.Float64),
                unit=pl.lit("valid hours"),
                message=pl.format(
                    "{} has {} valid hour(s); a {} day needs {}",
                    _pollutant_label(),
                    pl.col("valid_hours"),
                    pl.col("capture_class"),
                    pl.col("threshold").cast(pl.Int64),
                ),
                details=pl.struct("valid_hours", "capture_class").struct.json_encode(),
            ),
        )

    if "ZWY-DQ-S-SHARE" in by_id:
        share = float(by_id["ZWY-DQ-S-SHARE"].params["max_share"])
        rows = failed("ZWY-DQ-S-SHARE")
        emit(
            "ZWY-DQ-S-SHARE",
            rows.with_columns(
                _ev_start=day_start,
                _ev_end=day_end,
                _ev_pollutant=pl.col("pollutant"),
                _ev_sql=_mart_sql_day(day),
                observed=pl.col("s_share"),
                threshold=pl.lit(share),
                unit=pl.lit("share of values"),
                message=pl.format(
                    "{} % of the values of {} are manually set (S); more than {} % is suspect",
                    (pl.col("s_share") * 100).round(1),
                    _pollutant_label(),
                    pl.lit(round(share * 100, 1)),
                ),
                details=pl.struct("s_share", "n_flag_s").struct.json_encode(),
            ),
        )

    if "ZWY-DQ-PINNED" in by_id:
        p = by_id["ZWY-DQ-PINNED"].params
        for column, limit_col, what, thr in (
            ("pinned_hours", "hour_limit_id", "valid hours of the day", p["max_hours_in_band"]),
            (
                "pinned_days",
                "limit_id",
                f"of the last {p['lookback_days']} daily means",
                p["max_days_in_band"],
            ),
        ):
            rows = failed("ZWY-DQ-PINNED", column)
            emit(
                "ZWY-DQ-PINNED",
                rows.with_columns(
                    _ev_start=day_start,
                    _ev_end=day_end,
                    _ev_pollutant=pl.col("pollutant"),
                    _ev_sql=_mart_sql_day(day),
                    observed=pl.col(column).cast(pl.Float64),
                    threshold=pl.lit(float(thr)),
                    unit=pl.lit(column.removeprefix("pinned_")),
                    message=pl.format(
                        "{} {} of {} lie within {} % under the limit {}{}",
                        pl.col(column),
                        pl.lit(what),
                        _pollutant_label(),
                        pl.lit(round(float(p["band"]) * 100, 1)),
                        pl.col(limit_col),
                        pl.when(pl.col("limit_status") == "unverified")
                        .then(pl.lit(" (UNVERIFIED limit)"))
                        .otherwise(pl.lit("")),
                    ),
                    details=pl.struct(column, limit_col).struct.json_encode(),
                ),
                tag=f":{column}",
            )

    if "ZWY-DQ-FLATLINE" in by_id:
        n = int(by_id["ZWY-DQ-FLATLINE"].params["min_hours"])
        rows = failed("ZWY-DQ-FLATLINE")
        emit(
            "ZWY-DQ-FLATLINE",
            rows.with_columns(
                _ev_start=pl.col("start_utc"),
                _ev_end=pl.col("end_utc"),
                _ev_pollutant=pl.col("pollutant"),
                _ev_sql=_mart_sql_hour(day, "start_utc", "end_utc"),
                observed=pl.col("hours").cast(pl.Float64),
                threshold=pl.lit(float(n)),
                unit=pl.lit("hours"),
                message=pl.format(
                    "{} stuck at {} for {} consecutive valid hours while the outlet flows "
                    "({} or more is suspect)",
                    _pollutant_label(),
                    pl.col("value"),
                    pl.col("hours"),
                    pl.lit(n),
                ),
                details=pl.struct("hours", "value").struct.json_encode(),
            ),
        )

    if "ZWY-DQ-OFFLINE" in by_id:
        n = int(by_id["ZWY-DQ-OFFLINE"].params["max_offline_hours"])
        rows = failed("ZWY-DQ-OFFLINE")
        emit(
            "ZWY-DQ-OFFLINE",
            rows.with_columns(
                # The evidence shows the readings just before and after the gap.
                _ev_start=pl.col("start_utc") - timedelta(hours=1),
                _ev_end=pl.col("end_utc") + timedelta(hours=1),
                _ev_pollutant=pl.lit(None, pl.String),
                _ev_sql=pl.format(
                    "select hour_start_utc, count(*) as n from mart_hourly_values "
                    "where local_day = DATE '{}' and mn = '{}' group by 1 order by 1",
                    pl.lit(day.isoformat()),
                    pl.col("mn"),
                ),
                observed=pl.col("hours").cast(pl.Float64),
                threshold=pl.lit(float(n)),
                unit=pl.lit("hours"),
                message=pl.format(
                    "no data at all for {} consecutive hours from {} (more than {} h)",
                    pl.col("hours"),
                    _iso("start_utc"),
                    pl.lit(n),
                ),
                details=pl.struct("hours").struct.json_encode(),
                _p_start=pl.col("start_utc"),
                _p_end=pl.col("end_utc"),
            ),
        )

    if "ZWY-DQ-NO-DATA" in by_id:
        rows = failed("ZWY-DQ-NO-DATA")
        emit(
            "ZWY-DQ-NO-DATA",
            rows.with_columns(
                pollutant=pl.lit(None, pl.String),
                _ev_start=day_start,
                _ev_end=day_end,
                _ev_pollutant=pl.lit(None, pl.String),
                _ev_sql=pl.format(
                    "select pollutant, count(*) filter (where valid) as valid_hours from "
                    "mart_hourly_values where local_day = DATE '{}' and mn = '{}' group by 1",
                    pl.lit(day.isoformat()),
                    pl.col("mn"),
                ),
                observed=pl.col("valid_hours_any").cast(pl.Float64),
                threshold=pl.lit(1.0),
                unit=pl.lit("valid hours"),
                message=pl.format(
                    "registered device {} has no valid hourly value on {} ({} readings)",
                    pl.col("mn"),
                    pl.lit(day.isoformat()),
                    pl.col("n_readings"),
                ),
                details=pl.struct("valid_hours_any", "n_readings").struct.json_encode(),
            ),
        )

    def readings_evidence(by_code: bool) -> dict[str, pl.Expr]:
        # The staged readings of the device (and code) that day, file by file.
        sql = (
            "select source_file, min(line) as first_line, max(line) as last_line, "
            "count(*) as n from stg_readings where local_day = DATE '{}' and mn = '{}'"
        )
        args = [pl.lit(day.isoformat()), pl.col("mn")]
        if by_code:
            sql += " and pollutant = '{}'"
            args.append(pl.col("pollutant"))
        return {
            "_ev_start": pl.coalesce("first_utc", day_start),
            "_ev_end": pl.coalesce(pl.col("last_utc") + timedelta(microseconds=1), day_end),
            "_ev_pollutant": pl.col("pollutant") if by_code else pl.lit(None, pl.String),
            "_ev_sql": pl.format(sql + " group by 1", *args),
            "observed": pl.col("n_readings").cast(pl.Float64),
            "unit": pl.lit("readings"),
        }

    if "ZWY-DQ-UNKNOWN-MN" in by_id:
        rows = failed("ZWY-DQ-UNKNOWN-MN")
        emit(
            "ZWY-DQ-UNKNOWN-MN",
            rows.with_columns(
                pollutant=pl.lit(None, pl.String),
                **readings_evidence(by_code=False),
                message=pl.format(
                    "{} readings from MN {} ({}), which is not in the registry",
                    pl.col("n_readings"),
                    pl.col("mn"),
                    pl.col("stream").fill_null("stream unknown"),
                ),
                details=pl.struct("n_readings", "stream").struct.json_encode(),
            ),
        )

    if "ZWY-DQ-UNKNOWN-CODE" in by_id:
        rows = failed("ZWY-DQ-UNKNOWN-CODE")
        emit(
            "ZWY-DQ-UNKNOWN-CODE",
            rows.with_columns(
                **readings_evidence(by_code=True),
                message=pl.format(
                    "{} readings with code {} ({}), not an HJ 212-2017 Appendix B code",
                    pl.col("n_readings"),
                    pl.col("pollutant"),
                    pl.col("code_status"),
                ),
                details=pl.struct("n_readings", "code_status").struct.json_encode(),
            ),
        )

    if not parts:
        return pl.DataFrame(schema=DQ_ISSUES | SCOPE)
    return pl.concat(parts).sort(
        "control_id", "mn", "pollutant", "period_start_utc", nulls_last=True
    )
