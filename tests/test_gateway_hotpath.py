"""What keeps the gateway's per-request work small and off the event loop: the control-version
watch (no thread hop per request, no round trip in the loop), the ledgers' side transactions
(the rate counters' seam), and a stream's request and first bytes passed on as they are."""

from __future__ import annotations

import asyncio
import gc
import io
import json
import logging
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from costwarden import BudgetManager
from costwarden.errors import LedgerUnavailableError
from costwarden.gateway import Gateway
from costwarden.gateway.control_watch import ControlWatch
from costwarden.gateway.logs import _direct_stream, configure, request_line
from costwarden.gateway.logs import log as gateway_log
from costwarden.gateway.sse import may_be_usage_only
from costwarden.keys import create_key
from costwarden.ledger import open_ledger
from costwarden.ledger.side_tables import SideExecute, SideTables
from costwarden.testing.fake_upstream import FakeUpstream
from tests.gateway_server import running_gateway
from tests.pg import temp_schema_url
from tests.test_gateway import ENV, NO_LIMITS, _settings


@pytest.fixture
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream() as server:
        yield server


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[BudgetManager]:
    m = BudgetManager(NO_LIMITS, ledger=f"sqlite:///{tmp_path}/gw.db")
    yield m
    m.close()


# -- the control version watch ---------------------------------------------------------------


class _Counting:
    """A real ledger whose control_version() calls are counted (and may be made to fail)."""

    def __init__(self, ledger: Any) -> None:
        self.ledger = ledger
        self.calls = 0
        self.fail = False
        self.control_poll_seconds = 0.2

    def control_version(self) -> int:
        self.calls += 1
        time.sleep(0.02)  # a round trip
        if self.fail:
            raise LedgerUnavailableError("the test's server is down")
        return int(self.ledger.control_version())

    def __getattr__(self, name: str) -> Any:
        return getattr(self.ledger, name)


def test_control_watch_fetches_once_per_poll_for_every_waiter(manager: BudgetManager) -> None:
    counted = _Counting(manager.ledger)
    watch = ControlWatch(counted, remote=True)  # type: ignore[arg-type]

    async def run() -> None:
        first = await asyncio.gather(*(watch.version() for _ in range(50)))
        assert counted.calls == 1 and len(set(first)) == 1  # one fetch, on a worker thread
        await watch.version()
        assert counted.calls == 1  # fresh: answered in the loop
        create_key(manager.ledger)  # the control plane moves
        assert await watch.version() == first[0]  # still within the poll interval
        await asyncio.sleep(0.25)
        assert await watch.version() != first[0] and counted.calls == 2
        counted.fail = True
        await asyncio.sleep(0.25)
        results = await asyncio.gather(*(watch.version() for _ in range(5)), return_exceptions=True)
        assert all(isinstance(r, LedgerUnavailableError) for r in results)
        assert counted.calls == 3
        counted.fail = False
        await watch.version()  # a failed fetch is not remembered: the next one asks again
        assert counted.calls == 4

    asyncio.run(run())


def test_control_watch_reads_a_local_ledger_directly(manager: BudgetManager) -> None:
    counted = _Counting(manager.ledger)
    watch = ControlWatch(counted, remote=False)  # type: ignore[arg-type]

    async def run() -> None:
        before = await watch.version()
        create_key(manager.ledger)
        assert await watch.version() != before  # no poll interval: at once
        assert counted.calls == 2

    asyncio.run(run())


# -- side transactions (the rate counters' seam) -------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def side_ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "sqlite":
        ledger = open_ledger(f"sqlite:///{tmp_path}/side.db")
        yield ledger
        ledger.close()
        return
    with temp_schema_url() as url:
        ledger = open_ledger(url)
        yield ledger
        ledger.close()


