"""BudgetManager's cached plans: what invalidates them, and arguments they must not change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from costwarden.budget import Budget
from costwarden.errors import BudgetExceededError, InvalidInputError
from costwarden.manager import BudgetManager
from costwarden.records import AlertLevel, UsageRecord
from tests.helpers import FakeClock

NOON = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def _budget(daily: float | None = 1.0, per_request: float | None = None) -> Budget:
    return Budget(daily_limit=daily, monthly_limit=None, per_request_limit=per_request)


def test_set_budget_replaces_cached_limits_and_caps() -> None:
    m = BudgetManager(_budget(daily=10.0, per_request=1.0))
    m.reserve(0.5, user="ann").release()  # plan for (user=ann) cached
    with pytest.raises(BudgetExceededError):
        m.reserve(2.0, user="ann")  # per-request cap 1.0
    m.set_budget(_budget(daily=10.0, per_request=5.0))
    m.reserve(2.0, user="ann").release()  # the new cap applies at once
    m.set_budget(_budget(daily=0.4, per_request=None), user="ann")
    with pytest.raises(BudgetExceededError) as exc:
        m.reserve(0.5, user="ann")
    assert exc.value.scope == "user:ann"
    assert m.can_spend(0.5, user="ben")


def test_set_default_budget_reaches_users_already_seen() -> None:
    m = BudgetManager(_budget(daily=10.0))
    assert m.can_spend(0.5, user="ann")
    m.reserve(0.5, user="ann").release()
    m.set_default_budget("user", _budget(daily=0.3))
    assert not m.can_spend(0.5, user="ann")
    with pytest.raises(BudgetExceededError) as exc:
        m.reserve(0.5, user="ann")
    assert exc.value.scope == "user:ann"


def test_cached_windows_roll_over_at_midnight() -> None:
    clock = FakeClock(NOON.timestamp())
    m = BudgetManager(_budget(daily=1.0), clock=clock)
    m.commit(m.reserve(0.6), UsageRecord("gpt-4o", 1, 1, cost_usd=0.6, timestamp=NOON))
    with pytest.raises(BudgetExceededError):
        m.reserve(0.6)
    clock.advance(timedelta(hours=12).total_seconds())  # next day, 00:00 UTC
    hold = m.reserve(0.6)  # a new day's window: the cached one no longer applies
    tomorrow = NOON + timedelta(hours=12)
    m.commit(hold, UsageRecord("gpt-4o", 1, 1, cost_usd=0.6, timestamp=tomorrow))
    assert m.get_status()["daily_spent"] == pytest.approx(0.6)
    # A record backdated to the first day still lands in that day's bucket.
    m.record_spend(UsageRecord("gpt-4o", 1, 1, cost_usd=0.1, timestamp=NOON))
    assert m.get_status()["daily_spent"] == pytest.approx(0.6)
    assert m.get_status()["monthly_spent"] == pytest.approx(1.3)


@pytest.mark.parametrize(
    "tags",
    [("a", "b"), ["a", "b"], iter(["a", "b"]), ("a", "b", "a")],
    ids=["tuple", "list", "iterator", "duplicates"],
)
def test_tag_spellings_reach_the_same_budgets(tags: object) -> None:
    m = BudgetManager(_budget(daily=10.0))
    m.set_budget(_budget(daily=0.5), tag="b")
    with pytest.raises(BudgetExceededError) as exc:
        m.reserve(0.6, tags=tags)  # type: ignore[arg-type]
    assert exc.value.scope == "tag:b"


def test_a_single_string_tag_is_one_tag() -> None:
    m = BudgetManager(_budget(daily=10.0))
    m.set_budget(_budget(daily=0.5), tag="ab")
    assert not m.can_spend(0.6, tags="ab")
    assert m.can_spend(0.6, tags=("a", "b"))


@pytest.mark.parametrize(
    "kwargs",
    [{"user": 5}, {"user": ["ann"]}, {"tags": 3}, {"tags": [["x"]]}, {"model": {"m": 1}}],
)
def test_bad_scope_arguments_still_raise_typed_errors(kwargs: dict[str, object]) -> None:
    m = BudgetManager(_budget(daily=10.0))
    for _ in range(2):  # a second time too: nothing bad may have been cached
        with pytest.raises(InvalidInputError):
            m.reserve(0.1, **kwargs)  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError):
            m.can_spend(0.1, **kwargs)  # type: ignore[arg-type]


def test_a_record_endpoint_counts_as_a_tag() -> None:
    m = BudgetManager(_budget(daily=10.0))
    m.set_budget(_budget(daily=0.5), tag="/chat")
    m.record_spend(UsageRecord("gpt-4o", 1, 1, cost_usd=0.4, endpoint="/chat"))
    m.record_spend(UsageRecord("gpt-4o", 1, 1, cost_usd=0.4, endpoint="/chat", tags=("/chat",)))
    m.record_spend(UsageRecord("gpt-4o", 1, 1, cost_usd=0.4))
    assert m.get_status(tag="/chat")["daily_spent"] == pytest.approx(0.8)
    assert m.get_status()["daily_spent"] == pytest.approx(1.2)


def test_thresholds_fire_once_each_as_spend_crosses_them() -> None:
    fired: list[tuple[AlertLevel, str]] = []
    m = BudgetManager(
        Budget(daily_limit=1.0, monthly_limit=None, per_request_limit=None),
        alert_handler=lambda level, message: fired.append((level, message)),
    )
    for _ in range(12):
        m.record_spend(UsageRecord("gpt-4o", 1, 1, cost_usd=0.1))
    assert m.flush_alerts()
    assert [(level, message.split(" used")[0]) for level, message in fired] == [
        (AlertLevel.INFO, "Daily budget 50%"),
        (AlertLevel.WARNING, "Daily budget 80%"),
        (AlertLevel.CRITICAL, "Daily budget 100%"),
    ]
    m.close()
