"""Alert emails against a real SMTP server on loopback: routing, content, exactly once."""

from __future__ import annotations

import hashlib
import re

import duckdb
import polars as pl
import pytest

from tests.alerts.conftest import DAY, HOSTILE
from tests.alerts.smtp_server import LoopbackSmtp
from zwy.alerts import PipelineEvent, list_alerts, queue_alerts, run_alerts
from zwy.alerts.catalog import SEVERITY_RANK
from zwy.settings import Settings

OFFICERS = {"compliance@bureau.example.org", "enforcement@bureau.example.org"}
STEWARD = "data@bureau.example.org"
OPS = "ops@bureau.example.org"
EHS_1 = "ehs@f0001.example.org"


def findings(settings: Settings) -> tuple[pl.DataFrame, pl.DataFrame]:
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        b = con.execute("select * from breaches where local_day = ?", [DAY]).pl()
        d = con.execute("select * from dq_issues where local_day = ?", [DAY]).pl()
    return b, d


def parts(msg):  # type: ignore[no-untyped-def]
    text = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    images = [p for p in msg.walk() if p.get_content_type() == "image/png"]
    return text.get_content(), html.get_content(), images


def test_digest_reaches_the_right_people_once_each(district: Settings, smtp: LoopbackSmtp):
    breaches, issues = findings(district)
    assert breaches.height > 0 and issues.height > 0, "the sample day must have findings"
    res = run_alerts(DAY, district)
    assert res["pending"] == 0 and res["failed"] == 0 and res["smtp_error"] is None
    digests = [m for m in smtp.inbox.messages if "即时告警" not in str(m.message["Subject"])]
    recipients = sorted(r for m in digests for r in m.rcpt_tos)
    # One digest per recipient per run: the facility with findings, both officers, the steward.
    assert len(recipients) == len(set(recipients))
    assert OFFICERS | {STEWARD, EHS_1} <= set(recipients)
    assert OPS not in recipients  # nothing went wrong with the run itself
    # Construction sites in breach hear it at their own contact (dust_sites.csv).
    assert {"site-s001@builder.example.org", "site-s002@builder.example.org"} <= set(recipients)
    # The EHS manager of F0001 sees only F0001's findings; officers see every breach.
    ehs = smtp.inbox.to(EHS_1)
    assert len([m for m in ehs if m in digests]) == 1
    with duckdb.connect(str(district.warehouse), read_only=True) as con:
        per = dict(
            con.execute(
                "select o.recipient, list(distinct i.facility_id) from alert_items i "
                "join alert_outbox o using (alert_id) where o.mode = 'digest' group by 1"
            ).fetchall()
        )
        officer_breaches = con.execute(
            "select count(distinct item_id) from alert_items i join alert_outbox o using (alert_id) "
            "where o.recipient = 'compliance@bureau.example.org' and i.kind = 'breach' "
            "and o.mode = 'digest'"
        ).fetchone()[0]
    assert per[EHS_1] == ["F0001"]
    assert officer_breaches == breaches.height


def test_subject_html_text_and_inline_chart(district: Settings, smtp: LoopbackSmtp):
    run_alerts(DAY, district)
    (msg,) = [
        m.message
        for m in smtp.inbox.to("compliance@bureau.example.org")
        if "即时告警" not in str(m.message["Subject"])
    ]
    subject = str(msg["Subject"])
    breaches, _ = findings(district)
    # Triage from the inbox: the day, the counts, the worst item.
    assert str(DAY) in subject
    assert f"{breaches.height} 超标 breach" in subject
    assert "worst: CRITICAL" in subject
    assert msg.get_content_type() == "multipart/alternative"
    text, html, images = parts(msg)
    assert images, "the digest carries at least one chart"
    for img in images:
        cid = img["Content-ID"].strip("<>")
        assert f'src="cid:{cid}"' in html
        assert img.get_content()[:8] == b"\x89PNG\r\n\x1a\n"
    # Chinese and English labels, every breach listed, the report linked.
    assert "严重程度" in html and "Severity" in html and "超标" in text and "breach" in text
    for bid in breaches["control_id"].unique():
        assert bid in html and bid in text
    link = f"https://zwy.example.org/reports/{DAY}/compliance_{DAY}.html"
    assert link in html and link in text
    # Worst first, as queued from the day's items sorted once (zwy.alerts.render.sort_items).
    severities = re.findall(r"^- \[([A-Z]+)\]", text, flags=re.M)
    assert len(severities) >= 2
    ranks = [SEVERITY_RANK[s.lower()] for s in severities]
    assert ranks == sorted(ranks), severities
    assert msg["Message-ID"].startswith("<") and msg["Message-ID"].endswith("@zwy.alerts>")


