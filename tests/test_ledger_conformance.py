"""One suite of Ledger semantics, run against every backend: memory, SQLite and PostgreSQL.

Each test states a rule from ``costwarden.ledger.base`` (inclusive limits, first denial, hold
expiry, idempotent release, resets, rolling windows, the alert outbox...) and checks it through
the Protocol only, so a backend that differs from the others fails here. A hypothesis test at
the end drives random operation sequences through a backend and the in-memory reference at
once and demands identical answers.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from costwarden import AlertLevel, Budget, BudgetManager, UsageRecord
from costwarden.bounds import MAX_NAME_LENGTH
from costwarden.clients import TrackedLLMClient
from costwarden.config import load_config
from costwarden.errors import InvalidInputError, LedgerError
from costwarden.ledger import (
    Bucket,
    BucketUsage,
    Ledger,
    LimitCheck,
    MemoryLedger,
    NewRecord,
    SQLiteLedger,
    open_ledger,
)
from costwarden.ledger.base import HashedTuple, missing_members
from costwarden.ledger.inspect import InspectableLedger
from costwarden.records import Usage
from tests import pg

NOW = 1_800_000_000.0
DAY = Bucket("global", "daily", 1_799_971_200, 1_800_057_600)
MONTH = Bucket("global", "monthly", 1_798_761_600, 1_801_353_600)
USER_DAY = Bucket("user:alice", "daily", DAY.start, DAY.end)


@dataclass
class Backend:
    """A backend under test: its name, its URL and how to open another handle on it."""

    name: str
    url: str
    ledger: Ledger
    reopen: Callable[[], Ledger] | None
    opened: list[Ledger]

    def another(self) -> Ledger:
        """A second handle on the same store (as another process would have)."""
        if self.reopen is None:
            pytest.skip(f"{self.name} ledger lives in one object; no second handle")
        handle = self.reopen()
        self.opened.append(handle)
        return handle


@pytest.fixture(
    params=[
        "memory",
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("leased", marks=pytest.mark.postgres),
    ]
)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    opened: list[Ledger] = []
    if request.param == "memory":
        mem = MemoryLedger()
        yield Backend("memory", "memory://", mem, None, opened)
        mem.close()
        return
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ledger.db'}"
        b = Backend("sqlite", url, open_ledger(url), lambda: open_ledger(url), opened)
        yield b
        for handle in [b.ledger, *opened]:
            handle.close()
        return
    # PostgreSQL, plain or behind budget leases (ledger/leases.py)
    make = _leased if request.param == "leased" else open_ledger
    with pg.temp_schema_url() as url:
        b = Backend(request.param, url, make(url), lambda: make(url), opened)
        try:
            yield b
        finally:
            for handle in [b.ledger, *opened]:
                handle.close()


def _not_leased(ledger: Ledger, why: str) -> None:
    """Skip a rule that budget leases change on purpose (docs/storage.md, "Budget leases")."""
    if type(ledger).__name__ == "LeasedLedger":
        pytest.skip(f"a leased ledger differs here by design: {why}")


def _leased(url: str) -> Ledger:
    from costwarden.ledger.leases import LeasedLedger

    return LeasedLedger(open_ledger(url))


@pytest.fixture
def ledger(backend: Backend) -> Ledger:
    return backend.ledger


_ids = itertools.count(1)


def rec(
    cost: int, ts_us: int = int(NOW * 1e6), *, model: str = "gpt-4o", **fields: object
) -> NewRecord:
    base: dict[str, object] = {
        "ts_us": ts_us,
        "model": model,
        "provider": None,
        "input_tokens": 10,
        "output_tokens": 5,
        "cache_read_tokens": 0,
        "cache_write_tokens": 0,
        "reasoning_tokens": 0,
        "cost_nanos": cost,
        "user_id": None,
        "team": None,
        "key": None,
        "endpoint": None,
        "request_id": f"req-{next(_ids)}",
        "tags": (),
        "latency_ms": None,
        "status": "ok",
        "estimated": False,
        "price_source": "caller",
    }
    base.update(fields)
    return NewRecord(**base)  # type: ignore[arg-type]


def usage1(ledger: Ledger, bucket: Bucket, now: float = NOW) -> BucketUsage:
    return ledger.usage([bucket], now)[0]


# -- admission ----------------------------------------------------------------------------------
def test_limit_is_inclusive(ledger: Ledger) -> None:
    check = [LimitCheck(DAY, 100)]
    assert ledger.reserve("a", 40, check, NOW + 60, NOW) is None
    assert ledger.reserve("b", 60, check, NOW + 60, NOW) is None  # 40 + 60 == 100: admitted
    denial = ledger.reserve("c", 1, check, NOW + 60, NOW)
    assert denial is not None
    assert (denial.spent, denial.reserved, denial.attempted) == (0, 100, 1)
    assert denial.check == check[0]
    assert usage1(ledger, DAY).reserved == 100


def test_spent_counts_against_the_limit(ledger: Ledger) -> None:
    ledger.append(rec(70), [DAY])
    check = [LimitCheck(DAY, 100)]
    denial = ledger.reserve("x", 31, check, NOW + 60, NOW)
    assert denial is not None and (denial.spent, denial.reserved) == (70, 0)
    assert ledger.reserve("y", 30, check, NOW + 60, NOW) is None


def test_first_denial_is_reported_and_nothing_is_held(ledger: Ledger) -> None:
    checks = [LimitCheck(MONTH, 1000), LimitCheck(USER_DAY, 10), LimitCheck(DAY, 5)]
    denial = ledger.reserve("h", 20, checks, NOW + 60, NOW)
    assert denial is not None
    assert denial.check == checks[1]  # the first that does not fit, not the tightest
    assert [u.reserved for u in ledger.usage([MONTH, USER_DAY, DAY], NOW)] == [0, 0, 0]
    assert not ledger.hold_exists("h", NOW)
    assert ledger.release("h") is False


def test_a_hold_is_filed_on_every_checked_bucket(ledger: Ledger) -> None:
    checks = [LimitCheck(DAY, 100), LimitCheck(USER_DAY, 100), LimitCheck(MONTH, 100)]
    assert ledger.reserve("h", 25, checks, NOW + 60, NOW) is None
    assert [u.reserved for u in ledger.usage([DAY, USER_DAY, MONTH], NOW)] == [25, 25, 25]
    assert ledger.hold_exists("h", NOW)


def test_zero_limit_admits_only_zero(ledger: Ledger) -> None:
    check = [LimitCheck(DAY, 0)]
    assert ledger.reserve("z", 0, check, NOW + 60, NOW) is None
    assert ledger.reserve("one", 1, check, NOW + 60, NOW) is not None


def test_reserve_without_checks_admits(ledger: Ledger) -> None:
    assert ledger.reserve("free", 10**12, [], NOW + 60, NOW) is None
    assert ledger.check(10**12, [], NOW) is None


def test_check_answers_like_reserve_but_holds_nothing(ledger: Ledger) -> None:
    ledger.append(rec(50), [DAY])
    check = [LimitCheck(DAY, 100)]
    assert ledger.check(50, check, NOW) is None
    denial = ledger.check(51, check, NOW)
    assert denial is not None and (denial.spent, denial.reserved, denial.attempted) == (50, 0, 51)
    assert usage1(ledger, DAY).reserved == 0
    assert ledger.reserve("h", 50, check, NOW + 60, NOW) is None
    assert ledger.check(1, check, NOW) is not None


def test_duplicate_hold_id_is_an_error_and_changes_nothing(ledger: Ledger) -> None:
    check = [LimitCheck(DAY, 100)]
    assert ledger.reserve("same", 10, check, NOW + 60, NOW) is None
    with pytest.raises(LedgerError, match="already exists"):
        ledger.reserve("same", 20, check, NOW + 60, NOW)
    assert usage1(ledger, DAY).reserved == 10


def test_huge_amounts_do_not_overflow(ledger: Ledger) -> None:
    big = 2**62
    check = [LimitCheck(DAY, 2**63 - 1)]
    assert ledger.reserve("a", big, check, NOW + 60, NOW) is None
    denial = ledger.reserve("b", big, check, NOW + 60, NOW)
    assert denial is not None and denial.reserved == big


# -- holds --------------------------------------------------------------------------------------
def test_holds_count_only_while_unexpired(ledger: Ledger) -> None:
    check = [LimitCheck(DAY, 100)]
    assert ledger.reserve("h", 100, check, NOW + 10, NOW) is None
    assert ledger.hold_exists("h", NOW + 9.999)
    assert usage1(ledger, DAY, NOW + 9.999).reserved == 100
    assert ledger.check(1, check, NOW + 9.999) is not None
    # at expires_at the hold no longer counts (expires_at > now is the rule)
    assert not ledger.hold_exists("h", NOW + 10)
    assert usage1(ledger, DAY, NOW + 10).reserved == 0
    assert ledger.reserve("h2", 100, check, NOW + 20, NOW + 10) is None


def test_release_is_idempotent(ledger: Ledger) -> None:
    check = [LimitCheck(DAY, 100), LimitCheck(MONTH, 100)]
    assert ledger.reserve("h", 70, check, NOW + 60, NOW) is None
    assert ledger.release("h") is True
    assert ledger.release("h") is False
    assert ledger.release("never-made") is False
    assert [u.reserved for u in ledger.usage([DAY, MONTH], NOW)] == [0, 0]
    assert ledger.reserve("h3", 100, check, NOW + 60, NOW) is None


def test_purge_removes_only_expired_holds(ledger: Ledger) -> None:
    _not_leased(ledger, "a lease's free part counts as reserved")
    check = [LimitCheck(DAY, 1000), LimitCheck(MONTH, 1000)]
    ledger.reserve("old1", 1, check, NOW + 5, NOW)
    ledger.reserve("old2", 1, check, NOW + 6, NOW)
    ledger.reserve("live", 1, check, NOW + 100, NOW)
    assert ledger.purge_expired_holds(NOW + 6) == 2  # distinct holds, not rows
    assert ledger.release("old1") is False
    assert ledger.hold_exists("live", NOW + 6)
    assert ledger.purge_expired_holds(NOW + 6) == 0
    assert usage1(ledger, DAY, NOW).reserved == 1


# -- append -------------------------------------------------------------------------------------
def test_append_adds_cost_and_drops_the_hold(ledger: Ledger) -> None:
    checks = [LimitCheck(DAY, 100), LimitCheck(USER_DAY, 100)]
    assert ledger.reserve("h", 50, checks, NOW + 60, NOW) is None
    stored, watched = ledger.append(rec(30, user_id="alice"), [DAY, USER_DAY, MONTH], "h")
    assert watched == []
    assert stored.cost_nanos == 30 and stored.user_id == "alice"
    assert ledger.usage([DAY, USER_DAY, MONTH], NOW) == [
        BucketUsage(30, 0, 1),
        BucketUsage(30, 0, 1),
        BucketUsage(30, 0, 1),
    ]
    assert ledger.release("h") is False
    assert not ledger.hold_exists("h", NOW)


def test_append_may_exceed_the_hold_and_the_limit(ledger: Ledger) -> None:
    """The record is the truth: an actual cost above its hold is still recorded in full."""
    check = [LimitCheck(DAY, 100)]
    assert ledger.reserve("h", 10, check, NOW + 60, NOW) is None
    ledger.append(rec(150), [DAY], "h")
    assert usage1(ledger, DAY) == BucketUsage(150, 0, 1)
    assert ledger.reserve("h2", 1, check, NOW + 60, NOW) is not None


def test_append_with_unknown_hold_still_records(ledger: Ledger) -> None:
    stored, _ = ledger.append(rec(5), [DAY], "no-such-hold")
    assert ledger.count_records() == 1
    assert ledger.records()[0] == stored


def test_append_returns_watched_usage_after_the_write(ledger: Ledger) -> None:
    ledger.append(rec(10), [DAY, MONTH])
    ledger.reset(DAY, NOW)
    rolling = Bucket("global", "rolling:3600s", int(NOW) - 3600 + 60, int(NOW) + 60)
    minute = Bucket("global", "minute", int(NOW) // 60 * 60, int(NOW) // 60 * 60 + 60)
    ledger.append(rec(7), [DAY, MONTH, minute])
    _, watched = ledger.append(rec(5), [DAY, MONTH, minute], watch=[DAY, MONTH, rolling, USER_DAY])
    assert watched == [
        BucketUsage(12, 0, 3, 10),  # net of the reset baseline; count is all records
        BucketUsage(22, 0, 3, 0),
        BucketUsage(12, 0, 0, 0),  # rolling: minute slots summed
        BucketUsage(0, 0, 0, 0),  # never touched
    ]


def test_a_bucket_named_twice_adds_twice(ledger: Ledger) -> None:
    ledger.append(rec(4), [DAY, DAY])
    assert usage1(ledger, DAY) == BucketUsage(8, 0, 2)


# -- reset, events, series ----------------------------------------------------------------------
def test_reset_moves_the_baseline_and_records_an_event(ledger: Ledger) -> None:
    ledger.append(rec(30), [DAY, MONTH])
    ledger.append(rec(12), [DAY, MONTH])
    assert ledger.reset(DAY, NOW + 1, detail="reset_daily()") == 42
    assert usage1(ledger, DAY) == BucketUsage(0, 0, 2, 42)
    assert usage1(ledger, MONTH) == BucketUsage(42, 0, 2, 0)  # other buckets untouched
    check = [LimitCheck(DAY, 50)]
    assert ledger.check(50, check, NOW) is None  # the reset amount no longer counts
    ledger.append(rec(5), [DAY])
    assert usage1(ledger, DAY) == BucketUsage(5, 0, 3, 42)
    assert ledger.reset(DAY, NOW + 2) == 5
    assert ledger.reset(DAY, NOW + 3) == 0
    events = ledger.events()
    assert [(e.kind, e.scope, e.period, e.start, e.amount) for e in events] == [
        ("reset", "global", "daily", DAY.start, 0),
        ("reset", "global", "daily", DAY.start, 5),
        ("reset", "global", "daily", DAY.start, 42),
    ]
    assert events[-1].detail == "reset_daily()" and events[-1].ts == NOW + 1
    assert [e.amount for e in ledger.events(limit=1)] == [0]
    assert ledger.count_records() == 3  # history is never deleted


def test_reset_of_an_empty_bucket(ledger: Ledger) -> None:
    assert ledger.reset(USER_DAY, NOW) == 0
    assert usage1(ledger, USER_DAY) == BucketUsage(0, 0, 0, 0)
    assert len(ledger.events()) == 1


def test_series_lists_net_totals_in_range(ledger: Ledger) -> None:
    days = [Bucket("global", "daily", DAY.start + i * 86400, DAY.end + i * 86400) for i in range(4)]
    for i, b in enumerate(days):
        ledger.append(rec(10 * (i + 1)), [b, USER_DAY] if i == 0 else [b])
    ledger.reset(days[1], NOW)
    ledger.append(rec(3), [days[1]])
    assert ledger.series("global", "daily", days[0].start, days[3].start) == [
        (days[0].start, 10),
        (days[1].start, 3),
        (days[2].start, 30),
    ]
    assert ledger.series("user:alice", "daily", 0, 2**40) == [(USER_DAY.start, 10)]
    assert ledger.series("global", "monthly", 0, 2**40) == []


# -- rolling windows ----------------------------------------------------------------------------
def test_rolling_window_sums_minute_slots_in_range(ledger: Ledger) -> None:
    t0 = int(NOW) // 60 * 60
    for k, cost in [(-61, 1), (-60, 2), (-1, 4), (0, 8)]:
        slot = t0 + k * 60
        ledger.append(
            rec(cost, ts_us=slot * 1_000_000), [Bucket("key:k", "minute", slot, slot + 60)]
        )
    window = Bucket("key:k", "rolling:3600s", t0 - 3600 + 60, t0 + 60)
    # the window [t0-3540, t0+60) holds slots -59 .. 0; slots -61 and -60 lie before it
    assert usage1(ledger, window).spent == 4 + 8
    assert ledger.check(88, [LimitCheck(window, 100)], NOW) is None
    denial = ledger.check(89, [LimitCheck(window, 100)], NOW)
    assert denial is not None and denial.spent == 12


def test_rolling_holds_count_in_every_window(ledger: Ledger) -> None:
    t0 = int(NOW) // 60 * 60
    w1 = Bucket("global", "rolling:3600s", t0 - 3540, t0 + 60)
    w2 = Bucket("global", "rolling:3600s", t0 - 3480, t0 + 120)  # a minute later
    assert ledger.reserve("r", 60, [LimitCheck(w1, 100)], NOW + 600, NOW) is None
    assert usage1(ledger, w2).reserved == 60
    denial = ledger.reserve("r2", 41, [LimitCheck(w2, 100)], NOW + 600, NOW + 60)
    assert denial is not None and denial.reserved == 60
    other = Bucket("global", "rolling:86400s", t0 - 86340, t0 + 60)
    assert usage1(ledger, other).reserved == 0  # holds are per window length
    slot = Bucket("global", "minute", t0, t0 + 60)
    ledger.append(rec(50), [slot], "r")
    assert usage1(ledger, w2) == BucketUsage(50, 0, 0)


# -- history ------------------------------------------------------------------------------------
def test_records_round_trip_every_field(ledger: Ledger) -> None:
    full = rec(
        123_456_789,
        ts_us=1_700_000_000_123_456,
        model="claude-3-haiku",
        provider="anthropic",
        input_tokens=1000,
        output_tokens=200,
        cache_read_tokens=300,
        cache_write_tokens=100,
        reasoning_tokens=50,
        user_id="alice",
        team="research",
        key="vk-1",
        endpoint="/chat",
        request_id="r-1",
        tags=("chat", "beta"),
        latency_ms=12.5,
        status="error",
        estimated=True,
        price_source="fallback:x",
    )
    stored, _ = ledger.append(full, [DAY])
    assert stored == full.stored(stored.id)
    assert ledger.records() == [stored]
    bare, _ = ledger.append(rec(0), [DAY])
    assert bare.tags == () and bare.latency_ms is None and bare.estimated is False
    assert ledger.records()[-1] == bare


def test_records_are_ordered_and_filtered(ledger: Ledger) -> None:
    stamps = [5, 3, 9, 3, 7]
    stored = [ledger.append(rec(1, ts_us=t), [DAY])[0] for t in stamps]
    ids = [s.id for s in stored]
    assert ids == sorted(ids) and len(set(ids)) == 5
    by_time = ledger.records()
    assert [(r.ts_us, r.id) for r in by_time] == sorted((s.ts_us, s.id) for s in stored)
    assert [r.ts_us for r in ledger.records(since_us=5)] == [5, 7, 9]  # since is inclusive
    assert [r.ts_us for r in ledger.records(until_us=7)] == [3, 3, 5]  # until is exclusive
    assert [r.ts_us for r in ledger.records(3, 9, limit=2)] == [3, 3]
    assert ledger.records(100) == []
    assert ledger.count_records() == 5


# -- alert outbox -------------------------------------------------------------------------------
def test_claim_alert_once(ledger: Ledger) -> None:
    assert ledger.claim_alert("k1", "payload", ["slack", "email"], NOW) is True
    assert ledger.claim_alert("k1", "other payload", ["slack"], NOW + 1) is False
    ds = ledger.deliveries()
    assert sorted(d.channel for d in ds) == ["email", "slack"]
    assert all(d.status == "pending" and d.attempts == 0 and d.payload == "payload" for d in ds)
    assert all(d.next_attempt_at == NOW and d.created_at == NOW for d in ds)
    assert ledger.claim_alert("k2", "p2", [], NOW) is True  # claimed though nowhere to send
    assert ledger.claim_alert("k2", "p2", ["slack"], NOW) is False
    assert len(ledger.deliveries()) == 2


def test_claim_alert_once_across_handles(backend: Backend) -> None:
    other = backend.another()
    assert backend.ledger.claim_alert("shared", "p", ["a"], NOW) is True
    assert other.claim_alert("shared", "p", ["a"], NOW) is False
    assert len(other.deliveries()) == 1


def test_lease_finish_and_history(ledger: Ledger) -> None:
    ledger.claim_alert("k1", "p1", ["a", "b"], NOW)
    ledger.claim_alert("k2", "p2", ["c"], NOW + 1)
    first = ledger.lease_deliveries(NOW + 1, 30, limit=2)
    assert [d.channel for d in first] == ["a", "b"]  # due first, then by id
    assert all(d.next_attempt_at == NOW + 31 for d in first)
    second = ledger.lease_deliveries(NOW + 2, 30, limit=10)
    assert [d.channel for d in second] == ["c"]  # leased ones are not handed out again
    assert ledger.lease_deliveries(NOW + 3, 30, limit=10) == []
    a, b = first
    ledger.finish_delivery(a.id, delivered=True, error=None, next_attempt_at=None, now=NOW + 4)
    ledger.finish_delivery(b.id, delivered=False, error="503", next_attempt_at=NOW + 60, now=NOW)
    ledger.finish_delivery(
        second[0].id, delivered=False, error="bad url", next_attempt_at=None, now=NOW
    )
    by_id = {d.id: d for d in ledger.deliveries()}
    assert (by_id[a.id].status, by_id[a.id].attempts, by_id[a.id].delivered_at) == (
        "delivered",
        1,
        NOW + 4,
    )
    assert by_id[a.id].next_attempt_at is None and by_id[a.id].last_error is None
    assert (by_id[b.id].status, by_id[b.id].last_error, by_id[b.id].next_attempt_at) == (
        "pending",
        "503",
        NOW + 60,
    )
    assert by_id[second[0].id].status == "failed"
    assert ledger.lease_deliveries(NOW + 59, 30, limit=10) == []
    again = ledger.lease_deliveries(NOW + 60, 30, limit=10)
    assert [d.id for d in again] == [b.id]  # the retry comes due; failed/delivered never do
    # an expired lease is handed out again (the dispatcher that took it died)
    assert [d.id for d in ledger.lease_deliveries(NOW + 90, 30, limit=10)] == [b.id]
    with pytest.raises(LedgerError):
        ledger.finish_delivery(10**9, delivered=True, error=None, next_attempt_at=None, now=NOW)


def test_every_outcome_counts_the_attempt_and_a_success_clears_the_error(ledger: Ledger) -> None:
    ledger.claim_alert("k", "p", ["retried", "given-up"], NOW)
    retried, given_up = ledger.lease_deliveries(NOW, 30, limit=2)

    def row(delivery_id: int) -> tuple[object, ...]:
        [d] = [d for d in ledger.deliveries() if d.id == delivery_id]
        return d.status, d.attempts, d.last_error, d.next_attempt_at, d.delivered_at

    ledger.finish_delivery(
        retried.id, delivered=False, error="503", next_attempt_at=NOW + 60, now=NOW
    )
    assert row(retried.id) == ("pending", 1, "503", NOW + 60, None)
    ledger.finish_delivery(
        retried.id, delivered=True, error=None, next_attempt_at=None, now=NOW + 61
    )
    assert row(retried.id) == ("delivered", 2, None, None, NOW + 61)
    ledger.finish_delivery(
        given_up.id, delivered=False, error="gone", next_attempt_at=None, now=NOW
    )
    assert row(given_up.id) == ("failed", 1, "gone", None, None)
    before = ledger.deliveries()
    with pytest.raises(LedgerError, match="no alert delivery with id 0"):
        ledger.finish_delivery(0, delivered=True, error=None, next_attempt_at=None, now=NOW)
    assert ledger.deliveries() == before


def test_deliveries_history_is_newest_first_and_filtered(ledger: Ledger) -> None:
    for i in range(5):
        ledger.claim_alert(f"k{i}", f"p{i}", ["x"], NOW + i)
    assert [d.payload for d in ledger.deliveries()] == ["p4", "p3", "p2", "p1", "p0"]
    assert [d.payload for d in ledger.deliveries(since=NOW + 3)] == ["p4", "p3"]
    assert [d.payload for d in ledger.deliveries(limit=2)] == ["p4", "p3"]


# -- persistence --------------------------------------------------------------------------------
def test_schema_version_and_reopen_keep_everything(backend: Backend) -> None:
    if backend.name == "memory":
        pytest.skip("the memory ledger keeps nothing to reopen")
    from costwarden.ledger.schema_postgres import MIGRATIONS as PG
    from costwarden.ledger.schema_sqlite import MIGRATIONS as SQ

    led = backend.ledger
    _not_leased(led, "close() gives every lease back, with the holds open from it")
    expected = len(PG) if backend.name in ("postgres", "leased") else len(SQ)
    assert led.schema_version == expected  # type: ignore[attr-defined]
    led.append(rec(9), [DAY])
    led.reserve("h", 5, [LimitCheck(DAY, 100)], NOW + 60, NOW)
    led.claim_alert("k", "p", ["a"], NOW)
    led.close()
    again = backend.another()
    assert again.schema_version == expected  # type: ignore[attr-defined]
    assert again.count_records() == 1
    assert usage1(again, DAY) == BucketUsage(9, 5, 1)
    assert again.claim_alert("k", "p", ["a"], NOW) is False


def test_two_handles_share_holds_and_totals(backend: Backend) -> None:
    other = backend.another()
    check = [LimitCheck(DAY, 100)]
    assert backend.ledger.reserve("a", 60, check, NOW + 60, NOW) is None
    assert other.reserve("b", 60, check, NOW + 60, NOW) is not None
    other.append(rec(20), [DAY], "a")
    assert usage1(backend.ledger, DAY) == BucketUsage(20, 0, 1)


def test_open_ledger_routes_urls(backend: Backend) -> None:
    from costwarden.ledger.leases import LeasedLedger
    from costwarden.ledger.postgres import PostgresLedger

    kinds = {"memory": MemoryLedger, "sqlite": SQLiteLedger, "postgres": PostgresLedger}
    kinds["leased"] = LeasedLedger
    assert type(backend.ledger) is kinds[backend.name]
    assert isinstance(backend.ledger, Ledger)  # the runtime-checkable Protocol
    assert isinstance(backend.ledger, InspectableLedger)  # what these tests read besides
    assert missing_members(backend.ledger) == []
    assert backend.ledger.remote is (backend.name in ("postgres", "leased"))
    assert backend.ledger.url == backend.url


def test_the_protocol_lists_only_what_the_library_calls() -> None:
    # hold_exists, events and count_records are for tests and operators (InspectableLedger)
    members = set(vars(Ledger)) | set(Ledger.__annotations__)
    assert {"remote", "url", "reserve", "append"} <= members
    assert not {"hold_exists", "events", "count_records"} & members
    assert {"hold_exists", "events", "count_records"} <= set(vars(InspectableLedger))


# -- differential: every backend answers like the in-memory reference ---------------------------
_BUCKETS = [DAY, MONTH, USER_DAY, Bucket("global", "rolling:120s", int(NOW) - 60, int(NOW) + 60)]
_MINUTE = Bucket("global", "minute", int(NOW) // 60 * 60, int(NOW) // 60 * 60 + 60)

_op = st.one_of(
    st.tuples(
        st.just("reserve"),
        st.integers(0, 120),
        st.lists(st.tuples(st.integers(0, 3), st.integers(0, 200)), min_size=1, max_size=3),
        st.floats(1, 20),
    ),
    st.tuples(st.just("append"), st.integers(0, 80), st.booleans()),
    st.tuples(st.just("release"), st.integers(0, 9)),
    st.tuples(st.just("reset"), st.integers(0, 2)),
    st.tuples(st.just("purge"), st.floats(0, 25)),
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=st.lists(_op, max_size=25))
def test_backend_matches_the_reference(backend: Backend, ops: list[tuple[Any, ...]]) -> None:
    """Random reserve/append/release/reset/purge sequences; answers must equal memory's.

    Watched usage is compared on spent, count and baseline: what callers read from it.
    """
    if backend.name == "memory":
        pytest.skip("memory is the reference")
    _not_leased(backend.ledger, "a lease's free part counts as reserved; the reference has none")
    # every example uses fresh scopes, so one store serves all examples
    tag = f"ex{next(_ids)}"
    ref = MemoryLedger()
    led = backend.ledger

    def scoped(b: Bucket) -> Bucket:
        return Bucket(f"{tag}:{b.scope}", b.period, b.start, b.end)

    buckets = [scoped(b) for b in _BUCKETS]
    record_buckets = [*buckets[:3], scoped(_MINUTE)]
    holds: list[str] = []
    settled: set[str] = set()
    now = NOW
    for op in ops:
        kind = op[0]
        if kind == "reserve":
            _, amount, raw, ttl = op
            seen: set[int] = set()
            checks = []
            for i, limit in raw:
                if i not in seen:
                    seen.add(i)
                    checks.append(LimitCheck(buckets[i], limit))
            hold = f"{tag}-h{len(holds)}"
            holds.append(hold)
            args = (hold, amount, checks, now + ttl, now)
            assert led.reserve(*args) == ref.reserve(*args)
        elif kind == "append":
            _, cost, settle = op
            # A hold settles one record: appending under a hold that already settled one is
            # PostgreSQL's retry after a lost reply (it returns the stored record, test_postgres
            # _ledger), which the manager never does and the in-process ledgers need not know.
            hold_id = holds[-1] if settle and holds and holds[-1] not in settled else None
            if hold_id is not None:
                settled.add(hold_id)
            r = rec(cost)
            _, w1 = led.append(r, record_buckets, hold_id, watch=buckets)
            _, w2 = ref.append(r, record_buckets, hold_id, watch=buckets)
            assert [(u.spent, u.count, u.baseline) for u in w1] == [
                (u.spent, u.count, u.baseline) for u in w2
            ]
        elif kind == "release":
            hold = holds[op[1]] if op[1] < len(holds) else f"{tag}-none"
            assert led.release(hold) == ref.release(hold)
        elif kind == "reset":
            b = buckets[op[1]]
            assert led.reset(b, now) == ref.reset(b, now)
        else:
            at = now + op[1]
            # purge counts differ only if another example's holds expire too: compare effects
            led.purge_expired_holds(at)
            ref.purge_expired_holds(at)
        assert led.usage(buckets, now) == ref.usage(buckets, now)
        assert [led.hold_exists(h, now) for h in holds] == [ref.hold_exists(h, now) for h in holds]
        now += 1


def test_metadata_round_trips_through_every_ledger(ledger: Ledger) -> None:
    """Records keep their metadata (the optimizer's advice reads it back from the ledger)."""
    meta = {"task": "summarization", "max_tokens": 800, "prompt_hash": "ab12", "n": [1, 2]}
    stored, _ = ledger.append(rec(10, metadata=meta), [])
    assert stored.metadata == meta
    plain, _ = ledger.append(rec(10), [])
    assert plain.metadata is None
    by_id = {r.id: r for r in ledger.records()}
    assert by_id[stored.id].metadata == meta
    assert by_id[plain.id].metadata is None


AWKWARD_SCOPES = (
    'user:a"b',
    "user:a\\b",
    "tag:x,y",
    "tag:{z}",
    "user:NULL",
    "user: spaced ",
    "team:é✓",
    "user:a",
)


def test_scope_names_with_array_syntax_stay_separate_buckets(ledger: Ledger) -> None:
    """Quotes, backslashes, commas, braces and NULL in scope names are data, never syntax
    (the PostgreSQL ledger passes bucket lists as array literals)."""
    buckets = tuple(Bucket(s, "daily", DAY.start, DAY.end) for s in AWKWARD_SCOPES)
    for i, bucket in enumerate(buckets, start=1):
        ledger.append(rec(i), (bucket,))
    assert [u.spent for u in ledger.usage(buckets, NOW)] == list(range(1, len(buckets) + 1))
    checks = tuple(LimitCheck(b, 100) for b in buckets)
    assert ledger.reserve("awkward", 90, checks, NOW + 60, NOW) is None
    usage = ledger.usage(buckets, NOW)
    assert [u.reserved for u in usage] == [90] * len(buckets)
    denial = ledger.check(100 - len(buckets) - 90 + 1, checks, NOW)
    assert denial is not None and denial.check.bucket.scope == AWKWARD_SCOPES[-1]


# -- the argument kinds are separate values ------------------------------------------------------
def test_one_empty_tuple_as_checks_and_as_buckets(ledger: Ledger) -> None:
    """An empty tuple is one object in Python: handed as ``checks`` and as ``buckets`` or
    ``watch`` in turn, each call still gets its own kind's answer (a memo keyed by the object
    once took the other kind's work: the PostgreSQL ledger then passed the wrong number of
    arguments and lost the record)."""
    empty: tuple[Any, ...] = ()
    for round_ in range(2):  # appended first, then reserved first: both orders
        if round_:
            assert ledger.check(10, empty, NOW) is None
        _, watched = ledger.append(rec(7), (DAY,), watch=empty)
        assert watched == []
        assert ledger.reserve(f"free-{round_}", 10, empty, NOW + 60, NOW) is None
        assert ledger.check(10, empty, NOW) is None
        ledger.append(rec(3), empty, f"free-{round_}", watch=empty)
        assert ledger.usage(empty, NOW) == []
    assert usage1(ledger, DAY).spent == 14
    assert ledger.count_records() == 4


def test_a_hashed_tuple_is_the_plain_tuple_with_its_hash_kept() -> None:
    """What lets ledgers memo by value at the cost of one dict hit: a HashedTuple equals and
    hashes like the plain tuple of its items, so either finds the other's memo entry."""
    items = (LimitCheck(DAY, 100), LimitCheck(USER_DAY, 5))
    hashed = HashedTuple(items)
    assert hashed == items and hash(hashed) == hash(items)
    assert {items: "memo"}[hashed] == "memo" and {hashed: "memo"}[items] == "memo"
    assert hashed != HashedTuple((LimitCheck(DAY, 101), LimitCheck(USER_DAY, 5)))
    assert HashedTuple() == () and hash(HashedTuple()) == hash(())
    with pytest.raises(TypeError):
        HashedTuple([[1]])  # an unhashable item: refused when made, not at the first lookup


# -- a manager on every backend: no limit anywhere ------------------------------------------------
FREE = Budget(daily_limit=None, monthly_limit=None, per_request_limit=None)


def test_unlimited_manager_reserves_and_commits(ledger: Ledger) -> None:
    m = BudgetManager(FREE, ledger=ledger)
    hold = m.reserve(0.01)
    stored = hold.commit(UsageRecord("gpt-4o", 10, 5, cost_usd=0.01))
    assert stored.cost_nanos == 10_000_000
    assert m.can_spend(1_000.0)
    status = m.get_status()
    assert status["daily_spent"] == 0.01 and status["daily_requests"] == 1
    assert status["daily_limit"] is None and status["daily_remaining"] is None
    assert [r.id for r in m.records()] == [stored.id]


def test_unlimited_manager_records_then_reserves(ledger: Ledger) -> None:
    m = BudgetManager(FREE, ledger=ledger)
    m.record_spend(UsageRecord("gpt-4o", 10, 5, cost_usd=0.02))
    assert m.can_spend(0.5)
    hold = m.reserve(0.5)
    assert m.get_status()["daily_reserved"] == 0  # no limit, nothing to hold against
    hold.commit(UsageRecord("gpt-4o", 10, 5, cost_usd=0.03))
    status = m.get_status()
    assert status["monthly_spent"] == 0.05 and status["monthly_requests"] == 2
    assert status["percent_used"] == 0.0
    assert len(m.records()) == 2


def test_unlimited_tracked_client_records_its_call(ledger: Ledger) -> None:
    m = BudgetManager(FREE, ledger=ledger)
    client = TrackedLLMClient(m, provider="simulated")
    result = client.complete([{"role": "user", "content": "Hello"}], model="gpt-4o", max_tokens=50)
    assert result.record.cost_nanos > 0
    assert [r.id for r in m.records()] == [result.record.id]
    assert m.get_status()["daily_spent"] == result.record.cost_usd


def test_config_without_budget_and_tracked_client_record(backend: Backend, tmp_path: Path) -> None:
    """A config file with no ``[budget]`` (spend tracked, nothing limited) and a tracked call."""
    file = tmp_path / "costwarden.toml"
    file.write_text(f'ledger = "{backend.url}"\n')
    m = load_config(file, environ={}).build_manager()
    try:
        client = TrackedLLMClient(m, provider="simulated", user="ann")
        result = client.complete([{"role": "user", "content": "Hi"}], model="gpt-4o")
        assert [r.id for r in m.records()] == [result.record.id]
        assert m.get_status(user="ann")["daily_requests"] == 1
    finally:
        m.close()


# -- values every backend can store, refused alike before anything is held ------------------------
LONGEST = "\U0001f600" * MAX_NAME_LENGTH  # 4 UTF-8 bytes each: the widest a name can be


def _nothing_held_or_recorded(m: BudgetManager) -> None:
    assert m.ledger.count_records() == 0
    assert m.get_status()["daily_reserved"] == 0


@pytest.mark.parametrize(
    "bad",
    ["x" * (MAX_NAME_LENGTH + 1), "caf\udce9"],  # too long; a lone surrogate (bad decoding)
    ids=["too_long", "lone_surrogate"],
)
def test_names_no_ledger_can_store_are_refused_at_the_edge(ledger: Ledger, bad: str) -> None:
    m = BudgetManager(Budget(daily_limit=10.0), ledger=ledger)
    scoped: list[dict[str, Any]] = [
        {"user": bad},
        {"team": bad},
        {"key": bad},
        {"model": bad},
        {"tags": [bad]},
        {"tags": ["fine", bad]},
    ]
    for kw in scoped:
        with pytest.raises(InvalidInputError):
            m.reserve(0.01, **kw)
        with pytest.raises(InvalidInputError):
            m.can_spend(0.01, **kw)
    for kind in ("user", "team", "key", "tag", "model"):
        with pytest.raises(InvalidInputError, match=kind):
            m.get_status(**{kind: bad})
        with pytest.raises(InvalidInputError, match=kind):
            m.set_budget(Budget(daily_limit=1.0), **{kind: bad})
    for field in ("model", "user_id", "team", "key", "endpoint", "request_id", "provider"):
        with pytest.raises(InvalidInputError, match=field):
            UsageRecord(**{"model": "gpt-4o", "input_tokens": 1, "output_tokens": 1, field: bad})
    with pytest.raises(InvalidInputError, match="tag"):
        UsageRecord("gpt-4o", 1, 1, tags=("ok", bad))
    _nothing_held_or_recorded(m)


def test_the_longest_widest_names_are_stored(ledger: Ledger) -> None:
    """The bound leaves room: names of MAX_NAME_LENGTH four-byte characters in every scope and
    field go through reserve, commit, a threshold alert's claim and status on every backend
    (PostgreSQL refuses index keys over ~2.7 kB)."""
    levels: list[AlertLevel] = []
    m = BudgetManager(FREE, lambda level, _msg: levels.append(level), ledger=ledger)
    m.set_budget(Budget(daily_limit=0.01), user=LONGEST)
    hold = m.reserve(0.01, user=LONGEST, team=LONGEST, key=LONGEST, tags=[LONGEST], model=LONGEST)
    stored = hold.commit(
        UsageRecord(
            LONGEST,
            10,
            5,
            cost_usd=0.01,
            user_id=LONGEST,
            endpoint=LONGEST,
            request_id=LONGEST,
            team=LONGEST,
            key=LONGEST,
            provider=LONGEST,
            tags=(LONGEST,),
        )
    )
    dispatcher = m.alerts
    assert dispatcher is not None
    dispatcher.close()  # delivers what is due, then stops (before the fixture closes the ledger)
    assert AlertLevel.CRITICAL in levels  # the claim keyed by the long scope was stored
    (back,) = m.records()
    assert back == stored and back.user_id == LONGEST and back.tags == (LONGEST,)
    for kind in ("user", "team", "key", "tag", "model"):
        assert m.get_status(**{kind: LONGEST})["daily_spent"] == 0.01


def test_counts_beyond_int64_are_refused_and_int64_is_stored(ledger: Ledger) -> None:
    m = BudgetManager(FREE, ledger=ledger)
    for field in ("input_tokens", "output_tokens"):
        for big in (2**63, float(2**63), 2**64):
            counts: dict[str, Any] = {"input_tokens": 1, "output_tokens": 1, field: big}
            with pytest.raises(InvalidInputError, match=field):
                UsageRecord("gpt-4o", cost_usd=0.01, **counts)
            with pytest.raises(InvalidInputError, match=field):
                Usage(**counts)
    with pytest.raises(InvalidInputError, match="too large"):
        UsageRecord("gpt-4o", 1, 1, cost_usd=10.0**10)  # more nano-USD than int64 holds
    _nothing_held_or_recorded(m)
    top = 2**63 - 1
    stored = m.record_spend(
        UsageRecord(
            "gpt-4o",
            top,
            top,
            cost_usd=0.01,
            cache_read_tokens=top,
            reasoning_tokens=top,
        )
    )
    (back,) = m.records()
    assert back == stored
    assert (back.input_tokens, back.output_tokens, back.cache_read_tokens) == (top, top, top)
