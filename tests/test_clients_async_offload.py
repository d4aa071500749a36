"""Async clients keep a remote ledger off the event loop, and lose no hold when cancelled.

On a remote (PostgreSQL) ledger, ``AsyncTrackedLLMClient`` and wrapped async SDK clients run
the ledger calls on a worker thread; on a local one (memory, SQLite) they stay inline. Which
thread made each ledger call is seen through :class:`SpyLedger`, a pass-through ledger (the
``Ledger`` extension point) over a real backend, whose calls a test can also hold up, as a
slow database would. The PostgreSQL tests hold a bucket's real advisory lock instead.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import openai
import psycopg
import pytest
from psycopg import sql

from costwarden.budget import Budget
from costwarden.clients import AsyncTrackedLLMClient, OpenAIProvider, TrackedLLMClient, wrap
from costwarden.clients.offload import MAX_WORKERS, THREAD_NAME_PREFIX
from costwarden.errors import BudgetExceededError, ConfigurationError
from costwarden.ledger import open_ledger
from costwarden.ledger.postgres import PostgresLedger
from costwarden.manager import BudgetManager
from costwarden.testing.fake_upstream import FakeUpstream, Reply, openai_usage
from tests import pg

MODEL = "gpt-4o-mini"
PROMPT = "Say hello"
MESSAGES = [{"role": "user", "content": PROMPT}]


class SpyLedger:
    """A real ledger, plus which thread made each call, and gates that make a call wait.

    ``remote`` is the flag the clients read: the inner ledger's own unless given (``None``
    leaves it out, as a custom ledger may). ``calls`` lists (method, thread name, result)
    as each call returns; ``entered[method]`` is set when one starts (``started`` counts
    them); an unset ``gates[method]`` event holds calls of that method until it is set.
    """

    def __init__(self, inner: Any, *, remote: bool | str | None = "inner") -> None:
        self._inner = inner
        if remote == "inner":
            self.remote = inner.remote
        elif remote is not None:
            self.remote = remote
        self.calls: list[tuple[str, str, Any]] = []
        self.entered: defaultdict[str, threading.Event] = defaultdict(threading.Event)
        self.started: Counter[str] = Counter()
        self.gates: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        if name == "remote" or name.startswith("_"):
            raise AttributeError(name)
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.started[name] += 1
            self.entered[name].set()
            gate = self.gates.get(name)
            if gate is not None:
                assert gate.wait(10), f"gate {name} never opened"
            result = attr(*args, **kwargs)
            with self._lock:
                self.calls.append((name, threading.current_thread().name, result))
            return result

        return call

    def threads(self, *methods: str) -> set[str]:
        with self._lock:
            return {thread for name, thread, _ in self.calls if name in methods}

    def returned(self, method: str) -> list[Any]:
        with self._lock:
            return [result for name, _, result in self.calls if name == method]


def estimate_nanos() -> int:
    """What one ``chat(PROMPT, max_tokens=5)`` holds (the simulated provider's estimate)."""
    probe = BudgetManager()
    result = TrackedLLMClient(probe, provider="simulated").complete(
        PROMPT, model=MODEL, max_tokens=5
    )
    probe.close()
    return result.estimate.cost_nanos


def room_for_one(ledger: Any) -> BudgetManager:
    """A manager on ``ledger`` whose daily budget fits one call's hold, not two: a hold that
    leaked would deny the next call."""
    limit = estimate_nanos() * 3 // 2
    return BudgetManager(
        Budget(daily_limit=limit / 1e9, monthly_limit=None, per_request_limit=None),
        ledger=ledger,
    )


def tracked(manager: BudgetManager, up: FakeUpstream) -> AsyncTrackedLLMClient:
    provider = OpenAIProvider(base_url=up.openai_base_url, api_key="t", timeout=10)
    return AsyncTrackedLLMClient(manager, providers=[provider])


def wrapped(manager: BudgetManager, up: FakeUpstream) -> Any:
    raw = openai.AsyncOpenAI(base_url=up.openai_base_url, api_key="t", max_retries=0)
    return wrap(raw, manager=manager, provider="openai")


async def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.005)


