"""Small tables of a caller's own beside a ledger's, in the ledger's database.

Some state must be shared by every process that shares a ledger but is not the ledger's:
the gateway's per-key rate counters (``costwarden.gateway.ratelimit``) are one. Keeping them
in the ledger's own database (one SQLite file, one PostgreSQL schema) means no second store
to deploy, and every worker and host sees the same counts.

:class:`SideTables` is the seam a ledger offers for that: one write transaction on its
database, serialised with every other one under the same lock name in any process or host,
so a read-check-write of a counter cannot interleave with another's. The SQL ledgers have it;
the memory ledger has no SQL (one process: the caller keeps such state in memory).

What the caller may rely on, and must keep to:

- ``work(execute)`` runs inside the transaction; ``execute(sql, params)`` runs one statement
  with ``?`` placeholders (the ledger translates them) and returns a cursor
  (``.fetchall()``, ``.fetchone()``). It commits when ``work`` returns and rolls back when it
  raises.
- ``work`` may be run again after a transient conflict (PostgreSQL deadlock or
  serialisation failure), so it must only touch the database, never other state.
- Only the caller's own tables: the ledger's tables are its own business (their schema
  changes with its migrations). Create them with ``CREATE TABLE IF NOT EXISTS``; the SQL must
  be what both SQLite and PostgreSQL accept.
- A database that cannot be reached in time raises
  :class:`~costwarden.errors.LedgerUnavailableError`; other database failures
  :class:`~costwarden.errors.LedgerError`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar, runtime_checkable

T = TypeVar("T")

SideExecute = Callable[..., Any]
"""``execute(sql, params=())`` on the transaction's connection; SQL with ``?`` placeholders."""


@runtime_checkable
class SideTables(Protocol):
    """A ledger whose database also keeps a caller's own small tables (see module doc)."""

    def side_transaction(self, lock: str, work: Callable[[SideExecute], T]) -> T:
        """Run ``work(execute)`` in one write transaction that no other side transaction under
        the same ``lock`` name overlaps, in any process or host; return what it returns."""
        ...


__all__ = ["SideExecute", "SideTables"]
