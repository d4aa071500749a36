"""Budget leases (costwarden.ledger.leases) on a real PostgreSQL server.

Local admission is proved local by cutting the network (a relay between the ledger and the
server, as in test_postgres_ledger.py) and by ``admit_inline``, which refuses every server
call; what the server holds is read from its ``holds`` table directly.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from costwarden import Budget, BudgetManager, UsageRecord
from costwarden.errors import (
    BudgetExceededError,
    ConfigurationError,
    LedgerError,
    LedgerUnavailableError,
)
from costwarden.gateway.settings import parse_gateway
from costwarden.ledger import Bucket, LimitCheck, MemoryLedger, NewRecord
from costwarden.ledger.base import HashedTuple, Ledger
from costwarden.ledger.control import ControlPlane
from costwarden.ledger.leases import LeasedLedger, admit_inline
from costwarden.ledger.postgres import PostgresLedger
from costwarden.ledger.side_tables import SideTables
from tests import pg
from tests.test_postgres_ledger import Relay, _via, commit_across_a_lost_reply

pytestmark = pytest.mark.postgres

NOW = 1_800_000_000.0
DAY = Bucket("global", "daily", 1_799_971_200, 1_800_057_600)
USER = Bucket("user:alice", "daily", DAY.start, DAY.end)
CHECKS = HashedTuple([LimitCheck(DAY, 1000), LimitCheck(USER, 500)])
NO_LIMITS = Budget(daily_limit=None, monthly_limit=None, per_request_limit=None)


def _record(cost: int) -> NewRecord:
    return NewRecord(
        int(NOW * 1e6), "m", None, 1, 1, 0, 0, 0, cost, None, None, None, None, None, (), None,
        "ok", False, "caller", None,
    )  # fmt: skip


@pytest.fixture
def url() -> Iterator[str]:
    with pg.temp_schema_url() as u:
        PostgresLedger(u).close()  # migrated here, before any relay's short timeouts
        yield u


@pytest.fixture
def net() -> Iterator[Relay]:
    """A relay between the ledger and the server that a test can cut (a partition)."""
    info = conninfo_to_dict(pg.require_postgres())
    r = Relay(str(info.get("host", "127.0.0.1")), int(str(info.get("port", 5432))))
    yield r
    r.close()


def _server_holds(url: str) -> dict[str, int]:
    """hold id -> amount of every live row on the server (each lease row alike)."""
    schema = url.rsplit("schema=", 1)[1].split("&")[0]
    with psycopg.connect(pg.require_postgres(), autocommit=True) as conn:
        rows = conn.execute(f'SELECT hold_id, amount FROM "{schema}".holds').fetchall()
    return {str(h): int(a) for h, a in rows}


def _leased(url: str, **kw: Any) -> LeasedLedger:
    return LeasedLedger(PostgresLedger(url), **kw)


# -- local admission ---------------------------------------------------------------------------
def test_a_lease_admits_the_next_requests_with_no_server_call(url: str, net: Relay) -> None:
    led = _leased(_via(url, net), chunk=4)
    try:
        assert led.reserve("h1", 100, CHECKS, NOW + 60, NOW) is None  # takes a lease of 400
        [(lease_id, total, outstanding)] = led.leases()
        assert (total, outstanding) == (400, 100)
        assert _server_holds(url) == {lease_id: 400}
        net.cut()  # no server from here on: what follows must be local
        assert led.reserve("h2", 100, CHECKS, NOW + 60, NOW) is None
        assert led.reserve("h3", 150, CHECKS, NOW + 60, NOW) is None
        assert led.check(50, CHECKS, NOW) is None  # can_spend: the lease has room
        assert led.release("h2") is True  # back to the lease, locally
        assert led.leases() == [(lease_id, 400, 250)]
        with pytest.raises(LedgerUnavailableError):  # 250 + 200 > 400: needs the server
            led.reserve("h4", 200, CHECKS, NOW + 60, NOW)
        # an unknown outcome: the lease admits no more (its rows go once its requests settle)
        assert led.leases() == []
        net.heal()
        assert led.release("h3") is True  # a retired lease's share goes back to the server
        # 400 - 150: the free part's give-back was lost with the connection (counted given
        # back here: the safe side); the rows go with the lease's last request
        assert _server_holds(url) == {lease_id: 250}
        assert led.release("h1") is True
        assert _server_holds(url) == {}
    finally:
        net.heal()
        led.close()


def test_admit_inline_admits_from_a_lease_or_gives_up_having_changed_nothing(url: str) -> None:
    led = _leased(url, chunk=3)
    manager = BudgetManager(Budget(daily_limit=1.0, monthly_limit=None), ledger=led)
    try:
        first = admit_inline(led, lambda: manager.reserve(0.10))
        assert first is None  # no lease yet: the caller has to go to the server
        assert led.leases() == [] and _server_holds(url) == {}
        hold = manager.reserve(0.10)  # takes a lease of 0.30
        inline = admit_inline(led, lambda: manager.reserve(0.10))
        assert inline is not None and led.leases()[0][2] == 200_000_000
        assert admit_inline(led, lambda: manager.reserve(0.15)) is None  # 0.05 left: no
        assert led.leases()[0][2] == 200_000_000
        assert admit_inline(MemoryLedger(), lambda: 1) is None  # only a leased ledger
        inline.release()
        hold.release()
    finally:
        manager.close()


def test_the_wrapper_is_the_ledger_for_every_protocol_it_meets(url: str) -> None:
    led = _leased(url)
    try:
        assert isinstance(led, Ledger) and led.remote is True
        assert isinstance(led, ControlPlane) and isinstance(led, SideTables)
        assert led.url == url
        plain = PostgresLedger(url)
        assert led.schema_version == plain.schema_version  # properties too
        plain.close()
    finally:
        led.close()


def test_refill_gives_back_the_free_part_and_takes_a_new_chunk(url: str) -> None:
    led = _leased(url, chunk=2)
    try:
        assert led.reserve("a", 100, CHECKS, NOW + 60, NOW) is None  # lease 200
        assert led.reserve("b", 50, CHECKS, NOW + 60, NOW) is None  # 150 of 200
        [(first, _, _)] = led.leases()
        assert led.reserve("c", 100, CHECKS, NOW + 60, NOW) is None  # 50 free < 100: refill
        [(second, total, outstanding)] = led.leases()
        assert second != first and (total, outstanding) == (200, 100)  # a new chunk of 200
        # the first keeps a's and b's 150 (and its free 50: the new chunk fit without it)
        # until they settle; lowering its rows would have waited for their appends
        assert _server_holds(url) == {first: 200, second: 200}
        led.append(_record(80), [DAY, USER], "a")  # lowers the first lease by a's 100
        assert _server_holds(url) == {first: 100, second: 200}
        led.release("b")  # the first's last request: dropped, free part and all
        assert _server_holds(url) == {second: 200}
        assert led.usage([DAY], NOW)[0].spent == 80
    finally:
        led.close()
    assert _server_holds(url) == {}  # close() gave the lease back


def test_a_lease_must_outlive_the_hold_it_admits(url: str) -> None:
    led = _leased(url, chunk=4, lease_seconds=10)
    checks = [LimitCheck(DAY, 10_000)]
    try:
        assert led.reserve("a", 100, checks, NOW + 60, NOW) is None  # lease lives to NOW+70
        assert led.reserve("b", 100, checks, NOW + 70, NOW) is None  # exactly: admitted
        [(first, _, _)] = led.leases()
        assert led.reserve("c", 100, checks, NOW + 71, NOW) is None  # not covered: refill
        [(second, _, _)] = led.leases()
        assert second != first  # a new lease; the first admits no more
    finally:
        led.close()


def test_an_expired_lease_stops_counting_and_a_new_one_is_taken(url: str) -> None:
    led = _leased(url, chunk=4, lease_seconds=1)
    try:
        assert led.reserve("a", 100, CHECKS, NOW + 2, NOW) is None  # lease to NOW + 3
        [(first, _, _)] = led.leases()
        assert led.usage([DAY], NOW + 1)[0].reserved == 400
        assert led.usage([DAY], NOW + 3)[0].reserved == 0  # expired on the server, as holds do
        assert led.reserve("b", 100, CHECKS, NOW + 10, NOW + 4) is None
        [(second, total, outstanding)] = led.leases()
        assert second != first and (total, outstanding) == (400, 100)  # a's expired
        assert led.usage([DAY], NOW + 4)[0].reserved == 400
    finally:
        led.close()


def test_other_limits_or_windows_supersede_a_lease(url: str) -> None:
    led = _leased(url, chunk=4)
    try:
        assert led.reserve("a", 100, CHECKS, NOW + 60, NOW) is None
        [(first, _, _)] = led.leases()
        lower = [LimitCheck(DAY, 900), LimitCheck(USER, 500)]  # the budget changed
        assert led.reserve("b", 100, lower, NOW + 60, NOW) is None
        [(second, _, _)] = led.leases()
        assert second != first
        # the old lease gave its free 300 back and keeps only a's 100 until a settles
        assert _server_holds(url) == {first: 100, second: 400}
        led.append(_record(100), [DAY, USER], "a")  # its last request: the lease is dropped
        assert _server_holds(url) == {second: 400}  # b's 100 and 300 free
    finally:
        led.close()


# -- exact near the limit ------------------------------------------------------------------------
def test_a_budget_of_exactly_n_calls_admits_exactly_n_across_two_leasing_managers(
    url: str,
) -> None:
    budget = Budget(daily_limit=0.40, monthly_limit=None, per_request_limit=None)
    a = BudgetManager(budget, ledger=_leased(url, chunk=4))
    b = BudgetManager(budget, ledger=_leased(url, chunk=4))
    try:
        admitted, denials = [], []
        open_ = {"a": True, "b": True}
        while any(open_.values()):
            for name, m in (("a", a), ("b", b)):
                if not open_[name]:
                    continue
                try:
                    admitted.append((m, m.reserve(0.01)))
                except BudgetExceededError as exc:
                    denials.append(exc)
                    open_[name] = False
        assert len(admitted) == 40  # $0.40 / $0.01: not one more, not one less
        for exc in denials:  # the server's own figures: nothing of a lease's free part
            assert exc.limit == pytest.approx(0.40)
            assert exc.spent + exc.reserved == pytest.approx(0.40)
        for m, hold in admitted:
            m.commit(hold, UsageRecord("gpt-4o", 1, 1, cost_usd=0.01))
        status = a.get_status()
        assert status["daily_spent"] == pytest.approx(0.40)
        assert status["daily_reserved"] == 0  # every lease drained and dropped
    finally:
        a.close()
        b.close()
    assert _server_holds(url) == {}


def test_a_denial_gives_the_free_part_back(url: str) -> None:
    led = _leased(url, chunk=4)
    try:
        assert led.reserve("a", 300, [LimitCheck(DAY, 1000)], NOW + 60, NOW) is None  # exact:
        assert led.leases() == []  # 1200 does not fit, so a is an exact hold, no lease
        assert led.reserve("b", 100, [LimitCheck(DAY, 1000)], NOW + 60, NOW) is None  # 400
        denial = led.reserve("c", 700, [LimitCheck(DAY, 1000)], NOW + 60, NOW)
        assert denial is not None
        # 300 (a) + 100 (b) held; the lease's free 300 was given back before the check
        assert (denial.spent, denial.reserved, denial.attempted) == (0, 400, 700)
        assert led.usage([DAY], NOW)[0].reserved == 400
    finally:
        led.close()


# -- settlement ----------------------------------------------------------------------------------
def test_a_retried_commit_after_a_lost_reply_is_stored_once(url: str, net: Relay) -> None:
    budget = Budget(daily_limit=1.0, monthly_limit=None, per_request_limit=None)
    led = _leased(_via(url, net), chunk=4)
    manager = BudgetManager(budget, ledger=led)
    try:
        hold = manager.reserve(0.01)
        [(lease_id, _, _)] = led.leases()
        record = UsageRecord("gpt-4o-mini", 100, 20, 0.004)
        stored = commit_across_a_lost_reply(manager, hold, record, net, url)
        assert [r.id for r in manager.records()] == [stored.id]
        assert manager.get_status()["daily_spent"] == pytest.approx(0.004)
        # lowered once: 0.04 - 0.01, what this process counts too
        assert _server_holds(url) == {lease_id: 30_000_000}
        assert led.leases() == [(lease_id, 30_000_000, 0)]
    finally:
        net.heal()
        manager.close()


def test_close_gives_every_lease_back(url: str) -> None:
    led = _leased(url, chunk=8)
    other = [LimitCheck(DAY, 1000), LimitCheck(Bucket("user:bob", "daily", DAY.start, DAY.end), 90)]
    assert led.reserve("a", 10, CHECKS, NOW + 60, NOW) is None
    assert led.reserve("b", 10, other, NOW + 60, NOW) is None
    assert len(_server_holds(url)) == 2
    led.close()
    led.close()  # idempotent
    assert _server_holds(url) == {}
    with pytest.raises(LedgerError, match="closed"):
        led.reserve("c", 10, CHECKS, NOW + 60, NOW)


def test_an_idle_lease_is_retired_by_the_sweep(url: str) -> None:
    led = _leased(url, chunk=8, idle_seconds=0.2)
    try:
        assert led.reserve("a", 10, CHECKS, NOW + 60, NOW) is None
        assert led.reserve("b", 10, CHECKS, NOW + 60, NOW) is None
        led.release("b")
        deadline = time.monotonic() + 5
        while led.leases():
            assert time.monotonic() < deadline, "the idle lease was never retired"
            time.sleep(0.05)
        [(lease_id, amount)] = _server_holds(url).items()
        assert amount == 10  # the free part is back; a's share stays until a settles
        led.append(_record(10), [DAY, USER], "a")
        assert _server_holds(url) == {}
        assert lease_id.startswith("L")
    finally:
        led.close()


def test_a_forked_child_starts_with_no_lease_of_its_parent(url: str) -> None:
    led = _leased(url, chunk=8)
    try:
        assert led.reserve("a", 10, CHECKS, NOW + 60, NOW) is None
        led._after_fork_in_child()  # what forksafe runs in a child (tests never fork pytest)
        assert led.leases() == []
        assert led.release("a") is False  # the parent's request is not the child's to settle
    finally:
        led.close()


# -- bad input -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"chunk": 0}, "chunk"),
        ({"chunk": 2.5}, "chunk"),
        ({"chunk": True}, "chunk"),
        ({"lease_seconds": -1}, "lease_seconds"),
        ({"idle_seconds": float("nan")}, "idle_seconds"),
    ],
)
def test_bad_lease_settings_are_refused_and_change_nothing(
    url: str, kwargs: dict[str, Any], match: str
) -> None:
    inner = PostgresLedger(url)
    try:
        with pytest.raises(ConfigurationError, match=match):
            LeasedLedger(inner, **kwargs)
        assert inner.reserve("h", 1, CHECKS, NOW + 60, NOW) is None  # still open, untouched
    finally:
        inner.close()


def test_a_ledger_without_leases_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="PostgreSQL"):
        LeasedLedger(MemoryLedger())


@pytest.mark.parametrize(
    ("table", "match"),
    [
        ({"leases": "yes"}, "leases must be true or false"),
        ({"lease_chunk": 0}, "lease_chunk must be at least 1"),
        ({"lease_chunk": 1.5}, "lease_chunk must be a whole number"),
        ({"lease_chunk": 5000}, "lease_chunk must be at most 1000"),
        ({"lease_chunks": 4}, "unknown key"),
    ],
)
def test_bad_gateway_lease_settings_name_the_key(table: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        parse_gateway(table)


def test_gateway_lease_settings_default_and_parse() -> None:
    assert (parse_gateway({}).leases, parse_gateway({}).lease_chunk) == (True, 16)
    parsed = parse_gateway({"leases": False, "lease_chunk": 4})
    assert (parsed.leases, parsed.lease_chunk) == (False, 4)


def test_the_gateway_manager_leases_on_postgres_only(url: str, tmp_path: Any) -> None:
    from costwarden.config import Config
    from costwarden.gateway.server import build_manager

    for ledger, settings, leased in (
        (url, parse_gateway({}), True),
        (url, parse_gateway({"leases": False}), False),
        (f"sqlite:///{tmp_path / 'x.db'}", parse_gateway({}), False),
    ):
        manager = build_manager(Config(ledger=ledger), settings)
        try:
            assert isinstance(manager.ledger, LeasedLedger) is leased
            if leased:
                assert manager.ledger.chunk == settings.lease_chunk  # type: ignore[attr-defined]
        finally:
            manager.close()
