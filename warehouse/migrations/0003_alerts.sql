-- 0003_alerts: the alert outbox (zwy/alerts). One row per email to send; a row is written
-- before anything is sent, so an alert is never lost, and its id is derived from what it
-- reports, so a rerun of the day never queues (or sends) the same alert twice.
--   alert_outbox   one row per email: recipient, subject, the RFC 5322 message, status
--   alert_items    which findings (breach_id, issue_id, pipeline event id) each email carries

create table alert_outbox (
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
    message blob not null,
    status varchar not null,
    attempts integer not null,
    last_error varchar,
    created_at timestamptz not null,
    last_attempt_at timestamptz,
    sent_at timestamptz
);
comment on table alert_outbox is
    'alerts layer: one row per alert email (a digest per recipient per run, or an immediate alert); written before sending, status pending | sent | failed';
comment on column alert_outbox.alert_id is
    'sha256 of mode, day, recipient and the sorted item ids: the same findings to the same person give the same id (exactly once); also the Message-ID';
comment on column alert_outbox.mode is 'digest (one per recipient per run) | immediate (one high-severity breach)';
comment on column alert_outbox.message is 'the RFC 5322 message exactly as (to be) sent: HTML + plain text + inline PNG charts';
comment on column alert_outbox.status is
    'pending: not delivered yet (retried by every run and by `zwy alerts send`); sent; failed: gave up after the configured attempts';
comment on column alert_outbox.attempts is 'SMTP delivery attempts so far';
comment on column alert_outbox.last_error is 'the error of the last failed attempt (server down, refused, ...)';

create table alert_items (
    alert_id varchar not null,
    item_id varchar not null,
    kind varchar not null,
    severity varchar,
    facility_id varchar,
    primary key (alert_id, item_id)
);
comment on table alert_items is
    'alerts layer: the findings each alert carries (breaches.breach_id, dq_issues.issue_id, or a pipeline event id); a finding goes to a recipient once per mode';
