"""PostgreSQL ledger: one budget shared by many processes on many hosts.

Same semantics as the memory and SQLite ledgers (the conformance suite runs on all three).
What makes limits hard here: ``reserve`` is one call of the server-side function
``cw_reserve`` (see ``schema_postgres``), which takes a transaction-scoped advisory lock per
checked bucket in a fixed order, reads spent and live holds in one snapshot taken after the
locks are granted, and files the hold before the locks are released at commit. Two
reservations on a shared bucket therefore run one after the other on the server, whichever
host they come from; reservations on unrelated buckets do not wait for each other. Appends
settle a hold and add the cost in one atomic commit, so a check sees them wholly or not at all.

URL: ``postgresql://user:password@host:5432/dbname`` plus optional query parameters, which
costwarden reads and removes before handing the rest to libpq:

``schema`` (default ``costwarden``)
    where the tables live; created when missing. Lowercase letters, digits, ``_``.
``pool_min`` / ``pool_max`` (default 1 / 10)
    connections kept per process.
``pool_timeout`` (seconds, default 5)
    how long a call waits for a free pooled connection.
``pool_max_waiting`` (default 1000)
    callers allowed to wait for one at once; more are refused at once (no unbounded queue).
``statement_timeout`` (seconds, default 5)
    server-side bound on every statement, lock waits included.
``synchronous_holds`` (default ``off``)
    whether a reservation's or release's commit waits for the server's WAL flush. Records
    (appends) always wait. Off, a reservation takes well under a millisecond instead of a disk
    flush, and it releases its bucket locks sooner; the price is that holds made in the last
    fraction of a second before a *server* crash (not a client crash) may be lost, so calls in
    flight at that moment are not counted until they commit. This is the trade SQLite's
    default ``synchronous=NORMAL`` makes too. ``on`` makes holds as durable as records.

``connect_timeout`` (libpq, seconds) defaults to 5. Every failure to connect, a pool that
stays exhausted, a statement that times out or a connection lost mid-call raises
:class:`~costwarden.errors.LedgerUnavailableError`; the manager then denies (fail closed) or,
with ``fail_open=True``, admits unchecked.
"""

from __future__ import annotations

import atexit
import contextlib
import difflib
import re
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Final, TypeVar
from urllib.parse import parse_qsl, urlencode

import psycopg
import psycopg.errors
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout, TooManyRequests

from costwarden import forksafe
from costwarden.caching import BoundedCache, remember
from costwarden.errors import ConfigurationError, LedgerError, LedgerUnavailableError
from costwarden.ledger import billing_sql, outbox
from costwarden.ledger.base import (
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
from costwarden.ledger.postgres_leases import PostgresLeaseCalls
from costwarden.ledger.record_rows import PostgresRecordRows
from costwarden.ledger.rollup_postgres import PostgresRollups
from costwarden.ledger.rows import APPEND_COLUMNS, POSTGRES_RECORDS, SELECT_COLUMNS
from costwarden.ledger.schema_postgres import MIGRATIONS
from costwarden.ledger.side_tables import SideExecute
from costwarden.money import Nanos
from costwarden.records import NewRecord, StoredRecord

_T = TypeVar("_T")
_SIDE_LOCK: Final = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))"
_Conn = psycopg.Connection[tuple[Any, ...]]

DEFAULT_SCHEMA: Final = "costwarden"
MIN_SERVER_VERSION: Final = 120000
"""PostgreSQL 12 (``server_version_num``): migration 3 sets ``plan_cache_mode``."""
_SCHEMA_RE: Final = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# Deadlocks and serialization failures roll the whole transaction back, so a retry is safe.
_RETRIES: Final = 3

