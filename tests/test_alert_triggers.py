"""Alert and denial wording: pure functions from figures (no manager needed)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from costwarden.alerts import triggers
from costwarden.budget import Scope
from costwarden.ledger.base import Bucket, Denial, LimitCheck
from costwarden.records import AlertLevel

DAY = Bucket("user:ann", "daily", 1_795_824_000, 1_795_910_400)  # 2026-11-28 UTC
USD = 1_000_000_000


@pytest.mark.parametrize(
    ("spent", "limit", "expected"),
    [
        (0, USD, []),
        (USD // 2 - 1, USD, []),
        (USD // 2, USD, [0.5]),
        (USD * 8 // 10, USD, [0.5, 0.8]),
        (USD * 3, USD, [0.5, 0.8, 1.0]),
        (1, 0, [0.5, 0.8, 1.0]),  # a zero limit
        (0, 0, [0.5, 0.8, 1.0]),
    ],
)
def test_reached(spent: int, limit: int, expected: list[float]) -> None:
    assert triggers.reached(spent, limit, (0.5, 0.8, 1.0)) == expected


def test_threshold_levels_and_words() -> None:
    assert [triggers.threshold_level(t, 0.8) for t in (0.5, 0.8, 1.0, 1.5)] == [
        AlertLevel.INFO,
        AlertLevel.WARNING,
        AlertLevel.CRITICAL,
        AlertLevel.CRITICAL,
    ]
    key = triggers.threshold_key(DAY, 0.8, 0)
    alert = triggers.threshold(DAY, USD, 850_000_000, 0.8, warning_at=0.8, dedup_key=key)
    assert alert.message == (
        "Daily budget 80% used: $0.85 of $1.00 (user:ann, 85% now); it resets 2026-11-29 00:00 UTC."
    )
    assert (alert.kind, alert.level, alert.dedup_key) == (
        "threshold",
        AlertLevel.WARNING,
        f"threshold|user:ann|daily|{DAY.start}|0.8|0",
    )
    assert alert.period_start == datetime(2026, 11, 28, tzinfo=UTC)
    rolling = Bucket("global", "rolling:3600s", 0, 3600)
    assert triggers.period_word(rolling.period) == "Rolling 60-minute"
    assert triggers.resets(rolling) == "as the window rolls on"


def test_denial_error_and_alert() -> None:
    denial = Denial(
        LimitCheck(DAY, USD), spent=700_000_000, reserved=200_000_000, attempted=USD // 5
    )
    err = triggers.denied_error(denial)
    assert str(err) == (
        "Daily budget for user:ann would be exceeded: $0.70 spent + $0.20 reserved + $0.20 "
        "requested > $1.00 limit ($0.10 left). It resets 2026-11-29 00:00 UTC."
    )
    assert (err.scope, err.period, err.limit, err.spent, err.reserved) == (
        "user:ann",
        "daily",
        1.0,
        0.7,
        0.2,
    )
    alert = triggers.denied(denial, err)
    assert alert.message == f"Request denied: {err}" and alert.level is AlertLevel.CRITICAL
    assert alert.dedup_key == f"denied|user:ann|daily|{DAY.start}"
    cap = triggers.per_request_error(Scope("team", "eng"), USD // 10, USD // 4)
    assert str(cap).startswith("Request estimated at $0.25 exceeds the per-request limit of $0.10")
    assert (cap.period, cap.attempted) == ("per_request", 0.25)


def test_recording_alerts() -> None:
    over = triggers.hold_exceeded(30_000_000, 20_000_000, "gpt-4o", "user:ann", "h1")
    assert over.message.startswith("A call cost $0.030, more than the $0.020 reserved for it")
    assert (over.kind, over.scope, over.dedup_key) == (
        "hold_exceeded",
        "user:ann",
        "hold_exceeded|h1",
    )
    unknown = triggers.unknown_price("mystery", "$1/M tokens", 5)
    assert unknown.scope == "model:mystery" and unknown.dedup_key == "unknown_price|mystery"
    assert "'mystery' has no known price" in unknown.message
