"""BudgetBook: the budgets one manager enforces, kept in step with the ledger's, and changed.

A :class:`~costwarden.manager.BudgetManager` enforces the budgets of its
:class:`~costwarden.plans.BudgetRegistry`; this book fills the registry and writes every change
where it belongs (docs/budgets.md):

- on a ledger with a control plane (every costwarden ledger), the ledger's budgets over the
  manager's local ones (:mod:`costwarden.shared_budgets`): a change is stored in the ledger,
  with an actor in its audit log, so every manager, the CLI and the gateway on it enforce it;
- on a third-party Ledger without one, the registry alone: the budgets are this manager's own.

The manager's public budget methods (``set_budget``, ``budgets``...) each call one method here;
the admission path calls :meth:`BudgetBook.sync` and reads the registry.
"""

from __future__ import annotations

from collections.abc import Mapping

from costwarden.budget import GLOBAL, Budget, Scope
from costwarden.budget_sources import SourcedBudget, local_table
from costwarden.control import DEFAULT_PREFIX, check_actor
from costwarden.errors import LedgerUnavailableError
from costwarden.ledger import Ledger
from costwarden.ledger.control import ControlPlane
from costwarden.plans import NO_LIMITS, BudgetRegistry, check_budget, check_kind, one_scope
from costwarden.shared_budgets import SharedBudgets, default_actor

__all__ = ["BudgetBook"]


class BudgetBook:
    """One manager's budgets: its registry, and the ledger's control plane when it has one."""

    def __init__(
        self,
        ledger: Ledger,
        budget: Budget | None,
        local_budgets: Mapping[str, Budget] | None,
        source: str,
    ) -> None:
        """``budget`` (the global one) and ``local_budgets`` are the manager's own, under the
        ledger's; with neither, the global budget is ``Budget()``, the brief's defaults."""
        local = dict(local_budgets or {})
        if budget is not None or local_budgets is None:
            local[str(GLOBAL)] = budget if budget is not None else Budget()
        self.registry = BudgetRegistry(local.get(str(GLOBAL), NO_LIMITS))
        # A third-party Ledger without a control plane keeps budgets per manager.
        shared = isinstance(ledger, ControlPlane)
        self._shared = SharedBudgets(ledger, local, source) if shared else None
        self._generation = -1
        self.sync()

    def sync(self) -> None:
        """Take the ledger's budgets if its control version moved (every admission asks:
        one ``control_version()`` call when nothing changed); the registry's version then
        moves, which drops every plan built from the old budgets. An unreachable ledger keeps
        the budgets last read; the admission itself then fails closed (or open) as set."""
        shared = self._shared
        if shared is None:
            return
        try:
            generation = shared.refresh()
        except LedgerUnavailableError:
            return
        if generation != self._generation:
            self._generation = generation
            self.registry.load(shared.own(), shared.defaults())

    def set(self, budget: Budget, actor: str | None, **named: str | None) -> None:
        """``BudgetManager.set_budget``: the scope ``named`` (none: global) gets ``budget``."""
        check_budget(budget)
        scope = one_scope(**named)
        if self._shared is None:  # a ledger without a control plane: this manager's own
            self.registry.set(scope, budget)
            return
        self._shared.put(str(scope), budget, _actor(actor))
        self.sync()

    def set_default(self, kind: str, budget: Budget, actor: str | None) -> None:
        """``BudgetManager.set_default_budget``: every scope of ``kind`` without its own."""
        check_budget(budget)
        if self._shared is None:
            self.registry.set_default(kind, budget)
            return
        self._shared.put(_default_scope(kind), budget, _actor(actor))
        self.sync()

    def remove(self, actor: str | None, **named: str | None) -> Budget | None:
        """``BudgetManager.remove_budget``: the budget removed from the scope ``named``, or
        None (nothing changes)."""
        scope = one_scope(**named)
        if self._shared is None:
            if scope == GLOBAL:
                old = self.registry.global_budget
                self.registry.set(GLOBAL, NO_LIMITS)
                return old
            return self.registry.remove(scope)
        return self._remove_shared(str(scope), actor)

    def remove_default(self, kind: str, actor: str | None) -> Budget | None:
        """``BudgetManager.remove_default_budget``: the default removed, or None."""
        if self._shared is None:
            return self.registry.remove_default(kind)
        return self._remove_shared(_default_scope(kind), actor)

    def _remove_shared(self, scope: str, actor: str | None) -> Budget | None:
        assert self._shared is not None
        removed = self._shared.remove(scope, _actor(actor))
        self.sync()
        return None if removed is None else removed.budget

    def table(self) -> list[SourcedBudget]:
        """``BudgetManager.budgets``: every budget in force by scope string, with its source."""
        self.sync()
        if self._shared is not None:
            return list(self._shared.table().values())
        local = local_table(None, self.registry.all(), self.registry.defaults())
        return [SourcedBudget(s, b, "code") for s, b in sorted(local.items())]

    def budget_for(self, scope: Scope) -> Budget | None:
        """``BudgetManager.budget_for``: the scope's own budget, else its kind's default."""
        self.sync()
        return self.registry.budget_for(scope)


def _default_scope(kind: object) -> str:
    return f"{DEFAULT_PREFIX}{check_kind(kind)}"


def _actor(actor: str | None) -> str:
    return check_actor(default_actor() if actor is None else actor)
