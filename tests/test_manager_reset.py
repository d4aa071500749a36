"""reset_daily / reset_monthly / reset(): which scopes a reset covers, on memory and SQLite.

The CLI's tests (tests/test_cli.py) cover the command over a config file; these cover the
library's choices: default-budget scopes with spend, ``"all"``, a named scope, bad input.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from costwarden.budget import Budget
from costwarden.errors import InvalidInputError
from costwarden.records import UsageRecord


def spend(m: Any, usd: float, **who: Any) -> None:
    m.record_spend(UsageRecord("gpt-4o", 1, 1, usd, datetime.now(UTC), **who))


def test_default_reset_covers_users_under_the_default_budget(make_manager: Any) -> None:
    m = make_manager(Budget(daily_limit=100.0, monthly_limit=None))
    m.set_default_budget("user", Budget(daily_limit=1.0, monthly_limit=None))
    spend(m, 1.0, user_id="bob")
    spend(m, 0.5, tags=("batch",))
    assert not m.can_spend(0.01, user="bob")
    assert m.reset("daily") == {"global": 1.5, "user:bob": 1.0}
    assert m.can_spend(0.01, user="bob")
    assert m.get_status(tag="batch")["daily_spent"] == 0.5  # no budget covers tags


def test_reset_daily_returns_the_total_moved_across_scopes(make_manager: Any) -> None:
    m = make_manager(Budget(daily_limit=100.0, monthly_limit=None))
    m.set_default_budget("team", Budget(daily_limit=1.0, monthly_limit=None))
    spend(m, 0.25, user_id="ann", team="eng")
    spend(m, 0.5, team="ops")
    assert m.reset_daily() == 1.5  # global 0.75 + team:eng 0.25 + team:ops 0.5
    assert m.get_status(team="ops")["daily_spent"] == 0.0
    assert m.reset_daily() == 0.0


def test_all_covers_every_scope_with_spend_and_a_name_covers_one(make_manager: Any) -> None:
    m = make_manager(Budget(daily_limit=100.0, monthly_limit=None))
    spend(m, 0.25, user_id="ann", endpoint="/chat")
    m.record_spend(
        UsageRecord("gpt-4o", 1, 1, 2.0, datetime.now(UTC) - timedelta(days=40), user_id="old")
    )
    assert m.reset_monthly("user:ann") == 0.25
    assert m.reset("monthly", "all") == {
        "global": 0.25,
        "model:gpt-4o": 0.25,
        "tag:/chat": 0.25,
    }  # ann's was reset already; old's record is in another month
    assert m.reset("weekly", user="ann") == {"user:ann": 0.25}
    assert m.reset("daily", "global") == {"global": 0.25}


@pytest.mark.parametrize(
    ("args", "kw"),
    [
        (("hourly",), {}),
        (("daily", "alice"), {}),
        (("daily", "user:alice"), {"team": "eng"}),
        (("daily",), {"user": ""}),
        (("daily", 3), {}),
    ],
)
def test_bad_reset_arguments_are_typed_errors_and_change_nothing(
    make_manager: Any, args: tuple[Any, ...], kw: dict[str, Any]
) -> None:
    m = make_manager(Budget(daily_limit=100.0, monthly_limit=None))
    spend(m, 0.25, user_id="alice")
    with pytest.raises(InvalidInputError):
        m.reset(*args, **kw)
    assert m.ledger.events() == [] and m.get_status()["daily_spent"] == 0.25
