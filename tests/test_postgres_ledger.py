"""What only the PostgreSQL ledger has: URLs and pools, timeouts, outages, migrations.

Semantics shared with the other backends are in ``test_ledger_conformance.py``. Outages are
made real with a local TCP relay between the ledger and the server that the test can cut.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from costwarden.budget import Budget
from costwarden.errors import (
    ConfigurationError,
    InvalidInputError,
    LedgerError,
    LedgerUnavailableError,
)
from costwarden.hold import Hold
from costwarden.ledger import Bucket, BucketUsage, LimitCheck, NewRecord, open_ledger
from costwarden.ledger.base import HashedTuple
from costwarden.ledger.postgres import PostgresLedger
from costwarden.ledger.schema_postgres import MIGRATIONS
from costwarden.manager import BudgetManager
from costwarden.records import StoredRecord, UsageRecord
from tests import pg
from tests.procs import Child

NOW = 1_800_000_000.0
NOW_US = int(NOW * 1_000_000)
DAY = Bucket("global", "daily", 1_799_971_200, 1_800_057_600)
MONTH = Bucket("global", "monthly", 1_798_761_600, 1_801_353_600)


def _record(cost: int, metadata: dict[str, Any] | None = None) -> NewRecord:
    return NewRecord(
        NOW_US, "m", None, 1, 1, 0, 0, 0, cost, None, None, None, None, None, (), None,
        "ok", False, "caller", metadata,
    )  # fmt: skip


# -- configuration (no server needed) ------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("mysql://x/y", "not a PostgreSQL URL"),
        ("postgresql://u@127.0.0.1:1/db?schema=Bad-Name", "schema"),
        ("postgresql://u@127.0.0.1:1/db?schema=x;drop", "schema"),
        ("postgresql://u@127.0.0.1:1/db?pool_min=5&pool_max=2", "pool_max"),
        ("postgresql://u@127.0.0.1:1/db?statement_timeout=soon", "statement_timeout"),
        ("postgresql://u@127.0.0.1:1/db?pool_timeout=-1", "pool_timeout"),
        ("postgresql://u@127.0.0.1:1/db?pool_max=0", "pool_max"),
        ("postgresql://u@127.0.0.1:1/db?synchronous_holds=maybe", "synchronous_holds"),
    ],
)
def test_bad_configuration_is_refused_before_connecting(url: str, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        PostgresLedger(url)


def test_a_refused_connection_is_unavailable_not_a_crash() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(LedgerUnavailableError, match="cannot connect"):
        open_ledger(f"postgresql://root@127.0.0.1:{port}/test?connect_timeout=1")
    assert time.monotonic() - started < 5


def test_a_silent_server_times_out_on_connect() -> None:
    """A host that accepts TCP but never answers: connect_timeout bounds the wait."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel completes handshakes; nobody ever speaks
        port = silent.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(LedgerUnavailableError):
            PostgresLedger(f"postgresql://root@127.0.0.1:{port}/test", connect_timeout=1)
        assert time.monotonic() - started < 6


# -- a real server ----------------------------------------------------------------------------
@pytest.fixture
def server() -> str:
    return pg.require_postgres()


@pytest.fixture
def url(server: str) -> Iterator[str]:
    with pg.temp_schema_url(server) as u:
        yield u


needs_pg = pytest.mark.postgres


@needs_pg
def test_url_variants_and_schema_creation(server: str) -> None:
    schema = pg.new_schema_name()
    try:
        for scheme in ("postgresql://", "postgres://", "postgresql+psycopg://"):
            variant = pg.with_schema(scheme + server.split("://", 1)[1], schema)
            led = open_ledger(variant)
            assert isinstance(led, PostgresLedger) and led.schema == schema
            led.close()
        with psycopg.connect(server) as conn:
            tables = {
                r[0]
                for r in conn.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                    (schema,),
                )
            }
        assert {"records", "totals", "holds", "events", "deliveries", "meta"} <= tables
    finally:
        pg.drop_schema(server, schema)


@needs_pg
def test_schemas_isolate_ledgers(server: str) -> None:
    with pg.temp_schema_url(server) as a_url, pg.temp_schema_url(server) as b_url:
        a, b = open_ledger(a_url), open_ledger(b_url)
        try:
            assert a.reserve("h", 100, [LimitCheck(DAY, 100)], NOW + 60, NOW) is None
            assert b.reserve("h", 100, [LimitCheck(DAY, 100)], NOW + 60, NOW) is None
            assert b.usage([DAY], NOW)[0].reserved == 100
        finally:
            a.close()
            b.close()


