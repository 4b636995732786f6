"""Staging readings → hourly values per device and pollutant (HJ 212-2017 Annex D).

The computation runs in four steps, each a plain frame:

1. **Deduplicate** on ``(mn, cn, data_time_utc, pollutant, field)``, keeping the earliest
   delivery ``(batch_day, source_file, line)``: a packet re-sent in a later day's file must
   not count twice, and the rebuild of a day gives the same result whatever batch is loaded
   last.
2. **Samples and precedence.** One sample per ``(mn, cn, data_time_utc, pollutant)``: the
   ``Rtd`` of real-time data (cn 2011) or the ``Avg``/``Cou`` of minute (2051) and hourly
   (2061) data. Per ``(mn, pollutant, hour)`` only one source is used: 2051 if any 2051 value
   of that pollutant exists in the hour, else 2011, else the device's own 2061 value. The
   test is presence, not validity: when the device's minute data say "fault", we do not
   second-guess it with real-time data. Platform exports arrive as cn 2061 and are recorded
   with ``source_cn = "export"`` (monitoring point ``delivery = platform_export``).
3. **Periods**: gas minutes (2011), water periods of ``min_interval_min`` minutes (2011),
   one period per 2051 row, one 60-minute period per 2061 row. Each period has a mean, a
   flow volume for water, counts, and two capture tests: ``valid`` (N data only) and
   ``usable`` (N or T data, see :mod:`transforms.validity`).
4. **Hours** from usable periods; then O2 correction for stacks (:mod:`transforms.o2`).

Readings whose stream is neither ``wastewater`` nor ``exhaust_gas`` (an unknown device with
no usable ST) stay in staging and are not aggregated. A device's real-time and minute
intervals come from the registry; when the registry has none (unknown MN), they are
inferred as the median gap between its consecutive timestamps, else default to the 5 s and
10 min of Annex D.
"""

from __future__ import annotations

from functools import partial

import polars as pl

from transforms import conform_lazy, periods
from transforms.o2 import correct_o2, reference_o2_of_outlets
from transforms.readings import registry_of_points
from transforms.units import L_PER_M3, WATER_ARITHMETIC, WATER_FLOW
from transforms.validity import (
    FLAG_OVER_RANGE,
    FLAG_SET_MANUALLY,
    gas_minute_min_values,
    is_flag,
    is_usable,
    is_valid,
    water_period_min_slices,
)
from zwy.contracts import CODE, HOURLY, TZ_LOCAL
from zwy.settings import ValiditySettings

GAS = "exhaust_gas"
WATER = "wastewater"

#: Source precedence per (mn, pollutant, hour): lower wins.
CN_PRIORITY: dict[str, int] = {"2051": 0, "2011": 1, "2061": 2}

#: A reading is one delivery of this key; later deliveries of the same key are duplicates.
DEDUP_KEY: tuple[str, ...] = ("mn", "cn", "data_time_utc", "pollutant", "field")
#: Order of deliveries: the first one wins.
DELIVERY_ORDER: tuple[str, ...] = ("batch_day", "source_file", "line")

#: Fallbacks when neither the registry nor the data give a device's intervals (Annex D).
DEFAULT_RTD_INTERVAL_S = 5
DEFAULT_MIN_INTERVAL_MIN = 10

_SAMPLE_KEY = ["mn", "cn", "data_time_utc", "pollutant"]
#: Columns of few distinct values, grouped and compared as dictionary codes while the
#: hours are computed (Categorical): integer keys instead of strings.
_CODED = ("mn", "cn", "pollutant", "flag", "unit", "stream")
_HOUR_KEY = ["mn", "pollutant", "hour_start_utc"]


def _combined_hash(columns: tuple[str, ...], schema: pl.Schema) -> pl.Expr:
    """Return a 64-bit hash of the row's ``columns`` (each hashed with its own seed, xor-ed).

    Dictionary-coded columns are hashed by their codes, which stand for the same text
    throughout the process (Polars' global categories): a third cheaper than the text.
    """
    expr: pl.Expr | None = None
    for seed, column in enumerate(columns, start=1):
        col = pl.col(column)
        if isinstance(schema[column], pl.Categorical):
            col = col.to_physical()
        expr = col.hash(seed=seed) if expr is None else expr ^ col.hash(seed=seed)
    assert expr is not None  # at least one column
    return expr


