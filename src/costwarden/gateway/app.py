"""The gateway as one ASGI application: the proxied routes, operations endpoints, mounts.

A plain ASGI callable, not a framework: the proxied routes are a dict lookup, so the
per-request cost is the proxy's own work. The admin API (``costwarden.gateway.admin``) and the
dashboard (``costwarden.dashboard``) are separate ASGI apps, imported lazily and mounted at
``/admin`` and ``/dashboard`` when present (with ``root_path`` set, as Starlette's ``Mount``
does).

Where the ledger calls of a request run (its reservation, settlement, key and rate-limit
reads): on a worker thread for a remote ledger (PostgreSQL: each is a round trip), inline in
the event loop for SQLite and memory (tens of microseconds: a thread hop would cost more).
Measured for issue #15 with 2 workers on one SQLite file, where a call waits whenever the
other worker holds the file's lock: running those calls on one thread of each worker's own
cost 25-30% more CPU per request and, on a machine not loaded by other jobs, gave the event
loop no shorter stalls (its lag p99 2-5 ms either way), so they stay inline.

Lifespan: startup opens the upstream connection pool and builds the tokenizer; shutdown
(after the server stopped accepting and gave in-flight requests ``shutdown_grace_seconds`` to
finish) settles every hold still open, charging what was produced, closes the pool and the
manager.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import time
from collections.abc import Mapping
from typing import Any, Final

from costwarden.budget import WindowCache
from costwarden.clients.offload import is_remote, run_offloaded
from costwarden.clients.settlement import CallAccount
from costwarden.errors import CostwardenError, ProviderError
from costwarden.gateway.asgi import ASGIApp, Receive, Scope, Send, send_bytes, send_json
from costwarden.gateway.auth import KeyCache
from costwarden.gateway.budgets import KeyFraction
from costwarden.gateway.control_watch import ControlWatch
from costwarden.gateway.forward import Forwarder
from costwarden.gateway.heap import freeze_startup_heap
from costwarden.gateway.metrics import Metrics
from costwarden.gateway.policy import model_allowed
from costwarden.gateway.proxy import Proxy, Refused
from costwarden.gateway.ratelimit import RateLimiter
from costwarden.gateway.settings import GatewaySettings
from costwarden.gateway.upstreams import Route, Upstream, build_upstreams
from costwarden.manager import BudgetManager
from costwarden.tokens import get_encoding

log = logging.getLogger("costwarden.gateway")

ROUTES: Final[dict[str, Route]] = {
    "/v1/chat/completions": "chat",
    "/v1/responses": "responses",
    "/v1/embeddings": "embeddings",
    "/v1/messages": "messages",
    "/v1/messages/count_tokens": "count_tokens",
}
# The same routes without the /v1 prefix (clients configured with a base URL ending in /v1
# that the gateway was mounted under, or OpenAI-compatible tools that drop it).
ROUTES.update({path[3:]: route for path, route in list(ROUTES.items())})


class Gateway:
    """The ASGI app. ``environ`` supplies the provider credentials and the master key;
    ``close_manager``: the app owns the manager and closes it at shutdown (``serve`` does);
    ``freeze_heap``: at startup, take the process's heap out of the garbage collector's full
    collections (:mod:`costwarden.gateway.heap`; ``serve`` does, a process of its own)."""

    def __init__(
        self,
        manager: BudgetManager,
        settings: GatewaySettings | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        upstreams: Mapping[str, Upstream] | None = None,
        close_manager: bool = False,
        freeze_heap: bool = False,
    ) -> None:
        env = os.environ if environ is None else environ
        self.settings = settings or GatewaySettings()
        self.manager = manager
        self.upstreams = (
            dict(upstreams) if upstreams is not None else build_upstreams(self.settings, env)
        )
        ledger: Any = manager.ledger
        self.offload = is_remote(manager)
        """Whether ledger calls run on worker threads (a remote ledger) or inline."""
        self.keys = KeyCache(ledger, self.settings.key_cache_seconds)
        self.control = ControlWatch(ledger, remote=self.offload)
        self.fractions = KeyFraction(manager, ttl=max(self.settings.key_cache_seconds, 0.001))
        self.rates = RateLimiter(ledger)
        self.forwarder = Forwarder()
        self.metrics = Metrics()
        self.windows = WindowCache()
        self.inflight: set[CallAccount] = set()
        self.proxy = Proxy(self)
        self._master_key = (
            env.get(self.settings.master_key_env) if self.settings.master_key_env else None
        )
        self._mounts: dict[str, ASGIApp | None] = {}
        self.started_at = time.time()
        self._close_manager = close_manager
        self._freeze_heap = freeze_heap
        if self._master_key:
            self._mount("/admin")  # a bad master key is a ConfigurationError now, not a 500 later

    # -- mounts ---------------------------------------------------------------------------------
    def _mount(self, prefix: str) -> ASGIApp | None:
        if prefix in self._mounts:
            return self._mounts[prefix]
        app: ASGIApp | None = None
        try:
            if prefix == "/admin":
                if self._master_key:
                    module = importlib.import_module("costwarden.gateway.admin")
                    app = module.admin_app(self.manager, master_key=self._master_key)
            else:
                module = importlib.import_module("costwarden.dashboard")
                factory = getattr(module, "dashboard_app", None)
                app = (  # the master key's login; without one the dashboard has no login
                    factory(self.manager, master_key=self._master_key or None)
                    if factory is not None
                    else None
                )
        except ImportError:
            app = None
        self._mounts[prefix] = app
        return app

    # -- ASGI -----------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        route = ROUTES.get(path)
        if route is not None:
            if method != "POST":
                await self._not_allowed(send, "POST")
                return
            await self.proxy.handle(route, scope, receive, send)
            return
        if path in ("/v1/models", "/models"):
            await self._models(scope, send)
            return
        if path == "/health":
            await send_json(send, 200, {"status": "ok"})
            return
        if path == "/ready":
            await self._ready(send)
            return
        if path == "/metrics":
            await send_bytes(
                send, 200, self.metrics.render(), [(b"content-type", b"text/plain; version=0.0.4")]
            )
            return
        for prefix in ("/admin", "/dashboard"):
            if path == prefix or path.startswith(prefix + "/"):
                app = self._mount(prefix)
                if app is None:
                    break
                child = dict(scope)
                child["root_path"] = scope.get("root_path", "") + prefix
                await app(child, receive, send)
                return
        await send_json(
            send,
            404,
            {
                "error": {
                    "message": f"no route {path}",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "not_found",
                }
            },
        )

    async def _not_allowed(self, send: Send, allow: str) -> None:
        await send_json(
            send,
            405,
            {
                "error": {
                    "message": f"use {allow}",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "method_not_allowed",
                }
            },
            [(b"allow", allow.encode())],
        )

    async def _models(self, scope: Scope, send: Send) -> None:
        from costwarden.gateway.asgi import header_map

        try:
            key = await self.proxy._authenticate(header_map(scope))
        except Refused as exc:
            await send_bytes(
                send,
                exc.reply.status,
                exc.reply.body("openai"),
                [(b"content-type", b"application/json")],
            )
            return
        names: list[str] = (
            list(key.models) if key.models is not None else self.settings.exact_models()
        )
        names = [
            n
            for n in names
            if not any(c in n for c in "*?[")
            and model_allowed(key, n)
            and self.settings.route(n) is not None
        ]
        created = int(self.started_at)
        data = [
            {
                "id": n,
                "object": "model",
                "created": created,
                "owned_by": route.upstream,
            }
            for n in names
            if (route := self.settings.route(n)) is not None
        ]
        await send_json(send, 200, {"object": "list", "data": data})

    async def _ready(self, send: Send) -> None:
        ledger: Any = self.manager.ledger
        try:
            if self.offload:
                await run_offloaded(ledger.control_version, what="readiness")
            else:
                ledger.control_version()
        except CostwardenError as exc:
            await send_json(
                send, 503, {"status": "unavailable", "reason": f"ledger: {type(exc).__name__}"}
            )
            return
        await send_json(send, 200, {"status": "ready", "in_flight": len(self.inflight)})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def startup(self) -> None:
        """Open the upstream connection pool and build the tokenizer (the ASGI lifespan, before
        any request: built by the first estimate instead, it held that request and every other
        one on the event loop for 0.5-1 s) and the prices of the routed models; then, for
        ``serve``, freeze the startup heap."""
        await self.forwarder.start(self.upstreams.values())
        await asyncio.to_thread(get_encoding, "o200k_base")
        await asyncio.to_thread(self._warm_prices)
        if self._freeze_heap:
            freeze_startup_heap()

    def _warm_prices(self) -> None:
        """Resolve the price of every model routed by name, so the price catalogue (the
        genai-prices snapshot: ~0.5 s and ~40,000 objects) is loaded before the first request
        and before the heap is frozen, not by the first request that needs it. A model with no
        known price is skipped: its requests are refused with their own error as before."""
        pricing = self.manager.pricing
        for route in self.settings.routes:
            upstream = self.upstreams.get(route.upstream)
            if route.is_glob or route.free or upstream is None:
                continue
            with contextlib.suppress(CostwardenError):
                pricing.resolve(route.pattern, upstream.provider)

    async def shutdown(self) -> None:
        """Settle every hold still open (charging what was produced), then close."""
        deadline = time.monotonic() + self.settings.shutdown_grace_seconds
        while self.inflight and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for account in list(self.inflight):
            if not account.settled:
                try:
                    await account.fail_async(ProviderError("the gateway shut down"))
                except Exception:
                    log.exception("costwarden: could not settle a hold at shutdown")
            self.inflight.discard(account)
        await self.forwarder.close()
        if self._close_manager:
            self.manager.close()


__all__ = ["ROUTES", "Gateway"]
