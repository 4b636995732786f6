"""Correction of stack concentrations to the reference O2 (HJ 212-2017 formula 28).

``C_zs = C × (21 − O2_ref) / (21 − O2_measured)``, with ``O2_ref`` from
``expectations/catalog/reference_o2.csv`` (joined on the outlet's ``standard`` and
``applies_to``; every row there is still UNVERIFIED, see BRIEF §3.4) and ``O2_measured``
the same hour's a19001 value of the same device.
"""

from __future__ import annotations

import polars as pl

from transforms.units import O2, is_o2_correctable

#: O2 content of air: the formula's pole. At or above it the correction is undefined.
O2_AIR_PCT = 21.0


def reference_o2_of_outlets(outlets: pl.DataFrame, o2_ref: pl.DataFrame) -> pl.LazyFrame:
    """Look up each outlet's reference O2.

    Args:
        outlets: OUTLETS registry (``outlet_id, standard, applies_to``).
        o2_ref: the reference-O2 catalog with ``standard, applies_to, reference_o2_pct``.
            The first row per (standard, applies_to) wins.

    Returns:
        ``outlet_id, o2_ref``; outlets without a catalog row are absent.

    """
    ref = (
        o2_ref.lazy()
        .select(
            pl.col("standard").cast(pl.String),
            pl.col("applies_to").cast(pl.String),
            pl.col("reference_o2_pct").cast(pl.Float64).alias("o2_ref"),
        )
        .unique(subset=["standard", "applies_to"], keep="first", maintain_order=True)
    )
    return (
        outlets.lazy()
        .unique(subset="outlet_id", keep="first", maintain_order=True)
        .select("outlet_id", "standard", "applies_to")
        .join(ref, on=["standard", "applies_to"], how="inner")
        .select("outlet_id", "o2_ref")
    )


def correct_o2(hourly: pl.LazyFrame, outlet_o2_ref: pl.LazyFrame) -> pl.LazyFrame:
    """Add ``o2_measured``, ``o2_ref`` and ``value_zs`` to hourly stack values.

    Only gas pollutant concentrations (codes a2xxxx, a3xxxx) of ``exhaust_gas`` devices are
    corrected; the other rows get nulls. ``o2_measured`` is the device's a19001 hourly
    value. ``value_zs`` is null when the outlet has no reference O2 (report the measured dry
    concentration instead, D.2.3), when the O2 hour is missing or not valid (Annex D gives
    no O2 value for an invalid hour, so no corrected value either), or when O2 >= 21 %.

    Args:
        hourly: hourly rows with ``mn, outlet_id, stream, pollutant, hour_start_utc, value,
            valid``; an existing ``o2_measured``/``o2_ref``/``value_zs`` is replaced.
        outlet_o2_ref: ``outlet_id, o2_ref`` from :func:`reference_o2_of_outlets`.

    Returns:
        ``hourly`` with the three columns added.

    """
    o2 = hourly.filter(pl.col("pollutant") == O2).select(
        "mn",
        "hour_start_utc",
        pl.col("value").alias("_o2"),
        pl.col("valid").alias("_o2_valid"),
    )
    correctable = (pl.col("stream") == "exhaust_gas") & is_o2_correctable(pl.col("pollutant"))
    usable_o2 = pl.col("_o2_valid").fill_null(False) & (pl.col("_o2") < O2_AIR_PCT)
    return (
        hourly.drop(["o2_measured", "o2_ref", "value_zs"], strict=False)
        .join(o2, on=["mn", "hour_start_utc"], how="left")
        .join(outlet_o2_ref, on="outlet_id", how="left")
        .with_columns(
            o2_measured=pl.when(correctable).then(pl.col("_o2")),
            o2_ref=pl.when(correctable).then(pl.col("o2_ref")),
            value_zs=pl.when(correctable & usable_o2).then(
                pl.col("value") * (O2_AIR_PCT - pl.col("o2_ref")) / (O2_AIR_PCT - pl.col("_o2"))
            ),
        )
        .drop(["_o2", "_o2_valid"])
    )
