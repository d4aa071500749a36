"""Wire formats of the LLM APIs the fake upstream speaks, as scriptable replies.

Builders for OpenAI Chat Completions, OpenAI Responses and Anthropic Messages bodies and SSE
streams, shaped like the providers' own (see the wire-shape references in the design docs),
with switches for the edge cases real streams show: usage before content, ``choices: null``
or absent, no ``[DONE]``, keep-alive comments, usage split over two chunks, cumulative
``message_delta`` usage. :class:`Reply` also scripts failures: HTTP errors, malformed JSON,
stalls and TCP resets.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]

# -- wire-format helpers ----------------------------------------------------------------------


def openai_usage(
    prompt: int,
    completion: int,
    *,
    cached: int = 0,
    reasoning: int = 0,
    cache_write: int | None = None,
    audio_in: int = 0,
    audio_out: int = 0,
) -> JSON:
    """A Chat Completions ``usage`` object (cache/reasoning/audio are subsets, as on the wire)."""
    details: JSON = {"cached_tokens": cached, "audio_tokens": audio_in}
    if cache_write is not None:
        details["cache_write_tokens"] = cache_write
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": details,
        "completion_tokens_details": {
            "reasoning_tokens": reasoning,
            "audio_tokens": audio_out,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def responses_usage(
    input_tokens: int,
    output_tokens: int,
    *,
    cached: int = 0,
    reasoning: int = 0,
    cache_write: int = 0,
) -> JSON:
    """A Responses API ``usage`` object."""
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": cache_write},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": input_tokens + output_tokens,
    }


def anthropic_usage(
    input_tokens: int,
    output_tokens: int,
    *,
    cache_read: int = 0,
    cache_write: int = 0,
    cache_write_1h: int = 0,
    web_searches: int | None = None,
    service_tier: str = "standard",
) -> JSON:
    """An Anthropic ``usage`` object: ``input_tokens`` is the UNCACHED part only;
    ``cache_write`` counts all cache writes, ``cache_write_1h`` the 1-hour ones among them."""
    usage: JSON = {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": cache_write,
        "cache_read_input_tokens": cache_read,
        "cache_creation": {
            "ephemeral_5m_input_tokens": cache_write - cache_write_1h,
            "ephemeral_1h_input_tokens": cache_write_1h,
        },
        "output_tokens": output_tokens,
        "service_tier": service_tier,
    }
    if web_searches is not None:
        usage["server_tool_use"] = {"web_search_requests": web_searches, "web_fetch_requests": 0}
    return usage


def sse(data: JSON | str, event: str | None = None) -> bytes:
    """One Server-Sent Event frame."""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


KEEPALIVE = b": keep-alive\n\n"

# -- replies ------------------------------------------------------------------------------------


@dataclass
class Reply:
    """One scripted HTTP reply.

    ``body`` is sent whole with a Content-Length; ``chunks`` are sent with chunked transfer
    encoding, ``chunk_delay`` seconds apart. ``delay`` stalls before the status line (timeouts).
    ``reset_after=n`` aborts the TCP connection with a RST after ``n`` chunks have been sent
    (``0``: before any byte of the response).
    """

    status: int = 200
    body: bytes | None = None
    chunks: list[bytes] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    chunk_delay: float = 0.0
    reset_after: int | None = None

    # -- generic ---------------------------------------------------------------------------
    @classmethod
    def json(cls, payload: Any, status: int = 200, **kw: Any) -> Reply:
        """A reply whose body is ``payload`` as JSON."""
        body = json.dumps(payload).encode()
        headers = {"content-type": "application/json", **kw.pop("headers", {})}
        return cls(status=status, body=body, headers=headers, **kw)

    @classmethod
    def error(cls, status: int, message: str = "upstream error", **kw: Any) -> Reply:
        """An OpenAI/Anthropic-style error body (both SDKs read ``error.message``)."""
        kind = {400: "invalid_request_error", 401: "authentication_error", 429: "rate_limit_error"}
        payload = {
            "type": "error",
            "error": {"message": message, "type": kind.get(status, "api_error"), "code": None},
        }
        return cls.json(payload, status=status, **kw)

    @classmethod
    def malformed_json(cls, status: int = 200) -> Reply:
        """A reply that claims JSON but is cut off, to test how a client handles a broken body."""
        return cls(status=status, body=b'{"id": "broken", "choices": [', headers=_JSON_HEADERS)

    @classmethod
    def reset(cls) -> Reply:
        """Reset the connection before answering (the client sees a connection error)."""
        return cls(reset_after=0)

    @classmethod
    def stream(cls, frames: Sequence[bytes], **kw: Any) -> Reply:
        """A server-sent-events reply made of the given raw frames."""
        headers = {"content-type": "text/event-stream", **kw.pop("headers", {})}
        return cls(chunks=list(frames), headers=headers, **kw)

    # -- OpenAI Chat Completions -------------------------------------------------------------
    @classmethod
    def openai_chat(
        cls,
        text: str,
        *,
        usage: JSON | None,
        model: str = "gpt-4o-mini",
        service_tier: str = "default",
        **kw: Any,
    ) -> Reply:
        """A Chat Completions reply with ``text`` and the given usage."""
        payload: JSON = {
            "id": "chatcmpl-fake0001",
            "object": "chat.completion",
            "created": 1741569952,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "service_tier": service_tier,
        }
        return cls.json(_with_usage(payload, usage), **kw)

    @classmethod
    def openai_chat_stream(
        cls,
        pieces: Iterable[str],
        *,
        usage: JSON | None,
        model: str = "gpt-4o-mini",
        usage_first: JSON | None = None,
        split_usage: bool = False,
        usage_choices: str = "empty",
        done: bool = True,
        keepalives: bool = False,
        service_tier: str | None = None,
        **kw: Any,
    ) -> Reply:
        """A Chat Completions SSE stream (``service_tier`` on every chunk when given).

        ``usage`` goes on a final usage-only chunk whose ``choices`` is ``[]`` (``usage_choices=
        "empty"``, the OpenAI shape), ``null`` (``"null"``) or absent (``"absent"``, vLLM-style).
        ``usage_first`` adds a preview usage chunk before any content; ``split_usage`` puts the
        prompt figures on the last content chunk and the rest on the final chunk.
        """
        base: JSON = {
            "id": "chatcmpl-fake0002",
            "object": "chat.completion.chunk",
            "created": 1694268190,
            "model": model,
            "system_fingerprint": None,
        }
        if service_tier is not None:
            base["service_tier"] = service_tier

        def chunk(delta: JSON, finish: str | None = None, usage_: Any = None) -> bytes:
            c = {
                **base,
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
            }
            c["usage"] = usage_
            return sse(c)

        frames: list[bytes] = []
        if usage_first is not None:
            frames.append(sse({**base, "choices": [], "usage": usage_first}))
        frames.append(chunk({"role": "assistant", "content": ""}))
        if keepalives:
            frames.append(KEEPALIVE)
        texts = list(pieces)
        for i, piece in enumerate(texts):
            partial = None
            if split_usage and usage is not None and i == len(texts) - 1:
                partial = {
                    "prompt_tokens": usage["prompt_tokens"],
                    "prompt_tokens_details": usage.get("prompt_tokens_details"),
                }
            frames.append(chunk({"content": piece}, usage_=partial))
            if keepalives:
                frames.append(KEEPALIVE)
        frames.append(chunk({}, finish="stop"))
        if usage is not None:
            final: JSON = dict(base)
            if usage_choices == "empty":
                final["choices"] = []
            elif usage_choices == "null":
                final["choices"] = None
            final["usage"] = (
                {k: v for k, v in usage.items() if k != "prompt_tokens_details"}
                if split_usage
                else usage
            )
            frames.append(sse(final))
        if done:
            frames.append(b"data: [DONE]\n\n")
        return cls.stream(frames, **kw)

    # -- OpenAI Responses --------------------------------------------------------------------
    @classmethod
    def responses(
        cls,
        text: str,
        *,
        usage: JSON | None,
        model: str = "gpt-4o-mini",
        service_tier: str | None = None,
        **kw: Any,
    ) -> Reply:
        """A Responses API reply with ``text`` and the given usage."""
        return cls.json(_response_object(text, usage, model, "completed", service_tier), **kw)

    @classmethod
    def responses_stream(
        cls,
        pieces: Iterable[str],
        *,
        usage: JSON | None,
        model: str = "gpt-4o-mini",
        terminal: str = "response.completed",
        service_tier: str | None = None,
        **kw: Any,
    ) -> Reply:
        """A streamed Responses API reply: text deltas for ``pieces`` and a terminal event with the
        usage.
        """
        texts = list(pieces)
        item = "msg_fake0001"
        frames = [
            sse(
                {
                    "type": "response.created",
                    "sequence_number": 0,
                    "response": _response_object("", None, model, "in_progress"),
                },
                "response.created",
            )
        ]
        for i, piece in enumerate(texts):
            delta = {
                "type": "response.output_text.delta",
                "sequence_number": i + 1,
                "item_id": item,
                "output_index": 0,
                "content_index": 0,
                "delta": piece,
                "logprobs": [],
            }
            frames.append(sse(delta, "response.output_text.delta"))
        status = terminal.removeprefix("response.")
        final = _response_object("".join(texts), usage, model, status, service_tier)
        frames.append(
            sse({"type": terminal, "sequence_number": len(texts) + 1, "response": final}, terminal)
        )
        return cls.stream(frames, **kw)

    # -- Anthropic Messages ------------------------------------------------------------------
    @classmethod
    def anthropic_message(
        cls, text: str, *, usage: JSON | None, model: str = "claude-3-haiku-20240307", **kw: Any
    ) -> Reply:
        """A Messages API reply with ``text`` and the given usage (None = no usage reported)."""
        payload: JSON = {
            "id": "msg_fake0001",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
        }
        return cls.json(_with_usage(payload, usage), **kw)

    @classmethod
    def anthropic_stream(
        cls,
        pieces: Iterable[str],
        *,
        start_usage: JSON | None,
        delta_usage: JSON | None,
        model: str = "claude-3-haiku-20240307",
        thinking: Sequence[str] = (),
        stop: bool = True,
        **kw: Any,
    ) -> Reply:
        """A Messages SSE stream: usage on ``message_start`` and cumulative ``message_delta``."""
        message: JSON = {
            "id": "msg_fake0002",
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": model,
            "stop_reason": None,
            "stop_sequence": None,
        }
        if start_usage is not None:
            message["usage"] = start_usage
        frames = [sse({"type": "message_start", "message": message}, "message_start")]
        index = 0
        if thinking:
            block = {"type": "thinking", "thinking": "", "signature": ""}
            frames.append(_content_block_start(index, block))
            for t in thinking:
                delta = {"type": "thinking_delta", "thinking": t}
                frames.append(_content_block_delta(index, delta))
            frames.append(sse({"type": "content_block_stop", "index": index}, "content_block_stop"))
            index += 1
        frames.append(_content_block_start(index, {"type": "text", "text": ""}))
        frames.append(sse({"type": "ping"}, "ping"))
        for piece in pieces:
            frames.append(_content_block_delta(index, {"type": "text_delta", "text": piece}))
        frames.append(sse({"type": "content_block_stop", "index": index}, "content_block_stop"))
        delta_event: JSON = {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        }
        if delta_usage is not None:
            delta_event["usage"] = delta_usage
        frames.append(sse(delta_event, "message_delta"))
        if stop:
            frames.append(sse({"type": "message_stop"}, "message_stop"))
        return cls.stream(frames, **kw)


_JSON_HEADERS = {"content-type": "application/json"}


def _with_usage(payload: JSON, usage: JSON | None) -> JSON:
    """``payload`` with its ``usage`` (left out when None: a response without one)."""
    if usage is not None:
        payload["usage"] = usage
    return payload


def _content_block_start(index: int, block: JSON) -> bytes:
    event = {"type": "content_block_start", "index": index, "content_block": block}
    return sse(event, "content_block_start")


def _content_block_delta(index: int, delta: JSON) -> bytes:
    return sse(
        {"type": "content_block_delta", "index": index, "delta": delta}, "content_block_delta"
    )


def _response_object(
    text: str, usage: JSON | None, model: str, status: str, service_tier: str | None = None
) -> JSON:
    output: list[JSON] = []
    if text:
        output.append(
            {
                "id": "msg_fake0001",
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
        )
    return {
        "id": "resp_fake0001",
        "object": "response",
        "created_at": 1741476542,
        "status": status,
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "max_output_tokens": None,
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "store": True,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": usage,
        "user": None,
        "metadata": {},
        **({} if service_tier is None else {"service_tier": service_tier}),
    }
