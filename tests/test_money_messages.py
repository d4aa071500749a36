"""Money shown to people in comparisons reads true: ``money.format_compared`` and the messages
that use it (budget denials, per-request and max_cost refusals, the optimizer's "nothing fits").

The bug this guards against: each figure rounded on its own, so a true denial printed as
``$0.09 spent + $0.00 reserved + $0.005245 requested > $0.10 limit``.
"""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from costwarden.budget import Budget
from costwarden.errors import BudgetExceededError, NoModelFitsError
from costwarden.manager import BudgetManager
from costwarden.money import format_compared, usd_to_nanos
from costwarden.optimizer import CostOptimizer
from costwarden.records import UsageRecord

amounts = st.integers(min_value=0, max_value=10**13)  # up to $10,000, in nano-USD
DENIAL = re.compile(
    r"(\$[\d,.]+) spent \+ (\$[\d,.]+) reserved \+ (\$[\d,.]+) requested > (\$[\d,.]+) limit "
    r"\((\$[\d,.]+) left\)"
)


def read(printed: str) -> int:
    """A printed figure back to nano-USD, as a reader would take it."""
    return usd_to_nanos(Decimal(printed.replace("$", "").replace(",", "")))


@given(amounts, amounts, amounts, amounts)
def test_a_printed_sum_over_a_limit_stays_over(a: int, b: int, c: int, limit: int) -> None:
    assume(a + b + c > limit)
    shown = format_compared(a, b, c, limit, holds=lambda a, b, c, lim: a + b + c > lim)
    ra, rb, rc, rlimit = map(read, shown)
    assert ra + rb + rc > rlimit, shown


@given(amounts, amounts)
def test_different_amounts_never_print_alike_and_keep_their_order(a: int, b: int) -> None:
    sa, sb = format_compared(a, b)
    assert (sa == sb) == (a == b)
    assert (read(sa) < read(sb)) == (a < b)
    assert (read(sa) == 0) == (a == 0)


def test_precision_is_the_least_that_reads_true() -> None:
    assert format_compared(4_010_000_000, 5_000_000_000) == ["$4.01", "$5.00"]
    assert format_compared(1_234_567_000_000) == ["$1,234.57"]
    assert format_compared(13_500_000, 10_000_000) == ["$0.014", "$0.010"]
    assert format_compared(630_000, 100_000) == ["$0.00063", "$0.00010"]  # two significant digits
    assert format_compared(1, 0) == ["$0.000000001", "$0.000000000"]


@settings(max_examples=60, deadline=None)
@given(
    limit=st.integers(min_value=1, max_value=10**11),
    spent_share=st.floats(0, 1),
    reserved_share=st.floats(0, 1),
    over=st.integers(min_value=1, max_value=10**10),
)
def test_a_denial_message_reads_true(
    limit: int, spent_share: float, reserved_share: float, over: int
) -> None:
    spent = int(limit * spent_share)
    reserved = int((limit - spent) * reserved_share)
    asked = limit - spent - reserved + over
    usd = Decimal(1).scaleb(-9)
    budget = Budget(daily_limit=Decimal(limit) * usd, monthly_limit=None, per_request_limit=None)
    with BudgetManager(budget) as manager:
        if spent:
            manager.record_spend(UsageRecord("gpt-4o", 1, 1, cost_usd=Decimal(spent) * usd))
        hold = manager.reserve(Decimal(reserved) * usd) if reserved else None
        with pytest.raises(BudgetExceededError) as err:
            manager.reserve(Decimal(asked) * usd)
        if hold is not None:
            hold.release()
    match = DENIAL.search(str(err.value))
    assert match, str(err.value)
    s, r, a, lim, left = map(read, match.groups())
    assert s + r + a > lim, str(err.value)
    assert left == max(0, lim - s - r), str(err.value)


def test_the_reported_denial_now_reads_true() -> None:
    """$0.094999 spent, $0.005245 asked, $0.10 limit: was "$0.09 + $0.00 + $0.005245 > $0.10"."""
    budget = Budget(daily_limit=0.10, monthly_limit=None, per_request_limit=None)
    with BudgetManager(budget) as manager:
        manager.record_spend(UsageRecord("gpt-4o", 1, 1, cost_usd=0.094999))
        with pytest.raises(BudgetExceededError) as err:
            manager.reserve(0.005245)
    text = str(err.value)
    assert "$0.0950 spent + $0.0000 reserved + $0.0052 requested > $0.1000 limit" in text
    match = DENIAL.search(text)
    assert match, text
    s, r, a, lim, left = map(read, match.groups())
    assert s + r + a > lim and left == lim - s - r, text


def test_a_model_over_max_cost_is_not_shown_at_max_cost() -> None:
    """Was: "within max_cost $0.01 ... claude-3-7-sonnet (score 96, $0.01 per request)"."""
    opt = CostOptimizer(
        {
            "claude-3-7-sonnet": {"input": 3.0, "output": 15.0},
            "gpt-4o-mini": {"input": 0.15, "output": 0.6},
        }
    )
    with pytest.raises(NoModelFitsError) as err:
        opt.select_model(
            "summarization", max_cost=0.01, quality=90, input_tokens=3000, output_tokens=300
        )
    text = str(err.value)
    bound = re.search(r"max_cost (\$[\d,.]+)", text)
    over = re.search(r"claude-3-7-sonnet \(score \d+, (\$[\d,.]+) per request", text)
    within = re.search(r"gpt-4o-mini \(score \d+, (\$[\d,.]+) per request", text)
    assert bound and over and within, text
    assert read(over.group(1)) > read(bound.group(1)) >= read(within.group(1)), text
