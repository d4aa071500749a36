"""A scriptable fake LLM upstream: a real HTTP/1.1 server on 127.0.0.1 that speaks the wire
formats of OpenAI Chat Completions, OpenAI Responses and Anthropic Messages.

Why a real server and not a mock: the official SDKs (built on ``httpx2``) are the thing under
test as much as our code — their SSE decoding, retries, timeouts and error mapping — and mocks of
``httpx`` do not even reach ``httpx2``. A raw asyncio server (no framework) is used so that tests
can do what real networks do and frameworks hide: reset a connection mid-stream, send malformed
JSON, end a chunked stream without ``[DONE]``, or stall past a timeout.

Usage::

    with FakeUpstream() as up:
        client = openai.OpenAI(base_url=up.openai_base_url, api_key="test")
        up.enqueue(Reply.openai_chat("Hi!", usage=openai_usage(12, 3)))
        client.chat.completions.create(model="gpt-4o-mini", messages=[...])
        up.requests[-1].json()["model"]

Replies are taken from a per-path queue, then a global queue; with both empty the server answers
automatically with a deterministic, realistically-shaped reply (so benchmarks and gateways can
use it unscripted). ``python -m costwarden.testing.fake_upstream --latency 0.02`` runs it as a
separate process and prints its base URL.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
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
) -> JSON:
    """A Chat Completions ``usage`` object (cache/reasoning are subsets, as on the wire)."""
    details: JSON = {"cached_tokens": cached, "audio_tokens": 0}
    if cache_write is not None:
        details["cache_write_tokens"] = cache_write
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": details,
        "completion_tokens_details": {
            "reasoning_tokens": reasoning,
            "audio_tokens": 0,
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
    input_tokens: int, output_tokens: int, *, cache_read: int = 0, cache_write: int = 0
) -> JSON:
    """An Anthropic ``usage`` object: ``input_tokens`` is the UNCACHED part only."""
    return {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": cache_write,
        "cache_read_input_tokens": cache_read,
        "cache_creation": {
            "ephemeral_5m_input_tokens": cache_write,
            "ephemeral_1h_input_tokens": 0,
        },
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


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
        return cls(status=status, body=b'{"id": "broken", "choices": [', headers=_JSON_HEADERS)

    @classmethod
    def reset(cls) -> Reply:
        """Reset the connection before answering (the client sees a connection error)."""
        return cls(reset_after=0)

    @classmethod
    def stream(cls, frames: Sequence[bytes], **kw: Any) -> Reply:
        headers = {"content-type": "text/event-stream", **kw.pop("headers", {})}
        return cls(chunks=list(frames), headers=headers, **kw)

    # -- OpenAI Chat Completions -------------------------------------------------------------
    @classmethod
    def openai_chat(
        cls, text: str, *, usage: JSON | None, model: str = "gpt-4o-mini", **kw: Any
    ) -> Reply:
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
            "service_tier": "default",
        }
        if usage is not None:
            payload["usage"] = usage
        return cls.json(payload, **kw)

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
        **kw: Any,
    ) -> Reply:
        """A Chat Completions SSE stream.

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
        cls, text: str, *, usage: JSON | None, model: str = "gpt-4o-mini", **kw: Any
    ) -> Reply:
        return cls.json(_response_object(text, usage, model, "completed"), **kw)

    @classmethod
    def responses_stream(
        cls,
        pieces: Iterable[str],
        *,
        usage: JSON | None,
        model: str = "gpt-4o-mini",
        terminal: str = "response.completed",
        **kw: Any,
    ) -> Reply:
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
        final = _response_object("".join(texts), usage, model, status)
        frames.append(
            sse({"type": terminal, "sequence_number": len(texts) + 1, "response": final}, terminal)
        )
        return cls.stream(frames, **kw)

    # -- Anthropic Messages ------------------------------------------------------------------
    @classmethod
    def anthropic_message(
        cls, text: str, *, usage: JSON | None, model: str = "claude-3-haiku-20240307", **kw: Any
    ) -> Reply:
        payload: JSON = {
            "id": "msg_fake0001",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
        }
        if usage is not None:
            payload["usage"] = usage
        return cls.json(payload, **kw)

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


