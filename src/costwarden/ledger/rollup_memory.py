"""The hourly rollup of :class:`~costwarden.ledger.memory.MemoryLedger` (see ledger/rollup.py).

Kept in dicts beside the records and refreshed by the reader like the SQL ledgers' (same
watermark semantics), so the three backends answer the dashboard alike.
"""

from __future__ import annotations

import heapq
import threading
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING

from costwarden.ledger.rollup import (
    REFRESH_CHUNK,
    Window,
    check_rollup_args,
    matches,
    record_scopes,
    slot_of,
)
from costwarden.records import StoredRecord

_Key = tuple[str, str, int, str]  # kind, name, slot, model


class MemoryRollups:
    """Mixin: the rollup over ``self._records`` (a list in id order) under ``self._lock``."""

    if TYPE_CHECKING:
        _lock: threading.RLock
        _records: list[StoredRecord]

    _rollup_folded: int = 0
    _rollup: dict[_Key, list[int]]

    def _rollup_rows(self) -> dict[_Key, list[int]]:
        rows = self.__dict__.get("_rollup")
        if rows is None:
            rows = self.__dict__["_rollup"] = {}
        return rows

    def refresh_rollups(self, limit: int = REFRESH_CHUNK) -> int:
        with self._lock:
            rows = self._rollup_rows()
            start = self._rollup_folded
            batch = self._records[start : start + max(0, limit)]
            for rec in batch:
                slot = slot_of(rec.ts_us)
                cost = rec.cost_nanos
                for kind, name in record_scopes(rec):
                    row = rows.get((kind, name, slot, rec.model))
                    if row is None:
                        rows[(kind, name, slot, rec.model)] = [cost, 1, cost]
                    else:
                        row[0] += cost
                        row[1] += 1
                        row[2] = max(row[2], cost)
            self._rollup_folded = start + len(batch)
            return len(batch)

    def rollup_backlog(self) -> int:
        with self._lock:
            return len(self._records) - self._rollup_folded

    def _scope_rows(
        self, kind: str, name: str, since: int, until: int
    ) -> list[tuple[int, str, list[int]]]:
        check_rollup_args(kind)
        model = name if kind == "model" else None
        if kind == "model":
            kind, name = "global", ""
        with self._lock:
            return [
                (slot, m, list(v))
                for (k, n, slot, m), v in self._rollup_rows().items()
                if k == kind and n == name and since <= slot < until and model in (None, m)
            ]

    def rollup_series(
        self, kind: str, name: str, since: int, until: int
    ) -> list[tuple[int, str, int, int]]:
        rows = self._scope_rows(kind, name, since, until)
        return sorted((slot, m, v[0], v[1]) for slot, m, v in rows)

    def rollup_breakdown(
        self, dim: str, since: int, until: int, *, kind: str = "global", name: str = ""
    ) -> list[tuple[str, int, int]]:
        check_rollup_args(kind, dim)
        sums: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        if dim == "model":
            for _slot, m, v in self._scope_rows(kind, name, since, until):
                sums[m][0] += v[0]
                sums[m][1] += v[1]
        else:
            with self._lock:
                for (k, n, slot, _m), v in self._rollup_rows().items():
                    if k == dim and since <= slot < until:
                        sums[n][0] += v[0]
                        sums[n][1] += v[1]
        return sorted(((n, s, c) for n, (s, c) in sums.items()), key=lambda r: (-r[1], r[0]))

    def rollup_top_slots(self, kind: str, name: str, since: int, until: int, n: int) -> list[int]:
        best: dict[int, int] = {}
        for slot, _m, v in self._scope_rows(kind, name, since, until):
            best[slot] = max(best.get(slot, 0), v[2])
        return [s for s, _ in heapq.nlargest(n, best.items(), key=lambda kv: (kv[1], kv[0]))]

    def scope_records(
        self,
        kind: str,
        name: str,
        windows: Sequence[Window],
        *,
        by_cost: bool,
        limit: int,
    ) -> list[StoredRecord]:
        check_rollup_args(kind)
        with self._lock:
            found = [
                r
                for r in self._records
                if any(a <= r.ts_us < b for a, b in windows) and matches(r, kind, name)
            ]
        if by_cost:
            found.sort(key=lambda r: (-r.cost_nanos, -r.id))
        else:
            found.sort(key=lambda r: (-r.ts_us, -r.id))
        return found[:limit]


__all__ = ["MemoryRollups"]
