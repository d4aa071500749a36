"""Provider usage -> Usage: the normalisation table, on raw JSON and on real SDK objects."""

from __future__ import annotations

from typing import Any

import anthropic.types as at
import openai.types.chat as oc
import openai.types.responses as orsp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from costwarden.clients.apis import StreamDecoder, response_text, response_usage
from costwarden.clients.usage import (
    AnthropicStreamUsage,
    OpenAIChatStreamUsage,
    OpenAIResponsesStreamUsage,
    anthropic_usage,
    openai_chat_usage,
    openai_responses_usage,
)
from costwarden.errors import ProviderResponseError
from costwarden.records import Usage
from costwarden.testing.fake_upstream import anthropic_usage as wire_anthropic
from costwarden.testing.fake_upstream import openai_usage as wire_openai
from costwarden.testing.fake_upstream import responses_usage as wire_responses

OAS_CHAT_USAGE = {
    "prompt_tokens": 19,
    "completion_tokens": 10,
    "total_tokens": 29,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": {
        "reasoning_tokens": 0,
        "audio_tokens": 0,
        "accepted_prediction_tokens": 0,
        "rejected_prediction_tokens": 0,
    },
}

GP_ANTHROPIC_5M_1H = {
    "input_tokens": 504,
    "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 23},
    "cache_creation_input_tokens": 123,
    "cache_read_input_tokens": 0,
    "output_tokens": 97,
    "service_tier": "standard",
}


def test_openai_chat_usage_reference_example() -> None:
    assert openai_chat_usage(OAS_CHAT_USAGE) == Usage(input_tokens=19, output_tokens=10)


def test_openai_chat_cached_reasoning_and_cache_write_are_subsets() -> None:
    raw = wire_openai(1000, 300, cached=600, reasoning=200, cache_write=100)
    assert openai_chat_usage(raw) == Usage(1000, 300, 600, 100, 200)


def test_null_details_count_as_zero() -> None:
    raw = {
        "prompt_tokens": 5,
        "completion_tokens": 2,
        "prompt_tokens_details": {"cached_tokens": None},
    }
    assert openai_chat_usage(raw) == Usage(input_tokens=5, output_tokens=2)


def test_anthropic_cache_tokens_are_added_into_input() -> None:
    # genai-prices normalises this body to input 627 = 504 + 123 + 0, cache_write 123, of
    # which 23 are 1-hour writes (billed at their own rate).
    assert anthropic_usage(GP_ANTHROPIC_5M_1H) == Usage(
        input_tokens=627,
        output_tokens=97,
        cache_read_tokens=0,
        cache_write_tokens=123,
        cache_write_1h_tokens=23,
    )


def test_anthropic_cache_read_and_thinking() -> None:
    raw = {
        "input_tokens": 40,
        "cache_creation_input_tokens": 12,
        "cache_read_input_tokens": 7,
        "output_tokens": 8,
        "output_tokens_details": {"thinking_tokens": 3},
    }
    assert anthropic_usage(raw) == Usage(59, 8, 7, 12, 3)


def test_responses_usage_reasoning_example() -> None:
    raw = {
        "input_tokens": 100,
        "output_tokens": 200,
        "output_tokens_details": {"reasoning_tokens": 120},
    }
    assert openai_responses_usage(raw) == Usage(100, 200, reasoning_tokens=120)


@pytest.mark.parametrize(
    "bad",
    [
        {"prompt_tokens": -1, "completion_tokens": 2},
        {"prompt_tokens": "12", "completion_tokens": 2},
        {"prompt_tokens": True, "completion_tokens": 2},
        {"prompt_tokens": 5, "completion_tokens": 2, "prompt_tokens_details": {"cached_tokens": 9}},
        None,
    ],
)
def test_garbled_openai_usage_is_a_typed_error(bad: Any) -> None:
    with pytest.raises(ProviderResponseError):
        openai_chat_usage(bad)


