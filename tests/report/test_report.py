"""The daily compliance report: content, self-containment, UNVERIFIED marking, charts."""

from __future__ import annotations

import base64
import html
import io
import json
import re
import shutil
from datetime import date

import duckdb
import pytest
from PIL import Image

from zwy.errors import ZwyError
from zwy.report import build_report, report_path
from zwy.settings import Settings

DAY = date(2024, 5, 1)  # the day tests/report/conftest.py generates


def breaches(settings: Settings) -> list[dict]:
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        return con.execute("select * from breaches").pl().to_dicts()


def test_report_is_one_page_per_day_where_the_settings_say(reported):
    settings, path, _ = reported
    assert path == report_path(DAY, settings)
    assert path.parent == settings.reports / DAY.isoformat()
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_page_is_self_contained_and_has_no_script(reported):
    _, path, _ = reported
    page = path.read_text(encoding="utf-8")
    assert "<script" not in page.lower()
    for attr in re.findall(r'(?:src|href)="([^"]*)"', page):
        assert attr.startswith("data:"), attr
    assert "http://" not in page and "https://" not in page


def test_status_at_a_glance_then_each_facility_in_breach_with_a_chart(reported):
    settings, path, summary = reported
    page = path.read_text(encoding="utf-8")
    assert page.index('id="status"') < page.index('class="facility"') < page.index('id="dq"')
    assert "超标 BREACH" in page
    rows = breaches(settings)
    facilities = {r["facility_id"] for r in rows}
    # F0001 (water, gas, waste) and the two construction sites (dust)
    assert facilities == set(summary["facilities_in_breach"]) == {"F0001", "S001", "S002"}
    for fid in facilities:
        assert f'id="facility-{fid}"' in page
    # One chart per device series in breach; solid-waste breaches (no series) are tables.
    groups = {(r["mn"], r["pollutant"], r["control_id"]) for r in rows if r["mn"]}
    charts = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    # 3 device series (COD, NH3-N, NOx) + 2 dust sites (PM10 against the station)
    assert len(charts) == len(groups) == 5
    assert "固体废物 Solid waste" in page
    for r in rows:
        if r["subject"]:
            assert html.escape(r["subject"]) in page
    for chart in charts:
        img = Image.open(io.BytesIO(base64.b64decode(chart))).convert("RGB")
        assert img.size[0] >= 800
        pixels = list(img.getdata())
        non_white = sum(1 for p in pixels if min(p) < 235) / len(pixels)
        assert non_white > 0.03
        # the red limit line is drawn
        assert sum(1 for r, g, b in pixels if r > 170 and g < 80 and b < 80) > 200


def test_every_breach_shows_its_control_basis_and_evidence(reported):
    settings, path, _ = reported
    page = path.read_text(encoding="utf-8")
    for r in breaches(settings):
        assert r["limit_id"] in page
        assert r["control_id"] in page
        for source in json.loads(r["evidence"])["sources"]:
            assert source["file"] in page and f"lines {source['lines']}" in page
    assert "DB11/307-2013 Table 3" in page and "DB11/139-2015 new boilers" in page


def test_unverified_is_marked_wherever_it_is_used(reported):
    settings, path, _ = reported
    page = path.read_text(encoding="utf-8")
    nox = page[page.index("ZWY-LIM-G-HOUR") :]
    assert "UNVERIFIED" in nox[: nox.index("</table>")]
    n = sum(1 for r in breaches(settings) if r["verified_status"] == "unverified")
    assert n == 4  # 3 O2-corrected NOx hours + the receiver-licence article (solid waste)
    assert f"{n} UNVERIFIED" in page
    unverified = page[page.index('id="unverified"') :]
    assert "reference O2 3.5 %" in unverified and "BRIEF.md §3.4" in unverified
    cod = page[page.index("w01018 — ") :]
    cod = cod[: cod.index("</table>")]
    assert "UNVERIFIED" not in cod and "verified 已核实" in cod


def test_dq_issues_are_listed_worst_first(reported):
    _, path, summary = reported
    page = path.read_text(encoding="utf-8")
    dq = page[page.index('id="dq"') : page.index('id="unverified"')]
    assert dq.count("<tr>") - 1 == summary["dq_issues"]
    sev = re.findall(r'<span class="sev (critical|high|medium|low)">', dq)
    order = {"critical": 0, "high": 1, "medium": 2, "low": 3}
    assert [order[s] for s in sev] == sorted(order[s] for s in sev)
    for cid in ("ZWY-DQ-FLATLINE", "ZWY-DQ-OFFLINE", "ZWY-DQ-UNKNOWN-MN", "ZWY-DQ-T-FLAG"):
        assert cid in dq


def test_a_day_that_was_never_validated_says_so(reported):
    settings, _, _ = reported
    path = build_report(date(2024, 5, 9), settings)
    page = path.read_text(encoding="utf-8")
    assert "NOT VALIDATED" in page and "zwy validate --day 2024-05-09" in page


def test_a_warehouse_without_results_tables_is_a_clear_error(tmp_path):
    # A warehouse of an older zwy, migrated before the results tables were migration 0010
    # (the report opens it read-only, so it cannot add them itself).
    from warehouse.db import MIGRATIONS_DIR, connect, migrate

    older = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, older)
    (older / "0010_controls.sql").unlink()
    settings = Settings(data_dir=tmp_path)
    with connect(settings.warehouse) as con:
        migrate(con, older)
    with pytest.raises(ZwyError, match="zwy validate --day 2024-05-01"):
        build_report(DAY, settings)
