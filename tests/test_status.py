"""BudgetStatus: typed figures, and as_dict() giving exactly the brief's keys."""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime

import pytest

from costwarden.budget import Budget
from costwarden.manager import BudgetManager
from costwarden.records import UsageRecord
from costwarden.status import BudgetStatus
from tests.helpers import FakeClock

NOON = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
CALENDAR_KEYS = ("spent", "reserved", "limit", "remaining", "requests", "resets_at")


def _manager(budget: Budget) -> BudgetManager:
    return BudgetManager(budget, clock=FakeClock(NOON.timestamp()))


def test_status_fields_and_the_brief_dict() -> None:
    budget = Budget(
        daily_limit=1.0, monthly_limit=None, per_request_limit=0.5, rolling_limits={3600: 0.5}
    )
    with _manager(budget) as m:
        m.commit(m.reserve(0.3), UsageRecord("gpt-4o", 1, 1, cost_usd=0.25, timestamp=NOON))
        hold = m.reserve(0.1)
        st = m.status()
        assert isinstance(st, BudgetStatus)
        assert (st.scope, st.has_budget, st.timezone) == ("global", True, "UTC")
        assert st.daily.spent_nanos == 250_000_000 and st.daily.reserved_nanos == 100_000_000
        assert st.daily.limit_nanos == 10**9 and st.daily.remaining_nanos == 750_000_000
        assert st.daily.requests == 1 and st.daily.resets_at == datetime(2026, 11, 29, tzinfo=UTC)
        assert st.monthly.limit_nanos is None and st.monthly.remaining_nanos is None
        [rolling] = st.rolling
        assert rolling.period == "rolling:3600s" and rolling.resets_at is None
        assert st.percent_used == 50.0  # the rolling limit is the most used
        assert st.per_request_limit == 0.5
        with pytest.raises(dataclasses.FrozenInstanceError):
            st.scope = "x"  # type: ignore[misc]
        d = m.get_status()
        assert d == st.as_dict()
        expected = ["scope", "has_budget"]
        for p in ("daily", "weekly", "monthly"):
            expected += [f"{p}_{k}" for k in CALENDAR_KEYS]
        expected += [f"rolling_3600s_{k}" for k in ("spent", "reserved", "limit", "remaining")]
        expected += ["percent_used", "per_request_limit", "timezone"]
        assert list(d) == expected
        assert d["daily_spent"] == 0.25 and d["daily_remaining"] == 0.75
        assert d["monthly_spent"] == 0.25 and d["monthly_remaining"] is None
        assert d["daily_resets_at"] == "2026-11-29T00:00:00+00:00"
        hold.release()


def test_status_of_a_scope_without_a_budget() -> None:
    with _manager(Budget(daily_limit=1.0, timezone="Asia/Tokyo")) as m:
        st = m.status(user="ann")
        assert (st.scope, st.has_budget, st.timezone) == ("user:ann", False, "Asia/Tokyo")
        assert st.percent_used == 0.0 and st.rolling == () and st.per_request_limit is None
        assert all(p.limit_nanos is None and p.percent_used is None for p in st.periods)


def test_spend_on_a_zero_limit_is_fully_used() -> None:
    with _manager(Budget(daily_limit=0.0, monthly_limit=None)) as m:
        m.record_spend(UsageRecord("gpt-4o", 1, 1, cost_usd=0.01, timestamp=NOON))
        assert m.status().daily.percent_used == 100.0 and m.status().percent_used == 100.0


def test_threshold_alerts_are_logged_without_a_handler(caplog: pytest.LogCaptureFixture) -> None:
    """Without a handler or channel every alert is logged once, thresholds included."""
    with _manager(Budget(daily_limit=1.0, monthly_limit=None)) as m:
        with caplog.at_level(logging.INFO, logger="costwarden"):
            for _ in range(2):
                m.record_spend(UsageRecord("gpt-4o", 1, 1, cost_usd=0.45, timestamp=NOON))
        said = [r.getMessage() for r in caplog.records if "costwarden alert" in r.getMessage()]
        assert said == [
            "costwarden alert (info): Daily budget 50% used: $0.90 of $1.00 (global, 90% now); "
            "it resets 2026-11-29 00:00 UTC.",
            "costwarden alert (warning): Daily budget 80% used: $0.90 of $1.00 (global, 90% now); "
            "it resets 2026-11-29 00:00 UTC.",
        ]


def test_repeated_status_reads_follow_the_clock_and_the_budget() -> None:
    """A status read remembers its buckets per scope (status.StatusBuckets): the next day, a
    clock set back, and a new budget must each be read afresh, never from the memo."""
    clock = FakeClock(NOON.timestamp())
    mgr = BudgetManager(Budget(daily_limit=10.0, monthly_limit=None), clock=clock)
    mgr.record_spend(UsageRecord("gpt-4o", 10, 10, cost_usd=1.0, timestamp=NOON, user_id="a"))
    first = mgr.get_status()
    assert first["daily_spent"] == 1.0
    assert mgr.get_status() == first  # the remembered buckets: the same answer
    clock.advance(86_400)  # the next day: a new daily window, nothing spent in it yet
    nxt = mgr.get_status()
    assert nxt["daily_spent"] == 0.0
    assert nxt["daily_resets_at"] == "2026-11-30T00:00:00+00:00"
    clock.advance(-86_400)  # back again (a clock set back): the first day's window once more
    assert mgr.get_status() == first
    mgr.set_budget(Budget(daily_limit=20.0, monthly_limit=None))
    assert mgr.get_status()["daily_limit"] == 20.0
    assert mgr.get_status()["daily_remaining"] == 19.0
