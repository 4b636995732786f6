-- 0002_parquet_staging: stg_packets and stg_readings become views over Parquet files.
--   One zstd Parquet file per (table, batch_day), sorted by mn, data_time_utc, written by
--   Polars next to the DuckDB file (<dir>/<stem>_parquet/<table>/batch_day=YYYY-MM-DD/).
--   meta_partitions lists the current file of each partition; the loader switches a
--   partition by replacing its row and the views in one transaction (warehouse/partitions.py).
-- The old tables are renamed here; the migration's Python step (warehouse.db) copies their
-- rows into Parquet partitions, drops them and lists the files in the views.

alter table stg_packets rename to _stg_packets_0001;
alter table stg_readings rename to _stg_readings_0001;

create table meta_partitions (
    table_name varchar not null,
    batch_day date not null,
    file varchar not null,
    rows bigint not null,
    bytes bigint,
    sha256 varchar,
    schema_hash varchar,
    local_days date[],
    run_id varchar,
    written_at timestamptz not null,
    primary key (table_name, batch_day)
);
comment on table meta_partitions is
    'meta layer: one row per Parquet partition of a staging view (table_name, batch_day): its current file';
comment on column meta_partitions.file is
    'path relative to the Parquet folder <dir of the DuckDB file>/<stem>_parquet';
comment on column meta_partitions.local_days is
    'stg_readings: the Asia/Shanghai days of its rows (which marts it feeds)';
comment on column meta_partitions.schema_hash is
    'fingerprint of the column contract the file was written with';

-- Empty, typed views until the first load lists files in them.
create view stg_packets as
select
    cast(null as date) as batch_day,
    cast(null as varchar) as stream,
    cast(null as varchar) as source_file,
    cast(null as bigint) as line,
    cast(null as varchar) as raw,
    cast(null as varchar) as crc_variant,
    cast(null as bigint) as declared_length,
    cast(null as bigint) as actual_length,
    cast(null as varchar) as qn,
    cast(null as varchar) as st,
    cast(null as varchar) as cn,
    cast(null as varchar) as pw,
    cast(null as varchar) as mn,
    cast(null as bigint) as flag,
    cast(null as varchar) as protocol,
    cast(null as bigint) as pnum,
    cast(null as bigint) as pno,
    cast(null as timestamp) as data_time,
    cast(null as timestamptz) as data_time_utc
where false;
comment on view stg_packets is
    'staging layer: one row per accepted HJ 212 frame; partition batch_day; view over Parquet partitions (one zstd file per batch_day, sorted by mn, data_time_utc, listed in meta_partitions)';
comment on column stg_packets.data_time is 'HJ 212 DataTime as sent: Beijing wall clock (UTC+8)';

create view stg_readings as
select
    cast(null as date) as batch_day,
    cast(null as varchar) as source_file,
    cast(null as bigint) as line,
    cast(null as varchar) as stream,
    cast(null as varchar) as facility_id,
    cast(null as varchar) as outlet_id,
    cast(null as varchar) as mn,
    cast(null as varchar) as cn,
    cast(null as timestamptz) as data_time_utc,
    cast(null as date) as local_day,
    cast(null as varchar) as pollutant,
    cast(null as varchar) as code_status,
    cast(null as varchar) as field,
    cast(null as double) as value,
    cast(null as varchar) as unit,
    cast(null as varchar) as flag,
    cast(null as boolean) as valid
where false;
comment on view stg_readings is
    'staging layer: one row per measurement value (mn, cn, data_time, pollutant, field) per delivery; partition batch_day; late re-sends kept, deduplicated in the marts; view over Parquet partitions (one zstd file per batch_day, sorted by mn, data_time_utc, listed in meta_partitions)';
comment on column stg_readings.local_day is 'Asia/Shanghai calendar day of data_time_utc (the compliance day)';