@needs_pg
def test_concurrent_first_starts_migrate_once(server: str) -> None:
    schema = pg.new_schema_name()
    target = pg.with_schema(server, schema)
    barrier = threading.Barrier(6)
    opened: list[PostgresLedger] = []
    errors: list[BaseException] = []

    def start() -> None:
        barrier.wait()
        try:
            opened.append(PostgresLedger(target))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(6)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert [led.schema_version for led in opened] == [len(MIGRATIONS)] * 6
        with psycopg.connect(server) as conn:
            rows = conn.execute(f"SELECT key, value FROM {schema}.meta ORDER BY key").fetchall()
        assert rows == [("control_version", "0"), ("schema_version", str(len(MIGRATIONS)))]
    finally:
        for led in opened:
            led.close()
        pg.drop_schema(server, schema)


@needs_pg
def test_a_version_2_schema_upgrades_and_keeps_its_records(server: str, url: str) -> None:
    """Migration 3 (cw_append takes the metadata) applies over data written by version 2."""
    schema = url.rsplit("schema=", 1)[1]
    with psycopg.connect(server, autocommit=True) as conn, conn.transaction():
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(f'SET LOCAL search_path = "{schema}"')
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        for statement in [s for script in MIGRATIONS[:2] for s in script]:
            conn.execute(statement)
        conn.execute("INSERT INTO meta VALUES ('schema_version', '2')")
        conn.execute(
            "INSERT INTO records (ts_us, model, input_tokens, output_tokens, cost_nanos) "
            "VALUES (%s, 'gpt-4o', 1, 1, 7)",
            (NOW_US,),
        )
    led = PostgresLedger(url)
    try:
        assert led.schema_version == len(MIGRATIONS) >= 3
        stored, _ = led.append(_record(5, metadata={"task": "chat"}), [DAY])
        assert [(r.cost_nanos, r.metadata) for r in led.records()] == [
            (7, None),
            (5, {"task": "chat"}),
        ]
        assert stored.metadata == {"task": "chat"}
        with psycopg.connect(server) as conn:
            configs = conn.execute(
                "SELECT p.proname, p.pronargs, p.proconfig FROM pg_proc p "
                "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = %s "
                "ORDER BY 1, 2",
                (schema,),
            ).fetchall()
        generic = ["plan_cache_mode=force_generic_plan"]
        assert configs == [
            ("cw_append", 28, None),  # version 2's overload, no longer called
            ("cw_append", 29, generic),
            ("cw_append_leased", 32, generic),  # migration 9: budget leases
            ("cw_first_denial", 7, generic),
            ("cw_lease", 15, generic),
            ("cw_lease_return", 3, generic),
            ("cw_reserve", 9, generic),
        ]
    finally:
        led.close()


