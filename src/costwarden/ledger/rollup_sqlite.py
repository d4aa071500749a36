"""The hourly rollup of :class:`~costwarden.ledger.sqlite.SQLiteLedger` (see ledger/rollup.py).

SQLite gives ids in commit order (one writer at a time; records are never deleted), so a
watermark is exact: everything at or below ``rollup_state.last_id`` has been folded once.
Each refresh is one short ``BEGIN IMMEDIATE`` transaction of at most ``limit`` records.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from costwarden.ledger.rollup import REFRESH_CHUNK, Window, check_rollup_args
from costwarden.ledger.rollup_sql import SQLITE
from costwarden.ledger.rows import SELECT_COLUMNS, SQLITE_RECORDS
from costwarden.records import StoredRecord

_FOLD = SQLITE.fold("r.id > ? AND r.id <= ?")
_FOLD_PARAMS = _FOLD.count("?") // 2


class SQLiteRollups:
    """Mixin for SQLiteLedger: needs its ``_read`` and ``_write`` transactions."""

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
            conn.execute(_FOLD, [lo, hi] * _FOLD_PARAMS)
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

    def rollup_series(
        self, kind: str, name: str, since: int, until: int
    ) -> list[tuple[int, str, int, int]]:
        where, params = SQLITE.scope_where(kind, name)
        rows = self._rollup_query(
            f"SELECT slot, model, spent, count FROM rollup WHERE {where} "
            "AND slot >= ? AND slot < ? ORDER BY slot, model",
            [*params, since, until],
        )
        return [(int(s), str(m), int(v), int(c)) for s, m, v, c in rows]

    def rollup_breakdown(
        self, dim: str, since: int, until: int, *, kind: str = "global", name: str = ""
    ) -> list[tuple[str, int, int]]:
        check_rollup_args(kind, dim)
        if dim == "model":
            where, params = SQLITE.scope_where(kind, name)
            sql = (
                f"SELECT model, SUM(spent), SUM(count) FROM rollup WHERE {where} "
                "AND slot >= ? AND slot < ? GROUP BY model"
            )
        else:
            params = [dim]
            sql = (
                "SELECT name, SUM(spent), SUM(count) FROM rollup WHERE kind = ? "
                "AND slot >= ? AND slot < ? GROUP BY name"
            )
        rows = self._rollup_query(sql, [*params, since, until])
        out = [(str(n), int(s), int(c)) for n, s, c in rows]
        return sorted(out, key=lambda r: (-r[1], r[0]))

    def rollup_top_slots(self, kind: str, name: str, since: int, until: int, n: int) -> list[int]:
        where, params = SQLITE.scope_where(kind, name)
        rows = self._rollup_query(
            f"SELECT slot, MAX(max_cost) AS m FROM rollup WHERE {where} "
            "AND slot >= ? AND slot < ? GROUP BY slot ORDER BY m DESC, slot DESC LIMIT ?",
            [*params, since, until, n],
        )
        return [int(r[0]) for r in rows]

    def scope_records(
        self,
        kind: str,
        name: str,
        windows: Sequence[Window],
        *,
        by_cost: bool,
        limit: int,
    ) -> list[StoredRecord]:
        sql, params = SQLITE.scope_records_sql(SELECT_COLUMNS, kind, name, windows, by_cost)
        rows = self._rollup_query(sql, [*params, limit])
        return [SQLITE_RECORDS.decode(r) for r in rows]


__all__ = ["SQLiteRollups"]
