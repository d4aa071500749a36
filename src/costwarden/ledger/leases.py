"""Budget leases: admit requests locally from a chunk of budget held on a remote ledger.

A hard limit shared across hosts cannot admit a request without asking the server, unless
this process already holds part of the budget. :class:`LeasedLedger` wraps a PostgreSQL
ledger and does exactly that: the first request of a plan (its full list of limit checks:
every scope and window it is checked against) takes one server-side hold, a *lease*, of a
chunk of ``chunk`` times its estimate on every checked bucket, in the same serialised step as
any reservation (``cw_lease``). The requests that follow with the same checks (the same
buckets and limits) are admitted against the lease's free part in memory, with no round trip,
as long as the lease outlives their holds. Their appends lower the lease by their share in the
statement that stores their record (``cw_append_leased``), so the server counts exactly what
a plain hold per request would have counted, plus the lease's free part.

When the free part is too small, one call takes a new lease of a fresh chunk (the old one
admits no more, and goes with its last request's settlement); when the chunk does not fit any
more (near a limit), the same call gives the old lease's free part back, then files an exact
hold for the request instead, or returns the server's own denial, counted without this
lease's free part. Near a limit admission is therefore exact, one round trip per request as
without leases.

What a lease costs the others (documented in docs/storage.md): its free part counts as
reserved on the server, so other processes (and ``usage()``, ``get_status``) see up to one
chunk per live lease more reserved than is in flight, and may be denied early by at most the
sum of the leases' free parts, each below ``chunk`` times the largest estimate admitted from
it. A lease is retired (its free part given back) when a lease for a newer window or limit of
the same plan supersedes it, when its chunk no longer fits, after ``idle_seconds`` without an
admission (a background sweep), and on :meth:`LeasedLedger.close`. A crashed process's leases
expire on the server like holds: at most ``lease_seconds`` after the longest hold admitted
from them.

Async callers (the gateway) can try an admission on their event loop first:
:func:`admit_inline` runs a reservation with every server call refused, so it either admits
from a lease in microseconds or gives up (and the caller runs it on a worker thread as before).
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, Final, Protocol, TypeVar, runtime_checkable

from costwarden import forksafe
from costwarden.bounds import MAX_INT64
from costwarden.caching import BoundedCache, remember
from costwarden.errors import ConfigurationError, LedgerError
from costwarden.ledger.base import (
    Bucket,
    BucketUsage,
    Delivery,
    Denial,
    Ledger,
    LimitCheck,
)
from costwarden.money import Nanos
from costwarden.records import NewRecord, StoredRecord

T = TypeVar("T")
log = logging.getLogger("costwarden")

DEFAULT_CHUNK: Final = 16
"""A lease's chunk, in estimates of the request that takes it."""
DEFAULT_LEASE_SECONDS: Final = 60.0
"""How much longer than the hold of the request that takes it a lease lives."""
DEFAULT_IDLE_SECONDS: Final = 5.0
"""A lease with no admission for this long is retired by the sweep."""
_REFILL_STRIPES: Final = 16

_Key = tuple[tuple[tuple[str, str, int], Nanos], ...]
_Group = tuple[tuple[str, str], ...]


class WouldWait(Exception):
    """Raised inside :func:`admit_inline` by anything that would ask the server."""


_mode = threading.local()


def _inline() -> bool:
    return getattr(_mode, "inline", False)


def admit_inline(ledger: object, call: Callable[[], T]) -> T | None:
    """``call()`` (a reservation through a manager on ``ledger``) with every server call
    refused, or None when it needed one (or ``ledger`` is no :class:`LeasedLedger`): then
    nothing was reserved, and the caller makes the call again where it may wait."""
    if not isinstance(ledger, LeasedLedger):
        return None
    _mode.inline = True
    try:
        return call()
    except WouldWait:
        return None
    finally:
        _mode.inline = False


