"""BudgetManager semantics on the memory and SQLite ledgers (see DESIGN.md, Admission)."""

from __future__ import annotations

import math
import threading
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from costwarden.budget import Budget
from costwarden.errors import (
    BudgetExceededError,
    HoldError,
    InvalidInputError,
)
from costwarden.manager import BudgetManager
from costwarden.records import UsageRecord
from tests.helpers import FakeClock

NOON = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def rec(cost: float, *, at: datetime = NOON, **kw: Any) -> UsageRecord:
    return UsageRecord("gpt-4o", 100, 50, cost_usd=cost, timestamp=at, **kw)


def test_brief_status_keys_and_exact_figures(make_manager: Any) -> None:
    m = make_manager(Budget(daily_limit=5.0, monthly_limit=50.0))
    assert m.can_spend(0.01) is True
    assert m.can_spend(100.0) is False
    m.record_spend(UsageRecord("gpt-4o", 1000, 500, 0.05, datetime.now()))
    s = m.get_status()
    assert s["daily_spent"] == 0.05
    assert s["daily_remaining"] == 4.95
    assert s["monthly_spent"] == 0.05
    assert s["monthly_remaining"] == 49.95
    assert s["percent_used"] == pytest.approx(1.0)


def test_ten_thousand_small_records_sum_exactly(make_manager: Any) -> None:
    m = make_manager(Budget(daily_limit=5.0, monthly_limit=50.0, per_request_limit=None))
    for _ in range(10_000):
        m.record_spend(UsageRecord("gpt-4o", 1, 1, 0.0001, datetime.now(UTC)))
    assert m.get_status()["daily_spent"] == 1.0


def test_limit_is_inclusive_and_zero_cost_always_admitted(make_manager: Any) -> None:
    m = make_manager(Budget(daily_limit=1.0, monthly_limit=None, per_request_limit=None))
    assert m.can_spend(1.0)
    assert not m.can_spend(1.000000001)
    h = m.reserve(1.0)
    assert not m.can_spend(0.000000001)
    assert m.can_spend(0.0)
    zero = m.reserve(0.0)  # always admitted, even with the budget fully held
    zero.release()
    m.commit(h, rec(1.0, at=datetime.now(UTC)))
    assert m.get_status()["daily_remaining"] == 0.0
    with pytest.raises(BudgetExceededError):
        m.reserve(0.01)


def test_per_request_limit(make_manager: Any) -> None:
    m = make_manager(Budget(daily_limit=10.0, per_request_limit=0.5))
    assert m.can_spend(0.5)
    assert not m.can_spend(0.51)
    with pytest.raises(BudgetExceededError) as exc:
        m.reserve(0.51)
    assert exc.value.period == "per_request"
    assert exc.value.limit == 0.5
    assert exc.value.attempted == 0.51


def test_denial_carries_scope_period_and_figures(make_manager: Any) -> None:
    m = make_manager(Budget(daily_limit=1.0, monthly_limit=None, per_request_limit=None))
    m.set_budget(Budget(daily_limit=0.3, monthly_limit=None, per_request_limit=None), user="bob")
    m.record_spend(rec(0.2, at=datetime.now(UTC), user_id="bob"))
    with pytest.raises(BudgetExceededError) as exc:
        m.reserve(0.15, user="bob")
    e = exc.value
    assert (e.scope, e.period, e.limit, e.spent, e.attempted) == (
        "user:bob",
        "daily",
        0.3,
        0.2,
        0.15,
    )
    assert "user:bob" in str(e) and "$0.30" in str(e)
    # alice has no own budget: only the global one applies to her
    m.reserve(0.7, user="alice").release()


def test_every_applicable_scope_must_fit(make_manager: Any) -> None:
    m = make_manager(Budget(daily_limit=10.0, monthly_limit=None, per_request_limit=None))
    m.set_budget(Budget(daily_limit=1.0, monthly_limit=None, per_request_limit=None), team="eng")
    m.set_default_budget(
        "user", Budget(daily_limit=0.6, monthly_limit=None, per_request_limit=None)
    )
    a = m.reserve(0.5, user="ann", team="eng")
    b = m.reserve(0.5, user="ben", team="eng")
    with pytest.raises(BudgetExceededError) as exc:
        m.reserve(0.1, user="cat", team="eng")
    assert exc.value.scope == "team:eng"
    with pytest.raises(BudgetExceededError) as exc2:
        m.reserve(0.2, user="ann")  # ann's default user budget: 0.5 held + 0.2 > 0.6
    assert exc2.value.scope == "user:ann"
    a.release()
    b.release()
    assert m.get_status(team="eng")["daily_reserved"] == 0.0