def _content_block_start(index: int, block: JSON) -> bytes:
    event = {"type": "content_block_start", "index": index, "content_block": block}
    return sse(event, "content_block_start")


def _content_block_delta(index: int, delta: JSON) -> bytes:
    return sse(
        {"type": "content_block_delta", "index": index, "delta": delta}, "content_block_delta"
    )


def _response_object(text: str, usage: JSON | None, model: str, status: str) -> JSON:
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
    }


# -- requests ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedRequest:
    """A request the server received (header names lower-cased)."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    received_at: float

    def json(self) -> Any:
        return json.loads(self.body or b"null")


# -- automatic replies ------------------------------------------------------------------------

_WORDS = (
    "budget",
    "token",
    "ledger",
    "model",
    "cost",
    "limit",
    "answer",
    "simulated",
    "reply",
    "cache",
    "stream",
    "usage",
    "request",
    "price",
    "alert",
    "hold",
)


def _prompt_tokens(payload: dict[str, Any]) -> int:
    """About one token per 4 characters of text plus 3 per message (a slight undercount of
    real tokenizers, so that holds made from real counts cover it, as with real providers)."""
    items = payload.get("messages") or payload.get("input") or ""
    if isinstance(items, str):
        items = [{"content": items}]
    texts = [str(payload.get("system") or ""), str(payload.get("instructions") or "")]
    for item in items if isinstance(items, list) else []:
        content = item.get("content") if isinstance(item, dict) else item
        if isinstance(content, list):
            texts += [str(p.get("text", "")) for p in content if isinstance(p, dict)]
        else:
            texts.append(str(content or ""))
    return max(1, sum(len(t) // 4 for t in texts) + 3 * len(items))


def auto_reply(request: RecordedRequest, words: int = 12) -> Reply:
    """A deterministic, well-formed reply for the request's API (used when nothing is queued).

    Input tokens are a stable function of the request body (about 4 bytes per token), output
    tokens one per word, capped at the request's max tokens, so usage is realistic and exact.
    """
    try:
        payload = request.json()
    except ValueError:
        return Reply.error(400, "request body is not JSON")
    if not isinstance(payload, dict):
        return Reply.error(400, "request body must be a JSON object")
    path = request.path.split("?", 1)[0]
    model = str(payload.get("model") or "gpt-4o-mini")
    cap = payload.get("max_tokens") or payload.get("max_completion_tokens")
    cap = cap or payload.get("max_output_tokens") or words
    n = max(1, min(words, int(cap)))
    pieces = [(" " if i else "") + _WORDS[(i + len(request.body)) % len(_WORDS)] for i in range(n)]
    text = "".join(pieces)
    prompt = _prompt_tokens(payload)
    stream = bool(payload.get("stream"))
    if path.endswith("/chat/completions"):
        if not stream:
            return Reply.openai_chat(text, usage=openai_usage(prompt, n), model=model)
        include = bool((payload.get("stream_options") or {}).get("include_usage"))
        usage = openai_usage(prompt, n) if include else None
        return Reply.openai_chat_stream(pieces, usage=usage, model=model)
    if path.endswith("/responses"):
        if not stream:
            return Reply.responses(text, usage=responses_usage(prompt, n), model=model)
        return Reply.responses_stream(pieces, usage=responses_usage(prompt, n), model=model)
    if path.endswith("/messages"):
        if not stream:
            return Reply.anthropic_message(text, usage=anthropic_usage(prompt, n), model=model)
        return Reply.anthropic_stream(
            pieces,
            start_usage=anthropic_usage(prompt, 1),
            delta_usage={"output_tokens": n},
            model=model,
        )
    return Reply.error(404, f"fake upstream has no route {path}")


# -- the server -------------------------------------------------------------------------------

Handler = Callable[[RecordedRequest], Reply]


class FakeUpstream:
    """The server. Start with ``with FakeUpstream() as up`` or ``start()``/``close()``.

    ``latency`` is added before every reply (a fixed upstream latency for benchmarks).
    ``handler`` replaces the automatic replies when nothing is queued.
    """

    def __init__(
        self, *, latency: float = 0.0, handler: Handler | None = None, port: int = 0
    ) -> None:
        self.latency = latency
        self.handler: Handler = handler or auto_reply
        self._port = port
        self._lock = threading.Lock()
        self._queues: dict[str | None, deque[Reply]] = {}
        self._requests: list[RecordedRequest] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._writers: set[asyncio.StreamWriter] = set()

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> FakeUpstream:
        if self._thread is not None:
            return self
        self._thread = threading.Thread(target=self._run, name="fake-upstream", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fake upstream did not start within 10 s")
        return self

    def close(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        self._thread = None
        self._loop = None

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        self._server = loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", self._port, reuse_address=True)
        )
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            self._server.close()
            for w in list(self._writers):
                w.transport.abort()
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            with contextlib.suppress(Exception):
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.close()

    # -- addresses -------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("fake upstream is not running; call start() first")
        sock: socket.socket = self._server.sockets[0]
        return int(sock.getsockname()[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """For ``openai.OpenAI(base_url=...)`` (the SDK appends ``/chat/completions``)."""
        return f"{self.base_url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        """For ``anthropic.Anthropic(base_url=...)`` (the SDK appends ``/v1/messages``)."""
        return self.base_url

    # -- scripting -------------------------------------------------------------------------
    def enqueue(self, *replies: Reply, path: str | None = None) -> None:
        """Queue replies, answered in order; ``path`` restricts them to one route suffix."""
        with self._lock:
            self._queues.setdefault(path, deque()).extend(replies)

    def reset(self) -> None:
        """Forget queued replies and recorded requests (between tests sharing a server)."""
        with self._lock:
            self._queues.clear()
            self._requests.clear()

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def pending(self) -> int:
        with self._lock:
            return sum(len(q) for q in self._queues.values())

    def _next_reply(self, request: RecordedRequest) -> Reply:
        path = request.path.split("?", 1)[0]
        with self._lock:
            self._requests.append(request)
            for key, queue in self._queues.items():
                if key is not None and queue and path.endswith(key):
                    return queue.popleft()
            shared = self._queues.get(None)
            if shared:
                return shared.popleft()
        return self.handler(request)

    # -- HTTP ------------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                reply = self._next_reply(request)
                keep = await self._send(writer, reply)
                if not keep or request.headers.get("connection", "").lower() == "close":
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            return
        except asyncio.CancelledError:  # the server is shutting down
            return
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    async def _send(self, writer: asyncio.StreamWriter, reply: Reply) -> bool:
        wait = self.latency + reply.delay
        if wait:
            await asyncio.sleep(wait)
        if reply.reset_after == 0:
            _abort(writer)
            return False
        headers = {k.lower(): v for k, v in reply.headers.items()}
        headers.setdefault("x-request-id", f"req_fake_{time.monotonic_ns()}")
        lines = [f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'Status')}"]
        if reply.chunks is None:
            body = reply.body or b""
            headers["content-length"] = str(len(body))
            lines += [f"{k}: {v}" for k, v in headers.items()]
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
            await writer.drain()
            return True
        headers["transfer-encoding"] = "chunked"
        headers.setdefault("cache-control", "no-cache")
        lines += [f"{k}: {v}" for k, v in headers.items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        for i, piece in enumerate(reply.chunks):
            if reply.reset_after is not None and i >= reply.reset_after:
                await writer.drain()
                _abort(writer)
                return False
            if reply.chunk_delay and i:
                await asyncio.sleep(reply.chunk_delay)
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    408: "Request Timeout",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    529: "Overloaded",
}


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (SO_LINGER 0), as a crashed proxy or load balancer would."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _read_request(reader: asyncio.StreamReader) -> RecordedRequest | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    first, *rest = head.decode("latin-1").split("\r\n")
    method, path, _ = first.split(" ", 2)
    headers: dict[str, str] = {}
    for line in rest:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
            data = await reader.readexactly(size + 2)
            if size == 0:
                break
            parts.append(data[:-2])
        body = b"".join(parts)
    else:
        body = await reader.readexactly(int(headers.get("content-length", "0")))
    return RecordedRequest(method, path, headers, body, time.time())


def main(argv: Sequence[str] | None = None) -> None:
    """Run the server in the foreground (automatic replies), printing its base URL."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each reply")
    args = parser.parse_args(argv)
    server = FakeUpstream(latency=args.latency, port=args.port).start()
    print(server.base_url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


if __name__ == "__main__":
    main()
