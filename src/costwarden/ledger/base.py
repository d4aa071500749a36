"""The Ledger Protocol and the plain data it speaks.

A ledger is an append-only store of usage records plus, kept in the same transaction,
per-scope per-period totals (so status never scans history) and short-lived holds
(reservations). Everything is integer nano-USD and UTC epoch time.

Rolling windows: records add to one-minute ``"minute"`` buckets of the scopes that have a
rolling budget; a check on a ``Bucket`` whose period is ``"rolling:<s>s"`` sums the minute
buckets in ``[start, end)``, and holds on it are stored under ``start = 0`` so they count in
every window until they are settled or expire.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol, Self, TypeVar, runtime_checkable

from costwarden.money import Nanos
from costwarden.records import NewRecord, StoredRecord, slot_setter

_E = TypeVar("_E", covariant=True)

MINUTE: Final = "minute"


class HashedTuple(tuple[_E, ...]):
    """A tuple that computes its hash once, when it is made.

    Why: a ledger may remember work derived from the checks or buckets it is handed (array
    literals, digests, an upsert statement), keyed by their *value*. A plain tuple of frozen
    dataclasses re-hashes every element on every lookup; the manager hands the same checks
    and buckets for every call of one plan and window, as one of these, so a lookup costs one
    dict hit. Equal to, and hashing like, the plain tuple of the same items (so a plain tuple
    of equal buckets finds the same memo), and as immutable as any tuple.
    """

    _hash: int

    def __new__(cls, items: Iterable[_E] = ()) -> Self:
        self = super().__new__(cls, items)
        self._hash = tuple.__hash__(self)  # TypeError if an item is unhashable
        return self

    def __hash__(self) -> int:
        return self._hash


@dataclass(frozen=True, slots=True)
class Bucket:
    """One scope's total over one period window ``[start, end)`` (UTC epoch seconds)."""

    scope: str
    period: str
    start: int
    end: int
    # Derived once (read on every admission check): a rolling window's bucket, where holds
    # on this bucket are filed (0 for rolling windows, see the module doc), and the
    # ``(scope, period, start)`` keys of its totals and of its holds.
    is_rolling: bool = field(init=False, compare=False, repr=False)
    hold_start: int = field(init=False, compare=False, repr=False)
    key: tuple[str, str, int] = field(init=False, compare=False, repr=False)
    hold_key: tuple[str, str, int] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        rolling = self.period.startswith("rolling:")
        hold_start = 0 if rolling else self.start
        object.__setattr__(self, "is_rolling", rolling)
        object.__setattr__(self, "hold_start", hold_start)
        object.__setattr__(self, "key", (self.scope, self.period, self.start))
        object.__setattr__(self, "hold_key", (self.scope, self.period, hold_start))


@dataclass(frozen=True, slots=True)
class LimitCheck:
    """``spent + reserved + amount <= limit`` must hold on ``bucket`` for admission."""

    bucket: Bucket
    limit: Nanos


@dataclass(frozen=True, slots=True)
class Denial:
    """Why a reservation or check was refused: the first limit that did not fit."""

    check: LimitCheck
    spent: Nanos
    reserved: Nanos
    attempted: Nanos


@dataclass(frozen=True, slots=True, init=False)
class BucketUsage:
    """One bucket's totals as read in one transaction: spent (net of the reset baseline), reserved
    by live holds, record count, and the baseline itself.
    """

    spent: Nanos
    reserved: Nanos
    count: int
    baseline: Nanos = 0

    def __init__(self, spent: Nanos, reserved: Nanos, count: int, baseline: Nanos = 0) -> None:
        # Written out (init=False): ledgers build one per watched bucket on every tracked call,
        # and the slots' own setters cost half of the generated frozen __init__'s
        # object.__setattr__ calls. Same fields, defaults and frozenness.
        _set_spent(self, spent)
        _set_reserved(self, reserved)
        _set_count(self, count)
        _set_baseline(self, baseline)


_set_spent = slot_setter(BucketUsage, "spent")
_set_reserved = slot_setter(BucketUsage, "reserved")
_set_count = slot_setter(BucketUsage, "count")
_set_baseline = slot_setter(BucketUsage, "baseline")


@dataclass(frozen=True, slots=True)
class Delivery:
    """One alert's delivery to one channel (the outbox row)."""

    id: int
    dedup_key: str
    channel: str
    payload: str
    status: str  # "pending", "delivered", "failed"
    attempts: int
    created_at: float
    next_attempt_at: float | None
    last_error: str | None
    delivered_at: float | None


@dataclass(frozen=True, slots=True)
class LedgerEvent:
    """A recorded administrative event (a reset's new baseline, say)."""

    id: int
    ts: float
    kind: str
    scope: str
    period: str
    start: int
    amount: Nanos
    detail: str | None


class AlertOutbox(Protocol):
    """The part of a ledger the alert dispatcher uses: claim once, lease, finish."""

    def claim_alert(
        self, dedup_key: str, payload: str, channels: Sequence[str], now: float
    ) -> bool:
        """Claim the alert ``dedup_key`` once: the first caller (in any process sharing the
        ledger) gets True and a pending delivery per channel; every later claim gets False."""
        ...

    def lease_deliveries(self, now: float, lease_seconds: float, limit: int) -> list[Delivery]:
        """Take up to ``limit`` pending deliveries that are due, hiding them from other
        dispatchers for ``lease_seconds`` (a crashed dispatcher's lease simply runs out)."""
        ...

    def finish_delivery(
        self,
        delivery_id: int,
        *,
        delivered: bool,
        error: str | None,
        next_attempt_at: float | None,
        now: float,
    ) -> None:
        """Record a delivery attempt's outcome: delivered, or failed with ``error`` and either a
        retry time or None (given up); an unknown id is a LedgerError."""
        ...


