"""Every billed token at its own rate, end to end: the real openai and anthropic SDKs against
the fake upstream, through wrap() and the tracked client. Service tiers (flex, priority,
Anthropic's batch), 1-hour cache writes, web searches and audio tokens are priced at their
own rates; the figures are worked by hand (USD per 1M tokens, in nano-USD)."""

from __future__ import annotations

import anthropic
import openai
import pytest

from costwarden.budget import Budget
from costwarden.clients import OpenAIProvider, TrackedLLMClient, wrap
from costwarden.manager import BudgetManager
from costwarden.records import StoredRecord
from costwarden.testing.fake_upstream import (
    FakeUpstream,
    Reply,
    anthropic_usage,
    openai_usage,
    responses_usage,
)
from tests.helpers import close_after_test

MSGS = [{"role": "user", "content": "What is a budget?"}]
PIECES = ["A plan", " for", " money."]


# The anthropic SDK warns when a request names a model it lists as deprecated; these tests
# use such models on purpose (their prices are what is under test), so its warning is ignored.
pytestmark = pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning")


@pytest.fixture
def m() -> BudgetManager:
    return BudgetManager(Budget(daily_limit=50.0, monthly_limit=None, per_request_limit=None))


def oai(up: FakeUpstream) -> openai.OpenAI:
    return close_after_test(
        openai.OpenAI(base_url=up.openai_base_url, api_key="test", max_retries=0)
    )


def ant(up: FakeUpstream) -> anthropic.Anthropic:
    return close_after_test(
        anthropic.Anthropic(base_url=up.anthropic_base_url, api_key="test", max_retries=0)
    )


def only(m: BudgetManager) -> StoredRecord:
    (rec,) = m.records()
    assert m.get_status()["daily_reserved"] == 0
    return rec


def test_chat_flex_tier_is_priced_at_flex_rates(up: FakeUpstream, m: BudgetManager) -> None:
    client = wrap(oai(up), manager=m, provider="openai")
    usage = openai_usage(10_000, 1_000, cached=8_000)
    up.enqueue(Reply.openai_chat("ok", usage=usage, model="gpt-5", service_tier="flex"))
    client.chat.completions.create(
        model="gpt-5", messages=MSGS, max_tokens=1_000, service_tier="flex"
    )
    assert up.requests[-1].json()["service_tier"] == "flex"
    # 2000 x 0.625 + 8000 x 0.0625 + 1000 x 5 (flex); standard would be 13_500_000
    assert only(m).cost_nanos == 1_250_000 + 500_000 + 5_000_000


def test_chat_default_tier_is_the_standard_price(up: FakeUpstream, m: BudgetManager) -> None:
    client = wrap(oai(up), manager=m, provider="openai")
    up.enqueue(Reply.openai_chat("ok", usage=openai_usage(100, 200), model="gpt-5"))
    client.chat.completions.create(model="gpt-5", messages=MSGS, max_tokens=200)
    assert only(m).cost_nanos == 2_125_000  # 100 x 1.25 + 200 x 10


def test_chat_stream_priority_tier(up: FakeUpstream, m: BudgetManager) -> None:
    client = wrap(oai(up), manager=m, provider="openai")
    up.enqueue(
        Reply.openai_chat_stream(
            PIECES, usage=openai_usage(100, 200), model="gpt-5", service_tier="priority"
        )
    )
    stream = client.chat.completions.create(
        model="gpt-5", messages=MSGS, max_tokens=200, stream=True, service_tier="priority"
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream) == "".join(PIECES)
    assert only(m).cost_nanos == 4_250_000  # 100 x 2.5 + 200 x 20 (priority)


def test_responses_priority_tier_through_the_tracked_client(
    up: FakeUpstream, m: BudgetManager
) -> None:
    provider = OpenAIProvider(base_url=up.openai_base_url, api_key="test", api="responses")
    client = close_after_test(TrackedLLMClient(m, providers=[provider]))
    up.enqueue(
        Reply.responses(
            "ok", usage=responses_usage(100, 200), model="gpt-5", service_tier="priority"
        )
    )
    client.complete(MSGS, model="gpt-5", max_tokens=200, service_tier="priority")
    assert up.requests[-1].json()["service_tier"] == "priority"
    assert only(m).cost_nanos == 4_250_000


def test_responses_stream_flex_tier(up: FakeUpstream, m: BudgetManager) -> None:
    client = wrap(oai(up), manager=m, provider="openai")
    up.enqueue(
        Reply.responses_stream(
            PIECES, usage=responses_usage(100, 200), model="gpt-5", service_tier="flex"
        )
    )
    stream = client.responses.create(
        model="gpt-5", input="hi", max_output_tokens=200, stream=True, service_tier="flex"
    )
    list(stream)
    assert only(m).cost_nanos == 1_062_500  # 100 x 0.625 + 200 x 5


def test_chat_audio_tokens_at_audio_rates(up: FakeUpstream, m: BudgetManager) -> None:
    client = wrap(oai(up), manager=m, provider="openai")
    usage = openai_usage(1_000, 500, audio_in=600, audio_out=400)
    up.enqueue(Reply.openai_chat("ok", usage=usage, model="gpt-audio"))
    client.chat.completions.create(model="gpt-audio", messages=MSGS, max_tokens=500)
    # text in 400 x 2.5 + audio in 600 x 32 + text out 100 x 10 + audio out 400 x 64
    assert only(m).cost_nanos == 1_000_000 + 19_200_000 + 1_000_000 + 25_600_000


SONNET_4 = "claude-sonnet-4-20250514"


def test_anthropic_one_hour_cache_writes_and_web_search(up: FakeUpstream, m: BudgetManager) -> None:
    client = wrap(ant(up), manager=m, provider="anthropic")
    usage = anthropic_usage(504, 97, cache_write=123, cache_write_1h=23, web_searches=2)
    up.enqueue(Reply.anthropic_message("ok", usage=usage, model=SONNET_4))
    client.messages.create(model=SONNET_4, messages=MSGS, max_tokens=100)
    # 504 x 3 + 100 x 3.75 + 23 x 6 (1-hour writes) + 97 x 15, plus 2 searches at $10 / 1,000
    assert only(m).cost_nanos == 3_480_000 + 20_000_000


def test_anthropic_stream_keeps_the_breakdown_of_message_start(
    up: FakeUpstream, m: BudgetManager
) -> None:
    client = wrap(ant(up), manager=m, provider="anthropic")
    start = anthropic_usage(504, 1, cache_write=123, cache_write_1h=23)
    up.enqueue(
        Reply.anthropic_stream(
            PIECES, start_usage=start, delta_usage={"output_tokens": 97}, model=SONNET_4
        )
    )
    stream = client.messages.create(model=SONNET_4, messages=MSGS, max_tokens=100, stream=True)
    list(stream)
    assert only(m).cost_nanos == 3_480_000


def test_anthropic_batch_service_tier_is_priced_at_batch_rates(
    up: FakeUpstream, m: BudgetManager
) -> None:
    client = wrap(ant(up), manager=m, provider="anthropic")
    usage = anthropic_usage(1_000_000, 100_000, service_tier="batch")
    up.enqueue(Reply.anthropic_message("ok", usage=usage, model="claude-sonnet-4-5"))
    client.messages.create(model="claude-sonnet-4-5", messages=MSGS, max_tokens=100)
    # input > 200k: the long-context batch tier, 1M x 3 + 100k x 11.25
    assert only(m).cost_nanos == 3_000_000_000 + 1_125_000_000
