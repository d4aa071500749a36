"""One proxied request: authenticate, admit, forward, settle.

The order is the contract (docs/gateway.md):

1. the virtual key (401 unknown, revoked or expired), the body (413 over the size limit,
   400 not a JSON object with a model), the key's model allow-list (403);
2. the route of the model to an upstream (404 no route; 400 the upstream does not speak this
   API); the key's downgrade rule; the key's rpm/tpm (429 ``rate_limit_exceeded``);
3. the estimate (prompt tokens + output bound, priced; 400 for an unpriced model unless its
   route is free) held on every budget that applies, in one atomic ledger step
   (429 ``budget_exceeded`` naming the budget, what is left and when it resets);
4. the upstream call; its answer is passed back as it came (a stream chunk by chunk); the hold
   is replaced by the call's record when the answer ends, is cut, or the client leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from costwarden.budget import Scope
from costwarden.clients.apis import Api, StreamDecoder
from costwarden.clients.attribution import Attribution
from costwarden.clients.estimation import Estimate, estimate_call
from costwarden.clients.offload import run_offloaded
from costwarden.clients.settlement import CallAccount
from costwarden.control import VirtualKey
from costwarden.errors import (
    BudgetExceededError,
    CostwardenError,
    InvalidInputError,
    KeyAuthError,
    LedgerUnavailableError,
    ProviderError,
    UnknownModelError,
)
from costwarden.gateway.asgi import (
    JSON_TYPE,
    BodyTooLarge,
    ClientGone,
    Receive,
    Send,
    header_map,
    read_body,
    send_bytes,
)
from costwarden.gateway.auth import refusal_message, secret_from_headers
from costwarden.gateway.forward import Response, UpstreamTimeout, UpstreamUnreachable, loads_object
from costwarden.gateway.logs import request_line
from costwarden.gateway.policy import END_USER_HEADER, end_user_tag, key_policy, model_allowed
from costwarden.gateway.replies import Dialect, ErrorReply, budget_denial, rate_denial
from costwarden.gateway.settings import ModelRoute
from costwarden.gateway.sse import EventSplitter, is_usage_only, may_be_usage_only, parse_event
from costwarden.gateway.upstreams import Route, Upstream
from costwarden.records import Usage

if TYPE_CHECKING:
    from costwarden.budget import WindowCache
    from costwarden.gateway.auth import KeyCache
    from costwarden.gateway.budgets import KeyFraction
    from costwarden.gateway.control_watch import ControlWatch
    from costwarden.gateway.forward import Forwarder
    from costwarden.gateway.metrics import Metrics
    from costwarden.gateway.ratelimit import RateLimiter
    from costwarden.gateway.settings import GatewaySettings
    from costwarden.manager import BudgetManager

T = TypeVar("T")
_UNREAD: Any = object()  # an event of a stream not parsed yet
_API: dict[str, Api] = {"chat": "chat", "responses": "responses", "messages": "messages"}
DOWNGRADE_HEADER = b"x-costwarden-downgraded"


class Refused(Exception):
    """A request the gateway answers itself, with an error in the client's format."""

    def __init__(self, reply: ErrorReply, reason: str) -> None:
        super().__init__(reply.message)
        self.reply = reply
        self.reason = reason


def _refuse(status: int, message: str, code: str, reason: str | None = None) -> Refused:
    return Refused(ErrorReply(status, message, code), reason or code)


@dataclass
class Call:
    """What the gateway knows about one request as it goes."""

    route: Route
    dialect: Dialect
    started: float = field(default_factory=time.perf_counter)
    key: VirtualKey | None = None
    model: str | None = None
    requested: str | None = None
    upstream: str | None = None
    status: int = 0
    outcome: str = ""
    cost_nanos: int = 0
    downgraded: bool = False


