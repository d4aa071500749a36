"""The rollup of :class:`~costwarden.ledger.memory.MemoryLedger` (see ledger/rollup.py).

Kept in dicts beside the records and refreshed by the reader like the SQL ledgers' (same
watermark semantics), so the three backends answer the dashboard alike. Each level is nested
by kind, name, slot and model, so a read visits only the scopes it asks for.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from costwarden.ledger.rollup import (
    DAY_SECONDS,
    REFRESH_CHUNK,
    Part,
    Pick,
    Rollups,
    Window,
    matches,
    record_scopes,
    slot_of,
)
from costwarden.records import StoredRecord

_Cells = dict[str, list[int]]  # model -> [spent, count, max_cost]
_Level = dict[str, dict[str, dict[int, _Cells]]]  # kind -> name -> slot -> cells


class MemoryRollups(Rollups):
    """Mixin: the rollup over ``self._records`` (a list in id order) under ``self._lock``."""

    if TYPE_CHECKING:
        _lock: threading.RLock
        _records: list[StoredRecord]

    _rollup_folded: int = 0

    def _rollup_level(self, level: str) -> _Level:
        levels = self.__dict__.setdefault("_rollup_levels", {"hour": {}, "day": {}})
        out: _Level = levels[level]
        return out

    def refresh_rollups(self, limit: int = REFRESH_CHUNK) -> int:
        with self._lock:
            hours, days = self._rollup_level("hour"), self._rollup_level("day")
            start = self._rollup_folded
            batch = self._records[start : start + max(0, limit)]
            for rec in batch:
                slot = slot_of(rec.ts_us)
                for kind, name in record_scopes(rec):
                    for level, at in ((hours, slot), (days, slot // DAY_SECONDS * DAY_SECONDS)):
                        cells = level.setdefault(kind, {}).setdefault(name, {}).setdefault(at, {})
                        cell = cells.get(rec.model)
                        if cell is None:
                            cells[rec.model] = [rec.cost_nanos, 1, rec.cost_nanos]
                        else:
                            cell[0] += rec.cost_nanos
                            cell[1] += 1
                            cell[2] = max(cell[2], rec.cost_nanos)
            self._rollup_folded = start + len(batch)
            return len(batch)

    def rollup_backlog(self) -> int:
        with self._lock:
            return len(self._records) - self._rollup_folded

    def _cells(
        self, level: str, kind: str, name: str, since: int, until: int
    ) -> Iterator[tuple[int, str, list[int]]]:
        """``(slot, model, [spent, count, max])`` of one scope (a model scope: the global
        rows of that model); the caller holds the lock."""
        model = name if kind == "model" else None
        if kind == "model":
            kind, name = "global", ""
        for slot, cells in self._rollup_level(level).get(kind, {}).get(name, {}).items():
            if since <= slot < until:
                for m, cell in cells.items():
                    if model in (None, m):
                        yield slot, m, cell

    def _series(
        self, kind: str, name: str, since: int, until: int
    ) -> list[tuple[int, str, int, int]]:
        with self._lock:
            return [(s, m, c[0], c[1]) for s, m, c in self._cells("hour", kind, name, since, until)]

    def _sums(
        self, dim: str, kind: str, name: str, parts: Sequence[Part]
    ) -> list[tuple[str, int, int]]:
        out: list[tuple[str, int, int]] = []
        with self._lock:
            for level, lo, hi in parts:
                if dim == "model":
                    cells = self._cells(level, kind, name, lo, hi)
                    out.extend((m, c[0], c[1]) for _s, m, c in cells)
                    continue
                for n in self._rollup_level(level).get(dim, {}):
                    out.extend((n, c[0], c[1]) for _s, _m, c in self._cells(level, dim, n, lo, hi))
        return out

    def _top_slots(
        self, kind: str, name: str, since: int, until: int, n: int
    ) -> list[tuple[int, int]]:
        best: dict[int, int] = {}
        with self._lock:
            for slot, _m, cell in self._cells("hour", kind, name, since, until):
                best[slot] = max(best.get(slot, 0), cell[2])
        return heapq.nlargest(n, best.items(), key=lambda kv: (kv[1], kv[0]))

    def _scope_records(
        self, kind: str, name: str, windows: Sequence[Window], pick: Pick
    ) -> list[StoredRecord]:
        by_cost, limit, min_cost = pick
        with self._lock:
            found = [
                r
                for r in self._records
                if r.cost_nanos >= min_cost
                and any(a <= r.ts_us < b for a, b in windows)
                and matches(r, kind, name)
            ]
        if by_cost:
            found.sort(key=lambda r: (-r.cost_nanos, -r.id))
        else:
            found.sort(key=lambda r: (-r.ts_us, -r.id))
        return found[:limit]


__all__ = ["MemoryRollups"]