@runtime_checkable
class LeaseServer(Ledger, Protocol):
    """What a ledger offers leases (:class:`~costwarden.ledger.postgres.PostgresLedger`):
    the statements of :mod:`costwarden.ledger.postgres_leases`."""

    def lease(
        self,
        *,
        ret_id: str | None,
        ret_amount: Nanos,
        drops: Sequence[str],
        lease_id: str,
        grow: Nanos,
        lease_expires: float,
        hold_id: str,
        amount: Nanos,
        hold_expires: float,
        checks: Sequence[LimitCheck],
        now: float,
    ) -> tuple[str, Denial | None]:
        """Give back, grow a lease, or hold exactly, in one step (``cw_lease``)."""
        ...

    def lease_return(self, lease_id: str | None, amount: Nanos, drops: Sequence[str]) -> None:
        """Give part of a lease back and drop leases."""
        ...

    def append_leased(
        self,
        record: NewRecord,
        buckets: Sequence[Bucket],
        hold_id: str,
        *,
        watch: Sequence[Bucket],
        lease_id: str,
        shrink: Nanos,
        drops: Sequence[str],
    ) -> tuple[StoredRecord, list[BucketUsage]]:
        """Append a leased request's record and lower its lease, once."""
        ...

    def cached_control_version(self, now_monotonic: float) -> int | None:
        """The control version known without a round trip, or None."""
        ...


@dataclass(eq=False, slots=True)
class _Lease:
    id: str
    key: _Key
    group: _Group
    total: Nanos
    """What the server holds for the lease as this process has counted it (never more than
    the server holds: decreases are counted before they are sent, grants once confirmed)."""
    expires_at: float
    used: float = field(default_factory=time.monotonic)
    outstanding: Nanos = 0
    live: bool = True
    """Admits requests; False: retired, lowered by its requests' settlements until empty."""
    dropped: bool = False


@dataclass(eq=False, slots=True)
class _Sub:
    lease: _Lease
    amount: Nanos
    expires_at: float
    counted: bool = True
    """Still part of the lease's outstanding; False once its append was sent."""


def _keys(checks: Sequence[LimitCheck]) -> tuple[_Key, _Group]:
    key = tuple((c.bucket.hold_key, c.limit) for c in checks)
    return key, tuple((c.bucket.scope, c.bucket.period) for c in checks)


def _positive(value: object, name: str, *, integer: bool = False) -> None:
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or not 0 < value < float("inf"):
        what = "a whole number" if integer else "a number"
        raise ConfigurationError(f"leases: {name} must be {what} above 0, got {value!r}")