class ProxyParts(Protocol):
    """What the proxy uses of its gateway (``costwarden.gateway.app.Gateway`` has them all).

    Why a Protocol: the app builds the proxy and the proxy reads the app's parts; naming the
    parts here keeps the import one way (app -> proxy) with no circle between the two."""

    @property
    def settings(self) -> GatewaySettings:
        """The gateway's settings (routes, limits)."""

    @property
    def manager(self) -> BudgetManager:
        """The budget manager every request reserves through."""

    @property
    def upstreams(self) -> Mapping[str, Upstream]:
        """The upstreams by name."""

    @property
    def offload(self) -> bool:
        """Whether ledger calls run on worker threads (a remote ledger)."""

    @property
    def keys(self) -> KeyCache:
        """The virtual-key cache."""

    @property
    def control(self) -> ControlWatch:
        """The control-plane version watch."""

    @property
    def fractions(self) -> KeyFraction:
        """Each key's budget fraction used (for downgrades)."""

    @property
    def rates(self) -> RateLimiter:
        """The per-key rpm/tpm limiter."""

    @property
    def forwarder(self) -> Forwarder:
        """The upstream connection pool."""

    @property
    def metrics(self) -> Metrics:
        """The Prometheus counters."""

    @property
    def windows(self) -> WindowCache:
        """Budget windows, for a denial's reset time."""

    @property
    def inflight(self) -> set[CallAccount]:
        """The holds of requests in flight (settled at shutdown)."""


