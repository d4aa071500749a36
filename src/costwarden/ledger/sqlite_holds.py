"""The SQLite ledger's hold board: live reservations in a small shared-memory file.

Why not a table. A hold lives for the length of one provider call and is never history, yet
as rows it cost a whole durable write transaction per tracked call (the reservation), on top
of the one that records the call: half the ledger's time per call. A hold only has to be
*visible to every process on this host* from the moment ``reserve`` returns until the call
is settled, and it must never outlive its TTL if its process dies. A memory-mapped file next
to the database (``spend.db-holds``, like SQLite's own ``-shm``) gives exactly that:

- Every change to the board, and every write of totals to the database, happens under one
  exclusive ``flock`` on the board file (the *ledger lock*). Admission reads the totals and
  the board under the same lock, so a check and its hold cannot interleave with another
  process's check, hold or record. The kernel drops the lock when a process dies.
- Entries are written payload first and tag last, and freed by zeroing the tag, each an
  aligned 8-byte store: a process killed mid-way leaves either a whole entry (which then
  expires with its TTL: a dead process can over-count for a while, never under-count) or a
  free one.
- A header counter, the *generation*, is bumped under the lock before every database write
  that changes totals commits. A process may keep the totals it read in memory for as long
  as the generation is unchanged, so an admission check on an unchanged ledger reads no SQL.
- A second counter, the *control generation*, is bumped the same way by every change to
  budgets or keys, so checking for one per admission is a memory read.
- The header also names the database it belongs to (its ``ledger_id``): a board left beside a
  deleted and recreated database is wiped rather than trusted.
- A third counter, the *holds generation* (version 2), is bumped under the lock before every
  add, remove or purge, so a process may keep its sums of the board's holds by bucket while it
  is unchanged (the fast step of :meth:`HoldBoard.reserved`).

Layout (little-endian): a 64-byte header ``magic, version, capacity, high_water, generation,
ledger_id, control_generation, holds_generation`` and ``capacity`` entries of 32 bytes
``tag, bucket, amount, expires_at``. ``tag`` is a 64-bit digest of the hold id (never 0: 0 is
a free entry) and ``bucket`` a 64-bit digest of the bucket's ``(scope, period, start)``; a
digest collision could only make a check count someone else's hold too, that is deny more,
never admit more.
A hold on ``k`` buckets takes ``k`` entries. ``high_water`` bounds the scan: entries at or
above it are free.
"""

from __future__ import annotations

import fcntl
import hashlib
import mmap
import os
import struct
import time
from collections.abc import Iterable
from typing import Final

from costwarden.caching import BoundedCache
from costwarden.errors import LedgerError

MAGIC: Final = 0x5344_4C4F_4857_4300  # "\0CWHOLDS" read as little-endian bytes
VERSION: Final = 2  # 2: the holds generation; 1 had none
DEFAULT_CAPACITY: Final = 65_536
HEADER: Final = struct.Struct("<QIIIIQQ24x")  # magic, version, capacity, high, pad, gen, ledger
ENTRY: Final = struct.Struct("<QQqd")  # tag, bucket, amount, expires_at
PAYLOAD: Final = struct.Struct("<Qqd")  # bucket, amount, expires_at (written before the tag)
TAG: Final = struct.Struct("<Q")
_HIGH_AT: Final = 16
_GEN_AT: Final = 24
_CONTROL_AT: Final = 40  # in the header's spare bytes (see control_generation)
_HOLDS_AT: Final = 48  # the holds generation (see HoldBoard._sum_all), version 2 on
_U32: Final = struct.Struct("<I")
_FILED_LIMIT: Final = 100_000
_FREED_LIMIT: Final = 4_096
# The fast steps (not Final: the benchmark switches them off): add() takes entries this
# process freed above this many entries per entry it wants, and reserved() sums the whole
# board once and keeps the sums above this many entries.
_FIND_FROM = 32
_SUM_FROM = 32
_ENTRIES_AT: Final = HEADER.size
assert HEADER.size == 64 and ENTRY.size == 32


class LedgerLockTimeout(LedgerError):
    """Another process held the ledger lock longer than the ledger's timeout."""


