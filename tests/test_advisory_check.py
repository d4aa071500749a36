"""``can_spend`` + ``record_spend`` is advisory, ``reserve`` is not: what README.md and the
docstrings say, shown deterministically (two callers interleaved, no thread timing)."""

from __future__ import annotations

import pytest

from costwarden.budget import Budget
from costwarden.errors import BudgetExceededError
from costwarden.manager import BudgetManager
from costwarden.records import UsageRecord

BUDGET = Budget(daily_limit=1.0, monthly_limit=None, per_request_limit=None)


def test_check_then_record_lets_two_callers_through_the_same_headroom(sqlite_url: str) -> None:
    with BudgetManager(BUDGET, ledger=sqlite_url) as m:
        first, second = m.can_spend(0.6), m.can_spend(0.6)  # both ask before either spends
        assert first and second
        for _ in range(2):
            m.record_spend(UsageRecord("gpt-4o", 1, 1, cost_usd=0.6))  # never refused
        assert m.get_status()["daily_spent"] == 1.2  # over the $1 limit


def test_reserve_holds_the_headroom_so_the_second_caller_is_refused(sqlite_url: str) -> None:
    with BudgetManager(BUDGET, ledger=sqlite_url) as m:
        hold = m.reserve(0.6)
        with pytest.raises(BudgetExceededError):
            m.reserve(0.6)
        hold.commit(UsageRecord("gpt-4o", 1, 1, cost_usd=0.6))
        assert m.get_status()["daily_spent"] == 0.6
