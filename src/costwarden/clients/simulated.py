"""A built-in simulated provider: deterministic text and realistic usage, no network.

It exists so that demos, tutorials and tests of budget logic run offline and free, while
going through exactly the same bookkeeping as a real call. It speaks the Chat Completions wire
format in-process (plain dicts, a list of chunks when streaming, usage on a final chunk), so
every code path that reads OpenAI responses — usage extraction, stream decoding, partial-stream
charging — is exercised by it too. Usage is counted with the same tokenizer as estimates, so
prices are what the model would cost for that prompt and answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any, Final

from costwarden.clients.apis import Api, prompt_messages
from costwarden.clients.requests import ChatRequest

# fmt: off
_VOCAB: Final = (
    "the", "budget", "holds", "while", "every", "call", "reserves", "its", "estimate", "first",
    "and", "settles", "the", "actual", "cost", "after", "the", "provider", "reports", "usage",
    "so", "that", "concurrent", "requests", "never", "overspend", "a", "limit", "and",
    "streamed", "answers", "are", "charged", "for", "the", "tokens", "they", "produced",
    "cached", "prompts", "cost", "less", "reasoning", "tokens", "are", "billed", "as",
    "output", "and", "unknown", "models", "are", "never", "free",
)
# fmt: on


class SimulatedProvider:
    """Answers any model name with a deterministic reply of about ``words`` words."""

    api: Api = "chat"

    def __init__(self, *, name: str = "simulated", words: int = 40, latency: float = 0.0) -> None:
        self.name = name
        self.free = False
        self.words = words
        self.latency = latency

    def build(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        """Turn a ChatRequest into the keyword arguments the simulated API takes (OpenAI chat
        shape).
        """
        kw: dict[str, Any] = dict(request.options)
        kw.update(model=request.model, messages=request.messages, max_tokens=request.max_tokens)
        if stream:
            kw["stream"] = True
        return kw

    def answer(self, kwargs: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
        """The reply's text pieces and its Chat Completions usage for ``kwargs`` (the gateway's
        simulated upstream reuses them for every wire format)."""
        return self._answer(kwargs)

    def _answer(self, kwargs: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
        from costwarden.tokens import count_message_tokens, count_tokens

        model = str(kwargs["model"])
        messages = prompt_messages("chat", kwargs)
        seed = hashlib.sha256(repr(messages).encode()).digest()
        cap = int(kwargs.get("max_tokens") or self.words)
        pieces: list[str] = []
        produced = 0
        for i in range(self.words):
            word = _VOCAB[(seed[i % len(seed)] + i) % len(_VOCAB)]
            piece = (" " if pieces else "") + word
            n = count_tokens(piece, model).tokens
            if produced + n > cap:
                break
            pieces.append(piece)
            produced += n
        prompt = count_message_tokens(messages, model).tokens
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": produced,
            "total_tokens": prompt + produced,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        }
        return pieces, usage

    def _response(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        pieces, usage = self._answer(kwargs)
        return {
            "id": f"sim-{time.monotonic_ns()}",
            "object": "chat.completion",
            "model": kwargs["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(pieces)},
                    "finish_reason": "stop",
                }
            ],
            "usage": usage,
        }

    def _chunks(self, kwargs: dict[str, Any]) -> list[dict[str, Any]]:
        pieces, usage = self._answer(kwargs)
        base: dict[str, Any] = {
            "id": f"sim-{time.monotonic_ns()}",
            "object": "chat.completion.chunk",
            "model": kwargs["model"],
        }
        chunks = [
            {**base, "choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}]}
            for p in pieces
        ]
        chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        chunks.append({**base, "choices": [], "usage": usage})
        return chunks

    def call(self, kwargs: dict[str, Any]) -> Any:
        """Answer the request offline after the configured latency, as a response or a stream of
        chunks.
        """
        if self.latency:
            time.sleep(self.latency)
        if kwargs.get("stream"):
            return _SyncChunks(self._chunks(kwargs))
        return self._response(kwargs)

    async def acall(self, kwargs: dict[str, Any]) -> Any:
        """Answer the request offline after the configured latency (awaited), as a response or an
        async stream of chunks.
        """
        if self.latency:
            await asyncio.sleep(self.latency)
        if kwargs.get("stream"):
            return _AsyncChunks(self._chunks(kwargs))
        return self._response(kwargs)


class _SyncChunks:
    """A closable iterator of chunks (the shape of an SDK stream)."""

    def __init__(self, chunks: list[dict[str, Any]]) -> None:
        self._it: Iterator[dict[str, Any]] = iter(chunks)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self

    def __next__(self) -> dict[str, Any]:
        return next(self._it)

    def close(self) -> None:
        self._it = iter(())


class _AsyncChunks:
    def __init__(self, chunks: list[dict[str, Any]]) -> None:
        self._chunks = chunks
        self._i = 0

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self

    async def __anext__(self) -> dict[str, Any]:
        if self._i >= len(self._chunks):
            raise StopAsyncIteration
        self._i += 1
        return self._chunks[self._i - 1]

    async def close(self) -> None:
        self._i = len(self._chunks)
