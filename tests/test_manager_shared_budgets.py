"""A manager's budgets are ledger data: ``set_budget``/``set_default_budget``/``remove_budget``/
``budgets()`` on memory, SQLite and PostgreSQL; every manager on the ledger enforces a change
from its next admission on; local budgets (the constructor's, a config file's) apply only
where the ledger has none for the scope."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from costwarden.budget import Budget, Scope
from costwarden.config import load_config
from costwarden.errors import BudgetExceededError, InvalidInputError
from costwarden.manager import BudgetManager
from tests import pg

ONE = Budget(daily_limit=1.0, monthly_limit=None, per_request_limit=None)
CENT = Budget(daily_limit=0.01, monthly_limit=None, per_request_limit=None)
FREE = Budget(None, None, None)


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "postgres":
        with pg.temp_schema_url() as pg_url:
            yield pg_url
        return
    yield "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 's.db'}"


def within_the_bound(url: str) -> None:
    """Wait out how late another manager may see a change (docs/storage.md): PostgreSQL
    polls the control version every 250 ms; SQLite and memory see it at once."""
    if url.startswith("postgresql"):
        time.sleep(0.3)


def admitted(manager: BudgetManager, amount: float, **scope: str) -> bool:
    try:
        manager.reserve(amount, **scope).release()
    except BudgetExceededError:
        return False
    return True


def test_set_remove_and_list_budgets(url: str) -> None:
    with BudgetManager(FREE, ledger=url) as m:
        m.set_budget(CENT, team="research", actor="ops:ann")
        m.set_default_budget("user", ONE, actor="ops:ann")
        listed = {b.scope: b for b in m.budgets()}
        assert set(listed) == {"global", "team:research", "default:user"}
        assert listed["team:research"].source == "ledger"
        assert listed["team:research"].budget == CENT
        assert listed["team:research"].stored is not None
        assert listed["team:research"].stored.actor == "ops:ann"
        assert listed["global"].source == "code"  # the constructor's: local, not stored
        assert not admitted(m, 0.02, team="research")
        assert admitted(m, 0.02, team="ops")
        assert not admitted(m, 1.5, user="zed")  # the default budget
        assert m.budget_for(Scope("user", "zed")) == ONE

        assert m.remove_budget(team="research", actor="ops:bob") == CENT
        assert m.remove_budget(team="research") is None  # nothing stored: nothing changes
        assert admitted(m, 0.02, team="research")
        assert m.remove_default_budget("user") == ONE
        assert admitted(m, 1.5, user="zed")
        assert [b.scope for b in m.budgets()] == ["global"]

        events = m.ledger.audit()  # type: ignore[attr-defined]
        assert [(e.action, e.target, e.actor) for e in events] == [
            ("budget.remove", "default:user", events[0].actor),
            ("budget.remove", "team:research", "ops:bob"),
            ("budget.put", "default:user", "ops:ann"),
            ("budget.put", "team:research", "ops:ann"),
        ]
        assert events[0].actor.startswith("library:")  # a default actor names the process


def test_global_set_in_the_ledger_wins_and_removing_it_restores_the_constructors(
    url: str,
) -> None:
    with BudgetManager(ONE, ledger=url) as m:
        assert admitted(m, 0.5)
        m.set_budget(CENT)
        assert m.budget == CENT and not admitted(m, 0.5)
        assert {b.scope: b.source for b in m.budgets()} == {"global": "ledger"}
        assert m.remove_budget() == CENT
        assert m.budget == ONE and admitted(m, 0.5)


def test_bad_input_changes_nothing(url: str) -> None:
    with BudgetManager(ONE, ledger=url) as m:
        m.set_budget(CENT, team="t")
        before = [b.as_dict() for b in m.budgets()]
        with pytest.raises(InvalidInputError):
            m.set_budget("1.0", team="t")  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError):
            m.set_budget(ONE, team="t", user="u")
        with pytest.raises(InvalidInputError):
            m.set_budget(ONE, user="x" * 600)
        with pytest.raises(InvalidInputError):
            m.set_default_budget("global", ONE)
        with pytest.raises(InvalidInputError):
            m.set_budget(ONE, team="t", actor="")
        with pytest.raises(InvalidInputError):
            m.remove_default_budget("planet")
        assert [b.as_dict() for b in m.budgets()] == before
        assert len(m.ledger.audit()) == 1  # type: ignore[attr-defined]


def test_a_second_manager_enforces_a_change_from_its_next_admission(url: str) -> None:
    if url == "memory://":
        pytest.skip("two managers share a memory ledger only when handed the same object")
    first = BudgetManager(FREE, ledger=url)
    second = BudgetManager(FREE, ledger=url)
    try:
        assert admitted(second, 0.5, team="research")  # a plan is cached now
        first.set_budget(CENT, team="research")
        within_the_bound(url)
        assert not admitted(second, 0.5, team="research")
        assert second.get_status(team="research")["daily_limit"] == 0.01
        first.remove_budget(team="research")
        within_the_bound(url)
        assert admitted(second, 0.5, team="research")
    finally:
        first.close()
        second.close()


def test_memory_ledgers_handed_to_two_managers_share_budgets() -> None:
    from costwarden.ledger import open_ledger

    ledger = open_ledger("memory://")
    a, b = BudgetManager(FREE, ledger=ledger), BudgetManager(FREE, ledger=ledger)
    a.set_budget(CENT, user="alice")
    assert not admitted(b, 0.5, user="alice")
    ledger.close()


CONFIG = """
[budget]
daily_limit = 5
[budgets.user.alice]
daily_limit = 0.01
[default_budgets.team]
daily_limit = 0.02
"""


def test_config_budgets_apply_where_the_ledger_has_none(url: str, tmp_path: Path) -> None:
    if url == "memory://":
        pytest.skip("a config file's manager opens its own memory ledger")
    cfg = tmp_path / "costwarden.toml"
    cfg.write_text(CONFIG)
    config = load_config(cfg).with_ledger(url, "test")
    with config.build_manager(alerts=False) as m:
        assert not admitted(m, 0.5, user="alice")  # the file's budget
        assert {b.scope: b.source for b in m.budgets()} == {
            "default:team": f"config:{cfg}",
            "global": f"config:{cfg}",
            "user:alice": f"config:{cfg}",
        }
        assert m.ledger.budgets() == []  # type: ignore[attr-defined]  # never written
        with BudgetManager(ledger=url) as other:
            other.set_budget(ONE, user="alice", actor="ops")
        within_the_bound(url)
        assert admitted(m, 0.5, user="alice")  # the ledger's wins
        listed = {b.scope: b for b in m.budgets()}
        assert listed["user:alice"].source == "ledger"
        assert listed["user:alice"].hides == f"config:{cfg}"
        assert not admitted(m, 0.05, team="any")  # the file's default still applies


def test_the_cheap_version_comparison_reloads_exactly_when_something_moved(url: str) -> None:
    # Issue 12: an admission first compares the ledger's control version with the one its
    # budgets were read at (and the generation it loaded); only a difference reloads.
    if url == "memory://":
        pytest.skip("a second manager shares a memory ledger only when handed the same object")
    with BudgetManager(ONE, ledger=url) as a, BudgetManager(FREE, ledger=url) as b:
        assert admitted(a, 0.5, team="x")
        steady = a.registry.version
        for _ in range(3):  # nothing moved: no reload, the plans stay
            assert admitted(a, 0.5, team="x")
        assert a.registry.version == steady
        b.set_budget(CENT, team="x")  # the control version moves for every manager on it
        within_the_bound(url)
        assert not admitted(a, 0.02, team="x")  # seen at the next admission
        assert a.registry.version != steady
        b.remove_budget(team="x")
        within_the_bound(url)
        a._shared.refresh()  # type: ignore[union-attr]  # read, not loaded into the registry
        assert admitted(a, 0.02, team="x")  # the generation differs: loaded all the same
