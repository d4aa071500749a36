"""The built-in simulated upstream: every route answered in-process, offline, with no key.

It answers in the providers' own wire formats (the builders of :mod:`costwarden.testing.wire`,
shaped like the references), with the deterministic text of
:class:`~costwarden.clients.simulated.SimulatedProvider` and usage counted with the same
tokenizer as the gateway's estimates, so budgets behave as they would against a real provider
charging that model's price. Streams are sent as separate chunks, one SSE event each.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from costwarden.clients.apis import prompt_messages
from costwarden.clients.simulated import SimulatedProvider
from costwarden.testing.wire import (
    Reply,
    anthropic_usage,
    openai_usage,
    responses_usage,
)

_DIMENSIONS = 16


@dataclass(frozen=True, slots=True)
class SimulatedReply:
    """A canned upstream reply for the offline simulated upstream: status, content type, body or
    chunks.
    """

    status: int
    content_type: bytes
    body: bytes | None = None
    chunks: tuple[bytes, ...] | None = None

    async def iter_chunks(self, delay: float) -> AsyncIterator[bytes]:
        """Yield the reply's chunks, waiting ``delay`` seconds before each (a slow stream)."""
        for chunk in self.chunks or ():
            if delay:
                await asyncio.sleep(delay)
            yield chunk


def _error(status: int, message: str) -> SimulatedReply:
    body = json.dumps({"error": {"message": message, "type": "invalid_request_error"}})
    return SimulatedReply(status, b"application/json", body.encode())


def _prompt_tokens(route: str, body: dict[str, Any], model: str) -> int:
    from costwarden.tokens import count_message_tokens

    api = "messages" if route in ("messages", "count_tokens") else route
    messages = prompt_messages(api, body)  # type: ignore[arg-type]
    return count_message_tokens(messages, model).tokens


def _embedding(text: str, encoding: str) -> Any:
    digest = hashlib.sha256(text.encode()).digest()
    floats = [(b - 127.5) / 127.5 for b in digest[:_DIMENSIONS]]
    if encoding == "base64":
        return base64.b64encode(struct.pack(f"<{len(floats)}f", *floats)).decode()
    return floats


def _embeddings(body: dict[str, Any], model: str) -> SimulatedReply:
    from costwarden.tokens import count_tokens

    raw = body.get("input")
    inputs = [raw] if isinstance(raw, str) else raw
    if not isinstance(inputs, list) or not inputs:
        return _error(400, "input must be a string or a non-empty list of strings")
    encoding = str(body.get("encoding_format") or "float")
    data = []
    tokens = 0
    for i, item in enumerate(inputs):
        text = item if isinstance(item, str) else json.dumps(item)
        tokens += count_tokens(text, model).tokens
        data.append({"object": "embedding", "index": i, "embedding": _embedding(text, encoding)})
    payload = {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
    return SimulatedReply(200, b"application/json", json.dumps(payload).encode())


def _from_reply(reply: Reply) -> SimulatedReply:
    kind = reply.headers.get("content-type", "application/json").encode()
    chunks = None if reply.chunks is None else tuple(reply.chunks)
    return SimulatedReply(reply.status, kind, reply.body, chunks)


def simulate(route: str, body: dict[str, Any], words: int = 40) -> SimulatedReply:
    """The simulated upstream's answer to ``body`` on ``route``."""
    model = str(body.get("model") or "simulated")
    try:
        if route == "embeddings":
            return _embeddings(body, model)
        prompt = _prompt_tokens(route, body, model)
    except Exception as exc:  # what a provider would answer with a 400
        return _error(400, f"the simulated provider cannot read this request: {exc}")
    if route == "count_tokens":
        return SimulatedReply(
            200, b"application/json", json.dumps({"input_tokens": prompt}).encode()
        )
    cap = body.get("max_tokens") or body.get("max_completion_tokens")
    cap = cap or body.get("max_output_tokens") or words
    pieces, _ = SimulatedProvider(words=words).answer(
        {
            "model": model,
            "messages": prompt_messages("chat", _as_chat(route, body)),
            "max_tokens": cap,
        }
    )
    from costwarden.tokens import count_tokens

    produced = count_tokens("".join(pieces), model).tokens if pieces else 0
    text = "".join(pieces)
    stream = bool(body.get("stream"))
    if route == "chat":
        if not stream:
            return _from_reply(
                Reply.openai_chat(text, usage=openai_usage(prompt, produced), model=model)
            )
        include = bool((body.get("stream_options") or {}).get("include_usage"))
        usage = openai_usage(prompt, produced) if include else None
        return _from_reply(Reply.openai_chat_stream(pieces, usage=usage, model=model))
    if route == "responses":
        usage = responses_usage(prompt, produced)
        if not stream:
            return _from_reply(Reply.responses(text, usage=usage, model=model))
        return _from_reply(Reply.responses_stream(pieces, usage=usage, model=model))
    if not stream:
        return _from_reply(
            Reply.anthropic_message(text, usage=anthropic_usage(prompt, produced), model=model)
        )
    return _from_reply(
        Reply.anthropic_stream(
            pieces,
            start_usage=anthropic_usage(prompt, 1),
            delta_usage={"output_tokens": produced},
            model=model,
        )
    )


def _as_chat(route: str, body: dict[str, Any]) -> dict[str, Any]:
    """The request as Chat Completions messages (what the simulated text is seeded from)."""
    if route == "chat":
        return body
    api = "messages" if route == "messages" else "responses"
    return {"messages": prompt_messages(api, body)}  # type: ignore[arg-type]


__all__ = ["SimulatedReply", "simulate"]