def dedupe_readings(readings: pl.LazyFrame) -> pl.LazyFrame:
    """Keep the earliest delivery of each ``(mn, cn, data_time_utc, pollutant, field)``.

    Args:
        readings: READINGS rows of any number of batches.

    Returns:
        The same columns, one row per key: the row with the smallest
        ``(batch_day, source_file, line)``; rows in no particular order.

    """
    # Only rows whose key hash repeats can be duplicates (a hash collision only sends a
    # unique row the slow way), and a batch has few: the parser already quarantines
    # re-sent frames. Those rows get the stable sort by delivery and keep the first row
    # of each key; sorting every row instead cost 15.6 s of a district day's 17.6 M
    # readings, this 4.2 s. Row order changes (unique rows first): the marts sort anyway.
    key = pl.struct(list(DEDUP_KEY))
    # One hash per key column, combined; a repeated key repeats its hash. Finding the
    # repeated hashes by sorting them (integers) is cheaper than a hash table over the
    # rows (is_duplicated): 9 vs 26 ms per 340 k readings.
    hashed = pl.col("_zwy_h")
    ordered = hashed.sort()
    repeated_hashes = ordered.filter(ordered == ordered.shift(1)).implode()
    schema = readings.collect_schema()
    flagged = readings.with_columns(_zwy_h=_combined_hash(DEDUP_KEY, schema)).with_columns(
        hashed.is_in(repeated_hashes).alias("_zwy_dup")
    )
    repeated = (
        flagged.filter(pl.col("_zwy_dup"))
        .sort(list(DELIVERY_ORDER), nulls_last=True, maintain_order=True)
        .filter(key.is_first_distinct())
    )
    return pl.concat([flagged.filter(~pl.col("_zwy_dup")), repeated]).drop("_zwy_dup", "_zwy_h")


def _samples(readings: pl.LazyFrame) -> pl.LazyFrame:
    """One sample per (mn, cn, data_time_utc, pollutant): value/flag plus Cou/flag."""
    real_time = readings.filter((pl.col("cn") == "2011") & (pl.col("field") == "Rtd")).select(
        *_SAMPLE_KEY,
        "value",
        "flag",
        pl.lit(None, pl.Float64).alias("cou"),
        pl.lit(None, pl.String).alias("cou_flag"),
        "unit",
    )
    is_avg = pl.col("field") == "Avg"
    is_cou = pl.col("field") == "Cou"
    # After deduplication a key has at most one Avg and one Cou, so max() (a fast
    # aggregation that skips nulls) picks it.
    periods = (
        readings.filter(pl.col("cn").is_in(["2051", "2061"]) & (is_avg | is_cou))
        .with_columns(
            _avg=pl.when(is_avg).then(pl.col("value")),
            _avg_flag=pl.when(is_avg).then(pl.col("flag")),
            _cou=pl.when(is_cou).then(pl.col("value")),
            _cou_flag=pl.when(is_cou).then(pl.col("flag")),
        )
        .group_by(_SAMPLE_KEY)
        .agg(
            value=pl.col("_avg").max(),
            flag=pl.col("_avg_flag").max(),
            cou=pl.col("_cou").max(),
            cou_flag=pl.col("_cou_flag").max(),
            unit=pl.col("unit").max(),
        )
    )
    return pl.concat([real_time, periods], how="vertical_relaxed")


