"""A delivered digest rendered by headless chromium: images resolve, no script runs.

The HTML part is written to a folder with its inline images as files (what a mail client
does with ``cid:`` references). ``ZWY_UPDATE_DOCS=1`` copies the screenshot to
``docs/alert-digest.png``. Skipped without /usr/bin/chromium unless ``CI`` is set.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.alerts.conftest import DAY
from tests.alerts.smtp_server import LoopbackSmtp
from zwy.alerts import run_alerts
from zwy.settings import Settings

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    if os.environ.get("CI"):
        pytest.fail("CI is set but /usr/bin/chromium is missing", pytrace=False)
    pytest.skip("/usr/bin/chromium is not installed", allow_module_level=True)

from tests.report.test_report_browser import non_white_share, shoot  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def test_digest_renders_with_its_charts(district: Settings, smtp: LoopbackSmtp, tmp_path: Path):
    run_alerts(DAY, district)
    (msg,) = [
        m.message
        for m in smtp.inbox.to("compliance@bureau.example.org")
        if "即时告警" not in str(m.message["Subject"])
    ]
    page = tmp_path / "digest.html"
    html = msg.get_body(preferencelist=("html",)).get_content()
    n_images = 0
    for part in msg.walk():
        if part.get_content_type() == "image/png":
            cid = part["Content-ID"].strip("<>")
            (tmp_path / f"{cid}.png").write_bytes(part.get_content())
            html = html.replace(f"cid:{cid}", f"{cid}.png")
            n_images += 1
    assert n_images and "cid:" not in html
    page.write_text(html, encoding="utf-8")
    shot, console = shoot(page, tmp_path, "1100,1500")
    assert console == []
    assert non_white_share(shot) > 0.03  # table, charts and text, not a blank page
    if os.environ.get("ZWY_UPDATE_DOCS"):
        shutil.copy(shot, REPO / "docs" / "alert-digest.png")
