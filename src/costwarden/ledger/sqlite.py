"""SQLite ledger: the embedded default, safe for many threads and many processes on one host.

Records and per-period totals live in the database file; live holds (reservations) live in
its *hold board*, a small memory-mapped file beside it (``spend.db-holds``, see
:mod:`costwarden.ledger.sqlite_holds` for why and how). One exclusive lock on the board file,
the ledger lock, covers every admission check with its hold and every transaction that
changes totals, so a check and its hold cannot interleave with another process's check, hold
or record. A tracked call therefore costs one durable transaction (its record), not two.

The totals an admission check reads are kept in memory between checks for as long as the
board's generation counter says no process has changed totals since; an unchanged ledger
answers a check without SQL.

WAL mode lets readers run beside the writer. ``synchronous=NORMAL`` (the default here)
survives any process crash; ``?synchronous=full`` in the URL also survives power loss, at a
cost per commit.

URL: ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``, optional query
``?timeout=5&synchronous=full&holds=65536`` (read strictly by
:mod:`costwarden.ledger.sqlite_options`). ``timeout`` bounds the whole wait of one call: the
ledger lock and SQLite's own write lock share one deadline.

The files (database, ``-wal``, ``-shm``, ``-holds``) hold user ids and key names, so new ones
are made readable by their owner only (0600, whatever the umask); an existing file keeps its
mode. SQLite gives ``-wal`` and ``-shm`` the database file's mode.

Across ``os.fork()`` (see :mod:`costwarden.forksafe`) the forking thread waits for this
ledger's lock and closes its connection, so a child inherits no open SQLite file and no lock
held by a thread it does not have; the child opens its own connection, board and checkpoint
thread on first use, and the parent reopens its connection on its next call.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final, TypeVar

from costwarden import forksafe
from costwarden.caching import BoundedCache, remember
from costwarden.errors import ConfigurationError, LedgerError, LedgerUnavailableError
from costwarden.ledger import billing_sql, outbox
from costwarden.ledger.base import (
    MINUTE,
    Bucket,
    BucketUsage,
    Delivery,
    Denial,
    LedgerEvent,
    LimitCheck,
)
from costwarden.ledger.billing import BATCH, BillLine
from costwarden.ledger.control_sql import Execute, SQLControl
from costwarden.ledger.migrations import apply_migrations
from costwarden.ledger.record_rows import SQLiteRecordRows
from costwarden.ledger.rollup_sqlite import SQLiteRollups
from costwarden.ledger.rows import APPEND_COLUMNS, SELECT_COLUMNS, SQLITE_RECORDS
from costwarden.ledger.schema_sqlite import MIGRATIONS
from costwarden.ledger.side_tables import SideExecute
from costwarden.ledger.sqlite_checkpoint import SAFETY_NET_PAGES, BackgroundCheckpointer
from costwarden.ledger.sqlite_holds import HoldBoard, LedgerLockTimeout, digest64
from costwarden.ledger.sqlite_options import parse_options
from costwarden.money import Nanos
from costwarden.records import NewRecord, StoredRecord

_T = TypeVar("_T")
_INSERT_RECORD = (
    f"INSERT INTO records ({', '.join(APPEND_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(APPEND_COLUMNS))})"
)
_SPENT = "SELECT spent - baseline FROM totals WHERE scope = ? AND period = ? AND start = ?"
_TOTAL = _SPENT.replace("spent - baseline", "spent - baseline, count, baseline")
_SPENT_ROLLING = (
    "SELECT COALESCE(SUM(spent), 0) FROM totals "
    "WHERE scope = ? AND period = 'minute' AND start >= ? AND start < ?"
)
_CACHE_LIMIT = 10_000  # totals kept in memory between checks (see the module doc)


@functools.lru_cache(maxsize=64)
def _upsert_totals_sql(rows: int) -> str:
    """``rows`` totals upserted in one statement; parameter 1 is the cost, then each row's
    scope, period, start and end. No ``RETURNING``: it costs more than the rest of the
    transaction (70 µs of ~95 on the development machine), and the new figures are known
    anyway from the totals read under the ledger lock."""
    values = ", ".join(
        f"(?{2 + 4 * i},?{3 + 4 * i},?{4 + 4 * i},?{5 + 4 * i},?1,1)" for i in range(rows)
    )
    return (
        f"INSERT INTO totals (scope, period, start, end_, spent, count) VALUES {values} "
        "ON CONFLICT (scope, period, start) DO UPDATE SET "
        "spent = spent + excluded.spent, count = count + 1"
    )


_UpsertPlan = tuple[str, tuple[object, ...], frozenset[tuple[str, str, int]]]
"""A totals upsert: its SQL, its parameters after the cost, and the bucket keys it writes."""


def _new_upsert_plan(buckets: Sequence[Bucket]) -> _UpsertPlan:
    keys: list[object] = []
    for bk in buckets:
        keys += (bk.scope, bk.period, bk.start, bk.end)
    return _upsert_totals_sql(len(buckets)), tuple(keys), frozenset(b.key for b in buckets)


def path_from_url(url: str) -> str:
    """``sqlite:///spend.db`` -> ``spend.db``; ``sqlite:////tmp/x.db`` -> ``/tmp/x.db``."""
    if not url.startswith("sqlite://"):
        raise ConfigurationError(f"not a SQLite URL: {url!r} (expected sqlite:///path.db)")
    rest = url[len("sqlite://") :].split("?", 1)[0]
    if rest in ("", "/", "/:memory:"):
        raise ConfigurationError(
            "a SQLite ledger needs a file path (sqlite:///spend.db); use memory:// for a "
            "throwaway in-process ledger"
        )
    return rest[1:] if rest.startswith("/") else rest


