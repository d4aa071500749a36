"""The memory ledger's control plane: budgets, keys and audit events in dicts under its lock.

The same rules as :class:`~costwarden.ledger.control.SQLControl` (the conformance suite runs
both): values are stored as the very rows and JSON the SQL ledgers store, so what comes back
(a budget's floats, a key's metadata) is identical on every backend and never shares mutable
state with the caller. One process only: a change is visible at once.
"""

from __future__ import annotations

import threading
from typing import Any

from costwarden.budget import Budget
from costwarden.control import (
    AuditEvent,
    ControlSnapshot,
    StoredBudget,
    VirtualKey,
    budget_from_json,
    budget_scope,
    budget_to_json,
)
from costwarden.errors import InvalidInputError
from costwarden.ledger.control import (
    audit_from_row,
    audit_texts,
    check_audit_query,
    check_change,
    check_key,
    check_key_update,
    key_from_row,
    key_params,
)


class MemoryControlState:
    """Budgets as ``scope -> (json, version, updated_at, actor)``, keys as their SQL rows."""

    def __init__(self) -> None:
        self.version = 0
        self.budgets: dict[str, tuple[str, int, float, str]] = {}
        self.keys: dict[str, tuple[Any, ...]] = {}
        self.audit: list[tuple[int, float, str, str, str, str | None, str | None]] = []


class MemoryControl:
    """:class:`~costwarden.ledger.control.ControlPlane` for :class:`MemoryLedger`."""

    _lock: threading.RLock
    _control: MemoryControlState

    def control_version(self) -> int:
        return self._control.version

    def _stored(self, scope: str) -> StoredBudget | None:
        row = self._control.budgets.get(scope)
        if row is None:
            return None
        return StoredBudget(scope, budget_from_json(row[0]), row[1], row[2], row[3])

    def _event(
        self,
        now: float,
        actor: str,
        action: str,
        target: str,
        old: dict[str, Any] | None,
        new: dict[str, Any] | None,
    ) -> None:
        c = self._control
        c.audit.append((len(c.audit) + 1, now, actor, action, target, *audit_texts(old, new)))

    def _set_budget(
        self, scope: str, budget: Budget | None, version: int, now: float, actor: str
    ) -> None:
        if budget is None:
            self._control.budgets.pop(scope, None)
        else:
            self._control.budgets[scope] = (budget_to_json(budget), version, now, actor)

    def control_snapshot(self) -> ControlSnapshot:
        with self._lock:
            stored = [self._stored(scope) for scope in sorted(self._control.budgets)]
            return ControlSnapshot(self._control.version, tuple(s for s in stored if s))

    def budgets(self) -> list[StoredBudget]:
        return list(self.control_snapshot().budgets)

    def put_budget(self, scope: str, budget: Budget, *, actor: str, now: float) -> StoredBudget:
        scope = budget_scope(scope)
        text = budget_to_json(budget)
        now = check_change(actor, now)
        with self._lock:
            old = self._stored(scope)
            self._control.version += 1
            stored = StoredBudget(scope, budget_from_json(text), self._control.version, now, actor)
            self._set_budget(scope, budget, stored.version, now, actor)
            self._event(
                now,
                actor,
                "budget.put",
                scope,
                None if old is None else old.as_dict(),
                stored.as_dict(),
            )
        return stored

    def remove_budget(self, scope: str, *, actor: str, now: float) -> StoredBudget | None:
        scope = budget_scope(scope)
        now = check_change(actor, now)
        with self._lock:
            old = self._stored(scope)
            if old is None:
                return None
            self._control.version += 1
            self._set_budget(scope, None, 0, now, actor)
            self._event(now, actor, "budget.remove", scope, old.as_dict(), None)
        return old

    def _key(self, key_id: str) -> VirtualKey | None:
        row = self._control.keys.get(key_id)
        if row is None:
            return None
        budget = self._control.budgets.get(f"key:{key_id}")
        return key_from_row((*row[:6], None if budget is None else budget[0], *row[6:]))

    def _secret_taken(self, key_hash: str, other_than: str | None = None) -> bool:
        return any(
            key_id != other_than and key_hash in (row[1], row[12])
            for key_id, row in self._control.keys.items()
        )

    def put_key(self, key: VirtualKey, *, actor: str, now: float) -> VirtualKey:
        check_key(key)
        now = check_change(actor, now)
        row = key_params(key)
        with self._lock:
            if key.key_id in self._control.keys or self._secret_taken(key.hash):
                raise InvalidInputError(
                    f"a key with id {key.key_id!r} or the same secret exists; nothing stored"
                )
            self._control.version += 1
            self._control.keys[key.key_id] = row
            if key.budget is not None:
                self._set_budget(key.scope, key.budget, self._control.version, now, actor)
            self._event(now, actor, "key.create", key.scope, None, key.as_dict())
        return key

    def key_by_hash(self, key_hash: str) -> VirtualKey | None:
        if not isinstance(key_hash, str):
            raise InvalidInputError("a key hash is a string of hex digits")
        with self._lock:
            for key_id, row in self._control.keys.items():
                if key_hash in (row[1], row[12]):
                    return self._key(key_id)
        return None

    def key_by_id(self, key_id: str) -> VirtualKey | None:
        if not isinstance(key_id, str):
            raise InvalidInputError(f"a key id is a string, got {key_id!r}")
        with self._lock:
            return self._key(key_id)

    def list_keys(self) -> list[VirtualKey]:
        with self._lock:
            order = sorted(self._control.keys.items(), key=lambda kv: (kv[1][3], kv[0]))
            keys = [self._key(key_id) for key_id, _row in order]
        return [k for k in keys if k is not None]

    def update_key(self, new: VirtualKey, *, expected: VirtualKey, actor: str, now: float) -> bool:
        now = check_key_update(new, expected, actor, now)
        row = key_params(new)
        with self._lock:
            if self._key(new.key_id) != expected:
                return False
            if new.hash != expected.hash and self._secret_taken(new.hash, new.key_id):
                raise InvalidInputError("another key has this secret; nothing changed")
            self._control.version += 1
            self._control.keys[new.key_id] = row
            if new.budget != expected.budget:
                self._set_budget(new.scope, new.budget, self._control.version, now, actor)
            self._event(now, actor, "key.update", new.scope, expected.as_dict(), new.as_dict())
        return True

    def audit(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        target: str | None = None,
        limit: int = 100,
    ) -> list[AuditEvent]:
        check_audit_query(since, until, target, limit)
        lo = since if since is not None else float("-inf")
        hi = until if until is not None else float("inf")
        out: list[AuditEvent] = []
        with self._lock:
            for r in reversed(self._control.audit):
                if lo <= r[1] < hi and (target is None or r[4] == target):
                    out.append(audit_from_row(r))
                    if len(out) >= limit:
                        break
        return out


__all__ = ["MemoryControl", "MemoryControlState"]