class Proxy:
    """The proxied routes of one gateway process."""

    def __init__(self, gateway: ProxyParts) -> None:
        self.gw = gateway

    # -- blocking ledger work, off the loop on a remote ledger ----------------------------------
    async def _blocking(self, fn: Callable[[], T], what: str) -> T:
        if self.gw.offload:
            return await run_offloaded(fn, what=what)
        return fn()

    # -- the entry point ------------------------------------------------------------------------
    async def handle(self, route: Route, scope: Any, receive: Receive, send: Send) -> None:
        """Serve one proxied API call: authenticate, admit against budgets and rate limits, forward,
        settle the real cost, and reply in the client's dialect.
        """
        dialect: Dialect = "anthropic" if route in ("messages", "count_tokens") else "openai"
        call = Call(route, dialect)
        try:
            await self._handle(call, scope, receive, send)
        except Refused as exc:
            call.status = exc.reply.status
            call.outcome = exc.reason
            self.gw.metrics.denial(exc.reason) if exc.reply.status == 429 else None
            await send_bytes(
                send, exc.reply.status, exc.reply.body(dialect), [JSON_TYPE, *exc.reply.headers]
            )
        except ClientGone:
            call.status, call.outcome = 499, "client_gone"
        finally:
            self.gw.metrics.request(route, call.status)
            request_line(
                route=route,
                status=call.status,
                key_id=call.key.key_id if call.key else None,
                model=call.model,
                requested_model=call.requested if call.downgraded else None,
                upstream=call.upstream,
                outcome=call.outcome,
                cost_usd=call.cost_nanos / 1e9,
                ms=round((time.perf_counter() - call.started) * 1000, 2),
            )

    async def _authenticate(self, headers: dict[bytes, bytes]) -> VirtualKey:
        secret = secret_from_headers(headers.get(b"authorization"), headers.get(b"x-api-key"))
        if secret is None:
            raise _refuse(
                401,
                "no virtual key: send a costwarden key (cw-...) as 'Authorization: Bearer' "
                "or 'x-api-key'",
                "missing_key",
            )
        gw = self.gw
        cache = gw.keys
        now = time.time()
        try:
            # Unreachable: answers cached within key_cache_seconds stand; a miss reads it.
            with contextlib.suppress(LedgerUnavailableError):
                cache.sync(await gw.control.version())
            entry = cache.cached(secret, now)
            if entry is None:
                entry = await self._blocking(partial(cache.load, secret, now), "auth")
            return cache.answer(entry, secret, now)
        except KeyAuthError as exc:
            raise _refuse(401, refusal_message(exc), "invalid_api_key") from None
        except LedgerUnavailableError as exc:
            raise _refuse(
                503,
                f"the ledger is unavailable, so no key can be checked: {exc}",
                "ledger_unavailable",
            ) from None

    async def _handle(self, call: Call, scope: Any, receive: Receive, send: Send) -> None:
        gw = self.gw
        headers = header_map(scope)
        key = call.key = await self._authenticate(headers)
        try:
            raw = await read_body(
                receive, gw.settings.max_body_bytes, headers.get(b"content-length")
            )
        except BodyTooLarge as exc:
            raise _refuse(413, str(exc), "request_too_large") from None
        body = loads_object(raw)
        if body is None:
            raise _refuse(400, "the request body must be a JSON object", "invalid_json")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise _refuse(400, "the request needs a 'model' (a model name)", "missing_model")
        call.requested = call.model = model
        if not model_allowed(key, model):
            raise _refuse(
                403,
                f"this key may not use model {model!r}; it may use: {', '.join(key.models or ())}",
                "model_not_allowed",
            )
        try:
            policy = key_policy(key)
        except InvalidInputError as exc:
            raise _refuse(
                403, f"this key's gateway policy is invalid: {exc}", "bad_key_policy"
            ) from None
        tags = self._end_user(key, policy.end_users, headers, body, call.route)
        route_cfg, upstream = self._route(call, model)
        if call.route == "count_tokens":  # exempt from budgets: nothing is generated or billed
            await self._passthrough(call, upstream, model, raw, body, headers, send)
            return
        if policy.downgrade_at is not None and policy.downgrade_to and model != policy.downgrade_to:
            target = policy.downgrade_to
            fraction = await self._blocking(partial(gw.fractions.fraction, key), "key usage")
            if fraction >= policy.downgrade_at and model_allowed(key, target):
                cfg = gw.settings.route(target)
                if cfg is not None and gw.upstreams[cfg.upstream].speaks(call.route):
                    call.downgraded = True
                    model = call.model = target
                    route_cfg, upstream = self._route(call, model)
        await self._admit_and_forward(
            call, key, route_cfg, upstream, model, raw, body, headers, tags, send, receive
        )

    def _end_user(
        self,
        key: VirtualKey,
        allowed: bool,
        headers: dict[bytes, bytes],
        body: dict[str, Any],
        route: Route,
    ) -> tuple[str, ...]:
        """The end-user tag (see policy.end_user_tag for the rule), or none."""
        named = headers.get(END_USER_HEADER)
        if named is not None:
            if not allowed:
                raise _refuse(
                    403,
                    "this key does not let callers name an end user (x-costwarden-end-user); "
                    "set end_users = true in the key's metadata to allow it",
                    "end_user_not_allowed",
                )
            name = named.decode("utf-8", "replace")
        elif allowed:
            field_value = (
                body.get("user")
                if route != "messages"
                else (body.get("metadata") or {}).get("user_id")
            )
            if not isinstance(field_value, str) or not field_value:
                return ()
            name = field_value
        else:
            return ()  # the OpenAI `user` field of a key without end users is the upstream's
        try:
            return (end_user_tag(key, name),)
        except InvalidInputError as exc:
            raise _refuse(400, str(exc), "bad_end_user") from None

    def _route(self, call: Call, model: str) -> tuple[ModelRoute, Upstream]:
        cfg = self.gw.settings.route(model)
        if cfg is None:
            raise _refuse(
                404,
                f"no upstream serves model {model!r}; add it to [gateway.models]",
                "model_not_found",
            )
        upstream = self.gw.upstreams[cfg.upstream]
        if not upstream.speaks(call.route):
            raise _refuse(
                400,
                f"model {model!r} is served by upstream {upstream.name!r} (kind "
                f"{upstream.kind}), which does not speak the {call.route} API; route it to an "
                "upstream that does",
                "unsupported_route",
            )
        call.upstream = upstream.name
        return cfg, upstream

    # -- estimates -----------------------------------------------------------------------------
    def _estimate(
        self, call: Call, body: dict[str, Any], model: str, provider: str | None, free: bool
    ) -> Estimate:
        pricing = self.gw.manager.pricing
        try:
            if call.route == "embeddings":
                return _embedding_estimate(pricing, body, model, provider, free)
            return estimate_call(
                pricing, _API[call.route], body, model, provider=provider, free=free
            )
        except UnknownModelError as exc:
            raise _refuse(
                400,
                f"{exc} (an unpriced model is never served at $0: add its price to [prices], "
                "or mark its route free = true if it is a local model)",
                "unknown_model_price",
            ) from None
        except CostwardenError as exc:
            raise _refuse(
                400, f"the request cannot be estimated: {exc}", "invalid_request"
            ) from None

    async def _admit(
        self,
        call: Call,
        key: VirtualKey,
        route_cfg: ModelRoute,
        upstream: Upstream,
        model: str,
        body: dict[str, Any],
        tags: tuple[str, ...],
    ) -> tuple[CallAccount, int | None, int]:
        gw = self.gw
        free = route_cfg.free or upstream.settings.free
        estimate = self._estimate(call, body, model, upstream.provider, free)
        slot = None
        tokens = estimate.input_tokens + estimate.output_tokens
        if key.rpm is not None or key.tpm is not None:
            now = time.time()
            denial, slot = await self._blocking(
                partial(gw.rates.admit, key.key_id, key.rpm, key.tpm, tokens, now), "rate limit"
            )
            if denial is not None:
                raise Refused(
                    rate_denial(denial.message, limit=denial.limit, retry_after=denial.retry_after),
                    "rate_limit",
                )
        attribution = Attribution(user=key.user, team=key.team, key=key.key_id, tags=tags)
        api: Api = _API.get(call.route, "chat")
        try:
            account = await CallAccount.open_async(
                gw.manager,
                estimate,
                attribution,
                api=api,
                provider=upstream.provider,
                free=free,
                offload=gw.offload,
            )
        except BudgetExceededError as exc:
            if slot is not None:
                await self._blocking(
                    partial(gw.rates.adjust, key.key_id, slot, -tokens), "rate limit"
                )
            raise Refused(self._denial(exc), "budget") from None
        except LedgerUnavailableError as exc:
            raise _refuse(
                503,
                f"the ledger is unavailable, so no budget can be checked: {exc}",
                "ledger_unavailable",
            ) from None
        gw.inflight.add(account)
        gw.metrics.holds_in_flight = len(gw.inflight)
        return account, slot, tokens

    def _denial(self, exc: BudgetExceededError) -> ErrorReply:
        now = time.time()
        resets: float | None = None
        if exc.period not in ("per_request",):
            try:
                scope = Scope.parse(exc.scope)
                budget = self.gw.manager.budget_for(scope) or self.gw.manager.budget
                if exc.period.startswith("rolling:"):
                    resets = now + 60
                else:
                    resets = float(self.gw.windows.window(exc.period, budget.timezone, now).end)
            except CostwardenError:
                resets = None
        return budget_denial(
            str(exc),
            scope=exc.scope,
            period=exc.period,
            limit_usd=exc.limit,
            spent_usd=exc.spent,
            reserved_usd=getattr(exc, "reserved", 0.0),
            attempted_usd=exc.attempted,
            resets_at=resets,
            now=now,
        )

    async def _settled(
        self, call: Call, account: CallAccount, key: VirtualKey, slot: int | None, tokens: int
    ) -> None:
        gw = self.gw
        gw.inflight.discard(account)
        gw.metrics.holds_in_flight = len(gw.inflight)
        record = account.record
        if record is not None:
            call.cost_nanos = record.cost_nanos
            gw.metrics.spend(record.model, record.cost_nanos)
            if slot is not None:
                used = record.input_tokens + record.output_tokens
                with contextlib.suppress(CostwardenError):
                    await self._blocking(
                        partial(gw.rates.adjust, key.key_id, slot, used - tokens), "rate limit"
                    )

    # -- forwarding ------------------------------------------------------------------------------
    async def _admit_and_forward(
        self,
        call: Call,
        key: VirtualKey,
        route_cfg: ModelRoute,
        upstream: Upstream,
        model: str,
        raw: bytes,
        body: dict[str, Any],
        headers: dict[bytes, bytes],
        tags: tuple[str, ...],
        send: Send,
        receive: Receive,
    ) -> None:
        stream = bool(body.get("stream")) and call.route != "embeddings"
        strip = False
        if stream and call.route == "chat":
            options = body.get("stream_options")
            asked = isinstance(options, dict) and bool(options.get("include_usage"))
            if not asked:
                with_usage = {
                    **body,
                    "stream_options": {
                        **(options if isinstance(options, dict) else {}),
                        "include_usage": True,
                    },
                }
                spliced = _with_usage_option(raw) if "stream_options" not in body else None
                raw = spliced if spliced is not None else _dumps(with_usage)
                body = with_usage
                strip = True
        tried_fallback = False
        while True:
            if model != body.get("model"):  # downgraded or fallen back: say the model sent
                out_body = {**body, "model": model}
                out_raw = _dumps(out_body)
            else:
                out_body, out_raw = body, raw
            account, slot, tokens = await self._admit(
                call, key, route_cfg, upstream, model, out_body, tags
            )
            sent = time.perf_counter()
            try:
                response = await self.gw.forwarder.send(
                    upstream, call.route, model, out_raw, out_body, headers
                )
            except (UpstreamTimeout, UpstreamUnreachable) as exc:
                await account.fail_async(ProviderError(str(exc)))
                await self._settled(call, account, key, slot, tokens)
                fallback = self._fallback(route_cfg, key, call, tried_fallback)
                if fallback is not None:
                    tried_fallback = True
                    model = call.model = fallback
                    route_cfg, upstream = self._route(call, model)
                    continue
                status = 504 if isinstance(exc, UpstreamTimeout) else 502
                raise _refuse(
                    status,
                    f"upstream {upstream.name!r}: {exc}",
                    "upstream_timeout" if status == 504 else "upstream_unreachable",
                ) from None
            except BaseException:
                await account.fail_async(ProviderError("the request was cancelled"))
                await self._settled(call, account, key, slot, tokens)
                raise
            self.gw.metrics.upstream_latency(upstream.name, time.perf_counter() - sent)
            if response.status >= 500 and not tried_fallback:
                fallback = self._fallback(route_cfg, key, call, tried_fallback)
                if fallback is not None:
                    response.close()
                    await account.fail_async(ProviderError(f"upstream answered {response.status}"))
                    await self._settled(call, account, key, slot, tokens)
                    tried_fallback = True
                    model = call.model = fallback
                    route_cfg, upstream = self._route(call, model)
                    continue
            break
        extra = [(b"x-costwarden-key-id", key.key_id.encode())]
        if call.downgraded:
            extra.append((DOWNGRADE_HEADER, f"{call.requested} -> {call.model}".encode()))
        elif tried_fallback:
            extra.append((b"x-costwarden-fallback", f"{call.requested} -> {call.model}".encode()))
        try:
            if response.status >= 400:
                await self._upstream_error(call, account, response, send, extra)
            elif stream:
                await self._stream(call, account, response, send, receive, strip, extra)
            else:
                await self._whole(call, account, response, send, extra)
        finally:
            await self._settled(call, account, key, slot, tokens)

    def _fallback(self, cfg: ModelRoute, key: VirtualKey, call: Call, tried: bool) -> str | None:
        if tried or cfg.fallback is None or not model_allowed(key, cfg.fallback):
            return None
        target = self.gw.settings.route(cfg.fallback)
        if target is None or not self.gw.upstreams[target.upstream].speaks(call.route):
            return None
        return cfg.fallback

    async def _upstream_error(
        self,
        call: Call,
        account: CallAccount,
        response: Response,
        send: Send,
        extra: list[tuple[bytes, bytes]],
    ) -> None:
        try:
            body = await response.read()
        except (UpstreamTimeout, UpstreamUnreachable):
            body = ErrorReply(
                502, "the upstream failed while sending its error", "upstream_error"
            ).body(call.dialect)
        await account.fail_async(ProviderError(f"upstream answered {response.status}"))
        call.status, call.outcome = response.status, "upstream_error"
        await send_bytes(
            send,
            response.status,
            body,
            [(b"content-type", response.content_type), *response.passed_headers, *extra],
        )

    async def _whole(
        self,
        call: Call,
        account: CallAccount,
        response: Response,
        send: Send,
        extra: list[tuple[bytes, bytes]],
    ) -> None:
        try:
            body = await response.read()
        except (UpstreamTimeout, UpstreamUnreachable) as exc:
            await account.fail_async(ProviderError(str(exc)))
            raise _refuse(
                502, f"upstream {call.upstream!r} failed mid-answer: {exc}", "upstream_cut"
            ) from None
        parsed = loads_object(body) or {}
        record, _ = account.response_record(parsed)
        await account.commit_async(record)
        call.status, call.outcome = response.status, "ok"
        await send_bytes(
            send,
            response.status,
            body,
            [(b"content-type", response.content_type), *response.passed_headers, *extra],
        )

    async def _stream(
        self,
        call: Call,
        account: CallAccount,
        response: Response,
        send: Send,
        receive: Receive,
        strip: bool,
        extra: list[tuple[bytes, bytes]],
    ) -> None:
        decoder = StreamDecoder(_API.get(call.route, "chat"))
        splitter = EventSplitter()
        outcome = "complete"
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [
                    (b"content-type", response.content_type),
                    (b"cache-control", b"no-cache"),
                    *response.passed_headers,
                    *extra,
                ],
            }
        )
        call.status = response.status
        gone = asyncio.Event()

        async def watch() -> None:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    gone.set()
                    return

        async def pump() -> None:
            # Each chunk goes out before its usage is read (the decoder is fed after the
            # send), so reading usage adds nothing to the time to first byte. Only an event
            # that may be the usage-only chunk to strip is parsed before it is passed on.
            async for chunk in response.chunks():
                events = splitter.feed(chunk)
                parsed: list[Any] = []
                if strip:
                    out = bytearray()
                    for event in events:
                        value = parse_event(event) if may_be_usage_only(event) else _UNREAD
                        parsed.append(value)
                        if value is _UNREAD or not is_usage_only(value):
                            out += event
                    if out:
                        await send(
                            {"type": "http.response.body", "body": bytes(out), "more_body": True}
                        )
                else:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                for i, event in enumerate(events):
                    value = parsed[i] if parsed else _UNREAD
                    if value is _UNREAD:
                        value = parse_event(event)
                    if value is not None:
                        decoder.feed(value)
                if gone.is_set():
                    return
            rest = splitter.pending
            if rest and strip:
                await send({"type": "http.response.body", "body": rest, "more_body": True})

        watcher = asyncio.ensure_future(watch())
        pumping = asyncio.ensure_future(pump())
        try:
            done, _ = await asyncio.wait({watcher, pumping}, return_when=asyncio.FIRST_COMPLETED)
            if pumping in done:
                exc = pumping.exception()
                if exc is not None:
                    outcome = "error"
            else:
                outcome = "aborted"
                pumping.cancel()
                with _suppress():
                    await pumping
        except BaseException:
            outcome = "aborted"
            pumping.cancel()
            raise
        finally:
            watcher.cancel()
            response.close() if outcome != "complete" else None
            await account.settle_stream_async(decoder, outcome)
            call.outcome = {"complete": "ok", "error": "upstream_cut", "aborted": "client_gone"}[
                outcome
            ]
        if outcome == "error":  # say so in-band: both SDKs raise on an error event
            await send(
                {"type": "http.response.body", "body": _cut_event(call.dialect), "more_body": True}
            )
        if outcome != "aborted":
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _passthrough(
        self,
        call: Call,
        upstream: Upstream,
        model: str,
        raw: bytes,
        body: dict[str, Any],
        headers: dict[bytes, bytes],
        send: Send,
    ) -> None:
        try:
            response = await self.gw.forwarder.send(upstream, call.route, model, raw, body, headers)
            data = await response.read()
        except (UpstreamTimeout, UpstreamUnreachable) as exc:
            raise _refuse(
                502, f"upstream {upstream.name!r}: {exc}", "upstream_unreachable"
            ) from None
        call.status, call.outcome = response.status, "exempt"
        await send_bytes(
            send,
            response.status,
            data,
            [(b"content-type", response.content_type), *response.passed_headers],
        )


