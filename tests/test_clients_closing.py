"""Closing a tracked client closes the SDK clients its providers built, and only those.

The providers build their SDK clients lazily; they (and their pooled loopback connections) are
the tracked client's, so ``close()``/``aclose()`` and the context managers close them. An SDK
client the caller passed in is the caller's and stays open. The fake upstream counts the
connections still open on its side, so a client that only forgot its sockets (leaving them to
the garbage collector) is caught as well as one whose ``is_closed()`` is wrong.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import anthropic
import openai
import pytest

from costwarden.budget import Budget
from costwarden.clients import (
    AnthropicProvider,
    AsyncTrackedLLMClient,
    OpenAIProvider,
    TrackedLLMClient,
)
from costwarden.manager import BudgetManager
from costwarden.testing.fake_upstream import FakeUpstream

GPT = "gpt-4o-mini"
HAIKU = "claude-3-haiku-20240307"


@pytest.fixture
def m() -> Iterator[BudgetManager]:
    manager = BudgetManager(Budget(daily_limit=5.0, monthly_limit=None, per_request_limit=None))
    yield manager
    manager.close()


def providers(up: FakeUpstream) -> tuple[OpenAIProvider, AnthropicProvider]:
    return (
        OpenAIProvider(base_url=up.openai_base_url, api_key="t", timeout=5),
        AnthropicProvider(base_url=up.anthropic_base_url, api_key="t", timeout=5),
    )


def wait_for_no_connections(up: FakeUpstream, timeout: float = 5.0) -> None:
    """The server sees a closed client's connections end (a FIN reaches it at once)."""
    deadline = time.monotonic() + timeout
    while up.connections:
        assert time.monotonic() < deadline, f"{up.connections} connections still open"
        time.sleep(0.01)


def test_close_closes_the_sdk_clients_the_providers_built(
    up: FakeUpstream, m: BudgetManager
) -> None:
    gpt, claude = providers(up)
    client = TrackedLLMClient(m, providers=[gpt, claude])
    client.chat("Hi", model=GPT, max_tokens=5)
    client.chat("Hi", model=HAIKU, max_tokens=5)
    built = (gpt.client, claude.client)
    assert up.connections == 2  # kept alive in the SDKs' pools
    client.close()
    assert all(sdk.is_closed() for sdk in built)
    wait_for_no_connections(up)
    client.close()  # twice is harmless


def test_a_closed_client_opens_new_connections_on_its_next_call(
    up: FakeUpstream, m: BudgetManager
) -> None:
    gpt, _ = providers(up)
    with TrackedLLMClient(m, providers=[gpt]) as client:
        client.chat("Hi", model=GPT, max_tokens=5)
        first = gpt.client
    assert first.is_closed()
    with client:
        assert client.chat("Again", model=GPT, max_tokens=5)
        assert gpt.client is not first and not gpt.client.is_closed()
    wait_for_no_connections(up)
    assert [r.status for r in m.records()] == ["ok", "ok"]


def test_the_with_block_closes_on_an_error_too(up: FakeUpstream, m: BudgetManager) -> None:
    gpt, _ = providers(up)
    with (
        pytest.raises(RuntimeError, match="the caller's own"),
        TrackedLLMClient(m, providers=[gpt]) as client,
    ):
        client.chat("Hi", model=GPT, max_tokens=5)
        built = gpt.client
        raise RuntimeError("the caller's own error")
    assert built.is_closed()


def test_an_sdk_client_passed_in_stays_open(up: FakeUpstream, m: BudgetManager) -> None:
    mine = openai.OpenAI(base_url=up.openai_base_url, api_key="t", max_retries=0)
    theirs = anthropic.Anthropic(base_url=up.anthropic_base_url, api_key="t", max_retries=0)
    try:
        with TrackedLLMClient(
            m, providers=[OpenAIProvider(client=mine), AnthropicProvider(client=theirs)]
        ) as client:
            client.chat("Hi", model=GPT, max_tokens=5)
            client.chat("Hi", model=HAIKU, max_tokens=5)
        assert not mine.is_closed() and not theirs.is_closed()
        # still usable by its owner, on the same pooled connection
        mine.chat.completions.create(
            model=GPT, messages=[{"role": "user", "content": "Hi"}], max_tokens=5
        )
        assert up.connections == 2
    finally:
        mine.close()
        theirs.close()
    wait_for_no_connections(up)


def test_the_async_client_closes_its_async_sdk_clients_on_its_loop(
    up: FakeUpstream, m: BudgetManager
) -> None:
    gpt, claude = providers(up)

    async def run() -> tuple[object, object]:
        async with AsyncTrackedLLMClient(m, providers=[gpt, claude]) as client:
            await client.chat("Hi", model=GPT, max_tokens=5)
            stream = await client.chat_stream("Hi", model=HAIKU, max_tokens=5)
            assert [piece async for piece in stream]
            built = (gpt.async_client, claude.async_client)
            assert up.connections == 2
        assert all(sdk.is_closed() for sdk in built)  # type: ignore[attr-defined]
        return built

    asyncio.run(run())
    wait_for_no_connections(up)
    assert [r.status for r in m.records()] == ["ok", "ok"]


def test_aclose_leaves_an_async_sdk_client_passed_in_open(
    up: FakeUpstream, m: BudgetManager
) -> None:
    async def run() -> None:
        mine = openai.AsyncOpenAI(base_url=up.openai_base_url, api_key="t", max_retries=0)
        client = AsyncTrackedLLMClient(m, providers=[OpenAIProvider(async_client=mine)])
        await client.chat("Hi", model=GPT, max_tokens=5)
        await client.aclose()
        assert not mine.is_closed()
        await mine.close()

    asyncio.run(run())
    wait_for_no_connections(up)


def test_close_of_a_sync_client_leaves_a_shared_providers_async_sdk_client_to_aclose(
    up: FakeUpstream, m: BudgetManager
) -> None:
    """One provider serving a sync and an async tracked client: the sync ``close()`` cannot
    close async connections (they belong to their loop), ``aclose()`` on that loop does."""
    gpt, _ = providers(up)
    sync = TrackedLLMClient(m, providers=[gpt])

    async def run() -> None:
        async_client = AsyncTrackedLLMClient(m, providers=[gpt])
        await async_client.chat("Hi", model=GPT, max_tokens=5)
        sync.chat("Hi", model=GPT, max_tokens=5)
        built = gpt.async_client
        sync.close()
        assert not built.is_closed()
        await async_client.aclose()
        assert built.is_closed()

    asyncio.run(run())
    wait_for_no_connections(up)
