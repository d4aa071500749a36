"""The dispatcher: once per dedup key, level/scope routing, digests, retries, restarts, and
never a failure on the caller's path. Real ledgers (memory, SQLite), real threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costwarden.alerts import (
    AlertDispatcher,
    CallableChannel,
    LoggingChannel,
    accepts,
    alert_from_json,
    alert_to_json,
)
from costwarden.alerts.dispatcher import redact
from costwarden.errors import ConfigurationError
from costwarden.ledger import Delivery, MemoryLedger, SQLiteLedger
from costwarden.records import Alert, AlertLevel


def make_alert(
    key: str = "threshold|user:alice|daily|1764288000|0.8",
    *,
    level: AlertLevel = AlertLevel.WARNING,
    scope: str = "user:alice",
) -> Alert:
    return Alert(
        level=level,
        message=f"Daily budget 80% used: $4.01 of $5.00 ({scope}), resets 2026-11-29 00:00 UTC",
        scope=scope,
        period="daily",
        kind="threshold",
        threshold=0.8,
        spent_nanos=4_010_000_000,
        limit_nanos=5_000_000_000,
        period_start=datetime(2026, 11, 28, tzinfo=UTC),
        dedup_key=key,
    )


class Recorder:
    """A channel that records what it is sent and can fail or block on demand."""

    def __init__(
        self,
        name: str = "rec",
        *,
        min_level: AlertLevel = AlertLevel.INFO,
        scopes: frozenset[str] | None = None,
        failures: int = 0,
        gate: threading.Event | None = None,
    ) -> None:
        self.name, self.min_level, self.scopes = name, min_level, scopes
        self.failures = failures
        self.gate = gate
        self.calls: list[list[Alert]] = []
        self.attempt_times: list[float] = []

    def send(self, alerts: Sequence[Alert]) -> None:
        self.attempt_times.append(time.monotonic())
        if self.gate is not None:
            self.gate.wait(10)
        if self.failures > 0:
            self.failures -= 1
            raise RuntimeError("upstream said no: https://hooks.example.com/T000/B000/secret-token")
        self.calls.append(list(alerts))


def wait_for(pred: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


def rows(ledger: MemoryLedger | SQLiteLedger, channel: str | None = None) -> list[Delivery]:
    return [d for d in ledger.deliveries(limit=10_000) if channel is None or d.channel == channel]


@pytest.fixture
def ledger() -> MemoryLedger:
    return MemoryLedger()


def test_one_alert_per_dedup_key(ledger: MemoryLedger) -> None:
    got: list[tuple[AlertLevel, str, int]] = []
    rec = Recorder()
    d = AlertDispatcher(
        ledger,
        [CallableChannel(lambda lv, msg: got.append((lv, msg, threading.get_ident()))), rec],
    )
    alert = make_alert()
    assert d.emit(alert) is True
    # the handler ran inside emit, in this thread; the network channel goes through the outbox
    assert got == [(AlertLevel.WARNING, alert.message, threading.get_ident())]
    assert d.emit(alert) is False
    assert d.emit(make_alert()) is False
    assert d.flush()
    assert len(got) == 1 and [a.dedup_key for c in rec.calls for a in c] == [alert.dedup_key]
    [row] = rows(ledger)  # the synchronous handler has no outbox row
    assert row.status == "delivered" and row.attempts == 1 and row.channel == "rec"
    d.close()


def test_a_dispatcher_with_only_the_handler_runs_no_thread(ledger: MemoryLedger) -> None:
    alert = make_alert()
    ledger.claim_alert("other", alert_to_json(alert), ["rec"], time.time())
    before = set(threading.enumerate())
    d = AlertDispatcher(ledger, [CallableChannel(lambda lv, msg: None)], poll_interval=0.05)
    assert d.emit(alert) and d.flush()
    assert set(threading.enumerate()) - before == set()
    time.sleep(0.1)
    [row] = rows(ledger)  # another process's row is not leased by this one
    assert row.status == "pending" and row.next_attempt_at is not None
    assert row.next_attempt_at <= time.time()
    d.close()


def test_levels_and_scopes_route_alerts(ledger: MemoryLedger) -> None:
    everything = Recorder("all")
    critical = Recorder("pager", min_level=AlertLevel.CRITICAL)
    teams = Recorder("teams", scopes=frozenset({"team:*", "global"}))
    d = AlertDispatcher(ledger, [everything, critical, teams], digest_window=0)
    d.emit(make_alert("a", level=AlertLevel.INFO, scope="team:eng"))
    d.emit(make_alert("b", level=AlertLevel.CRITICAL, scope="user:bob"))
    d.emit(make_alert("c", level=AlertLevel.WARNING, scope="global"))
    assert d.flush()

    def keys(r: Recorder) -> list[str]:
        return sorted(a.dedup_key for call in r.calls for a in call)

    assert keys(everything) == ["a", "b", "c"]
    assert keys(critical) == ["b"]
    assert keys(teams) == ["a", "c"]
    assert len(rows(ledger)) == 6  # one outbox row per accepting channel only
    d.close()


def test_a_burst_becomes_one_digest(ledger: MemoryLedger) -> None:
    rec = Recorder()
    one_by_one = Recorder("handler")
    one_by_one.max_batch = 1  # type: ignore[attr-defined]
    d = AlertDispatcher(ledger, [rec, one_by_one], digest_window=0.3)
    for i in range(30):
        d.emit(make_alert(f"threshold|user:u{i}|daily|0|0.8", scope=f"user:u{i}"))
    assert d.flush()
    assert len(rec.calls) == 1 and len(rec.calls[0]) == 30
    assert len(one_by_one.calls) == 30 and all(len(c) == 1 for c in one_by_one.calls)
    d.close()


def test_failures_are_retried_with_growing_delays(ledger: MemoryLedger) -> None:
    rec = Recorder(failures=3)
    d = AlertDispatcher(ledger, [rec], base_delay=0.1, digest_window=0)
    d.emit(make_alert())
    wait_for(lambda: rows(ledger)[0].status == "delivered")
    [row] = rows(ledger)
    assert row.attempts == 4 and row.last_error is None
    gaps = [b - a for a, b in zip(rec.attempt_times, rec.attempt_times[1:], strict=False)]
    # nominal delays 0.1, 0.2, 0.4 with jitter in [50%, 100%]
    assert gaps[0] >= 0.05 and gaps[2] >= 0.2 and gaps[2] > gaps[0]
    d.close()


def test_gives_up_after_max_attempts_and_redacts_the_error(ledger: MemoryLedger) -> None:
    rec = Recorder(failures=100)
    d = AlertDispatcher(ledger, [rec], base_delay=0.02, max_attempts=3, digest_window=0)
    d.emit(make_alert())
    wait_for(lambda: rows(ledger)[0].status == "failed")
    [row] = rows(ledger)
    assert row.attempts == 3 and row.next_attempt_at is None
    assert row.last_error is not None and "upstream said no" in row.last_error
    assert "secret-token" not in row.last_error and "hooks.example.com" in row.last_error
    d.close()


def test_every_scheduled_retry_wakes_the_worker(ledger: MemoryLedger) -> None:
    # Two channels fail once and retry at different (jittered) times; the later retry must
    # not wait for the 60 s poll because the earlier one fell due first.
    a, b = Recorder("a", failures=1), Recorder("b", failures=1)
    d = AlertDispatcher(ledger, [a, b], base_delay=0.6, poll_interval=60, digest_window=0)
    d.emit(make_alert())
    wait_for(lambda: {r.status for r in rows(ledger)} == {"delivered"}, timeout=4)
    assert [r.attempts for r in rows(ledger)] == [2, 2]
    d.close()


def test_emit_never_waits_for_a_blocked_channel(ledger: MemoryLedger) -> None:
    gate = threading.Event()
    rec = Recorder(gate=gate)
    d = AlertDispatcher(ledger, [rec], digest_window=0)
    assert d.emit(make_alert("first"))
    wait_for(lambda: len(rec.attempt_times) == 1)  # the worker is now stuck in send()
    for i in range(50):
        assert d.emit(make_alert(f"k{i}"))  # returns although the channel is blocked
    assert rec.calls == []
    gate.set()
    assert d.flush()
    assert sum(len(c) for c in rec.calls) == 51
    d.close()


def test_a_full_queue_falls_back_to_the_outbox(ledger: MemoryLedger) -> None:
    gate = threading.Event()
    rec = Recorder(gate=gate)
    d = AlertDispatcher(ledger, [rec], queue_size=1, digest_window=0)
    d.emit(make_alert("first"))
    wait_for(lambda: len(rec.attempt_times) == 1)
    for i in range(20):
        d.emit(make_alert(f"k{i}"))
    assert d.dropped_to_outbox >= 18
    gate.set()
    assert d.flush()
    assert sorted(a.dedup_key for c in rec.calls for a in c) == sorted(
        ["first", *(f"k{i}" for i in range(20))]
    )
    d.close()


def test_emit_never_raises(ledger: MemoryLedger, caplog: pytest.LogCaptureFixture) -> None:
    def broken(level: AlertLevel, message: str) -> None:
        raise ZeroDivisionError("handler bug")

    rec = Recorder(failures=1)
    d = AlertDispatcher(ledger, [CallableChannel(broken), rec], base_delay=10, digest_window=0)
    with caplog.at_level("ERROR", logger="costwarden.alerts"):
        assert d.emit(make_alert()) is True  # the handler's bug is logged, not raised
    assert any("handler bug" in r.getMessage() for r in caplog.records)
    assert d.flush() is False  # the network channel: tried, failed, will retry
    [row] = rows(ledger)
    assert row.status == "pending" and row.attempts == 1 and "said no" in (row.last_error or "")
    assert d.emit("not an alert") is False  # type: ignore[arg-type]
    d.close()


def test_ledger_outage_still_sends_once_from_memory() -> None:
    ledger = MemoryLedger()
    got: list[str] = []
    d = AlertDispatcher(ledger, [CallableChannel(lambda lv, m: got.append(m))], digest_window=0)
    ledger.close()  # claim_alert now raises LedgerError
    assert d.emit(make_alert()) is True
    wait_for(lambda: len(got) == 1)
    d.close(timeout=1)
    assert d.emit(make_alert("later")) is False  # closed dispatcher: logged, not raised


def test_restart_delivers_what_a_crashed_process_left(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/alerts.db"
    crashed = SQLiteLedger(url)
    alert = make_alert()
    assert crashed.claim_alert(alert.dedup_key, alert_to_json(alert), ["rec"], time.time())
    crashed.close()  # the process died before its worker sent anything

    ledger = SQLiteLedger(url)
    rec = Recorder()
    d = AlertDispatcher(ledger, [rec], digest_window=0)
    assert d.flush()
    assert [a.message for c in rec.calls for a in c] == [alert.message]
    assert rows(ledger)[0].status == "delivered"
    assert d.emit(alert) is False  # still claimed after the restart
    d.close()
    ledger.close()


def test_failed_attempts_survive_a_restart(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/alerts.db"
    first = SQLiteLedger(url)
    d1 = AlertDispatcher(first, [Recorder(failures=100)], base_delay=0.2, digest_window=0)
    d1.emit(make_alert())
    assert d1.flush() is False
    d1.close(timeout=0.1)
    first.close()

    second = SQLiteLedger(url)
    rec = Recorder()
    d2 = AlertDispatcher(second, [rec], poll_interval=0.05, digest_window=0)
    wait_for(lambda: rows(second)[0].status == "delivered")
    assert rows(second)[0].attempts == 2 and len(rec.calls) == 1
    d2.close()
    second.close()


def test_rows_for_channels_this_process_lacks_are_left_alone(ledger: MemoryLedger) -> None:
    alert = make_alert()
    ledger.claim_alert(alert.dedup_key, alert_to_json(alert), ["elsewhere"], time.time())
    d = AlertDispatcher(ledger, [Recorder()], digest_window=0)
    assert d.flush()
    [row] = rows(ledger)
    assert row.status == "pending" and row.attempts == 0
    d.close()


def test_bad_configuration_is_rejected(ledger: MemoryLedger) -> None:
    with pytest.raises(ConfigurationError, match="unique"):
        AlertDispatcher(ledger, [Recorder("x"), Recorder("x")])
    with pytest.raises(ConfigurationError, match="not an alert channel"):
        AlertDispatcher(ledger, [object()])  # type: ignore[list-item]
    with pytest.raises(ConfigurationError, match="queue_size"):
        AlertDispatcher(ledger, [], queue_size=0)
    with pytest.raises(ConfigurationError):
        CallableChannel("not callable")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="level"):
        LoggingChannel(min_level="loud")
    with pytest.raises(ConfigurationError, match="scopes"):
        LoggingChannel(scopes=["alice"])


def test_logging_channel_logs_with_structured_extra(caplog: pytest.LogCaptureFixture) -> None:
    channel = LoggingChannel("costwarden.test-alerts")
    with caplog.at_level("INFO", logger="costwarden.test-alerts"):
        channel.send([make_alert(level=AlertLevel.CRITICAL)])
    [record] = caplog.records
    assert record.levelname == "CRITICAL" and "80% used" in record.getMessage()
    assert record.costwarden_alert["scope"] == "user:alice"  # type: ignore[attr-defined]


def test_accepts_matches_scope_wildcards() -> None:
    ch = LoggingChannel(scopes=["user:*"], min_level="warning")
    assert accepts(ch, make_alert(scope="user:zoe"))
    assert not accepts(ch, make_alert(scope="team:zoe"))
    assert not accepts(ch, make_alert(scope="user:zoe", level=AlertLevel.INFO))


def test_redact_keeps_host_drops_path() -> None:
    text = redact("POST https://hooks.slack.com/services/T1/B2/xyz failed")
    assert text == "POST https://hooks.slack.com/…redacted failed"


_text = st.text(min_size=1, max_size=40)


@settings(max_examples=50, deadline=None)
@given(
    st.sampled_from(list(AlertLevel)),
    _text,
    _text,
    st.sampled_from(["threshold", "denied", "unknown_price", "hold_exceeded", "forecast"]),
    st.none() | st.floats(0.01, 10),
    st.integers(0, 2**62),
    st.none() | st.integers(0, 2**62),
    st.none() | st.datetimes(timezones=st.just(UTC)),
    _text,
)
def test_payload_round_trip(
    level: AlertLevel,
    message: str,
    scope: str,
    kind: str,
    threshold: float | None,
    spent: int,
    limit: int | None,
    start: datetime | None,
    key: str,
) -> None:
    alert = Alert(level, message, scope, "monthly", kind, threshold, spent, limit, start, key)
    assert alert_from_json(alert_to_json(alert)) == alert
