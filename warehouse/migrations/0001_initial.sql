-- 0001_initial: the zwy warehouse, layer visible in each table name.
--   ref_*   registry (replaced whole on every load)
--   raw_*   as received: ingest manifest and quarantine, partitioned by batch_day
--   stg_*   typed staging, partitioned by batch_day (the inbox day that delivered it)
--   mart_*  hourly/daily aggregates, partitioned by local_day (Asia/Shanghai calendar day)
--   ops_*   pipeline runs
-- UTC instants are TIMESTAMPTZ; Beijing wall-clock times are TIMESTAMP with a comment.
-- Big partitioned tables carry no PRIMARY KEY: DELETE + INSERT of the same keys in one
-- transaction is ~20x slower on a keyed table (shared/PITFALLS.md); uniqueness is tested.

create table ref_facilities (
    facility_id varchar primary key,
    name varchar,
    uscc varchar,
    industry varchar,
    ehs_email varchar
);
comment on table ref_facilities is
    'registry layer: one row per facility (registry/facilities.csv), replaced on every load';

create table ref_outlets (
    outlet_id varchar primary key,
    facility_id varchar,
    outlet_type varchar,
    stream varchar,
    standard varchar,
    table_class varchar,
    applies_to varchar,
    name varchar
);
comment on table ref_outlets is
    'registry layer: one row per outlet (registry/outlets.csv), replaced on every load';

create table ref_monitoring_points (
    mn varchar primary key,
    outlet_id varchar,
    protocol varchar,
    crc_policy varchar,
    rtd_interval_s bigint,
    min_interval_min bigint,
    delivery varchar
);
comment on table ref_monitoring_points is
    'registry layer: one row per HJ 212 device (MN) (registry/monitoring_points.csv), replaced on every load';

create table raw_ingest_files (
    batch_day date not null,
    stream varchar,
    path varchar not null,
    sha256 varchar,
    bytes bigint,
    arrival_time timestamptz,
    parser varchar,
    status varchar,
    error varchar,
    lines_total bigint,
    noise_lines bigint,
    frames_found bigint,
    frames_loaded bigint,
    frames_quarantined bigint,
    values_loaded bigint,
    run_id varchar,
    primary key (batch_day, path)
);
comment on table raw_ingest_files is
    'raw layer: one row per input file per batch_day (ingest manifest, content-hashed); partition batch_day';
comment on column raw_ingest_files.path is 'path relative to the inbox root';
comment on column raw_ingest_files.arrival_time is 'file mtime in UTC: when the file landed';

create table raw_quarantine (
    batch_day date not null,
    stream varchar,
    run_id varchar,
    source_file varchar,
    line bigint,
    raw varchar,
    rule varchar,
    reason varchar,
    sha256 varchar
);
comment on table raw_quarantine is
    'raw layer: one row per rejected frame or line, with the rule it failed; partition batch_day';
comment on column raw_quarantine.sha256 is 'sha256 of the file the row came from';

create table stg_packets (
    batch_day date not null,
    stream varchar,
    source_file varchar,
    line bigint,
    raw varchar,
    crc_variant varchar,
    declared_length bigint,
    actual_length bigint,
    qn varchar,
    st varchar,
    cn varchar,
    pw varchar,
    mn varchar,
    flag bigint,
    protocol varchar,
    pnum bigint,
    pno bigint,
    data_time timestamp,
    data_time_utc timestamptz
);
comment on table stg_packets is
    'staging layer: one row per accepted HJ 212 frame; partition batch_day';
comment on column stg_packets.data_time is 'HJ 212 DataTime as sent: Beijing wall clock (UTC+8)';

create table stg_readings (
    batch_day date not null,
    source_file varchar,
    line bigint,
    stream varchar,
    facility_id varchar,
    outlet_id varchar,
    mn varchar,
    cn varchar,
    data_time_utc timestamptz,
    local_day date,
    pollutant varchar,
    code_status varchar,
    field varchar,
    value double,
    unit varchar,
    flag varchar,
    valid boolean
);
comment on table stg_readings is
    'staging layer: one row per measurement value (mn, cn, data_time, pollutant, field) per delivery; partition batch_day; late re-sends kept, deduplicated in the marts';
comment on column stg_readings.local_day is 'Asia/Shanghai calendar day of data_time_utc (the compliance day)';

create table mart_hourly_values (
    local_day date not null,
    hour_start_utc timestamptz not null,
    facility_id varchar,
    outlet_id varchar,
    mn varchar,
    stream varchar,
    pollutant varchar,
    value double,
    value_zs double,
    o2_measured double,
    o2_ref double,
    discharge double,
    unit varchar,
    n_values bigint,
    n_valid bigint,
    valid_minutes bigint,
    valid boolean,
    n_flag_t bigint,
    n_flag_s bigint,
    source_cn varchar
);
comment on table mart_hourly_values is
    'marts layer: one row per (mn, pollutant, hour_start_utc), HJ 212-2017 Annex D hourly values; partition local_day';
comment on column mart_hourly_values.discharge is 'water: m3 in the hour (flow w00000) or kg load (pollutant)';
comment on column mart_hourly_values.value_zs is 'O2-corrected (formula 28) with an UNVERIFIED reference O2';

create table mart_daily_values (
    local_day date not null,
    facility_id varchar,
    outlet_id varchar,
    mn varchar,
    stream varchar,
    pollutant varchar,
    value double,
    value_zs double,
    discharge double,
    unit varchar,
    valid_hours bigint,
    valid boolean,
    n_flag_t bigint,
    n_flag_s bigint
);
comment on table mart_daily_values is
    'marts layer: one row per (mn, pollutant, local_day), HJ 212-2017 Annex D daily values; partition local_day';

create table ops_runs (
    run_id varchar primary key,
    day date,
    trigger varchar,
    started_at timestamptz,
    finished_at timestamptz,
    status varchar,
    stages struct(
        name varchar,
        stream varchar,
        status varchar,
        counts map(varchar, bigint),
        duration_s double,
        message varchar
    )[]
);
comment on table ops_runs is
    'ops layer: one row per pipeline run (run_id), with per-stage status, counts, duration; stage status nothing_arrived marks a stream with no input';
