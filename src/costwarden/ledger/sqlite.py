"""SQLite ledger: the embedded default, safe for many threads and many processes on one host.

Each write is one ``BEGIN IMMEDIATE`` transaction, which takes SQLite's write lock before
reading, so a reservation's check and its hold cannot interleave with another writer's (in
this process or another). WAL mode lets readers run beside the writer. ``synchronous=NORMAL``
(the default here) survives any process crash; ``?synchronous=full`` in the URL also survives
power loss, at a cost per commit.

URL: ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``, optional query
``?timeout=5&synchronous=full``.
"""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from costwarden.errors import ConfigurationError, LedgerError, LedgerUnavailableError
from costwarden.ledger.base import (
    MINUTE,
    Bucket,
    BucketUsage,
    Delivery,
    Denial,
    LedgerEvent,
    LimitCheck,
    NewRecord,
)
from costwarden.ledger.migrations import apply_migrations
from costwarden.ledger.schema_sqlite import MIGRATIONS
from costwarden.ledger.sqlite_checkpoint import SAFETY_NET_PAGES, BackgroundCheckpointer
from costwarden.money import Nanos
from costwarden.records import StoredRecord

_RECORD_COLUMNS = (
    "id, ts_us, model, provider, input_tokens, output_tokens, cache_read_tokens, "
    "cache_write_tokens, reasoning_tokens, cost_nanos, user_id, team, key, endpoint, "
    "request_id, tags, latency_ms, status, estimated, price_source, metadata"
)
_INSERT_RECORD = (
    "INSERT INTO records (ts_us, model, provider, input_tokens, output_tokens, "
    "cache_read_tokens, cache_write_tokens, reasoning_tokens, cost_nanos, user_id, team, key, "
    "endpoint, request_id, tags, latency_ms, status, estimated, price_source, hold_id, "
    "metadata) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
_SPENT = "SELECT spent - baseline FROM totals WHERE scope = ? AND period = ? AND start = ?"
_SPENT_ROLLING = (
    "SELECT COALESCE(SUM(spent), 0) FROM totals "
    "WHERE scope = ? AND period = 'minute' AND start >= ? AND start < ?"
)
_RESERVED = (
    "SELECT COALESCE(SUM(amount), 0) FROM holds "
    "WHERE scope = ? AND period = ? AND start = ? AND expires_at > ?"
)
# Spent and live reserved amount of one calendar bucket in one statement (the hot path).
_SPENT_AND_RESERVED = (
    "SELECT (SELECT spent - baseline FROM totals WHERE scope = ?1 AND period = ?2 AND start = ?3),"
    " (SELECT COALESCE(SUM(amount), 0) FROM holds"
    "  WHERE scope = ?1 AND period = ?2 AND start = ?3 AND expires_at > ?4)"
)


@functools.lru_cache(maxsize=64)
def _upsert_totals_sql(rows: int) -> str:
    """``rows`` totals upserted in one statement, returning each bucket's new figures."""
    values = ", ".join(["(?,?,?,?,?,1)"] * rows)
    return (
        f"INSERT INTO totals (scope, period, start, end_, spent, count) VALUES {values} "
        "ON CONFLICT (scope, period, start) DO UPDATE SET "
        "spent = spent + excluded.spent, count = count + 1 "
        "RETURNING scope, period, start, spent - baseline, count, baseline"
    )


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


def _query(url: str) -> dict[str, str]:
    if "?" not in url:
        return {}
    out = {}
    for part in url.split("?", 1)[1].split("&"):
        if part:
            k, _, v = part.partition("=")
            out[k] = v
    return out


class SQLiteLedger:
    """A ledger in one SQLite file, shared by every thread and process that opens it."""

    def __init__(self, url: str, *, timeout: float | None = None) -> None:
        self.url = url
        self.path = path_from_url(url)
        options = _query(url)
        try:
            self.timeout = float(options.get("timeout", timeout if timeout is not None else 10.0))
        except ValueError:
            raise ConfigurationError(f"timeout in {url!r} must be a number of seconds") from None
        self._synchronous = options.get("synchronous", "normal").upper()
        if self._synchronous not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ConfigurationError(f"synchronous in {url!r} must be off/normal/full/extra")
        parent = Path(self.path).parent
        if not parent.exists():
            raise ConfigurationError(f"folder {parent} for the SQLite ledger does not exist")
        checkpoint = options.get("checkpoint", "background")
        if checkpoint not in ("background", "auto"):
            raise ConfigurationError(f"checkpoint in {url!r} must be background or auto")
        self._background_checkpoints = checkpoint == "background"
        self._lock = threading.RLock()
        self._pid = os.getpid()
        self._conn = self._connect()
        self._checkpointer = self._start_checkpointer()
        self._migrate()

    # -- connection ---------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False
            )
            conn.execute(f"PRAGMA busy_timeout={int(self.timeout * 1000)}")
            self._enable_wal(conn)
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            if self._background_checkpoints:
                conn.execute(f"PRAGMA wal_autocheckpoint={SAFETY_NET_PAGES}")
        except sqlite3.Error as exc:
            raise LedgerUnavailableError(f"cannot open SQLite ledger {self.path}: {exc}") from exc
        return conn

    def _enable_wal(self, conn: sqlite3.Connection) -> None:
        """Switch a new file to WAL. Several processes opening a new file at once can find it
        locked while another one switches it (the busy handler does not cover this pragma),
        so retry until the timeout."""
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

    def _conn_for_pid(self) -> sqlite3.Connection:
        # A connection (and the checkpoint thread) must not cross fork(); a child reopens.
        if os.getpid() != self._pid:
            self._pid = os.getpid()
            self._lock = threading.RLock()
            self._conn = self._connect()
            self._checkpointer = self._start_checkpointer()
        return self._conn

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

    def _migrate(self) -> None:
        with self._write() as conn:
            apply_migrations(conn.execute, MIGRATIONS, placeholder="?", where=self.path)

    @property
    def schema_version(self) -> int:
        with self._read() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return int(row[0])

    def integrity_check(self) -> str:
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

    @staticmethod
    def _reserved(conn: sqlite3.Connection, b: Bucket, now: float) -> int:
        row = conn.execute(_RESERVED, (b.scope, b.period, b.hold_start, now)).fetchone()
        return int(row[0])

    def _first_denial(
        self, conn: sqlite3.Connection, amount: Nanos, checks: Sequence[LimitCheck], now: float
    ) -> Denial | None:
        for chk in checks:
            b = chk.bucket
            if b.is_rolling:
                spent = self._spent(conn, b)
                reserved = self._reserved(conn, b, now)
            else:
                row = conn.execute(
                    _SPENT_AND_RESERVED, (b.scope, b.period, b.start, now)
                ).fetchone()
                spent, reserved = (row[0] or 0), row[1]
            if spent + reserved + amount > chk.limit:
                return Denial(chk, spent, reserved, amount)
        return None

    def reserve(
        self,
        hold_id: str,
        amount: Nanos,
        checks: Sequence[LimitCheck],
        expires_at: float,
        now: float,
    ) -> Denial | None:
        with self._write() as conn:
            denial = self._first_denial(conn, amount, checks, now)
            if denial is not None:
                return denial
            try:
                conn.executemany(
                    "INSERT INTO holds (hold_id, scope, period, start, amount, expires_at) "
                    "VALUES (?,?,?,?,?,?)",
                    [
                        (
                            hold_id,
                            c.bucket.scope,
                            c.bucket.period,
                            c.bucket.hold_start,
                            amount,
                            expires_at,
                        )
                        for c in checks
                    ],
                )
            except sqlite3.IntegrityError as exc:
                raise LedgerError(f"hold {hold_id!r} already exists") from exc
            return None

    def check(self, amount: Nanos, checks: Sequence[LimitCheck], now: float) -> Denial | None:
        with self._read() as conn:
            conn.execute("BEGIN")
            try:
                return self._first_denial(conn, amount, checks, now)
            finally:
                conn.execute("COMMIT")

    def append(
        self,
        record: NewRecord,
        buckets: Sequence[Bucket],
        hold_id: str | None = None,
        *,
        watch: Sequence[Bucket] = (),
    ) -> tuple[StoredRecord, list[BucketUsage]]:
        tags = json.dumps(list(record.tags)) if record.tags else None
        with self._write() as conn:
            cur = conn.execute(
                _INSERT_RECORD,
                (
                    record.ts_us,
                    record.model,
                    record.provider,
                    record.input_tokens,
                    record.output_tokens,
                    record.cache_read_tokens,
                    record.cache_write_tokens,
                    record.reasoning_tokens,
                    record.cost_nanos,
                    record.user_id,
                    record.team,
                    record.key,
                    record.endpoint,
                    record.request_id,
                    tags,
                    record.latency_ms,
                    record.status,
                    int(record.estimated),
                    record.price_source,
                    hold_id,
                    record.metadata_json,
                ),
            )
            record_id = cur.lastrowid
            # Every bucket in one multi-row upsert; the new totals come back (RETURNING), so
            # the watched ones need no second read. Rolling windows are sums over minute
            # slots, read afterwards.
            returned: dict[tuple[str, str, int], BucketUsage] = {}
            if buckets:
                cost = record.cost_nanos
                params: list[object] = []
                for b in buckets:
                    params += (b.scope, b.period, b.start, b.end, cost)
                for scope, period, start, net, count, baseline in conn.execute(
                    _upsert_totals_sql(len(buckets)), params
                ):
                    returned[(scope, period, start)] = BucketUsage(net, 0, count, baseline)
            if hold_id is not None:
                conn.execute("DELETE FROM holds WHERE hold_id = ?", (hold_id,))
            watched = []
            for b in watch:
                if b.is_rolling:
                    watched.append(BucketUsage(self._spent(conn, b), 0, 0))
                else:
                    key = (b.scope, b.period, b.start)
                    usage = returned.get(key)
                    if usage is None:
                        row = conn.execute(
                            "SELECT spent - baseline, count, baseline FROM totals "
                            "WHERE scope = ? AND period = ? AND start = ?",
                            key,
                        ).fetchone()
                        usage = (
                            BucketUsage(row[0], 0, row[1], row[2]) if row else BucketUsage(0, 0, 0)
                        )
                    watched.append(usage)
        assert record_id is not None
        return record.stored(record_id), watched

    def release(self, hold_id: str) -> bool:
        with self._write() as conn:
            return conn.execute("DELETE FROM holds WHERE hold_id = ?", (hold_id,)).rowcount > 0

    def hold_exists(self, hold_id: str, now: float) -> bool:
        with self._read() as conn:
            row = conn.execute(
                "SELECT COUNT(*), MIN(expires_at) FROM holds WHERE hold_id = ?", (hold_id,)
            ).fetchone()
        return bool(row[0]) and float(row[1]) > now

    def usage(self, buckets: Sequence[Bucket], now: float) -> list[BucketUsage]:
        out = []
        with self._read() as conn:
            conn.execute("BEGIN")
            try:
                for b in buckets:
                    reserved = self._reserved(conn, b, now)
                    if b.is_rolling:
                        out.append(BucketUsage(self._spent(conn, b), reserved, 0))
                        continue
                    row = conn.execute(
                        "SELECT spent, baseline, count FROM totals "
                        "WHERE scope = ? AND period = ? AND start = ?",
                        (b.scope, b.period, b.start),
                    ).fetchone()
                    spent, baseline, count = row if row else (0, 0, 0)
                    out.append(BucketUsage(spent - baseline, reserved, count, baseline))
            finally:
                conn.execute("COMMIT")
        return out

    def reset(self, bucket: Bucket, now: float, detail: str | None = None) -> Nanos:
        with self._write() as conn:
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
        with self._write() as conn:
            expired = [
                r[0]
                for r in conn.execute(
                    "SELECT DISTINCT hold_id FROM holds WHERE expires_at <= ?", (now,)
                ).fetchall()
            ]
            conn.executemany("DELETE FROM holds WHERE hold_id = ?", [(h,) for h in expired])
            return len(expired)

    # -- history ------------------------------------------------------------------------------
    def records(
        self, since_us: int | None = None, until_us: int | None = None, limit: int | None = None
    ) -> list[StoredRecord]:
        sql = (
            f"SELECT {_RECORD_COLUMNS} FROM records "
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
            rows = conn.execute(sql, params).fetchall()
        return [_stored(row) for row in rows]

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
                f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE status = 'pending' "
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

    def finish_delivery(
        self,
        delivery_id: int,
        *,
        delivered: bool,
        error: str | None,
        next_attempt_at: float | None,
        now: float,
    ) -> None:
        with self._write() as conn:
            if delivered:
                cur = conn.execute(
                    "UPDATE deliveries SET status = 'delivered', attempts = attempts + 1, "
                    "delivered_at = ?, next_attempt_at = NULL, last_error = NULL WHERE id = ?",
                    (now, delivery_id),
                )
            else:
                cur = conn.execute(
                    "UPDATE deliveries SET status = ?, attempts = attempts + 1, "
                    "next_attempt_at = ?, last_error = ? WHERE id = ?",
                    (
                        "pending" if next_attempt_at is not None else "failed",
                        next_attempt_at,
                        error,
                        delivery_id,
                    ),
                )
            if cur.rowcount == 0:
                raise LedgerError(f"no alert delivery with id {delivery_id}")

    def deliveries(self, since: float | None = None, limit: int = 100) -> list[Delivery]:
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE created_at >= ? "
                "ORDER BY id DESC LIMIT ?",
                (since if since is not None else float("-inf"), limit),
            ).fetchall()
        return [Delivery(*r) for r in rows]

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.close()
        with self._lock:
            self._conn.close()


