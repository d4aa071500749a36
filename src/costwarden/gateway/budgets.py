"""The budgets stored in the ledger, in force in this gateway process.

Budgets and keys are ledger data (DESIGN.md): a key's budget is stored as the budget of scope
``key:<key_id>``, and operators store user, team and global budgets beside it. The manager
enforces the budgets it has been given, so :class:`BudgetSync` hands it every stored budget
whenever the ledger's control version moves (checked on each request, a cheap read), applying
only those that differ from what the manager already enforces (so a manager that reads the
ledger's budgets itself is left alone).

:class:`KeyFraction` answers "how much of its own budget has this key used" for the
downgrade rule, from :func:`costwarden.keys.key_usage`, cached for ``ttl`` seconds per key.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from costwarden.budget import Budget, Scope
from costwarden.caching import BoundedCache
from costwarden.control import DEFAULT_PREFIX, VirtualKey
from costwarden.keys import key_usage
from costwarden.manager import BudgetManager

_PROBE = "\x00costwarden-probe"
"""A scope name no budget is stored for: what ``budget_for`` answers for it is the default."""


class BudgetSync:
    """Keeps the gateway's manager's budgets in step with the ledger's control plane, reloading only
    when the control version changes.
    """

    def __init__(self, manager: BudgetManager) -> None:
        self.manager = manager
        self._version: int | None = None
        self._lock = threading.Lock()

    def refresh(self) -> None:
        """Apply the ledger's budgets if its control version moved (blocking; cheap when not)."""
        ledger: Any = self.manager.ledger
        version = ledger.control_version()
        if version == self._version:
            return
        with self._lock:
            snapshot = ledger.control_snapshot()
            for stored in snapshot.budgets:
                self._apply(stored.scope, stored.budget)
            self._version = snapshot.version

    def _apply(self, scope_text: str, budget: Budget) -> None:
        m = self.manager
        if scope_text.startswith(DEFAULT_PREFIX):
            kind = scope_text[len(DEFAULT_PREFIX) :]
            if m.budget_for(Scope(kind, _PROBE)) != budget:
                m.set_default_budget(kind, budget)
            return
        scope = Scope.parse(scope_text)
        if scope.kind == "global":
            if m.budget != budget:
                m.set_budget(budget)
            return
        if m.budget_for(scope) != budget:
            m.set_budget(budget, **{scope.kind: scope.name})


class KeyFraction:
    """The most-used fraction of a key's own budget periods (0.0 without a budget)."""

    def __init__(self, manager: BudgetManager, ttl: float = 1.0) -> None:
        self.manager = manager
        self.ttl = ttl
        self._cache: BoundedCache[str, tuple[float, float]] = BoundedCache(10_000)

    def fraction(self, key: VirtualKey, now: float | None = None) -> float:
        """How much of its most-used budget period a key has spent or reserved (0..1), cached
        briefly per key, for the downgrade policy."""
        at = time.time() if now is None else now
        hit = self._cache.get(key.key_id)
        if hit is not None and at < hit[0]:
            return hit[1]
        usage = key_usage(self.manager.ledger, key, now=at)  # type: ignore[arg-type]
        used = 0.0
        for p in usage.periods:
            if p.limit:
                used = max(used, (p.spent + p.reserved) / p.limit)
            elif p.limit == 0 and p.spent:
                used = 1.0
        self._cache.put(key.key_id, (at + self.ttl, used))
        return used


__all__ = ["BudgetSync", "KeyFraction"]
