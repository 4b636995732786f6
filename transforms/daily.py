"""Hourly values → daily values per device and pollutant (HJ 212-2017 Annex D).

The day is the Asia/Shanghai calendar day (``local_day``), the compliance day.
"""

from __future__ import annotations

import polars as pl

from transforms import conform_lazy
from transforms.hourly import aggregate_hourly, aggregated_devices
from transforms.units import L_PER_M3, WATER_ARITHMETIC, WATER_FLOW
from zwy.contracts import DAILY
from zwy.settings import ValiditySettings

GAS = "exhaust_gas"
WATER = "wastewater"


def aggregate_daily(
    hourly: pl.LazyFrame | pl.DataFrame, validity: ValiditySettings
) -> pl.LazyFrame:
    """Compute daily values from valid hours.

    * Gas: value = mean of the valid hourly values (formula 25), ``value_zs`` = mean of the
      valid hours' ``value_zs``; valid with at least ``gas_day_min_hours`` valid hours.
    * Water flow w00000: ``discharge`` = sum of the valid hours' volumes (m3); value = mean
      of the valid hours' mean flows (L/s), which equals D_d / 86400 s for a complete day.
    * Water pollutants: flow-weighted ``Σ load / Σ flow × 1e3`` over valid hours that have
      both a load and the device's flow volume for that hour; falls back to the arithmetic
      mean of the valid hours when no hour has both (or the flow is zero). ``discharge`` =
      sum of the valid hours' loads (kg).
    * pH and water temperature: arithmetic mean of valid hours, no discharge.
    * Water days are valid with at least ``water_day_min_hours`` valid hours.

    ``value`` is null when the day has no valid hour; ``n_flag_t``/``n_flag_s`` sum over
    all hours, valid or not, so over-range and manual data stay visible.

    Args:
        hourly: HOURLY rows of whole local days.
        validity: capture thresholds.

    Returns:
        A lazy frame with exactly the ``DAILY`` columns, one row per
        ``(mn, pollutant, local_day)``.

    """
    h = hourly.lazy()
    flow = h.filter((pl.col("stream") == WATER) & (pl.col("pollutant") == WATER_FLOW)).select(
        "mn", "hour_start_utc", pl.col("discharge").alias("_flow_m3")
    )
    valid = pl.col("valid").fill_null(False)
    weighted = valid & pl.col("discharge").is_not_null() & pl.col("_flow_m3").is_not_null()
    kind = (
        pl.when(pl.col("stream") == GAS)
        .then(pl.lit("gas"))
        .when(pl.col("pollutant") == WATER_FLOW)
        .then(pl.lit("flow"))
        .when(pl.col("pollutant").is_in(list(WATER_ARITHMETIC)))
        .then(pl.lit("arith"))
        .otherwise(pl.lit("weighted"))
    )
    days = (
        h.join(flow, on=["mn", "hour_start_utc"], how="left")
        # Canonical order before summing floats: reruns give bit-identical values.
        .sort(["mn", "pollutant", "hour_start_utc"])
        .with_columns(kind=kind)
        .group_by(["mn", "pollutant", "local_day"])
        .agg(
            pl.col("stream", "kind").first(),
            pl.col("facility_id", "outlet_id", "unit").drop_nulls().first(),
            valid_hours=valid.sum().cast(pl.Int64),
            mean_v=pl.col("value").filter(valid).mean(),
            value_zs=pl.col("value_zs").filter(valid).mean(),
            any_w=weighted.any(),
            sum_load=pl.col("discharge").filter(weighted).sum(),
            sum_flow=pl.col("_flow_m3").filter(weighted).sum(),
            any_discharge=(valid & pl.col("discharge").is_not_null()).any(),
            sum_discharge=pl.col("discharge").filter(valid).sum(),
            n_flag_t=pl.col("n_flag_t").sum().cast(pl.Int64),
            n_flag_s=pl.col("n_flag_s").sum().cast(pl.Int64),
        )
    )
    kind_col = pl.col("kind")
    return conform_lazy(
        days.with_columns(
            value=pl.when((kind_col == "weighted") & pl.col("any_w") & (pl.col("sum_flow") > 0))
            # C_d = G_d / D_d × 1e3 (kg / m3 → mg/L), Annex D.1
            .then(pl.col("sum_load") / pl.col("sum_flow") * L_PER_M3)
            .otherwise(pl.col("mean_v")),
            discharge=pl.when(kind_col.is_in(["flow", "weighted"]) & pl.col("any_discharge")).then(
                pl.col("sum_discharge")
            ),
            valid=pl.when(kind_col == "gas")
            .then(pl.col("valid_hours") >= validity.gas_day_min_hours)
            .otherwise(pl.col("valid_hours") >= validity.water_day_min_hours),
        ),
        DAILY,
    )


def build_marts(
    readings: pl.DataFrame,
    points: pl.DataFrame,
    outlets: pl.DataFrame,
    o2_ref: pl.DataFrame,
    validity: ValiditySettings,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Compute (HOURLY, DAILY) frames from the readings of whole local days.

    The ``rebuild`` callable of ``warehouse.load.load_batch``, once the registry and
    catalogs are bound: ``functools.partial(build_marts, points=..., outlets=...,
    o2_ref=..., validity=...)``. Deterministic to the last bit for the same set of
    readings in any row order (collects with the in-memory engine).
    """
    # The in-memory engine aggregates each group in row order; with the sorts inside the
    # transforms that makes reruns bit-identical. The streaming engine merges partial
    # sums in whatever order its threads finish, which can change the last bits.
    readings = aggregated_devices(readings, points, outlets)
    lf = aggregate_hourly(readings.lazy(), points, outlets, o2_ref, validity)
    hourly = lf.collect(engine="in-memory")
    return hourly, aggregate_daily(hourly.lazy(), validity).collect(engine="in-memory")
