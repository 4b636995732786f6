"""A real SMTP server on loopback (aiosmtpd) and a validated one-day sample district.

The district's first facility is renamed to a hostile name (HTML and SQL injection) before
the run, so every test sees it travel through the warehouse into the emails.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import polars as pl
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from zwy.pipeline import run_day
from zwy.sample.generate import generate_district
from zwy.settings import AlertSettings, Settings

DAY = date(2024, 5, 1)
HOSTILE = "<script>alert('x')</script>'; DROP TABLE alert_outbox; -- 佳讯"


@dataclass
class Received:
    """One message the server accepted."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class Inbox:
    """What the loopback server received, in order."""

    messages: list[Received] = field(default_factory=list)

    def to(self, address: str) -> list[Received]:
        return [m for m in self.messages if address in m.rcpt_tos]


class _Handler:
    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        raw = envelope.original_content or envelope.content
        msg = message_from_bytes(bytes(raw), policy=policy.default)  # type: ignore[arg-type]
        self.inbox.messages.append(
            Received(str(envelope.mail_from), list(envelope.rcpt_tos), msg)  # type: ignore[arg-type]
        )
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LoopbackSmtp:
    """Start and stop a real SMTP server on 127.0.0.1 (stop = "the mail server is down")."""

    def __init__(self) -> None:
        self.port = free_port()
        self.inbox = Inbox()
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(
            _Handler(self.inbox), hostname="127.0.0.1", port=self.port, decode_data=False
        )
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def connection_env(self) -> str:
        return json.dumps(
            {
                "conn_type": "smtp",
                "host": "127.0.0.1",
                "port": self.port,
                "extra": {
                    "disable_ssl": True,
                    "disable_tls": True,
                    "from_email": "alerts@zwy.example.org",
                    "timeout": 5,
                    "retry_limit": 0,
                },
            }
        )


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackSmtp]:
    server = LoopbackSmtp()
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", server.connection_env())
    server.start()
    yield server
    server.stop()


def make_district(root: Path) -> Settings:
    """Generate the test-scale district with a hostile facility name; return its settings."""
    generate_district(root / "sample", [DAY], scale="test")
    registry = root / "sample" / "registry"
    fac = pl.read_csv(registry / "facilities.csv", infer_schema=False)
    fac = fac.with_columns(
        pl.when(pl.col("facility_id") == "F0001").then(pl.lit(HOSTILE)).otherwise(pl.col("name"))
        .alias("name")
    )
    fac.write_csv(registry / "facilities.csv")
    return Settings(
        data_dir=root / "data",
        inbox_dir=root / "sample" / "inbox",
        registry_dir=registry,
        alerts=AlertSettings(report_base_url="https://zwy.example.org/reports"),
    )


@pytest.fixture(scope="session")
def validated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One validated day (no alerts yet), copied by each test that changes the warehouse."""
    root = tmp_path_factory.mktemp("alerts")
    settings = make_district(root)
    run_day(DAY, settings)
    return root


@pytest.fixture
def district(validated_template: Path, tmp_path: Path) -> Settings:
    """A private copy of the validated district: each test starts with an empty outbox."""
    import shutil

    root = tmp_path / "d"
    shutil.copytree(validated_template, root)
    return Settings(
        data_dir=root / "data",
        inbox_dir=root / "sample" / "inbox",
        registry_dir=root / "sample" / "registry",
        alerts=AlertSettings(report_base_url="https://zwy.example.org/reports"),
    )
