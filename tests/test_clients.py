"""TrackedLLMClient: admission before the call, model choice, recording, attribution, input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costwarden.budget import Budget
from costwarden.clients import (
    OpenAIProvider,
    ProviderRegistry,
    SimulatedProvider,
    TrackedLLMClient,
)
from costwarden.errors import (
    BudgetExceededError,
    ConfigurationError,
    InvalidInputError,
    UnknownModelError,
)
from costwarden.manager import BudgetManager
from costwarden.optimizer import CostOptimizer
from costwarden.records import Usage
from costwarden.testing.fake_upstream import FakeUpstream, Reply, openai_usage
from costwarden.tokens import count_tokens
from tests.helpers import close_after_test

HELLO = [{"role": "user", "content": "Hello, how are you today?"}]


def manager(daily: float | None = 10.0, per_request: float | None = 0.5) -> BudgetManager:
    return BudgetManager(
        Budget(daily_limit=daily, monthly_limit=None, per_request_limit=per_request)
    )


def openai_client(m: BudgetManager, up: FakeUpstream, **kw: object) -> TrackedLLMClient:
    provider = OpenAIProvider(base_url=up.openai_base_url, api_key="test")
    return close_after_test(TrackedLLMClient(m, providers=[provider], **kw))  # type: ignore[arg-type]


def test_chat_returns_text_and_records_the_reported_usage(up: FakeUpstream) -> None:
    m = manager()
    client = openai_client(m, up, user="alice", team="core", endpoint="search", tags=["beta"])
    up.enqueue(Reply.openai_chat("Fine, thanks!", usage=openai_usage(21, 4)))
    assert client.chat(HELLO, model="gpt-4o-mini", max_tokens=64) == "Fine, thanks!"
    (rec,) = m.records()
    assert (rec.model, rec.provider, rec.input_tokens, rec.output_tokens) == (
        "gpt-4o-mini",
        "openai",
        21,
        4,
    )
    assert rec.cost_nanos == m.pricing.cost_nanos("gpt-4o-mini", Usage(21, 4))
    assert (rec.user_id, rec.team, rec.endpoint, rec.tags) == ("alice", "core", "search", ("beta",))
    assert rec.status == "ok" and not rec.estimated
    assert rec.request_id == "chatcmpl-fake0001"
    assert rec.latency_ms is not None and rec.latency_ms > 0
    assert m.get_status()["daily_reserved"] == 0
    sent = up.requests[-1].json()
    assert sent["max_tokens"] == 64 and sent["model"] == "gpt-4o-mini"


def test_over_budget_raises_before_any_provider_call(up: FakeUpstream) -> None:
    m = manager(daily=0.0001)
    client = openai_client(m, up)
    with pytest.raises(BudgetExceededError) as info:
        client.chat(HELLO, model="gpt-4o", max_tokens=4000)  # 4000 * $10/M = $0.04
    assert info.value.scope == "global" and info.value.period == "daily"
    assert up.requests == []
    assert m.records() == []
    assert m.get_status()["daily_reserved"] == 0


def test_per_request_limit_is_checked_against_the_output_bound(up: FakeUpstream) -> None:
    m = manager(per_request=0.001)
    client = openai_client(m, up)
    with pytest.raises(BudgetExceededError) as info:
        client.chat(HELLO, model="gpt-4o", max_tokens=1000)  # $0.01 of output alone
    assert info.value.period == "per_request"
    assert up.requests == []
    client.chat(HELLO, model="gpt-4o", max_tokens=50)  # $0.0005 fits
    assert len(up.requests) == 1


def test_per_call_attribution_overrides_and_user_budget_applies(up: FakeUpstream) -> None:
    m = manager()
    m.set_budget(Budget(daily_limit=0.00001, monthly_limit=None), user="bob")
    client = openai_client(m, up, user="alice")
    client.chat(HELLO, model="gpt-4o-mini", max_tokens=5, request_id="r-1", user="carol")
    with pytest.raises(BudgetExceededError) as info:
        client.chat(HELLO, model="gpt-4o-mini", max_tokens=500, user="bob")
    assert info.value.scope == "user:bob"
    (rec,) = m.records()
    assert rec.user_id == "carol" and rec.request_id == "r-1"


def test_max_cost_refuses_without_downgrade_and_downgrades_when_allowed(up: FakeUpstream) -> None:
    m = manager()
    client = openai_client(m, up, provider=None)
    with pytest.raises(BudgetExceededError) as info:
        client.chat(HELLO, model="gpt-4o", max_cost=0.001, max_tokens=1000)
    assert info.value.period == "max_cost" and info.value.limit == 0.001
    assert up.requests == []

    optimizer = CostOptimizer(m.pricing)
    cheap = openai_client(m, up, allow_downgrade=True)
    cheap.optimizer = optimizer
    result = cheap.complete(HELLO, model="gpt-4o", max_cost=0.001, max_tokens=1000)
    assert result.estimate.cost_nanos <= 1_000_000
    assert result.model != "gpt-4o"
    assert up.requests[-1].json()["model"] == result.estimate.model


def test_no_model_uses_the_optimizer_choice() -> None:
    m = manager()
    optimizer = CostOptimizer(m.pricing)
    client = TrackedLLMClient(m, optimizer, provider="simulated")
    result = client.complete(HELLO, max_tokens=100)
    expected = optimizer.select_model("chat", input_text=HELLO, output_tokens=100)
    assert result.model == expected
    assert m.records()[0].model == expected


def test_no_model_and_no_optimizer_is_a_clear_error() -> None:
    client = TrackedLLMClient(manager(), provider="simulated")
    with pytest.raises(InvalidInputError, match="optimizer"):
        client.chat(HELLO)


def test_unknown_model_is_an_error_before_the_call(up: FakeUpstream) -> None:
    m = manager()
    client = openai_client(m, up, provider="openai")
    with pytest.raises(UnknownModelError):
        client.chat(HELLO, model="my-private-model-v9")
    assert up.requests == [] and m.records() == []


def test_free_local_provider_is_admitted_with_an_exhausted_budget(up: FakeUpstream) -> None:
    m = manager(daily=0.0)
    local = OpenAIProvider(name="ollama", base_url=up.openai_base_url, free=True)
    client = close_after_test(TrackedLLMClient(m, provider=local))
    up.enqueue(Reply.openai_chat("local answer", usage=openai_usage(10, 3)))
    assert client.chat(HELLO, model="llama3.2:1b") == "local answer"
    (rec,) = m.records()
    assert rec.cost_nanos == 0 and rec.provider == "ollama" and rec.input_tokens == 10


@pytest.mark.parametrize(
    ("messages", "kw"),
    [
        ([], {}),
        ("", {}),
        ([{"content": "no role"}], {}),
        (HELLO, {"max_tokens": 0}),
        (HELLO, {"max_tokens": 2.5}),
        (HELLO, {"max_cost": -1.0}),
        (HELLO, {"max_cost": float("nan")}),
        (HELLO, {"user": ""}),
        (HELLO, {"tags": [""]}),
    ],
)
def test_bad_input_is_a_typed_error_and_changes_nothing(
    up: FakeUpstream, messages: object, kw: dict[str, object]
) -> None:
    m = manager()
    client = openai_client(m, up)
    with pytest.raises(InvalidInputError):
        client.chat(messages, model="gpt-4o-mini", **kw)  # type: ignore[arg-type]
    assert up.requests == [] and m.records() == []
    assert m.get_status()["daily_reserved"] == 0


def test_simulated_provider_is_deterministic_and_realistic() -> None:
    m = manager()
    client = TrackedLLMClient(m, provider="simulated")
    a = client.complete(HELLO, model="gpt-4o-mini", max_tokens=30)
    b = client.complete(HELLO, model="gpt-4o-mini", max_tokens=30)
    assert a.text == b.text and a.text
    assert 0 < a.usage.output_tokens <= 30
    assert a.usage.input_tokens == a.estimate.input_tokens
    assert a.record.cost_nanos == m.pricing.cost_nanos("gpt-4o-mini", a.usage)
    assert a.record.provider == "simulated"


def test_simulated_stream_yields_the_same_text_and_records_once() -> None:
    m = manager()
    client = TrackedLLMClient(m, provider="simulated")
    whole = client.chat(HELLO, model="claude-3-haiku-20240307", max_tokens=40)
    stream = client.chat_stream(HELLO, model="claude-3-haiku-20240307", max_tokens=40)
    assert "".join(stream) == whole
    assert stream.record is not None and stream.record.status == "ok"
    assert len(m.records()) == 2


def test_provider_resolution_order() -> None:
    reg = ProviderRegistry([SimulatedProvider(name="lab")])
    assert reg.resolve("claude-3-haiku-20240307")[0].name == "anthropic"
    assert reg.resolve("gpt-4o-mini")[0].name == "openai"
    assert reg.resolve("o3-mini")[0].name == "openai"
    provider, model = reg.resolve("lab/whatever-model")
    assert (provider.name, model) == ("lab", "whatever-model")
    provider, model = reg.resolve("groq/llama-3.1-8b-instant")
    assert (provider.name, model) == ("groq", "llama-3.1-8b-instant")
    assert reg.resolve("gpt-4o", provider="lab")[0].name == "lab"
    with pytest.raises(ConfigurationError, match="provider"):
        reg.resolve("mystery-model-7b")
    assert ProviderRegistry(default="simulated").resolve("mystery-model-7b")[0].name == "simulated"
    with pytest.raises(ConfigurationError):
        reg.resolve("gpt-4o", provider="nonesuch")


@settings(max_examples=40, deadline=None)
@given(max_tokens=st.integers(1, 60), keep=st.integers(0, 70), prompt=st.text(min_size=1))
def test_a_stream_is_settled_once_and_never_free_wherever_it_stops(
    max_tokens: int, keep: int, prompt: str
) -> None:
    m = manager(daily=None, per_request=None)
    client = TrackedLLMClient(m, provider="simulated")
    stream = client.chat_stream(prompt, model="gpt-4o-mini", max_tokens=max_tokens)
    received: list[str] = []
    if keep:
        for piece in stream:
            received.append(piece)
            if len(received) == keep:
                break
    stream.close()
    (rec,) = m.records()
    assert m.get_status()["daily_reserved"] == 0
    assert rec.cost_nanos > 0  # the prompt was processed, whatever happened next
    assert stream.record == rec
    if rec.status == "ok":
        assert not rec.estimated and rec.output_tokens <= max_tokens
    else:
        assert rec.status == "aborted" and rec.estimated
        assert rec.output_tokens == count_tokens("".join(received), "gpt-4o-mini").tokens


def test_fake_upstream_routes_queued_replies_by_path(up: FakeUpstream) -> None:
    import openai

    sdk = openai.OpenAI(base_url=up.openai_base_url, api_key="t", max_retries=0)
    client = close_after_test(sdk)
    up.enqueue(Reply.responses("from the responses queue", usage=None), path="/responses")
    up.enqueue(Reply.openai_chat("from the shared queue", usage=openai_usage(1, 1)))
    chat = client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    resp = client.responses.create(model="gpt-4o-mini", input="x")
    assert chat.choices[0].message.content == "from the shared queue"
    assert resp.output_text == "from the responses queue"
    assert up.pending == 0
    assert [r.path for r in up.requests] == ["/v1/chat/completions", "/v1/responses"]
    auto = client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, max_tokens=3)
    assert auto.usage is not None and auto.usage.completion_tokens == 3
