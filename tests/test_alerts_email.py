"""EmailChannel against a real aiosmtpd server on 127.0.0.1: STARTTLS with AUTH, implicit
TLS, plain relay; the mail is parsed and checked; failures are retried and never leak."""

from __future__ import annotations

import email
import email.policy
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from costwarden.alerts import AlertDispatcher, EmailChannel
from costwarden.errors import AlertDeliveryError, ConfigurationError
from costwarden.ledger import MemoryLedger
from costwarden.records import Alert, AlertLevel

USER, PASSWORD = "alerts@example.com", "correct horse battery staple"


@dataclass
class Inbox:
    messages: list[tuple[str, list[str], EmailMessage]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), msg))
        return "250 OK"


def _authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and data == (USER.encode(), PASSWORD.encode())
    return AuthResult(success=ok, handled=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a throwaway TLS certificate for the SMTP server")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def _server_ctx(certs: tuple[Path, Path]) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(*certs)
    return ctx


@pytest.fixture
def starttls_server(certs: tuple[Path, Path]) -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = _free_port()
    ctl = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=_server_ctx(certs),
        require_starttls=True,
        authenticator=_authenticator,
        auth_required=True,
    )
    ctl.start()
    yield inbox, port
    ctl.stop()


def alerts(n: int = 1) -> list[Alert]:
    return [
        Alert(
            AlertLevel.CRITICAL if i == 0 else AlertLevel.WARNING,
            f"Daily budget 100% used: $5.00 of $5.00 (team:t{i}) <script>",
            f"team:t{i}",
            "daily",
            "threshold",
            1.0,
            5_000_000_000,
            5_000_000_000,
            dedup_key=f"k{i}",
        )
        for i in range(n)
    ]


def _client_ctx(certs: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certs[0]))


def test_starttls_auth_mail_has_text_and_html(
    starttls_server: tuple[Inbox, int], certs: tuple[Path, Path]
) -> None:
    inbox, port = starttls_server
    ch = EmailChannel(
        "127.0.0.1",
        port,
        sender=USER,
        recipients=["finops@example.com", "cto@example.com"],
        username=USER,
        password=PASSWORD,
        ssl_context=_client_ctx(certs),
    )
    ch.send(alerts(1))
    [(sender, rcpts, msg)] = inbox.messages
    assert sender == USER and rcpts == ["finops@example.com", "cto@example.com"]
    assert msg["Subject"].startswith("[costwarden] CRITICAL: Daily budget 100% used")
    assert msg.get_content_type() == "multipart/alternative"
    text = msg.get_body(("plain",))
    page = msg.get_body(("html",))
    assert text is not None and page is not None
    assert "[CRITICAL] Daily budget 100% used: $5.00 of $5.00" in text.get_content()
    html_part = page.get_content()
    assert "&lt;script&gt;" in html_part and "<script>" not in html_part


def test_digest_mail(starttls_server: tuple[Inbox, int], certs: tuple[Path, Path]) -> None:
    inbox, port = starttls_server
    ledger = MemoryLedger()
    ch = EmailChannel(
        "127.0.0.1",
        port,
        sender=USER,
        recipients="finops@example.com",
        username=USER,
        password=PASSWORD,
        ssl_context=_client_ctx(certs),
    )
    d = AlertDispatcher(ledger, [ch], digest_window=0.3)
    for a in alerts(12):
        d.emit(a)
    assert d.flush(10)
    [(_, _, msg)] = inbox.messages
    assert "12 budget alerts (1 critical, 11 warning)" in msg["Subject"]
    body = msg.get_body(("plain",))
    assert body is not None and body.get_content().count("Daily budget 100% used") == 12
    d.close()


def test_wrong_password_fails_without_leaking_it(
    starttls_server: tuple[Inbox, int], certs: tuple[Path, Path]
) -> None:
    inbox, port = starttls_server
    ledger = MemoryLedger()
    ch = EmailChannel(
        "127.0.0.1",
        port,
        sender=USER,
        recipients="x@example.com",
        username=USER,
        password="hunter2-wrong",
        ssl_context=_client_ctx(certs),
    )
    d = AlertDispatcher(ledger, [ch], max_attempts=2, base_delay=0.02, digest_window=0)
    d.emit(alerts(1)[0])
    deadline = time.monotonic() + 10
    while ledger.deliveries()[0].status != "failed":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    row = ledger.deliveries()[0]
    assert row.attempts == 2 and "rejected the login" in (row.last_error or "")
    assert "hunter2" not in (row.last_error or "") and "hunter2" not in repr(ch)
    assert inbox.messages == []
    d.close()


def test_untrusted_certificate_is_refused(starttls_server: tuple[Inbox, int]) -> None:
    _, port = starttls_server
    ch = EmailChannel(
        "127.0.0.1", port, sender=USER, recipients="x@example.com", username=USER, password=PASSWORD
    )  # default context: the self-signed cert is not trusted
    with pytest.raises(AlertDeliveryError, match=r"certificate|SSL"):
        ch.send(alerts(1))


def test_implicit_tls(certs: tuple[Path, Path]) -> None:
    inbox = Inbox()
    port = _free_port()
    ctl = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        ssl_context=_server_ctx(certs),
        authenticator=_authenticator,
        auth_require_tls=False,
    )
    ctl.start()
    try:
        EmailChannel(
            "127.0.0.1",
            port,
            security="ssl",
            sender=USER,
            recipients="a@example.com",
            username=USER,
            password=PASSWORD,
            ssl_context=_client_ctx(certs),
        ).send(alerts(1))
    finally:
        ctl.stop()
    assert len(inbox.messages) == 1


def test_plain_relay_and_refused_connection() -> None:
    inbox = Inbox()
    port = _free_port()
    ctl = Controller(inbox, hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        EmailChannel(
            "127.0.0.1", port, security="none", sender=USER, recipients="a@example.com"
        ).send(alerts(1))
    finally:
        ctl.stop()
    assert len(inbox.messages) == 1
    with pytest.raises(AlertDeliveryError, match=r"cannot reach SMTP 127\.0\.0\.1"):
        EmailChannel(
            "127.0.0.1",
            _free_port(),
            security="none",
            sender=USER,
            recipients="a@example.com",
            timeout=2,
        ).send(alerts(1))


def test_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="without TLS"):
        EmailChannel(
            "h",
            sender=USER,
            recipients="a@example.com",
            username="u",
            password="p",
            security="none",
        )
    with pytest.raises(ConfigurationError, match="both"):
        EmailChannel("h", sender=USER, recipients="a@example.com", username="u")
    with pytest.raises(ConfigurationError, match="recipients"):
        EmailChannel("h", sender=USER, recipients=[])
    with pytest.raises(ConfigurationError, match="security"):
        EmailChannel("h", sender=USER, recipients="a@example.com", security="tls1.0")
    assert EmailChannel("h", sender=USER, recipients="a@example.com", security="ssl").port == 465