@runtime_checkable
class Ledger(AlertOutbox, Protocol):
    """What every backend (memory, SQLite, PostgreSQL) provides, with the same semantics.

    Each method is one atomic step. ``reserve`` checks every limit and files the hold on every
    bucket in one transaction: it is what makes limits hard under concurrency.

    What a ledger is handed, and may rely on (the manager guarantees it; other callers must
    too):

    - ``checks``, ``buckets`` and ``watch`` are any sequences, read only during the call, and
      may be empty: no check means no limit applies (``reserve`` and ``check`` admit and hold
      nothing), no bucket means the record adds to no total. An empty ``checks`` and an empty
      ``buckets`` are equal values, so anything remembered about them is remembered per
      argument kind, never in one shared memo.
    - A ledger may remember work derived from a *hashable* sequence (a tuple, or the
      :class:`HashedTuple` the manager hands), keyed by the sequence's value, which is what
      ``Bucket`` and ``LimitCheck`` equality compares: scope, period, start, end and limit.
      Never by object identity (``id()``): equal values must get the same answer, and one
      object may stand for different arguments. A list is not hashable: worked out afresh.
      (The manager's are a :class:`costwarden.plans.Plan`'s ``checks``, ``watch`` and
      ``buckets``: the same values for every call in the plan's time range, rebuilt, equal
      or not, at a period boundary or a budget change.)
    - Values fit the storage of every backend, checked at the public edge (see
      :mod:`costwarden.bounds`): scope names, models and the other names of a record are
      strings of at most ``MAX_NAME_LENGTH`` characters that encode to UTF-8 (no lone
      surrogates); token counts, amounts, limits, costs, window bounds and ``ts_us`` are
      ints within int64 (``-2**63 .. 2**63 - 1``; counts, amounts and costs non-negative).
      A total may grow beyond int64 only through more than 2**63 nano-USD of records (over
      $9.2 billion), which the backends do not promise to store.

    Only what the library calls is here; what tests and operators read besides (a hold's
    presence, reset events, the record count) is :class:`~costwarden.ledger.inspect.
    InspectableLedger`, which the three built-in backends also are.
    """

    url: str

    @property
    def remote(self) -> bool:
        """Whether calls go over the network and may wait (PostgreSQL: True; memory and SQLite:
        False): async clients then run them on a worker thread instead of their event loop.
        A class constant satisfies it."""
        ...

    def reserve(
        self,
        hold_id: str,
        amount: Nanos,
        checks: Sequence[LimitCheck],
        expires_at: float,
        now: float,
    ) -> Denial | None:
        """Hold ``amount`` on every checked bucket iff all fit; else change nothing."""
        ...

    def check(self, amount: Nanos, checks: Sequence[LimitCheck], now: float) -> Denial | None:
        """The admission question without holding anything."""
        ...

    def append(
        self,
        record: NewRecord,
        buckets: Sequence[Bucket],
        hold_id: str | None = None,
        *,
        watch: Sequence[Bucket] = (),
    ) -> tuple[StoredRecord, list[BucketUsage]]:
        """Add a record to history and its cost to ``buckets``; drop ``hold_id``'s hold.

        Returns the stored record and, read in the same transaction, the usage of the
        ``watch`` buckets afterwards (what alert thresholds are checked against).
        """
        ...

    def release(self, hold_id: str) -> bool:
        """Drop a hold; False if it was not there (settled, expired and purged, unknown)."""
        ...

    def usage(self, buckets: Sequence[Bucket], now: float) -> list[BucketUsage]:
        """Spent (net of reset baselines), live reserved amount and count per bucket."""
        ...

    def reset(self, bucket: Bucket, now: float, detail: str | None = None) -> Nanos:
        """Move a bucket's baseline to its current spent; record the event; return it."""
        ...

    def purge_expired_holds(self, now: float) -> int:
        """Drop the holds whose expiry has passed (their calls never settled); return how many."""
        ...

    def records(
        self, since_us: int | None = None, until_us: int | None = None, limit: int | None = None
    ) -> list[StoredRecord]:
        """Stored records with ``since_us <= ts_us < until_us`` (None = unbounded), oldest first,
        at most ``limit``."""
        ...

    def series(self, scope: str, period: str, since: int, until: int) -> list[tuple[int, int]]:
        """``[(window_start, spent)]`` of a scope's ``period`` buckets in ``[since, until)``."""
        ...

    def deliveries(self, since: float | None = None, limit: int = 100) -> list[Delivery]:
        """Alert delivery history created since ``since``, newest first, at most ``limit``."""
        ...

    def close(self) -> None:
        """Release the ledger's connections, files and threads; then do not use it."""
        ...


def missing_members(ledger: object) -> list[str]:
    """The :class:`Ledger` Protocol's methods and attributes that ``ledger`` lacks, sorted
    (empty when it has them all): what the manager names when it is handed something else."""
    names = {
        name
        for proto in (Ledger, AlertOutbox)
        for name in (*vars(proto), *proto.__annotations__)
        if not name.startswith("_")
    }
    return sorted(name for name in names if not hasattr(ledger, name))


# NewRecord is declared beside StoredRecord (one field list) and named here too: it is what
# Ledger.append is handed.
__all__ = [
    "MINUTE",
    "AlertOutbox",
    "Bucket",
    "BucketUsage",
    "Delivery",
    "Denial",
    "HashedTuple",
    "Ledger",
    "LedgerEvent",
    "LimitCheck",
    "NewRecord",
    "missing_members",
]
