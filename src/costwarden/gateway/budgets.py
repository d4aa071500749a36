"""How much of its own budget a key has used, for the gateway's downgrade rule.

Budgets are ledger data (DESIGN.md): a key's budget is stored as the budget of scope
``key:<key_id>``, beside the user, team and global budgets. The gateway does not keep them
itself: its manager reads them from the ledger (:class:`costwarden.shared_budgets.
SharedBudgets`) at every admission, inside the reservation, whenever the control version moved.

:class:`KeyFraction` answers "how much of its own budget has this key used" for the
downgrade rule, from :func:`costwarden.keys.key_usage`, cached for ``ttl`` seconds per key.
"""

from __future__ import annotations

import time

from costwarden.caching import BoundedCache
from costwarden.control import VirtualKey
from costwarden.keys import key_usage
from costwarden.manager import BudgetManager


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


__all__ = ["KeyFraction"]
