"""costwarden.wrap(): existing SDK code, one changed line, every call budgeted and recorded."""

from __future__ import annotations

import asyncio

import anthropic
import openai
import pytest

from costwarden.budget import Budget
from costwarden.clients import wrap
from costwarden.errors import BudgetExceededError, InvalidInputError, ProviderResponseError
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


@pytest.fixture
def m() -> BudgetManager:
    return BudgetManager(Budget(daily_limit=5.0, monthly_limit=None, per_request_limit=None))


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


def test_chat_completions_create_is_tracked_and_returns_the_sdk_object(
    up: FakeUpstream, m: BudgetManager
) -> None:
    client = wrap(oai(up), manager=m, user="alice", provider="openai", endpoint="faq")
    up.enqueue(Reply.openai_chat("A plan.", usage=openai_usage(14, 3, cached=0)))
    resp = client.chat.completions.create(model="gpt-4o-mini", messages=MSGS, max_tokens=20)
    assert isinstance(resp, openai.types.chat.ChatCompletion)
    assert resp.choices[0].message.content == "A plan."
    rec = only(m)
    assert (rec.user_id, rec.endpoint, rec.provider) == ("alice", "faq", "openai")
    assert (rec.input_tokens, rec.output_tokens, rec.status) == (14, 3, "ok")
    assert rec.request_id == resp.id


def test_stream_hides_the_injected_usage_chunk(up: FakeUpstream, m: BudgetManager) -> None:
    client = wrap(oai(up), manager=m, provider="openai")
    up.enqueue(Reply.openai_chat_stream(PIECES, usage=openai_usage(14, 5)))
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=MSGS, max_tokens=20, stream=True
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream)  # classic code
    assert text == "".join(PIECES)
    assert up.requests[-1].json()["stream_options"] == {"include_usage": True}
    rec = only(m)
    assert (rec.input_tokens, rec.output_tokens) == (14, 5)


def test_stream_keeps_the_usage_chunk_when_the_caller_asked_for_it(
    up: FakeUpstream, m: BudgetManager
) -> None:
    client = wrap(oai(up), manager=m, provider="openai")
    up.enqueue(Reply.openai_chat_stream(PIECES, usage=openai_usage(14, 5)))
    with client.chat.completions.create(
        model="gpt-4o-mini",
        messages=MSGS,
        max_tokens=20,
        stream=True,
        stream_options={"include_usage": True},
    ) as stream:
        chunks = list(stream)
        assert stream.response.status_code == 200  # SDK stream attributes pass through
    assert chunks[-1].usage is not None and chunks[-1].choices == []
    assert only(m).output_tokens == 5


def test_responses_create_tracked_with_and_without_stream(
    up: FakeUpstream, m: BudgetManager
) -> None:
    client = wrap(oai(up), manager=m, provider="openai")
    up.enqueue(Reply.responses("Done.", usage=responses_usage(20, 2)))
    resp = client.responses.create(model="gpt-4o-mini", input="Hi", max_output_tokens=10)
    assert resp.output_text == "Done."
    up.enqueue(Reply.responses_stream(PIECES, usage=responses_usage(21, 4)))
    events = list(client.responses.create(model="gpt-4o-mini", input="Hi", stream=True))
    assert events[-1].type == "response.completed"
    first, second = m.records()
    assert (first.input_tokens, first.output_tokens) == (20, 2)
    assert (second.input_tokens, second.output_tokens) == (21, 4)


def test_anthropic_messages_create_with_and_without_stream(
    up: FakeUpstream, m: BudgetManager
) -> None:
    client = wrap(ant(up), manager=m, team="research")
    up.enqueue(Reply.anthropic_message("Yes.", usage=anthropic_usage(10, 2, cache_read=90)))
    msg = client.messages.create(model="claude-3-haiku-20240307", max_tokens=16, messages=MSGS)
    assert msg.content[0].text == "Yes."
    up.enqueue(
        Reply.anthropic_stream(
            PIECES, start_usage=anthropic_usage(10, 1), delta_usage={"output_tokens": 6}
        )
    )
    events = list(
        client.messages.create(
            model="claude-3-haiku-20240307", max_tokens=16, messages=MSGS, stream=True
        )
    )
    assert events[0].type == "message_start" and events[-1].type == "message_stop"
    first, second = m.records()
    assert (first.input_tokens, first.cache_read_tokens, first.team) == (100, 90, "research")
    assert (second.input_tokens, second.output_tokens) == (10, 6)


def test_over_budget_raises_before_the_request_is_sent(up: FakeUpstream) -> None:
    tight = BudgetManager(Budget(daily_limit=0.00001, monthly_limit=None))
    client = wrap(oai(up), manager=tight, provider="openai")
    with pytest.raises(BudgetExceededError):
        client.chat.completions.create(model="gpt-4o", messages=MSGS, max_tokens=1000)
    assert up.requests == [] and tight.records() == []


