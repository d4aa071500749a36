"""The control plane every ledger implements: budgets, virtual keys and their audit log.

:class:`ControlPlane` is the Protocol; :class:`ControlRules` implements it once for every
backend, over a :class:`ControlStore` (the steps of one transaction on the backend's control
data) that each backend opens: :class:`~costwarden.ledger.control_sql.SQLControl` for both
SQL ledgers (their SQL is the same but for the placeholder), ``memory_control`` for the memory
ledger (dicts under its lock). Each also has its own :meth:`ControlPlane.control_version` and
:meth:`ControlPlane.control_snapshot`; the conformance suite holds all three to the same
answers.

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

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol, runtime_checkable

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


AuditRow = tuple[float, str, str, str, str | None, str | None]
"""An audit event as the ledgers store it: at, actor, action, target, old and new (JSON)."""


def audit_row(
    at: float,
    actor: str,
    action: str,
    target: str,
    old: dict[str, Any] | None,
    new: dict[str, Any] | None,
) -> AuditRow:
    """The row of an audit event whose ``old`` and ``new`` values are dicts (or None)."""
    return (at, actor, action, target, *audit_texts(old, new))


def audit_from_row(r: Sequence[Any]) -> AuditEvent:
    """An :class:`AuditEvent` from ``(id, at, actor, action, target, old, new)``."""
    return AuditEvent(
        int(r[0]), float(r[1]), r[2], r[3], r[4], loads_or_none(r[5]), loads_or_none(r[6])
    )


# -- the rows both the memory and the SQL ledgers store --------------------------------------
def budget_from_row(row: Sequence[Any]) -> StoredBudget:
    """A StoredBudget from a ``budgets`` row: ``(scope, budget, version, updated_at, actor)``."""
    return StoredBudget(row[0], budget_from_json(row[1]), int(row[2]), float(row[3]), row[4])


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


# -- the rules, once, over each backend's steps ------------------------------------------------
class ControlStore(Protocol):
    """The steps of one transaction on a backend's control data, which :class:`ControlRules`
    is written over. Values are stored as the rows and JSON of the ``schema_control`` tables
    (``key_params`` and ``budget_to_json``), so every backend answers alike."""

    def bump(self) -> int:
        """Move the control version on; the new version."""
        ...

    def budget(self, scope: str) -> StoredBudget | None:
        """The stored budget of ``scope``, or None."""
        ...

    def write_budget(
        self, scope: str, budget: Budget | None, version: int, now: float, actor: str
    ) -> None:
        """Store ``budget`` as the budget of ``scope`` at ``version``; None removes it."""
        ...

    def key(self, key_id: str) -> VirtualKey | None:
        """The key with id ``key_id`` (its budget joined in), or None."""
        ...

    def key_by_hash(self, key_hash: str) -> VirtualKey | None:
        """The key whose current or previous hash is ``key_hash``, or None."""
        ...

    def keys(self) -> list[VirtualKey]:
        """Every key, oldest first (then by id)."""
        ...

    def secret_taken(self, key_hash: str, other_than: str | None = None) -> bool:
        """Whether a key (other than ``other_than``) has ``key_hash`` as its current or previous
        hash."""
        ...

    def insert_key(self, row: tuple[Any, ...]) -> None:
        """Store a new key's row (:func:`key_params`; its budget is :meth:`write_budget`'s)."""
        ...

    def replace_key(self, row: tuple[Any, ...]) -> None:
        """Overwrite the row of the key with the id of ``row`` (:func:`key_params`)."""
        ...

    def audit(self, row: AuditRow) -> None:
        """Append an audit event (its id is the next one)."""
        ...

    def events(
        self, since: float | None, until: float | None, target: str | None, limit: int
    ) -> list[AuditEvent]:
        """Audit events in ``[since, until)`` (on ``target`` if given), newest first."""
        ...


class ControlRules:
    """:class:`ControlPlane` for a ledger that opens a :class:`ControlStore` per transaction
    (and has its own ``control_version`` and ``control_snapshot``): the rules of the module
    doc, kept here once for every backend. The methods are the Protocol's, documented there."""

    def _control_store(self, *, write: bool) -> AbstractContextManager[ControlStore]:
        """One transaction on the control data: with ``write``, committed on exit (rolled back
        on error), after which :meth:`ControlPlane.control_version` differs for every process
        once the version was bumped."""
        raise NotImplementedError

    def control_snapshot(self) -> ControlSnapshot:
        """The backend's own: the version must belong to the budgets read with it."""
        raise NotImplementedError

    def budgets(self) -> list[StoredBudget]:
        return list(self.control_snapshot().budgets)

    def put_budget(self, scope: str, budget: Budget, *, actor: str, now: float) -> StoredBudget:
        scope = budget_scope(scope)
        text = budget_to_json(budget)  # a typed error for a non-Budget, before any write
        now = check_change(actor, now)
        with self._control_store(write=True) as store:
            old = store.budget(scope)
            version = store.bump()
            stored = StoredBudget(scope, budget_from_json(text), version, now, actor)
            store.write_budget(scope, budget, version, now, actor)
            before = None if old is None else old.as_dict()
            store.audit(audit_row(now, actor, "budget.put", scope, before, stored.as_dict()))
        return stored

    def remove_budget(self, scope: str, *, actor: str, now: float) -> StoredBudget | None:
        scope = budget_scope(scope)
        now = check_change(actor, now)
        with self._control_store(write=True) as store:
            old = store.budget(scope)
            if old is None:
                return None
            store.bump()
            store.write_budget(scope, None, 0, now, actor)
            store.audit(audit_row(now, actor, "budget.remove", scope, old.as_dict(), None))
        return old

    def put_key(self, key: VirtualKey, *, actor: str, now: float) -> VirtualKey:
        check_key(key)
        now = check_change(actor, now)
        row = key_params(key)  # unstorable metadata fails here, before anything is written
        with self._control_store(write=True) as store:
            if store.key(key.key_id) is not None or store.secret_taken(key.hash):
                raise InvalidInputError(
                    f"a key with id {key.key_id!r} or the same secret exists; nothing stored"
                )
            version = store.bump()
            store.insert_key(row)
            if key.budget is not None:
                store.write_budget(key.scope, key.budget, version, now, actor)
            store.audit(audit_row(now, actor, "key.create", key.scope, None, key.as_dict()))
        return key

    def key_by_hash(self, key_hash: str) -> VirtualKey | None:
        if not isinstance(key_hash, str):
            raise InvalidInputError("a key hash is a string of hex digits")
        with self._control_store(write=False) as store:
            return store.key_by_hash(key_hash)

    def key_by_id(self, key_id: str) -> VirtualKey | None:
        if not isinstance(key_id, str):
            raise InvalidInputError(f"a key id is a string, got {key_id!r}")
        with self._control_store(write=False) as store:
            return store.key(key_id)

    def list_keys(self) -> list[VirtualKey]:
        with self._control_store(write=False) as store:
            return store.keys()

    def update_key(self, new: VirtualKey, *, expected: VirtualKey, actor: str, now: float) -> bool:
        now = check_key_update(new, expected, actor, now)
        row = key_params(new)
        with self._control_store(write=True) as store:
            if store.key(new.key_id) != expected:
                return False
            if new.hash != expected.hash and store.secret_taken(new.hash, new.key_id):
                raise InvalidInputError("another key has this secret; nothing changed")
            version = store.bump()
            store.replace_key(row)
            if new.budget != expected.budget:
                store.write_budget(new.scope, new.budget, version, now, actor)
            store.audit(
                audit_row(now, actor, "key.update", new.scope, expected.as_dict(), new.as_dict())
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
        with self._control_store(write=False) as store:
            return store.events(since, until, target, limit)


__all__ = [
    "AuditRow",
    "ControlPlane",
    "ControlRules",
    "ControlStore",
    "audit_from_row",
    "audit_row",
    "audit_texts",
    "budget_from_row",
    "check_audit_query",
    "check_change",
    "check_key",
    "check_key_update",
    "key_from_row",
    "key_params",
]