class _WriteTransaction:
    """``with ledger._write() as conn``: the process lock, then ``BEGIN IMMEDIATE`` ...
    ``COMMIT`` (``ROLLBACK`` on error). A class rather than a generator-based context
    manager because it runs twice per tracked call."""

    __slots__ = ("_conn", "_ledger")

    def __init__(self, ledger: SQLiteLedger) -> None:
        self._ledger = ledger

    def __enter__(self) -> sqlite3.Connection:
        ledger = self._ledger
        ledger._lock.acquire()
        try:
            conn = self._conn = ledger._conn_for_pid()
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            ledger._lock.release()
            raise LedgerUnavailableError(
                f"SQLite ledger {ledger.path} stayed locked for {ledger.timeout:g}s ({exc}); "
                "another process holds the write lock too long, or raise ?timeout="
            ) from exc
        except BaseException:
            ledger._lock.release()
            raise
        return conn

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        conn = self._conn
        try:
            if exc_type is not None:
                conn.execute("ROLLBACK")
                return
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                conn.execute("ROLLBACK")
                raise LedgerError(f"commit to {self._ledger.path} failed: {exc}") from exc
            checkpointer = self._ledger._checkpointer
            if checkpointer is not None:
                checkpointer.note_write()
        finally:
            self._ledger._lock.release()


_DELIVERY_COLUMNS = (
    "id, dedup_key, channel, payload, status, attempts, created_at, next_attempt_at, "
    "last_error, delivered_at"
)


def _stored(row: Sequence[Any]) -> StoredRecord:
    values = list(row)
    values[15] = tuple(json.loads(values[15])) if values[15] else ()
    values[18] = bool(values[18])
    values[20] = json.loads(values[20]) if values[20] else None
    return StoredRecord(*values)


__all__ = ["MINUTE", "SQLiteLedger", "path_from_url"]