def test_a_ledger_without_the_remote_flag_is_refused(sqlite_url: str) -> None:
    # ``remote`` is part of the Ledger Protocol: a ledger that does not say is not guessed at
    inner = open_ledger(sqlite_url)
    try:
        with pytest.raises(ConfigurationError, match="SpyLedger lacks remote"):
            BudgetManager(Budget(daily_limit=1.0), ledger=SpyLedger(inner, remote=None))
    finally:
        inner.close()


# -- local ledgers stay inline; a remote one goes to a worker ------------------------------------
@pytest.mark.parametrize(
    ("backend", "remote", "where"),
    [
        ("memory", "inner", "loop"),
        ("sqlite", "inner", "loop"),
        ("sqlite", True, "worker"),  # the same ledger, said to be remote: the check can fail
    ],
)
def test_where_the_ledger_calls_run(
    up: FakeUpstream, sqlite_url: str, backend: str, remote: bool | str | None, where: str
) -> None:
    inner = open_ledger("memory://" if backend == "memory" else sqlite_url)
    assert inner.remote is False  # the real flag of both local backends
    spy = SpyLedger(inner, remote=remote)
    manager = BudgetManager(Budget(daily_limit=1.0, monthly_limit=None), ledger=spy)

    async def run() -> str:
        client, sdk = tracked(manager, up), wrapped(manager, up)
        await client.chat(PROMPT, model=MODEL, max_tokens=5)
        stream = await client.chat_stream(PROMPT, model=MODEL, max_tokens=5)
        assert [piece async for piece in stream]
        up.enqueue(Reply.error(502))
        with pytest.raises(openai.APIStatusError):
            await client.chat(PROMPT, model=MODEL, max_tokens=5)
        up.enqueue(Reply.openai_chat_stream(["a", "b", "c"], usage=openai_usage(4, 3)))
        async with await client.chat_stream(PROMPT, model=MODEL, max_tokens=5) as cut:
            async for _ in cut:
                break
        await sdk.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=5)
        await sdk.unwrapped.close()
        await client.aclose()
        return threading.current_thread().name

    loop_thread = asyncio.run(run())
    statuses = [r.status for r in manager.records()]
    assert statuses == ["ok", "ok", "error:502", "aborted", "ok"]
    assert manager.get_status()["daily_reserved"] == 0
    threads = spy.threads("reserve", "append", "release")
    assert len(spy.returned("reserve")) == 5 and len(spy.returned("release")) == 1
    if where == "loop":
        assert threads == {loop_thread}
    else:
        assert loop_thread not in threads
        assert all(name.startswith(THREAD_NAME_PREFIX) for name in threads)
    manager.close()


def test_refusals_and_errors_are_the_same_from_a_worker(up: FakeUpstream) -> None:
    spy = SpyLedger(open_ledger("memory://"), remote=True)
    manager = room_for_one(spy)
    client = tracked(manager, up)

    async def run() -> None:
        await client.chat(PROMPT, model=MODEL, max_tokens=5)  # spends most of the budget
        with pytest.raises(BudgetExceededError):
            await client.chat(PROMPT, model=MODEL, max_tokens=5)
        await client.aclose()
        sdk = wrapped(manager, up)
        with pytest.raises(BudgetExceededError):
            await sdk.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=5)
        await sdk.unwrapped.close()

    asyncio.run(run())
    assert len(up.requests) == 1  # refused calls never reached the provider
    assert [r.status for r in manager.records()] == ["ok"]
    assert spy.threads("reserve") and threading.current_thread().name not in spy.threads("reserve")


