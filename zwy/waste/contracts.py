"""Staging schemas of the solid-waste stream (one row per ledger line or manifest)."""

from __future__ import annotations

import polars as pl

#: One row per waste per facility-month ledger (tonnes; kilograms converted).
WASTE_LEDGER = pl.Schema(
    {
        "batch_day": pl.Date,
        "source_file": pl.String,
        "sheet": pl.String,
        "row": pl.Int64,  # 1-based worksheet row
        "facility_id": pl.String,
        "period_month": pl.Date,  # first day of the ledger's month
        "waste_code": pl.String,  # as written (null for general industrial solid waste)
        "waste_name": pl.String,
        "waste_class": pl.String,  # hazardous | general
        "opening_t": pl.Float64,
        "generated_t": pl.Float64,
        "utilised_t": pl.Float64,
        "transferred_t": pl.Float64,
        "disposed_t": pl.Float64,
        "closing_t": pl.Float64,
        "storage_start": pl.Date,  # when the stock now held started to be stored
        "unit_as_sent": pl.String,  # 吨 / t / 千克 / kg
    }
)

#: One row per transfer manifest line (联单) as the export lists it.
WASTE_MANIFESTS = pl.Schema(
    {
        "batch_day": pl.Date,
        "source_file": pl.String,
        "sheet": pl.String,  # null for CSV
        "row": pl.Int64,  # 1-based line (CSV, header = 1) or worksheet row
        "manifest_no": pl.String,  # 14 digits
        "facility_id": pl.String,  # the consignor (移出单位编号)
        "consignor_name": pl.String,
        "receiver_name": pl.String,
        "receiver_licence": pl.String,
        "waste_code": pl.String,
        "waste_name": pl.String,
        "shipped_t": pl.Float64,
        "received_t": pl.Float64,
        "ship_date": pl.Date,
        "confirmed_date": pl.Date,  # null: not confirmed by the receiver (yet)
    }
)

#: Quarantined rows of the stream (the QUARANTINE contract plus the sheet).
WASTE_QUARANTINE = pl.Schema(
    {
        "source_file": pl.String,
        "sheet": pl.String,
        "line": pl.Int64,
        "raw": pl.String,
        "rule": pl.String,
        "reason": pl.String,
    }
)
