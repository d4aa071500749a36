"""Alerts by email over SMTP: STARTTLS (default), implicit TLS or plain; optional AUTH.

Every message has a plain-text part and an HTML alternative. Credentials are sent only over
TLS unless ``allow_plaintext_auth=True`` (a local relay, say); the password never appears in
``repr`` or errors.
"""

from __future__ import annotations

import html
import smtplib
import ssl
from collections.abc import Iterable, Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from costwarden.alerts.channel import (
    NamedChannel,
    digest_title,
)
from costwarden.errors import AlertDeliveryError, ConfigurationError
from costwarden.money import format_compared
from costwarden.records import Alert, AlertLevel

SECURITY = ("starttls", "ssl", "none")
_DEFAULT_PORT = {"starttls": 587, "ssl": 465, "none": 25}
_COLOUR = {
    AlertLevel.INFO: "#2563eb",
    AlertLevel.WARNING: "#d97706",
    AlertLevel.CRITICAL: "#dc2626",
}


def _figures(alert: Alert) -> str:
    parts = [f"scope {alert.scope}", f"period {alert.period}", alert.kind.replace("_", " ")]
    if alert.limit_nanos is not None:
        spent, limit = format_compared(alert.spent_nanos, alert.limit_nanos)
        parts.append(f"{spent} of {limit}")
    return " · ".join(parts)


def email_bodies(alerts: Sequence[Alert]) -> tuple[str, str]:
    """(plain text, HTML) for one alert or a digest."""
    lines = [f"costwarden: {digest_title(alerts)}", ""]
    rows = []
    for a in alerts:
        lines += [f"[{a.level.value.upper()}] {a.message}", f"    {_figures(a)}", ""]
        rows.append(
            f'<tr><td style="color:{_COLOUR[a.level]};font-weight:bold;padding:4px 8px">'
            f'{a.level.value.upper()}</td><td style="padding:4px 8px">{html.escape(a.message)}'
            f'<br><small style="color:#555">{html.escape(_figures(a))}</small></td></tr>'
        )
    lines.append("Delivery history: costwarden alerts")
    page = (
        '<!doctype html><html><body style="font-family:sans-serif">'
        f"<h2>costwarden: {html.escape(digest_title(alerts))}</h2>"
        f"<table>{''.join(rows)}</table>"
        '<p style="color:#555">Delivery history: <code>costwarden alerts</code></p></body></html>'
    )
    return "\n".join(lines), page


class EmailChannel(NamedChannel):
    """Sends alert mail through an SMTP server."""

    def __init__(
        self,
        host: str,
        port: int | None = None,
        *,
        sender: str,
        recipients: Sequence[str] | str,
        username: str | None = None,
        password: str | None = None,
        security: str = "starttls",
        name: str = "email",
        min_level: AlertLevel | str = AlertLevel.INFO,
        scopes: Iterable[str] | None = None,
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
        subject_prefix: str = "[costwarden]",
        allow_plaintext_auth: bool = False,
    ) -> None:
        if not isinstance(host, str) or not host:
            raise ConfigurationError("EmailChannel needs an SMTP host")
        if security not in SECURITY:
            raise ConfigurationError(f"email security must be one of {SECURITY}, got {security!r}")
        to = [recipients] if isinstance(recipients, str) else list(recipients)
        if not to or not all(isinstance(r, str) and "@" in r for r in to):
            raise ConfigurationError(f"email recipients must be addresses, got {recipients!r}")
        if not isinstance(sender, str) or "@" not in sender:
            raise ConfigurationError(f"email sender must be an address, got {sender!r}")
        if (username is None) != (password is None):
            raise ConfigurationError("give both username and password for SMTP AUTH, or neither")
        if username is not None and security == "none" and not allow_plaintext_auth:
            raise ConfigurationError(
                "refusing to send SMTP credentials without TLS; use security='starttls' or "
                "'ssl' (or allow_plaintext_auth=True for a trusted local relay)"
            )
        self.host = host
        self.port = int(port) if port is not None else _DEFAULT_PORT[security]
        self.sender, self.recipients = sender, to
        self.username, self._password = username, password
        self.security = security
        super().__init__(name, min_level, scopes)
        self.timeout = float(timeout)
        self.ssl_context = ssl_context
        self.subject_prefix = subject_prefix

    def message(self, alerts: Sequence[Alert]) -> EmailMessage:
        """Build the MIME message for one alert or a digest: subject with the worst level,
        plain-text and HTML bodies.
        """
        msg = EmailMessage()
        title = alerts[0].message if len(alerts) == 1 else digest_title(alerts)
        level = max((a.level for a in alerts), key=lambda lv: lv.rank)
        msg["Subject"] = f"{self.subject_prefix} {level.value.upper()}: {title}"[:200]
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.recipients)
        msg["Date"] = formatdate(localtime=False, usegmt=True)
        msg["Message-ID"] = make_msgid(domain=self.sender.rpartition("@")[2] or None)
        text, page = email_bodies(alerts)
        msg.set_content(text)
        msg.add_alternative(page, subtype="html")
        return msg

    def send(self, alerts: Sequence[Alert]) -> None:
        """Deliver ``alerts`` as one email over SMTP (plain, STARTTLS or SSL, with login if
        configured); any SMTP or socket failure raises AlertDeliveryError so the dispatcher
        retries.
        """
        msg = self.message(alerts)
        context = self.ssl_context or ssl.create_default_context()
        where = f"SMTP {self.host}:{self.port}"
        try:
            smtp: smtplib.SMTP
            if self.security == "ssl":
                smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with smtp:
                if self.security == "starttls":
                    smtp.starttls(context=context)
                if self.username is not None and self._password is not None:
                    smtp.login(self.username, self._password)
                smtp.send_message(msg)
        except smtplib.SMTPAuthenticationError as exc:
            raise AlertDeliveryError(
                f"{where} rejected the login for {self.username!r} ({exc.smtp_code})"
            ) from None
        except smtplib.SMTPException as exc:
            raise AlertDeliveryError(f"{where} failed: {type(exc).__name__}: {exc}") from None
        except TimeoutError:
            raise AlertDeliveryError(f"{where} did not answer within {self.timeout:g} s") from None
        except (OSError, ssl.SSLError) as exc:
            raise AlertDeliveryError(f"cannot reach {where}: {exc}") from None

    def __repr__(self) -> str:
        return (
            f"EmailChannel(name={self.name!r}, host={self.host!r}, port={self.port}, "
            f"security={self.security!r}, to={self.recipients!r}, password=***)"
        )
