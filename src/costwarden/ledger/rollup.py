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

The most expensive requests are found without an index on cost (one more b-tree on every
tracked call): the ``n`` slots with the highest ``max_cost`` hold the ``n`` most expensive
records of a range (each of those records lies in a slot whose maximum is at least its own
cost, and there are at most ``n`` such slots), so only those hours are read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Protocol, runtime_checkable

from costwarden.errors import InvalidInputError
from costwarden.records import StoredRecord

SLOT_SECONDS: Final = 3600
DIMENSIONS: Final = ("user", "team", "key", "endpoint", "tag")
"""The kinds of scope a record is rolled up under besides ``global`` (model is a column)."""
KINDS: Final = ("global", *DIMENSIONS, "model")
GAP_GRACE_SECONDS: Final = 60.0
REFRESH_CHUNK: Final = 200_000

Window = tuple[int, int]
"""``[start_us, end_us)``: a range of record timestamps, UTC epoch microseconds."""


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


@runtime_checkable
class Rollups(Protocol):
    """The rollup reads and the refresh, on every costwarden ledger (memory, SQLite,
    PostgreSQL). Amounts are nano-USD, slots UTC epoch seconds, windows microseconds."""

    def refresh_rollups(self, limit: int = REFRESH_CHUNK) -> int:
        """Fold up to ``limit`` new records into the rollup; how many were folded."""
        ...

    def rollup_backlog(self) -> int:
        """How many records (about: ids above the watermark) are not in the rollup yet."""
        ...

    def rollup_series(
        self, kind: str, name: str, since: int, until: int
    ) -> list[tuple[int, str, int, int]]:
        """``[(slot, model, spent, count)]`` of one scope for slots in ``[since, until)``."""
        ...

    def rollup_breakdown(
        self, dim: str, since: int, until: int, *, kind: str = "global", name: str = ""
    ) -> list[tuple[str, int, int]]:
        """``[(name, spent, count)]`` per ``dim`` over slots in ``[since, until)``.

        ``dim`` ``"model"``: the models of scope ``(kind, name)``; any other dimension: every
        scope of that kind (``kind`` must then be ``"global"``: the rollup has no crossings
        of two dimensions)."""
        ...

    def rollup_top_slots(self, kind: str, name: str, since: int, until: int, n: int) -> list[int]:
        """The ``n`` slots of ``[since, until)`` whose most expensive record of the scope cost
        the most (see the module doc)."""
        ...

    def scope_records(
        self,
        kind: str,
        name: str,
        windows: Sequence[Window],
        *,
        by_cost: bool,
        limit: int,
    ) -> list[StoredRecord]:
        """Records of one scope inside any of ``windows``: the most expensive first
        (``by_cost``) or the newest first; at most ``limit``."""
        ...


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
    "DIMENSIONS",
    "GAP_GRACE_SECONDS",
    "KINDS",
    "REFRESH_CHUNK",
    "SLOT_SECONDS",
    "Rollups",
    "Window",
    "check_rollup_args",
    "matches",
    "parse_scope",
    "record_scopes",
    "slot_of",
]
