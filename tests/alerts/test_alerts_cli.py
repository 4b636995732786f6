"""``zwy alerts send`` and ``zwy alerts list`` on a validated day, against loopback SMTP."""

from __future__ import annotations

from typer.testing import CliRunner

from tests.alerts.conftest import DAY
from tests.alerts.smtp_server import LoopbackSmtp
from zwy.cli import app
from zwy.settings import Settings

runner = CliRunner()


def args(settings: Settings) -> list[str]:
    return ["--registry", str(settings.registry), "--data-dir", str(settings.data_dir)]


def test_send_when_down_exits_3_then_list_and_send_again(district: Settings, smtp: LoopbackSmtp):
    smtp.stop()
    res = runner.invoke(app, ["alerts", "send", "--day", str(DAY), *args(district)])
    assert res.exit_code == 3, res.output
    assert "stay pending" in res.output and "ConnectionRefused" in res.output
    listed = runner.invoke(
        app, ["alerts", "list", "--status", "pending", "--data-dir", str(district.data_dir)]
    )
    assert listed.exit_code == 0 and "pending" in listed.output
    assert "compliance@bureau.example.org" in listed.output
    smtp.start()
    res = runner.invoke(app, ["alerts", "send", "--day", str(DAY), *args(district)])
    assert res.exit_code == 0, res.output
    assert smtp.inbox.messages
    none_left = runner.invoke(
        app, ["alerts", "list", "--status", "pending", "--data-dir", str(district.data_dir)]
    )
    assert "no alerts" in none_left.output


def test_bad_day_is_a_clear_error(district: Settings):
    res = runner.invoke(app, ["alerts", "send", "--day", "May 1st", *args(district)])
    assert res.exit_code == 2 and "is not a day like 2024-05-01" in res.output