def _dumps(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


_USAGE_OPTION = b'"stream_options":{"include_usage":true},'


def _with_usage_option(raw: bytes) -> bytes | None:
    """``raw`` (a JSON object with members and no ``stream_options``) with the include_usage
    option added as its first member, without re-serialising the rest: the prompt's bytes go
    upstream as the client sent them, and a long prompt costs no ``json.dumps`` before the
    first byte. None when the bytes are not plain UTF-8 text starting with ``{`` (a BOM,
    UTF-16): the caller then serialises the parsed body."""
    start = raw.find(b"{")
    if start == -1 or raw[:start].strip() or b"\x00" in raw[:4]:
        return None
    return raw[: start + 1] + _USAGE_OPTION + raw[start + 1 :]


def _cut_event(dialect: Dialect) -> bytes:
    message = "the upstream stream was cut before it ended; what was produced was charged"
    if dialect == "anthropic":
        payload = {"type": "error", "error": {"type": "api_error", "message": message}}
        return b"event: error\ndata: " + json.dumps(payload).encode() + b"\n\n"
    payload2 = {"error": {"message": message, "type": "server_error", "code": "upstream_cut"}}
    return b"data: " + json.dumps(payload2).encode() + b"\n\n"


class _suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return True


def _embedding_estimate(
    pricing: Any, body: dict[str, Any], model: str, provider: str | None, free: bool
) -> Estimate:
    from costwarden.tokens import count_tokens

    raw = body.get("input")
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not items:
        raise InvalidInputError("embeddings need 'input': a string or a non-empty list")
    tokens = 0
    for item in items:
        if isinstance(item, str):
            tokens += count_tokens(item, model).tokens
        elif isinstance(item, list):  # token ids
            tokens += len(item)
        else:
            raise InvalidInputError("each embeddings input must be a string or a list of token ids")
    cost = 0 if free else pricing.cost_nanos(model, Usage(input_tokens=tokens), provider=provider)
    return Estimate(model, tokens, 0, cost, True, None)


__all__ = ["Proxy"]
