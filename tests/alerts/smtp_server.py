"""A real SMTP server on loopback (aiosmtpd), started and stopped by the tests."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


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