_STORE_OUTCOME = outbox.STORE_OUTCOME_SQL.replace("?", "%s")
_HISTORY = outbox.HISTORY_SQL.replace("?", "%s")
# set_config(..., true) lasts to the end of this statement's transaction: it chooses whether
# the hold's commit waits for the WAL flush (see synchronous_holds in the module doc).
_RESERVE = (
    "SELECT r.idx, r.spent, r.reserved FROM set_config('synchronous_commit', %s, true) AS s, "
    "cw_reserve(%s, %s, %s::text[], %s::text[], %s::bigint[], %s::bigint[], %s::bigint[], "
    "%s::float8, %s::float8) AS r"
)
_CHECK = (
    "SELECT idx, spent, reserved FROM cw_first_denial(%s, %s::text[], %s::text[], "
    "%s::bigint[], %s::bigint[], %s::bigint[], %s::float8)"
)
_APPEND = (
    "SELECT record_id, w_spent, w_count, w_baseline FROM cw_append("
    "%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::text[], %s::float8, %s, %s, "
    "%s, %s, %s::text, %s::text[], %s::text[], %s::bigint[], %s::bigint[], "
    "%s::text[], %s::text[], %s::bigint[], %s::bigint[])"
)
# The record's parameters (rows.APPEND_COLUMNS), then the buckets' and the watched buckets'
# four arrays each.
assert _APPEND.count("%s") == len(APPEND_COLUMNS) + 8
# Spent, live reserved, count and baseline of many buckets in one statement (one snapshot).
_USAGE = """
SELECT CASE WHEN b.period LIKE 'rolling:%%' THEN
            (SELECT COALESCE(SUM(m.spent), 0) FROM totals m
              WHERE m.scope = b.scope AND m.period = 'minute'
                AND m.start >= b.start AND m.start < b.end_)::bigint
            ELSE COALESCE(t.spent - t.baseline, 0) END::bigint,
       (SELECT COALESCE(SUM(h.amount), 0) FROM holds h
         WHERE h.scope = b.scope AND h.period = b.period
           AND h.start = CASE WHEN b.period LIKE 'rolling:%%' THEN 0 ELSE b.start END
           AND h.expires_at > %s::float8)::bigint,
       CASE WHEN b.period LIKE 'rolling:%%' THEN 0 ELSE COALESCE(t.count, 0) END::bigint,
       CASE WHEN b.period LIKE 'rolling:%%' THEN 0 ELSE COALESCE(t.baseline, 0) END::bigint
  FROM unnest(%s::text[], %s::text[], %s::bigint[], %s::bigint[])
       WITH ORDINALITY AS b(scope, period, start, end_, ord)
  LEFT JOIN LATERAL (
    SELECT SUM(x.spent) AS spent, SUM(x.baseline) AS baseline, SUM(x.count) AS count
      FROM totals x WHERE x.scope = b.scope AND x.period = b.period AND x.start = b.start
  ) t ON TRUE
 ORDER BY b.ord
"""
# Claim an alert once across every process, and queue its deliveries, in one statement.
_CLAIM = """
WITH c AS (
    INSERT INTO alert_claims (dedup_key, created_at, payload) VALUES (%(key)s, %(now)s, %(p)s)
    ON CONFLICT (dedup_key) DO NOTHING
    RETURNING dedup_key
), d AS (
    INSERT INTO deliveries (dedup_key, channel, payload, status, attempts, created_at,
                            next_attempt_at)
    SELECT c.dedup_key, u.ch, %(p)s, 'pending', 0, %(now)s, %(now)s
      FROM c, unnest(%(channels)s::text[]) WITH ORDINALITY AS u(ch, ord)
     ORDER BY u.ord
    RETURNING id
)
SELECT (SELECT COUNT(*) FROM c), (SELECT COUNT(*) FROM d)
"""
# Lease due deliveries; SKIP LOCKED lets several dispatchers lease disjoint rows at once.
_LEASE = f"""
WITH due AS (
    SELECT id, next_attempt_at AS due_at FROM deliveries
     WHERE status = 'pending' AND next_attempt_at <= %(now)s
     ORDER BY next_attempt_at, id
     LIMIT %(limit)s
       FOR UPDATE SKIP LOCKED
), leased AS (
    UPDATE deliveries d SET next_attempt_at = %(until)s FROM due WHERE d.id = due.id
    RETURNING {", ".join("d." + c.strip() for c in outbox.DELIVERY_COLUMNS.split(","))}, due.due_at
)
SELECT * FROM leased ORDER BY due_at, id
"""


def _parse_number(options: dict[str, str], name: str, default: float) -> float:
    raw = options.pop(name, None)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(
            f"{name} in the ledger URL must be a number, got {raw!r}"
        ) from None
    if not value > 0 or value != value or value == float("inf"):
        raise ConfigurationError(f"{name} in the ledger URL must be positive, got {raw!r}")
    return value


_OWN_OPTIONS: Final = (
    "schema",
    "pool_min",
    "pool_max",
    "pool_timeout",
    "pool_max_waiting",
    "statement_timeout",
    "synchronous_holds",
)


