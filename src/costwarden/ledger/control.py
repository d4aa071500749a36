"""The control plane every ledger implements: budgets, virtual keys and their audit log.

:class:`ControlPlane` is the Protocol; :class:`SQLControl` implements it once for both SQL
ledgers (their SQL is the same but for the placeholder), over three hooks each ledger adds:
a write transaction, a read transaction and :meth:`ControlPlane.control_version`. The memory
ledger has its own dict-based twin (``memory_control``); the conformance suite holds all
three to the same answers.

Rules every backend keeps:

- Every mutation writes its audit event in the same transaction as the change and bumps the
  control version, so a reader sees a change and its event together or neither.
- ``control_version()`` is cheap (it is checked on every admission): an integer that differs
  once a change is visible to this process; compare it for inequality only. How soon a change
  made by another process shows is the backend's bound (docs/storage.md): SQLite at once (a
  counter in the memory-mapped hold board), PostgreSQL within its poll interval (250 ms by
  default) plus one round trip, memory at once (one process).
- Bad input raises :class:`~costwarden.errors.InvalidInputError` and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Final, Protocol, runtime_checkable

from costwarden.budget import Budget
from costwarden.control import (
    AuditEvent,
    ControlSnapshot,
    StoredBudget,
    VirtualKey,
    budget_from_json,
    budget_scope,
    budget_to_json,
    check_actor,
    check_time,
    dumps,
    loads_or_none,
)
from costwarden.errors import InvalidInputError

Execute = Callable[..., Any]
"""``execute(sql, params)`` on the backend's connection; SQL written with ``?`` placeholders."""


@runtime_checkable
class ControlPlane(Protocol):
    """Budgets, default budgets and virtual keys as shared ledger data, with an audit log."""

    def control_version(self) -> int:
        """A number that changes once any budget or key change is visible here (cheap)."""
        ...

    def control_snapshot(self) -> ControlSnapshot:
        """Every stored budget and the control version they belong to, read together."""
        ...

    def budgets(self) -> list[StoredBudget]:
        """Every stored budget (defaults included), ordered by scope."""
        ...

    def put_budget(self, scope: str, budget: Budget, *, actor: str, now: float) -> StoredBudget:
        """Set (or replace) the budget of ``scope`` (``team:x``, ``default:user``, ...)."""
        ...

    def remove_budget(self, scope: str, *, actor: str, now: float) -> StoredBudget | None:
        """Remove the budget of ``scope``; the removed one, or None (nothing changed)."""
        ...

    def put_key(self, key: VirtualKey, *, actor: str, now: float) -> VirtualKey:
        """Store a new key (its budget as the budget of ``key:<key_id>``)."""
        ...

    def key_by_hash(self, key_hash: str) -> VirtualKey | None:
        """The key whose current or previous (rotated) hash is ``key_hash``."""
        ...

    def key_by_id(self, key_id: str) -> VirtualKey | None:
        """The key with id ``key_id`` (revoked or not), or None."""
        ...

    def list_keys(self) -> list[VirtualKey]:
        """Every key, revoked ones included, oldest first."""
        ...

    def update_key(self, new: VirtualKey, *, expected: VirtualKey, actor: str, now: float) -> bool:
        """Replace the stored key with ``new`` if it still equals ``expected`` (else False and
        nothing changes: read again and retry). Rotation and revocation are built on this."""
        ...

    def audit(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        target: str | None = None,
        limit: int = 100,
    ) -> list[AuditEvent]:
        """Audit events in ``[since, until)`` (on ``target`` if given), newest first."""
        ...


def check_key(key: object) -> VirtualKey:
    """Shape checks a ledger makes before storing a key."""
    if not isinstance(key, VirtualKey):
        raise InvalidInputError(f"expected a VirtualKey, got {type(key).__name__}")
    for name in ("key_id", "hash", "prefix"):
        value = getattr(key, name)
        if not isinstance(value, str) or not value:
            raise InvalidInputError(f"a key's {name} must be a non-empty string")
    if len(key.hash) != 64 or any(c not in "0123456789abcdef" for c in key.hash):
        raise InvalidInputError("a key's hash must be 64 lowercase hex digits (SHA-256)")
    check_time(key.created_at, "created_at")
    return key


def check_audit_query(since: object, until: object, target: object, limit: object) -> None:
    """Check an audit query's arguments (epoch times, a string target, a positive limit) before any
    SQL runs, so bad input is an InvalidInputError.
    """
    for name, value in (("since", since), ("until", until)):
        if value is not None:
            check_time(value, name)
    if target is not None and not isinstance(target, str):
        raise InvalidInputError(f"target must be a string, got {target!r}")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
        raise InvalidInputError(f"limit must be a positive whole number, got {limit!r}")


def check_change(actor: object, now: object) -> float:
    """The checks every control change makes before it writes: who did it, and when."""
    check_actor(actor)
    return check_time(now, "now")