def test_each_chart_is_drawn_once_for_all_the_emails_that_carry_it(
    district: Settings, smtp: LoopbackSmtp, monkeypatch: pytest.MonkeyPatch
):
    import zwy.report

    drawn: list[tuple[str, str, str]] = []
    real = zwy.report.breach_chart_spec

    def counting(hours, group, day):  # type: ignore[no-untyped-def]
        # A chart shows its series' whole day: every breach of that series, sorted.
        first = group.row(0, named=True)
        assert group["period_start_utc"].is_sorted()
        series = (first["mn"], first["pollutant"], first["control_id"])
        assert sorted(group["breach_id"]) == sorted(
            breaches.filter(
                (pl.col("mn") == series[0])
                & (pl.col("pollutant") == series[1])
                & (pl.col("control_id") == series[2])
            )["breach_id"]
        )
        drawn.append(series)
        return real(hours, group, day)

    breaches, _ = findings(district)
    monkeypatch.setattr(zwy.report, "breach_chart_spec", counting)
    run_alerts(DAY, district)
    assert drawn, "the sample day has charted breaches"
    assert len(drawn) == len(set(drawn))
    # The same chart reaches several people (the facility, both officers...): same bytes.
    by_cid: dict[str, list[bytes]] = {}
    for m in smtp.inbox.messages:
        for img in parts(m.message)[2]:
            by_cid.setdefault(img["Content-ID"], []).append(img.get_content())
    assert any(len(v) > 1 for v in by_cid.values())
    assert all(len(set(v)) == 1 for v in by_cid.values())


def test_hostile_facility_names_arrive_escaped_and_readable(district: Settings, smtp: LoopbackSmtp):
    run_alerts(DAY, district)
    (msg,) = [
        m.message for m in smtp.inbox.to(EHS_1) if "即时告警" not in str(m.message["Subject"])
    ]
    text, html, _ = parts(msg)
    assert "<script>" not in html
    assert (
        "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&#x27;; DROP TABLE alert_outbox" in html
    )
    assert HOSTILE in text  # plain text shows the name exactly as registered
    # The injected SQL did nothing: the outbox is there and lists what was sent.
    assert not list_alerts(district).is_empty()
    assert "\n" not in str(msg["Subject"])


def test_server_down_keeps_alerts_pending_then_delivers_once(
    district: Settings, smtp: LoopbackSmtp
):
    smtp.stop()
    res = run_alerts(DAY, district)
    assert res["queued"] > 0 and res["sent"] == 0 and res["pending"] == res["queued"]
    assert res["smtp_error"] and "ConnectionRefused" in res["smtp_error"]
    pending = list_alerts(district, status="pending")
    assert pending.height == res["queued"]
    assert (pending["attempts"] == 1).all() and pending["last_error"].is_not_null().all()
    smtp.start()
    again = run_alerts(DAY, district)  # the next run: nothing new, the backlog delivered
    assert again["queued"] == 0 and again["sent"] == res["queued"] and again["pending"] == 0
    ids = [str(m.message["X-ZWY-Alert-Id"]) for m in smtp.inbox.messages]
    assert len(ids) == len(set(ids)) == res["queued"]
    third = run_alerts(DAY, district)
    assert third["queued"] == third["sent"] == 0
    assert len(smtp.inbox.messages) == res["queued"]
    assert set(list_alerts(district)["status"]) == {"sent"}


def test_messages_are_files_checked_before_they_are_sent(district: Settings, smtp: LoopbackSmtp):
    smtp.stop()
    queued = run_alerts(DAY, district)["queued"]
    assert queued >= 3
    with duckdb.connect(str(district.warehouse), read_only=True) as con:
        rows = con.execute(
            "select alert_id, message_file, message_sha256, message_bytes from alert_outbox "
            "order by alert_id"
        ).fetchall()
    folder = district.warehouse.parent / f"{district.warehouse.stem}_outbox"
    for aid, file, sha, size in rows:
        data = (folder / file).read_bytes()
        assert len(data) == size and hashlib.sha256(data).hexdigest() == sha
        assert f"X-ZWY-Alert-Id: {aid}".encode() in data
    # A message a dead queueing left behind, no row naming it, goes with the next queueing.
    stray = folder / DAY.isoformat() / "deadbeef.000000000000.eml"
    stray.write_bytes(b"Subject: never queued\r\n\r\nx\r\n")
    assert run_alerts(DAY, district)["queued"] == 0
    assert not stray.exists() and all((folder / r[1]).exists() for r in rows)
    # One message lost, one changed: both reported and kept pending, never sent; the rest go.
    lost, changed = rows[0], rows[1]
    (folder / lost[1]).unlink()
    (folder / changed[1]).write_bytes(b"Subject: not the queued one\r\n\r\nx\r\n")
    smtp.start()
    again = run_alerts(DAY, district)
    assert again["sent"] == queued - 2 and again["pending"] == 2
    assert len(smtp.inbox.messages) == queued - 2
    pending = list_alerts(district, status="pending")
    errors = dict(zip(pending["alert_id"], pending["last_error"], strict=True))
    assert lost[1] in errors[lost[0]] and "cannot be read" in errors[lost[0]]
    assert "SHA-256" in errors[changed[0]]