# -- cancellation ------------------------------------------------------------------------------
def test_a_reservation_cancelled_before_it_returns_is_released_by_its_worker(
    up: FakeUpstream,
) -> None:
    spy = SpyLedger(open_ledger("memory://"), remote=True)
    manager = room_for_one(spy)
    client = tracked(manager, up)
    spy.gates["reserve"] = gate = threading.Event()

    async def run() -> str:
        call = asyncio.create_task(client.chat(PROMPT, model=MODEL, max_tokens=5))
        await wait_for(spy.entered["reserve"].is_set)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        gate.set()  # the database answers after the caller has gone: the hold is obtained...
        await wait_for(lambda: len(spy.returned("release")) == 1)  # ...and given back
        assert spy.returned("reserve") == [None]  # (it was admitted: a hold existed)
        assert manager.get_status()["daily_reserved"] == 0
        text = await client.chat(PROMPT, model=MODEL, max_tokens=5)  # room for it again
        await client.aclose()
        return text

    assert asyncio.run(run())
    assert [r.status for r in manager.records()] == ["ok"] and len(up.requests) == 1


def test_a_reservation_that_returns_as_its_caller_is_cancelled_is_released(
    up: FakeUpstream,
) -> None:
    """The hold reaches the loop in the same instant the task is cancelled: the worker had
    already handed it over, so the loop's side must give it back."""
    spy = SpyLedger(open_ledger("memory://"), remote=True)
    manager = room_for_one(spy)
    client = tracked(manager, up)
    spy.gates["reserve"] = gate = threading.Event()

    async def run() -> None:
        call = asyncio.create_task(client.chat(PROMPT, model=MODEL, max_tokens=5))
        await wait_for(spy.entered["reserve"].is_set)
        gate.set()
        time.sleep(0.2)  # block the loop: the worker finishes, its result waits for the loop
        assert spy.returned("reserve") == [None]
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        await wait_for(lambda: len(spy.returned("release")) == 1)
        assert manager.get_status()["daily_reserved"] == 0
        await client.chat(PROMPT, model=MODEL, max_tokens=5)
        await client.aclose()

    asyncio.run(run())
    assert [r.status for r in manager.records()] == ["ok"] and len(up.requests) == 1


@pytest.mark.parametrize("api", ["tracked", "wrapped"])
def test_a_commit_in_flight_completes_when_its_caller_is_cancelled(
    up: FakeUpstream, api: str
) -> None:
    spy = SpyLedger(open_ledger("memory://"), remote=True)
    manager = room_for_one(spy)
    spy.gates["append"] = gate = threading.Event()

    async def run() -> None:
        sdk, client = wrapped(manager, up), tracked(manager, up)
        if api == "tracked":
            coro = client.chat(PROMPT, model=MODEL, max_tokens=5)
        else:
            coro = sdk.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=5)
        call = asyncio.create_task(coro)
        await wait_for(spy.entered["append"].is_set)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call  # at once: the caller does not wait for the database
        assert not spy.returned("append")
        gate.set()
        await wait_for(lambda: len(spy.returned("append")) == 1)
        await sdk.unwrapped.close()
        await client.aclose()

    asyncio.run(run())
    records = manager.records()
    assert [r.status for r in records] == ["ok"] and records[0].cost_nanos > 0
    assert manager.get_status()["daily_reserved"] == 0
    assert spy.returned("release") == []  # committed, not released


def test_a_queued_settlement_still_runs_when_its_caller_is_cancelled(up: FakeUpstream) -> None:
    """Every worker is busy (reservations held up by the database), so a stream's final
    commit waits in the queue when its reader is cancelled: it must stay queued and run."""
    spy = SpyLedger(open_ledger("memory://"), remote=True)
    manager = BudgetManager(Budget(daily_limit=10.0, monthly_limit=None), ledger=spy)
    client = tracked(manager, up)

    async def run() -> None:
        stream = await client.chat_stream(PROMPT, model=MODEL, max_tokens=5)
        spy.gates["reserve"] = gate = threading.Event()
        others = [
            asyncio.create_task(client.chat(PROMPT, model=MODEL, max_tokens=5))
            for _ in range(MAX_WORKERS)
        ]
        await wait_for(lambda: spy.started["reserve"] == MAX_WORKERS + 1)  # all workers busy

        async def read() -> list[str]:
            return [piece async for piece in stream]

        reader = asyncio.create_task(read())
        await asyncio.sleep(0.1)  # the stream has ended; its commit is queued
        assert not reader.done() and spy.started["append"] == 0
        reader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reader
        gate.set()
        await asyncio.gather(*others)
        await wait_for(lambda: len(spy.returned("append")) == MAX_WORKERS + 1)
        await client.aclose()

    asyncio.run(run())
    assert len(manager.records()) == MAX_WORKERS + 1 == len(up.requests)
    assert manager.get_status()["daily_reserved"] == 0