def check_key_update(new: VirtualKey, expected: VirtualKey, actor: object, now: object) -> float:
    """The checks of :meth:`ControlPlane.update_key` before it reads anything; ``now``."""
    check_key(new)
    check_key(expected)
    at = check_change(actor, now)
    if new.key_id != expected.key_id or new.created_at != expected.created_at:
        raise InvalidInputError("a key's id and creation time never change")
    return at


def audit_texts(
    old: dict[str, Any] | None, new: dict[str, Any] | None
) -> tuple[str | None, str | None]:
    """An audit event's old and new values as the JSON the ledgers store."""
    return (None if old is None else dumps(old)), (None if new is None else dumps(new))


def audit_from_row(r: Sequence[Any]) -> AuditEvent:
    """An :class:`AuditEvent` from ``(id, at, actor, action, target, old, new)``."""
    return AuditEvent(
        int(r[0]), float(r[1]), r[2], r[3], r[4], loads_or_none(r[5]), loads_or_none(r[6])
    )


# -- the SQL implementation ---------------------------------------------------------------------
_KEY_COLUMNS: Final = (
    "k.key_id, k.hash, k.prefix, k.created_at, k.user_id, k.team, b.budget, k.models, k.rpm, "
    "k.tpm, k.expires_at, k.metadata, k.revoked_at, k.previous_hash, k.previous_prefix, "
    "k.grace_until"
)
_KEY_FROM: Final = "virtual_keys k LEFT JOIN budgets b ON b.scope = 'key:' || k.key_id"
_BUMP: Final = (
    "UPDATE meta SET value = CAST(CAST(value AS BIGINT) + 1 AS TEXT) "
    "WHERE key = 'control_version' RETURNING value"
)
_BUDGET_COLUMNS: Final = "scope, budget, version, updated_at, actor"


def key_from_row(row: Sequence[Any]) -> VirtualKey:
    """Build a VirtualKey from a row of the shared key query (``_KEY_COLUMNS``, its budget joined
    in).
    """
    models = loads_or_none(row[7])
    return VirtualKey(
        key_id=row[0],
        hash=row[1],
        prefix=row[2],
        created_at=float(row[3]),
        user=row[4],
        team=row[5],
        budget=None if row[6] is None else budget_from_json(row[6]),
        models=None if models is None else tuple(models),
        rpm=row[8],
        tpm=row[9],
        expires_at=row[10],
        metadata=loads_or_none(row[11]) or {},
        revoked_at=row[12],
        previous_hash=row[13],
        previous_prefix=row[14],
        grace_until=row[15],
    )


def key_params(key: VirtualKey) -> tuple[Any, ...]:
    """The key's columns in ``virtual_keys`` order, ``key_id`` first."""
    return (
        key.key_id,
        key.hash,
        key.prefix,
        key.created_at,
        key.user,
        key.team,
        None if key.models is None else dumps(list(key.models)),
        key.rpm,
        key.tpm,
        key.expires_at,
        dumps(dict(key.metadata)),
        key.revoked_at,
        key.previous_hash,
        key.previous_prefix,
        key.grace_until,
    )


def _stored_budget(row: Sequence[Any]) -> StoredBudget:
    return StoredBudget(row[0], budget_from_json(row[1]), int(row[2]), float(row[3]), row[4])


