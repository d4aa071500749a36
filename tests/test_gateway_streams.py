"""Streams and failures through the gateway: a client that leaves mid-stream, an upstream
that cuts its stream, stalls past its timeout or answers 5xx (with and without a fallback)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from costwarden import BudgetManager
from costwarden.gateway import Gateway
from costwarden.keys import create_key
from costwarden.testing.fake_upstream import FakeUpstream, Reply, openai_usage
from tests.gateway_server import running_gateway
from tests.helpers import close_after_test
from tests.test_gateway import ENV, MSG, NO_LIMITS, _settings


@pytest.fixture
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream() as server:
        yield server


@pytest.fixture
def manager(tmp_path: Any) -> Iterator[BudgetManager]:
    m = BudgetManager(NO_LIMITS, ledger=f"sqlite:///{tmp_path}/gw.db")
    yield m
    m.close()


def _gateway(up: FakeUpstream, manager: BudgetManager, **extra: Any) -> Any:
    settings = _settings(up, **extra)
    return running_gateway(Gateway(manager, settings, environ=ENV))


def _wait_records(manager: BudgetManager, n: int, timeout: float = 5.0) -> list[Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        records = manager.records()
        if len(records) >= n:
            return records
        time.sleep(0.02)
    return manager.records()


def test_client_disconnect_mid_stream_charges_what_was_produced(
    up: FakeUpstream, manager: BudgetManager
) -> None:
    words = [f" word{i}" for i in range(200)]
    up.enqueue(Reply.openai_chat_stream(words, usage=openai_usage(10, 200), chunk_delay=0.01))
    with _gateway(up, manager) as gw:
        _, secret = create_key(manager.ledger)
        client = close_after_test(
            openai.OpenAI(base_url=gw.openai_base_url, api_key=secret, max_retries=0)
        )
        stream = client.chat.completions.create(
            model="gpt-4o-mini", messages=MSG, max_tokens=400, stream=True
        )
        for seen, _chunk in enumerate(stream, start=1):
            if seen == 20:
                break
        stream.close()  # the client leaves
        (record,) = _wait_records(manager, 1)
    assert record.status == "aborted" and record.estimated
    assert 0 < record.output_tokens < 200 and record.cost_usd > 0  # never $0
    assert manager.ledger.live_holds(1e12) == 0


def test_upstream_cut_stream_is_charged_and_reported_in_band(
    up: FakeUpstream, manager: BudgetManager
) -> None:
    words = [f" w{i}" for i in range(30)]
    up.enqueue(Reply.openai_chat_stream(words, usage=openai_usage(10, 30), reset_after=12))
    with _gateway(up, manager) as gw:
        _, secret = create_key(manager.ledger)
        client = close_after_test(
            openai.OpenAI(base_url=gw.openai_base_url, api_key=secret, max_retries=0)
        )
        got = []
        with pytest.raises(openai.APIError, match="cut"):
            for chunk in client.chat.completions.create(
                model="gpt-4o-mini", messages=MSG, max_tokens=50, stream=True
            ):
                got.append(chunk)
        (record,) = _wait_records(manager, 1)
    assert got and record.status == "partial" and record.estimated
    assert 0 < record.output_tokens < 30 and record.cost_usd > 0


def test_stream_without_reported_usage_is_charged_from_the_bytes(
    up: FakeUpstream, manager: BudgetManager
) -> None:
    up.enqueue(Reply.openai_chat_stream([" a", " b", " c"], usage=None))  # ignores include_usage
    with _gateway(up, manager) as gw:
        _, secret = create_key(manager.ledger)
        client = close_after_test(
            openai.OpenAI(base_url=gw.openai_base_url, api_key=secret, max_retries=0)
        )
        list(
            client.chat.completions.create(
                model="gpt-4o-mini", messages=MSG, max_tokens=9, stream=True
            )
        )
        (record,) = _wait_records(manager, 1)
    assert record.estimated and record.output_tokens == 3 and record.cost_usd > 0


def test_upstream_timeout_is_504_and_releases_the_hold(
    up: FakeUpstream, manager: BudgetManager
) -> None:
    up.enqueue(Reply.openai_chat("late", usage=openai_usage(1, 1), delay=2.0))
    settings_extra = {"top": {}}
    settings = _settings(up, **settings_extra)
    slow = dict(settings.upstreams)
    from dataclasses import replace

    slow["openai"] = replace(slow["openai"], timeout=0.3)
    settings = replace(settings, upstreams=slow)
    with running_gateway(Gateway(manager, settings, environ=ENV)) as gw:
        _, secret = create_key(manager.ledger)
        client = close_after_test(
            openai.OpenAI(base_url=gw.openai_base_url, api_key=secret, max_retries=0)
        )
        started = time.monotonic()
        with pytest.raises(openai.APIStatusError) as err:
            client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)
        assert err.value.status_code == 504 and time.monotonic() - started < 1.9
    assert manager.ledger.live_holds(1e12) == 0
    assert [r.cost_usd for r in manager.records()] == [0.0]


def test_fallback_model_on_5xx(up: FakeUpstream, manager: BudgetManager) -> None:
    up.enqueue(Reply.error(503, "overloaded"))
    with _gateway(up, manager, gpt={"fallback": "gpt-4o-mini"}) as gw:
        _, secret = create_key(manager.ledger)
        client = close_after_test(
            openai.OpenAI(base_url=gw.openai_base_url, api_key=secret, max_retries=0)
        )
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-4o", messages=MSG, max_tokens=5
        )
        assert raw.headers["x-costwarden-fallback"] == "gpt-4o -> gpt-4o-mini"
        assert [r.json()["model"] for r in up.requests] == ["gpt-4o", "gpt-4o-mini"]
    records = manager.records()
    assert [(r.model, r.cost_usd > 0) for r in records] == [
        ("gpt-4o", False),
        ("gpt-4o-mini", True),
    ]


def test_upstream_unreachable_is_502(manager: BudgetManager) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    from costwarden.gateway import parse_gateway

    settings = parse_gateway(
        {"upstreams": {"openai": {"kind": "openai", "base_url": f"http://127.0.0.1:{port}/v1"}}}
    )
    with running_gateway(Gateway(manager, settings, environ=ENV)) as gw:
        _, secret = create_key(manager.ledger)
        client = close_after_test(
            openai.OpenAI(base_url=gw.openai_base_url, api_key=secret, max_retries=0)
        )
        with pytest.raises(openai.APIStatusError) as err:
            client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)
        assert err.value.status_code == 502
    assert manager.ledger.live_holds(1e12) == 0


def test_graceful_shutdown_settles_a_stream_in_flight(
    up: FakeUpstream, manager: BudgetManager
) -> None:
    import threading

    words = [f" x{i}" for i in range(400)]
    up.enqueue(Reply.openai_chat_stream(words, usage=openai_usage(10, 400), chunk_delay=0.02))
    seen: list[Any] = []
    with _gateway(up, manager) as gw:
        _, secret = create_key(manager.ledger)
        client = close_after_test(
            openai.OpenAI(base_url=gw.openai_base_url, api_key=secret, max_retries=0)
        )

        def read() -> None:
            try:
                for chunk in client.chat.completions.create(
                    model="gpt-4o-mini", messages=MSG, max_tokens=500, stream=True
                ):
                    seen.append(chunk)
            except Exception:
                pass

        reader = threading.Thread(target=read)
        reader.start()
        while len(seen) < 5:
            time.sleep(0.01)
        # leaving the block shuts the server down while the stream is running
    reader.join(20)
    (record,) = manager.records()
    assert record.cost_usd > 0 and record.output_tokens > 0
    assert manager.ledger.live_holds(1e12) == 0