def test_a_call_cancelled_while_the_provider_works_is_settled_as_failed(
    up: FakeUpstream,
) -> None:
    spy = SpyLedger(open_ledger("memory://"), remote=True)
    manager = room_for_one(spy)
    client = tracked(manager, up)
    up.enqueue(Reply.openai_chat("late", usage=openai_usage(4, 1), delay=5.0))

    async def run() -> None:
        call = asyncio.create_task(client.chat(PROMPT, model=MODEL, max_tokens=5))
        await wait_for(lambda: len(up.requests) == 1)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        # awaited before the cancellation went on: released and recorded already
        assert len(spy.returned("release")) == 1 and len(spy.returned("append")) == 1
        await client.aclose()

    asyncio.run(run())
    records = manager.records()
    assert [(r.status, r.cost_nanos) for r in records] == [("error:CancelledError", 0)]
    assert manager.get_status()["daily_reserved"] == 0
    assert threading.current_thread().name not in spy.threads("release", "append")


def test_a_stream_settling_when_cancelled_is_settled_once(up: FakeUpstream) -> None:
    spy = SpyLedger(open_ledger("memory://"), remote=True)
    manager = room_for_one(spy)
    client = tracked(manager, up)
    up.enqueue(Reply.openai_chat_stream(["a", "b"], usage=openai_usage(4, 2)))

    async def run() -> None:
        stream = await client.chat_stream(PROMPT, model=MODEL, max_tokens=5)
        spy.gates["append"] = gate = threading.Event()

        async def read() -> list[str]:
            return [piece async for piece in stream]

        reader = asyncio.create_task(read())
        await wait_for(spy.entered["append"].is_set)  # the stream ended and is settling
        reader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reader
        await stream.close()  # would settle as "aborted" if the first settlement were lost
        gate.set()
        await wait_for(lambda: len(spy.returned("append")) == 1)
        assert stream.record is not None and stream.record.status == "ok"
        await client.aclose()

    asyncio.run(run())
    assert [(r.status, r.output_tokens) for r in manager.records()] == [("ok", 2)]
    assert manager.get_status()["daily_reserved"] == 0


def test_an_abandoned_stream_is_settled_off_the_loop(up: FakeUpstream) -> None:
    spy = SpyLedger(open_ledger("memory://"), remote=True)
    manager = room_for_one(spy)
    client = tracked(manager, up)
    up.enqueue(Reply.openai_chat_stream(["a", "b", "c"], usage=openai_usage(4, 3)))

    async def run() -> str:
        stream = await client.chat_stream(PROMPT, model=MODEL, max_tokens=5)
        async for _ in stream:
            break
        spy.gates["append"] = gate = threading.Event()
        del stream
        gc.collect()  # the finaliser must not wait for the (held-up) database
        gate.set()
        await wait_for(lambda: len(spy.returned("append")) == 1)
        await client.aclose()
        return threading.current_thread().name

    loop_thread = asyncio.run(run())
    assert [r.status for r in manager.records()] == ["aborted"]
    assert loop_thread not in spy.threads("append")


# -- PostgreSQL: a real contended bucket lock --------------------------------------------------
@pytest.fixture
def pg_url() -> Iterator[str]:
    with pg.temp_schema_url() as url:
        yield url


def lock_global_buckets(manager: BudgetManager, url: str) -> psycopg.Connection[Any]:
    """Take, in an open transaction on another connection, the advisory locks ``cw_reserve``
    takes for the global budget's buckets (keyed as in ``schema_postgres``); commit or roll
    back the returned connection to free them."""
    schema = manager.ledger.schema  # type: ignore[attr-defined]
    probe = manager.reserve(1e-6)
    server = url.partition("?")[0]
    conn = psycopg.connect(server, connect_timeout=5)
    rows = conn.execute(
        sql.SQL("SELECT DISTINCT scope, period, start FROM {}.holds WHERE hold_id = %s").format(
            sql.Identifier(schema)
        ),
        (probe.id,),
    ).fetchall()
    conn.commit()
    manager.release(probe)
    assert rows
    for scope, period, start in rows:
        conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
            (f"{schema}|{scope}|{period}|{start}",),
        )
    return conn  # the transaction stays open: the locks are held


