"""BudgetBook: which budgets a BudgetManager enforces, the methods that change them, and resets.

:class:`~costwarden.manager.BudgetManager` is a BudgetBook: the administration of its budgets
(``set_budget``, ``remove_budget``, ``budgets``, ``budget_for``, and ``reset`` of a period's
count, which lifts a denial) is defined here, beside the state it changes, so that the
manager's own module holds admission, recording and their order. The budgets live in a
:class:`~costwarden.plans.BudgetRegistry` (its :class:`~costwarden.plans.Planner` says which
apply to a request), filled from (docs/budgets.md):

- on a ledger with a control plane (every costwarden ledger), the ledger's budgets over the
  manager's local ones (:mod:`costwarden.shared_budgets`): a change is stored in the ledger,
  with an actor in its audit log, so every manager, the CLI and the gateway on it enforce it;
- on a third-party Ledger without one, the registry alone: the budgets are this manager's.

Every admission calls :meth:`BudgetBook._sync_budgets` (one ``control_version()`` call when
nothing changed), so a change made anywhere on the ledger applies from the next one on.
A base class rather than an object the manager holds, so that the admission path calls it
as before (no extra attribute per call) and the public methods stay ``BudgetManager``'s.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Unpack

from costwarden.budget import GLOBAL, Budget, Scope
from costwarden.budget_sources import SourcedBudget, local_table
from costwarden.control import DEFAULT_PREFIX, check_actor
from costwarden.errors import LedgerUnavailableError
from costwarden.ledger import Ledger
from costwarden.ledger.control import ControlPlane
from costwarden.money import Nanos, nanos_to_usd
from costwarden.plans import (
    NO_LIMITS,
    BudgetRegistry,
    Planner,
    ScopeKeywords,
    check_budget,
    check_kind,
    one_scope,
)
from costwarden.resets import reset_period
from costwarden.shared_budgets import SharedBudgets, default_actor
from costwarden.status import StatusBuckets

__all__ = ["BudgetBook", "own_budgets"]


class BudgetBook:
    """The budgets of one manager, over its ledger's (see module); BudgetManager is one."""

    def __init__(
        self,
        ledger: Ledger,
        local: Mapping[str, Budget],
        source: str,
        clock: Callable[[], float],
    ) -> None:
        """``local``: the manager's own budgets (:func:`own_budgets`), from ``source``
        (``code``, ``config:<path>``), under the ledger's; ``clock`` dates resets."""
        self.registry = BudgetRegistry(local.get(str(GLOBAL), NO_LIMITS))
        self._planner = Planner(self.registry)
        self._status_buckets = StatusBuckets()  # status reads: see status.py
        self.ledger: Ledger = ledger
        self._clock = clock
        self._shared = _shared_budgets(ledger, local, source)
        self._shared_generation = -1
        self._sync_budgets()

    @property
    def budget(self) -> Budget:
        """The global budget in force (set it with ``set_budget(budget)``)."""
        return self.registry.global_budget

    @budget.setter
    def budget(self, budget: Budget) -> None:
        self.set_budget(budget)

    def _sync_budgets(self) -> None:
        """Take the ledger's budgets if its control version moved (every admission asks:
        one ``control_version()`` call when nothing changed); the registry's version then
        moves, which drops every plan built from the old budgets. An unreachable ledger keeps
        the budgets last read; the admission itself then fails closed (or open) as set."""
        shared = self._shared
        if shared is None:
            return
        try:
            if (
                shared.control_version() == shared.seen
                and shared.generation == self._shared_generation
            ):
                return  # nothing moved (the usual case): refresh() would change nothing
            generation = shared.refresh()
        except LedgerUnavailableError:
            return
        if generation != self._shared_generation:
            self._shared_generation = generation
            self.registry.load(shared.own(), shared.defaults())

    def set_budget(
        self, budget: Budget, *, actor: str | None = None, **names: Unpack[ScopeKeywords]
    ) -> None:
        """Give one scope its own budget (``user="alice"``, or ``team``, ``key``, ``tag``,
        ``model``; none named: replace the global budget).

        Stored in the ledger (with ``actor``, default ``library:<user>@<host>:<pid>``, in its
        audit log), so every manager on the ledger enforces it from its next admission on."""
        check_budget(budget)
        scope = one_scope(**names)
        if self._shared is None:  # a ledger without a control plane: this manager's own
            self.registry.set(scope, budget)
            return
        self._shared.put(str(scope), budget, _actor(actor))
        self._sync_budgets()

    def set_default_budget(self, kind: str, budget: Budget, *, actor: str | None = None) -> None:
        """The budget for every ``user`` (or team, key, ...) that has none of its own."""
        check_budget(budget)
        if self._shared is None:
            self.registry.set_default(kind, budget)
            return
        self._shared.put(_default_scope(kind), budget, _actor(actor))
        self._sync_budgets()

    def remove_budget(
        self, *, actor: str | None = None, **names: Unpack[ScopeKeywords]
    ) -> Budget | None:
        """Remove the ledger's budget of one scope (named as for :meth:`set_budget`; none: the
        global one); the budget removed, or None if the ledger had none (nothing changes). A
        local budget of the scope (the constructor's, a config file's) applies again."""
        scope = one_scope(**names)
        if self._shared is None:
            if scope == GLOBAL:
                old = self.registry.global_budget
                self.registry.set(GLOBAL, NO_LIMITS)
                return old
            return self.registry.remove(scope)
        removed = self._shared.remove(str(scope), _actor(actor))
        self._sync_budgets()
        return None if removed is None else removed.budget

    def remove_default_budget(self, kind: str, *, actor: str | None = None) -> Budget | None:
        """Remove the ledger's default budget for ``kind``; the one removed, or None."""
        if self._shared is None:
            return self.registry.remove_default(kind)
        removed = self._shared.remove(_default_scope(kind), _actor(actor))
        self._sync_budgets()
        return None if removed is None else removed.budget

    def budgets(self) -> list[SourcedBudget]:
        """Every budget in force, by scope string (``global``, ``team:x``, ``default:user``),
        each with its source: ``ledger``, or the local one (``code``, ``config:<path>``)."""
        self._sync_budgets()
        if self._shared is not None:
            return list(self._shared.table().values())
        local = local_table(None, self.registry.all(), self.registry.defaults())
        return [SourcedBudget(s, b, "code") for s, b in sorted(local.items())]

    def budget_for(self, scope: Scope) -> Budget | None:
        """The budget in force for ``scope``: its own, else its kind's default."""
        self._sync_budgets()
        return self.registry.budget_for(scope)

    # -- resets (costwarden.resets) -------------------------------------------------------------
    def reset_daily(self, scope: str | None = None, **named: str) -> float:
        """Start the day's count afresh; USD moved (see :meth:`reset` for which scopes)."""
        return nanos_to_usd(sum(self._reset("daily", scope, named).values()))

    def reset_monthly(self, scope: str | None = None, **named: str) -> float:
        """Start the month's count afresh; USD moved (see :meth:`reset` for which scopes)."""
        return nanos_to_usd(sum(self._reset("monthly", scope, named).values()))

    def reset_weekly(self, scope: str | None = None, **named: str) -> float:
        """Start the week's count afresh; USD moved (see :meth:`reset` for which scopes)."""
        return nanos_to_usd(sum(self._reset("weekly", scope, named).values()))

    def reset(self, period: str, scope: str | None = None, **named: str) -> dict[str, float]:
        """Start ``period``'s count afresh; ``{scope: USD moved}`` for each scope reset.

        One scope: ``user="alice"`` or ``scope="user:alice"`` (``"global"`` too). ``"all"``:
        every scope with spend in its current period, budgeted or not. Default: every scope a
        budget covers, which is each scope with a budget of its own and each scope of a kind
        with a default budget (``set_default_budget("user", ...)``) that has spend in the
        period, so a user denied by the default budget is admitted again.
        """
        return {k: nanos_to_usd(v) for k, v in self._reset(period, scope, named).items()}

    def _reset(self, period: str, scope: str | None, named: dict[str, str]) -> dict[str, Nanos]:
        self._sync_budgets()
        return reset_period(self._planner, self.ledger, period, scope, named, self._clock())


def own_budgets(
    budget: Budget | None, local_budgets: Mapping[str, Budget] | None
) -> dict[str, Budget]:
    """A manager's own budgets by scope string: ``local_budgets`` with ``budget`` as the global
    one (neither: ``Budget()``, the brief's defaults). Built, and the global one checked, before
    the manager opens its ledger: bad input opens nothing."""
    local = dict(local_budgets or {})
    if budget is not None or local_budgets is None:
        local[str(GLOBAL)] = budget if budget is not None else Budget()
    check_budget(local.get(str(GLOBAL), NO_LIMITS))
    return local


def _shared_budgets(
    ledger: Ledger, local: Mapping[str, Budget], source: str
) -> SharedBudgets | None:
    """The ledger's budgets over ``local`` when the ledger has a control plane (every
    costwarden ledger has; a third-party Ledger without one keeps budgets per manager)."""
    if not isinstance(ledger, ControlPlane):
        return None
    return SharedBudgets(ledger, local, source)


def _default_scope(kind: object) -> str:
    return f"{DEFAULT_PREFIX}{check_kind(kind)}"


def _actor(actor: str | None) -> str:
    return check_actor(default_actor() if actor is None else actor)
