"""The rollup of :class:`~costwarden.ledger.sqlite.SQLiteLedger` (see ledger/rollup.py).

SQLite gives ids in commit order (one writer at a time; records are never deleted), so a
watermark is exact: everything at or below ``rollup_state.last_id`` has been folded once.
Each refresh is one short ``BEGIN IMMEDIATE`` transaction of at most ``limit`` records. The
reads are :class:`~costwarden.ledger.rollup_sql.SQLRollups`'.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from costwarden.ledger.rollup import REFRESH_CHUNK
from costwarden.ledger.rollup_sql import SQLITE, SQLRollups
from costwarden.ledger.rows import SQLITE_RECORDS

_FOLD = SQLITE.fold("r.id > ? AND r.id <= ?")


class SQLiteRollups(SQLRollups):
    """Mixin for SQLiteLedger: needs its ``_read`` and ``_write`` transactions."""

    _rollup_sql = SQLITE
    _rollup_codec = SQLITE_RECORDS

    if TYPE_CHECKING:

        def _read(self) -> AbstractContextManager[sqlite3.Connection]: ...

        def _write(self) -> AbstractContextManager[sqlite3.Connection]: ...

    def refresh_rollups(self, limit: int = REFRESH_CHUNK) -> int:
        with self._write() as conn:
            lo = int(conn.execute("SELECT last_id FROM rollup_state").fetchone()[0])
            top = conn.execute("SELECT MAX(id) FROM records").fetchone()[0]
            hi = min(int(top or 0), lo + max(0, limit))
            if hi <= lo:
                return 0
            for sql in _FOLD:
                conn.execute(sql, [lo, hi] * (sql.count("?") // 2))
            conn.execute("UPDATE rollup_state SET last_id = ?", (hi,))
            n = conn.execute(
                "SELECT COUNT(*) FROM records WHERE id > ? AND id <= ?", (lo, hi)
            ).fetchone()[0]
        return int(n)

    def rollup_backlog(self) -> int:
        with self._read() as conn:
            row = conn.execute(
                "SELECT COALESCE((SELECT MAX(id) FROM records), 0) - last_id FROM rollup_state"
            ).fetchone()
        return max(0, int(row[0]))

    def _rollup_query(self, sql: str, params: Sequence[Any]) -> list[Any]:
        with self._read() as conn:
            return conn.execute(sql, params).fetchall()


__all__ = ["SQLiteRollups"]