def test_sdk_errors_pass_through_unchanged_and_release_the_hold(
    up: FakeUpstream, m: BudgetManager
) -> None:
    client = wrap(oai(up), manager=m, provider="openai")
    up.enqueue(Reply.error(429, "slow down"))
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="gpt-4o-mini", messages=MSGS, max_tokens=5)
    assert only(m).status == "error:429"
    up.enqueue(Reply.malformed_json())
    with pytest.raises(ProviderResponseError):
        client.chat.completions.create(model="gpt-4o-mini", messages=MSGS, max_tokens=5)


def test_with_attribution_and_with_options_stay_tracked(up: FakeUpstream, m: BudgetManager) -> None:
    client = wrap(oai(up), manager=m, user="default", provider="openai")
    per_request = client.with_attribution(user="bob", tags=["exp-7"], request_id="abc")
    per_request.with_options(timeout=3.0).chat.completions.create(
        model="gpt-4o-mini", messages=MSGS, max_tokens=5
    )
    rec = only(m)
    assert (rec.user_id, rec.tags, rec.request_id) == ("bob", ("exp-7",), "abc")


def test_other_attributes_are_the_sdk_clients_own(up: FakeUpstream, m: BudgetManager) -> None:
    raw = oai(up)
    client = wrap(raw, manager=m)
    assert client.unwrapped is raw
    assert client.models is raw.models and client.api_key == "test"
    assert client.chat.completions.with_raw_response is not None


def test_wrap_rejects_what_it_cannot_track(m: BudgetManager) -> None:
    with pytest.raises(InvalidInputError):
        wrap(object(), manager=m)
    with (
        openai.OpenAI(api_key="x", base_url="http://127.0.0.1:9") as sdk,
        pytest.raises(InvalidInputError),
    ):
        wrap(sdk, manager="nope")  # type: ignore[arg-type]


def test_async_clients_are_tracked(up: FakeUpstream, m: BudgetManager) -> None:
    async def run() -> None:
        oa = wrap(
            openai.AsyncOpenAI(base_url=up.openai_base_url, api_key="t", max_retries=0),
            manager=m,
            provider="openai",
        )
        up.enqueue(Reply.openai_chat("x", usage=openai_usage(9, 1)))
        await oa.chat.completions.create(model="gpt-4o-mini", messages=MSGS, max_tokens=5)
        up.enqueue(Reply.openai_chat_stream(PIECES, usage=openai_usage(9, 3)))
        stream = await oa.chat.completions.create(
            model="gpt-4o-mini", messages=MSGS, max_tokens=5, stream=True
        )
        assert [c.choices[0].delta.content async for c in stream][1:4] == PIECES
        an = wrap(
            anthropic.AsyncAnthropic(base_url=up.anthropic_base_url, api_key="t", max_retries=0),
            manager=m,
        )
        up.enqueue(Reply.anthropic_message("y", usage=anthropic_usage(7, 1)))
        await an.messages.create(model="claude-3-haiku-20240307", max_tokens=5, messages=MSGS)
        up.enqueue(Reply.error(500))
        with pytest.raises(anthropic.InternalServerError):
            await an.messages.create(model="claude-3-haiku-20240307", max_tokens=5, messages=MSGS)
        await oa.close()  # the SDK clients are ours: wrap() never closes them
        await an.close()

    asyncio.run(run())
    records = m.records()
    assert [(r.input_tokens, r.output_tokens, r.status) for r in records] == [
        (9, 1, "ok"),
        (9, 3, "ok"),
        (7, 1, "ok"),
        (0, 0, "error:500"),
    ]
    assert m.get_status()["daily_reserved"] == 0


def test_local_free_server_is_never_blocked_and_named_by_host(up: FakeUpstream) -> None:
    exhausted = BudgetManager(Budget(daily_limit=0.0, monthly_limit=None))
    client = wrap(oai(up), manager=exhausted, free=True)
    up.enqueue(Reply.openai_chat("local", usage=openai_usage(30, 2)))
    client.chat.completions.create(model="qwen2.5:0.5b", messages=MSGS)
    (rec,) = exhausted.records()
    assert (rec.cost_nanos, rec.provider, rec.input_tokens) == (0, "127.0.0.1", 30)


def test_missing_max_tokens_holds_the_default_output_bound(up: FakeUpstream) -> None:
    # $0.60 per 1M output tokens: a 1024-token default bound needs ~$0.0006 of room.
    tight = BudgetManager(Budget(daily_limit=0.0003, monthly_limit=None, per_request_limit=None))
    with pytest.raises(BudgetExceededError):
        wrap(oai(up), manager=tight, provider="openai").chat.completions.create(
            model="gpt-4o-mini", messages=MSGS
        )
    small = wrap(oai(up), manager=tight, provider="openai", default_output_tokens=100)
    small.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
    assert len(tight.records()) == 1 and len(up.requests) == 1
