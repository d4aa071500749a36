"""Sending a request to its upstream: over HTTP (aiohttp, pooled keep-alive connections) or
to the in-process simulated provider, behind one small interface.

Why aiohttp for the upstream side: measured for issue #15 on this 2-core machine, a proxy of
uvicorn (httptools, uvloop) with an aiohttp client costs 0.55-0.87 ms CPU per request, the
same with httpx2 1.5-1.7 ms, and httpx2 falls off at high concurrency. Each upstream gets its
own ``ClientSession`` per worker, whose pool keeps connections alive and holds at most the
upstream's ``max_connections`` at once (a request past that waits for a free connection,
within its ``connect_timeout``): one busy upstream cannot take every socket of the worker.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable
from typing import Any, Final, Protocol

import aiohttp

from costwarden.gateway.simulated import SimulatedReply, simulate
from costwarden.gateway.upstreams import ANTHROPIC_VERSION, Route, Upstream

# Headers of the upstream's answer a client may see (everything else stays in the gateway).
PASS_BACK: Final = frozenset(
    {"x-request-id", "request-id", "openai-processing-ms", "openai-version", "anthropic-version"}
)
# Client headers the upstream may see (never the client's credentials).
PASS_ON: Final = (b"anthropic-version", b"anthropic-beta", b"openai-beta")


class UpstreamTimeout(Exception):
    """The upstream sent nothing for longer than its ``timeout``."""


class UpstreamUnreachable(Exception):
    """The upstream could not be connected to, or dropped the connection."""


class Response(Protocol):
    """An upstream's reply as the proxy reads it: status, content type, headers to pass on, and the
    body whole or in chunks.
    """

    status: int
    content_type: bytes
    passed_headers: list[tuple[bytes, bytes]]

    async def read(self) -> bytes:
        """The whole body (a non-streamed reply)."""
        ...

    def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives (a streamed reply), for passing on chunk by chunk."""
        ...

    def close(self) -> None:
        """Give the connection back to the pool (or drop it if the body was not read to the end)."""
        ...


class _HttpResponse:
    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self._resp = resp
        self.status = resp.status
        self.content_type = resp.headers.get("content-type", "application/json").encode("latin-1")
        self.passed_headers = [
            (k.lower().encode(), v.encode("latin-1"))
            for k, v in resp.headers.items()
            if k.lower() in PASS_BACK
        ]

    async def read(self) -> bytes:
        try:
            return await self._resp.read()
        except TimeoutError as exc:
            raise UpstreamTimeout(str(exc)) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamUnreachable(f"{type(exc).__name__}: {exc}") from exc
        finally:
            self._resp.release()

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._resp.content.iter_any():
                yield chunk
        except TimeoutError as exc:
            raise UpstreamTimeout(str(exc)) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamUnreachable(f"{type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        self._resp.close()  # drops the connection: the upstream stops generating


class _SimulatedResponse:
    def __init__(self, reply: SimulatedReply, delay: float) -> None:
        self._reply = reply
        self._delay = delay
        self.status = reply.status
        self.content_type = reply.content_type
        self.passed_headers: list[tuple[bytes, bytes]] = []

    async def read(self) -> bytes:
        if self._reply.body is not None:
            return self._reply.body
        return b"".join(self._reply.chunks or ())

    def chunks(self) -> AsyncIterator[bytes]:
        return self._reply.iter_chunks(self._delay)

    def close(self) -> None:
        pass


def upstream_headers(upstream: Upstream, client: dict[bytes, bytes]) -> dict[str, str]:
    """The headers sent upstream: JSON content type, the upstream's own auth, and the client headers
    the gateway passes on.
    """
    headers = {"content-type": "application/json", "accept": "application/json"}
    for name in PASS_ON:
        value = client.get(name)
        if value is not None:
            headers[name.decode()] = value.decode("latin-1")
    if upstream.kind == "anthropic":
        headers.setdefault("anthropic-version", ANTHROPIC_VERSION.decode())
    for name, value in upstream.auth:
        headers[name.decode()] = value.decode("latin-1")
    return headers


class Forwarder:
    """Sends requests upstream; one per worker (it owns the connection pools, one per
    upstream)."""

    def __init__(self) -> None:
        self._sessions: dict[str, aiohttp.ClientSession] = {}

    async def start(self, upstreams: Iterable[Upstream] = ()) -> None:
        """Open the connection pool of each HTTP upstream (idempotent; one that is not open yet
        when a request needs it is opened then)."""
        for upstream in upstreams:
            if upstream.settings.kind != "simulated":
                self._session(upstream)

    def _session(self, upstream: Upstream) -> aiohttp.ClientSession:
        session = self._sessions.get(upstream.name)
        if session is None:
            connector = aiohttp.TCPConnector(
                limit=upstream.settings.max_connections,
                limit_per_host=0,  # the limit is the upstream's, whatever hosts it resolves to
                keepalive_timeout=30,
                enable_cleanup_closed=True,
            )
            settings = upstream.settings
            timeout = aiohttp.ClientTimeout(  # connect: a free pooled connection, or a new one
                total=None,
                connect=settings.connect_timeout,
                sock_connect=settings.connect_timeout,
                sock_read=settings.timeout,
            )
            session = self._sessions[upstream.name] = aiohttp.ClientSession(
                connector=connector,
                timeout=timeout,  # the upstream's own: one session per upstream
                auto_decompress=False,
                skip_auto_headers=("User-Agent",),
            )
        return session

    async def close(self) -> None:
        """Close the upstream connection pools (the ASGI lifespan's shutdown)."""
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            await session.close()

    async def send(
        self,
        upstream: Upstream,
        route: Route,
        model: str,
        body: bytes,
        parsed: dict[str, Any],
        client_headers: dict[bytes, bytes],
    ) -> Response:
        settings = upstream.settings
        if settings.kind == "simulated":
            if settings.latency:
                await asyncio.sleep(settings.latency)
            reply = simulate(
                route, parsed if parsed.get("model") == model else {**parsed, "model": model}
            )
            return _SimulatedResponse(reply, settings.latency / 20 if settings.latency else 0.0)
        session = self._session(upstream)
        url = upstream.target(route, model)
        try:
            resp = await session.post(
                url,
                data=body,
                headers=upstream_headers(upstream, client_headers),
                allow_redirects=False,
            )
        except TimeoutError as exc:
            raise UpstreamTimeout(f"no answer from upstream {upstream.name!r} in time") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamUnreachable(
                f"upstream {upstream.name!r} failed: {type(exc).__name__}"
            ) from exc
        return _HttpResponse(resp)


def loads_object(body: bytes) -> dict[str, Any] | None:
    """Parse ``body`` as a JSON object; None if it is not JSON or not an object."""
    try:
        value = json.loads(body)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


__all__ = [
    "Forwarder",
    "Response",
    "UpstreamTimeout",
    "UpstreamUnreachable",
    "loads_object",
    "upstream_headers",
]
