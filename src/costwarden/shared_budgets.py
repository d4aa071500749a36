"""A manager's budgets as ledger data: the ledger's control plane over the process's own.

:class:`SharedBudgets` is what a :class:`~costwarden.manager.BudgetManager` reads its budgets
from. Two layers, merged per scope string (:mod:`costwarden.budget_sources`):

- the **ledger's** budgets (``control_snapshot()``), written by ``set_budget``,
  ``set_default_budget`` and ``remove_budget`` of any manager, the CLI or the gateway on the
  same ledger, each with an actor and an audit event;
- **local** budgets, read from ``costwarden.toml`` or given to ``BudgetManager(budget)``: they
  apply where the ledger has no budget of the same scope, and are never written anywhere.

:meth:`SharedBudgets.refresh` is called on every admission: it asks the ledger for its
``control_version()`` (a memory read on SQLite and memory, a value polled at most every 250 ms
on PostgreSQL) and, when it moved, re-reads the snapshot and moves :attr:`generation`, which
drops every plan built from the old budgets. So a change made anywhere on the ledger is
enforced from the next admission that sees the new version on (docs/storage.md gives the
bound per backend).

Reads take no lock: a reload builds new mappings and swaps them in one assignment each, the
tables first and the generation last, so a reader that saw the new generation sees the new
tables.
"""

from __future__ import annotations

import getpass
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType

from costwarden import forksafe
from costwarden.budget import GLOBAL, Budget, Scope
from costwarden.budget_sources import SourcedBudget, merge
from costwarden.control import DEFAULT_PREFIX, StoredBudget, budget_scope
from costwarden.ledger.control import ControlPlane
from costwarden.plans import NO_LIMITS, check_budget


def default_actor() -> str:
    """``library:<os user>@<host>:<pid>``: who the audit log says a manager's change came from,
    when the caller names nobody."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"library:{user}@{socket.gethostname() or 'unknown-host'}:{os.getpid()}"[:200]


class SharedBudgets:
    """The budgets in force for one manager: the ledger's over the local ones (see module)."""

    def __init__(
        self,
        ledger: ControlPlane,
        local: Mapping[str, Budget],
        local_source: str = "code",
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        for scope, budget in local.items():
            budget_scope(scope)
            check_budget(budget)
        self._ledger = ledger
        self._local = dict(local)
        self._source = local_source
        self._clock = clock
        self._lock = forksafe.fresh_after_fork(threading.Lock())  # guards a reload only
        self.control_version = ledger.control_version
        """The ledger's ``control_version`` (kept bound: the manager's every admission calls it
        and compares it with :attr:`seen`; see ``BudgetBook._sync_budgets``)."""
        self.seen = -1
        """The control version the tables were read at."""
        self._table: Mapping[str, SourcedBudget] = MappingProxyType({})
        self._own: dict[Scope, Budget] = {}
        self._defaults: dict[str, Budget] = {}
        self.generation = 0
        """Moves whenever the budgets in force may have changed (plans compare it)."""
        self._reload()

    # -- reading -------------------------------------------------------------------------------
    def refresh(self) -> int:
        """Re-read the ledger's budgets if its control version moved; the generation (hot
        path: one ``control_version()`` call when nothing changed)."""
        if self.control_version() != self.seen:
            self._reload()
        return self.generation

    def _reload(self) -> None:
        with self._lock:
            snap = self._ledger.control_snapshot()
            if snap.version == self.seen:
                return
            table = merge(snap.budgets, self._local, self._source)
            own: dict[Scope, Budget] = {}
            defaults: dict[str, Budget] = {}
            for scope, sourced in table.items():
                if scope.startswith(DEFAULT_PREFIX):
                    defaults[scope[len(DEFAULT_PREFIX) :]] = sourced.budget
                else:
                    own[Scope.parse(scope)] = sourced.budget
            self._table, self._own, self._defaults = MappingProxyType(table), own, defaults
            self.seen = snap.version
            self.generation += 1

    @property
    def global_budget(self) -> Budget:
        """The global budget in force (no limits when neither layer has one)."""
        return self._own.get(GLOBAL, NO_LIMITS)

    def get(self, scope: Scope) -> Budget | None:
        """The budget of ``scope`` itself (not a default)."""
        return self._own.get(scope)

    def budget_for(self, scope: Scope) -> Budget | None:
        """The budget that applies to ``scope``: its own, else its kind's default."""
        own = self._own.get(scope)
        if own is not None or scope.kind == "global":
            return own
        return self._defaults.get(scope.kind)

    def table(self) -> Mapping[str, SourcedBudget]:
        """Every budget in force by scope string, with its source (``ledger`` or local)."""
        return self._table

    def own(self) -> Mapping[Scope, Budget]:
        """Every scope's own budget in force (defaults excluded)."""
        return MappingProxyType(self._own)

    def defaults(self) -> Mapping[str, Budget]:
        """Default budgets in force by scope kind."""
        return MappingProxyType(self._defaults)

    # -- writing (to the ledger) ---------------------------------------------------------------
    def put(self, scope: str, budget: Budget, actor: str) -> StoredBudget:
        """Store ``budget`` for ``scope`` (a scope or ``default:<kind>``) in the ledger."""
        stored = self._ledger.put_budget(scope, budget, actor=actor, now=self._clock())
        self._reload()
        return stored

    def remove(self, scope: str, actor: str) -> StoredBudget | None:
        """Remove the ledger's budget of ``scope``: the removed one, or None. A local budget
        of the same scope (the file's, the constructor's) applies again."""
        removed = self._ledger.remove_budget(scope, actor=actor, now=self._clock())
        self._reload()
        return removed


__all__ = ["SharedBudgets", "default_actor"]