def _hint(exc: Exception) -> str:
    """For a query parameter libpq does not know: the costwarden option it is close to."""
    found = re.search(r'invalid URI query parameter: "([^"]+)"', str(exc))
    if not found:
        return ""
    near = difflib.get_close_matches(found.group(1), _OWN_OPTIONS, n=1)
    if near:
        return f" (did you mean costwarden's {near[0]!r}?)"
    return f"; costwarden's own options are {', '.join(_OWN_OPTIONS)}, the rest go to libpq"


class PostgresLedger(
    PostgresRollups, PostgresRecordRows, PostgresLeaseCalls, SQLControl, outbox.DeliveryOutcomes
):
    """A ledger in one PostgreSQL schema, shared by every process and host that opens it."""

    remote: Final = True
    """Each call is a network round trip that may wait up to ``statement_timeout``: async
    callers run it on a worker thread rather than on their event loop."""

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        pool_min: int | None = None,
        pool_max: int | None = None,
        pool_timeout: float | None = None,
        connect_timeout: float | None = None,
        statement_timeout: float | None = None,
    ) -> None:
        if not isinstance(url, str) or not url.startswith(
            ("postgresql://", "postgres://", "postgresql+psycopg://")
        ):
            raise ConfigurationError(
                f"not a PostgreSQL URL: {url!r} (expected postgresql://user@host:5432/dbname)"
            )
        self.url = url
        base, _, query = url.partition("?")
        base = re.sub(r"^postgres(ql)?(\+psycopg)?://", "postgresql://", base)
        options = dict(parse_qsl(query, keep_blank_values=True))
        self.schema = schema if schema is not None else options.pop("schema", DEFAULT_SCHEMA)
        options.pop("schema", None)
        if not isinstance(self.schema, str) or not _SCHEMA_RE.match(self.schema):
            raise ConfigurationError(
                f"schema {self.schema!r} is not a plain lowercase PostgreSQL name "
                "(letters, digits and _; at most 63 characters)"
            )
        self.pool_min = int(pool_min or _parse_number(options, "pool_min", 1))
        self.pool_max = int(pool_max or _parse_number(options, "pool_max", 10))
        if self.pool_max < self.pool_min:
            raise ConfigurationError(
                f"pool_max ({self.pool_max}) must not be below pool_min ({self.pool_min})"
            )
        self.pool_timeout = pool_timeout or _parse_number(options, "pool_timeout", 5.0)
        max_waiting = int(_parse_number(options, "pool_max_waiting", 1000))
        self.statement_timeout = statement_timeout or _parse_number(
            options, "statement_timeout", 5.0
        )
        sync_holds = options.pop("synchronous_holds", "off").lower()
        if sync_holds not in ("on", "off", "true", "false", "1", "0"):
            raise ConfigurationError(f"synchronous_holds must be on or off, got {sync_holds!r}")
        self._hold_commit = "on" if sync_holds in ("on", "true", "1") else "off"
        for name, value in (
            ("pool_timeout", self.pool_timeout),
            ("statement_timeout", self.statement_timeout),
            ("connect_timeout", connect_timeout),
        ):
            if value is not None and not (isinstance(value, (int, float)) and value > 0):
                raise ConfigurationError(f"{name} must be a positive number of seconds")
        rest = base + ("?" + urlencode(options) if options else "")
        try:
            params = conninfo_to_dict(rest)
        except psycopg.ProgrammingError as exc:
            raise ConfigurationError(f"cannot read PostgreSQL URL: {exc}{_hint(exc)}") from None
        if connect_timeout is not None:
            params["connect_timeout"] = max(1, round(connect_timeout))
        params.setdefault("connect_timeout", 5)
        params.setdefault("application_name", "costwarden")
        stmt_ms = max(1, round(self.statement_timeout * 1000))
        settings = (
            f"-c search_path={self.schema} -c statement_timeout={stmt_ms} "
            f"-c idle_in_transaction_session_timeout={max(10_000, 2 * stmt_ms)}"
        )
        params["options"] = f"{params.get('options', '')} {settings}".strip()
        self._where = (
            f"{params.get('host', 'localhost')}:{params.get('port', 5432)}/"
            f"{params.get('dbname', '')} schema {self.schema}"
        )
        self._conninfo = make_conninfo("", **params)
        self._connect_timeout = float(str(params["connect_timeout"]))
        self._max_waiting = max_waiting
        self._lock = threading.Lock()
        # Array literals of the checks and bucket lists last handed in, by value, one memo per
        # kind (an empty checks tuple equals an empty bucket tuple; see _check_arrays).
        self._check_literals: BoundedCache[Sequence[LimitCheck], tuple[str, ...]]
        self._check_literals = BoundedCache(1_000)
        self._bucket_literals: BoundedCache[Sequence[Bucket], tuple[str, ...]]
        self._bucket_literals = BoundedCache(1_000)
        self._closed = False
        self._pool: ConnectionPool[_Conn] | None = self._open_pool()
        try:
            self._migrate()
        except BaseException:
            self._pool.close()
            raise
        forksafe.register(self)
        ref = weakref.ref(self)

        def _at_exit() -> None:
            # Close the pool while its worker threads can still run. Left to the garbage
            # collector during interpreter shutdown, its __del__ joins threads that may no
            # longer get to run: forked children of a busy process took 3-5 s to exit so.
            ledger = ref()
            if ledger is not None:
                ledger.close()

        self._atexit = _at_exit
        atexit.register(_at_exit)

    # -- connections ----------------------------------------------------------------------------
    def _open_pool(self) -> ConnectionPool[_Conn]:
        pool: ConnectionPool[_Conn] = ConnectionPool(
            self._conninfo,
            min_size=self.pool_min,
            max_size=self.pool_max,
            timeout=self.pool_timeout,
            max_waiting=self._max_waiting,
            kwargs={"autocommit": True},
            open=False,
            name=f"costwarden-{self.schema}",
        )
        try:
            pool.open(wait=True, timeout=self._connect_timeout + 1)
        except PoolTimeout as exc:
            pool.close()
            raise LedgerUnavailableError(
                f"cannot connect to the PostgreSQL ledger at {self._where} within "
                f"{self._connect_timeout:g}s ({exc}); check that the server is up and the URL, "
                "user and password are right"
            ) from exc
        return pool

    def _current_pool(self) -> ConnectionPool[_Conn]:
        """This process's pool; a forked child opens its own at its first call."""
        pool = self._pool
        if pool is None:
            with self._lock:
                if self._closed:
                    raise LedgerError("this PostgreSQL ledger is closed; open a new one")
                pool = self._pool
                if pool is None:
                    pool = self._pool = self._open_pool()
        return pool

    # -- fork hooks (costwarden.forksafe) -------------------------------------------------------
    def _before_fork(self) -> None:
        pass

    def _after_fork_in_parent(self) -> None:
        pass

    def _after_fork_in_child(self) -> None:
        """A pool must not cross fork(): its sockets are the parent's sessions and its worker
        threads are gone. The child never uses it, and keeps it referenced so the garbage
        collector does not run its ``__del__`` here (which would signal and join those
        threads); marked closed so that nothing at exit tries either. psycopg itself never
        closes a connection in a process other than the one that opened it."""
        self._lock = threading.Lock()  # it may have been held by a thread gone in the child
        pool, self._pool = self._pool, None
        if pool is not None:
            with contextlib.suppress(AttributeError):
                pool._closed = True
            forksafe.set_aside(pool)

    def _run(self, what: str, fn: Callable[[_Conn], _T]) -> _T:
        """Run ``fn`` on a pooled connection, turning database failures into ledger errors."""
        if self._closed:
            raise LedgerError("this PostgreSQL ledger is closed; open a new one")
        for attempt in range(_RETRIES):
            try:
                with self._current_pool().connection() as conn:
                    return fn(conn)
            except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure):
                if attempt == _RETRIES - 1:
                    raise LedgerUnavailableError(
                        f"{what} on {self._where} kept conflicting with concurrent "
                        f"transactions ({_RETRIES} tries); retry the call"
                    ) from None
            except (PoolTimeout, TooManyRequests) as exc:
                raise LedgerUnavailableError(
                    f"no PostgreSQL connection to {self._where} became free for {what} within "
                    f"{self.pool_timeout:g}s ({exc}); the server may be down or the pool "
                    f"(pool_max={self.pool_max}) too small for this many concurrent calls"
                ) from exc
            except PoolClosed as exc:
                raise LedgerError("this PostgreSQL ledger is closed; open a new one") from exc
            except psycopg.errors.QueryCanceled as exc:
                raise LedgerUnavailableError(
                    f"{what} on {self._where} took longer than statement_timeout="
                    f"{self.statement_timeout:g}s and was cancelled ({exc}); the server is "
                    "overloaded or a lock is held too long"
                ) from exc
            except psycopg.OperationalError as exc:
                raise LedgerUnavailableError(
                    f"{what} failed: the PostgreSQL ledger at {self._where} is unreachable or "
                    f"the connection was lost ({exc}); nothing is known to have been written"
                    if what != "append"
                    else f"{what} failed: the connection to {self._where} was lost ({exc}); "
                    "the record may or may not have been stored (committing the same hold "
                    "again stores it once)"
                ) from exc
            except psycopg.Error as exc:
                raise LedgerError(f"{what} on the PostgreSQL ledger failed: {exc}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def side_transaction(self, lock: str, work: Callable[[SideExecute], _T]) -> _T:
        """:class:`~costwarden.ledger.side_tables.SideTables`: one transaction that first takes
        a transaction-scoped advisory lock on ``lock`` (so only same-named ones wait)."""

        def run(conn: _Conn) -> _T:
            with conn.transaction():
                conn.execute(_SIDE_LOCK, ("cw-side|" + lock,))
                return work(self._control_execute(conn))

        return self._run("side transaction", run)

    def _migrate(self) -> None:
        def migrate(conn: _Conn) -> None:
            if conn.info.server_version < MIN_SERVER_VERSION:
                raise ConfigurationError(
                    f"the PostgreSQL server at {self._where} runs version "
                    f"{conn.info.server_version}; costwarden needs PostgreSQL 12 or newer "
                    "(its functions use plan_cache_mode); upgrade the server"
                )
            with conn.transaction():
                conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                    (f"costwarden-migrate|{self.schema}",),
                )
                exists = conn.execute(
                    "SELECT 1 FROM pg_namespace WHERE nspname = %s", (self.schema,)
                ).fetchone()
                if exists is None:
                    conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(self.schema)))
                apply_migrations(
                    conn.execute,
                    MIGRATIONS,
                    placeholder="%s",
                    where=f"schema {self.schema} on {self._where}",
                )

        self._run("migration", migrate)

    @property
    def schema_version(self) -> int:
        """The schema version stored in the database (what migrations have brought it to)."""
        row = self._run(
            "schema_version",
            lambda c: c.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone(),
        )
        if row is None:
            raise LedgerError(f"schema {self.schema} has no schema_version")
        return int(row[0])

    # -- admission ------------------------------------------------------------------------------
    def _check_arrays(self, checks: Sequence[LimitCheck]) -> tuple[str, ...]:
        """The checks as five array literals: scopes, periods, starts, ends, limits.

        Remembered by the value of ``checks`` (the manager hands the same HashedTuple for
        every call of a plan and window), since psycopg would otherwise adapt each list element
        by element on every call, where a ready literal is one string for the server to parse.
        """
        return remember(self._check_literals, checks, _check_literals)

    def _bucket_arrays(self, buckets: Sequence[Bucket]) -> tuple[str, ...]:
        """The buckets as four array literals: scopes, periods, starts, ends."""
        return remember(self._bucket_literals, buckets, _bucket_literals)

    @staticmethod
    def _denial(
        row: tuple[Any, ...] | None, amount: Nanos, checks: Sequence[LimitCheck]
    ) -> Denial | None:
        if row is None or row[0] is None:
            return None
        return Denial(checks[int(row[0]) - 1], int(row[1]), int(row[2]), amount)

    def reserve(
        self,
        hold_id: str,
        amount: Nanos,
        checks: Sequence[LimitCheck],
        expires_at: float,
        now: float,
    ) -> Denial | None:
        params = (self._hold_commit, hold_id, amount, *self._check_arrays(checks), expires_at, now)

        def run(conn: _Conn) -> tuple[Any, ...] | None:
            try:
                return conn.execute(_RESERVE, params).fetchone()
            except psycopg.errors.UniqueViolation:
                raise LedgerError(f"hold {hold_id!r} already exists") from None

        return self._denial(self._run("reserve", run), amount, checks)

    def check(self, amount: Nanos, checks: Sequence[LimitCheck], now: float) -> Denial | None:
        params = (amount, *self._check_arrays(checks), now)
        row = self._run("check", lambda c: c.execute(_CHECK, params).fetchone())
        return self._denial(row, amount, checks)

    def append(
        self,
        record: NewRecord,
        buckets: Sequence[Bucket],
        hold_id: str | None = None,
        *,
        watch: Sequence[Bucket] = (),
    ) -> tuple[StoredRecord, list[BucketUsage]]:
        params = (
            *POSTGRES_RECORDS.params(record, hold_id),
            *self._bucket_arrays(buckets),
            *self._bucket_arrays(watch),
        )
        # One statement, so one round trip and one implicit transaction: record, metadata,
        # totals and the settled hold land together or not at all.
        return self._appended(record, _APPEND, params)

    def _appended(
        self, record: NewRecord, sql: str, params: Sequence[Any]
    ) -> tuple[StoredRecord, list[BucketUsage]]:
        """Run one append statement (``cw_append`` or ``cw_append_leased``) and read its row:
        the record's id and the watched buckets' totals."""
        row = self._run("append", lambda c: c.execute(sql, params).fetchone())
        assert row is not None
        record_id, spent, count, baseline = row
        watched = [
            BucketUsage(int(s), 0, int(n), int(z))
            for s, n, z in zip(spent, count, baseline, strict=True)
        ]
        return record.stored(int(record_id)), watched

    def release(self, hold_id: str) -> bool:
        def run(conn: _Conn) -> bool:
            with conn.transaction():
                conn.execute(
                    "SELECT set_config('synchronous_commit', %s, true)", (self._hold_commit,)
                )
                return conn.execute("DELETE FROM holds WHERE hold_id = %s", (hold_id,)).rowcount > 0

        return self._run("release", run)

    def hold_exists(self, hold_id: str, now: float) -> bool:
        row = self._run(
            "hold_exists",
            lambda c: c.execute(
                "SELECT COUNT(*), MIN(expires_at) FROM holds WHERE hold_id = %s", (hold_id,)
            ).fetchone(),
        )
        assert row is not None
        return bool(row[0]) and float(row[1]) > now

    def usage(self, buckets: Sequence[Bucket], now: float) -> list[BucketUsage]:
        if not buckets:
            return []
        params = (now, *self._bucket_arrays(buckets))
        rows = self._run("usage", lambda c: c.execute(_USAGE, params).fetchall())
        return [BucketUsage(int(s), int(r), int(n), int(z)) for s, r, n, z in rows]

    def reset(self, bucket: Bucket, now: float, detail: str | None = None) -> Nanos:
        key = (bucket.scope, bucket.period, bucket.start)

        def run(conn: _Conn) -> int:
            with conn.transaction():
                conn.execute(
                    "INSERT INTO totals (scope, period, start, end_, spent, count) "
                    "VALUES (%s, %s, %s, %s, 0, 0) "
                    "ON CONFLICT (scope, period, start, shard) DO NOTHING",
                    (*key, bucket.end),
                )
                # every shard row, locked in shard order (appends wait, then add afresh)
                rows = conn.execute(
                    "SELECT spent, baseline FROM totals "
                    "WHERE scope = %s AND period = %s AND start = %s ORDER BY shard FOR UPDATE",
                    key,
                ).fetchall()
                amount = sum(int(spent) - int(base) for spent, base in rows)
                conn.execute(
                    "UPDATE totals SET baseline = spent "
                    "WHERE scope = %s AND period = %s AND start = %s",
                    key,
                )
                conn.execute(
                    "INSERT INTO events (ts, kind, scope, period, start, amount, detail) "
                    "VALUES (%s, 'reset', %s, %s, %s, %s, %s)",
                    (now, *key, amount, detail),
                )
                return amount

        return self._run("reset", run)

    def events(self, limit: int = 100) -> list[LedgerEvent]:
        rows = self._run(
            "events",
            lambda c: c.execute(
                "SELECT id, ts, kind, scope, period, start, amount, detail FROM events "
                "ORDER BY id DESC LIMIT %s",
                (limit,),
            ).fetchall(),
        )
        return [
            LedgerEvent(int(i), float(ts), k, s, p, int(st), int(a), d)
            for i, ts, k, s, p, st, a, d in rows
        ]

    def purge_expired_holds(self, now: float) -> int:
        row = self._run(
            "purge_expired_holds",
            lambda c: c.execute(
                "WITH gone AS (DELETE FROM holds WHERE hold_id IN "
                "(SELECT hold_id FROM holds WHERE expires_at <= %s) RETURNING hold_id) "
                "SELECT COUNT(DISTINCT hold_id) FROM gone",
                (now,),
            ).fetchone(),
        )
        assert row is not None
        return int(row[0])

    # -- history --------------------------------------------------------------------------------
    def records(
        self, since_us: int | None = None, until_us: int | None = None, limit: int | None = None
    ) -> list[StoredRecord]:
        params = (
            since_us if since_us is not None else -(2**62),
            until_us if until_us is not None else 2**62,
            limit,
        )
        rows = self._run(
            "records",
            lambda c: c.execute(
                f"SELECT {SELECT_COLUMNS} FROM records WHERE ts_us >= %s AND ts_us < %s "
                "ORDER BY ts_us, id LIMIT %s",
                params,
            ).fetchall(),
        )
        return [POSTGRES_RECORDS.decode(row) for row in rows]

    def count_records(self) -> int:
        row = self._run(
            "count_records", lambda c: c.execute("SELECT COUNT(*) FROM records").fetchone()
        )
        assert row is not None
        return int(row[0])

    def series(self, scope: str, period: str, since: int, until: int) -> list[tuple[int, int]]:
        rows = self._run(
            "series",
            lambda c: c.execute(
                "SELECT start, SUM(spent - baseline) FROM totals WHERE scope = %s "
                "AND period = %s AND start >= %s AND start < %s GROUP BY start ORDER BY start",
                (scope, period, since, until),
            ).fetchall(),
        )
        return [(int(a), int(b)) for a, b in rows]

    # -- alert outbox ---------------------------------------------------------------------------
    def claim_alert(
        self, dedup_key: str, payload: str, channels: Sequence[str], now: float
    ) -> bool:
        params = {"key": dedup_key, "now": now, "p": payload, "channels": list(channels)}
        row = self._run("claim_alert", lambda c: c.execute(_CLAIM, params).fetchone())
        assert row is not None
        return bool(row[0])

    def lease_deliveries(self, now: float, lease_seconds: float, limit: int) -> list[Delivery]:
        params = {"now": now, "until": now + lease_seconds, "limit": limit}
        rows = self._run("lease_deliveries", lambda c: c.execute(_LEASE, params).fetchall())
        return [_delivery(r[:10]) for r in rows]

    def _store_outcome(self, delivery_id: int, outcome: outbox.Outcome) -> bool:
        params = outcome.params(delivery_id)
        return (
            self._run("finish_delivery", lambda c: c.execute(_STORE_OUTCOME, params).rowcount) > 0
        )

    def deliveries(self, since: float | None = None, limit: int = 100) -> list[Delivery]:
        rows = self._run(
            "deliveries",
            lambda c: c.execute(
                _HISTORY, (since if since is not None else float("-inf"), limit)
            ).fetchall(),
        )
        return [_delivery(r) for r in rows]

    def close(self) -> None:
        """Close this process's pool (idempotent); later calls raise LedgerError."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._pool is not None:
                self._pool.close()
        atexit.unregister(self._atexit)

    def __repr__(self) -> str:
        return f"<PostgresLedger {self._where}>"

    # -- control plane (the logic is SQLControl's, see ledger/control.py) ----------------------
    control_poll_seconds: float = 0.25
    """How stale :meth:`control_version` may be: it asks the server at most this often, so a
    change by another process is seen within this plus one round trip (this process's own
    changes at once). A round trip per admission would cost more than the admission."""
    _control_seen: int = -1
    _control_fresh_until: float = 0.0

    def control_version(self) -> int:
        if time.monotonic() < self._control_fresh_until:
            return self._control_seen
        row = self._run(
            "control_version",
            lambda c: c.execute("SELECT value FROM meta WHERE key = 'control_version'").fetchone(),
        )
        self._note_control_version(int(row[0]) if row else 0)
        return self._control_seen

    def _note_control_version(self, version: int) -> None:
        self._control_seen = max(self._control_seen, version)
        self._control_fresh_until = time.monotonic() + self.control_poll_seconds

    @contextmanager
    def _control_conn(self, what: str) -> Iterator[_Conn]:
        """A pooled connection in one transaction, database failures as ledger errors."""
        if self._closed:
            raise LedgerError("this PostgreSQL ledger is closed; open a new one")
        try:
            with self._current_pool().connection() as conn, conn.transaction():
                yield conn
        except (PoolTimeout, TooManyRequests, psycopg.OperationalError) as exc:
            raise LedgerUnavailableError(
                f"{what} on the PostgreSQL ledger at {self._where} failed: {exc}; nothing "
                "was changed"
            ) from exc
        except PoolClosed as exc:
            raise LedgerError("this PostgreSQL ledger is closed; open a new one") from exc
        except psycopg.Error as exc:
            raise LedgerError(f"{what} on the PostgreSQL ledger failed: {exc}") from exc

    @staticmethod
    def _control_execute(conn: _Conn) -> Execute:
        def execute(query: str, params: Sequence[Any] = ()) -> Any:
            return conn.execute(query.replace("?", "%s"), params)  # type: ignore[call-overload]

        return execute

    @contextmanager
    def _control_write(self) -> Iterator[Execute]:
        # The version row is locked first, so control writes run one at a time and every
        # read inside one (the "expected" key of update_key) sees all earlier ones.
        with self._control_conn("a budget or key change") as conn:
            conn.execute("SELECT value FROM meta WHERE key = 'control_version' FOR UPDATE")
            yield self._control_execute(conn)
        self._control_fresh_until = 0.0  # this process sees its own change at once

    @contextmanager
    def _control_read(self, *, snapshot: bool) -> Iterator[Execute]:
        with self._control_conn("reading budgets or keys") as conn:
            if snapshot:
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            yield self._control_execute(conn)

    def _snapshot_version(self, execute: Execute) -> int:
        row = execute("SELECT value FROM meta WHERE key = 'control_version'").fetchone()
        version = int(row[0]) if row else 0
        self._note_control_version(version)
        return version

    # -- streaming reads and imported bills (see ledger/billing.py) ----------------------------
    def iter_records(
        self, since_us: int | None = None, until_us: int | None = None, batch: int = BATCH
    ) -> Iterator[StoredRecord]:
        query = billing_sql.batch_sql(SELECT_COLUMNS, "%s")

        def read(params: tuple[int, ...]) -> list[tuple[Any, ...]]:
            return self._run("iter_records", lambda c: c.execute(query, params).fetchall())

        return billing_sql.record_batches(read, POSTGRES_RECORDS.decode, since_us, until_us, batch)

    def put_bill_lines(self, lines: Sequence[BillLine]) -> int:
        query = billing_sql.upsert_sql("%s")
        params = [billing_sql.line_params(line) for line in lines]

        def write(c: _Conn) -> None:
            with c.cursor() as cur:
                cur.executemany(query, params)

        if params:
            self._run("put_bill_lines", write)
        return len(params)

    def bill_lines(
        self, since_us: int | None = None, until_us: int | None = None, provider: str | None = None
    ) -> list[BillLine]:
        query = billing_sql.select_sql("%s", provider)
        params = billing_sql.select_params(since_us, until_us, provider)
        rows = self._run("bill_lines", lambda c: c.execute(query, params).fetchall())
        return [billing_sql.line_from_row(row) for row in rows]


def _text_array(values: Iterable[str]) -> str:
    """A PostgreSQL array literal of ``values``, each quoted (``\\`` and ``"`` escaped), so a
    scope such as ``tag:a,b`` or ``user:{x}`` stays one element."""
    quoted = (v.replace("\\", "\\\\").replace('"', '\\"') for v in values)
    return "{" + ",".join(f'"{v}"' for v in quoted) + "}"


def _int_array(values: Iterable[int]) -> str:
    return "{" + ",".join(str(int(v)) for v in values) + "}"


def _bucket_literals(buckets: Sequence[Bucket]) -> tuple[str, ...]:
    return (
        _text_array(b.scope for b in buckets),
        _text_array(b.period for b in buckets),
        _int_array(b.start for b in buckets),
        _int_array(b.end for b in buckets),
    )


def _check_literals(checks: Sequence[LimitCheck]) -> tuple[str, ...]:
    return (*_bucket_literals([c.bucket for c in checks]), _int_array(c.limit for c in checks))


def _delivery(row: Sequence[Any]) -> Delivery:
    return Delivery(*row)


__all__ = ["DEFAULT_SCHEMA", "PostgresLedger"]
