"""The budget registry and its plans: versions, immutability, windows and caps."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from costwarden.budget import GLOBAL, Budget, Scope
from costwarden.errors import InvalidInputError
from costwarden.ledger.base import Bucket
from costwarden.plans import BudgetCheck, BudgetRegistry, Planner, one_scope

NOON = datetime(2026, 11, 28, 12, 0, tzinfo=UTC).timestamp()
ALICE = Scope("user", "alice")


def _budget(daily: float | None = 1.0, per_request: float | None = None, **kw: object) -> Budget:
    return Budget(daily_limit=daily, monthly_limit=None, per_request_limit=per_request, **kw)  # type: ignore[arg-type]


def test_registry_version_moves_on_every_change_and_views_are_read_only() -> None:
    reg = BudgetRegistry(_budget())
    seen = [reg.version]
    reg.set(ALICE, _budget(2.0))
    seen.append(reg.version)
    reg.set_default("team", _budget(3.0))
    seen.append(reg.version)
    assert reg.remove(ALICE) == _budget(2.0)
    seen.append(reg.version)
    assert reg.remove_default("team") == _budget(3.0)
    seen.append(reg.version)
    assert len(set(seen)) == 5 and seen == sorted(seen)
    with pytest.raises(TypeError):
        reg.all()[ALICE] = _budget()  # type: ignore[index]
    assert list(reg.all()) == [GLOBAL] and not reg.defaults()


def test_registry_defaults_apply_only_without_an_own_budget() -> None:
    reg = BudgetRegistry(_budget())
    reg.set_default("user", _budget(0.5))
    assert reg.get(ALICE) is None and reg.budget_for(ALICE) == _budget(0.5)
    reg.set(ALICE, _budget(5.0))
    assert reg.budget_for(ALICE) == _budget(5.0)
    assert reg.budget_for(Scope("team", "x")) is None


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda r: r.set(ALICE, "10"), "budget must be a Budget"),
        (lambda r: r.set_default("galaxy", Budget()), "not 'galaxy'"),
        (lambda r: r.remove(GLOBAL), "global budget cannot be removed"),
    ],
)
def test_registry_refuses_bad_changes_and_changes_nothing(call: object, message: str) -> None:
    reg = BudgetRegistry(_budget())
    with pytest.raises(InvalidInputError, match=message):
        call(reg)  # type: ignore[operator]
    assert reg.version == 0 and list(reg.all()) == [GLOBAL]


def test_a_plan_is_immutable_hashable_and_rebuilt_when_the_version_moves() -> None:
    reg = BudgetRegistry(_budget(1.0, per_request=0.5))
    planner = Planner(reg)
    plan = planner.plan("alice", None, None, (), None, NOON)
    assert planner.plan("alice", None, None, [], None, NOON + 60) is plan  # same day: cached
    assert hash(plan) == hash(dataclasses.replace(plan))
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.min_cap = 0  # type: ignore[misc]
    assert plan.scopes == (GLOBAL, ALICE)
    assert [c.bucket.scope for c in plan.checks] == ["global"]
    assert plan.watch == tuple(c.bucket for c in plan.checks)
    # Equal by value (bucket and limit), as ledgers that remember work per value rely on.
    assert plan.checks == (BudgetCheck(plan.watch[0], 1_000_000_000, Budget()),)
    reg.set(ALICE, _budget(0.25, per_request=0.1))
    fresh = planner.plan("alice", None, None, (), None, NOON)
    assert fresh is not plan and fresh.min_cap == 100_000_000
    assert fresh.over_cap(200_000_000) == (ALICE, 100_000_000)
    assert fresh.over_cap(100_000_000) is None
    assert [str(c.bucket.scope) for c in fresh.checks] == ["global", "user:alice"]


def test_plan_range_is_the_day_and_every_scope_keeps_calendar_buckets() -> None:
    reg = BudgetRegistry(_budget(1.0, timezone="Europe/Paris"))
    planner = Planner(reg)
    plan = planner.plan(None, "eng", None, ("t",), None, NOON, "chat")
    day = Bucket("global", "daily", int(NOON) - 13 * 3600, int(NOON) + 11 * 3600)  # Paris, UTC+1
    assert plan.checks[0].bucket == day
    assert (plan.valid_from, plan.valid_until) == (day.start, day.end)
    assert plan.covers(day.start) and not plan.covers(day.end)
    names = [(b.scope, b.period) for b in plan.buckets]
    scopes = ["global", "team:eng", "tag:t", "tag:chat"]
    assert names == [(s, p) for s in scopes for p in ("daily", "weekly", "monthly")]
    tomorrow = planner.plan(None, "eng", None, ("t",), None, day.end, "chat")
    assert tomorrow.checks[0].bucket.start == day.end


def test_rolling_limits_make_a_plan_last_one_minute() -> None:
    reg = BudgetRegistry(_budget(None, rolling_limits={3600: 1.0}))
    plan = Planner(reg).plan(None, None, None, (), None, NOON + 30)
    assert (plan.valid_from, plan.valid_until) == (NOON, NOON + 60)
    assert [b.period for b in plan.buckets] == ["daily", "weekly", "monthly", "minute"]
    [check] = plan.checks
    assert check.bucket == Bucket("global", "rolling:3600s", int(NOON) + 60 - 3600, int(NOON) + 60)


def test_one_scope_names_at_most_one() -> None:
    assert one_scope() is GLOBAL
    assert one_scope(team="eng") == Scope("team", "eng")
    with pytest.raises(InvalidInputError, match="one scope at a time"):
        one_scope(user="a", team="b")
    with pytest.raises(InvalidInputError, match="non-empty string"):
        one_scope(user="")


def test_a_reset_naming_an_unknown_scope_kind_is_a_typed_error() -> None:
    from costwarden.manager import BudgetManager

    with BudgetManager(_budget()) as m:
        words = r"reset_daily\(\) takes one of user, team, key, tag, model, not galaxy"
        with pytest.raises(InvalidInputError, match=words):
            m.reset_daily(galaxy="andromeda")
        with pytest.raises(InvalidInputError, match="one scope at a time"):
            m.reset_daily(user="a", team="b")