def test_reserve_commit_release_lifecycle(make_manager: Any) -> None:
    m = make_manager(Budget(daily_limit=1.0, monthly_limit=None, per_request_limit=None))
    h = m.reserve(0.4, user="u")
    assert m.get_status()["daily_reserved"] == 0.4
    stored = h.commit(rec(0.25, at=datetime.now(UTC), user_id="u"))
    assert stored.cost_nanos == 250_000_000
    s = m.get_status()
    assert (s["daily_spent"], s["daily_reserved"]) == (0.25, 0.0)
    with pytest.raises(HoldError):
        h.commit(rec(0.25))
    h.release()  # idempotent after settle: no error, no change
    assert m.get_status()["daily_spent"] == 0.25


def test_context_manager_releases_on_error(make_manager: Any) -> None:
    m = make_manager(Budget(daily_limit=1.0, monthly_limit=None, per_request_limit=None))
    with pytest.raises(RuntimeError), m.reserve(0.5):
        raise RuntimeError("provider failed")
    assert m.get_status()["daily_reserved"] == 0.0
    with m.reserve(0.5) as hold:
        hold.commit(rec(0.3, at=datetime.now(UTC)))
    assert m.get_status()["daily_spent"] == 0.3


def test_commit_larger_than_hold_records_the_truth(make_manager: Any) -> None:
    m = make_manager(Budget(daily_limit=1.0, monthly_limit=None, per_request_limit=None))
    h = m.reserve(0.1)
    m.commit(h, rec(0.9, at=datetime.now(UTC)))
    assert m.get_status()["daily_spent"] == 0.9


def test_holds_expire(make_manager: Any) -> None:
    clock = FakeClock(NOON.timestamp())
    m = make_manager(
        Budget(daily_limit=1.0, monthly_limit=None, per_request_limit=None), clock=clock
    )
    m.reserve(0.8, ttl=30)
    with pytest.raises(BudgetExceededError):
        m.reserve(0.5)
    clock.advance(31)
    m.reserve(0.5).release()  # the crashed caller's hold no longer pins the budget


def test_record_counts_in_its_own_period(make_manager: Any) -> None:
    clock = FakeClock(NOON.timestamp())
    m = make_manager(Budget(daily_limit=1.0, monthly_limit=5.0), clock=clock)
    m.record_spend(rec(0.4, at=NOON - timedelta(days=1)))  # backdated: yesterday's bucket
    s = m.get_status()
    assert s["daily_spent"] == 0.0
    assert s["monthly_spent"] == 0.4
    m.record_spend(rec(0.3, at=NOON - timedelta(days=40)))  # an earlier month
    assert m.get_status()["monthly_spent"] == 0.4


def test_time_zone_periods(make_manager: Any) -> None:
    # 23:59:59.999 and 00:00:00 Paris time fall in different days.
    paris = Budget(daily_limit=10.0, timezone="Europe/Paris")
    late = datetime(2026, 11, 28, 22, 59, 59, 999000, tzinfo=UTC)  # 23:59:59.999 in Paris
    clock = FakeClock(late.timestamp())
    m = make_manager(paris, clock=clock)
    m.record_spend(rec(1.0, at=late))
    m.record_spend(rec(2.0, at=late + timedelta(milliseconds=1)))  # 00:00:00.000 next day
    assert m.get_status()["daily_spent"] == 1.0
    clock.advance(0.001)
    assert m.get_status()["daily_spent"] == 2.0


def test_naive_datetimes_are_local_time(make_manager: Any) -> None:
    m = make_manager(Budget(daily_limit=10.0))
    naive_now = datetime.now()
    stored = m.record_spend(rec(0.1, at=naive_now))
    assert abs(stored.timestamp - naive_now.astimezone()) < timedelta(seconds=1)
    aware = datetime.now(timezone(timedelta(hours=5)))
    stored2 = m.record_spend(rec(0.1, at=aware))
    assert abs(stored2.timestamp - aware) < timedelta(microseconds=2)