class SQLControl:
    """:class:`ControlPlane` over SQL, for a ledger that supplies the hooks below."""

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

    # -- shared logic ----------------------------------------------------------------------------
    @staticmethod
    def _bump(execute: Execute) -> int:
        return int(execute(_BUMP, ()).fetchone()[0])

    @staticmethod
    def _audit(
        execute: Execute,
        now: float,
        actor: str,
        action: str,
        target: str,
        old: dict[str, Any] | None,
        new: dict[str, Any] | None,
    ) -> None:
        execute(
            "INSERT INTO audit_log (at, actor, action, target, old, new) VALUES (?,?,?,?,?,?)",
            (now, actor, action, target, *audit_texts(old, new)),
        )

    @staticmethod
    def _budget_row(execute: Execute, scope: str) -> StoredBudget | None:
        row = execute(f"SELECT {_BUDGET_COLUMNS} FROM budgets WHERE scope = ?", (scope,)).fetchone()
        return None if row is None else _stored_budget(row)

    @staticmethod
    def _write_budget(
        execute: Execute, scope: str, budget: Budget | None, version: int, now: float, actor: str
    ) -> None:
        if budget is None:
            execute("DELETE FROM budgets WHERE scope = ?", (scope,))
            return
        execute(
            f"INSERT INTO budgets ({_BUDGET_COLUMNS}) VALUES (?,?,?,?,?) "
            "ON CONFLICT (scope) DO UPDATE SET budget = excluded.budget, "
            "version = excluded.version, updated_at = excluded.updated_at, "
            "actor = excluded.actor",
            (scope, budget_to_json(budget), version, now, actor),
        )

    def control_snapshot(self) -> ControlSnapshot:
        with self._control_read(snapshot=True) as execute:
            version = self._snapshot_version(execute)
            rows = execute(f"SELECT {_BUDGET_COLUMNS} FROM budgets ORDER BY scope", ()).fetchall()
        return ControlSnapshot(version, tuple(_stored_budget(r) for r in rows))

    def budgets(self) -> list[StoredBudget]:
        return list(self.control_snapshot().budgets)

    def put_budget(self, scope: str, budget: Budget, *, actor: str, now: float) -> StoredBudget:
        scope = budget_scope(scope)
        text = budget_to_json(budget)  # a typed error for a non-Budget, before any write
        now = check_change(actor, now)
        with self._control_write() as execute:
            old = self._budget_row(execute, scope)
            version = self._bump(execute)
            stored = StoredBudget(scope, budget_from_json(text), version, now, actor)
            self._write_budget(execute, scope, budget, version, now, actor)
            self._audit(
                execute,
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
        with self._control_write() as execute:
            old = self._budget_row(execute, scope)
            if old is None:
                return None
            self._bump(execute)
            self._write_budget(execute, scope, None, 0, now, actor)
            self._audit(execute, now, actor, "budget.remove", scope, old.as_dict(), None)
        return old

    def put_key(self, key: VirtualKey, *, actor: str, now: float) -> VirtualKey:
        check_key(key)
        now = check_change(actor, now)
        params = key_params(key)
        with self._control_write() as execute:
            taken = execute(
                "SELECT key_id FROM virtual_keys WHERE key_id = ? OR hash = ? OR previous_hash = ?",
                (key.key_id, key.hash, key.hash),
            ).fetchone()
            if taken is not None:
                raise InvalidInputError(
                    f"a key with id {key.key_id!r} or the same secret exists; nothing stored"
                )
            version = self._bump(execute)
            execute(
                "INSERT INTO virtual_keys (key_id, hash, prefix, created_at, user_id, team, "
                "models, rpm, tpm, expires_at, metadata, revoked_at, previous_hash, "
                "previous_prefix, grace_until) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                params,
            )
            if key.budget is not None:
                self._write_budget(execute, key.scope, key.budget, version, now, actor)
            self._audit(execute, now, actor, "key.create", key.scope, None, key.as_dict())
        return key

    def _key_where(self, execute: Execute, where: str, params: tuple[Any, ...]) -> list[Any]:
        rows: list[Any] = execute(
            f"SELECT {_KEY_COLUMNS} FROM {_KEY_FROM} WHERE {where}", params
        ).fetchall()
        return rows

    def key_by_hash(self, key_hash: str) -> VirtualKey | None:
        if not isinstance(key_hash, str):
            raise InvalidInputError("a key hash is a string of hex digits")
        with self._control_read(snapshot=False) as execute:
            rows = self._key_where(
                execute, "k.hash = ? OR k.previous_hash = ?", (key_hash, key_hash)
            )
        return key_from_row(rows[0]) if rows else None

    def key_by_id(self, key_id: str) -> VirtualKey | None:
        if not isinstance(key_id, str):
            raise InvalidInputError(f"a key id is a string, got {key_id!r}")
        with self._control_read(snapshot=False) as execute:
            rows = self._key_where(execute, "k.key_id = ?", (key_id,))
        return key_from_row(rows[0]) if rows else None

    def list_keys(self) -> list[VirtualKey]:
        with self._control_read(snapshot=False) as execute:
            rows = self._key_where(execute, "1 = 1 ORDER BY k.created_at, k.key_id", ())
        return [key_from_row(r) for r in rows]

    def update_key(self, new: VirtualKey, *, expected: VirtualKey, actor: str, now: float) -> bool:
        now = check_key_update(new, expected, actor, now)
        params = key_params(new)
        with self._control_write() as execute:
            rows = self._key_where(execute, "k.key_id = ?", (new.key_id,))
            if not rows or key_from_row(rows[0]) != expected:
                return False
            if new.hash != expected.hash:
                clash = execute(
                    "SELECT key_id FROM virtual_keys WHERE key_id <> ? AND "
                    "(hash = ? OR previous_hash = ?)",
                    (new.key_id, new.hash, new.hash),
                ).fetchone()
                if clash is not None:
                    raise InvalidInputError("another key has this secret; nothing changed")
            version = self._bump(execute)
            execute(
                "UPDATE virtual_keys SET hash = ?, prefix = ?, created_at = ?, user_id = ?, "
                "team = ?, models = ?, rpm = ?, tpm = ?, expires_at = ?, metadata = ?, "
                "revoked_at = ?, previous_hash = ?, previous_prefix = ?, grace_until = ? "
                "WHERE key_id = ?",
                (*params[1:], new.key_id),
            )
            if new.budget != expected.budget:
                self._write_budget(execute, new.scope, new.budget, version, now, actor)
            self._audit(
                execute, now, actor, "key.update", new.scope, expected.as_dict(), new.as_dict()
            )
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
        with self._control_read(snapshot=False) as execute:
            rows = execute(sql, tuple(params)).fetchall()
        return [audit_from_row(r) for r in rows]


__all__ = [
    "ControlPlane",
    "Execute",
    "SQLControl",
    "audit_from_row",
    "audit_texts",
    "check_audit_query",
    "check_change",
    "check_key",
    "check_key_update",
]
