"""Render one alert email: a subject to triage from, HTML with a table and charts, plain text.

The message is ``multipart/alternative``: a ``text/plain`` part, then a
``multipart/related`` part holding the HTML and its charts as inline PNGs (``cid:``), the
layout mail clients show best. Labels are Chinese and English. Every value that comes from
data (facility names, messages, codes) is HTML-escaped in the HTML part and stripped of
control characters in the subject, so a facility named ``<script>`` or
``'; DROP TABLE`` arrives harmless and readable.
"""

from __future__ import annotations

import base64
import functools
import html
import io
import re
import weakref
from dataclasses import dataclass
from datetime import date
from email.generator import BytesGenerator
from email.message import EmailMessage, Message
from email.policy import Policy
from typing import Any, BinaryIO

import polars as pl

from zwy.alerts.catalog import SEVERITY_RANK

KIND_LABEL = {
    "breach": ("超标", "breach"),
    "dq": ("数据质量", "data quality"),
    "pipeline": ("运行", "pipeline"),
}
SEVERITY_LABEL = {"critical": "严重", "high": "高", "medium": "中", "low": "低"}
SEVERITY_COLOUR = {"critical": "#c62828", "high": "#b26a00", "medium": "#1f5fa8", "low": "#555"}
COLUMNS = (
    ("严重程度", "Severity"),
    ("类别", "Kind"),
    ("企业", "Facility"),
    ("控制项", "Control"),
    ("设备 / 污染物", "Device / pollutant"),
    ("时段（北京时间）", "Period (Beijing)"),
    ("观测值", "Observed"),
    ("限值 / 阈值", "Limit / threshold"),
    ("说明", "Details"),
)
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]+")
MAX_ROWS = 200  # rows shown in one email; the rest are counted and found in the report


@dataclass(frozen=True)
class Chart:
    """One inline chart: a breached series against its limit."""

    cid: str  # Content-ID without the angle brackets
    png: bytes
    title: str


def clean(text: Any) -> str:
    """Return ``text`` as one line without control characters (for subjects and plain text)."""
    return _CONTROL_CHARS.sub(" ", "" if text is None else str(text)).strip()


def _e(value: Any) -> str:
    return html.escape(clean(value), quote=True)