def _create_private(path: str) -> None:
    """Create ``path`` readable and writable by its owner only, if it does not exist yet (an
    existing file keeps its mode). ``os.open``'s mode is not widened by any umask."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    except OSError as exc:
        raise LedgerUnavailableError(f"cannot create the SQLite ledger {path}: {exc}") from exc
    os.close(fd)


class SQLiteLedger(SQLiteRollups, SQLiteRecordRows, SQLControl, outbox.DeliveryOutcomes):
    """A ledger in one SQLite file, shared by every thread and process that opens it."""

    remote: Final = False
    """Calls are local and take tens of microseconds (a thread hop would cost more than it
    saves), so async callers run them inline; only a lock held by a stopped writer makes one
    wait, and never past ``?timeout=``."""

    def __init__(self, url: str, *, timeout: float | None = None) -> None:
        self.url = url
        # Absolute from here on: the connections of other threads (the WAL checkpointer) and of
        # forked children open later, and a relative path would then name a file in whatever
        # the working directory has become (an empty spend.db there, checkpointed instead).
        self.path = os.path.abspath(path_from_url(url))
        options = parse_options(url, timeout=timeout)
        self.timeout = options.timeout
        self._synchronous = options.synchronous
        parent = Path(self.path).parent
        if not parent.exists():
            raise ConfigurationError(f"folder {parent} for the SQLite ledger does not exist")
        self._background_checkpoints = options.background_checkpoints
        self._board_capacity = options.holds
        self._lock = threading.RLock()
        self._closed = False
        self._fork_hold = forksafe.HeldOverFork()  # _lock across a fork (the fork hooks)
        self._board_inherited = False  # in a forked child until it reopens the board
        # Opening waits for locks too (WAL switch, migration, board): one deadline for all.
        deadline = time.monotonic() + self.timeout
        _create_private(self.path)
        self._conn: sqlite3.Connection | None = self._connect(deadline)
        self._checkpointer = self._start_checkpointer()
        self._migrate(deadline)
        self._ledger_id = self._read_ledger_id()
        self._board = self._open_board(deadline)
        forksafe.register(self)
        # (spent net of baseline, count, baseline) of calendar buckets, valid while the
        # board's generation is ``_cache_gen``; digests of buckets, which never change.
        self._totals_cache: BoundedCache[tuple[str, str, int], tuple[int, int, int]]
        self._totals_cache = BoundedCache(_CACHE_LIMIT)
        self._cache_gen = -1
        self._digests: BoundedCache[tuple[str, str, int], int] = BoundedCache(_CACHE_LIMIT)
        # Work derived from the checks and record buckets handed in, remembered by their value
        # (one memo per kind: an empty checks tuple equals an empty bucket tuple).
        self._check_plans: BoundedCache[Sequence[LimitCheck], list[int]] = BoundedCache(1_000)
        self._plans: BoundedCache[Sequence[Bucket], _UpsertPlan] = BoundedCache(1_000)

    # -- connection ---------------------------------------------------------------------------
    def _connect(self, deadline: float | None = None) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False
            )
            conn.execute(f"PRAGMA busy_timeout={int(self.timeout * 1000)}")
            self._enable_wal(conn, deadline)
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            if self._background_checkpoints:
                conn.execute(f"PRAGMA wal_autocheckpoint={SAFETY_NET_PAGES}")
        except sqlite3.Error as exc:
            raise LedgerUnavailableError(f"cannot open SQLite ledger {self.path}: {exc}") from exc
        return conn

    def _enable_wal(self, conn: sqlite3.Connection, deadline: float | None) -> None:
        """Switch a new file to WAL. Several processes opening a new file at once can find it
        locked while another one switches it (the busy handler does not cover this pragma),
        so retry until the deadline (by default the timeout)."""
        if deadline is None:
            deadline = time.monotonic() + self.timeout
        delay = 0.001
        while True:
            try:
                mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
                continue
            if str(mode).lower() != "wal":
                raise LedgerError(f"{self.path} could not be switched to WAL mode (got {mode})")
            return

    def _start_checkpointer(self) -> BackgroundCheckpointer | None:
        if not self._background_checkpoints:
            return None
        checkpointer = BackgroundCheckpointer(self.path, timeout=self.timeout)
        # Stop the thread when this ledger is dropped without close().
        weakref.finalize(self, checkpointer.close, 1.0)
        return checkpointer

    def _read_ledger_id(self) -> int:
        with self._read() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'ledger_id'").fetchone()
        return int(row[0], 16)

    def _open_board(self, deadline: float | None = None) -> HoldBoard:
        wait = self.timeout if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            return HoldBoard(
                self.path + "-holds", self._ledger_id, self._board_capacity, timeout=wait
            )
        except LedgerLockTimeout as exc:
            raise LedgerUnavailableError(f"cannot open the ledger {self.path}: {exc}") from exc
        except OSError as exc:
            raise LedgerUnavailableError(
                f"cannot open the hold board {self.path}-holds beside the ledger: {exc}"
            ) from exc

    def _conn_for_pid(self) -> sqlite3.Connection:
        """This process's connection, under ``_lock``: after a fork (see the module doc) the
        first call reopens it, and in the child the board too (an inherited flock is shared
        with the parent, so the child's lock would be the parent's)."""
        conn = self._conn
        if conn is None:
            conn = self._reopen()
        return conn

    def _reopen(self) -> sqlite3.Connection:
        if self._closed:
            raise LedgerError(f"the SQLite ledger {self.path} is closed; open a new one")
        if self._board_inherited:
            self._board.close()
            self._board = self._open_board()
            self._board_inherited = False
            self._forget_totals()
        conn = self._conn = self._connect()
        return conn

    # -- fork hooks (costwarden.forksafe) -----------------------------------------------------
    def _before_fork(self) -> None:
        """Wait (bounded) until no thread is inside this ledger, then close its connection:
        the child must not inherit SQLite's record of this process's locks on the file."""
        quiet = self._fork_hold.take(self._lock, self.timeout + 1.0)
        if quiet and self._conn is not None and not self._closed:
            self._conn.close()
            self._conn = None

    def _after_fork_in_parent(self) -> None:
        self._fork_hold.release()

    def _after_fork_in_child(self) -> None:
        self._lock = threading.RLock()
        self._fork_hold.forget()
        if self._conn is not None and not self._closed:
            # A thread was still inside the ledger when the fork came: never use or close it.
            forksafe.set_aside(self._conn)
            self._conn = None
        self._board_inherited = True

    def _digest(self, hold_key: tuple[str, str, int]) -> int:
        """The board digest of a bucket's holds key ``(scope, period, hold_start)``."""
        d = self._digests.get(hold_key)
        if d is None:
            scope, period, start = hold_key
            d = digest64(f"{scope}\x1f{period}\x1f{start}")
            self._digests.put(hold_key, d)
        return d

    def _lock_board(self) -> float:
        """Take the ledger lock, waiting at most the ledger's timeout; returns the seconds
        waited (0.0 when it was free at once)."""
        try:
            return self._board.lock(self.timeout)
        except LedgerLockTimeout as exc:
            raise LedgerUnavailableError(
                f"{exc}; a process may be stopped or stuck while holding it (raise ?timeout= "
                "if the ledger is just very busy)"
            ) from exc

    @contextmanager
    def _ledger_locked(self) -> Iterator[sqlite3.Connection]:
        """This process's lock, then the ledger lock (the board's flock)."""
        with self._lock:
            conn = self._conn_for_pid()
            self._lock_board()
            try:
                yield conn
            except sqlite3.OperationalError as exc:
                raise LedgerUnavailableError(f"reading {self.path} failed: {exc}") from exc
            finally:
                self._board.unlock()

    def _forget_totals(self) -> None:
        self._totals_cache.clear()
        self._cache_gen = -1

    def _sync_cache(self) -> None:
        """Drop the cached totals if another process changed totals since they were read."""
        gen = self._board.generation
        if gen != self._cache_gen:
            self._totals_cache.clear()
            self._cache_gen = gen

    def _write(self) -> _WriteTransaction:
        """One ``BEGIN IMMEDIATE`` transaction; rolled back on any error."""
        return _WriteTransaction(self)

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._conn_for_pid()
            try:
                yield conn
            except sqlite3.OperationalError as exc:
                raise LedgerUnavailableError(f"reading {self.path} failed: {exc}") from exc

    def side_transaction(self, lock: str, work: Callable[[SideExecute], _T]) -> _T:
        """:class:`~costwarden.ledger.side_tables.SideTables`: one ``BEGIN IMMEDIATE``
        transaction (SQLite lets one writer in at a time, so every lock name is one lock)."""
        try:
            with self._write() as conn:
                return work(conn.execute)
        except sqlite3.OperationalError as exc:
            raise LedgerUnavailableError(
                f"a side transaction on {self.path} failed: {exc}"
            ) from exc

    def _migrate(self, deadline: float) -> None:
        assert self._conn is not None
        left = max(0.001, deadline - time.monotonic())
        self._conn.execute(f"PRAGMA busy_timeout={int(left * 1000)}")
        try:
            with self._write() as conn:
                apply_migrations(conn.execute, MIGRATIONS, placeholder="?", where=self.path)
        finally:
            self._conn.execute(f"PRAGMA busy_timeout={int(self.timeout * 1000)}")

    @property
    def schema_version(self) -> int:
        """The schema version stored in the file (what migrations have brought it to)."""
        with self._read() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return int(row[0])

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check`` result: 'ok', or a description of the damage (for
        ``costwarden ledger check``).
        """
        with self._read() as conn:
            return str(conn.execute("PRAGMA integrity_check").fetchone()[0])

    # -- admission ----------------------------------------------------------------------------
    @staticmethod
    def _spent(conn: sqlite3.Connection, b: Bucket) -> int:
        if b.is_rolling:
            row = conn.execute(_SPENT_ROLLING, (b.scope, b.start, b.end)).fetchone()
        else:
            row = conn.execute(_SPENT, (b.scope, b.period, b.start)).fetchone()
        return int(row[0]) if row else 0

    def _cached_total(
        self, conn: sqlite3.Connection, key: tuple[str, str, int]
    ) -> tuple[int, int, int]:
        """A calendar bucket's totals from memory (valid after :meth:`_sync_cache` under the
        ledger lock), else read and kept."""
        usage = self._totals_cache.get(key)
        if usage is None:
            row = conn.execute(_TOTAL, key).fetchone()
            usage = (int(row[0]), int(row[1]), int(row[2])) if row else (0, 0, 0)
            self._totals_cache.put(key, usage)
        return usage

    def _first_denial(
        self,
        conn: sqlite3.Connection,
        amount: Nanos,
        checks: Sequence[LimitCheck],
        now: float,
        digests: list[int],
    ) -> Denial | None:
        """Under the ledger lock: the first check that ``amount`` does not fit, given the
        checked buckets' board digests (the caller files a hold under the same ones)."""
        held = dict.fromkeys(digests, 0)
        self._board.reserved(held, now)
        self._sync_cache()
        for chk, digest in zip(checks, digests, strict=True):
            b = chk.bucket
            spent = self._spent(conn, b) if b.is_rolling else self._cached_total(conn, b.key)[0]
            reserved = held[digest]
            if spent + reserved + amount > chk.limit:
                return Denial(chk, spent, reserved, amount)
        return None

    def _check_digests(self, checks: Sequence[LimitCheck]) -> list[int]:
        """The board digests of the checked buckets, remembered by the value of ``checks``
        (the manager hands the same HashedTuple for every call of one plan and window, so this
        is one dict hit); a list is unhashable and digested every time."""
        return remember(self._check_plans, checks, self._digests_of)

    def _digests_of(self, checks: Sequence[LimitCheck]) -> list[int]:
        digest = self._digest
        return [digest(c.bucket.hold_key) for c in checks]

    def reserve(
        self,
        hold_id: str,
        amount: Nanos,
        checks: Sequence[LimitCheck],
        expires_at: float,
        now: float,
    ) -> Denial | None:
        # The hot path: the same steps as _ledger_locked(), without a generator per call.
        tag = digest64(hold_id)
        with self._lock:
            conn = self._conn_for_pid()
            digests = self._check_digests(checks)
            board = self._board
            self._lock_board()
            try:
                denial = self._first_denial(conn, amount, checks, now, digests)
                if denial is None:
                    board.add(tag, digests, amount, expires_at, now, name=hold_id)
                return denial
            except sqlite3.OperationalError as exc:
                raise LedgerUnavailableError(f"reading {self.path} failed: {exc}") from exc
            finally:
                board.unlock()

    def check(self, amount: Nanos, checks: Sequence[LimitCheck], now: float) -> Denial | None:
        with self._ledger_locked() as conn:
            return self._first_denial(conn, amount, checks, now, self._check_digests(checks))

    def append(
        self,
        record: NewRecord,
        buckets: Sequence[Bucket],
        hold_id: str | None = None,
        *,
        watch: Sequence[Bucket] = (),
    ) -> tuple[StoredRecord, list[BucketUsage]]:
        params = SQLITE_RECORDS.params(record, hold_id)
        with _WriteTransaction(self, totals=True, hold_id=hold_id) as conn:
            self._sync_cache()
            cache = self._totals_cache
            # The watched buckets' totals before the write (memory, or read now)...
            before = [None if bk.is_rolling else self._cached_total(conn, bk.key) for bk in watch]
            record_id = conn.execute(_INSERT_RECORD, params).lastrowid
            cost = record.cost_nanos
            sql, keys, written = self._upsert_plan(buckets)
            if buckets:
                conn.execute(sql, (cost, *keys))
                # ... and every cached one moves by the same cost (the transaction drops the
                # cache if the COMMIT fails).
                for key in written:
                    u = cache.get(key)
                    if u is not None:
                        cache.replace(key, (u[0] + cost, u[1] + 1, u[2]))
            watched = []
            for bk, u in zip(watch, before, strict=True):
                if u is None:
                    watched.append(BucketUsage(self._spent(conn, bk), 0, 0))
                elif bk.key in written:
                    watched.append(BucketUsage(u[0] + cost, 0, u[1] + 1, u[2]))
                else:
                    watched.append(BucketUsage(u[0], 0, u[1], u[2]))
        assert record_id is not None
        return record.stored(record_id), watched

    def _upsert_plan(self, buckets: Sequence[Bucket]) -> _UpsertPlan:
        """The totals upsert for ``buckets``: its SQL, its parameters after the cost, and the
        keys it writes. The manager hands the same bucket HashedTuple for every call of the
        same scopes in the same windows, so this is remembered by the value of ``buckets`` (one
        dict hit); a list is unhashable and planned afresh."""
        return remember(self._plans, buckets, _new_upsert_plan)

    def _after_totals_commit(self, old_gen: int, new_gen: int, hold_id: str | None) -> None:
        """Called under the ledger lock right after a totals transaction committed (which
        bumped the generation from ``old_gen``): the cache is current if it was at
        ``old_gen``, and the settled hold leaves the board."""
        if self._cache_gen == old_gen:
            self._cache_gen = new_gen
        else:
            self._totals_cache.clear()
            self._cache_gen = -1
        if hold_id is not None:
            self._board.remove(digest64(hold_id))

    def release(self, hold_id: str) -> bool:
        with self._ledger_locked():
            return self._board.remove(digest64(hold_id))

    def hold_exists(self, hold_id: str, now: float) -> bool:
        with self._ledger_locked():
            return self._board.exists(digest64(hold_id), now)

    def usage(self, buckets: Sequence[Bucket], now: float) -> list[BucketUsage]:
        out = []
        digest = self._digest
        with self._ledger_locked() as conn:
            held = {digest(b.hold_key): 0 for b in buckets}
            self._board.reserved(held, now)
            conn.execute("BEGIN")
            try:
                for b in buckets:
                    reserved = held[digest(b.hold_key)]
                    if b.is_rolling:
                        out.append(BucketUsage(self._spent(conn, b), reserved, 0))
                        continue
                    row = conn.execute(
                        "SELECT spent, baseline, count FROM totals "
                        "WHERE scope = ? AND period = ? AND start = ?",
                        b.key,
                    ).fetchone()
                    spent, baseline, count = row if row else (0, 0, 0)
                    out.append(BucketUsage(spent - baseline, reserved, count, baseline))
            finally:
                conn.execute("COMMIT")
        return out

    def reset(self, bucket: Bucket, now: float, detail: str | None = None) -> Nanos:
        with _WriteTransaction(self, totals=True) as conn:
            self._forget_totals()  # a baseline moves: simplest to re-read afterwards
            conn.execute(
                "INSERT INTO totals (scope, period, start, end_, spent, count) "
                "VALUES (?,?,?,?,0,0) ON CONFLICT (scope, period, start) DO NOTHING",
                (bucket.scope, bucket.period, bucket.start, bucket.end),
            )
            spent, baseline = conn.execute(
                "SELECT spent, baseline FROM totals WHERE scope = ? AND period = ? AND start = ?",
                (bucket.scope, bucket.period, bucket.start),
            ).fetchone()
            conn.execute(
                "UPDATE totals SET baseline = spent WHERE scope = ? AND period = ? AND start = ?",
                (bucket.scope, bucket.period, bucket.start),
            )
            conn.execute(
                "INSERT INTO events (ts, kind, scope, period, start, amount, detail) "
                "VALUES (?, 'reset', ?, ?, ?, ?, ?)",
                (now, bucket.scope, bucket.period, bucket.start, spent - baseline, detail),
            )
            return int(spent - baseline)

    def events(self, limit: int = 100) -> list[LedgerEvent]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT id, ts, kind, scope, period, start, amount, detail FROM events "
                "ORDER BY id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [LedgerEvent(*row) for row in rows]

    def purge_expired_holds(self, now: float) -> int:
        """Free expired board entries; 0 without waiting if the ledger lock is busy.

        Housekeeping only (expired holds never count, and their entries are reused), so it
        must not add a wait of its own to the call that triggers it (the manager purges
        before some reservations: two waits would double the ``timeout``)."""
        with self._lock:
            self._conn_for_pid()
            try:
                self._board.lock(0.0)
            except LedgerLockTimeout:
                return 0
            try:
                return self._board.purge(now)
            finally:
                self._board.unlock()

    def live_holds(self, now: float) -> int:
        """How many holds are filed and unexpired (the board's occupancy, for operators)."""
        with self._ledger_locked():
            return self._board.live_holds(now)

    # -- history ------------------------------------------------------------------------------
    def records(
        self, since_us: int | None = None, until_us: int | None = None, limit: int | None = None
    ) -> list[StoredRecord]:
        sql = (
            f"SELECT {SELECT_COLUMNS} FROM records "
            "WHERE ts_us >= ? AND ts_us < ? ORDER BY ts_us, id"
        )
        params: list[Any] = [
            since_us if since_us is not None else -(2**62),
            until_us if until_us is not None else 2**62,
        ]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        with self._read() as conn:
            found = conn.execute(sql, params).fetchall()
        return [SQLITE_RECORDS.decode(row) for row in found]

    def count_records(self) -> int:
        with self._read() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM records").fetchone()[0])

    def series(self, scope: str, period: str, since: int, until: int) -> list[tuple[int, int]]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT start, spent - baseline FROM totals WHERE scope = ? AND period = ? "
                "AND start >= ? AND start < ? ORDER BY start",
                (scope, period, since, until),
            ).fetchall()
        return [(int(a), int(b)) for a, b in rows]

    # -- alert outbox -------------------------------------------------------------------------
    def claim_alert(
        self, dedup_key: str, payload: str, channels: Sequence[str], now: float
    ) -> bool:
        with self._write() as conn:
            cur = conn.execute(
                "INSERT INTO alert_claims (dedup_key, created_at, payload) VALUES (?,?,?) "
                "ON CONFLICT (dedup_key) DO NOTHING",
                (dedup_key, now, payload),
            )
            if cur.rowcount == 0:
                return False
            conn.executemany(
                "INSERT INTO deliveries (dedup_key, channel, payload, status, attempts, "
                "created_at, next_attempt_at) VALUES (?, ?, ?, 'pending', 0, ?, ?)",
                [(dedup_key, ch, payload, now, now) for ch in channels],
            )
            return True

    def lease_deliveries(self, now: float, lease_seconds: float, limit: int) -> list[Delivery]:
        with self._write() as conn:
            rows = conn.execute(
                f"SELECT {outbox.DELIVERY_COLUMNS} FROM deliveries WHERE status = 'pending' "
                "AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?",
                (now, limit),
            ).fetchall()
            conn.executemany(
                "UPDATE deliveries SET next_attempt_at = ? WHERE id = ?",
                [(now + lease_seconds, r[0]) for r in rows],
            )
        return [
            Delivery(
                id=r[0],
                dedup_key=r[1],
                channel=r[2],
                payload=r[3],
                status=r[4],
                attempts=r[5],
                created_at=r[6],
                next_attempt_at=now + lease_seconds,
                last_error=r[8],
                delivered_at=r[9],
            )
            for r in rows
        ]

    def _store_outcome(self, delivery_id: int, outcome: outbox.Outcome) -> bool:
        with self._write() as conn:
            cur = conn.execute(outbox.STORE_OUTCOME_SQL, outcome.params(delivery_id))
        return cur.rowcount > 0

    def deliveries(self, since: float | None = None, limit: int = 100) -> list[Delivery]:
        with self._read() as conn:
            rows = conn.execute(
                outbox.HISTORY_SQL, (since if since is not None else float("-inf"), limit)
            ).fetchall()
        return [Delivery(*r) for r in rows]

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.close()
        with self._lock:
            self._closed = True
            if self._conn is not None:
                self._conn.close()
            self._board.close()

    # -- control plane (the logic is SQLControl's, see ledger/control.py) ----------------------
    def control_version(self) -> int:
        """The hold board's control generation: one memory read, current across processes
        from the moment a change commits (it is bumped under the ledger lock before)."""
        return self._board.control_generation

    @contextmanager
    def _control_write(self) -> Iterator[Execute]:
        with self._lock:
            conn = self._conn_for_pid()
            waited = self._lock_board()
            try:
                if waited:  # one deadline for both locks, as in _WriteTransaction
                    _WriteTransaction._begin_within(conn, self.timeout - waited, self.timeout)
                else:
                    conn.execute("BEGIN IMMEDIATE")
                try:
                    changes = conn.total_changes
                    yield conn.execute
                    if conn.total_changes != changes:  # not for a no-op (a missing budget)
                        self._board.bump_control()  # before COMMIT: see _control_read
                    conn.execute("COMMIT")
                finally:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
            except sqlite3.OperationalError as exc:
                raise LedgerUnavailableError(f"writing {self.path} failed: {exc}") from exc
            except sqlite3.Error as exc:
                raise LedgerError(f"writing {self.path} failed: {exc}") from exc
            finally:
                self._board.unlock()
        if self._checkpointer is not None:
            self._checkpointer.note_write()

    @contextmanager
    def _control_read(self, *, snapshot: bool) -> Iterator[Execute]:
        """A snapshot is read under the ledger lock, which every control write holds from its
        bump to its COMMIT: the generation read and the rows read always belong together."""
        with self._ledger_locked() if snapshot else self._read() as conn:
            yield conn.execute

    def _snapshot_version(self, execute: Execute) -> int:
        return self._board.control_generation

    # -- streaming reads and imported bills (see ledger/billing.py) ----------------------------
    def iter_records(
        self, since_us: int | None = None, until_us: int | None = None, batch: int = BATCH
    ) -> Iterator[StoredRecord]:
        query = billing_sql.batch_sql(SELECT_COLUMNS, "?")

        def read(params: tuple[int, ...]) -> list[Any]:
            with self._read() as conn:
                return conn.execute(query, params).fetchall()

        return billing_sql.record_batches(read, SQLITE_RECORDS.decode, since_us, until_us, batch)

    def put_bill_lines(self, lines: Sequence[BillLine]) -> int:
        sql = billing_sql.upsert_sql("?")
        params = [billing_sql.line_params(line) for line in lines]
        with self._write() as conn:
            conn.executemany(sql, params)
        return len(params)

    def bill_lines(
        self, since_us: int | None = None, until_us: int | None = None, provider: str | None = None
    ) -> list[BillLine]:
        with self._read() as conn:
            rows = conn.execute(
                billing_sql.select_sql("?", provider),
                billing_sql.select_params(since_us, until_us, provider),
            ).fetchall()
        return [billing_sql.line_from_row(row) for row in rows]