def test_rerun_of_the_day_sends_nothing_new(district: Settings, smtp: LoopbackSmtp):
    from zwy.pipeline import run_day

    first = run_alerts(DAY, district)
    assert first["sent"] > 0
    n = len(smtp.inbox.messages)
    summary = run_day(DAY, district, alerts=True)  # reload, revalidate, alert
    stage = next(s for s in summary.stages if s["name"] == "send_alerts")
    assert stage["status"] == "success"
    assert stage["counts"]["queued"] == 0 and stage["counts"]["already_alerted"] > 0
    assert len(smtp.inbox.messages) == n


def test_a_failing_stage_alerts_ops(district: Settings, smtp: LoopbackSmtp):
    from zwy.pipeline import run_day

    # Break the load: a registry file the loader needs disappears after parsing began.
    (district.registry / "monitoring_points.csv").rename(district.registry / "mp.bak")
    with pytest.raises(Exception, match="monitoring_points.csv"):
        run_day(DAY, district, alerts=True)
    (district.registry / "mp.bak").rename(district.registry / "monitoring_points.csv")
    ops = smtp.inbox.to(OPS)
    assert len(ops) == 1
    subject = str(ops[0].message["Subject"])
    assert "运行 pipeline" in subject and "CRITICAL" in subject
    text, html, _ = parts(ops[0].message)
    assert "ZWY-OPS-STAGE-FAILED" in text and "parse_stream" in text
    assert "monitoring_points.csv" in text


def test_a_pipeline_event_is_alerted_once_per_recipient(district: Settings, smtp: LoopbackSmtp):
    event = PipelineEvent("ZWY-OPS-NOTHING-ARRIVED", "parse_stream", "exhaust_gas", "no input")
    q1 = queue_alerts(DAY, district, [event])
    q2 = queue_alerts(DAY, district, [event])
    assert q1.queued and not q2.queued and q2.already_queued > 0
    with duckdb.connect(str(district.warehouse), read_only=True) as con:
        to = {
            r[0]
            for r in con.execute(
                "select o.recipient from alert_items i join alert_outbox o using (alert_id) "
                "where i.kind = 'pipeline'"
            ).fetchall()
        }
    assert to == {OPS, STEWARD}  # high severity: ops and the data steward (routing.csv)


def test_critical_breaches_also_go_out_immediately(district: Settings, smtp: LoopbackSmtp):
    run_alerts(DAY, district)
    breaches, _ = findings(district)
    critical = breaches.filter(pl.col("severity") == "critical").height
    immediate = [m for m in smtp.inbox.messages if "即时告警" in str(m.message["Subject"])]
    # Each critical breach once to each compliance officer (routing.csv), nobody else.
    assert len(immediate) == critical * len(OFFICERS)
    assert {r for m in immediate for r in m.rcpt_tos} == OFFICERS
    assert all(
        re.search(r"IMMEDIATE \d{4}-\d{2}-\d{2}: CRITICAL", str(m.message["Subject"]))
        for m in immediate
    )


def test_stage_records_become_pipeline_events():
    from zwy.alerts import events_from_stages

    events = events_from_stages(
        [
            {"name": "parse_stream", "stream": "wastewater", "status": "success"},
            {"name": "parse_stream", "stream": "exhaust_gas", "status": "nothing_arrived"},
            {
                "name": "load_day",
                "stream": None,
                "status": "failed",
                "message": "batch 2024-05-01: accounting failed for 1 file(s): a.log",
            },
            {"name": "validate_day", "stream": None, "status": "failed", "message": "boom"},
        ]
    )
    assert [(e.event_id, e.stage, e.stream) for e in events] == [
        ("ZWY-OPS-NOTHING-ARRIVED", "parse_stream", "exhaust_gas"),
        ("ZWY-OPS-ACCOUNTING", "load_day", None),
        ("ZWY-OPS-STAGE-FAILED", "validate_day", None),
    ]
    assert events[0].message == "no input file arrived for exhaust_gas"