def test_side_transactions_commit_roll_back_and_serialise_by_lock(side_ledger: Any) -> None:
    ledger = side_ledger
    assert isinstance(ledger, SideTables)

    def setup(execute: SideExecute) -> None:
        execute("CREATE TABLE IF NOT EXISTS side_test (k TEXT PRIMARY KEY, n BIGINT)")
        execute("INSERT INTO side_test (k, n) VALUES (?, ?)", ("a", 0))

    ledger.side_transaction("t", setup)

    def fail(execute: SideExecute) -> None:
        execute("UPDATE side_test SET n = n + 100 WHERE k = ?", ("a",))
        raise ValueError("the caller's own error")

    with pytest.raises(ValueError, match="own error"):
        ledger.side_transaction("t", fail)

    def bump(execute: SideExecute) -> None:
        (n,) = execute("SELECT n FROM side_test WHERE k = ?", ("a",)).fetchone()
        time.sleep(0.001)  # a read-check-write that would lose updates if interleaved
        execute("UPDATE side_test SET n = ? WHERE k = ?", (int(n) + 1, "a"))

    def bumps() -> None:
        for _ in range(10):
            ledger.side_transaction("t", bump)

    threads = [threading.Thread(target=bumps) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    (n,) = ledger.side_transaction("t", lambda run: run("SELECT n FROM side_test").fetchone())
    assert int(n) == 40  # the failed +100 was rolled back; no bump was lost


def test_the_memory_ledger_has_no_side_tables() -> None:
    ledger = open_ledger("memory://")
    assert not isinstance(ledger, SideTables)
    ledger.close()


# -- streams ---------------------------------------------------------------------------------


def test_usage_only_candidates_are_told_from_their_bytes() -> None:
    usage = b'data: {"id":"c","choices":[],"usage":{"prompt_tokens":3}}\n\n'
    assert may_be_usage_only(usage)
    assert not may_be_usage_only(b'data: {"choices":[{"delta":{"content":"hi"}}],"usage":null}\n\n')
    assert not may_be_usage_only(b'data: {"choices":[{"delta":{"content":"\\"usage\\": 1"}}]}\n\n')
    assert not may_be_usage_only(b"data: [DONE]\n\n")
    # spaced JSON is parsed to decide, never passed over
    assert may_be_usage_only(b'data: {"choices": [], "usage": {"total_tokens": 3}}\n\n')
    assert may_be_usage_only(b'data: {"usage": null, "x": {"usage": {"n": 1}}}\n\n')


def test_a_stream_request_goes_upstream_as_sent_with_include_usage_added(
    up: FakeUpstream, manager: BudgetManager
) -> None:
    _, secret = create_key(manager.ledger)
    with running_gateway(Gateway(manager, _settings(up), environ=ENV)) as gw:
        # the client's own formatting, key order and escapes, which a re-serialisation loses
        sent = (
            b'{ "model" : "gpt-4o",\n  "max_tokens": 8, "stream": true,\n'
            b'  "messages": [{"role": "user", "content": "caf\\u00e9 \xe2\x82\xac"}] }'
        )
        request = urllib.request.Request(
            gw.openai_base_url + "/chat/completions",
            data=sent,
            headers={"authorization": f"Bearer {secret}", "content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as resp:
            body = resp.read()
        assert b"[DONE]" in body and b'"usage":{' not in body.replace(b" ", b"")
        received = up.requests[-1].body
        assert received == b'{"stream_options":{"include_usage":true},' + sent[1:]
        assert json.loads(received)["messages"][0]["content"] == "café €"
        # a body the splice cannot take (a BOM before the object) is serialised instead
        with urllib.request.urlopen(
            urllib.request.Request(
                request.full_url, data=b"\xef\xbb\xbf" + sent, headers=dict(request.headers)
            ),
            timeout=10,
        ) as resp:
            assert resp.status == 200 and b"[DONE]" in resp.read()
        redone = json.loads(up.requests[-1].body)
        assert redone["stream_options"] == {"include_usage": True}
        assert redone["messages"][0]["content"] == "café €"


# -- the process around the requests: its heap and its log line -------------------------------


def test_serve_freezes_the_startup_heap_with_the_prices_loaded(
    manager: BudgetManager, up: FakeUpstream
) -> None:
    settings = _settings(up)
    frozen_before = gc.get_freeze_count()

    async def start_and_stop(gateway: Gateway) -> int:
        await gateway.startup()
        try:
            return gc.get_freeze_count()
        finally:
            await gateway.shutdown()

    try:
        embedded = Gateway(manager, settings, environ=ENV)
        assert asyncio.run(start_and_stop(embedded)) == frozen_before  # a library's process
        served = Gateway(manager, settings, environ=ENV, freeze_heap=True)
        assert asyncio.run(start_and_stop(served)) > frozen_before  # `costwarden serve`
    finally:
        gc.unfreeze()
    # the routed, priced models were resolved at startup (not by the first request)
    routed = [
        (r.pattern, served.upstreams[r.upstream].provider)
        for r in settings.routes
        if not r.is_glob and not r.free
    ]
    resolved_at_startup = [key in manager.pricing._cache for key in routed]
    assert routed == [("text-embedding-3-small", "openai")] and all(resolved_at_startup)


@pytest.fixture
def configured_logs() -> Iterator[logging.StreamHandler[Any]]:
    """The loggers as ``costwarden serve`` configures them, put back as they were after."""
    cw = logging.getLogger("costwarden")
    saved = (list(cw.handlers), cw.propagate, cw.level)
    configure("info")
    handler = _direct_stream(gateway_log)
    assert handler is not None  # as configure() leaves them: the direct path
    try:
        yield handler
    finally:
        cw.handlers[:] = saved[0]
        cw.propagate, cw.level = saved[1], saved[2]


def test_the_request_line_written_directly_is_the_logging_one(
    configured_logs: logging.StreamHandler[Any],
) -> None:
    handler = configured_logs
    fields: dict[str, Any] = {"route": "chat", "status": 200, "key_id": "k1", "model": "m"}
    fields |= {"requested_model": None, "outcome": "ok", "cost_usd": 1.5e-05, "ms": 52.31}
    buffer = io.StringIO()
    old = handler.setStream(buffer)
    passing = logging.Filter()  # a filter (that passes all) sends lines through logging
    try:
        request_line(**fields)
        handler.addFilter(passing)
        assert _direct_stream(gateway_log) is None
        request_line(**fields)
    finally:
        handler.removeFilter(passing)
        handler.setStream(old)  # type: ignore[arg-type]
    direct, plain = (json.loads(line) for line in buffer.getvalue().splitlines())
    assert list(direct) == list(plain)  # the same members in the same order
    assert (
        abs(direct.pop("ts") - plain.pop("ts")) < 1 and abs(direct.pop("at") - plain.pop("at")) < 1
    )
    assert (
        direct
        == plain
        == {"level": "info", "logger": "costwarden.gateway", "msg": "request", **fields}
    )
