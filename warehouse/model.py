"""The analysts' model: stable, documented views over the published snapshot.

Each view answers one question the bureau's analysts ask, and every view and column has a
``COMMENT ON`` (the data dictionary, ``docs/data-dictionary.md``, is generated from them).
The views only read the snapshot's tables: they are created in the published catalog by
:func:`warehouse.publish.publish` and change only with this file.
"""

from __future__ import annotations

import duckdb

#: view -> (comment, SQL, {column: comment}); the columns listed are exactly the view's.
MODEL: dict[str, tuple[str, str, dict[str, str]]] = {
    "v_daily_values": (
        "Daily value per facility, monitoring point and pollutant (HJ 212-2017 Annex D), with "
        "the facility's name: the first table to query.",
        """
        select d.local_day, d.facility_id, f.name as facility_name, d.outlet_id, d.mn,
               d.stream, d.pollutant, d.value, d.value_zs, d.discharge, d.unit,
               d.valid_hours, d.valid
        from mart_daily_values d left join ref_facilities f using (facility_id)
        """,
        {
            "local_day": "compliance day (Asia/Shanghai calendar day)",
            "facility_id": "facility id of the registry",
            "facility_name": "facility name as registered (Chinese)",
            "outlet_id": "outlet (排口) id",
            "mn": "HJ 212 device id (MN) of the monitoring point",
            "stream": "wastewater | exhaust_gas",
            "pollutant": "HJ 212-2017 pollutant code (2005 codes mapped)",
            "value": "daily value: flow-weighted mean for wastewater pollutants, mean flow for w00000, arithmetic mean for gas and pH",
            "value_zs": "daily value corrected to the reference O2 (stacks; null elsewhere)",
            "discharge": "daily discharge: m3 for flow, kg load for wastewater pollutants",
            "unit": "unit of value (HJ 212-2017 Appendix B)",
            "valid_hours": "valid hours of the day (Annex D)",
            "valid": "the day meets the Annex D capture rule (gas 20 valid hours, water 1)",
        },
    ),
    "v_compliance_status": (
        "Compliance status per facility (or construction site) and day: breaches, "
        "UNVERIFIED breaches and data-quality issues.",
        """
        with b as (
            select local_day, facility_id, count(*) as n_breaches,
                   count(*) filter (where verified_status = 'unverified') as n_unverified,
                   max(case severity when 'critical' then 4 when 'high' then 3
                       when 'medium' then 2 else 1 end) as worst
            from breaches group by all
        ), i as (
            select local_day, facility_id, count(*) as n_dq_issues from dq_issues group by all
        )
        select coalesce(b.local_day, i.local_day) as local_day,
               coalesce(b.facility_id, i.facility_id) as facility_id,
               coalesce(f.name, s.project_name) as name,
               coalesce(b.n_breaches, 0) as n_breaches,
               coalesce(b.n_unverified, 0) as n_unverified_breaches,
               coalesce(i.n_dq_issues, 0) as n_dq_issues,
               case when coalesce(b.n_breaches, 0) > 0 then 'breach'
                    when coalesce(i.n_dq_issues, 0) > 0 then 'issues' else 'ok' end as status
        from b full join i using (local_day, facility_id)
        left join ref_facilities f on f.facility_id = coalesce(b.facility_id, i.facility_id)
        left join ref_dust_sites s on s.site_id = coalesce(b.facility_id, i.facility_id)
        """,
        {
            "local_day": "compliance day",
            "facility_id": "facility id, or construction site id (dust)",
            "name": "facility or construction project name",
            "n_breaches": "findings of breach controls that day",
            "n_unverified_breaches": "breaches resting on an UNVERIFIED limit or parameter",
            "n_dq_issues": "data-quality findings that day",
            "status": "breach | issues | ok (facilities without findings are absent)",
        },
    ),
    "v_breaches": (
        "Every breach with its facility, control, legal basis, verified status and evidence "
        "(files, lines, SQL): what a compliance officer acts on.",
        """
        select b.local_day, b.facility_id, coalesce(f.name, s.project_name) as name,
               b.control_id, b.severity, b.mn, b.pollutant, b.subject, b.waste_code,
               b.period_start_local, b.observed, b.limit_low, b.limit_high, b.unit,
               b.legal_basis, b.verified_status, b.message, b.evidence
        from breaches b
        left join ref_facilities f using (facility_id)
        left join ref_dust_sites s on s.site_id = b.facility_id
        """,
        {
            "local_day": "compliance day",
            "facility_id": "facility id, or construction site id",
            "name": "facility or construction project name",
            "control_id": "control of expectations/catalog/*.csv",
            "severity": "critical | high | medium | low (controls catalog)",
            "mn": "device (MN) for device findings",
            "pollutant": "pollutant code for device findings",
            "subject": "what a non-device finding is about: a manifest, a ledger line, a site",
            "waste_code": "hazardous-waste code of a solid-waste finding",
            "period_start_local": "start of the period in breach (Beijing clock)",
            "observed": "the value that breached",
            "limit_low": "lower bound applied (pH, minimum rules)",
            "limit_high": "upper bound applied",
            "unit": "unit of observed and the limits",
            "legal_basis": "standard and clause, or the bureau policy",
            "verified_status": "verified | unverified | policy (shared/domain/BRIEF.md)",
            "message": "one line for a person (Chinese and English)",
            "evidence": "JSON: source files and lines, and SQL that reproduces the finding",
        },
    ),
    "v_waste_balance": (
        "Solid-waste ledger lines with their mass balance: opening + generated - utilised - "
        "transferred - disposed against the closing stock (tonnes).",
        """
        select l.period_month, l.facility_id, f.name, l.waste_class, l.waste_code, l.waste_name,
               l.opening_t, l.generated_t, l.utilised_t, l.transferred_t, l.disposed_t,
               l.closing_t,
               round(l.opening_t + l.generated_t - l.utilised_t - l.transferred_t
                     - l.disposed_t - l.closing_t, 6) as balance_gap_t,
               l.storage_start, l.source_file, l.sheet, l."row"
        from stg_waste_ledger l left join ref_facilities f using (facility_id)
        """,
        {
            "period_month": "first day of the ledger's month",
            "facility_id": "facility id",
            "name": "facility name",
            "waste_class": "hazardous (危险废物) | general (一般工业固体废物)",
            "waste_code": "hazardous-waste code (2021 list); null for general waste",
            "waste_name": "waste name as written",
            "opening_t": "opening stock, t",
            "generated_t": "generated in the month, t",
            "utilised_t": "utilised in-house, t",
            "transferred_t": "transferred out, t",
            "disposed_t": "disposed in-house, t",
            "closing_t": "closing stock, t",
            "balance_gap_t": "opening + generated - utilised - transferred - disposed - closing (0 when the ledger balances)",
            "storage_start": "when the stock held started to be stored",
            "source_file": "ledger workbook (path under the inbox)",
            "sheet": "worksheet",
            "row": "worksheet row",
        },
    ),
    "v_data_completeness": (
        "Data completeness per device and day: valid hours out of 24 per pollutant, from the "
        "daily marts (Annex D validity).",
        """
        select local_day, facility_id, mn, stream, pollutant, valid_hours,
               round(valid_hours / 24.0, 3) as completeness, valid
        from mart_daily_values
        """,
        {
            "local_day": "compliance day",
            "facility_id": "facility id",
            "mn": "device (MN)",
            "stream": "wastewater | exhaust_gas",
            "pollutant": "pollutant code",
            "valid_hours": "valid hours of the day",
            "completeness": "valid_hours / 24",
            "valid": "the day meets the Annex D capture rule",
        },
    ),
}


def create_model(con: duckdb.DuckDBPyConnection) -> None:
    """Create the ``v_*`` views and their comments in a catalog that has the base views."""
    for name, (comment, sql, columns) in MODEL.items():
        con.execute(f"create or replace view {name} as {sql}")
        con.execute(f"comment on view {name} is '{comment.replace(chr(39), chr(39) * 2)}'")
        for col, text in columns.items():
            con.execute(
                f"comment on column {name}.\"{col}\" is '{text.replace(chr(39), chr(39) * 2)}'"
            )
