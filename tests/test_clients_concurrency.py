"""AsyncTrackedLLMClient, and zero overspend with many threads and tasks on one small budget."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from costwarden.budget import Budget
from costwarden.clients import AsyncTrackedLLMClient, OpenAIProvider, TrackedLLMClient, wrap
from costwarden.errors import BudgetExceededError
from costwarden.manager import BudgetManager
from costwarden.testing.fake_upstream import (
    FakeUpstream,
    RecordedRequest,
    Reply,
    auto_reply,
    openai_usage,
)
from costwarden.tokens import count_message_tokens

MODEL = "gpt-4o-mini"


def honest_reply(request: RecordedRequest) -> Reply:
    """Like a real provider: prompt tokens as counted, output within max_tokens."""
    body = request.json()
    if body.get("stream") or not request.path.endswith("/chat/completions"):
        return auto_reply(request)
    prompt = count_message_tokens(body["messages"], body["model"]).tokens
    out = body.get("max_tokens") or 16
    return Reply.openai_chat("w " * out, usage=openai_usage(prompt, out), model=body["model"])


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    """Overrides conftest's: replies whose usage is the prompt's real token count."""
    with FakeUpstream(handler=honest_reply) as up:
        yield up


def small_budget(tmp_path: Path, calls: int) -> tuple[BudgetManager, int]:
    """A SQLite-backed manager whose daily limit fits about ``calls`` calls (and its limit)."""
    m = BudgetManager(ledger=f"sqlite:///{tmp_path / 'spend.db'}")
    probe = TrackedLLMClient(m, provider="simulated")
    cost = probe.complete("probe", model=MODEL, max_tokens=50).estimate.cost_nanos
    limit = cost * calls + cost // 2
    tight = BudgetManager(
        Budget(daily_limit=limit / 1e9, monthly_limit=None, per_request_limit=None),
        ledger=f"sqlite:///{tmp_path / 'tight.db'}",
    )
    return tight, limit


def test_many_threads_never_overspend_one_small_budget(up: FakeUpstream, tmp_path: Path) -> None:
    m, limit = small_budget(tmp_path, calls=15)
    provider = OpenAIProvider(base_url=up.openai_base_url, api_key="t", timeout=10)
    client = TrackedLLMClient(m, providers=[provider])
    outcomes: list[str] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        for j in range(4):
            try:
                client.chat(f"probe {i} {j}"[:5], model=MODEL, max_tokens=50)
                result = "ok"
            except BudgetExceededError:
                result = "denied"
            with lock:
                outcomes.append(result)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    client.close()
    records = m.records()
    spent = sum(r.cost_nanos for r in records)
    assert spent <= limit, f"overspent: {spent} > {limit}"
    assert outcomes.count("ok") == len(records) == len(up.requests)
    assert 10 <= outcomes.count("ok") <= 15 and outcomes.count("denied") > 0
    assert m.get_status()["daily_reserved"] == 0


def test_many_tasks_never_overspend_one_small_budget(up: FakeUpstream, tmp_path: Path) -> None:
    m, limit = small_budget(tmp_path, calls=12)
    provider = OpenAIProvider(base_url=up.openai_base_url, api_key="t", timeout=10)
    client = AsyncTrackedLLMClient(m, providers=[provider])

    async def one() -> str:
        try:
            await client.chat("probe", model=MODEL, max_tokens=50)
        except BudgetExceededError:
            return "denied"
        return "ok"

    async def run() -> list[str]:
        async with client:
            return list(await asyncio.gather(*(one() for _ in range(60))))

    outcomes = asyncio.run(run())
    spent = sum(r.cost_nanos for r in m.records())
    assert spent <= limit
    assert outcomes.count("ok") == len(m.records()) == len(up.requests) == 12
    assert m.get_status()["daily_reserved"] == 0


def test_wrapped_client_threads_never_overspend(up: FakeUpstream, tmp_path: Path) -> None:
    m, limit = small_budget(tmp_path, calls=10)
    raw = openai.OpenAI(base_url=up.openai_base_url, api_key="t", max_retries=0)
    client = wrap(raw, manager=m, provider="openai")
    denied = []

    def worker() -> None:
        for _ in range(3):
            try:
                client.chat.completions.create(
                    model=MODEL, messages=[{"role": "user", "content": "probe"}], max_tokens=50
                )
            except BudgetExceededError:
                denied.append(1)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    raw.close()
    assert sum(r.cost_nanos for r in m.records()) <= limit
    assert len(m.records()) == 10 and len(denied) == 14


# -- async client behaviour ---------------------------------------------------------------------


def test_async_chat_stream_and_failure(up: FakeUpstream) -> None:
    m = BudgetManager(Budget(daily_limit=1.0, monthly_limit=None))
    provider = OpenAIProvider(base_url=up.openai_base_url, api_key="t", timeout=5)
    client = AsyncTrackedLLMClient(m, providers=[provider], user="u1")

    async def run() -> tuple[str, str]:
        text = await client.chat("Hello", model=MODEL, max_tokens=5)
        up.enqueue(Reply.openai_chat_stream(["a", "b"], usage=openai_usage(4, 2)))
        stream = await client.chat_stream("Hello", model=MODEL, max_tokens=5)
        streamed = "".join([piece async for piece in stream])
        up.enqueue(Reply.error(502))
        with pytest.raises(openai.APIStatusError):
            await client.chat("Hello", model=MODEL, max_tokens=5)
        up.enqueue(Reply.openai_chat_stream(["a", "b", "c"], usage=openai_usage(4, 3)))
        async with await client.chat_stream("Hello", model=MODEL, max_tokens=5) as s:
            async for _ in s:
                break
        await client.aclose()
        return text, streamed

    text, streamed = asyncio.run(run())
    assert text and streamed == "ab"
    statuses = [(r.status, r.user_id) for r in m.records()]
    assert statuses == [("ok", "u1"), ("ok", "u1"), ("error:502", "u1"), ("aborted", "u1")]
    assert m.get_status()["daily_reserved"] == 0


def test_async_simulated_provider_matches_sync() -> None:
    m = BudgetManager(Budget(daily_limit=1.0, monthly_limit=None))
    sync_text = TrackedLLMClient(m, provider="simulated").chat("Hi", model=MODEL, max_tokens=20)

    async def run() -> str:
        client = AsyncTrackedLLMClient(m, provider="simulated")
        stream = await client.chat_stream("Hi", model=MODEL, max_tokens=20)
        return "".join([p async for p in stream])

    assert asyncio.run(run()) == sync_text
    a, b = m.records()
    assert a.cost_nanos == b.cost_nanos > 0