class LeasedLedger:
    """A :class:`~costwarden.ledger.base.Ledger` over a remote one, admitting from leases (see
    the module doc). Every method the Protocol names is here; any other attribute (the control
    plane, side tables, rollups...) is the wrapped ledger's, refused inside
    :func:`admit_inline`.

    ``chunk`` (whole number, default 16): a lease's size in estimates of the request taking it
    (1 asks the server for every request, as without leases). ``lease_seconds`` (default 60):
    how much longer a lease lives than the hold that took it. ``idle_seconds`` (default 5):
    a lease with no admission for this long is retired.
    """

    remote: Final = True

    def __init__(
        self,
        inner: Ledger,
        *,
        chunk: int = DEFAULT_CHUNK,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        idle_seconds: float = DEFAULT_IDLE_SECONDS,
    ) -> None:
        if not isinstance(inner, LeaseServer):
            raise ConfigurationError(
                f"leases need a ledger that offers them (PostgreSQL); {type(inner).__name__} "
                "does not"
            )
        _positive(chunk, "chunk", integer=True)
        _positive(lease_seconds, "lease_seconds")
        _positive(idle_seconds, "idle_seconds")
        self._inner: LeaseServer = inner
        self.url = inner.url
        self.chunk = chunk
        self.lease_seconds = float(lease_seconds)
        self.idle_seconds = float(idle_seconds)
        self._keys_memo: BoundedCache[Sequence[LimitCheck], tuple[_Key, _Group]]
        self._keys_memo = BoundedCache(1_000)
        self._fresh_state()
        # The wrapped ledger's other methods, bound here so that isinstance() of the other
        # Protocols it meets (ControlPlane, SideTables...) sees them on any Python version.
        for name, _ in inspect.getmembers(type(inner), inspect.isfunction):
            if not name.startswith("_") and not hasattr(LeasedLedger, name):
                self.__dict__[name] = self._guarded(getattr(inner, name))
        forksafe.register(self)

    def _fresh_state(self) -> None:
        self._lock = threading.Lock()  # guards the state below; never held over a call
        self._refills = [threading.Lock() for _ in range(_REFILL_STRIPES)]
        self._leases: dict[_Key, _Lease] = {}
        self._groups: dict[_Group, _Lease] = {}
        self._subs: dict[str, _Sub] = {}
        self._drops: list[str] = []
        self._last_now = 0.0
        self._purge_at: float | None = None
        self._wake = threading.Event()
        self._sweeper: threading.Thread | None = None
        self._closed = False

    # -- delegation -----------------------------------------------------------------------------
    def _guarded(self, method: Callable[..., T]) -> Callable[..., T]:
        @wraps(method)
        def call(*args: Any, **kwargs: Any) -> T:
            if _inline():
                raise WouldWait(method.__name__)
            return method(*args, **kwargs)

        return call

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if _inline():
            raise WouldWait(name)
        return getattr(self._inner, name)

    def _server(self) -> LeaseServer:
        if _inline():
            raise WouldWait("server")
        return self._inner

    def control_version(self) -> int:
        """The wrapped ledger's control version (inline: only as it already knows it)."""
        if _inline():
            version = self._inner.cached_control_version(time.monotonic())
            if version is None:
                raise WouldWait("control_version")
            return version
        return self._inner.control_version()  # type: ignore[attr-defined, no-any-return]

    # -- admission ------------------------------------------------------------------------------
    def reserve(
        self,
        hold_id: str,
        amount: Nanos,
        checks: Sequence[LimitCheck],
        expires_at: float,
        now: float,
    ) -> Denial | None:
        """Admit from a live lease of these checks if its free part covers ``amount`` and it
        outlives ``expires_at``; else one server call (see the module doc)."""
        if not checks:
            return None  # no limit applies: nothing is held, on any backend
        if amount <= 0:
            return self._server().reserve(hold_id, amount, checks, expires_at, now)
        key, group = remember(self._keys_memo, checks, _keys)
        with self._lock:
            self._last_now = max(self._last_now, now)
            if hold_id in self._subs:
                raise LedgerError(f"hold {hold_id!r} already exists")
            lease = self._leases.get(key)
            if lease is not None and self._admit(lease, hold_id, amount, expires_at, now):
                return None
        server = self._server()
        with self._refills[hash(key) % _REFILL_STRIPES]:  # one refill per plan at a time
            return self._refill(server, hold_id, amount, checks, expires_at, now, key, group)

    def _admit(
        self, lease: _Lease, hold_id: str, amount: Nanos, expires: float, now: float
    ) -> bool:
        """Under the lock: take ``amount`` from ``lease`` for ``hold_id`` if it can."""
        if not lease.live or lease.expires_at < expires or now >= lease.expires_at:
            return False
        if lease.total - lease.outstanding < amount:
            return False
        lease.outstanding += amount
        lease.used = time.monotonic()
        self._subs[hold_id] = _Sub(lease, amount, expires)
        return True

    def _refill(
        self,
        server: LeaseServer,
        hold_id: str,
        amount: Nanos,
        checks: Sequence[LimitCheck],
        expires_at: float,
        now: float,
        key: _Key,
        group: _Group,
    ) -> Denial | None:
        with self._lock:
            if hold_id in self._subs:
                raise LedgerError(f"hold {hold_id!r} already exists")
            lease = self._leases.get(key)
            if lease is not None:
                self._expire_subs(now, lease)
                if self._admit(lease, hold_id, amount, expires_at, now):
                    return None  # another thread's refill, or expired requests, made room
            # The lease this call replaces (too small, too short, or for an older window or
            # limit of the same scopes) admits no more: its rows stay until its requests
            # settle (each lowering them), its free part is given back if the new chunk does
            # not fit without it. A new lease has rows of its own, which no append of the
            # old one's requests is lowering, so taking it never waits for them.
            old = lease if lease is not None else self._groups.get(group)
            ret_id, ret_amount = None, 0
            if old is not None:
                self._retire(old)
                if not old.dropped:
                    ret_id, ret_amount = old.id, old.total - old.outstanding
                    old.total -= ret_amount  # counted as given back (the safe side)
            want = max(amount, min(self.chunk * amount, MAX_INT64))
            lease_id = "L" + os.urandom(16).hex()
            lease_expires = expires_at + self.lease_seconds
            drops, self._drops = self._drops, []
        try:
            outcome, denial = server.lease(
                ret_id=ret_id,
                ret_amount=ret_amount,
                drops=drops,
                lease_id=lease_id,
                grow=want,
                lease_expires=lease_expires,
                hold_id=hold_id,
                amount=amount,
                hold_expires=expires_at,
                checks=checks,
                now=now,
            )
        except BaseException:
            with self._lock:  # unknown outcome: a lease granted now is dropped with the next
                self._drops.extend([*drops, lease_id])
            raise
        with self._lock:
            if outcome != "lease":  # an exact hold, or the server's denial
                return denial
            new = _Lease(lease_id, key, group, want, lease_expires)
            self._leases[key] = self._groups[group] = new
            self._ensure_sweeper()
            admitted = self._admit(new, hold_id, amount, expires_at, now)
            assert admitted, "a fresh chunk covers the request that took it"
            return None

    def _retire(self, lease: _Lease) -> None:
        """Under the lock: ``lease`` admits no more; dropped now if nothing is outstanding."""
        lease.live = False
        if self._leases.get(lease.key) is lease:
            del self._leases[lease.key]
        if self._groups.get(lease.group) is lease:
            del self._groups[lease.group]
        self._drain(lease)

    def _drain(self, lease: _Lease) -> None:
        """Under the lock: a retired lease with nothing outstanding is dropped (its rows deleted
        by the next statement sent, whatever the server still holds for it)."""
        if not lease.live and lease.outstanding == 0 and not lease.dropped:
            lease.dropped = True
            lease.total = 0
            self._drops.append(lease.id)

    def _expire_subs(self, now: float, lease: _Lease | None = None) -> None:
        """Under the lock: requests whose holds expired unsettled stop counting (as holds do)."""
        for hold_id, sub in list(self._subs.items()):
            if (lease is None or sub.lease is lease) and sub.expires_at <= now:
                del self._subs[hold_id]
                if sub.counted:
                    sub.lease.outstanding -= sub.amount
                    self._drain(sub.lease)

    def check(self, amount: Nanos, checks: Sequence[LimitCheck], now: float) -> Denial | None:
        """Admitted if a live lease of these checks has room for ``amount``; else the server's
        answer (which counts the leases' free parts as reserved)."""
        if checks and amount > 0:
            key, _ = remember(self._keys_memo, checks, _keys)
            with self._lock:
                lease = self._leases.get(key)
                if (
                    lease is not None
                    and lease.live
                    and now < lease.expires_at
                    and lease.total - lease.outstanding >= amount
                ):
                    return None
        return self._server().check(amount, checks, now)

    # -- settlement -----------------------------------------------------------------------------
    def append(
        self,
        record: NewRecord,
        buckets: Sequence[Bucket],
        hold_id: str | None = None,
        *,
        watch: Sequence[Bucket] = (),
    ) -> tuple[StoredRecord, list[BucketUsage]]:
        """A leased request's record lowers its lease in the same statement, once however often
        it is retried; any other append is the wrapped ledger's."""
        sub = self._subs.get(hold_id) if hold_id is not None else None
        server = self._server()
        if sub is None or hold_id is None:
            return server.append(record, buckets, hold_id, watch=watch)
        with self._lock:
            lease = sub.lease
            if sub.counted:  # counted as spent before it is sent (the safe side if it is lost)
                sub.counted = False
                lease.outstanding -= sub.amount
                lease.total -= sub.amount
                self._drain(lease)  # a retired lease's last request drops it, in this append
            drops, self._drops = self._drops, []
        try:
            result = server.append_leased(
                record,
                buckets,
                hold_id,
                watch=watch,
                lease_id=lease.id,
                shrink=sub.amount,
                drops=drops,
            )
        except BaseException:
            with self._lock:  # kept, uncounted: a retried commit lowers the lease at most once
                self._drops.extend(drops)
            raise
        with self._lock:
            self._subs.pop(hold_id, None)
        return result

    def release(self, hold_id: str) -> bool:
        """A leased request's share goes back to its lease (no server call while the lease
        admits; given back to the server once it is retired); others are the wrapped ledger's."""
        with self._lock:
            sub = self._subs.get(hold_id)
            if sub is not None and sub.lease.live and sub.counted:
                del self._subs[hold_id]
                sub.lease.outstanding -= sub.amount
                return True
        server = self._server()
        if sub is None:
            return server.release(hold_id)
        with self._lock:
            if self._subs.pop(hold_id, None) is None:
                return False
            if not sub.counted:  # its append was sent: the lease may be lowered already
                return True
            lease = sub.lease
            lease.outstanding -= sub.amount
            lease.total -= sub.amount
            self._drain(lease)
            drops, self._drops = self._drops, []
        try:
            server.lease_return(None if lease.dropped else lease.id, sub.amount, drops)
        except BaseException:
            with self._lock:
                self._drops.extend(drops)
            raise
        return True

    # -- the rest of the Protocol: the wrapped ledger's ------------------------------------------
    def usage(self, buckets: Sequence[Bucket], now: float) -> list[BucketUsage]:
        """The server's usage: a lease's free part counts as reserved."""
        return self._server().usage(buckets, now)

    def reset(self, bucket: Bucket, now: float, detail: str | None = None) -> Nanos:
        """The wrapped ledger's reset."""
        return self._server().reset(bucket, now, detail)

    def purge_expired_holds(self, now: float) -> int:
        """Forget expired leased requests, then the server's purge (inline: left to the
        sweep, so an admission on an event loop never waits for it); how many of both."""
        with self._lock:
            self._last_now = max(self._last_now, now)
            before = len(self._subs)
            self._expire_subs(now)
            local = before - len(self._subs)
            if _inline():
                self._purge_at = now
                self._ensure_sweeper()
                self._wake.set()
                return local
        return local + self._inner.purge_expired_holds(now)

    def hold_exists(self, hold_id: str, now: float) -> bool:
        """Whether a hold counts at ``now``: a leased request's here, any other on the server
        (:class:`~costwarden.ledger.inspect.InspectableLedger`)."""
        sub = self._subs.get(hold_id)
        if sub is not None:
            return sub.counted and sub.expires_at > now
        return bool(self._server().hold_exists(hold_id, now))  # type: ignore[attr-defined]

    def records(
        self, since_us: int | None = None, until_us: int | None = None, limit: int | None = None
    ) -> list[StoredRecord]:
        """The wrapped ledger's records."""
        return self._server().records(since_us, until_us, limit)

    def series(self, scope: str, period: str, since: int, until: int) -> list[tuple[int, int]]:
        """The wrapped ledger's series."""
        return self._server().series(scope, period, since, until)

    def deliveries(self, since: float | None = None, limit: int = 100) -> list[Delivery]:
        """The wrapped ledger's delivery history."""
        return self._server().deliveries(since, limit)

    def claim_alert(
        self, dedup_key: str, payload: str, channels: Sequence[str], now: float
    ) -> bool:
        """The wrapped ledger's alert claim."""
        return self._server().claim_alert(dedup_key, payload, channels, now)

    def lease_deliveries(self, now: float, lease_seconds: float, limit: int) -> list[Delivery]:
        """The wrapped ledger's delivery leases (the alert outbox's, not budget leases)."""
        return self._server().lease_deliveries(now, lease_seconds, limit)

    def finish_delivery(self, delivery_id: int, **outcome: Any) -> None:
        """The wrapped ledger's delivery outcome (its keywords, as the Ledger Protocol names
        them, passed through)."""
        self._server().finish_delivery(delivery_id, **outcome)

    # -- retiring -------------------------------------------------------------------------------
    def leases(self) -> list[tuple[str, Nanos, Nanos]]:
        """The live leases as ``(lease id, amount held, outstanding)``: for tests and status."""
        with self._lock:
            return [(lease.id, lease.total, lease.outstanding) for lease in self._leases.values()]

    def sweep(self, idle_seconds: float | None = None) -> int:
        """Retire the leases idle for ``idle_seconds`` (default: the ledger's), giving their
        free parts back, and drop the drained ones: one server call when there is anything to
        do. Returns how many leases were retired. The background sweep calls it."""
        idle = self.idle_seconds if idle_seconds is None else idle_seconds
        mono = time.monotonic()
        with self._lock:
            self._expire_subs(self._last_now)
            gives: list[tuple[_Lease, Nanos]] = []
            retired = 0
            for lease in list(self._leases.values()):
                if mono - lease.used >= idle:
                    free = lease.total - lease.outstanding
                    self._retire(lease)
                    retired += 1
                    if lease.outstanding:
                        lease.total -= free
                        gives.append((lease, free))
            drops, self._drops = self._drops, []
        if not gives and not drops:
            return retired
        try:
            head, rest = (gives[0], gives[1:]) if gives else ((None, 0), [])
            self._inner.lease_return(head[0].id if head[0] else None, head[1], drops)
            for lease, free in rest:
                self._inner.lease_return(lease.id, free, ())
        except LedgerError:
            with self._lock:
                self._drops.extend(drops)
            raise
        return retired

    def _ensure_sweeper(self) -> None:
        """Under the lock: start the background sweep (once per process)."""
        if self._sweeper is None and not self._closed:
            self._sweeper = threading.Thread(
                target=self._sweep_loop, name="costwarden-leases", daemon=True
            )
            self._sweeper.start()

    def _sweep_loop(self) -> None:
        wake, interval = self._wake, max(0.05, self.idle_seconds / 2)
        while not self._closed:
            wake.wait(interval)
            wake.clear()
            if self._closed:
                return
            try:
                self.sweep()
                purge, self._purge_at = self._purge_at, None
                if purge is not None:
                    self._inner.purge_expired_holds(purge)
            except LedgerError as exc:
                log.debug("costwarden: lease sweep failed (retried next time): %s", exc)
            except Exception:  # pragma: no cover - the sweep must not die
                log.exception("costwarden: lease sweep failed")

    def close(self) -> None:
        """Give every lease back (one statement), stop the sweep and close the wrapped ledger.
        Holds still open from a lease stop counting then: settle them first."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            ids = {sub.lease.id for sub in self._subs.values()}
            ids.update(lease.id for lease in self._leases.values())
            ids.update(self._drops)
            self._leases.clear()
            self._groups.clear()
            self._subs.clear()
            self._drops = []
        self._wake.set()
        if ids:
            with contextlib.suppress(LedgerError):
                self._inner.lease_return(None, 0, sorted(ids))
        sweeper = self._sweeper
        if sweeper is not None and sweeper is not threading.current_thread():
            sweeper.join(5)
        self._inner.close()

    # -- fork hooks (costwarden.forksafe) -------------------------------------------------------
    def _before_fork(self) -> None:
        pass

    def _after_fork_in_parent(self) -> None:
        pass

    def _after_fork_in_child(self) -> None:
        """The leases are the parent's: a child admitting from them would spend them twice.
        It starts with none (and its own locks and sweep)."""
        closed = self._closed
        self._fresh_state()
        self._closed = closed

    def __repr__(self) -> str:
        return f"<LeasedLedger chunk={self.chunk} over {self._inner!r}>"


__all__ = [
    "DEFAULT_CHUNK",
    "DEFAULT_IDLE_SECONDS",
    "DEFAULT_LEASE_SECONDS",
    "LeaseServer",
    "LeasedLedger",
    "WouldWait",
    "admit_inline",
]
