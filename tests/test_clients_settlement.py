"""CallAccount holds the estimate in exact nano-USD (no float on the way to the ledger)."""

from __future__ import annotations

import pytest

from costwarden.budget import Budget
from costwarden.clients import Attribution, CallAccount, Estimate
from costwarden.errors import InvalidInputError
from costwarden.manager import BudgetManager

EXACT = 10**16 + 1
"""$10,000,000.000000001: nanos -> float USD -> nanos turns it into 10**16 + 2."""


def test_the_hold_is_the_estimate_to_the_nano() -> None:
    m = BudgetManager(
        Budget(daily_limit=1e8, monthly_limit=None, per_request_limit=None), ledger="memory://"
    )
    estimate = Estimate("gpt-4o-mini", 10, 10, EXACT, True)
    account = CallAccount(m, estimate, Attribution(), api="chat", provider="openai")
    assert account.hold.amount_nanos == EXACT
    m.release(account.hold)


@pytest.mark.parametrize("bad", [0.5, -1, True, "5", None])
def test_reserve_nanos_refuses_what_is_not_a_count_of_nanos(bad: object) -> None:
    m = BudgetManager(Budget(daily_limit=1.0, monthly_limit=None), ledger="memory://")
    with pytest.raises(InvalidInputError, match="non-negative int of nano-USD"):
        m.reserve_nanos(bad)  # type: ignore[arg-type]
    assert m.get_status()["daily_reserved"] == 0.0  # nothing held


def test_reserve_in_usd_is_unchanged() -> None:
    m = BudgetManager(Budget(daily_limit=1.0, monthly_limit=None), ledger="memory://")
    hold = m.reserve(0.05)
    assert hold.amount_nanos == 50_000_000 and hold.amount_usd == 0.05
    m.release(hold)
