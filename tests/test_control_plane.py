"""The control plane (budgets, default budgets, virtual keys, audit log) on every ledger.

Each test runs on memory, SQLite and PostgreSQL through the ControlPlane Protocol only, so a
backend that answers differently fails here: versions that grow with every change and only
then, an audit event per change with old and new values, typed errors that change nothing,
compare-and-set key updates, and exact budget round trips.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from costwarden.budget import Budget
from costwarden.control import (
    VirtualKey,
    budget_from_dict,
    budget_from_json,
    budget_to_dict,
    budget_to_json,
)
from costwarden.errors import InvalidInputError
from costwarden.keys import hash_secret
from costwarden.ledger import open_ledger
from costwarden.ledger.control import ControlPlane
from tests import pg

NOW = 1_800_000_000.0
TIGHT = Budget(daily_limit=0.05, monthly_limit=None, per_request_limit=0.01)


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ctl(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "memory":
        ledger = open_ledger("memory://")
    elif request.param == "sqlite":
        ledger = open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    else:
        with pg.temp_schema_url() as url:
            ledger = open_ledger(url)
            try:
                yield ledger
            finally:
                ledger.close()
        return
    yield ledger
    ledger.close()


def state(ctl: Any) -> tuple[Any, ...]:
    """Everything a change could touch, to prove a refused one touched nothing."""
    return (ctl.control_version(), ctl.budgets(), ctl.list_keys(), ctl.audit(limit=1000))


def a_key(key_id: str = "k1", secret: str = "cw-secret-1", **fields: Any) -> VirtualKey:
    return VirtualKey(key_id, hash_secret(secret), secret[:11], NOW, **fields)


# -- budgets ---------------------------------------------------------------------------------
def test_every_ledger_is_a_control_plane(ctl: Any) -> None:
    assert isinstance(ctl, ControlPlane)


@pytest.mark.parametrize(
    "budget",
    [
        Budget(),
        TIGHT,
        Budget(daily_limit=None, monthly_limit=None, per_request_limit=None),
        Budget(
            daily_limit=1.23456789,
            monthly_limit=200,
            per_request_limit=0.000000001,
            alert_threshold=0.9,
            weekly_limit=70.5,
            rolling_limits={3600: 2.5, 60: 0.1},
            timezone="Europe/Paris",
            alert_thresholds=(0.25, 0.75, 1.0, 1.5),
        ),
        Budget(daily_limit=12_345_678.123456789, monthly_limit=9_000_000_000.000000001),
    ],
)
def test_budget_json_round_trip_is_exact(budget: Budget) -> None:
    back = budget_from_json(budget_to_json(budget))
    assert budget_from_dict(budget_to_dict(budget)) == back
    for period in ("daily", "weekly", "monthly", *(p for p in budget.periods())):
        assert back.limit_nanos(period) == budget.limit_nanos(period)
    assert back.per_request_nanos == budget.per_request_nanos
    assert back.thresholds() == budget.thresholds()
    assert back.timezone == budget.timezone
    assert back.rolling_limits == budget.rolling_limits
    if budget.daily_limit is not None and budget.daily_limit < 1e6:
        assert back == budget  # the floats a person typed come back as typed


@pytest.mark.parametrize(
    "data",
    [{}, {"format": 2}, {"format": 1}, {"format": 1, "daily_limit_nanos": -1}, "x", None],
)
def test_a_stored_budget_that_is_not_one_is_a_typed_error(data: Any) -> None:
    with pytest.raises(InvalidInputError):
        budget_from_dict(data)


def test_put_list_replace_remove_budgets_with_versions_and_audit(ctl: Any) -> None:
    v0 = ctl.control_version()
    first = ctl.put_budget("team:research", TIGHT, actor="ann", now=NOW)
    assert first.scope == "team:research" and first.budget == TIGHT and first.actor == "ann"
    v1 = ctl.control_version()
    assert v1 != v0
    assert first.version >= 1
    ctl.put_budget("default:user", Budget(daily_limit=1.0), actor="ann", now=NOW + 1)
    second = ctl.put_budget("team:research", Budget(daily_limit=2.0), actor="bob", now=NOW + 2)
    assert second.version > first.version
    assert [(b.scope, b.budget.daily_limit, b.actor) for b in ctl.budgets()] == [
        ("default:user", 1.0, "ann"),
        ("team:research", 2.0, "bob"),
    ]
    assert ctl.budgets()[0].is_default
    snap = ctl.control_snapshot()
    assert snap.version == ctl.control_version()
    assert snap.get("team:research") == second
    removed = ctl.remove_budget("team:research", actor="cy", now=NOW + 3)
    assert removed == second
    assert [b.scope for b in ctl.budgets()] == ["default:user"]
    events = ctl.audit()
    assert [(e.action, e.target, e.actor) for e in events] == [
        ("budget.remove", "team:research", "cy"),
        ("budget.put", "team:research", "bob"),
        ("budget.put", "default:user", "ann"),
        ("budget.put", "team:research", "ann"),
    ]
    assert events[0].old == second.as_dict() and events[0].new is None
    assert events[1].old == first.as_dict() and events[1].new == second.as_dict()
    assert events[3].old is None
    assert events[1].new is not None
    assert events[1].new["budget"]["daily_limit_nanos"] == 2_000_000_000
    assert events[0].at == NOW + 3


def test_removing_a_missing_budget_changes_nothing(ctl: Any) -> None:
    ctl.put_budget("global", TIGHT, actor="ann", now=NOW)
    before = state(ctl)
    assert ctl.remove_budget("team:nobody", actor="ann", now=NOW) is None
    assert state(ctl) == before


@pytest.mark.parametrize(
    ("scope", "budget", "actor", "now"),
    [
        ("team", TIGHT, "ann", NOW),
        ("team:", TIGHT, "ann", NOW),
        ("default:global", TIGHT, "ann", NOW),
        ("default:nope", TIGHT, "ann", NOW),
        ("planet:earth", TIGHT, "ann", NOW),
        (7, TIGHT, "ann", NOW),
        ("team:x", {"daily_limit": 1}, "ann", NOW),
        ("team:x", TIGHT, "", NOW),
        ("team:x", TIGHT, None, NOW),
        ("team:x", TIGHT, "ann", float("nan")),
        ("team:x", TIGHT, "ann", "now"),
    ],
)
def test_bad_budget_input_is_a_typed_error_that_changes_nothing(
    ctl: Any, scope: Any, budget: Any, actor: Any, now: Any
) -> None:
    ctl.put_budget("global", TIGHT, actor="ann", now=NOW)
    before = state(ctl)
    with pytest.raises(InvalidInputError):
        ctl.put_budget(scope, budget, actor=actor, now=now)
    with pytest.raises(InvalidInputError):
        ctl.remove_budget(scope if scope != "team:x" else 7, actor="ann", now=NOW)
    assert state(ctl) == before


# -- keys ------------------------------------------------------------------------------------
def test_put_and_find_keys_with_their_budget(ctl: Any) -> None:
    key = a_key(
        user="alice",
        team="research",
        budget=TIGHT,
        models=("gpt-4o-mini", "claude-haiku-4-5"),
        rpm=60,
        tpm=10_000,
        expires_at=NOW + 86_400,
        metadata={"owner": "alice", "n": [1, 2]},
    )
    v0 = ctl.control_version()
    assert ctl.put_key(key, actor="ann", now=NOW) == key
    assert ctl.control_version() != v0
    assert ctl.key_by_hash(key.hash) == key
    assert ctl.key_by_id("k1") == key
    assert ctl.key_by_hash(hash_secret("cw-other")) is None
    assert ctl.key_by_id("nope") is None
    assert ctl.list_keys() == [key]
    (stored,) = ctl.budgets()
    assert (stored.scope, stored.budget) == ("key:k1", TIGHT)
    (event,) = ctl.audit()
    assert (event.action, event.target, event.old) == ("key.create", "key:k1", None)
    assert event.new == key.as_dict()
    assert key.hash not in repr(event)  # listings and the audit log never carry hashes


def test_keys_are_listed_oldest_first(ctl: Any) -> None:
    b = replace(a_key("b", "cw-b"), created_at=NOW + 1)
    a = replace(a_key("a", "cw-a"), created_at=NOW + 1)
    c = replace(a_key("c", "cw-c"), created_at=NOW)
    for k in (b, a, c):
        ctl.put_key(k, actor="ann", now=NOW)
    assert [k.key_id for k in ctl.list_keys()] == ["c", "a", "b"]


@pytest.mark.parametrize(
    "bad",
    [
        "not a key",
        VirtualKey("", hash_secret("x"), "cw-x", NOW),
        VirtualKey("k9", "cw-plaintext-secret", "cw-x", NOW),
        VirtualKey("k9", hash_secret("x").upper(), "cw-x", NOW),
        VirtualKey("k9", hash_secret("x"), "", NOW),
        VirtualKey("k9", hash_secret("x"), "cw-x", float("inf")),
        a_key("k1", "cw-fresh"),  # the id is taken
        a_key("k2", "cw-secret-1"),  # the secret is taken
    ],
)
def test_bad_keys_are_refused_and_change_nothing(ctl: Any, bad: Any) -> None:
    ctl.put_key(a_key(), actor="ann", now=NOW)
    before = state(ctl)
    with pytest.raises(InvalidInputError):
        ctl.put_key(bad, actor="ann", now=NOW)
    assert state(ctl) == before


def test_a_key_whose_metadata_cannot_be_stored_changes_nothing(ctl: Any) -> None:
    # keys.create_key refuses such metadata with a typed error; the ledger itself must still
    # refuse it before writing anything (the memory ledger has no rollback).
    key = a_key()
    ctl.put_key(key, actor="ann", now=NOW)
    before = state(ctl)
    unstorable = {"when": object()}
    with pytest.raises(TypeError):
        ctl.put_key(a_key("k2", "cw-two", metadata=unstorable), actor="ann", now=NOW)
    with pytest.raises(TypeError):
        ctl.update_key(replace(key, metadata=unstorable), expected=key, actor="ann", now=NOW)
    assert state(ctl) == before


def test_update_key_is_compare_and_set(ctl: Any) -> None:
    key = a_key(budget=TIGHT)
    ctl.put_key(key, actor="ann", now=NOW)
    revoked = replace(key, revoked_at=NOW + 5)
    assert ctl.update_key(revoked, expected=key, actor="bob", now=NOW + 5)
    assert ctl.key_by_id("k1") == revoked
    before = state(ctl)
    # A writer that read the key before the revocation loses: nothing changes.
    assert not ctl.update_key(replace(key, rpm=5), expected=key, actor="cy", now=NOW + 6)
    assert not ctl.update_key(
        replace(a_key("zz", "cw-zz")), expected=a_key("zz", "cw-zz"), actor="cy", now=NOW
    )
    assert state(ctl) == before
    (event, _create) = ctl.audit()
    assert (event.action, event.actor) == ("key.update", "bob")
    assert event.old == key.as_dict() and event.new == revoked.as_dict()


def test_update_key_moves_the_key_budget_and_the_previous_hash_still_finds_it(
    ctl: Any,
) -> None:
    key = a_key(budget=TIGHT)
    ctl.put_key(key, actor="ann", now=NOW)
    rotated = replace(
        key,
        hash=hash_secret("cw-secret-2"),
        prefix="cw-secret-2",
        previous_hash=key.hash,
        previous_prefix=key.prefix,
        grace_until=NOW + 60,
        budget=Budget(daily_limit=3.0),
    )
    assert ctl.update_key(rotated, expected=key, actor="ann", now=NOW + 1)
    assert ctl.key_by_hash(hash_secret("cw-secret-2")) == rotated
    assert ctl.key_by_hash(key.hash) == rotated
    assert [(b.scope, b.budget) for b in ctl.budgets()] == [("key:k1", Budget(daily_limit=3.0))]
    unbudgeted = replace(rotated, budget=None)
    assert ctl.update_key(unbudgeted, expected=rotated, actor="ann", now=NOW + 2)
    assert ctl.budgets() == []
    assert ctl.key_by_id("k1") == unbudgeted


def test_update_key_refuses_changing_identity_or_taking_another_secret(ctl: Any) -> None:
    one, two = a_key("k1", "cw-one"), a_key("k2", "cw-two")
    ctl.put_key(one, actor="ann", now=NOW)
    ctl.put_key(two, actor="ann", now=NOW)
    before = state(ctl)
    for new in (
        replace(one, key_id="k3"),
        replace(one, created_at=NOW + 1),
        replace(one, hash=two.hash),
    ):
        with pytest.raises(InvalidInputError):
            ctl.update_key(new, expected=one, actor="ann", now=NOW)
    assert state(ctl) == before


# -- audit -----------------------------------------------------------------------------------
def test_audit_filters_by_time_target_and_limit(ctl: Any) -> None:
    for i in range(5):
        ctl.put_budget(f"team:t{i % 2}", TIGHT, actor="ann", now=NOW + i)
    assert [e.at for e in ctl.audit()] == [NOW + 4, NOW + 3, NOW + 2, NOW + 1, NOW]
    assert [e.at for e in ctl.audit(since=NOW + 1, until=NOW + 3)] == [NOW + 2, NOW + 1]
    assert [e.at for e in ctl.audit(target="team:t1")] == [NOW + 3, NOW + 1]
    assert [e.at for e in ctl.audit(limit=2)] == [NOW + 4, NOW + 3]
    ids = [e.id for e in ctl.audit()]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 5
    for bad in ({"limit": 0}, {"limit": "3"}, {"since": "yesterday"}, {"target": 3}):
        with pytest.raises(InvalidInputError):
            ctl.audit(**bad)


def test_version_changes_only_with_a_change(ctl: Any) -> None:
    v = ctl.control_version()
    ctl.budgets()
    ctl.list_keys()
    ctl.audit()
    assert ctl.control_version() == v
    ctl.put_budget("global", TIGHT, actor="ann", now=time.time())
    assert ctl.control_version() != v