def _num(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def sort_items(items: pl.DataFrame) -> pl.DataFrame:
    """Worst first: severity, then pipeline before breaches before dq, then facility."""
    kind_rank = {"pipeline": 0, "breach": 1, "dq": 2}
    return items.sort(
        pl.col("severity").replace_strict(SEVERITY_RANK, default=9, return_dtype=pl.Int64),
        pl.col("kind").replace_strict(kind_rank, default=9, return_dtype=pl.Int64),
        pl.col("facility_id"),
        pl.col("mn"),
        pl.col("pollutant"),
        pl.col("period_local"),
        pl.col("item_id"),
        nulls_last=True,
    )


def _what(r: dict[str, Any], facility: str, names: dict[str, tuple[str, str]]) -> str:
    """Describe an item in one line for subjects: who, what, how much."""
    if r["kind"] == "breach":
        return clean(
            f"{facility} {r['pollutant']} {_num(r['observed'])} > {_num(r['limit_value'])} "
            f"{r['unit'] or ''}"
        )
    zh, en = names.get(r["control_id"], (r["control_id"], ""))
    where = facility or r["stream"] or ""
    return clean(f"{zh} {en} {where}")


def subject(
    day: date,
    mode: str,
    items: pl.DataFrame,
    facility_names: dict[str, str],
    names: dict[str, tuple[str, str]],
    *,
    ordered: bool = False,
) -> str:
    """Subject line: product, day, counts per kind and the worst item.

    ``ordered``: the items are already in :func:`sort_items` order (not sorted again).
    """
    items = items if ordered else sort_items(items)
    worst = items.row(0, named=True)
    facility = facility_names.get(worst["facility_id"] or "", "")
    sev = str(worst["severity"] or "").upper()
    what = _what(worst, facility, names)
    if mode == "immediate":
        text = f"[无废亦庄 ZWY] 即时告警 IMMEDIATE {day}: {sev} {what}"
    else:
        counts = items.group_by("kind").len()
        n = dict(zip(counts["kind"], counts["len"], strict=True))
        parts = [
            f"{n[k]} {KIND_LABEL[k][0]} {KIND_LABEL[k][1]}"
            for k in ("breach", "dq", "pipeline")
            if n.get(k)
        ]
        text = f"[无废亦庄 ZWY] {day}: {' · '.join(parts)} | 最严重 worst: {sev} {what}"
    text = clean(text)
    return text if len(text) <= 200 else text[:199] + "…"


def _row_html(r: dict[str, Any], facility: str, names: dict[str, tuple[str, str]]) -> str:
    zh, en = names.get(r["control_id"], (r["control_id"] or "", ""))
    sev = r["severity"] or ""
    colour = SEVERITY_COLOUR.get(sev, "#555")
    unverified = (
        ' <b style="color:#b26a00">UNVERIFIED 未核实</b>'
        if (r["verified_status"] or "").lower() == "unverified"
        else ""
    )
    kind_zh, kind_en = KIND_LABEL.get(r["kind"], (r["kind"], r["kind"]))
    device = (
        " · ".join(_e(x) for x in (r["mn"], r["pollutant"]) if x)
        or _e(r.get("subject"))
        or _e(r["stream"])
    )
    limit = _num(r["limit_value"])
    return (
        "<tr>"
        f'<td style="color:{colour};font-weight:bold">{_e(SEVERITY_LABEL.get(sev, sev))} {_e(sev)}</td>'
        f"<td>{_e(kind_zh)}<br><small>{_e(kind_en)}</small></td>"
        f"<td>{_e(facility or r['facility_id'] or '—')}</td>"
        f"<td>{_e(zh)}<br><small>{_e(en)} ({_e(r['control_id'])})</small></td>"
        f"<td>{device}</td>"
        f"<td>{_e(r['period_local'] or '')}</td>"
        f'<td style="text-align:right">{_e(_num(r["observed"]))} {_e(r["unit"] or "")}</td>'
        f'<td style="text-align:right">{_e(limit)}{unverified}</td>'
        f"<td><small>{_e(r['message'] or '')}</small></td>"
        "</tr>"
    )


def render_html(
    day: date,
    title: str,
    recipient_name: str,
    items: pl.DataFrame,
    facility_names: dict[str, str],
    names: dict[str, tuple[str, str]],
    charts: list[Chart],
    report_link: str,
    *,
    ordered: bool = False,
) -> str:
    """Return the HTML part: summary, the table of items, the charts, the report link.

    ``ordered``: the items are already in :func:`sort_items` order (not sorted again).
    """
    items = items if ordered else sort_items(items)
    shown = items.head(MAX_ROWS)
    rows = "".join(
        _row_html(r, facility_names.get(r["facility_id"] or "", ""), names)
        for r in shown.iter_rows(named=True)
    )
    more = (
        f"<p>另有 {items.height - shown.height} 条见日报 / "
        f"{items.height - shown.height} more in the daily report.</p>"
        if items.height > shown.height
        else ""
    )
    head = "".join(f"<th>{_e(zh)}<br><small>{_e(en)}</small></th>" for zh, en in COLUMNS)
    figs = "".join(
        f'<figure style="margin:12px 0"><img src="cid:{_e(c.cid)}" alt="{_e(c.title)}" '
        f'width="720" style="max-width:100%"><figcaption>{_e(c.title)}</figcaption></figure>'
        for c in charts
    )
    link = _e(report_link)
    return f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{_e(title)}</title></head>
<body style="font-family:'Noto Sans CJK SC','WenQuanYi Zen Hei','Microsoft YaHei',Arial,sans-serif;color:#222;max-width:980px">
<h2 style="margin-bottom:4px">无废亦庄 · 监测告警 / Zero-waste Yizhuang monitoring alerts</h2>
<p style="margin-top:0">{_e(day.isoformat())} · {_e(recipient_name)}</p>
<p><b>{_e(title)}</b></p>
<table style="border-collapse:collapse;font-size:13px" border="1" cellpadding="4">
<thead style="background:#f0f0f0"><tr>{head}</tr></thead>
<tbody>{rows}</tbody></table>
{more}
{figs}
<p>日报 / Daily report: <a href="{link}">{link}</a></p>
<p style="color:#777;font-size:12px">限值与规则的法律依据见日报；标为 UNVERIFIED 的限值或参数尚未核实。
Legal bases are in the daily report; limits or parameters marked UNVERIFIED are not verified.</p>
</body></html>
"""


def render_text(
    day: date,
    title: str,
    recipient_name: str,
    items: pl.DataFrame,
    facility_names: dict[str, str],
    names: dict[str, tuple[str, str]],
    report_link: str,
    *,
    ordered: bool = False,
) -> str:
    """Return the plain-text part: the same items, one block each.

    ``ordered``: the items are already in :func:`sort_items` order (not sorted again).
    """
    items = items if ordered else sort_items(items)
    lines = [
        "无废亦庄 · 监测告警 / Zero-waste Yizhuang monitoring alerts",
        f"{day.isoformat()} · {clean(recipient_name)}",
        clean(title),
        "",
    ]
    for r in items.head(MAX_ROWS).iter_rows(named=True):
        zh, en = names.get(r["control_id"], (r["control_id"] or "", ""))
        facility = facility_names.get(r["facility_id"] or "", r["facility_id"] or "")
        unverified = " (UNVERIFIED 未核实)" if (r["verified_status"] or "") == "unverified" else ""
        lines.append(
            f"- [{(r['severity'] or '').upper()}] {clean(zh)} / {clean(en)} ({r['control_id']})"
        )
        detail = " · ".join(
            clean(x)
            for x in (
                facility,
                r["mn"],
                r["pollutant"],
                r.get("subject"),
                r["period_local"],
                f"{_num(r['observed'])} {r['unit'] or ''}" if r["observed"] is not None else None,
                f"limit {_num(r['limit_value'])}{unverified}"
                if r["limit_value"] is not None
                else None,
            )
            if x
        )
        if detail:
            lines.append(f"  {detail}")
        if r["message"]:
            lines.append(f"  {clean(r['message'])}")
    if items.height > MAX_ROWS:
        lines.append(f"... {items.height - MAX_ROWS} more in the daily report")
    lines += ["", f"日报 / Daily report: {report_link}", ""]
    return "\n".join(lines)


def build_message(
    alert_id: str,
    recipient: str,
    subject_line: str,
    text: str,
    html_body: str,
    charts: list[Chart],
) -> EmailMessage:
    """Assemble the MIME message (no From and Date: those are set when it is sent)."""
    msg = EmailMessage()
    msg["To"] = recipient
    msg["Subject"] = subject_line
    msg["Message-ID"] = f"<{alert_id}@zwy.alerts>"
    msg["X-ZWY-Alert-Id"] = alert_id
    msg.set_content(text)
    msg.add_alternative(html_body, subtype="html")
    html_part = msg.get_payload()[1]  # type: ignore[index]
    assert isinstance(html_part, EmailMessage)
    if charts:
        html_part.make_related()
        for c in charts:
            html_part.attach(chart_part(c))
    _set_boundaries(msg, alert_id)
    return msg


@functools.lru_cache(maxsize=64)
def chart_part(chart: Chart) -> EmailMessage:
    """Return the inline image part of ``chart``, as ``add_related`` makes it, made once.

    A day's charts go to many emails (the facility's, each officer's, the bureau's
    digest): encoding a chart's part (base64, headers) was a third of building an email
    with charts. The part is shared by the messages that carry it and never changed after
    it is made (serialising a message does not change its leaves).
    """
    part = EmailMessage()
    part.set_content(
        chart.png,
        maintype="image",
        subtype="png",
        cid=f"<{chart.cid}>",
        filename=f"{chart.cid}.png",
    )
    _SHARED[part] = {}
    return part


#: Parts shared by many messages and never changed after they are made (the charts'),
#: each with its serialised bytes per generator setting (see :func:`message_bytes`).
_SHARED: weakref.WeakKeyDictionary[Message, dict[str, bytes]] = weakref.WeakKeyDictionary()


class _SharedPartsGenerator(BytesGenerator):
    """A ``BytesGenerator`` that serialises each shared part once and copies its bytes after.

    A chart's part goes into every email that carries it, and serialising it (its headers
    folded through the header parser, its base64 lines written) was nine tenths of
    serialising an email with six charts (2.3 of 2.6 ms). The bytes depend on the part and
    on the generator's settings only, so they are kept per settings.
    """

    def __init__(
        self,
        outfp: BinaryIO,
        mangle_from_: bool | None = None,
        maxheaderlen: int | None = None,
        *,
        policy: Policy | None = None,
    ) -> None:
        # ``clone`` calls the class with these arguments, for every part of a message.
        super().__init__(outfp, mangle_from_, maxheaderlen, policy=policy)
        self._out = outfp
        self._settings = (mangle_from_, maxheaderlen)

    def flatten(self, msg: Message, unixfrom: bool = False, linesep: str | None = None) -> None:
        done = _SHARED.get(msg)
        if done is None or unixfrom:
            super().flatten(msg, unixfrom=unixfrom, linesep=linesep)
            return
        policy = msg.policy if self.policy is None else self.policy
        if linesep is not None:
            policy = policy.clone(linesep=linesep)
        # The policy's repr lists every setting it has (line ends, line length, encoding).
        key = f"{policy!r}|{self._settings!r}"
        flat = done.get(key)
        if flat is None:
            buf = io.BytesIO()
            mangle, maxlen = self._settings
            plain = BytesGenerator(buf, mangle, maxlen, policy=self.policy)
            plain.flatten(msg, unixfrom=False, linesep=linesep)
            flat = done[key] = buf.getvalue()
        self._out.write(flat)


def message_bytes(msg: EmailMessage) -> bytes:
    """Return ``msg.as_bytes()``, the same bytes, copying shared parts' bytes (:func:`chart_part`)."""
    buf = io.BytesIO()
    _SharedPartsGenerator(buf, mangle_from_=False, policy=msg.policy).flatten(msg)
    return buf.getvalue()


def _set_boundaries(msg: EmailMessage, alert_id: str) -> None:
    """Give each multipart of ``msg`` a boundary made from the alert's id.

    Left unset, the generator draws a random boundary and searches the whole encoded
    body for it with a multi-line regular expression, once per multipart: more than half
    of serialising an alert with charts (5.7 of 10 ms). ``=_`` cannot occur in base64 or
    quoted-printable text, the alert id is unique, and the boundary is checked against
    every leaf's payload here (a substring test, cheap); a clash, never expected, leaves
    that boundary to the generator. The same alert also serialises to the same bytes.
    """
    leaves = [p.get_payload() for p in msg.walk() if not p.is_multipart()]
    texts = [t if isinstance(t, str) else "" for t in leaves]
    for depth, part in enumerate(p for p in msg.walk() if p.is_multipart()):
        boundary = f"=_zwy_{alert_id}_{depth}"
        if not any(boundary in t for t in texts):
            part.set_boundary(boundary)


def chart_png(b64: str) -> bytes:
    """Decode a base64 PNG as :func:`zwy.charts.draw` returns it."""
    return base64.b64decode(b64)
