"""The hourly rollup of :class:`~costwarden.ledger.postgres.PostgresLedger` (see
ledger/rollup.py for the gaps: ids that become visible after higher ones were folded).

One refresh is one transaction that locks ``rollup_state`` (refreshers take turns), folds the
gap ids that have appeared and the next ids above the watermark, notes the ids still missing
below it as gaps, and forgets the gaps no running transaction can fill any more. The reads
are :class:`~costwarden.ledger.rollup_sql.SQLRollups`'.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from costwarden.ledger.rollup import GAP_GRACE_SECONDS, REFRESH_CHUNK
from costwarden.ledger.rollup_sql import POSTGRES, SQLRollups
from costwarden.ledger.rows import POSTGRES_RECORDS

_T = TypeVar("_T")
_FOLD_RANGE = POSTGRES.fold("r.id > %(lo)s AND r.id <= %(hi)s")
_FOLD_GAPS = POSTGRES.fold("r.id = ANY(%(gaps)s)")


class PostgresRollups(SQLRollups):
    """Mixin for PostgresLedger: needs its ``_run(what, fn)`` on a pooled connection."""

    _rollup_sql = POSTGRES
    _rollup_codec = POSTGRES_RECORDS

    rollup_gap_grace: float = GAP_GRACE_SECONDS
    """Seconds a gap is kept at least (see ledger/rollup.py)."""

    if TYPE_CHECKING:

        def _run(self, what: str, fn: Callable[[Any], _T]) -> _T: ...

    def refresh_rollups(self, limit: int = REFRESH_CHUNK) -> int:
        def run(conn: Any) -> int:
            with conn.transaction():
                lo = int(conn.execute("SELECT last_id FROM rollup_state FOR UPDATE").fetchone()[0])
                snap = conn.execute(
                    "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint, "
                    "pg_snapshot_xmax(pg_current_snapshot())::text::bigint"
                ).fetchone()
                xmin, xmax = int(snap[0]), int(snap[1])
                now = time.time()
                filled = [
                    int(r[0])
                    for r in conn.execute(
                        "SELECT g.id FROM rollup_gaps g JOIN records r ON r.id = g.id"
                    ).fetchall()
                ]
                folded = len(filled)
                if filled:
                    for sql in _FOLD_GAPS:
                        conn.execute(sql, {"gaps": filled})
                    conn.execute("DELETE FROM rollup_gaps WHERE id = ANY(%s)", (filled,))
                top = conn.execute("SELECT MAX(id) FROM records").fetchone()[0]
                hi = min(int(top or 0), lo + max(0, limit))
                if hi > lo:
                    for sql in _FOLD_RANGE:
                        conn.execute(sql, {"lo": lo, "hi": hi})
                    folded += int(
                        conn.execute(
                            "SELECT COUNT(*) FROM records WHERE id > %s AND id <= %s", (lo, hi)
                        ).fetchone()[0]
                    )
                    conn.execute(
                        "INSERT INTO rollup_gaps (id, seen_xmax, seen_at) "
                        "SELECT g, %s, %s FROM generate_series(%s::bigint, %s::bigint) g "
                        "WHERE NOT EXISTS (SELECT 1 FROM records WHERE id = g)",
                        (xmax, now, lo + 1, hi),
                    )
                    conn.execute("UPDATE rollup_state SET last_id = %s", (hi,))
                conn.execute(
                    "DELETE FROM rollup_gaps WHERE seen_xmax <= %s AND seen_at < %s",
                    (xmin, now - self.rollup_gap_grace),
                )
                return folded

        return self._run("refresh_rollups", run)

    def rollup_backlog(self) -> int:
        row = self._run(
            "rollup_backlog",
            lambda c: c.execute(
                "SELECT COALESCE((SELECT MAX(id) FROM records), 0) - last_id "
                "+ (SELECT COUNT(*) FROM rollup_gaps) FROM rollup_state"
            ).fetchone(),
        )
        return max(0, int(row[0]))

    def _rollup_query(self, sql: str, params: Sequence[Any]) -> list[Any]:
        return self._run("a dashboard query", lambda c: c.execute(sql, params).fetchall())


__all__ = ["PostgresRollups"]
