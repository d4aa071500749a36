"""Hourly rollups of the records: what the dashboard reads instead of scanning history.

The ledger's totals are per scope and per budget period (day, ISO week, month in the
budget's time zone): enough for status, not for a chart in the viewer's time zone stacked by
model, nor for a breakdown by user over an arbitrary range. The rollup keeps, per **hour** (UTC
epoch, a multiple of :data:`SLOT_SECONDS`), per scope and per model: the spend, the number
of records and the most expensive record's cost. A scope is ``(kind, name)``: ``("global",
"")`` and each of a record's user, team, key, endpoint and tags (``DIMENSIONS``); a model
scope is the global rows of that model.

Why hours: every view groups them into days, ISO weeks or months of *any* time zone whose
offset is a whole number of hours exactly (a half-hour zone's day edges are off by 30 or 45
minutes; totals are exact), and a 60-day range of one scope is 1,440 slots.

Why kept by the reader, not by ``append``: the tracked call's path stays as it is (no extra
write per scope on every call, no hot row for PostgreSQL's sharded totals). Records are
folded in by :meth:`Rollups.refresh_rollups`, in order of their ids, from a watermark stored
beside the rollup, in chunks so a writer never waits long. SQLite assigns ids in commit
order (one writer at a time, rows never deleted), so everything at or below the watermark is
folded exactly once. PostgreSQL's ids can become visible out of order (a transaction that
took id 7 may commit after the one that took id 8): the ids missing below the watermark are
kept as *gaps* and folded when they appear; a gap is forgotten once every transaction that
was running when it was seen has ended (``pg_snapshot_xmin`` passed the ``xmax`` noted then)
and at least :data:`GAP_GRACE_SECONDS` have passed (a rolled-back append's id never appears).

A **daily** level beside the hours (per UTC day, scope and model: spent and count, folded
from the same grouped rows in the same transaction) serves the breakdowns: a breakdown over
30 days by key reads 30 days x keys x models instead of 720 hours of them (24 times fewer
rows; the breakdowns were the slowest views of a 10M-record ledger). A range that does not
start or end on a UTC midnight reads its partial days from the hours, so a breakdown is
exact in any range of hours (:func:`split_days`). The charts stay on the hours: a local day of
a zone other than UTC is not a UTC day.

The most expensive requests are found without an index on cost (one more b-tree on every
tracked call): the ``n`` slots with the highest ``max_cost`` hold the ``n`` most expensive
records of a range (each of those records lies in a slot whose maximum is at least its own
cost, and there are at most ``n`` such slots), so only those hours are read.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Final

from costwarden.errors import InvalidInputError
from costwarden.records import StoredRecord

SLOT_SECONDS: Final = 3600
DAY_SECONDS: Final = 86_400
DIMENSIONS: Final = ("user", "team", "key", "endpoint", "tag")
"""The kinds of scope a record is rolled up under besides ``global`` (model is a column)."""
KINDS: Final = ("global", *DIMENSIONS, "model")
GAP_GRACE_SECONDS: Final = 60.0
REFRESH_CHUNK: Final = 200_000

Window = tuple[int, int]
"""``[start_us, end_us)``: a range of record timestamps, UTC epoch microseconds."""
Pick = tuple[bool, int, int]
"""``(by_cost, limit, min_cost)``: which records of a scope :meth:`Rollups.scope_records` keeps."""
Part = tuple[str, int, int]
"""``(level, since, until)``: slots ``[since, until)`` of the ``"hour"`` or the ``"day"`` level."""


def slot_of(ts_us: int) -> int:
    """The start (UTC epoch seconds) of the hour slot holding a record of ``ts_us``."""
    return ts_us // (SLOT_SECONDS * 1_000_000) * SLOT_SECONDS


def parse_scope(scope: str) -> tuple[str, str]:
    """``"user:alice"`` -> ``("user", "alice")``; ``"global"`` -> ``("global", "")``."""
    if scope == "global":
        return "global", ""
    kind, sep, name = scope.partition(":")
    if not sep or kind not in KINDS or kind == "global" or not name:
        raise InvalidInputError(
            f"scope must be 'global' or one of {', '.join(k + ':<name>' for k in KINDS[1:])}, "
            f"got {scope!r}"
        )
    return kind, name


def record_scopes(rec: StoredRecord) -> list[tuple[str, str]]:
    """The rollup scopes a record adds to (global first; each tag once)."""
    out = [("global", "")]
    for kind, value in (
        ("user", rec.user_id),
        ("team", rec.team),
        ("key", rec.key),
        ("endpoint", rec.endpoint),
    ):
        if value:
            out.append((kind, value))
    out.extend(("tag", t) for t in dict.fromkeys(rec.tags) if t)
    return out


def matches(rec: StoredRecord, kind: str, name: str) -> bool:
    """Whether ``rec`` belongs to the rollup scope ``(kind, name)``."""
    if kind == "global":
        return True
    if kind == "model":
        return rec.model == name
    if kind == "tag":
        return name in rec.tags
    field = "user_id" if kind == "user" else kind
    return bool(getattr(rec, field) == name)


def split_days(since: int, until: int) -> list[Part]:
    """Slots ``[since, until)`` (hour slots) as the parts the breakdowns read: the whole UTC
    days inside from the daily level, the hours before the first and after the last of them
    from the hourly level (a range with no whole day: hours only)."""
    first = -(-since // DAY_SECONDS) * DAY_SECONDS
    last = until // DAY_SECONDS * DAY_SECONDS
    if first >= last:
        return [("hour", since, until)] if since < until else []
    parts = [("hour", since, first), ("day", first, last), ("hour", last, until)]
    return [p for p in parts if p[1] < p[2]]


class Rollups:
    """The rollup reads and the refresh, on every costwarden ledger (memory, SQLite,
    PostgreSQL). Amounts are nano-USD, slots UTC epoch seconds, windows microseconds.

    The public methods check their arguments here, once, and call the backend's reads
    (``_series``, ``_sums``, ``_top_slots``, ``_scope_records``; see ``rollup_memory.py`` and
    ``rollup_sql.py``), which take arguments already checked."""

    def refresh_rollups(self, limit: int = REFRESH_CHUNK) -> int:
        """Fold up to ``limit`` new records into the rollup; how many were folded."""
        raise NotImplementedError

    def rollup_backlog(self) -> int:
        """How many records (about: ids above the watermark) are not in the rollup yet."""
        raise NotImplementedError

    def rollup_series(
        self, kind: str, name: str, since: int, until: int
    ) -> list[tuple[int, str, int, int]]:
        """``[(slot, model, spent, count)]`` of one scope for slots in ``[since, until)``,
        ordered by slot and model."""
        check_rollup_args(kind)
        return sorted(self._series(kind, name, since, until))

    def rollup_breakdown(
        self, dim: str, since: int, until: int, *, kind: str = "global", name: str = ""
    ) -> list[tuple[str, int, int]]:
        """``[(name, spent, count)]`` per ``dim`` over slots in ``[since, until)``, the most
        spent first (read from whole UTC days where the range holds them: :func:`split_days`).

        ``dim`` ``"model"``: the models of scope ``(kind, name)``; any other dimension: every
        scope of that kind (``kind`` must then be ``"global"``: the rollup has no crossings
        of two dimensions)."""
        check_rollup_args(kind, dim)
        sums: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for n, spent, count in self._sums(dim, kind, name, split_days(since, until)):
            acc = sums[n]
            acc[0] += spent
            acc[1] += count
        return sorted(((n, s, c) for n, (s, c) in sums.items()), key=lambda r: (-r[1], r[0]))

    def rollup_top_slots(
        self, kind: str, name: str, since: int, until: int, n: int
    ) -> list[tuple[int, int]]:
        """``[(slot, max_cost)]``: the ``n`` slots of ``[since, until)`` whose most expensive
        record of the scope cost the most (see the module doc), the most expensive first.
        When ``n`` slots are found, the ``n`` most expensive records cost at least the last
        one's ``max_cost`` (``n`` slots hold a record of at least that cost each)."""
        check_rollup_args(kind)
        return self._top_slots(kind, name, since, until, n)

    def scope_records(
        self,
        kind: str,
        name: str,
        windows: Sequence[Window],
        *,
        by_cost: bool,
        limit: int,
        min_cost: int = 0,
    ) -> list[StoredRecord]:
        """Records of one scope inside any of ``windows`` that cost at least ``min_cost``: the
        most expensive first (``by_cost``) or the newest first; at most ``limit``."""
        check_rollup_args(kind)
        return self._scope_records(kind, name, windows, (by_cost, limit, min_cost))

    # -- what each backend reads (arguments checked) -------------------------------------------
    def _series(
        self, kind: str, name: str, since: int, until: int
    ) -> Iterable[tuple[int, str, int, int]]:
        raise NotImplementedError

    def _sums(
        self, dim: str, kind: str, name: str, parts: Sequence[Part]
    ) -> Iterable[tuple[str, int, int]]:
        """``(name, spent, count)`` rows (a name may come once per part) of the breakdown."""
        raise NotImplementedError

    def _top_slots(
        self, kind: str, name: str, since: int, until: int, n: int
    ) -> list[tuple[int, int]]:
        raise NotImplementedError

    def _scope_records(
        self, kind: str, name: str, windows: Sequence[Window], pick: Pick
    ) -> list[StoredRecord]:
        raise NotImplementedError


def check_rollup_args(kind: str, dim: str | None = None) -> None:
    """Typed errors for a bad kind or dimension (before any SQL is built from them)."""
    if kind not in KINDS:
        raise InvalidInputError(f"unknown scope kind {kind!r}; use one of {', '.join(KINDS)}")
    if dim is not None:
        if dim not in (*DIMENSIONS, "model"):
            raise InvalidInputError(
                f"unknown breakdown {dim!r}; use one of {', '.join((*DIMENSIONS, 'model'))}"
            )
        if dim != "model" and kind != "global":
            raise InvalidInputError(
                f"a breakdown by {dim} is kept for the whole ledger only (scope 'global'); "
                f"within {kind}:... only the breakdown by model is kept"
            )


__all__ = [
    "DAY_SECONDS",
    "DIMENSIONS",
    "GAP_GRACE_SECONDS",
    "KINDS",
    "REFRESH_CHUNK",
    "SLOT_SECONDS",
    "Part",
    "Pick",
    "Rollups",
    "Window",
    "check_rollup_args",
    "matches",
    "parse_scope",
    "record_scopes",
    "slot_of",
    "split_days",
]
