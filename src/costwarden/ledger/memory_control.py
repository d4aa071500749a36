"""The memory ledger's control plane: budgets, keys and audit events in dicts under its lock.

The rules are :class:`~costwarden.ledger.control.ControlRules`' (the conformance suite runs
every backend): here is only the store they run on. Values are stored as the very rows and
JSON the SQL ledgers store, so what comes back (a budget's floats, a key's metadata) is
identical on every backend and never shares mutable state with the caller. One process only:
a change is visible at once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from costwarden.budget import Budget
from costwarden.control import (
    AuditEvent,
    ControlSnapshot,
    StoredBudget,
    VirtualKey,
    budget_to_json,
)
from costwarden.ledger.control import (
    AuditRow,
    ControlRules,
    ControlStore,
    audit_from_row,
    budget_from_row,
    key_from_row,
)


class MemoryControlState:
    """Budgets, keys and audit events as their SQL rows (budgets by scope, keys by id), and the
    :class:`~costwarden.ledger.control.ControlStore` steps on them, run under the ledger's
    lock."""

    def __init__(self) -> None:
        self.version = 0
        self.budget_rows: dict[str, tuple[str, str, int, float, str]] = {}
        self.key_rows: dict[str, tuple[Any, ...]] = {}
        self.audit_rows: list[tuple[int, float, str, str, str, str | None, str | None]] = []

    def bump(self) -> int:
        self.version += 1
        return self.version

    def budget(self, scope: str) -> StoredBudget | None:
        row = self.budget_rows.get(scope)
        return None if row is None else budget_from_row(row)

    def write_budget(
        self, scope: str, budget: Budget | None, version: int, now: float, actor: str
    ) -> None:
        if budget is None:
            self.budget_rows.pop(scope, None)
        else:
            self.budget_rows[scope] = (scope, budget_to_json(budget), version, now, actor)

    def key(self, key_id: str) -> VirtualKey | None:
        # its budget joined in where the SQL query has it
        row = self.key_rows.get(key_id)
        if row is None:
            return None
        budget = self.budget_rows.get(f"key:{key_id}")
        return key_from_row((*row[:6], None if budget is None else budget[1], *row[6:]))

    def key_by_hash(self, key_hash: str) -> VirtualKey | None:
        for key_id, row in self.key_rows.items():
            if key_hash in (row[1], row[12]):
                return self.key(key_id)
        return None

    def keys(self) -> list[VirtualKey]:
        order = sorted(self.key_rows.items(), key=lambda kv: (kv[1][3], kv[0]))
        return [k for key_id, _row in order if (k := self.key(key_id)) is not None]

    def secret_taken(self, key_hash: str, other_than: str | None = None) -> bool:
        return any(
            key_id != other_than and key_hash in (row[1], row[12])
            for key_id, row in self.key_rows.items()
        )

    def insert_key(self, row: tuple[Any, ...]) -> None:
        self.key_rows[row[0]] = row

    def replace_key(self, row: tuple[Any, ...]) -> None:
        self.key_rows[row[0]] = row

    def audit(self, row: AuditRow) -> None:
        self.audit_rows.append((len(self.audit_rows) + 1, *row))

    def events(
        self, since: float | None, until: float | None, target: str | None, limit: int
    ) -> list[AuditEvent]:
        lo = since if since is not None else float("-inf")
        hi = until if until is not None else float("inf")
        out: list[AuditEvent] = []
        for r in reversed(self.audit_rows):
            if lo <= r[1] < hi and (target is None or r[4] == target):
                out.append(audit_from_row(r))
                if len(out) >= limit:
                    break
        return out


class MemoryControl(ControlRules):
    """:class:`~costwarden.ledger.control.ControlPlane` for :class:`MemoryLedger`."""

    _lock: threading.RLock
    _control: MemoryControlState

    def control_version(self) -> int:
        return self._control.version

    @contextmanager
    def _control_store(self, *, write: bool) -> Iterator[ControlStore]:
        with self._lock:
            yield self._control

    def control_snapshot(self) -> ControlSnapshot:
        with self._lock:
            state = self._control
            stored = [state.budget(scope) for scope in sorted(state.budget_rows)]
            return ControlSnapshot(state.version, tuple(s for s in stored if s))


__all__ = ["MemoryControl", "MemoryControlState"]
