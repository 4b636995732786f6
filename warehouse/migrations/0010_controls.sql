-- 0010_controls: results of the compliance controls (expectations/catalog/controls.csv).
--   breaches          one row per limit exceedance (control, device, pollutant, period)
--   dq_issues         one row per data-quality finding (validity, falsification signs, codes)
--   ops_validations   one row per validation run (counts, GX result file)
-- Rerunning the validation of a day replaces that day's rows of breaches and dq_issues
-- (DELETE + INSERT in one transaction); the primary keys make a duplicate impossible.
-- Written with "if not exists": before this file was a migration, zwy.validate created the
-- same tables itself, so a warehouse of that time already has them (and keeps their rows).

create table if not exists breaches (
    breach_id varchar primary key,
    local_day date not null,
    control_id varchar not null,
    facility_id varchar,
    outlet_id varchar,
    mn varchar,
    pollutant varchar,
    averaging_period varchar not null,
    period_start_utc timestamptz not null,
    period_end_utc timestamptz not null,
    period_start_local timestamp,
    observed double,
    limit_low double,
    limit_high double,
    unit varchar,
    limit_id varchar,
    severity varchar,
    legal_basis varchar,
    verified_status varchar,
    corrected_o2 boolean,
    reference_o2 double,
    message varchar,
    evidence json,
    run_id varchar,
    validated_at timestamptz,
    subject varchar,
    waste_code varchar
);
comment on table breaches is
    'compliance layer: one row per limit exceedance found by a control (control_id, mn, pollutant, period); partition local_day, replaced on every validation of the day';
comment on column breaches.verified_status is
    'verified | unverified: unverified when the limit row or the reference O2 it used is UNVERIFIED (shared/domain/BRIEF.md §7)';
comment on column breaches.period_start_local is 'period start, Beijing wall clock (UTC+8)';
comment on column breaches.evidence is
    'JSON: source files and line ranges of the readings, and the SQL that reproduces the finding';

create table if not exists dq_issues (
    issue_id varchar primary key,
    local_day date not null,
    control_id varchar not null,
    facility_id varchar,
    outlet_id varchar,
    mn varchar,
    pollutant varchar,
    period_start_utc timestamptz,
    period_end_utc timestamptz,
    period_start_local timestamp,
    observed double,
    threshold double,
    unit varchar,
    severity varchar,
    legal_basis varchar,
    verified_status varchar,
    message varchar,
    details json,
    evidence json,
    run_id varchar,
    validated_at timestamptz,
    subject varchar,
    waste_code varchar
);
comment on table dq_issues is
    'compliance layer: one row per data-quality finding (capture, offline, flatline, S share, pinned, T flags, unknown MN or code); partition local_day, replaced on every validation of the day';
comment on column dq_issues.period_start_local is 'period start, Beijing wall clock (UTC+8)';

create table if not exists ops_validations (
    run_id varchar primary key,
    day date not null,
    started_at timestamptz,
    finished_at timestamptz,
    status varchar,
    engine varchar,
    gx_success boolean,
    counts json,
    results_path varchar,
    duration_s double
);
comment on table ops_validations is
    'ops layer: one row per validation run of a day: counts per control, GX results file, timings';

-- Solid-waste findings are about a manifest or a ledger line, not a device: warehouses
-- created before the waste stream gain the columns, and mn/pollutant become optional.
alter table breaches add column if not exists subject varchar;
alter table breaches add column if not exists waste_code varchar;
alter table dq_issues add column if not exists subject varchar;
alter table dq_issues add column if not exists waste_code varchar;
alter table breaches alter column mn drop not null;
alter table breaches alter column pollutant drop not null;
comment on column breaches.subject is 'what a finding without a device is about: "manifest <no>", "ledger line <file>:<row> <code>" (solid waste); null for device findings';
comment on column dq_issues.subject is 'what a finding without a device is about (solid waste); null for device findings';
comment on column breaches.waste_code is 'hazardous-waste code of a solid-waste finding (2021 list)';
comment on column dq_issues.waste_code is 'hazardous-waste code of a solid-waste finding (2021 list)';
