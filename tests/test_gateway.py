"""The gateway end to end: a real uvicorn server on 127.0.0.1, the real openai and anthropic
SDKs as clients, the fake upstream (a real HTTP server) or the simulated provider behind it."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from costwarden import Budget, BudgetManager
from costwarden.gateway import Gateway, parse_gateway
from costwarden.keys import create_key, revoke_key
from costwarden.testing.fake_upstream import FakeUpstream, Reply
from tests.gateway_server import RunningGateway, running_gateway
from tests.helpers import close_after_test

NO_LIMITS = Budget(daily_limit=None, monthly_limit=None, per_request_limit=None)


def _settings(up: FakeUpstream, **extra: Any) -> Any:
    return parse_gateway(
        {
            "upstreams": {
                "openai": {"kind": "openai", "base_url": up.openai_base_url},
                "anthropic": {"kind": "anthropic", "base_url": up.anthropic_base_url},
                "sim": {"kind": "simulated"},
            },
            "models": {
                "gpt-*": {"upstream": "openai", **extra.get("gpt", {})},
                "text-embedding-3-small": "openai",
                "claude-*": "anthropic",
                "sim-*": {"upstream": "sim", "free": True},
            },
            **extra.get("top", {}),
        }
    )


ENV = {"OPENAI_API_KEY": "sk-upstream-openai-SECRET", "ANTHROPIC_API_KEY": "sk-ant-upstream-SECRET"}


@pytest.fixture
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream() as server:
        yield server


@pytest.fixture
def manager(tmp_path: Any) -> Iterator[BudgetManager]:
    m = BudgetManager(NO_LIMITS, ledger=f"sqlite:///{tmp_path}/gw.db")
    yield m
    m.close()


@pytest.fixture
def gateway(up: FakeUpstream, manager: BudgetManager) -> Iterator[RunningGateway]:
    with running_gateway(Gateway(manager, _settings(up), environ=ENV)) as gw:
        yield gw


def _clients(gw: RunningGateway, secret: str) -> tuple[openai.OpenAI, anthropic.Anthropic]:
    return (
        close_after_test(openai.OpenAI(base_url=gw.openai_base_url, api_key=secret, max_retries=0)),
        close_after_test(anthropic.Anthropic(base_url=gw.url, api_key=secret, max_retries=0)),
    )


def _wait_records(manager: BudgetManager, n: int, timeout: float = 5.0) -> list[Any]:
    """The records once there are ``n`` (a stream settles after its last byte is sent)."""
    deadline = time.monotonic() + timeout
    while len(records := manager.records()) < n and time.monotonic() < deadline:
        time.sleep(0.02)
    return records


def _spent(manager: BudgetManager, key_id: str) -> float:
    return float(manager.get_status(key=key_id)["daily_spent"])


MSG = [{"role": "user", "content": "What is a budget?"}]


def test_openai_chat_through_the_gateway_is_charged_to_the_key(
    gateway: RunningGateway, manager: BudgetManager, up: FakeUpstream
) -> None:
    key, secret = create_key(manager.ledger, user="alice", team="eng")
    oai, _ = _clients(gateway, secret)
    reply = oai.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=16)
    assert reply.choices[0].message.content
    sent = up.requests[-1]
    # the provider key went upstream; the virtual key did not
    assert sent.headers["authorization"] == "Bearer sk-upstream-openai-SECRET"
    assert secret not in json.dumps(dict(sent.headers))
    records = manager.records()
    assert len(records) == 1
    r = records[0]
    assert (r.key, r.user_id, r.team, r.model) == (key.key_id, "alice", "eng", "gpt-4o-mini")
    assert r.input_tokens == reply.usage.prompt_tokens and not r.estimated
    assert _spent(manager, key.key_id) == pytest.approx(r.cost_usd) and r.cost_usd > 0
    assert manager.ledger.live_holds(1e12) == 0


def test_openai_stream_passes_chunks_and_strips_the_usage_it_asked_for(
    gateway: RunningGateway, manager: BudgetManager, up: FakeUpstream
) -> None:
    _, secret = create_key(manager.ledger)
    oai, _ = _clients(gateway, secret)
    chunks = list(
        oai.chat.completions.create(model="gpt-4o", messages=MSG, max_tokens=8, stream=True)
    )
    assert up.requests[-1].json()["stream_options"] == {"include_usage": True}
    assert all(c.usage is None for c in chunks)  # the client did not ask: the chunk is gone
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    (record,) = _wait_records(manager, 1)  # a stream's hold settles just after its last byte
    assert record.output_tokens == 8 and not record.estimated and record.status == "ok"
    # asked for: passed through as the upstream sent it
    chunks = list(
        oai.chat.completions.create(
            model="gpt-4o",
            messages=MSG,
            max_tokens=8,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 8


def test_anthropic_messages_stream_and_count_tokens(
    gateway: RunningGateway, manager: BudgetManager, up: FakeUpstream
) -> None:
    _, secret = create_key(manager.ledger)
    _, ant = _clients(gateway, secret)
    msg = ant.messages.create(model="claude-3-5-haiku-latest", max_tokens=10, messages=MSG)
    assert up.requests[-1].headers["x-api-key"] == "sk-ant-upstream-SECRET"
    assert up.requests[-1].headers["anthropic-version"]
    with ant.messages.stream(model="claude-3-5-haiku-latest", max_tokens=10, messages=MSG) as s:
        text = "".join(s.text_stream)
    assert text and msg.content[0].text
    counted = ant.messages.count_tokens(model="claude-3-5-haiku-latest", messages=MSG)
    assert counted.input_tokens > 0
    records = _wait_records(manager, 2)
    assert len(records) == 2  # count_tokens is exempt: no record, no hold
    assert {r.status for r in records} == {"ok"}
    assert all(r.input_tokens == msg.usage.input_tokens for r in records)


def test_responses_embeddings_and_models(gateway: RunningGateway, manager: BudgetManager) -> None:
    _, secret = create_key(manager.ledger, models=["gpt-4o-mini", "text-embedding-3-small"])
    oai, _ = _clients(gateway, secret)
    resp = oai.responses.create(model="gpt-4o-mini", input="hello", max_output_tokens=12)
    assert resp.output_text and resp.usage.output_tokens == 12
    events = list(
        oai.responses.create(model="gpt-4o-mini", input="hello", max_output_tokens=5, stream=True)
    )
    assert events[-1].type == "response.completed"
    emb = oai.embeddings.create(model="text-embedding-3-small", input=["a b c", "d"])
    assert len(emb.data) == 2
    assert sorted(m.id for m in oai.models.list()) == ["gpt-4o-mini", "text-embedding-3-small"]
    assert len(manager.records()) == 3
    with pytest.raises(openai.PermissionDeniedError, match="may not use model"):
        oai.chat.completions.create(model="gpt-4o", messages=MSG, max_tokens=5)


def test_budget_denials_are_429_in_each_format_and_free_models_stay_usable(
    gateway: RunningGateway, manager: BudgetManager
) -> None:
    key, secret = create_key(
        manager.ledger,
        budget=Budget(daily_limit=0.0001, monthly_limit=None, per_request_limit=None),
    )
    oai, ant = _clients(gateway, secret)
    with pytest.raises(openai.RateLimitError) as err:
        oai.chat.completions.create(model="gpt-4o", messages=MSG, max_tokens=4000)
    body = err.value.body
    assert isinstance(body, dict) and body["code"] == "budget_exceeded"
    assert body["budget"]["scope"] == f"key:{key.key_id}" and body["budget"]["period"] == "daily"
    assert body["budget"]["remaining_usd"] == pytest.approx(0.0001)
    assert body["budget"]["resets_at"]
    headers = err.value.response.headers
    assert int(headers["retry-after"]) > 0 and headers["x-should-retry"] == "false"
    with pytest.raises(anthropic.RateLimitError) as aerr:
        ant.messages.create(model="claude-3-5-sonnet-latest", max_tokens=4000, messages=MSG)
    abody = aerr.value.body
    assert isinstance(abody, dict) and abody["type"] == "error"
    assert (
        abody["error"]["type"] == "rate_limit_error"
        and abody["error"]["budget"]["period"] == "daily"
    )
    # a free (local) model is admitted whatever the budget says
    free = oai.chat.completions.create(model="sim-llama", messages=MSG, max_tokens=5)
    assert free.choices[0].message.content
    assert manager.records()[-1].cost_usd == 0.0
    assert manager.ledger.live_holds(1e12) == 0


def test_key_lifecycle_unknown_revoked_expired(
    gateway: RunningGateway, manager: BudgetManager
) -> None:
    key, secret = create_key(manager.ledger)
    oai, _ = _clients(gateway, secret)
    oai.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=3)
    revoke_key(manager.ledger, key.key_id)
    with pytest.raises(openai.AuthenticationError, match="revoked"):
        oai.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=3)
    bad, _ = _clients(gateway, "cw-not-a-key")
    with pytest.raises(openai.AuthenticationError, match="invalid virtual key"):
        bad.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=3)
    none = close_after_test(
        openai.OpenAI(base_url=gateway.openai_base_url, api_key="sk-provider-key", max_retries=0)
    )
    with pytest.raises(openai.AuthenticationError):
        none.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=3)
    assert len(manager.records()) == 1


def test_upstream_errors_pass_through_and_release_the_hold(
    gateway: RunningGateway, manager: BudgetManager, up: FakeUpstream
) -> None:
    key, secret = create_key(manager.ledger)
    oai, _ = _clients(gateway, secret)
    up.enqueue(Reply.error(400, "bad things in the request"))
    with pytest.raises(openai.BadRequestError, match="bad things"):
        oai.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=3)
    up.enqueue(Reply.error(500, "upstream broke"))
    with pytest.raises(openai.InternalServerError):
        oai.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=3)
    assert _spent(manager, key.key_id) == 0.0
    assert manager.ledger.live_holds(1e12) == 0
    assert [r.cost_usd for r in manager.records()] == [0.0, 0.0]


def test_health_ready_metrics(gateway: RunningGateway, manager: BudgetManager) -> None:
    for path in ("/health", "/ready"):
        with urllib.request.urlopen(gateway.url + path) as r:
            assert r.status == 200
    _, secret = create_key(manager.ledger)
    oai, _ = _clients(gateway, secret)
    oai.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=3)
    with urllib.request.urlopen(gateway.url + "/metrics") as r:
        text = r.read().decode()
    assert "costwarden_gateway_requests_total{" in text and 'route="chat",status="200"' in text
    assert "costwarden_gateway_holds_in_flight" in text
    assert "costwarden_gateway_upstream_latency_seconds_bucket" in text
    assert "costwarden_gateway_spend_usd_total" in text


def test_max_connections_bounds_the_pool_of_each_upstream(manager: BudgetManager) -> None:
    """Six concurrent requests to an upstream allowed two connections: never more than two
    sockets open to it, the others wait for a free one, and every request is answered."""
    import threading

    with FakeUpstream(latency=0.3) as slow:
        settings = parse_gateway(
            {
                "upstreams": {
                    "openai": {
                        "kind": "openai",
                        "base_url": slow.openai_base_url,
                        "max_connections": 2,
                    }
                },
                "models": {"gpt-*": "openai"},
            }
        )
        with running_gateway(Gateway(manager, settings, environ=ENV)) as gw:
            _, secret = create_key(manager.ledger)
            answered: list[str] = []
            peak = 0

            def one() -> None:
                oai = close_after_test(
                    openai.OpenAI(base_url=gw.openai_base_url, api_key=secret, max_retries=0)
                )
                reply = oai.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], max_tokens=3
                )
                answered.append(reply.id)

            threads = [threading.Thread(target=one) for _ in range(6)]
            started = time.monotonic()
            for t in threads:
                t.start()
            while any(t.is_alive() for t in threads):
                peak = max(peak, slow.connections)
                time.sleep(0.01)
            elapsed = time.monotonic() - started
    assert len(answered) == 6
    assert 1 <= peak <= 2
    assert elapsed >= 0.85  # three rounds of two at 0.3 s each, not one round of six


def test_request_size_limit_is_413(up: FakeUpstream, manager: BudgetManager) -> None:
    settings = _settings(up, top={"max_body_bytes": 2048})
    with running_gateway(Gateway(manager, settings, environ=ENV)) as gw:
        _, secret = create_key(manager.ledger)
        oai, _ = _clients(gw, secret)
        with pytest.raises(openai.APIStatusError) as err:
            oai.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": "x" * 5000}],
                max_tokens=3,
            )
        assert err.value.status_code == 413
    assert manager.records() == []
