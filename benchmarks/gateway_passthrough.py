"""The floor of the gateway benchmark: a bare passthrough proxy on the gateway's own stack.

``uvicorn benchmarks.gateway_passthrough:app --http httptools --loop uvloop`` with
``BENCH_UPSTREAM`` set to the upstream's base URL. A plain ASGI callable (like the gateway's
app) that reads the body, POSTs it with one pooled aiohttp ``ClientSession`` per worker (the
gateway's connector settings) and passes the answer's bytes back as they come: no keys, no
parsing, no estimate, no ledger, no logs. What any proxy on this stack pays at least.
"""

from __future__ import annotations

import os
from typing import Any

import aiohttp

UPSTREAM = os.environ.get("BENCH_UPSTREAM", "http://127.0.0.1:9/v1")
_session: aiohttp.ClientSession | None = None


async def _client() -> aiohttp.ClientSession:
    global _session
    if _session is None:
        connector = aiohttp.TCPConnector(
            limit=0, limit_per_host=256, keepalive_timeout=30, enable_cleanup_closed=True
        )
        _session = aiohttp.ClientSession(
            connector=connector, auto_decompress=False, skip_auto_headers=("User-Agent",)
        )
    return _session


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if _session is not None:
                    await _session.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    session = await _client()
    path = scope["path"].removeprefix("/v1")
    async with session.post(
        UPSTREAM + path, data=body, headers={"content-type": "application/json"}
    ) as resp:
        await send(
            {
                "type": "http.response.start",
                "status": resp.status,
                "headers": [
                    (b"content-type", resp.headers.get("content-type", "").encode("latin-1"))
                ],
            }
        )
        async for chunk in resp.content.iter_any():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})
