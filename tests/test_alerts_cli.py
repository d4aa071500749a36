"""``costwarden alerts test`` against a real webhook receiver and a real aiosmtpd server on
127.0.0.1, and ``costwarden config`` refusing a misspelt channel."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from typer.testing import CliRunner, Result

from costwarden.alerts import generate_secret, verify_signature
from costwarden.cli.app import app

SECRET = generate_secret()
TOKEN = "xoxbCLItoken0123456789"


def cli(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


@dataclass
class Inbox:
    messages: list[email.message.EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(msg, email.message.EmailMessage)
        self.messages.append(msg)
        return "250 OK"


@dataclass
class Hooks:
    url: str = ""
    signed: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def hooks() -> Iterator[Hooks]:
    """``/ok`` accepts signed bodies; any other path answers 500 quoting the path."""
    got = Hooks()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.path == "/ok" and verify_signature(SECRET, dict(self.headers.items()), body):
                got.signed.append(json.loads(body))
                self.send_response(200)
                self.end_headers()
                return
            self.send_response(500)
            self.end_headers()
            self.wfile.write(f"cannot route {self.path}".encode())

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    got.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield got
    server.shutdown()
    server.server_close()


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    ctl = Controller(inbox, hostname="127.0.0.1", port=port)
    ctl.start()
    yield inbox, port
    ctl.stop()


@pytest.fixture
def configured(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    hooks: Hooks,
    smtp: tuple[Inbox, int],
) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COSTWARDEN_CONFIG", raising=False)
    monkeypatch.delenv("COSTWARDEN_LEDGER", raising=False)
    monkeypatch.setenv("CW_HOOK_URL", hooks.url + "/ok")
    monkeypatch.setenv("CW_HOOK_SECRET", SECRET)
    monkeypatch.setenv("CW_BROKEN_SLACK", f"{hooks.url}/services/T0/B0/{TOKEN}")
    (tmp_path / "costwarden.toml").write_text(
        f"""
ledger = "memory://"

[[alerts.channels]]
type = "webhook"
name = "hook"
url_env = "CW_HOOK_URL"
secret_env = "CW_HOOK_SECRET"
min_level = "critical"          # a test reaches every channel, whatever its level

[[alerts.channels]]
type = "email"
name = "mail"
host = "127.0.0.1"
port = {smtp[1]}
security = "none"
sender = "alerts@example.com"
recipients = ["finops@example.com"]

[[alerts.channels]]
type = "slack"
name = "broken-slack"
webhook_url_env = "CW_BROKEN_SLACK"
"""
    )
    return tmp_path


def test_alerts_test_sends_through_each_working_channel(
    configured: Path, hooks: Hooks, smtp: tuple[Inbox, int]
) -> None:
    result = cli("alerts", "test", "--channel", "hook")
    assert result.exit_code == 0, result.output
    assert result.stdout.split() == ["ok", "hook"]
    [body] = hooks.signed
    assert body["alerts"][0]["kind"] == "test" and "test alert" in body["alerts"][0]["message"]

    result = cli("alerts", "test", "--channel", "mail", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [{"channel": "mail", "ok": True, "error": None}]
    [mail] = smtp[0].messages
    assert "test alert" in str(mail["Subject"]) and mail["To"] == "finops@example.com"


def test_alerts_test_reports_a_failure_redacted_and_exits_1(
    configured: Path, hooks: Hooks, smtp: tuple[Inbox, int]
) -> None:
    result = cli("alerts", "test")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0] == "ok      hook" and lines[1] == "ok      mail"
    assert lines[2].startswith("failed  broken-slack: ChannelHTTPError: ")
    assert "HTTP 500" in lines[2] and "cannot route" in lines[2]
    assert "1 of 3 alert channel(s) failed: broken-slack" in result.output
    assert TOKEN not in result.output and "/services/T0" not in result.output
    assert len(hooks.signed) == 1 and len(smtp[0].messages) == 1

    as_json = cli("alerts", "test", "--json")
    assert as_json.exit_code == 1
    rows = json.loads(as_json.stdout)
    assert [(r["channel"], r["ok"]) for r in rows] == [
        ("hook", True),
        ("mail", True),
        ("broken-slack", False),
    ]
    assert TOKEN not in as_json.output


def test_alerts_test_names_an_unknown_channel(configured: Path) -> None:
    result = cli("alerts", "test", "--channel", "pager")
    assert result.exit_code == 1
    assert "no alert channel named 'pager'" in result.output and "'broken-slack'" in result.output


def test_the_history_is_still_the_default(configured: Path) -> None:
    result = cli("--ledger", "memory://", "alerts", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == []


@pytest.mark.parametrize(
    ("channel", "hint"),
    [
        (
            'type = "slak"\nwebhook_url_env = "X"',
            "type 'slak' is not a channel type; did you mean 'slack'?",
        ),
        ('type = "slack"\nwebhook_url = "https://hooks.slack.com/x"', "webhook_url_env"),
        ('type = "slack"\nwebhok_url_env = "X"', "did you mean 'webhook_url_env'?"),
    ],
)
def test_config_refuses_a_misspelt_channel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, channel: str, hint: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COSTWARDEN_CONFIG", raising=False)
    monkeypatch.delenv("COSTWARDEN_LEDGER", raising=False)
    (tmp_path / "costwarden.toml").write_text(f"[[alerts.channels]]\n{channel}\n")
    result = cli("config")
    assert result.exit_code == 1
    assert hint in result.output and "alerts.channels[0]" in result.output
    assert "hooks.slack.com/x" not in result.output
