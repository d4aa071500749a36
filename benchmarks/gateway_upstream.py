"""The fake upstream of the gateway benchmark: OpenAI Chat Completions after a fixed delay.

``python -m benchmarks.gateway_upstream PORT [DELAY_S]`` (its own process). A raw asyncio
protocol on uvloop, not a web framework, so that it costs as little CPU as possible on a
2-core machine where it shares the cores with the proxy under test and the load generator.
HTTP/1.1 with keep-alive; one request at a time per connection (no pipelining: aiohttp, uvicorn
and LiteLLM's httpx do not pipeline).

A non-streaming request is answered whole after ``DELAY_S`` (50 ms). A streaming one
(``"stream": true`` in the body) gets its headers and first content chunk after ``DELAY_S``,
then four more content chunks, then (when the body asks for ``include_usage``) the usage
chunk, then ``[DONE]``, all in one chunked-encoding reply.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import cast

_REPLY = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1764547200,
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello! How can I help you?"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 13, "completion_tokens": 8, "total_tokens": 21},
    },
    separators=(",", ":"),
).encode()
_PLAIN = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-request-id: req-bench\r\n"
    b"content-length: " + str(len(_REPLY)).encode() + b"\r\n\r\n" + _REPLY
)
_STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nx-request-id: req-bench\r\n"
    b"transfer-encoding: chunked\r\n\r\n"
)


def _event(obj: object) -> bytes:
    data = b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def _delta(text: str, usage: bool) -> bytes:
    chunk: dict[str, object] = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1764547200,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
    }
    if usage:
        chunk["usage"] = None
    return _event(chunk)


def _usage_chunk() -> bytes:
    return _event(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": 1764547200,
            "model": "gpt-4o-mini",
            "choices": [],
            "usage": {"prompt_tokens": 13, "completion_tokens": 5, "total_tokens": 18},
        }
    )


_DONE = b"e\r\ndata: [DONE]\n\n\r\n0\r\n\r\n"
_WORDS = ("Hello", "!", " How", " can", " I")


class _Conn(asyncio.Protocol):
    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].lower()
            length = 0
            at = head.find(b"content-length:")
            if at >= 0:
                stop = head.find(b"\r\n", at)
                length = int(head[at + 15 : stop if stop >= 0 else len(head)])
            if len(self.buf) < end + 4 + length:
                return
            body = self.buf[end + 4 : end + 4 + length]
            self.buf = self.buf[end + 4 + length :]
            loop = asyncio.get_running_loop()
            if b'"stream":true' in body.replace(b" ", b""):
                usage = b"include_usage" in body
                loop.call_later(self.delay, self._stream, usage)
            else:
                loop.call_later(self.delay, self._write, _PLAIN)

    def _write(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)

    def _stream(self, usage: bool) -> None:
        self._write(_STREAM_HEAD + _delta(_WORDS[0], usage))
        loop = asyncio.get_running_loop()
        rest = b"".join(_delta(w, usage) for w in _WORDS[1:])
        if usage:
            rest += _usage_chunk()
        loop.call_later(0.002, self._write, rest + _DONE)


async def _serve(port: int, delay: float) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _Conn(delay), "127.0.0.1", port, backlog=4096, reuse_address=True
    )
    print(f"upstream ready on {port}", flush=True)
    deadline = time.monotonic() + 3600  # bounded: the benchmark kills it long before
    async with server:
        while time.monotonic() < deadline:
            await asyncio.sleep(1)


def main() -> None:
    import uvloop

    port = int(sys.argv[1])
    delay = float(sys.argv[2]) if len(sys.argv) > 2 else 0.05
    uvloop.run(_serve(port, delay))


if __name__ == "__main__":
    main()