def test_renderers_sort_the_items_themselves_unless_told_they_are_ordered():
    """``ordered=True`` (the outbox sorts once) renders what sorting inside would."""
    from datetime import date

    from zwy.alerts import render
    from zwy.alerts.collect import ITEMS

    rows = [
        ("i3", "dq", "ZWY-DQ-FLATLINE", "warning", "F0002", "exhaust_gas", "MN2", "a21026"),
        ("i1", "breach", "ZWY-LIMIT", "critical", "F0001", "wastewater", "MN1", "w01018"),
        ("i2", "pipeline", "ZWY-OPS-STAGE-FAILED", "critical", None, "dust", None, None),
        ("i4", "breach", "ZWY-LIMIT", "high", "F0001", "wastewater", "MN1", "w21003"),
    ]
    items = pl.DataFrame(
        [
            {
                **dict(zip(list(ITEMS)[:8], r, strict=True)),
                "subject": None,
                "period_local": "2024-05-01 10:00",
                "observed": 12.5,
                "limit_value": 10.0,
                "unit": "mg/L",
                "verified_status": "verified",
                "message": f"row {r[0]}",
            }
            for r in rows
        ],
        schema=ITEMS,
    )
    day, fac, names = date(2024, 5, 1), {"F0001": "甲厂", "F0002": "乙厂"}, {}
    ordered = render.sort_items(items)
    assert ordered["item_id"].to_list() == ["i2", "i1", "i4", "i3"]  # critical pipeline first
    for mode in ("digest", "immediate"):
        subj = render.subject(day, mode, items, fac, names)
        assert subj == render.subject(day, mode, ordered, fac, names, ordered=True)
    assert render.render_text(day, subj, "x", items, fac, names, "L") == render.render_text(
        day, subj, "x", ordered, fac, names, "L", ordered=True
    )
    html = render.render_html(day, subj, "x", items, fac, names, [], "L")
    assert html == render.render_html(day, subj, "x", ordered, fac, names, [], "L", ordered=True)
    assert html.index("row i2") < html.index("row i1") < html.index("row i4") < html.index("row i3")


def test_a_finding_that_late_packets_add_to_a_judged_day_is_alerted_once(
    district: Settings, smtp: LoopbackSmtp
):
    """A day judged again (``also_days``) sends its new finding, and nothing it sent before."""
    from datetime import timedelta

    with duckdb.connect(str(district.warehouse)) as con:
        late = con.execute(
            "select * from breaches where local_day = ? order by breach_id limit 1", [DAY]
        ).pl()
        assert late.height == 1
        # The night of DAY did not have this breach yet: late packets bring it in later.
        con.execute("delete from breaches where breach_id = ?", [late["breach_id"][0]])
    first = run_alerts(DAY, district)
    assert first["sent"] > 0 and first["pending"] == 0
    n = len(smtp.inbox.messages)
    with duckdb.connect(str(district.warehouse)) as con:  # the next night judges DAY again
        before = [r[0] for r in con.execute("select alert_id from alert_outbox").fetchall()]
        con.register("late", late.to_arrow())
        con.execute("insert into breaches by name select * from late")
    nxt = run_alerts(DAY + timedelta(days=1), district, also_days=[DAY])
    assert nxt["queued"] == 0  # the next day itself has no data in this district
    assert nxt["queued_other_days"] > 0 and nxt["pending"] == 0
    new = smtp.inbox.messages[n:]
    assert len(new) == nxt["queued_other_days"]
    for m in new:  # only the late breach, in DAY's emails
        text, _, _ = parts(m.message)
        assert str(DAY) in str(m.message["Subject"])
        assert late["pollutant"][0] in text
    with duckdb.connect(str(district.warehouse), read_only=True) as con:
        items = con.execute(
            "select distinct i.item_id from alert_items i join alert_outbox o using (alert_id) "
            "where o.alert_id not in (select unnest(?))",
            [before],
        ).fetchall()
    assert {r[0] for r in items} == {late["breach_id"][0]}
    again = run_alerts(DAY + timedelta(days=1), district, also_days=[DAY])
    assert again["queued_other_days"] == 0  # alerted once


