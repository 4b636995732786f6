-- 0011_partition_files: a staging partition may be several Parquet files.
--   The loader copies a stream's staged readings file into the partition as it is when it
--   already meets the contract (columns, batch_day, sorted by mn, data_time_utc), instead
--   of reading, sorting and encoding its rows again; a day then has one readings file per
--   stream. meta_partitions gets one row per file: the key becomes (table_name, batch_day,
--   file). DuckDB cannot change a primary key in place, so the table is rebuilt.

create table _meta_partitions_0011 (
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
    primary key (table_name, batch_day, file)
);
insert into _meta_partitions_0011
select table_name, batch_day, file, rows, bytes, sha256, schema_hash, local_days, run_id,
       written_at
from meta_partitions;
drop table meta_partitions;
alter table _meta_partitions_0011 rename to meta_partitions;

comment on table meta_partitions is
    'meta layer: one row per Parquet file of a staging view partition (table_name, batch_day): the partition is the union of its current files';
comment on column meta_partitions.file is
    'path relative to the Parquet folder <dir of the DuckDB file>/<stem>_parquet';
comment on column meta_partitions.local_days is
    'stg_readings: the Asia/Shanghai days of the file''s rows (which marts it feeds)';
comment on column meta_partitions.schema_hash is
    'fingerprint of the column contract the file was written with';
