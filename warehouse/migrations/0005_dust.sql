-- 0005_dust: construction-site dust (zwy/dust, transforms/dust.py).
--   ref_dust_sites        construction projects with their monitor (MN) and nearest station
--   stg_station_hourly    the station's hourly ambient data (UCI layout), partition batch_day
--   mart_dust_hourly      every site-hour of a day: site means, validity, site minus station PM10
-- The site monitors' readings themselves are in stg_readings (stream dust, ST=39).

create table ref_dust_sites (
    site_id varchar primary key,
    project_name varchar,
    developer varchar,
    address varchar,
    mn varchar,
    station varchar,
    start_date date,
    end_date date,
    ehs_email varchar
);
comment on table ref_dust_sites is
    'reference: construction sites (工地) from the registry dust_sites.csv: project, developer, the dust monitor MN, the nearest station, works period';

create table stg_station_hourly (
    batch_day date not null,
    source_file varchar not null,
    line bigint,
    station varchar not null,
    hour_start_utc timestamptz not null,
    local_day date,
    pm25 double,
    pm10 double,
    so2 double,
    no2 double,
    co double,
    o3 double,
    temp double,
    pres double,
    dewp double,
    rain double,
    wspm double,
    wd varchar,
    run_id varchar
);
comment on table stg_station_hourly is
    'staging layer: hourly ambient data of the national/municipal stations nearest to the sites (UCI Beijing multi-site layout; NA is null), µg/m³; partition batch_day';
comment on column stg_station_hourly.hour_start_utc is 'start of the hour; the file gives year, month, day, hour in Beijing time';

create table mart_dust_hourly (
    local_day date not null,
    hour_start_utc timestamptz not null,
    hour_local tinyint,
    site_id varchar not null,
    mn varchar,
    station varchar,
    n_values bigint,
    valid_minutes bigint,
    valid boolean,
    pm10_site double,
    pm25_site double,
    tsp_site double,
    pm10_station double,
    pm10_diff double,
    primary key (site_id, hour_start_utc)
);
comment on table mart_dust_hourly is
    'marts layer: every hour of every active construction site: site PM10/PM2.5/TSP means (µg/m³), validity (45 valid minutes, HJ 212-2017 Annex D.2 applied to dust monitors), the station PM10 and site minus station';
comment on column mart_dust_hourly.n_values is 'PM10 values received in the hour (0: the monitor sent nothing)';
comment on column mart_dust_hourly.valid_minutes is 'clock minutes with a valid PM10 value (flag N)';
comment on column mart_dust_hourly.pm10_diff is 'site PM10 minus station PM10 (µg/m³); null when the hour is invalid or the station sent NA';