def test_a_message_serialises_to_the_same_bytes_and_reads_back_whole():
    """Boundaries come from the alert id (no search of the body), and never clash with it."""
    from email import message_from_bytes, policy

    from zwy.alerts.render import Chart, build_message

    png = bytes(range(256)) * 40
    charts = [Chart(cid="c1", png=png, title="a"), Chart(cid="c2", png=png[::-1], title="b")]
    aid = "0123456789abcdef0123456789abcdef"

    def build(text: str) -> bytes:
        return build_message(
            aid, "ehs@example.org", "超标 subject", text, "<p>甲厂</p>", charts
        ).as_bytes()

    first = build("甲厂 w01018 12.5 > 10")
    assert first == build("甲厂 w01018 12.5 > 10")
    assert f"=_zwy_{aid}_0".encode() in first and f"=_zwy_{aid}_1".encode() in first
    # A body that happens to hold the would-be boundary gets the generator's own one.
    clash = build(f"--=_zwy_{aid}_0\nsomething")
    assert f'boundary="=_zwy_{aid}_0"'.encode() not in clash
    for raw in (first, clash):
        msg = message_from_bytes(raw, policy=policy.default)
        assert msg.get_content_type() == "multipart/alternative"
        images = [p for p in msg.walk() if p.get_content_type() == "image/png"]
        assert [p.get_content() for p in images] == [png, png[::-1]]
        text = msg.get_body(preferencelist=("plain",))
        assert text is not None and text.get_content().startswith(("甲厂", "--=_zwy_"))


def test_shared_chart_parts_serialise_as_parts_of_their_own():
    """Emails sharing a chart's part equal emails that each add the chart themselves."""
    from email.message import EmailMessage

    from zwy.alerts.render import Chart, _set_boundaries, build_message, chart_part

    png = bytes(range(256)) * 40
    charts = [
        Chart(cid="chart-a", png=png, title="a"),
        Chart(cid="chart-b", png=png[1:], title="b"),
    ]

    def by_hand(aid: str) -> bytes:
        """The message as ``add_related`` builds it, one new part per chart."""
        msg = EmailMessage()
        msg["To"] = "ehs@example.org"
        msg["Subject"] = "超标 subject"
        msg["Message-ID"] = f"<{aid}@zwy.alerts>"
        msg["X-ZWY-Alert-Id"] = aid
        msg.set_content("甲厂 w01018 12.5 > 10")
        msg.add_alternative("<p>甲厂</p>", subtype="html")
        html_part = msg.get_payload()[1]  # type: ignore[index]
        for c in charts:
            html_part.add_related(
                c.png, maintype="image", subtype="png", cid=f"<{c.cid}>", filename=f"{c.cid}.png"
            )
        _set_boundaries(msg, aid)
        return msg.as_bytes()

    def built(aid: str) -> bytes:
        return build_message(
            aid, "ehs@example.org", "超标 subject", "甲厂 w01018 12.5 > 10", "<p>甲厂</p>", charts
        ).as_bytes()

    first, second = built("a" * 32), built("b" * 32)
    assert chart_part(charts[0]) is chart_part(Chart(cid="chart-a", png=png, title="a"))
    assert first == by_hand("a" * 32) and second == by_hand("b" * 32)
    assert built("a" * 32) == first  # serialising did not change the shared parts


def test_message_bytes_copies_shared_parts_byte_for_byte():
    """``message_bytes`` equals ``as_bytes`` whether a shared part's bytes are new or copied."""
    from email import policy

    from zwy.alerts.render import _SHARED, Chart, build_message, chart_part, message_bytes

    png = bytes(range(256)) * 30
    shared = Chart(cid="chart-shared", png=png, title="shared")
    own = Chart(cid="chart-own", png=png[::-1], title="own")
    chart_part.cache_clear()  # the first message serialises the shared part anew

    def msg(aid: str, charts: list[Chart]) -> bytes:
        m = build_message(aid, "ehs@example.org", "超标 subject", "甲厂", "<p>甲厂</p>", charts)
        got = message_bytes(m)
        assert got == m.as_bytes()
        return got

    first = msg("a" * 32, [shared, own])
    part = chart_part(shared)
    assert len(_SHARED[part]) == 1  # its bytes were kept for the next messages
    second = msg("b" * 32, [own, shared])  # both parts copied, in another order
    assert second != first and second.count(b"Content-ID: <chart-shared>") == 1
    assert msg("c" * 32, []) and msg("a" * 32, [shared, own]) == first
    # Another line end is another setting: serialised anew, not the cached bytes.
    smtp = build_message("d" * 32, "x@example.org", "s", "t", "<p>h</p>", [shared])
    smtp.policy = policy.SMTP
    assert message_bytes(smtp) == smtp.as_bytes() and b"\r\n" in message_bytes(smtp)
    assert len(_SHARED[part]) == 2