class _WriteTransaction:
    """``with`` one ``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error) under this
    process's lock. A class rather than a generator-based context manager because it runs on
    every tracked call.

    ``totals=True`` marks a write that changes totals (a record, a reset): it also runs under
    the ledger lock, and the board's generation is bumped before the COMMIT (a crash after the
    bump only makes other processes re-read). Right after the COMMIT, still under the ledger
    lock, the settled hold (``hold_id``) leaves the board, so no other process ever sees the
    record without the hold being gone or both at once (which over-counts, never under-counts).
    """

    __slots__ = ("_conn", "_ledger", "_totals", "hold_id")

    def __init__(
        self, ledger: SQLiteLedger, *, totals: bool = False, hold_id: str | None = None
    ) -> None:
        self._ledger = ledger
        self._totals = totals
        self.hold_id = hold_id

    def __enter__(self) -> sqlite3.Connection:
        ledger = self._ledger
        ledger._lock.acquire()
        board_locked = False
        try:
            conn = self._conn = ledger._conn_for_pid()
            if self._totals:
                waited = ledger._lock_board()
                board_locked = True
                if waited:  # rare: the ledger lock was busy; SQLite may wait only what is left
                    self._begin_within(conn, ledger.timeout - waited, ledger.timeout)
                    return conn
            conn.execute("BEGIN IMMEDIATE")
        except BaseException as exc:
            if board_locked:
                ledger._board.unlock()
            ledger._lock.release()
            if isinstance(exc, sqlite3.OperationalError):
                raise LedgerUnavailableError(
                    f"SQLite ledger {ledger.path} stayed locked for {ledger.timeout:g}s "
                    f"({exc}); another process holds the write lock too long, or raise "
                    "?timeout="
                ) from exc
            raise
        return conn

    @staticmethod
    def _begin_within(conn: sqlite3.Connection, seconds: float, timeout: float) -> None:
        """``BEGIN IMMEDIATE`` with SQLite's busy wait cut to ``seconds`` (what is left of the
        ledger's ``timeout`` after a wait for the ledger lock), then ``timeout`` again."""
        conn.execute(f"PRAGMA busy_timeout={max(1, int(seconds * 1000))}")
        try:
            conn.execute("BEGIN IMMEDIATE")
        finally:
            conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        ledger = self._ledger
        conn = self._conn
        totals = self._totals
        try:
            if exc_type is not None:
                if totals:
                    ledger._forget_totals()
                conn.execute("ROLLBACK")
                return
            old_gen = new_gen = 0
            if totals:
                old_gen = ledger._board.generation
                new_gen = ledger._board.bump()
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if totals:
                    ledger._forget_totals()
                conn.execute("ROLLBACK")
                raise LedgerError(f"commit to {ledger.path} failed: {exc}") from exc
            if totals:
                ledger._after_totals_commit(old_gen, new_gen, self.hold_id)
            checkpointer = ledger._checkpointer
            if checkpointer is not None:
                checkpointer.note_write()
        finally:
            if totals:
                ledger._board.unlock()
            ledger._lock.release()


__all__ = ["MINUTE", "SQLiteLedger", "path_from_url"]
