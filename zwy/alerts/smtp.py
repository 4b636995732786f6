"""Deliver alerts through Airflow's SMTP provider and its ``smtp_default`` connection.

The connection (host, port, login, password; extras ``disable_ssl``, ``disable_tls``,
``from_email``, ``timeout``, ``retry_limit``, ``ssl_context``) is resolved by Airflow: in
a task from the metadata DB or a secrets backend, on the command line from the
``AIRFLOW_CONN_SMTP_DEFAULT`` environment variable. STARTTLS, SSL and authentication are
therefore configuration (docs/alerts.md), never code.

:class:`SmtpHook` opens, secures and authenticates the session. It can only build
HTML-only messages itself, while an alert is ``multipart/alternative`` (plain text + HTML
with inline charts): the already built message goes over the hook's authenticated client.
"""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

from zwy.errors import ZwyError


class SmtpUnavailable(ZwyError):
    """The SMTP connection is not configured or the server cannot be reached."""


class AirflowSmtpSender:
    """A :class:`zwy.alerts.outbox.Sender` over ``SmtpHook(smtp_conn_id)``."""

    def __init__(self, conn_id: str = "smtp_default", from_email: str | None = None) -> None:
        self.conn_id = conn_id
        self._from = from_email
        self._hook: Any = None

    def __enter__(self) -> AirflowSmtpSender:
        # Airflow logs a lot at import; only the alert path pays for it.
        from airflow.providers.smtp.hooks.smtp import SmtpHook

        hook = SmtpHook(smtp_conn_id=self.conn_id)
        try:
            hook.get_conn()
        except Exception as exc:
            raise SmtpUnavailable(
                f"SMTP connection {self.conn_id!r}: {type(exc).__name__}: {exc} "
                "(set AIRFLOW_CONN_SMTP_DEFAULT or the Airflow connection; see docs/alerts.md)"
            ) from exc
        self._hook = hook
        return self

    def __exit__(self, *exc: object) -> None:
        if self._hook is not None:
            self._hook.__exit__(None, None, None)
            self._hook = None

    @property
    def from_email(self) -> str:
        """The configured sender, else the connection's ``from_email`` extra."""
        found = self._from or (self._hook.from_email if self._hook else None)
        return found or "zwy-alerts@localhost"

    def send(self, msg: EmailMessage) -> None:
        """Send one message over the hook's session; raises the server's refusal."""
        client = self._hook._smtp_client  # the hook's authenticated smtplib client
        client.send_message(msg, from_addr=self.from_email, to_addrs=[str(msg["To"])])