@needs_pg
def test_a_too_old_server_is_refused_before_anything_is_created(
    server: str, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Below the minimum version the ledger says so; it creates no schema it cannot finish."""
    from costwarden.ledger import postgres

    with psycopg.connect(server) as conn:
        running = conn.info.server_version
    monkeypatch.setattr(postgres, "MIN_SERVER_VERSION", running + 1)
    with pytest.raises(ConfigurationError, match="needs PostgreSQL 12 or newer"):
        PostgresLedger(url)
    schema = url.rsplit("schema=", 1)[1]
    with psycopg.connect(server) as conn:
        found = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,))
        assert found.fetchone() is None


@needs_pg
def test_a_newer_schema_is_refused(server: str, url: str) -> None:
    open_ledger(url).close()
    schema = url.rsplit("schema=", 1)[1]
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"UPDATE {schema}.meta SET value = '999' WHERE key = 'schema_version'")
    with pytest.raises(LedgerError, match="upgrade costwarden"):
        open_ledger(url)


@needs_pg
def test_statement_timeout_turns_a_stuck_call_into_unavailable(server: str, url: str) -> None:
    led = PostgresLedger(url, statement_timeout=0.3)
    schema = led.schema
    try:
        with psycopg.connect(server) as blocker:  # holds a lock the reservation needs
            blocker.execute(f"LOCK TABLE {schema}.holds IN ACCESS EXCLUSIVE MODE")
            started = time.monotonic()
            with pytest.raises(LedgerUnavailableError, match="statement_timeout"):
                led.reserve("h", 10, [LimitCheck(DAY, 100)], NOW + 60, NOW)
            assert time.monotonic() - started < 3
            blocker.rollback()
        assert led.usage([DAY], NOW)[0].reserved == 0  # the timed-out call left nothing
        assert led.reserve("h", 10, [LimitCheck(DAY, 100)], NOW + 60, NOW) is None
    finally:
        led.close()


@needs_pg
def test_pool_bounds_connections_and_serves_many_threads(server: str, url: str) -> None:
    app = "cw_pool_" + url.rsplit("schema=", 1)[1]
    led = open_ledger(f"{url}&pool_min=1&pool_max=2&application_name={app}")
    peak = 0
    stop = threading.Event()

    def watch() -> None:
        nonlocal peak
        with psycopg.connect(server, autocommit=True) as conn:
            while not stop.is_set():
                row = conn.execute(
                    "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = %s", (app,)
                ).fetchone()
                peak = max(peak, row[0] if row else 0)
                time.sleep(0.005)

    def work(i: int) -> None:
        for j in range(20):
            led.reserve(f"{i}-{j}", 1, [LimitCheck(DAY, 10**9)], NOW + 60, NOW)

    watcher = threading.Thread(target=watch)
    watcher.start()
    workers = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    stop.set()
    watcher.join()
    try:
        assert led.usage([DAY], NOW)[0].reserved == 160
        assert 1 <= peak <= 2
    finally:
        led.close()


@needs_pg
def test_opposite_bucket_orders_do_not_deadlock(url: str) -> None:
    """Locks are taken in key order, whatever order the checks come in."""
    led = open_ledger(url)
    errors: list[BaseException] = []

    def work(i: int) -> None:
        checks = [LimitCheck(DAY, 10**9), LimitCheck(MONTH, 10**9)]
        if i % 2:
            checks.reverse()
        try:
            for j in range(30):
                led.reserve(f"{i}-{j}", 1, checks, NOW + 60, NOW)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        assert [u.reserved for u in led.usage([DAY, MONTH], NOW)] == [240, 240]
    finally:
        led.close()


@needs_pg
def test_totals_add_up_across_connections(url: str) -> None:
    """A bucket's total may be spread over shard rows (one per connection slot): every read,
    reset and series must see their sum."""
    handles = [open_ledger(f"{url}&pool_min=1&pool_max=1") for _ in range(6)]
    rec = _record
    try:
        for i, led in enumerate(handles):
            led.append(rec(i + 1), [DAY])
            led.append(rec(10), [DAY])
        first = handles[0]
        assert first.usage([DAY], NOW)[0] == BucketUsage(81, 0, 12, 0)
        assert first.check(19, [LimitCheck(DAY, 100)], NOW) is None
        assert first.check(20, [LimitCheck(DAY, 100)], NOW) is not None
        assert handles[3].reset(DAY, NOW) == 81
        _, watched = handles[5].append(rec(4), [DAY], watch=[DAY])
        assert watched == [BucketUsage(4, 0, 13, 81)]
        assert first.series("global", "daily", 0, 2**40) == [(DAY.start, 4)]
    finally:
        for led in handles:
            led.close()


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("synchronus_holds=on", ["synchronus_holds", "did you mean costwarden's 'synchronous_"]),
        ("pool_mx=3", ["pool_mx", "did you mean costwarden's 'pool_max'"]),
        ("frobnicate=1", ["frobnicate", "costwarden's own options are schema", "libpq"]),
    ],
)
def test_a_misspelt_option_is_refused_with_the_near_name(query: str, words: list[str]) -> None:
    """libpq refuses parameters it does not know; costwarden adds which of its own is meant
    (libpq's own parameters, such as sslmode, still pass through)."""
    with pytest.raises(ConfigurationError) as caught:
        PostgresLedger(f"postgresql://nobody@127.0.0.1:1/x?{query}")
    for word in words:
        assert word in str(caught.value)


@needs_pg
def test_synchronous_holds_option(url: str) -> None:
    led = open_ledger(f"{url}&synchronous_holds=on")
    try:
        assert led.reserve("h", 5, [LimitCheck(DAY, 5)], NOW + 60, NOW) is None
        assert led.release("h") is True
    finally:
        led.close()


@needs_pg
def test_closed_ledger_says_so(url: str) -> None:
    led = open_ledger(url)
    led.close()
    led.close()  # idempotent
    with pytest.raises(LedgerError, match="closed"):
        led.count_records()


@needs_pg
def test_a_name_beyond_the_index_key_limit_is_refused_before_the_call(url: str) -> None:
    """A 3 kB user id once passed ``reserve`` and then failed ``commit`` ("index row size
    exceeds btree maximum"): the provider had been paid and the record was lost. It is
    refused at the edge now, before any hold reaches the server."""
    m = BudgetManager(Budget(daily_limit=10.0), ledger=url)
    try:
        with pytest.raises(InvalidInputError, match="at most 512 characters"):
            m.reserve(0.01, user="u" * 3000)
        with pytest.raises(InvalidInputError, match="user_id"):
            UsageRecord("gpt-4o", 10, 5, cost_usd=0.01, user_id="u" * 3000)
        assert m.get_status()["daily_reserved"] == 0  # the global budget holds nothing
        assert m.ledger.count_records() == 0
    finally:
        m.close()


@needs_pg
def test_literals_are_remembered_by_value_per_kind(url: str) -> None:
    """Equal check or bucket sequences share one memo entry whatever object carries them;
    checks and buckets never share one (an empty tuple is both)."""
    led = PostgresLedger(url)
    try:
        checks = (LimitCheck(DAY, 100),)
        assert led.reserve("a", 1, HashedTuple(checks), NOW + 60, NOW) is None
        assert led.reserve("b", 1, tuple(checks), NOW + 60, NOW) is None
        assert led.reserve("c", 1, list(checks), NOW + 60, NOW) is None  # unhashable: built
        assert list(led._check_literals) == [checks]
        led.append(_record(1), (DAY,), watch=())
        led.append(_record(1), HashedTuple((DAY,)), watch=HashedTuple())
        assert set(led._bucket_literals) == {(DAY,), ()}
        assert led.check(1, (), NOW) is None
        assert set(led._check_literals) == {checks, ()}
        assert led.usage([DAY], NOW)[0] == BucketUsage(2, 3, 2, 0)
    finally:
        led.close()


@needs_pg
def test_a_forked_child_opens_its_own_connections(url: str) -> None:
    """The fork happens in a driver process (tests/procs.py ``pg-fork``), never in pytest's."""
    out = Child("pg-fork", url).result(timeout=60)
    assert out == {"child": 0, "reserved": 10}  # the child's hold too; the parent still works


# -- outages through a relay the test can cut ------------------------------------------------------
class Relay:
    """A TCP relay from a local port to the PostgreSQL server; ``cut()`` drops everything."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.open = True
        self.swallow_replies = False
        """While set, what the server sends is read and dropped (a reply lost on the way)."""
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.open:
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            for a, b, replies in ((client, upstream, False), (upstream, client, True)):
                threading.Thread(target=self._pump, args=(a, b, replies), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, replies: bool) -> None:
        try:
            while data := src.recv(65536):
                if not (replies and self.swallow_replies):
                    dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Refuse new connections and break every open one (a network partition)."""
        self.open = False
        for s in self.sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        self.sockets.clear()

    def heal(self) -> None:
        self.open = True

    def close(self) -> None:
        self.cut()
        self.listener.close()


@pytest.fixture
def relay(server: str) -> Iterator[Relay]:
    info = conninfo_to_dict(server)
    r = Relay(str(info.get("host", "127.0.0.1")), int(str(info.get("port", 5432))))
    yield r
    r.close()


def _via(url: str, relay: Relay) -> str:
    scheme, rest = url.split("://", 1)
    userinfo, _, hostpart = rest.rpartition("@")
    path = hostpart.split("/", 1)[1]
    prefix = f"{userinfo}@" if userinfo else ""
    return f"{scheme}://{prefix}127.0.0.1:{relay.port}/{path}&connect_timeout=1&pool_timeout=1"


@needs_pg
def test_outage_fails_closed_by_default_and_recovers(url: str, relay: Relay) -> None:
    budget = Budget(daily_limit=1.0, monthly_limit=None, per_request_limit=None)
    manager = BudgetManager(budget, ledger=_via(url, relay))
    try:
        manager.reserve(0.25).release()
        relay.cut()
        started = time.monotonic()
        with pytest.raises(LedgerUnavailableError):
            manager.reserve(0.25)
        with pytest.raises(LedgerUnavailableError):
            manager.can_spend(0.25)
        assert time.monotonic() - started < 10  # bounded by the timeouts, never a hang
        relay.heal()
        deadline = time.monotonic() + 10
        while True:  # the pool reconnects on its own once the server is reachable again
            try:
                hold = manager.reserve(0.25)
                break
            except LedgerUnavailableError:
                assert time.monotonic() < deadline, "the ledger never came back"
                time.sleep(0.1)
        hold.release()
        assert manager.get_status()["daily_reserved"] == 0
    finally:
        manager.close()


@needs_pg
def test_outage_admits_unchecked_with_fail_open(url: str, relay: Relay) -> None:
    budget = Budget(daily_limit=1.0, monthly_limit=None, per_request_limit=None)
    manager = BudgetManager(budget, ledger=_via(url, relay), fail_open=True)
    try:
        relay.cut()
        hold = manager.reserve(0.5)
        assert hold.unchecked
        assert manager.can_spend(0.5)
        hold.release()  # nothing was held, nothing to drop: no ledger call, no error
    finally:
        manager.close()


@needs_pg
def test_an_append_naming_a_settled_hold_stores_nothing_more(url: str) -> None:
    """The ledger's side of a retried commit: the same hold's record appended twice is one
    record, counted once in the totals, and the second append answers the first's id."""
    led = PostgresLedger(url)
    try:
        assert led.reserve("h-once", 50, [LimitCheck(DAY, 1000)], NOW + 60, NOW) is None
        first, _ = led.append(_record(40), [DAY], hold_id="h-once")
        again, watched = led.append(_record(40), [DAY], hold_id="h-once", watch=[DAY])
        assert again.id == first.id
        assert watched == [BucketUsage(40, 0, 1, 0)]
        assert led.usage([DAY], NOW) == [BucketUsage(40, 0, 1, 0)]
        assert len(led.records(None, None)) == 1
        other, _ = led.append(_record(7), [DAY])  # no hold: every append is a record
        again_other, _ = led.append(_record(7), [DAY])
        assert other.id != again_other.id
        assert led.usage([DAY], NOW)[0].spent == 54
    finally:
        led.close()


def commit_across_a_lost_reply(
    manager: BudgetManager, hold: Hold, record: UsageRecord, relay: Relay, url: str
) -> StoredRecord:
    """Commit ``hold`` while ``relay`` swallows the replies: wait until the server has stored
    the record, cut the connection (the commit must raise LedgerUnavailableError and leave the
    hold unsettled), heal, and commit the same hold again until the ledger answers."""
    relay.swallow_replies = True
    failed: list[BaseException] = []

    def commit() -> None:
        try:
            manager.commit(hold, record)
        except BaseException as exc:
            failed.append(exc)

    worker = threading.Thread(target=commit)
    worker.start()
    with psycopg.connect(pg.require_postgres(), autocommit=True) as direct:
        schema = url.rsplit("schema=", 1)[1].split("&")[0]
        deadline = time.monotonic() + 10
        while not direct.execute(f'SELECT count(*) FROM "{schema}".records').fetchone()[0]:
            assert time.monotonic() < deadline, "the append never reached the server"
            time.sleep(0.02)
    relay.cut()  # the server has committed; the client is still waiting for its reply
    worker.join(30)
    assert failed and isinstance(failed[0], LedgerUnavailableError)
    assert not hold.settled
    relay.swallow_replies = False
    relay.heal()
    deadline = time.monotonic() + 10
    while True:
        try:
            return manager.commit(hold, record)
        except LedgerUnavailableError:
            assert time.monotonic() < deadline, "the ledger never came back"
            time.sleep(0.1)


@needs_pg
def test_a_commit_whose_reply_was_lost_is_stored_once_when_retried(url: str, relay: Relay) -> None:
    """The server commits the record, its reply never arrives (the connection is cut while the
    client waits for it): commit() raises LedgerUnavailableError, and committing the same hold
    again once the server is back stores nothing more and returns the record."""
    PostgresLedger(url).close()  # migrated through the direct URL, before the relay's timeouts
    budget = Budget(daily_limit=1.0, monthly_limit=None, per_request_limit=None)
    manager = BudgetManager(budget, ledger=_via(url, relay))
    try:
        hold = manager.reserve(0.01)
        record = UsageRecord("gpt-4o-mini", 100, 20, 0.004)
        stored = commit_across_a_lost_reply(manager, hold, record, relay, url)
        assert len(manager.records()) == 1
        assert stored.id == manager.records()[0].id
        assert manager.get_status()["daily_spent"] == pytest.approx(0.004)
        assert manager.get_status()["daily_reserved"] == 0
    finally:
        manager.close()