def _devices(readings: pl.LazyFrame, points: pl.DataFrame, outlets: pl.DataFrame) -> pl.LazyFrame:
    """One row per MN: registry attributes, stream, and effective intervals."""
    # max() of a string is a fast aggregation that skips nulls; one value per MN is expected.
    seen = readings.group_by("mn").agg(
        _stream=pl.col("stream").max().cast(pl.String),
        _facility=pl.col("facility_id").max(),
        _outlet=pl.col("outlet_id").max(),
    )
    known = seen.join(
        registry_of_points(points, outlets).with_columns(pl.col("mn").cast(CODE)),
        on="mn",
        how="left",
    )
    rtd = pl.when(pl.col("rtd_interval_s") > 0).then(pl.col("rtd_interval_s"))
    period = pl.when(pl.col("min_interval_min") > 0).then(pl.col("min_interval_min"))
    # Inferring intervals means sorting every timestamp: do it only for the devices
    # whose intervals the registry lacks (usually none).
    # The registry is small and eager: filtering on its complete MNs avoids a join.
    complete = points.filter((pl.col("rtd_interval_s") > 0) & (pl.col("min_interval_min") > 0))
    gaps = (
        readings.filter(~pl.col("mn").is_in(complete["mn"].unique().to_list()))
        .select("mn", "cn", "data_time_utc")
        .unique()
        .sort(["mn", "cn", "data_time_utc"])
        .with_columns(_gap_s=pl.col("data_time_utc").diff().over(["mn", "cn"]).dt.total_seconds())
        .filter(pl.col("_gap_s") > 0)
        .group_by("mn")
        .agg(
            _rtd_inferred=pl.col("_gap_s").filter(pl.col("cn") == "2011").median(),
            _min_inferred=(pl.col("_gap_s").filter(pl.col("cn") == "2051").median() / 60),
        )
    )
    return (
        known.join(gaps, on="mn", how="left")
        .select(
            "mn",
            # The registry wins; the readings carry the same ids unless it changed since.
            pl.coalesce("facility_id", "_facility").alias("facility_id"),
            pl.coalesce("outlet_id", "_outlet").alias("outlet_id"),
            pl.coalesce("registry_stream", "_stream").alias("stream"),
            "delivery",
            pl.coalesce(
                rtd,
                pl.col("_rtd_inferred").round(0).cast(pl.Int64).clip(1, 3600),
                pl.lit(DEFAULT_RTD_INTERVAL_S),
            )
            .cast(pl.Int64)
            .alias("rtd_s"),
            pl.coalesce(
                period,
                pl.col("_min_inferred").round(0).cast(pl.Int64).clip(1, 60),
                pl.lit(DEFAULT_MIN_INTERVAL_MIN),
            )
            .cast(pl.Int64)
            .alias("period_min"),
        )
        .with_columns(pl.col("stream", "delivery").cast(CODE))
    )


def _flow_volumes(samples: pl.LazyFrame) -> pl.LazyFrame:
    """Water flow volume in m3 per (mn, cn, data_time_utc) from usable w00000 samples.

    2011: ``Rtd (L/s) × rtd interval (s) × 1e-3`` (Annex D.1 slice discharge);
    2051/2061: the period's ``Cou`` (m3), else ``Avg × period length × 1e-3``.
    """
    slice_m3 = pl.col("value") * pl.col("rtd_s") / L_PER_M3
    period_m3 = pl.col("value") * pl.col("_period_s") / L_PER_M3
    usable_value = is_usable(pl.col("flag"), pl.col("value"))
    usable_cou = is_usable(pl.col("cou_flag"), pl.col("cou"))
    return samples.filter((pl.col("stream") == WATER) & (pl.col("pollutant") == WATER_FLOW)).select(
        "mn",
        "cn",
        "data_time_utc",
        pl.when(pl.col("cn") == "2011")
        .then(pl.when(usable_value).then(slice_m3))
        .otherwise(
            pl.coalesce(
                pl.when(usable_cou).then(pl.col("cou")),
                pl.when(usable_value).then(period_m3),
            )
        )
        .alias("weight_m3"),
    )


def _kind() -> pl.Expr:
    """Which formula a (stream, pollutant) follows: gas, flow, arith (pH, temp), weighted."""
    return (
        pl.when(pl.col("stream") == GAS)
        .then(pl.lit("gas"))
        .when(pl.col("pollutant") == WATER_FLOW)
        .then(pl.lit("flow"))
        .when(pl.col("pollutant").is_in(list(WATER_ARITHMETIC)))
        .then(pl.lit("arith"))
        .otherwise(pl.lit("weighted"))
    )