def test_reset_daily_moves_baseline_and_keeps_history(make_manager: Any) -> None:
    m = make_manager(Budget(daily_limit=1.0, monthly_limit=10.0))
    m.record_spend(rec(0.7, at=datetime.now(UTC)))
    assert m.reset_daily() == 0.7
    s = m.get_status()
    assert s["daily_spent"] == 0.0
    assert s["monthly_spent"] == 0.7  # only the day was reset
    assert len(m.records()) == 1  # history is never deleted
    events = m.ledger.events()
    assert events[0].kind == "reset" and events[0].amount == 700_000_000
    m.record_spend(rec(0.2, at=datetime.now(UTC)))
    assert m.get_status()["daily_spent"] == 0.2
    assert m.reset_monthly() == 0.9
    assert m.get_status()["monthly_spent"] == 0.0


def test_weekly_and_rolling_limits(make_manager: Any) -> None:
    clock = FakeClock(NOON.timestamp())
    b = Budget(
        daily_limit=None,
        monthly_limit=None,
        per_request_limit=None,
        weekly_limit=5.0,
        rolling_limits={3600: 1.0},
    )
    m = make_manager(b, clock=clock)
    m.record_spend(rec(0.9, at=NOON))
    with pytest.raises(BudgetExceededError) as exc:
        m.reserve(0.2)
    assert exc.value.period == "rolling:3600s"
    clock.advance(3600 + 60)
    m.reserve(0.2).release()  # the hour rolled past the spend
    s = m.get_status()
    assert s["weekly_spent"] == 0.9 and s["weekly_limit"] == 5.0
    assert s["rolling_3600s_spent"] == 0.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"cost_usd": -0.01},
        {"cost_usd": math.nan},
        {"cost_usd": math.inf},
        {"input_tokens": -1},
        {"output_tokens": 1.5},
        {"model": ""},
        {"timestamp": "yesterday"},
        {"user_id": 5},
        {"cache_read_tokens": 200},  # more cached than input
        {"reasoning_tokens": 60},  # more reasoning than output
        {"metadata": "task=summarization"},  # not a dict
        {"metadata": {"when": datetime(2026, 1, 1)}},  # not JSON
        {"metadata": {"x": math.nan}},  # not strict JSON
    ],
)
def test_bad_records_raise_and_change_nothing(make_manager: Any, kwargs: dict[str, Any]) -> None:
    m = make_manager(Budget(daily_limit=1.0))
    base: dict[str, Any] = {
        "model": "gpt-4o",
        "input_tokens": 100,
        "output_tokens": 50,
        "cost_usd": 0.01,
    }
    base.update(kwargs)
    with pytest.raises(InvalidInputError):
        m.record_spend(UsageRecord(**base))
    assert m.ledger.count_records() == 0
    assert m.get_status()["daily_spent"] == 0.0


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf, "x", None, True])
def test_bad_amounts_to_admission(make_manager: Any, bad: object) -> None:
    m = make_manager(Budget(daily_limit=1.0))
    with pytest.raises(InvalidInputError):
        m.can_spend(bad)
    with pytest.raises(InvalidInputError):
        m.reserve(bad)
    assert m.get_status()["daily_reserved"] == 0.0


def test_bad_budgets() -> None:
    for kwargs in (
        {"daily_limit": -1.0},
        {"monthly_limit": math.nan},
        {"alert_threshold": 1.5},
        {"alert_threshold": 0},
        {"timezone": "Mars/Olympus"},
        {"rolling_limits": {90: 1.0}},
    ):
        with pytest.raises(InvalidInputError):
            Budget(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        BudgetManager(Budget(), hold_ttl=-1)
    with pytest.raises(InvalidInputError):
        BudgetManager(budget="lots")  # type: ignore[arg-type]


def test_thread_safety_no_overspend(make_manager: Any) -> None:
    m = make_manager(Budget(daily_limit=1.0, monthly_limit=None, per_request_limit=None))
    admitted = []
    start = threading.Barrier(16)

    def worker() -> None:
        start.wait()
        for _ in range(20):
            try:
                h = m.reserve(0.01)
            except BudgetExceededError:
                continue
            m.commit(h, rec(0.01, at=datetime.now(UTC)))
            admitted.append(1)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(admitted) == 100
    assert m.get_status()["daily_spent"] == 1.0
    assert m.ledger.count_records() == 100


def test_metadata_is_kept_with_the_record(make_manager: Any) -> None:
    m = make_manager(Budget(daily_limit=1.0))
    meta = {"task": "classification", "max_tokens": 64, "prompt_hash": "9f2c"}
    stored = m.record_spend(rec(0.01, at=datetime.now(UTC), metadata=meta))
    assert stored.metadata == meta
    assert m.records()[0].metadata == meta