async def heartbeat(stop: asyncio.Event) -> float:
    """Tick every 10 ms until ``stop``; the longest gap between ticks."""
    worst, last = 0.0, time.perf_counter()
    while not stop.is_set():
        await asyncio.sleep(0.01)
        now = time.perf_counter()
        worst, last = max(worst, now - last), now
    return worst


@pytest.mark.postgres
@pytest.mark.parametrize("api", ["tracked", "wrapped"])
def test_the_loop_runs_while_a_reservation_waits_on_postgres(
    up: FakeUpstream, pg_url: str, api: str
) -> None:
    manager = BudgetManager(Budget(daily_limit=1.0, monthly_limit=None), ledger=pg_url)
    assert manager.ledger.remote is True
    blocker = lock_global_buckets(manager, pg_url)
    # The lock is held 1.5 s: a loop blocked on it would stall for all of that, while a loop
    # kept free stalls only for scheduling noise (well under 0.5 s even on a loaded machine).
    unlock = threading.Timer(1.5, blocker.commit)  # the loop plays no part in freeing it

    async def run() -> tuple[float, float]:
        sdk, client = wrapped(manager, up), tracked(manager, up)
        if api == "tracked":
            call = client.chat(PROMPT, model=MODEL, max_tokens=5)
        else:
            call = sdk.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=5)
        stop = asyncio.Event()
        beat = asyncio.create_task(heartbeat(stop))
        await asyncio.sleep(0.05)
        started = time.perf_counter()
        unlock.start()
        await call
        took = time.perf_counter() - started
        stop.set()
        await sdk.unwrapped.close()
        await client.aclose()
        return await beat, took

    try:
        worst_gap, took = asyncio.run(run())
    finally:
        unlock.cancel()
        blocker.close()
    assert took >= 1.4, f"the call did not wait for the lock ({took:.3f} s)"
    assert worst_gap < 0.5, f"the event loop stalled for {worst_gap * 1000:.0f} ms"
    assert [r.status for r in manager.records()] == ["ok"] and len(up.requests) == 1
    assert manager.get_status()["daily_reserved"] == 0
    manager.close()


@pytest.mark.postgres
def test_a_cancelled_reservation_on_postgres_leaves_no_hold(up: FakeUpstream, pg_url: str) -> None:
    spy = SpyLedger(PostgresLedger(pg_url))  # the real PostgreSQL ledger, remote by its flag
    manager = room_for_one(spy)
    client = tracked(manager, up)
    blocker = lock_global_buckets(manager, pg_url)
    released = len(spy.returned("release"))  # the probe's, in lock_global_buckets

    async def run() -> None:
        call = asyncio.create_task(client.chat(PROMPT, model=MODEL, max_tokens=5))
        await asyncio.sleep(0.2)  # waiting on the lock, in the database
        assert not call.done()
        started = time.perf_counter()
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        assert time.perf_counter() - started < 0.5  # the lock is still held (for good)
        blocker.commit()
        await wait_for(lambda: len(spy.returned("release")) == released + 1)
        assert spy.returned("reserve")[-1] is None  # admitted once the lock was free
        assert manager.get_status()["daily_reserved"] == 0
        await client.chat(PROMPT, model=MODEL, max_tokens=5)  # room for it: nothing leaked
        await client.aclose()

    try:
        asyncio.run(run())
    finally:
        blocker.close()
    assert [r.status for r in manager.records()] == ["ok"] and len(up.requests) == 1
    with psycopg.connect(pg_url.partition("?")[0]) as conn:
        schema = sql.Identifier(spy.schema)
        count = conn.execute(sql.SQL("SELECT COUNT(*) FROM {}.holds").format(schema)).fetchone()
    assert count == (0,)
    manager.close()
