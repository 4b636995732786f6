-- 0012_outbox_files: an alert's email is a file, not a BLOB in the warehouse.
--   A district's year of alerts is about 68,000 emails and 3.9 GB of MIME (HTML and inline
--   PNG charts), all in one row group of alert_outbox: every night's appends and status
--   updates made DuckDB's checkpoint rewrite it, 9-22 s a night at a year (measured with
--   benchmarks.history_district). The message now lives in <dir>/<stem>_outbox/<day>/, one
--   file per alert, written once and never changed; the row keeps its path, SHA-256 and
--   size. The Python step (warehouse.db) writes the existing messages out and swaps the
--   tables; DuckDB cannot drop a column of a keyed table in place.

create table _alert_outbox_0012 (
    alert_id varchar primary key,
    day date not null,
    run_id varchar,
    mode varchar not null,
    recipient varchar not null,
    recipient_name varchar,
    audiences varchar[],
    n_items integer not null,
    worst_severity varchar,
    subject varchar not null,
    message_file varchar not null,
    message_sha256 varchar not null,
    message_bytes bigint not null,
    status varchar not null,
    attempts integer not null,
    last_error varchar,
    created_at timestamptz not null,
    last_attempt_at timestamptz,
    sent_at timestamptz
);
comment on table _alert_outbox_0012 is
    'alerts layer: one row per alert email (a digest per recipient per run, or an immediate alert); written before sending, status pending | sent | failed';
comment on column _alert_outbox_0012.alert_id is
    'sha256 of mode, day, recipient and the sorted item ids: the same findings to the same person give the same id (exactly once); also the Message-ID';
comment on column _alert_outbox_0012.mode is 'digest (one per recipient per run) | immediate (one high-severity breach)';
comment on column _alert_outbox_0012.message_file is
    'the RFC 5322 message exactly as (to be) sent (HTML + plain text + inline PNG charts): a file under <dir of the DuckDB file>/<stem>_outbox, path relative to it';
comment on column _alert_outbox_0012.message_sha256 is 'SHA-256 of the message file (checked before sending)';
comment on column _alert_outbox_0012.message_bytes is 'size of the message file';
comment on column _alert_outbox_0012.status is
    'pending: not delivered yet (retried by every run and by `zwy alerts send`); sent; failed: gave up after the configured attempts';
comment on column _alert_outbox_0012.attempts is 'SMTP delivery attempts so far';
comment on column _alert_outbox_0012.last_error is 'the error of the last failed attempt (server down, refused, ...)';
