"""A channel URL is a credential: it must appear in no log record, no stored delivery and no
exception text, even when the server echoes the request path in its error answer, and a URL
urllib would refuse is a ConfigurationError at construction that does not quote it."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from costwarden.alerts import AlertDispatcher, SlackChannel, WebhookChannel, generate_secret
from costwarden.alerts.config import channels_from_config
from costwarden.alerts.http import ChannelHTTPError, post
from costwarden.alerts.redact import redact, scrub
from costwarden.errors import ConfigurationError
from costwarden.ledger import MemoryLedger
from costwarden.records import Alert, AlertLevel

TOKEN = "xoxbSECRETtoken0123456789"
SLACK_PATH = f"/services/T0ABCDEF1/B0GHIJKL2/{TOKEN}"
HOOK_PATH = f"/hooks/costwarden?token={TOKEN}"


@pytest.fixture
def echo() -> Iterator[str]:
    """A server on 127.0.0.1 that answers every POST with HTTP 500 quoting the request path
    (and the Host), as some proxies and frameworks do."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            body = f"no route for POST http://{self.headers['Host']}{self.path} ({self.path})"
            self.send_response(500)
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _alert(key: str = "k") -> Alert:
    return Alert(
        AlertLevel.CRITICAL,
        "Daily budget 100% used",
        "global",
        "daily",
        "threshold",
        1.0,
        period_start=datetime(2026, 11, 28, tzinfo=UTC),
        dedup_key=key,
    )


def _leaks(text: str | None) -> bool:
    return text is not None and (TOKEN in text or "T0ABCDEF1" in text or "B0GHIJKL2" in text)


def _log_text(caplog: pytest.LogCaptureFixture) -> str:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    return "\n".join(handler.format(r) for r in caplog.records)  # message + any traceback


def test_an_echoing_server_leaks_no_token_anywhere(
    echo: str, caplog: pytest.LogCaptureFixture
) -> None:
    slack = SlackChannel(echo + SLACK_PATH)
    hook = WebhookChannel(echo + HOOK_PATH, generate_secret())
    for channel in (slack, hook):
        with pytest.raises(ChannelHTTPError) as exc:
            channel.send([_alert()])
        assert exc.value.status == 500 and "127.0.0.1" in str(exc.value)
        assert "no route for POST" in str(exc.value)  # the body is still quoted, scrubbed
        assert not _leaks(str(exc.value)) and not _leaks(repr(exc.value))

    ledger = MemoryLedger()
    with caplog.at_level(logging.DEBUG):
        d = AlertDispatcher(ledger, [slack, hook], max_attempts=2, base_delay=0.05)
        d.emit(_alert())
        deadline = time.monotonic() + 10
        while {r.status for r in ledger.deliveries()} != {"failed"}:
            assert time.monotonic() < deadline, ledger.deliveries()
            time.sleep(0.02)
        d.close()
    rows = ledger.deliveries()
    assert len(rows) == 2 and all(r.attempts == 2 for r in rows)
    for row in rows:
        assert row.last_error is not None and "HTTP 500" in row.last_error
        assert not _leaks(row.last_error) and not _leaks(row.payload)
    logged = _log_text(caplog)
    assert "HTTP 500" in logged and not _leaks(logged)


def test_the_ledger_outage_path_leaks_nothing(echo: str, caplog: pytest.LogCaptureFixture) -> None:
    ledger = MemoryLedger()
    d = AlertDispatcher(ledger, [SlackChannel(echo + SLACK_PATH)], digest_window=0)
    ledger.close()  # claim_alert fails: the alert is sent once from memory
    with caplog.at_level(logging.DEBUG):
        assert d.emit(_alert())
        deadline = time.monotonic() + 10
        while "no outbox" not in _log_text(caplog):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        d.close(timeout=1)
    assert not _leaks(_log_text(caplog))


@pytest.mark.parametrize(
    "url",
    [
        f"https://hooks.slack.com/services/T0ABCDEF1/B0GHIJKL2/{TOKEN[:8]} {TOKEN[8:]}",
        f"https://hooks.slack.com{SLACK_PATH}\n",
        f"https://hooks.slack.com/services/T0ABCDEF1/B0GHIJKL2/{TOKEN}\t",
        f"ftp://hooks.slack.com{SLACK_PATH}",
        f"hooks.slack.com{SLACK_PATH}",
        f"https://hooks.slack.com:99999{SLACK_PATH}",
    ],
)
def test_a_url_urllib_would_refuse_fails_at_construction_without_quoting_it(url: str) -> None:
    for build in (lambda: SlackChannel(url), lambda: WebhookChannel(url, generate_secret())):
        with pytest.raises(ConfigurationError) as exc:
            build()
        assert not _leaks(str(exc.value)) and TOKEN[:8] not in str(exc.value)
    with pytest.raises(ConfigurationError) as exc:
        channels_from_config(
            {"channels": [{"type": "slack", "webhook_url_env": "HOOK"}]}, environ={"HOOK": url}
        )
    assert not _leaks(str(exc.value)) and TOKEN[:8] not in str(exc.value)


def test_post_never_quotes_the_url_of_a_request_it_could_not_make() -> None:
    with pytest.raises(ChannelHTTPError) as exc:
        post(f"http://127.0.0.1:9{SLACK_PATH} x", b"{}", {}, 2.0)  # http.client refuses it
    assert "127.0.0.1" in str(exc.value) and not _leaks(str(exc.value))


def test_redaction_keeps_scheme_and_host_only() -> None:
    url = f"https://hooks.slack.com{SLACK_PATH}"
    assert redact(f"POST {url} failed") == "POST https://hooks.slack.com/…redacted failed"
    scrubbed = scrub(f"echo {SLACK_PATH} and {TOKEN} and %2F{TOKEN}", [url])
    assert not _leaks(scrubbed) and scrubbed.startswith("echo …redacted")
    assert len(scrub("x" * 5000, [url], limit=200)) == 200
