"""Measure one compliance day: the frames (GX batches) the controls judge.

The controls are split in two steps. **Measure** (this module) turns the warehouse's marts
of one local day into five small frames, one row per thing a control judges, with the
numbers it needs: a value and its limit, a capture flag, a run length, a share. **Judge**
(:mod:`expectations.suites`) runs the Great Expectations suites built from the catalog on
these frames; the rows GX reports as unexpected are the findings. No threshold of a
control is applied here: only in the suites.

Batches (every frame has a ``row_id`` that GX reports back):

* ``hourly``: (mn, pollutant, hour) for every hour the device sent anything, with the
  hourly limit of the outlet: limit controls per hour, hour capture, T flags.
* ``daily``: (mn, pollutant, day) with the daily limit, day capture, S share and the
  pinned-under-the-limit counts.
* ``runs``: flatline runs (equal valid hourly values while the outlet flows) and offline
  runs (clock hours without any data from a registered device).
* ``devices``: one row per MN registered or seen: registered or not, valid hours.
* ``codes``: one row per (MN, pollutant code) seen: known code or vendor code.

:func:`read_day` is the I/O edge (DuckDB queries); the builders are pure Polars.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import polars as pl

from warehouse.partitions import batch_filter, in_key_order
from zwy.contracts import DAILY, HOURLY, TZ_LOCAL, UTC_DT, conform

#: Flow parameter of each stream: a flatline counts only while the outlet flows.
FLOW_OF_STREAM: dict[str, str] = {"wastewater": "w00000", "exhaust_gas": "a00000"}
#: Code statuses of :mod:`zwy.hj212.codes` that are real HJ 212 codes.
KNOWN_CODE_STATUSES: tuple[str, ...] = ("hj212_2017", "mapped_2005")
#: ``source_cn`` of an hour → the ``cn`` of its readings in staging.
SOURCE_CN_TO_CN: dict[str, str] = {"export": "2061"}


def _schema(columns: Mapping[str, Any]) -> pl.Schema:
    return pl.Schema(columns)


REGISTERED = _schema(
    {
        "mn": pl.String,
        "outlet_id": pl.String,
        "facility_id": pl.String,
        "stream": pl.String,
        "outlet_type": pl.String,
    }
)

READINGS_SUMMARY = _schema(
    {
        "mn": pl.String,
        "pollutant": pl.String,
        "code_status": pl.String,
        "facility_id": pl.String,
        "outlet_id": pl.String,
        "stream": pl.String,
        "n_readings": pl.Int64,
        "first_utc": UTC_DT,
        "last_utc": UTC_DT,
    }
)

_KEYS = ["mn", "facility_id", "outlet_id", "stream", "pollutant"]
#: The order of :attr:`DayData.hourly` and of the ``hourly`` batch.
HOURLY_ORDER = ["mn", "pollutant", "hour_start_utc"]


@dataclass(frozen=True)
class DayData:
    """What the controls of one day read from the warehouse."""

    day: date
    hourly: pl.DataFrame  # HOURLY rows of the day, in HOURLY_ORDER from read_day
    daily: pl.DataFrame  # DAILY rows of the day and the pinned look-back window
    registered: pl.DataFrame  # REGISTERED: every registry device with its outlet
    outlets: pl.DataFrame  # ref_outlets
    readings: pl.DataFrame  # READINGS_SUMMARY of the day


def day_bounds_utc(day: date) -> tuple[datetime, datetime]:
    """Return the UTC instants where the Asia/Shanghai calendar ``day`` starts and ends."""
    tz = ZoneInfo(TZ_LOCAL)
    start = datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
    return start, end


def read_day(con: duckdb.DuckDBPyConnection, day: date, lookback_days: int = 7) -> DayData:
    """Read the marts, registry and staging summary of ``day`` (Asia/Shanghai).

    Args:
        con: an open warehouse connection (session time zone UTC, ``warehouse.db.connect``).
        day: the compliance day.
        lookback_days: daily values of this many days (``day`` included) are read for the
            pinned-under-the-limit control.

    Returns:
        The frames, typed per the contracts.

    """
    first = day - timedelta(days=max(lookback_days, 1) - 1)
    # In HOURLY_ORDER once: the hourly, runs and flatline batches keep that order, so they
    # need no sort of their own (each was 0.1 s over a district day's 300 k hours).
    hourly = (
        con.execute("select * from mart_hourly_values where local_day = ?", [day])
        .pl()
        .sort(HOURLY_ORDER)
    )
    daily = con.execute(
        "select * from mart_daily_values where local_day between ? and ?", [first, day]
    ).pl()
    registered = con.execute(
        "select mp.mn, mp.outlet_id, o.facility_id, o.stream, o.outlet_type "
        "from ref_monitoring_points mp left join ref_outlets o using (outlet_id)"
    ).pl()
    outlets = con.execute("select * from ref_outlets").pl()
    # Two levels: the ids are grouped on first (a hash of their strings) and their max()
    # taken over the few distinct combinations; max() of strings over every reading took
    # half as long again (0.61 against 0.42 s over a district day's exhaust-gas and wastewater
    # readings, the same rows).
    readings = con.execute(
        f"""
        select mn, pollutant, code_status,
               max(facility_id) as facility_id, max(outlet_id) as outlet_id,
               max(stream) as stream, sum(n)::bigint as n_readings,
               min(first_utc) as first_utc, max(last_utc) as last_utc
        from (
            select mn, pollutant, code_status, facility_id, outlet_id, stream,
                   count(*) as n, min(data_time_utc) as first_utc, max(data_time_utc) as last_utc
            from stg_readings
            where local_day = ? and mn is not null{batch_filter(con, day, day)}
              -- registered construction-dust monitors are judged by the dust controls
              and mn not in (select mn from ref_dust_sites where mn is not null)
            group by all
        )
        group by mn, pollutant, code_status
        """,
        [day],
    ).pl()
    return DayData(
        day=day,
        hourly=conform(hourly, HOURLY),
        daily=conform(daily, DAILY),
        registered=conform(registered, REGISTERED),
        outlets=outlets,
        readings=conform(readings, READINGS_SUMMARY),
    )


def _registered_flag(frame: pl.DataFrame, registered: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(
        registered=pl.col("mn").is_in(registered["mn"].implode()).fill_null(False)
    )


def _with_row_id(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_row_index("row_id").with_columns(pl.col("row_id").cast(pl.Int64))


def _sorted(frame: pl.DataFrame, key: list[str], *, nulls_last: bool = False) -> pl.DataFrame:
    """Return ``frame`` sorted by ``key``: as it is when it already is (checked, a few ms)."""
    if in_key_order(frame, key, nulls_last=nulls_last):
        return frame
    return frame.sort(key, nulls_last=nulls_last)


def _limits_for(limits: pl.DataFrame, period: str) -> pl.DataFrame:
    rows = limits.filter(pl.col("averaging_period") == period).select(
        "outlet_id",
        "pollutant",
        pl.col("control_id").alias("limit_control_id"),
        "limit_id",
        "limit_low",
        "limit_high",
        pl.col("status").alias("limit_status"),
        "value_column",
    )
    dup = rows.filter(pl.struct("outlet_id", "pollutant").is_duplicated())
    if dup.height:
        raise ValueError(f"two {period} limits for the same outlet and pollutant: {dup.rows()}")
    return rows


def _checked(valid: pl.Expr) -> pl.Expr:
    """Return the value a limit control compares: value_zs or value per limit row, valid only."""
    pick = (
        pl.when(pl.col("value_column") == "value_zs")
        .then(pl.col("value_zs"))
        .otherwise(pl.col("value"))
    )
    return pl.when(valid & pl.col("limit_id").is_not_null()).then(pick).alias("checked")


def hourly_batch(data: DayData, limits: pl.DataFrame) -> pl.DataFrame:
    """Build the ``hourly`` batch: one row per (mn, pollutant, hour the device was online).

    An hour where the device sent other parameters but not this one is a row with
    ``present = False`` and ``valid = False`` (it fails Annex D capture as surely as an
    invalid hour). ``capture_valid`` is 1/0 for registered devices and null otherwise
    (the registry says what a device should send; unknown devices are reported once as
    unknown). ``checked`` is the value the hourly limit applies to (null for invalid hours).
    """
    h = _sorted(data.hourly, HOURLY_ORDER)
    online = h.select("mn", "hour_start_utc").unique().sort("mn", "hour_start_utc")
    # Built in HOURLY_ORDER: each (mn, pollutant) in order, then its device's online hours
    # in order; the left joins keep it.
    params = h.select("mn", "pollutant").unique(maintain_order=True)
    grid = params.join(online, on="mn", maintain_order="left_right")
    ids = h.group_by("mn").agg(pl.col("facility_id", "outlet_id", "stream").drop_nulls().first())
    rows = (
        grid.join(
            h.drop("facility_id", "outlet_id", "stream", "local_day"),
            on=HOURLY_ORDER,
            how="left",
            maintain_order="left",
        )
        .join(ids, on="mn", how="left", maintain_order="left")
        .with_columns(
            present=pl.col("n_values").is_not_null(),
            valid=pl.col("valid").fill_null(False),
        )
    )
    rows = _registered_flag(rows, data.registered).with_columns(
        capture_valid=pl.when(pl.col("registered")).then(pl.col("valid").cast(pl.Int64)),
    )
    rows = rows.join(
        _limits_for(limits, "hour"),
        on=["outlet_id", "pollutant"],
        how="left",
        maintain_order="left",
    )
    rows = rows.with_columns(_checked(pl.col("valid")))
    return _with_row_id(
        _sorted(rows, HOURLY_ORDER).select(
            *_KEYS,
            "hour_start_utc",
            "registered",
            "present",
            "valid",
            "capture_valid",
            "value",
            "value_zs",
            "o2_measured",
            "o2_ref",
            "unit",
            "n_values",
            "n_valid",
            "valid_minutes",
            "n_flag_t",
            "n_flag_s",
            "source_cn",
            "limit_control_id",
            "limit_id",
            "limit_low",
            "limit_high",
            "limit_status",
            "value_column",
            "checked",
        )
    )


def daily_batch(
    data: DayData, limits: pl.DataFrame, hourly: pl.DataFrame, pinned: Mapping[str, Any]
) -> pl.DataFrame:
    """Build the ``daily`` batch: one row per (mn, pollutant) of the day.

    Args:
        data: the day's frames.
        limits: effective limits (:func:`expectations.controls.resolve_limits`).
        hourly: the ``hourly`` batch (for the S share and the pinned hours).
        pinned: the ZWY-DQ-PINNED parameters: ``band`` (fraction under the limit) and
            ``lookback_days``.

    Returns:
        Columns of the mart plus ``capture_class`` (gas/water for registered devices),
        ``checked`` (the valid daily value a daily limit applies to), ``s_share``,
        ``pinned_hours`` (valid hours within ``band`` under the hourly limit) and
        ``pinned_days`` (valid daily values of the look-back window within ``band`` under
        the daily limit).

    """
    band = float(pinned["band"])
    d = data.daily
    today = d.filter(pl.col("local_day") == data.day)
    share = hourly.group_by("mn", "pollutant").agg(
        s_share=(pl.col("n_flag_s").sum() / pl.col("n_values").sum()).cast(pl.Float64),
    )
    in_band_h = (pl.col("checked") >= (1 - band) * pl.col("limit_high")) & (
        pl.col("checked") <= pl.col("limit_high")
    )
    pinned_hours = (
        hourly.filter(pl.col("limit_high").is_not_null())
        .group_by("mn", "pollutant")
        .agg(pinned_hours=in_band_h.sum().cast(pl.Int64), hour_limit_id=pl.col("limit_id").first())
    )
    day_limits = _limits_for(limits, "day")
    window = d.join(day_limits, on=["outlet_id", "pollutant"], how="inner").filter(
        pl.col("valid").fill_null(False)
    )
    pinned_days = window.group_by("mn", "pollutant").agg(
        pinned_days=(
            (pl.col("value") >= (1 - band) * pl.col("limit_high"))
            & (pl.col("value") <= pl.col("limit_high"))
        )
        .sum()
        .cast(pl.Int64),
        days_in_window=pl.len().cast(pl.Int64),
    )
    rows = (
        _registered_flag(today, data.registered)
        .join(day_limits, on=["outlet_id", "pollutant"], how="left")
        .with_columns(_checked(pl.col("valid").fill_null(False)))
        .join(share, on=["mn", "pollutant"], how="left")
        .join(pinned_hours, on=["mn", "pollutant"], how="left")
        .join(pinned_days, on=["mn", "pollutant"], how="left")
        .with_columns(
            capture_class=pl.when(pl.col("registered")).then(
                pl.when(pl.col("stream") == "exhaust_gas")
                .then(pl.lit("gas"))
                .when(pl.col("stream") == "wastewater")
                .then(pl.lit("water"))
            ),
            # Only daily limits have a pinned-days count; only hourly limits pinned hours.
            pinned_days=pl.when(pl.col("limit_high").is_not_null()).then(pl.col("pinned_days")),
        )
    )
    return _with_row_id(
        rows.sort("mn", "pollutant").select(
            *_KEYS,
            "local_day",
            "registered",
            "capture_class",
            "value",
            "value_zs",
            "unit",
            "valid",
            "valid_hours",
            "n_flag_t",
            "n_flag_s",
            "s_share",
            "limit_control_id",
            "limit_id",
            "limit_low",
            "limit_high",
            "limit_status",
            "value_column",
            "checked",
            "hour_limit_id",
            "pinned_hours",
            "pinned_days",
            "days_in_window",
        )
    )


def _runs(frame: pl.DataFrame, by: list[str], same: pl.Expr) -> pl.DataFrame:
    """Group consecutive hours of ``frame`` into runs, in ``by`` + start order.

    A row continues the previous row's run when it has the same ``by`` keys (nulls equal),
    starts one hour later and ``same`` holds (an expression comparing with the previous
    row of the sorted frame, e.g. ``pl.col("_v") == pl.col("_v").shift(1)``: across two
    keys it does not matter, the keys already differ). ``frame`` is sorted by ``by`` +
    hour here unless it already is.
    """
    hour = pl.col("hour_start_utc")
    # The previous row of the sorted frame, not of the group (no window over the string
    # keys): with the keys compared, the same runs, numbered over the whole frame.
    same_keys = pl.all_horizontal(pl.col(k).eq_missing(pl.col(k).shift(1)) for k in by)
    cont = (
        same_keys
        & (hour - hour.shift(1) == timedelta(hours=1)).fill_null(False)
        & same.fill_null(False)
    )
    # A run is the rows from one start to the next: its keys, start and value are its
    # first row's, its length the distance to the next start (its hours are consecutive,
    # so it ends that many hours after it starts). No group-by over every run.
    starts = (
        _sorted(frame, [*by, "hour_start_utc"])
        .with_columns(_i=pl.int_range(pl.len()), _start=~cont)
        .filter(pl.col("_start"))
    )
    hours = (pl.col("_i").shift(-1).fill_null(frame.height) - pl.col("_i")).cast(pl.Int64)
    return starts.select(
        *by,
        start_utc=hour,
        end_utc=hour + pl.duration(hours=hours),
        hours=hours,
        value=pl.col("_v") if "_v" in frame.columns else pl.lit(None, pl.Float64),
    )


def runs_batch(data: DayData, flatline: Mapping[str, Any]) -> pl.DataFrame:
    """Build the ``runs`` batch: flatline runs and offline runs of the day.

    Args:
        data: the day's frames.
        flatline: the ZWY-DQ-FLATLINE parameters: ``decimals`` (values equal after
            rounding) and ``require_flow`` (only hours where the outlet's flow parameter
            is above zero count).

    Returns:
        ``run_kind`` (flatline | offline), keys, ``start_utc``, ``end_utc``, ``hours``,
        ``value`` (the flat value).

    """
    decimals = int(flatline["decimals"])
    h = data.hourly
    flow = h.filter(
        pl.col("pollutant") == pl.col("stream").replace_strict(FLOW_OF_STREAM, default=None)
    ).select("mn", "hour_start_utc", pl.col("value").alias("_flow"))
    # In the hourly's order (read_day's), which the flatline runs need.
    eligible = h.join(flow, on=["mn", "hour_start_utc"], how="left", maintain_order="left").filter(
        pl.col("valid").fill_null(False) & pl.col("value").is_not_null()
    )
    if flatline.get("require_flow", True):
        eligible = eligible.filter((pl.col("_flow") > 0).fill_null(False))
    eligible = eligible.with_columns(_v=pl.col("value").round(decimals))
    by = ["mn", "pollutant"]
    flat = _runs(eligible, by, pl.col("_v") == pl.col("_v").shift(1)).with_columns(
        run_kind=pl.lit("flatline")
    )
    ids = h.group_by("mn").agg(pl.col("facility_id", "outlet_id", "stream").drop_nulls().first())
    flat = flat.join(ids, on="mn", how="left", maintain_order="left")

    start, _ = day_bounds_utc(data.day)
    hours = pl.DataFrame(
        {"hour_start_utc": [start + timedelta(hours=i) for i in range(24)]},
        schema={"hour_start_utc": UTC_DT},
    )
    seen = h.select("mn", "hour_start_utc").unique().with_columns(_seen=pl.lit(True))
    grid = (
        data.registered.select("mn", "facility_id", "outlet_id", "stream")
        .join(hours, how="cross")
        .join(seen, on=["mn", "hour_start_utc"], how="left")
        .filter(pl.col("_seen").is_null())
    )
    off = _runs(grid, ["mn", "facility_id", "outlet_id", "stream"], pl.lit(True)).with_columns(
        run_kind=pl.lit("offline"), pollutant=pl.lit(None, pl.String)
    )
    cols = ["run_kind", *_KEYS, "start_utc", "end_utc", "hours", "value"]
    # Flatline runs come in (mn, pollutant, start) order and before the offline runs, which
    # come in (mn, start) order: usually already sorted.
    both = _sorted(
        pl.concat([flat.select(cols), off.select(cols)], how="vertical_relaxed"),
        ["run_kind", "mn", "pollutant", "start_utc"],
        nulls_last=True,
    )
    return _with_row_id(_registered_flag(both, data.registered))


def devices_batch(data: DayData) -> pl.DataFrame:
    """Build the ``devices`` batch: one row per MN registered or seen in staging that day.

    ``registered_i`` is 1/0; ``valid_hours_any`` (hours with at least one valid hourly
    value) is null for unregistered devices, which only the unknown-MN control judges.
    """
    r = data.readings
    seen = r.group_by("mn").agg(
        pl.col("facility_id", "outlet_id", "stream").drop_nulls().first(),
        n_readings=pl.col("n_readings").sum(),
        first_utc=pl.col("first_utc").min(),
        last_utc=pl.col("last_utc").max(),
    )
    reg = data.registered.select("mn", "facility_id", "outlet_id", "stream")
    valid_hours = (
        data.hourly.filter(pl.col("valid").fill_null(False))
        .group_by("mn")
        .agg(valid_hours_any=pl.col("hour_start_utc").n_unique().cast(pl.Int64))
    )
    both = (
        reg.join(seen, on="mn", how="full", coalesce=True, suffix="_seen")
        .with_columns(
            pl.coalesce("facility_id", "facility_id_seen").alias("facility_id"),
            pl.coalesce("outlet_id", "outlet_id_seen").alias("outlet_id"),
            pl.coalesce("stream", "stream_seen").alias("stream"),
        )
        .join(valid_hours, on="mn", how="left")
    )
    both = _registered_flag(both, data.registered).with_columns(
        registered_i=pl.col("registered").cast(pl.Int64),
        valid_hours_any=pl.when(pl.col("registered")).then(pl.col("valid_hours_any").fill_null(0)),
        n_readings=pl.col("n_readings").fill_null(0),
    )
    return _with_row_id(
        both.sort("mn").select(
            "mn",
            "facility_id",
            "outlet_id",
            "stream",
            "registered",
            "registered_i",
            "valid_hours_any",
            "n_readings",
            "first_utc",
            "last_utc",
        )
    )


def codes_batch(data: DayData) -> pl.DataFrame:
    """Build the ``codes`` batch: one row per (MN, pollutant code) seen in staging that day.

    ``code_known`` is 1 for HJ 212-2017 codes and mapped 2005 codes, 0 for vendor codes.
    """
    r = data.readings.group_by("mn", "pollutant", "code_status").agg(
        pl.col("facility_id", "outlet_id", "stream").drop_nulls().first(),
        n_readings=pl.col("n_readings").sum(),
        first_utc=pl.col("first_utc").min(),
        last_utc=pl.col("last_utc").max(),
    )
    r = _registered_flag(r, data.registered).with_columns(
        code_known=pl.col("code_status").is_in(list(KNOWN_CODE_STATUSES)).cast(pl.Int64)
    )
    return _with_row_id(
        r.sort("mn", "pollutant").select(
            *_KEYS, "code_status", "registered", "code_known", "n_readings", "first_utc", "last_utc"
        )
    )


def build_batches(
    data: DayData, limits: pl.DataFrame, params: Mapping[str, Mapping[str, Any]]
) -> dict[str, pl.DataFrame]:
    """Build every batch of the day.

    Args:
        data: the day's frames (:func:`read_day`).
        limits: effective limits of the day (:func:`expectations.controls.resolve_limits`).
        params: control id → parameters, for ZWY-DQ-PINNED and ZWY-DQ-FLATLINE.

    Returns:
        Batch name → frame, in :data:`expectations.controls.BATCHES` order.

    """
    hourly = hourly_batch(data, limits)
    return {
        "daily": daily_batch(data, limits, hourly, params["ZWY-DQ-PINNED"]),
        "hourly": hourly,
        "runs": runs_batch(data, params["ZWY-DQ-FLATLINE"]),
        "devices": devices_batch(data),
        "codes": codes_batch(data),
    }
