"""The few ASGI helpers the gateway needs: read a bounded body, send a whole response."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

JSON_TYPE = (b"content-type", b"application/json")


class BodyTooLarge(Exception):
    """A request body passed the gateway's size limit; answered with 413 before it is read whole."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body is larger than the gateway's limit of {limit} bytes")
        self.limit = limit


class ClientGone(Exception):
    """The client disconnected before its request body arrived."""


def header_map(scope: Scope) -> dict[bytes, bytes]:
    """Request headers by lower-case name (ASGI servers lower-case them already)."""
    return {k.lower(): v for k, v in scope.get("headers", ())}


async def read_body(receive: Receive, limit: int, declared: bytes | None) -> bytes:
    """The whole request body, refusing more than ``limit`` bytes (before reading, when the
    client declared a larger Content-Length)."""
    if declared is not None:
        try:
            if int(declared) > limit:
                raise BodyTooLarge(limit)
        except ValueError:
            pass
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(limit)
            parts.append(chunk)
        if not message.get("more_body", False):
            return parts[0] if len(parts) == 1 else b"".join(parts)


async def send_bytes(
    send: Send, status: int, body: bytes, headers: Iterable[tuple[bytes, bytes]] = (JSON_TYPE,)
) -> None:
    """Send a complete ASGI response with ``body`` and its content length."""
    hdrs = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def send_json(
    send: Send, status: int, payload: Any, headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    """Send ``payload`` as a compact JSON response."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    await send_bytes(send, status, body, [JSON_TYPE, *headers])


__all__ = [
    "ASGIApp",
    "BodyTooLarge",
    "ClientGone",
    "Headers",
    "Receive",
    "Scope",
    "Send",
    "header_map",
    "read_body",
    "send_bytes",
    "send_json",
]
