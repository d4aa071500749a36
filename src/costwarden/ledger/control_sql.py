"""The control plane of both SQL ledgers: :class:`~costwarden.ledger.control.ControlRules` over
the ``schema_control`` tables, written once with ``?`` placeholders.

A ledger adds three hooks: a write transaction and a read transaction, each handing out its
connection's ``execute``, and the control version a snapshot read belongs to.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Final

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

Execute = Callable[..., Any]
"""``execute(sql, params)`` on the backend's connection; SQL written with ``?`` placeholders."""

_KEY_COLUMNS: Final = (
    "k.key_id, k.hash, k.prefix, k.created_at, k.user_id, k.team, b.budget, k.models, k.rpm, "
    "k.tpm, k.expires_at, k.metadata, k.revoked_at, k.previous_hash, k.previous_prefix, "
    "k.grace_until"
)
"""The key query's columns (:func:`~costwarden.ledger.control.key_from_row`'s order)."""
_KEY_FROM: Final = "virtual_keys k LEFT JOIN budgets b ON b.scope = 'key:' || k.key_id"
_BUMP: Final = (
    "UPDATE meta SET value = CAST(CAST(value AS BIGINT) + 1 AS TEXT) "
    "WHERE key = 'control_version' RETURNING value"
)
_BUDGET_COLUMNS: Final = "scope, budget, version, updated_at, actor"


class _SQLStore:
    """:class:`~costwarden.ledger.control.ControlStore` on one transaction's ``execute``."""

    def __init__(self, execute: Execute) -> None:
        self.execute = execute

    def bump(self) -> int:
        return int(self.execute(_BUMP, ()).fetchone()[0])

    def budget(self, scope: str) -> StoredBudget | None:
        row = self.execute(
            f"SELECT {_BUDGET_COLUMNS} FROM budgets WHERE scope = ?", (scope,)
        ).fetchone()
        return None if row is None else budget_from_row(row)

    def write_budget(
        self, scope: str, budget: Budget | None, version: int, now: float, actor: str
    ) -> None:
        if budget is None:
            self.execute("DELETE FROM budgets WHERE scope = ?", (scope,))
            return
        self.execute(
            f"INSERT INTO budgets ({_BUDGET_COLUMNS}) VALUES (?,?,?,?,?) "
            "ON CONFLICT (scope) DO UPDATE SET budget = excluded.budget, "
            "version = excluded.version, updated_at = excluded.updated_at, "
            "actor = excluded.actor",
            (scope, budget_to_json(budget), version, now, actor),
        )

    def _keys(self, where: str, params: tuple[Any, ...]) -> list[VirtualKey]:
        rows = self.execute(f"SELECT {_KEY_COLUMNS} FROM {_KEY_FROM} WHERE {where}", params)
        return [key_from_row(row) for row in rows.fetchall()]

    def key(self, key_id: str) -> VirtualKey | None:
        found = self._keys("k.key_id = ?", (key_id,))
        return found[0] if found else None

    def key_by_hash(self, key_hash: str) -> VirtualKey | None:
        found = self._keys("k.hash = ? OR k.previous_hash = ?", (key_hash, key_hash))
        return found[0] if found else None

    def keys(self) -> list[VirtualKey]:
        return self._keys("1 = 1 ORDER BY k.created_at, k.key_id", ())

    def secret_taken(self, key_hash: str, other_than: str | None = None) -> bool:
        sql = "SELECT key_id FROM virtual_keys WHERE (hash = ? OR previous_hash = ?)"
        params: tuple[str, ...] = (key_hash, key_hash)
        if other_than is not None:
            sql, params = sql + " AND key_id <> ?", (*params, other_than)
        return self.execute(sql, params).fetchone() is not None

    def insert_key(self, row: tuple[Any, ...]) -> None:
        self.execute(
            "INSERT INTO virtual_keys (key_id, hash, prefix, created_at, user_id, team, "
            "models, rpm, tpm, expires_at, metadata, revoked_at, previous_hash, "
            "previous_prefix, grace_until) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            row,
        )

    def replace_key(self, row: tuple[Any, ...]) -> None:
        self.execute(
            "UPDATE virtual_keys SET hash = ?, prefix = ?, created_at = ?, user_id = ?, "
            "team = ?, models = ?, rpm = ?, tpm = ?, expires_at = ?, metadata = ?, "
            "revoked_at = ?, previous_hash = ?, previous_prefix = ?, grace_until = ? "
            "WHERE key_id = ?",
            (*row[1:], row[0]),
        )

    def audit(self, row: AuditRow) -> None:
        self.execute(
            "INSERT INTO audit_log (at, actor, action, target, old, new) VALUES (?,?,?,?,?,?)", row
        )

    def events(
        self, since: float | None, until: float | None, target: str | None, limit: int
    ) -> list[AuditEvent]:
        sql = (
            "SELECT id, at, actor, action, target, old, new FROM audit_log WHERE at >= ? AND at < ?"
        )
        params: list[Any] = [
            since if since is not None else -1e300,
            until if until is not None else 1e300,
        ]
        if target is not None:
            sql += " AND target = ?"
            params.append(target)
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(limit)
        return [audit_from_row(r) for r in self.execute(sql, tuple(params)).fetchall()]


class SQLControl(ControlRules):
    """:class:`~costwarden.ledger.control.ControlPlane` over SQL, for a ledger that supplies
    the hooks below."""

    # -- hooks the ledger supplies --------------------------------------------------------------
    def _control_write(self) -> AbstractContextManager[Execute]:
        """One write transaction (committed on exit, rolled back on error), after which
        :meth:`control_version` differs for every process."""
        raise NotImplementedError

    def _control_read(self, *, snapshot: bool) -> AbstractContextManager[Execute]:
        """One read transaction; with ``snapshot``, consistent with :meth:`_snapshot_version`."""
        raise NotImplementedError

    def _snapshot_version(self, execute: Execute) -> int:
        """Inside ``_control_read(snapshot=True)``: the version the data read belongs to."""
        raise NotImplementedError

    # -- the store and the snapshot over them ---------------------------------------------------
    @contextmanager
    def _control_store(self, *, write: bool) -> Iterator[ControlStore]:
        with self._control_write() if write else self._control_read(snapshot=False) as execute:
            yield _SQLStore(execute)

    def control_snapshot(self) -> ControlSnapshot:
        with self._control_read(snapshot=True) as execute:
            version = self._snapshot_version(execute)
            rows = execute(f"SELECT {_BUDGET_COLUMNS} FROM budgets ORDER BY scope", ()).fetchall()
        return ControlSnapshot(version, tuple(budget_from_row(r) for r in rows))


__all__ = ["Execute", "SQLControl"]
