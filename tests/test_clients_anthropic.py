"""Anthropic Messages through the real ``anthropic`` SDK and a fake upstream."""

from __future__ import annotations

import anthropic
import httpx2
import pytest

from costwarden.budget import Budget
from costwarden.clients import AnthropicProvider, TrackedLLMClient
from costwarden.manager import BudgetManager
from costwarden.records import StoredRecord, Usage
from costwarden.testing.fake_upstream import FakeUpstream, Reply, anthropic_usage
from costwarden.tokens import count_tokens
from tests.helpers import close_after_test

HAIKU = "claude-3-haiku-20240307"
HELLO = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hello there"},
]
PIECES = ["Hello", " there", "!"]


@pytest.fixture
def m() -> BudgetManager:
    return BudgetManager(Budget(daily_limit=5.0, monthly_limit=None, per_request_limit=None))


def client(m: BudgetManager, up: FakeUpstream, **kw: object) -> TrackedLLMClient:
    provider = AnthropicProvider(base_url=up.anthropic_base_url, api_key="test", timeout=5.0)
    return close_after_test(TrackedLLMClient(m, providers=[provider], **kw))  # type: ignore[arg-type]


def only(m: BudgetManager) -> StoredRecord:
    (rec,) = m.records()
    assert m.get_status()["daily_reserved"] == 0
    return rec


def test_request_shape_system_and_max_tokens(up: FakeUpstream, m: BudgetManager) -> None:
    up.enqueue(Reply.anthropic_message("Hi!", usage=anthropic_usage(12, 3)))
    assert client(m, up).chat(HELLO, model=HAIKU, max_tokens=32) == "Hi!"
    sent = up.requests[-1]
    assert sent.path == "/v1/messages"
    body = sent.json()
    assert body["system"] == "Be brief." and body["max_tokens"] == 32
    assert body["messages"] == [{"role": "user", "content": "Hello there"}]
    assert "anthropic-version" in sent.headers


def test_cache_reads_and_writes_are_added_into_input_and_priced(
    up: FakeUpstream, m: BudgetManager
) -> None:
    usage = anthropic_usage(504, 97, cache_read=1000, cache_write=123)
    up.enqueue(Reply.anthropic_message("ok", usage=usage))
    client(m, up).chat(HELLO, model=HAIKU, max_tokens=100)
    rec = only(m)
    assert (rec.input_tokens, rec.cache_read_tokens, rec.cache_write_tokens) == (1627, 1000, 123)
    # haiku: $0.25 in, $1.25 out, $0.03 cache read, $0.30 cache write per 1M tokens
    assert rec.cost_nanos == 504 * 250 + 1000 * 30 + 123 * 300 + 97 * 1250
    assert rec.cost_nanos == m.pricing.cost_nanos(HAIKU, Usage(1627, 97, 1000, 123))


def test_stream_usage_from_message_start_and_cumulative_delta(
    up: FakeUpstream, m: BudgetManager
) -> None:
    start = anthropic_usage(25, 1, cache_read=5, cache_write=10)
    delta = {"input_tokens": 40, "cache_creation_input_tokens": 12, "cache_read_input_tokens": 7}
    delta |= {"output_tokens": 8}
    up.enqueue(Reply.anthropic_stream(PIECES, start_usage=start, delta_usage=delta))
    stream = client(m, up).chat_stream(HELLO, model=HAIKU, max_tokens=64)
    assert "".join(stream) == "Hello there!"
    rec = only(m)
    assert (rec.input_tokens, rec.output_tokens) == (59, 8)
    assert (rec.cache_read_tokens, rec.cache_write_tokens) == (7, 12)
    assert rec.status == "ok" and not rec.estimated


def test_stream_delta_with_only_output_keeps_the_start_figures(
    up: FakeUpstream, m: BudgetManager
) -> None:
    start = anthropic_usage(25, 1, cache_read=5, cache_write=10)
    up.enqueue(Reply.anthropic_stream(PIECES, start_usage=start, delta_usage={"output_tokens": 8}))
    list(client(m, up).chat_stream(HELLO, model=HAIKU, max_tokens=64))
    rec = only(m)
    assert (rec.input_tokens, rec.output_tokens, rec.cache_read_tokens) == (40, 8, 5)


def test_thinking_is_billed_but_not_shown(up: FakeUpstream, m: BudgetManager) -> None:
    up.enqueue(
        Reply.anthropic_stream(
            PIECES,
            start_usage=anthropic_usage(20, 1),
            delta_usage={"output_tokens": 50, "output_tokens_details": {"thinking_tokens": 30}},
            thinking=["Let me think", " about it."],
        )
    )
    text = "".join(client(m, up).chat_stream(HELLO, model=HAIKU, max_tokens=64))
    assert text == "Hello there!"
    rec = only(m)
    assert (rec.output_tokens, rec.reasoning_tokens) == (50, 30)


def test_stream_cut_after_message_start_uses_its_input_and_counts_output(
    up: FakeUpstream, m: BudgetManager
) -> None:
    start = anthropic_usage(300, 1, cache_read=200)
    reply = Reply.anthropic_stream(
        PIECES, start_usage=start, delta_usage={"output_tokens": 3}, thinking=["Hmm, tricky."]
    )
    reply.reset_after = 8  # message_start, thinking block (3 frames), text start, ping, 2 deltas
    up.enqueue(reply)
    got = []
    # The anthropic SDK lets the transport error through mid-stream; it is passed on unchanged.
    with pytest.raises((anthropic.APIConnectionError, httpx2.ReadError)):
        got.extend(client(m, up).chat_stream(HELLO, model=HAIKU, max_tokens=64))
    assert got == PIECES[:2]
    rec = only(m)
    assert rec.status == "partial" and rec.estimated
    assert (rec.input_tokens, rec.cache_read_tokens) == (500, 200)
    counted = count_tokens("Hmm, tricky." + "".join(PIECES[:2]), HAIKU).tokens
    assert rec.output_tokens == counted


def test_overloaded_529_and_error_events(up: FakeUpstream, m: BudgetManager) -> None:
    up.enqueue(Reply.error(529, "Overloaded"))
    with pytest.raises(anthropic.APIStatusError) as info:
        client(m, up).chat(HELLO, model=HAIKU, max_tokens=10)
    assert info.value.status_code == 529
    assert only(m).status == "error:529"