def digest64(text: str) -> int:
    """A non-zero 64-bit digest (0 marks a free entry)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little") or 1


class HoldBoard:
    """One process's view of the board file. Every method but :meth:`lock`/:meth:`unlock`
    expects the caller to hold the ledger lock (and its own threads kept out)."""

    def __init__(
        self,
        path: str,
        ledger_id: int,
        capacity: int = DEFAULT_CAPACITY,
        *,
        timeout: float | None = None,
    ) -> None:
        if capacity < 16:
            raise LedgerError(f"a hold board needs room for at least 16 holds, got {capacity}")
        self.path = path
        self._filed: BoundedCache[int, list[int]] = BoundedCache(_FILED_LIMIT)  # tag -> entries
        # Entries this process freed, for add()'s fast step (each checked free before use).
        self._freed: list[int] = []
        # reserved()'s fast step: live amounts by bucket, as of the holds generation _sums_gen
        # (summed at _summed_at, valid until the first counted hold expires).
        self._sums: dict[int, int] | None = None
        self._sums_gen = -1
        self._sums_expiry = 0.0
        self._summed_at = 0.0
        # Owner-only, like the database (it names budgets' scopes); umask cannot widen it.
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            self.lock(timeout)
            try:
                self.capacity = self._initialise(ledger_id, capacity)
                self._map = mmap.mmap(self._fd, _ENTRIES_AT + self.capacity * ENTRY.size)
            finally:
                self.unlock()
        except BaseException:
            os.close(self._fd)
            raise

    def _initialise(self, ledger_id: int, capacity: int) -> int:
        """Use the board as it is if it is this database's, else lay out an empty one."""
        size = os.fstat(self._fd).st_size
        if size >= _ENTRIES_AT:
            magic, version, have, _high, _pad, _gen, owner = HEADER.unpack(
                os.pread(self._fd, HEADER.size, 0)
            )
            fits = size >= _ENTRIES_AT + have * ENTRY.size
            if magic == MAGIC and version == VERSION and owner == ledger_id and fits:
                return int(have)
        # New, foreign (a recreated database's leftover) or torn: start empty. Zero it by
        # truncating, but never below its old size: another process may still map it.
        capacity = max(capacity, (size - _ENTRIES_AT) // ENTRY.size)
        os.ftruncate(self._fd, 0)
        os.ftruncate(self._fd, _ENTRIES_AT + capacity * ENTRY.size)
        os.pwrite(self._fd, HEADER.pack(MAGIC, VERSION, capacity, 0, 0, 0, ledger_id), 0)
        return capacity

    # -- the ledger lock ------------------------------------------------------------------------
    def lock(self, timeout: float | None = None) -> float:
        """Take the ledger lock; wait at most ``timeout`` seconds (None: for ever). Returns
        the seconds waited, 0.0 when the lock was free at once.

        A blocking ``flock`` cannot time out, and a process stopped while holding the lock
        (SIGSTOP, a debugger) must not hang every other one: so try without blocking, then
        poll with a backoff that starts in microseconds (the lock is held for tens of them).
        """
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return 0.0
        except BlockingIOError:
            started = time.monotonic()
            if timeout is None:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
                return time.monotonic() - started
        deadline = started + timeout
        delay = 20e-6
        while True:
            if time.monotonic() >= deadline:
                raise LedgerLockTimeout(
                    f"the ledger lock on {self.path} was held by another process for "
                    f"more than {timeout:g}s"
                )
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return max(time.monotonic() - started, 1e-9)
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LedgerLockTimeout(
                        f"the ledger lock on {self.path} was held by another process for "
                        f"more than {timeout:g}s"
                    ) from None
                delay = min(delay * 2, 0.002)

    def unlock(self) -> None:
        """Release the ledger lock taken by ``lock``."""
        fcntl.flock(self._fd, fcntl.LOCK_UN)

    # -- generation -----------------------------------------------------------------------------
    @property
    def generation(self) -> int:
        """The totals generation: bumped by every change to totals, so an unchanged number means
        cached totals are still current.
        """
        return int(TAG.unpack_from(self._map, _GEN_AT)[0])

    def bump(self) -> int:
        """Announce a totals change (before its COMMIT); returns the new generation."""
        return self._bump_counter(_GEN_AT)

    def _bump_counter(self, at: int) -> int:
        """Add one to the header's 64-bit counter at offset ``at`` (wrapping); the new value."""
        gen = (TAG.unpack_from(self._map, at)[0] + 1) & 0xFFFF_FFFF_FFFF_FFFF
        TAG.pack_into(self._map, at, gen)
        return int(gen)

    # -- control generation ---------------------------------------------------------------------
    @property
    def control_generation(self) -> int:
        """Bumped (under the ledger lock, before the COMMIT) by every change to budgets or
        keys: one memory read tells a process whether its cached budgets are current. It
        lives in header bytes that boards made before it existed kept zero."""
        return int(TAG.unpack_from(self._map, _CONTROL_AT)[0])

    def bump_control(self) -> int:
        """Announce a budget or key change (before its COMMIT); returns the new generation."""
        return self._bump_counter(_CONTROL_AT)

    # -- holds ----------------------------------------------------------------------------------
    def _high(self) -> int:
        return int(_U32.unpack_from(self._map, _HIGH_AT)[0])

    def _entries(self) -> Iterable[tuple[int, int, int, float]]:
        high = self._high()
        return ENTRY.iter_unpack(self._map[_ENTRIES_AT : _ENTRIES_AT + high * ENTRY.size])

    def reserved(self, sums: dict[int, int], now: float) -> None:
        """Add every live hold's amount to ``sums[bucket]`` for the buckets it names."""
        cached = self._sums
        if (
            cached is not None
            and self._summed_at <= now < self._sums_expiry
            and TAG.unpack_from(self._map, _HOLDS_AT)[0] == self._sums_gen
        ):
            for bucket in sums:  # the fast step: nothing changed the board since it was summed
                sums[bucket] += cached.get(bucket, 0)
            return
        self._sums = None
        high = self._high()
        if not high:
            return
        if high <= _SUM_FROM:
            for tag, bucket, amount, expires_at in self._entries():
                if tag and bucket in sums and expires_at > now:
                    sums[bucket] += amount
            return
        self._sum_all(now)
        totals: dict[int, int] = self._sums or {}
        for bucket in sums:
            sums[bucket] += totals.get(bucket, 0)

    def _sum_all(self, now: float) -> None:
        """Sum every live hold by bucket, for :meth:`reserved`'s fast step: kept while the
        board's holds generation is unchanged (every add, remove and purge of any process
        bumps it) and no counted hold has expired; this process's own adds and removes update
        the sums in place. Why: a gateway's holds live as long as its calls, and a scan of
        every entry under the ledger lock per admission grows with the calls in flight
        (docs/benchmarks.md, "The hold board with many holds in flight")."""
        totals: dict[int, int] = {}
        expiry = float("inf")
        for tag, bucket, amount, expires_at in self._entries():
            if tag and expires_at > now:
                totals[bucket] = totals.get(bucket, 0) + amount
                expiry = min(expiry, expires_at)
        self._sums, self._sums_expiry, self._summed_at = totals, expiry, now
        self._sums_gen = TAG.unpack_from(self._map, _HOLDS_AT)[0]

    def _bump_holds(self) -> bool:
        """Announce a change of the entries (before making it: a process killed half-way
        leaves the others re-reading, never trusting sums that miss it). True when this
        process's sums were current before it, and so may be updated in place."""
        was = self._sums_gen
        gen = self._bump_counter(_HOLDS_AT)
        if self._sums is not None and gen == (was + 1) & 0xFFFF_FFFF_FFFF_FFFF:
            self._sums_gen = gen
            return True
        self._sums = None
        return False

    def add(
        self,
        tag: int,
        buckets: Iterable[int],
        amount: int,
        expires_at: float,
        now: float,
        *,
        name: str = "",
    ) -> None:
        """File a hold of ``amount`` on every bucket. Reuses free and expired entries.
        ``name`` (the hold id) is for error messages."""
        wanted = list(buckets)
        high = self._high()
        free = self._free_known(tag, len(wanted), now, high, name) if wanted and high else None
        if free is None:
            free = []
            if wanted and high:
                for i, (t, _b, _a, exp) in enumerate(self._entries()):
                    if t == tag and exp > now:
                        raise LedgerError(f"hold {name or hex(tag)!r} already exists")
                    if (not t or exp <= now) and len(free) < len(wanted):
                        free.append(i)
        while len(free) < len(wanted):
            if high >= self.capacity:
                raise LedgerError(
                    f"the hold board {self.path} is full ({self.capacity} entries of live "
                    "holds); settle holds sooner, shorten their TTL, or open the ledger with "
                    "?holds=<more>"
                )
            free.append(high)
            high += 1
        m = self._map
        in_place = self._bump_holds()
        for i, bucket in zip(free, wanted, strict=True):
            at = _ENTRIES_AT + i * ENTRY.size
            if in_place and TAG.unpack_from(m, at)[0]:  # an expired hold's entry, reused
                in_place = False
                self._sums = None
            TAG.pack_into(m, at, 0)  # an expired entry being reused stops counting first
            PAYLOAD.pack_into(m, at + 8, bucket, amount, expires_at)
        _U32.pack_into(m, _HIGH_AT, high)  # before the tags: a scan must reach them
        for i in free:
            TAG.pack_into(m, _ENTRIES_AT + i * ENTRY.size, tag)
        self._filed.put(tag, free)  # when full of holds never settled here, remove() scans
        sums = self._sums
        if in_place and sums is not None:
            for bucket in wanted:
                sums[bucket] = sums.get(bucket, 0) + amount
            self._sums_expiry = min(self._sums_expiry, expires_at)

    def _free_known(
        self, tag: int, count: int, now: float, high: int, name: str
    ) -> list[int] | None:
        """The fast step of :meth:`add` on a board of many holds: entries this process freed
        itself and that are still free (another process may have taken one since), the rest
        from the high-water mark up, after one search of the map for a live hold of the same
        tag (C, over the bytes). None when the board is small, or when what is known would not
        fit below its capacity: :meth:`add` then scans every entry, expired ones included."""
        freed = self._freed
        if high <= _FIND_FROM * count:
            return None
        m = self._map
        free: list[int] = []
        while freed and len(free) < count:
            i = freed.pop()
            # A hint may be stale (taken since) or listed twice (freed, refiled by a scan,
            # freed again): only a free entry not picked yet is used.
            if (
                i < high
                and i not in free
                and not TAG.unpack_from(m, _ENTRIES_AT + i * ENTRY.size)[0]
            ):
                free.append(i)
        if high + count - len(free) > self.capacity:
            freed.extend(free)
            return None
        needle = TAG.pack(tag)
        end = _ENTRIES_AT + high * ENTRY.size
        at = m.find(needle, _ENTRIES_AT, end)
        while at >= 0:
            if not (at - _ENTRIES_AT) % ENTRY.size:
                if ENTRY.unpack_from(m, at)[3] > now:
                    freed.extend(free)
                    raise LedgerError(f"hold {name or hex(tag)!r} already exists")
                at = m.find(needle, at + ENTRY.size, end)
            else:
                at = m.find(needle, at + 1, end)
        return free

    def remove(self, tag: int) -> bool:
        """Free the hold's entries; False if it had none (settled, purged, never filed).

        A hold filed by this process is found where :meth:`add` put it (each entry checked:
        another process may have purged it and reused the entry); any other is scanned for.
        """
        m = self._map
        where = self._filed.pop(tag)
        if where is None:
            where = [i for i, (t, _b, _a, _e) in enumerate(self._entries()) if t == tag]
            if not where:
                return False
        found = in_place = False
        freed = self._freed
        for i in where:
            at = _ENTRIES_AT + i * ENTRY.size
            if TAG.unpack_from(m, at)[0] == tag:
                if not found:
                    found = True
                    in_place = self._bump_holds()
                _tag, bucket, amount, expires_at = ENTRY.unpack_from(m, at)
                TAG.pack_into(m, at, 0)
                if in_place:
                    sums = self._sums
                    # One that had expired when the board was summed was never counted.
                    if sums is not None and expires_at > self._summed_at:
                        sums[bucket] = sums.get(bucket, 0) - amount
                    else:
                        in_place, self._sums = False, None
                if len(freed) < _FREED_LIMIT:
                    freed.append(i)
        if found and where[-1] + 1 >= self._high():
            self._shrink()
        return found

    def exists(self, tag: int, now: float) -> bool:
        """Whether a live (unexpired) hold with ``tag`` is on the board."""
        return any(t == tag and exp > now for t, _b, _a, exp in self._entries())

    def purge(self, now: float) -> int:
        """Free every expired entry; returns how many distinct holds that dropped."""
        m = self._map
        dropped: set[int] = set()
        for i, (t, _b, _a, exp) in enumerate(self._entries()):
            if t and exp <= now:
                if not dropped:
                    self._bump_holds()
                    self._sums = None
                TAG.pack_into(m, _ENTRIES_AT + i * ENTRY.size, 0)
                dropped.add(t)
        if dropped:
            self._shrink()
        return len(dropped)

    def live_holds(self, now: float) -> int:
        """How many distinct holds on the board have not expired."""
        return len({t for t, _b, _a, exp in self._entries() if t and exp > now})

    def _shrink(self) -> None:
        """Lower the high-water mark past trailing free entries (shorter scans)."""
        high = self._high()
        m = self._map
        while high and not TAG.unpack_from(m, _ENTRIES_AT + (high - 1) * ENTRY.size)[0]:
            high -= 1
        _U32.pack_into(m, _HIGH_AT, high)

    def close(self) -> None:
        """Unmap and close (idempotent). The file stays: other processes may use it."""
        if self._fd < 0:
            return
        fd, self._fd = self._fd, -1
        try:
            self._map.close()
        finally:
            os.close(fd)


__all__ = ["DEFAULT_CAPACITY", "HoldBoard", "LedgerLockTimeout", "digest64"]