def _period_rows(samples: pl.LazyFrame, validity: ValiditySettings) -> pl.LazyFrame:
    """Each sample with its capture period's start, length and threshold, and its masks.

    The masked columns (``_vu``, ``_w``, ``_cw``, ``_cou``: null where the sample does
    not count) let the aggregation use plain sum/mean/count (Polars' fast path; filters
    inside agg are several times slower) and give the compiled pass the same inputs.
    """
    gas_rt = (pl.col("cn") == "2011") & (pl.col("stream") == GAS)
    water_rt = (pl.col("cn") == "2011") & (pl.col("stream") == WATER)
    hour = pl.col("hour_start_utc")
    t = pl.col("data_time_utc")
    water_bucket = hour + pl.duration(
        minutes=(t.dt.minute().cast(pl.Int64) // pl.col("period_min")) * pl.col("period_min")
    )
    usable = is_usable(pl.col("flag"), pl.col("value"))
    weighted = usable & pl.col("weight_m3").is_not_null()
    usable_cou = is_usable(pl.col("cou_flag"), pl.col("cou"))
    return samples.with_columns(
        period_start=pl.when(gas_rt)
        .then(t.dt.truncate("1m"))
        .when(water_rt)
        .then(water_bucket)
        .when(pl.col("cn") == "2051")
        .then(t)
        .otherwise(hour),
        p_min=pl.when(gas_rt)
        .then(pl.lit(1, pl.Int64))
        .when(pl.col("cn") == "2061")
        .then(pl.lit(60, pl.Int64))
        .otherwise(pl.col("period_min")),
        threshold=pl.when(gas_rt)
        .then(gas_minute_min_values(pl.col("rtd_s"), validity.gas_minute_min_values))
        .when(water_rt)
        .then(water_period_min_slices(pl.col("rtd_s"), pl.col("period_min")))
        .otherwise(pl.lit(1, pl.Int64)),
        _valid=is_valid(pl.col("flag"), pl.col("value")),
        _usable=usable,
        _t=is_flag(pl.col("flag"), FLAG_OVER_RANGE),
        _s=is_flag(pl.col("flag"), FLAG_SET_MANUALLY),
        _vu=pl.when(usable).then(pl.col("value")),
        _w=pl.when(weighted).then(pl.col("weight_m3")),
        _cw=pl.when(weighted).then(pl.col("value") * pl.col("weight_m3")),
        _cou=pl.when(usable_cou).then(pl.col("cou")),
    )


def _group_periods(rows: pl.LazyFrame) -> pl.LazyFrame:
    """Aggregate :func:`_period_rows` into one row per capture period (the reference)."""
    return (
        # Sorting first makes every group's float sums run in one canonical order, so a
        # rebuild gives bit-identical results whatever order the readings arrived in
        # (with the in-memory engine, which aggregates each group in row order). Within a
        # group data_time_utc is unique (one sample per timestamp, one cn per hour), so
        # it alone fixes that order: an integer sort, not one over the string keys.
        rows.sort("data_time_utc")
        .group_by(list(periods.KEY))
        .agg(
            pl.col(*periods.FIRSTS).first(),
            pl.col("unit").max(),
            n_values=pl.len().cast(pl.Int64),
            n_valid=pl.col("_valid").sum().cast(pl.Int64),
            n_usable=pl.col("_usable").sum().cast(pl.Int64),
            n_flag_t=pl.col("_t").sum().cast(pl.Int64),
            n_flag_s=pl.col("_s").sum().cast(pl.Int64),
            mean_u=pl.col("_vu").mean(),
            sum_w=pl.col("_w").sum(),
            sum_cw=pl.col("_cw").sum(),
            n_w=pl.col("_w").count(),
            load_sent=pl.col("_cou").sum(),
            n_load_sent=pl.col("_cou").count(),
        )
    )


def _periods(
    samples: pl.LazyFrame, validity: ValiditySettings, *, compiled: bool | None = None
) -> pl.LazyFrame:
    """Aggregate samples into capture periods (gas minute, water period, 2051 row, 2061 hour).

    ``compiled``: group with the compiled pass (:mod:`transforms.periods`), which gives the
    reference's (:func:`_group_periods`) result to the bit; None: when numba is installed.
    """
    rows = _period_rows(samples, validity)
    use_compiled = periods.AVAILABLE if compiled is None else compiled
    grouped = (
        # One call with every sample (the in-memory engine hands the UDF the whole frame);
        # no optimisation passes through it, so it gets every column it reads.
        rows.map_batches(
            partial(periods.group_periods, reference=_group_periods),
            schema=_group_periods(rows).collect_schema(),
        )
        if use_compiled
        else _group_periods(rows)
    )
    return grouped.with_columns(kind=_kind()).with_columns(
        # Within a water period, a pollutant is weighted by the flow of each slice;
        # with no flow at all (or zero flow) it falls back to the arithmetic mean.
        value=pl.when((pl.col("kind") == "weighted") & (pl.col("n_w") > 0) & (pl.col("sum_w") > 0))
        .then(pl.col("sum_cw") / pl.col("sum_w"))
        .otherwise(pl.col("mean_u")),
        weight_m3=pl.when(pl.col("n_w") > 0).then(pl.col("sum_w")),
        has_load_sent=pl.col("n_load_sent") > 0,
        p_valid=pl.col("n_valid") >= pl.col("threshold"),
        p_usable=pl.col("n_usable") >= pl.col("threshold"),
    )


def _hours(periods: pl.LazyFrame, validity: ValiditySettings) -> pl.LazyFrame:
    """Aggregate capture periods into hours (value, discharge, counts, validity)."""
    up = pl.col("p_usable") & pl.col("value").is_not_null()
    wp = up & pl.col("weight_m3").is_not_null()
    with_flow = pl.col("weight_m3").is_not_null() | pl.col("has_load_sent")
    staged = periods.with_columns(
        _vmin=pl.when(pl.col("p_valid")).then(pl.col("p_min")),
        _vflow=pl.col("p_valid") & with_flow,
        _vup=pl.when(up).then(pl.col("value")),
        _w=pl.when(wp).then(pl.col("weight_m3")),
        _cw=pl.when(wp).then(pl.col("value") * pl.col("weight_m3")),
        _cov=pl.when(wp).then(pl.col("p_min") * 60),
        _ls=pl.when(up & pl.col("has_load_sent")).then(pl.col("load_sent")),
    )
    hours = (
        # period_start is unique within an hour's group: it alone fixes the sums' order.
        staged.sort("period_start")
        .group_by(_HOUR_KEY)
        .agg(
            pl.col("cn", "stream", "kind", "delivery").first(),
            pl.col("unit").max(),
            pl.col("n_values", "n_valid", "n_flag_t", "n_flag_s").sum(),
            valid_minutes=pl.col("_vmin").sum().clip(upper_bound=60),
            n_valid_periods=pl.col("p_valid").sum(),
            n_valid_periods_flow=pl.col("_vflow").sum(),
            mean_up=pl.col("_vup").mean(),
            n_wp=pl.col("_w").count(),
            sum_wp=pl.col("_w").sum(),
            sum_cwp=pl.col("_cw").sum(),
            covered_s=pl.col("_cov").sum(),
            load_sent=pl.col("_ls").sum(),
            n_load_sent=pl.col("_ls").count(),
        )
    )
    kind = pl.col("kind")
    from_2061 = pl.col("cn") == "2061"
    any_wp = pl.col("n_wp") > 0
    value = (
        pl.when(kind == "flow")
        # Mean flow over the covered part of the hour: D_h / 3600 s when the hour is
        # complete (Annex D.1), not diluted by missing periods. 2061 values are taken as-is.
        .then(
            pl.when(~from_2061 & any_wp & (pl.col("covered_s") > 0))
            .then(pl.col("sum_wp") / pl.col("covered_s") * L_PER_M3)
            .otherwise(pl.col("mean_up"))
        )
        .when((kind == "weighted") & any_wp & (pl.col("sum_wp") > 0))
        .then(pl.col("sum_cwp") / pl.col("sum_wp"))
        .otherwise(pl.col("mean_up"))
    )
    discharge = (
        pl.when((kind == "flow") & any_wp)
        .then(pl.col("sum_wp"))
        .when((kind == "weighted") & from_2061 & (pl.col("n_load_sent") > 0))
        .then(pl.col("load_sent"))
        .when((kind == "weighted") & any_wp)
        # G = C (mg/L = g/m3) × D (m3) × 1e-3 → kg (Annex D.1)
        .then(pl.col("sum_cwp") / L_PER_M3)
    )
    valid = (
        pl.when(kind == "gas")
        .then(pl.col("valid_minutes") >= validity.gas_hour_min_minutes)
        .when(kind == "weighted")
        .then(pl.col("n_valid_periods_flow") >= validity.water_hour_min_periods)
        .otherwise(pl.col("n_valid_periods") >= validity.water_hour_min_periods)
    )
    return hours.with_columns(
        value=value,
        discharge=discharge,
        valid=valid,
        source_cn=pl.when(pl.col("delivery") == "platform_export")
        .then(pl.lit("export"))
        .otherwise(pl.col("cn")),
        local_day=pl.col("hour_start_utc").dt.convert_time_zone(TZ_LOCAL).dt.date(),
    )


def aggregated_devices(
    readings: pl.DataFrame, points: pl.DataFrame, outlets: pl.DataFrame
) -> pl.DataFrame:
    """Return the readings of the devices that can get hours: all of them but those it drops.

    A device gets hours when its stream (:func:`_devices`: the registry's, else the
    largest of its readings' streams) is gas or water. A device none of whose readings is
    of either, and that the registry does not list as either (a dust monitor), gets none;
    every step keys on ``mn``, so its readings change nothing of another device's hours.
    They were deduplicated and grouped for nothing (a twentieth of a district day's
    readings, 0.33 CPU-s for a range of half a million). Returns ``readings`` itself when
    every reading is of gas or water (one check of the dictionary-coded column).
    :func:`aggregate_hourly` of the result equals that of ``readings`` (the marts'
    rebuild, :func:`transforms.daily.build_marts`, calls this first).
    """
    aggregated = [GAS, WATER]
    stream = readings.get_column("stream")
    if stream.is_in(aggregated).all():  # (all() passes over null streams)
        return readings
    mn_type = readings.schema["mn"]
    listed = (
        registry_of_points(points, outlets)
        .filter(pl.col("registry_stream").is_in(aggregated))
        .select(pl.col("mn").cast(pl.String))
        .collect()
        .get_column("mn")
    )
    seen = readings.filter(stream.is_in(aggregated)).get_column("mn").unique().cast(pl.String)
    wanted = pl.concat([seen, listed]).unique().cast(mn_type)
    return readings.filter(pl.col("mn").is_in(wanted.implode()))


def aggregate_hourly(
    readings: pl.LazyFrame | pl.DataFrame,
    points: pl.DataFrame,
    outlets: pl.DataFrame,
    o2_ref: pl.DataFrame,
    validity: ValiditySettings,
) -> pl.LazyFrame:
    """Compute hourly values per (mn, pollutant, UTC hour) following HJ 212-2017 Annex D.

    **Gas** (``exhaust_gas``, Annex D.2). From real-time 2011 ``Rtd``: clock minutes; a
    minute is valid with at least ``min(gas_minute_min_values, ceil(60 / rtd_interval_s))``
    valid values (12 assumes 5 s sampling; a device uploading every 30-60 s cannot send 12,
    so full coverage at its interval is required); the hour is valid with at least
    ``gas_hour_min_minutes`` valid minutes; value = mean of the minute means. From 2051
    ``Avg``: each valid period covers ``min_interval_min`` minutes, ``valid_minutes`` is
    their sum, value = mean of the period Avgs. From 2061: the Avg and its flag.
    Stack pollutants (a2xxxx, a3xxxx) get ``value_zs`` by formula 28 (:mod:`transforms.o2`).
    Gas ``discharge`` (emission rate, formulas 29-34) is not computed: null.

    **Water** (``wastewater``, Annex D.1). Flow w00000: ``discharge`` = hour volume in m3
    (sum of period Cou from 2051, of ``Rtd × interval × 1e-3`` from 2011, the Cou from
    2061); value = mean flow in L/s over the covered part of the hour (= D_h / 3600 s × 1e3
    for a complete hour). Pollutants: flow-weighted mean ``Σ C_i D_i / Σ D_i`` over usable
    periods that have a flow volume D_i from the same source and timestamp; ``discharge`` =
    load in kg ``Σ C_i D_i × 1e-3`` (2061: the device's Cou if sent). When no period of the
    hour has a flow (or the flow is zero) the value falls back to the arithmetic mean and
    the load is null (zero for zero flow); periods without flow carry no weight. pH
    (w01001) and temperature (w01010): arithmetic mean, no load. The hour is valid with at
    least ``water_hour_min_periods`` valid periods, "with flow" for flow-weighted
    pollutants. From 2011, periods are ``min_interval_min`` clock buckets, valid with full
    coverage at the real-time interval (capped at 5 s slices).

    **Flags** (:mod:`transforms.validity`): capture counts N only; T values enter means as
    lower bounds and are counted in ``n_flag_t``; S values are excluded and counted in
    ``n_flag_s``; the other flags are excluded. ``value`` is computed from usable (N/T)
    periods even when the hour fails capture (``valid = False``); it is null when no period
    is usable.

    Args:
        readings: READINGS rows of whole local days (duplicates across batches allowed).
        points: MONITORING_POINTS registry (intervals, delivery).
        outlets: OUTLETS registry (stream, standard, applies_to).
        o2_ref: reference-O2 catalog (``standard, applies_to, reference_o2_pct``).
        validity: capture thresholds.

    Returns:
        A lazy frame with exactly the ``HOURLY`` columns, one row per
        ``(mn, pollutant, hour_start_utc)``.

    """
    # cache(): each of these frames feeds two branches of the plan; compute it once.
    # Filtering first and deduplicating after is the same: the filter tests only columns
    # of the dedup key, so it keeps or drops every delivery of a key alike.
    relevant = (
        dedupe_readings(
            readings.lazy().filter(
                pl.col("cn").is_in(list(CN_PRIORITY))
                & pl.col("field").is_in(["Rtd", "Avg", "Cou"])
                & pl.col("mn").is_not_null()
                & pl.col("data_time_utc").is_not_null()
            )
        )
        .select(
            *_SAMPLE_KEY, "field", "value", "flag", "unit", "stream", "facility_id", "outlet_id"
        )
        .with_columns(pl.col(*_CODED).cast(CODE))
        .cache()
    )
    devices = _devices(relevant, points, outlets).cache()
    cou_only_flow = (
        (pl.col("pollutant") == WATER_FLOW)
        & (pl.col("stream") == WATER)
        & pl.col("value").is_null()
        & (pl.col("cn") != "2011")
    )
    samples = (
        _samples(relevant)
        .join(
            devices.select("mn", "stream", "delivery", "rtd_s", "period_min"), on="mn", how="left"
        )
        .filter(pl.col("stream").is_in([GAS, WATER]))
        .with_columns(
            hour_start_utc=pl.col("data_time_utc").dt.truncate("1h"),
            _period_s=pl.when(pl.col("cn") == "2061")
            .then(pl.lit(3600, pl.Int64))
            .otherwise(pl.col("period_min") * 60),
        )
        .with_columns(
            # A flow reported only as Cou still has a mean: volume over period length.
            value=pl.when(cou_only_flow)
            .then(pl.col("cou") / pl.col("_period_s") * L_PER_M3)
            .otherwise(pl.col("value")),
            flag=pl.when(cou_only_flow).then(pl.col("cou_flag")).otherwise(pl.col("flag")),
        )
        .cache()
    )
    flows = _flow_volumes(samples)
    priority = pl.col("cn").replace_strict(CN_PRIORITY, return_dtype=pl.Int64)
    chosen = (
        samples.filter(priority == priority.min().over(_HOUR_KEY))
        .join(flows, on=["mn", "cn", "data_time_utc"], how="left")
        .with_columns(weight_m3=pl.when(pl.col("stream") == WATER).then(pl.col("weight_m3")))
    )
    hours = (
        _hours(_periods(chosen, validity), validity)
        .join(devices.select("mn", "facility_id", "outlet_id"), on="mn", how="left")
        .with_columns(pl.col(pl.Categorical).cast(pl.String))
        .cache()
    )
    corrected = correct_o2(hours, reference_o2_of_outlets(outlets, o2_ref))
    return conform_lazy(corrected, HOURLY)
