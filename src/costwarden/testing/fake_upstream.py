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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from costwarden.testing.wire import (
    JSON,
    KEEPALIVE,
    Reply,
    anthropic_usage,
    openai_usage,
    responses_usage,
    sse,
)

__all__ = [
    "JSON",
    "KEEPALIVE",
    "FakeUpstream",
    "RecordedRequest",
    "Reply",
    "anthropic_usage",
    "auto_reply",
    "openai_usage",
    "responses_usage",
    "sse",
]

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
        """The request body parsed as JSON (None when it was empty)."""
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
    if path.endswith("/embeddings"):
        raw = payload.get("input")
        inputs = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else []
        tokens = sum(max(1, len(str(i)) // 4) for i in inputs)
        data = [
            {"object": "embedding", "index": i, "embedding": [0.0, 0.5, 1.0]}
            for i in range(len(inputs))
        ]
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return Reply.json({"object": "list", "data": data, "model": model, "usage": usage})
    if path.endswith("/messages/count_tokens"):
        return Reply.json({"input_tokens": prompt})
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
        """Start serving on a free loopback port in a background thread (no-op if running)."""
        if self._thread is not None:
            return self
        self._thread = threading.Thread(target=self._run, name="fake-upstream", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fake upstream did not start within 10 s")
        return self

    def close(self) -> None:
        """Stop the server and its event-loop thread; safe to call twice."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        self._thread = None
        self._loop = None

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
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
            with self._lock:
                writers = list(self._writers)
            for w in writers:
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
        """The TCP port the server listens on; a RuntimeError if it has not been started."""
        if self._server is None:
            raise RuntimeError("fake upstream is not running; call start() first")
        sock: socket.socket = self._server.sockets[0]
        return int(sock.getsockname()[1])

    @property
    def base_url(self) -> str:
        """The server's root URL on loopback, to hand to an SDK client as base_url."""
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
        """A copy of the requests received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def connections(self) -> int:
        """How many client connections are open now: a test can assert that a client it closed
        let go of its connections (the server sees them end)."""
        with self._lock:
            return len(self._writers)

    @property
    def pending(self) -> int:
        """How many queued replies have not been served yet (a test can assert all were used)."""
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
        with self._lock:
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
            with self._lock:
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
