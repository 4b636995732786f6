-- 0004_solid_waste: the solid and hazardous waste stream (zwy/waste).
--   stg_waste_ledger      one row per waste per facility-month ledger (Excel 台账), tonnes
--   stg_waste_manifests   one row per transfer manifest line (转移联单 export)
--   ref_hw_codes          the 2021 National Hazardous Waste List (467 codes)
--   ref_receivers         licensed receivers and the HW categories they may accept
-- Both staging tables are partitioned by batch_day and replaced with the day's load.
-- raw_quarantine gains the worksheet a rejected row came from.

alter table raw_quarantine add column sheet varchar;
comment on column raw_quarantine.sheet is 'worksheet of a rejected workbook row (solid-waste ledgers); null for text files';

create table stg_waste_ledger (
    batch_day date not null,
    source_file varchar not null,
    sheet varchar,
    "row" bigint,
    facility_id varchar,
    period_month date,
    waste_code varchar,
    waste_name varchar,
    waste_class varchar,
    opening_t double,
    generated_t double,
    utilised_t double,
    transferred_t double,
    disposed_t double,
    closing_t double,
    storage_start date,
    unit_as_sent varchar,
    run_id varchar
);
comment on table stg_waste_ledger is
    'staging layer: one row per waste per facility-month from the monthly ledgers (台账, Excel); quantities in tonnes (kg converted); partition batch_day';
comment on column stg_waste_ledger."row" is '1-based worksheet row of the ledger line';
comment on column stg_waste_ledger.period_month is 'first day of the month the ledger covers';
comment on column stg_waste_ledger.waste_code is 'hazardous-waste code as written (NNN-NNN-NN, 2021 list); null for general industrial solid waste (its SW codes are UNVERIFIED)';
comment on column stg_waste_ledger.waste_class is 'hazardous (危险废物) | general (一般工业固体废物)';
comment on column stg_waste_ledger.closing_t is 'closing stock; should equal opening + generated - utilised - transferred - disposed';
comment on column stg_waste_ledger.storage_start is 'when the stock now held started to be stored';
comment on column stg_waste_ledger.unit_as_sent is 'unit written in the ledger (吨 / 千克 ...), before conversion to tonnes';

create table stg_waste_manifests (
    batch_day date not null,
    source_file varchar not null,
    sheet varchar,
    "row" bigint,
    manifest_no varchar not null,
    facility_id varchar,
    consignor_name varchar,
    receiver_name varchar,
    receiver_licence varchar,
    waste_code varchar,
    waste_name varchar,
    shipped_t double,
    received_t double,
    ship_date date,
    confirmed_date date,
    run_id varchar
);
comment on table stg_waste_manifests is
    'staging layer: one row per hazardous-waste transfer manifest line (转移联单) as exported; the latest batch carries the current state of a manifest; partition batch_day';
comment on column stg_waste_manifests.manifest_no is '14 digits: year, province (11 Beijing), city, 6-digit serial (危险废物转移管理办法 Art. 15)';
comment on column stg_waste_manifests.confirmed_date is 'receipt confirmed by the receiver; null: not (yet) confirmed (Art. 18: within 5 working days)';

create table ref_hw_codes (
    waste_code varchar primary key,
    hw_category varchar not null,
    category_name varchar,
    industry_code varchar,
    hazard_characteristics varchar,
    note varchar,
    source varchar not null
);
comment on table ref_hw_codes is
    'reference: the 2021 National Hazardous Waste List (国家危险废物名录（2021年版）, 部令第15号), code, HW category, hazard characteristics (T, C, I, R, In)';

create table ref_receivers (
    receiver_id varchar primary key,
    name varchar,
    licence_no varchar,
    licensed_categories varchar,
    licence_valid_to date
);
comment on table ref_receivers is
    'reference: licensed hazardous-waste receivers (registry receivers.csv); licensed_categories like HW08|HW49';
