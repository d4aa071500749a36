"""Slack and signed-webhook channels against a real HTTP server on 127.0.0.1: payloads,
signatures, and failures (5xx, timeouts, refused connections, 4xx, 429) with retries."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from costwarden.alerts import AlertDispatcher, SlackChannel, WebhookChannel, verify_signature
from costwarden.alerts.http import ChannelHTTPError, post
from costwarden.alerts.slack import slack_message
from costwarden.alerts.webhook import generate_secret, sign
from costwarden.errors import ConfigurationError
from costwarden.ledger import MemoryLedger
from costwarden.records import Alert, AlertLevel

SECRET = generate_secret()


@dataclass
class Receiver:
    """What the local server got, and how it should answer the next requests."""

    url: str
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    script: list[tuple[int, float, dict[str, str]]] = field(default_factory=list)  # status, delay
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies(self) -> list[dict]:  # type: ignore[type-arg]
        return [json.loads(b) for _, _, b in self.requests]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with state.lock:
                state.requests.append(
                    (self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                status, delay, headers = state.script.pop(0) if state.script else (200, 0.0, {})
            time.sleep(delay)
            try:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(b"ok" if status == 200 else b"no_service")
            except OSError:
                pass  # the client timed out and went away

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}/services/T1/B2/very-secret"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def alert(i: int = 0, level: AlertLevel = AlertLevel.WARNING) -> Alert:
    return Alert(
        level,
        f"Daily budget 80% used: $4.01 of $5.00 (user:u{i}) <b>&",
        f"user:u{i}",
        "daily",
        "threshold",
        0.8,
        4_010_000_000,
        5_000_000_000,
        dedup_key=f"k{i}",
    )


def wait_for(pred: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def test_slack_message_is_readable_block_kit(receiver: Receiver) -> None:
    SlackChannel(receiver.url).send([alert()])
    [(path, headers, _)] = receiver.requests
    assert path == "/services/T1/B2/very-secret" and headers["content-type"].startswith(
        "application/json"
    )
    [body] = receiver.bodies()
    assert "80% used" in body["text"]
    header, section, context = body["blocks"]
    assert header["type"] == "header" and len(header["text"]["text"]) <= 150
    assert section["text"]["type"] == "mrkdwn" and "*WARNING*" in section["text"]["text"]
    assert "&lt;b&gt;&amp;" in section["text"]["text"]  # mrkdwn control characters escaped
    assert "$4.01 of $5.00" in context["elements"][0]["text"]


def test_slack_digest_respects_block_limits() -> None:
    msg = slack_message(
        [alert(i, AlertLevel.CRITICAL if i % 3 == 0 else AlertLevel.INFO) for i in range(120)]
    )
    assert len(msg["blocks"]) <= 50
    assert msg["blocks"][0]["text"]["text"].startswith("costwarden 120 budget alerts (40 critical")
    assert "…and 75 more" in msg["blocks"][-1]["elements"][0]["text"]
    long = Alert(AlertLevel.INFO, "x" * 5000, "global", "daily", "threshold")
    assert len(slack_message([long])["blocks"][1]["text"]["text"]) <= 3000


def test_webhook_is_signed_and_verifiable(receiver: Receiver) -> None:
    WebhookChannel(receiver.url, SECRET).send([alert(1), alert(2)])
    [(_, headers, body)] = receiver.requests
    assert verify_signature(SECRET, headers, body)
    payload = json.loads(body)
    assert payload["type"] == "costwarden.alerts" and payload["count"] == 2
    assert [a["dedup_key"] for a in payload["alerts"]] == ["k1", "k2"]
    assert payload["alerts"][0]["spent_nanos"] == 4_010_000_000
    # a receiver rejects tampering, a wrong secret and replays
    assert not verify_signature(SECRET, headers, body.replace(b"k1", b"k9"))
    assert not verify_signature(generate_secret(), headers, body)
    stamp = int(headers["webhook-timestamp"])
    assert not verify_signature(SECRET, headers, body, now=stamp + 301)
    assert verify_signature(SECRET, headers, body, now=stamp + 299)
    assert not verify_signature(SECRET, {"webhook-id": "x"}, body)


def test_signature_matches_the_standard_webhooks_scheme() -> None:
    import base64
    import hashlib
    import hmac

    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    expected = base64.b64encode(hmac.new(key, b"msg_1.1700000000.{}", hashlib.sha256).digest())
    assert sign(SECRET, "msg_1", 1700000000, b"{}") == "v1," + expected.decode()
    with pytest.raises(ConfigurationError, match="too short"):
        WebhookChannel("http://127.0.0.1:9/", "short")
    with pytest.raises(ConfigurationError, match="http"):
        WebhookChannel("ftp://example.com/", SECRET)


def test_5xx_is_retried_until_delivered(receiver: Receiver) -> None:
    receiver.script = [(500, 0.0, {}), (502, 0.0, {})]
    ledger = MemoryLedger()
    d = AlertDispatcher(
        ledger, [WebhookChannel(receiver.url, SECRET)], base_delay=0.05, digest_window=0
    )
    d.emit(alert())
    wait_for(lambda: ledger.deliveries()[0].status == "delivered")
    assert len(receiver.requests) == 3
    ids = {h["webhook-id"] for _, h, _ in receiver.requests}
    assert len(ids) == 1  # a retry is recognisably the same message
    assert all(verify_signature(SECRET, h, b) for _, h, b in receiver.requests)
    assert ledger.deliveries()[0].attempts == 3
    d.close()


def test_timeouts_are_retried(receiver: Receiver) -> None:
    receiver.script = [(200, 1.5, {})]
    ledger = MemoryLedger()
    d = AlertDispatcher(
        ledger, [SlackChannel(receiver.url, timeout=0.3)], base_delay=0.05, digest_window=0
    )
    d.emit(alert())
    wait_for(lambda: ledger.deliveries()[0].status == "delivered")
    row = ledger.deliveries()[0]
    assert row.attempts == 2 and len(receiver.requests) == 2
    d.close()


def test_refused_connection_fails_after_max_attempts_without_leaking_the_url() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed when the block ends: nothing listens there
    ledger = MemoryLedger()
    d = AlertDispatcher(
        ledger,
        [SlackChannel(f"http://127.0.0.1:{port}/services/T/B/tok3n")],
        base_delay=0.02,
        max_attempts=3,
        digest_window=0,
    )
    d.emit(alert())
    wait_for(lambda: ledger.deliveries()[0].status == "failed")
    row = ledger.deliveries()[0]
    assert row.attempts == 3 and "cannot reach" in (row.last_error or "")
    assert "tok3n" not in (row.last_error or "") and "tok3n" not in repr(d.channels["slack"])
    d.close()


def test_4xx_is_permanent_and_429_waits_for_retry_after(receiver: Receiver) -> None:
    receiver.script = [(404, 0.0, {}), (429, 0.0, {"Retry-After": "30"})]
    ledger = MemoryLedger()
    d = AlertDispatcher(
        ledger,
        [SlackChannel(receiver.url, name="a"), SlackChannel(receiver.url, name="b")],
        base_delay=0.01,
        digest_window=0,
    )
    before = time.time()
    d.emit(alert())
    d.flush()
    by_name = {r.channel: r for r in ledger.deliveries()}
    statuses = sorted((r.status, r.attempts) for r in by_name.values())
    assert statuses == [("failed", 1), ("pending", 1)]  # 404: given up at once; 429: later
    pending = next(r for r in by_name.values() if r.status == "pending")
    assert pending.next_attempt_at is not None and pending.next_attempt_at >= before + 29
    assert "HTTP 429" in (pending.last_error or "")
    d.close(timeout=0.5)


def test_http_error_classification() -> None:
    assert ChannelHTTPError("x", status=404).permanent
    assert not ChannelHTTPError("x", status=429).permanent
    assert not ChannelHTTPError("x", status=503).permanent
    assert not ChannelHTTPError("x").permanent


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts /proc/self/fd")
def test_an_error_answer_closes_its_connection_at_once(receiver: Receiver) -> None:
    """urllib's HTTPError holds the answer's body, and through it the socket, and it lives on
    as the ChannelHTTPError's context: unless ``post`` closes it, the socket stays open for as
    long as the error does, and is left to the garbage collector (an "unclosed socket"
    ResourceWarning wherever that happens)."""
    receiver.script = [(500, 0.0, {})]
    before = _open_fds()
    with pytest.raises(ChannelHTTPError, match="HTTP 500") as err:
        post(receiver.url, b"{}", {"content-type": "application/json"}, 5.0)
    assert err.value.status == 500  # the error (and its context) is still alive here
    deadline = time.monotonic() + 5  # the server's side of the connection closes on its own
    while _open_fds() > before:
        assert time.monotonic() < deadline, f"{_open_fds() - before} descriptors still open"
        time.sleep(0.01)