def test_sdk_objects_read_like_json() -> None:
    chat = oc.ChatCompletion.model_validate(
        {
            "id": "c",
            "object": "chat.completion",
            "created": 1,
            "model": "gpt-4o",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": "Hi"},
                }
            ],
            "usage": wire_openai(50, 5, cached=20, reasoning=1),
        }
    )
    assert response_usage("chat", chat) == Usage(50, 5, 20, 0, 1)
    assert response_text("chat", chat) == "Hi"
    msg = at.Message.model_validate(
        {
            "id": "m",
            "type": "message",
            "role": "assistant",
            "model": "claude-3-haiku-20240307",
            "content": [{"type": "text", "text": "Yo"}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": wire_anthropic(10, 4, cache_read=30, cache_write=5),
        }
    )
    assert response_usage("messages", msg) == Usage(45, 4, 30, 5, 0)
    assert response_text("messages", msg) == "Yo"
    usage = orsp.ResponseUsage.model_validate(wire_responses(70, 9, cached=64, reasoning=4))
    assert openai_responses_usage(usage) == Usage(70, 9, 64, 0, 4)


@given(
    uncached=st.integers(0, 10**7),
    write=st.integers(0, 10**7),
    read=st.integers(0, 10**7),
    out=st.integers(0, 10**7),
)
def test_anthropic_total_input_is_the_sum_of_its_parts(
    uncached: int, write: int, read: int, out: int
) -> None:
    u = anthropic_usage(wire_anthropic(uncached, out, cache_read=read, cache_write=write))
    assert u.input_tokens == uncached + write + read
    assert u.input_tokens - u.cache_read_tokens - u.cache_write_tokens == uncached
    assert u.output_tokens == out


@given(
    prompt=st.integers(0, 10**7),
    completion=st.integers(0, 10**7),
    data=st.data(),
)
def test_openai_subsets_survive(prompt: int, completion: int, data: st.DataObject) -> None:
    cached = data.draw(st.integers(0, prompt))
    write = data.draw(st.integers(0, prompt - cached))
    reasoning = data.draw(st.integers(0, completion))
    raw = wire_openai(prompt, completion, cached=cached, reasoning=reasoning, cache_write=write)
    assert openai_chat_usage(raw) == Usage(prompt, completion, cached, write, reasoning)


# -- streams ------------------------------------------------------------------------------------


def test_chat_stream_final_usage_chunk() -> None:
    acc = OpenAIChatStreamUsage()
    acc.feed({"choices": [{"delta": {"content": "a"}}], "usage": None})
    assert acc.usage is None
    acc.feed({"choices": [], "usage": wire_openai(10, 5, cached=4)})
    assert acc.usage == Usage(10, 5, 4)
    assert acc.has_output_count


def test_chat_stream_preview_usage_before_content_is_not_terminal() -> None:
    acc = OpenAIChatStreamUsage()
    acc.feed({"choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 0}})
    acc.feed({"choices": [{"delta": {"content": "x"}}]})
    acc.feed({"choices": None, "usage": {"prompt_tokens": 10, "completion_tokens": 7}})
    assert acc.usage == Usage(10, 7)


def test_chat_stream_split_usage_merges_fields() -> None:
    acc = OpenAIChatStreamUsage()
    acc.feed({"usage": {"prompt_tokens": 5, "prompt_tokens_details": {"cached_tokens": 3}}})
    assert not acc.has_output_count
    acc.feed({"usage": {"completion_tokens": 4, "total_tokens": 9}})
    assert acc.usage == Usage(5, 4, 3)


def test_anthropic_stream_delta_overwrites_start() -> None:
    # ANT-SDK message_delta_fields_response: cumulative delta replaces start's figures.
    acc = AnthropicStreamUsage()
    acc.feed(
        {
            "type": "message_start",
            "message": {
                "usage": {
                    "input_tokens": 25,
                    "cache_creation_input_tokens": 10,
                    "cache_read_input_tokens": 5,
                    "output_tokens": 1,
                }
            },
        }
    )
    assert not acc.has_output_count
    acc.feed(
        {
            "type": "message_delta",
            "usage": {
                "input_tokens": 40,
                "cache_creation_input_tokens": 12,
                "cache_read_input_tokens": 7,
                "output_tokens": 8,
                "output_tokens_details": {"thinking_tokens": 3},
            },
        }
    )
    assert acc.usage == Usage(59, 8, 7, 12, 3)
    assert acc.has_output_count


def test_anthropic_stream_delta_with_only_output_keeps_start_input() -> None:
    acc = AnthropicStreamUsage()
    start = {"input_tokens": 25, "cache_creation_input_tokens": 10, "cache_read_input_tokens": 5}
    acc.feed({"type": "message_start", "message": {"usage": {**start, "output_tokens": 1}}})
    acc.feed({"type": "message_delta", "usage": {"output_tokens": 8}})
    assert acc.usage == Usage(40, 8, 5, 10)


def test_anthropic_stream_without_start_usage() -> None:
    acc = AnthropicStreamUsage()
    acc.feed({"type": "message_start", "message": {"id": "x"}})
    acc.feed({"type": "message_delta", "usage": {"input_tokens": 12, "output_tokens": 6}})
    assert acc.usage == Usage(12, 6)


def test_responses_stream_usage_only_on_terminal_event() -> None:
    acc = OpenAIResponsesStreamUsage()
    acc.feed({"type": "response.created", "response": {"usage": None}})
    acc.feed({"type": "response.output_text.delta", "delta": "Hi"})
    assert acc.usage is None
    acc.feed({"type": "response.completed", "response": {"usage": wire_responses(37, 11)}})
    assert acc.usage == Usage(37, 11)
    incomplete = OpenAIResponsesStreamUsage()
    incomplete.feed({"type": "response.incomplete", "response": {"usage": None}})
    assert incomplete.usage is None and incomplete.terminal == "response.incomplete"


def test_decoder_collects_hidden_output_for_partial_billing() -> None:
    d = StreamDecoder("messages")
    d.feed({"type": "message_start", "message": {"id": "m1", "model": "claude-x"}})
    shown = d.feed(
        {"type": "content_block_delta", "delta": {"type": "thinking_delta", "thinking": "hmm"}}
    )
    assert shown == ""
    shown = d.feed({"type": "content_block_delta", "delta": {"type": "text_delta", "text": "Hi"}})
    assert shown == "Hi"
    assert d.produced == ["hmm", "Hi"] and d.id == "m1" and d.model == "claude-x"


def test_decoder_keeps_every_string_piece_and_nothing_else_on_each_api() -> None:
    """Shown text, tool-call arguments and reasoning are all produced (billed if the stream is
    cut); a field that is missing or not a string produced nothing and shows nothing."""
    chat = StreamDecoder("chat")
    shown = chat.feed(
        {
            "id": "c1",
            "model": "gpt-x",
            "choices": [
                {
                    "delta": {
                        "content": "Hi",
                        "tool_calls": [
                            {"function": {"arguments": '{"a":'}},
                            {"function": {"arguments": None}},
                            {"function": {}},
                        ],
                    }
                }
            ],
        }
    )
    assert shown == "Hi" and chat.produced == ['{"a":', "Hi"]
    responses = StreamDecoder("responses")
    feed = responses.feed
    assert feed({"type": "response.output_text.delta", "delta": "Hi"}) == "Hi"
    assert feed({"type": "response.output_text.delta", "delta": 7}) == ""
    assert feed({"type": "response.function_call_arguments.delta", "delta": "{}"}) == ""
    assert feed({"type": "response.reasoning_text.delta", "delta": "so"}) == ""
    assert feed({"type": "response.reasoning_text.delta"}) == ""
    assert responses.produced == ["Hi", "{}", "so"]
    messages = StreamDecoder("messages")
    block = {"type": "content_block_delta"}
    assert messages.feed({**block, "delta": {"type": "text_delta", "text": None}}) == ""
    assert (
        messages.feed({**block, "delta": {"type": "input_json_delta", "partial_json": "["}}) == ""
    )
    assert messages.feed({**block, "delta": {"type": "thinking_delta", "thinking": 3}}) == ""
    assert messages.produced == ["["]
