"""The gateway's admin API: budgets, virtual keys, spend, alert history and the audit log.

:func:`admin_app` builds a Starlette app that the gateway mounts at ``/admin`` (it runs on
its own too). Every route but two needs the **master key** (``Authorization: Bearer
<master key>``), compared in constant time as SHA-256 digests, so neither its content nor its
length leaks through timing; a wrong or missing key is a 401 that says nothing more. The two
others: ``GET /openapi.json`` (the API's OpenAPI 3.1 description, the same for every
deployment: no data in it) and ``GET /key/info``, which a **virtual key** calls with its own
secret to read its own budget and spend, and nothing else (there is no parameter naming a
key: the secret is the only selector, see :func:`costwarden.keys.key_usage`).

Budgets and keys are written through the ledger's control plane, as the CLI writes them, with
the actor ``admin-api`` in the audit log; every process on the ledger enforces a change from
its next admission (docs/storage.md gives the bound). Bad input is a 400 (404 for something
that does not exist, 409 for a change a key's state forbids) with a JSON body
``{"error": {"type": ..., "message": ...}}``, checked before anything is written.

Ledger calls block (SQLite, PostgreSQL), so handlers run them on Starlette's thread pool and
the event loop of the proxy beside this app never waits on them. docs/gateway-admin.md
describes every route.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final, TypeVar, cast

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from costwarden import keys as keylib
from costwarden import reports
from costwarden.alerts.history import delivery_to_dict
from costwarden.budget import SCOPE_KINDS, calendar_window, get_zone
from costwarden.errors import (
    ConfigurationError,
    CostwardenError,
    InvalidInputError,
    KeyAuthError,
    LedgerUnavailableError,
    RevokedKeyError,
    UnknownKeyError,
)
from costwarden.gateway import admin_input as inp
from costwarden.gateway import admin_views as views
from costwarden.gateway.admin_schema import openapi_schema
from costwarden.keys import ControlLedger
from costwarden.ledger.control import ControlPlane
from costwarden.manager import BudgetManager

ACTOR: Final = "admin-api"
"""Who the audit log says made a change through this API."""
MIN_MASTER_KEY_LENGTH: Final = 16
SERIES_PERIODS: Final = ("daily", "weekly", "monthly")
SPEND_BY: Final = ("key", "user", "team", "model", "day", "tag", "endpoint", "provider")

T = TypeVar("T")
Handler = Callable[[Request], Awaitable[Response]]


# -- responses -------------------------------------------------------------------------------
def error(
    status: int, kind: str, message: str, headers: Mapping[str, str] | None = None
) -> Response:
    """An admin API error response: ``{"error": {"type", "message"}}`` with the given status."""
    return JSONResponse({"error": {"type": kind, "message": message}}, status, headers=headers)


def _unauthorized() -> Response:
    return error(
        401,
        "unauthorized",
        "a valid key is required: Authorization: Bearer <key>",
        {"WWW-Authenticate": "Bearer"},
    )


def _failure(exc: Exception) -> Response:
    """The typed answer for a costwarden error raised by a handler."""
    if isinstance(exc, UnknownKeyError):
        return error(404, "not_found", str(exc))
    if isinstance(exc, RevokedKeyError):
        return error(409, "conflict", str(exc))
    if isinstance(exc, InvalidInputError | ConfigurationError):
        return error(400, "invalid_request", str(exc))
    if isinstance(exc, LedgerUnavailableError):
        return error(503, "ledger_unavailable", str(exc), {"Retry-After": "1"})
    return error(500, "ledger_error", f"{type(exc).__name__}: {exc}")


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 (no such route, wrong method) as the API's JSON errors."""
    assert isinstance(exc, HTTPException)
    kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return error(exc.status_code, kind, str(exc.detail), exc.headers)


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


async def _body(request: Request, *, allowed: tuple[str, ...], required: bool) -> dict[str, Any]:
    """The JSON object body, read up to :data:`MAX_BODY_BYTES` (more is a 413)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > inp.MAX_BODY_BYTES:
        raise _TooLarge()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > inp.MAX_BODY_BYTES:
            raise _TooLarge()
        chunks.append(chunk)
    return inp.parse_body(b"".join(chunks), allowed=allowed, required=required)


class _TooLarge(Exception):
    pass


def _query(request: Request, allowed: tuple[str, ...]) -> dict[str, str]:
    inp.check_query(request.query_params, allowed)
    return dict(request.query_params)


# -- the app ---------------------------------------------------------------------------------
class _Admin:
    """The handlers, sharing one ledger and the master key's digest."""

    def __init__(self, manager: BudgetManager, ledger: ControlLedger, master_key: str) -> None:
        self.manager = manager
        self.ledger = ledger
        self._master = _digest(master_key)

    # -- plumbing --------------------------------------------------------------------------------
    def master(self, handler: Handler) -> Handler:
        """``handler`` behind the master key, with costwarden errors as typed JSON answers."""

        async def endpoint(request: Request) -> Response:
            token = _bearer(request)
            if token is None or not hmac.compare_digest(_digest(token), self._master):
                return _unauthorized()
            return await self.guarded(handler, request)

        return endpoint

    @staticmethod
    async def guarded(handler: Handler, request: Request) -> Response:
        try:
            return await handler(request)
        except _TooLarge:
            return error(413, "too_large", f"the body is larger than {inp.MAX_BODY_BYTES} bytes")
        except CostwardenError as exc:
            return _failure(exc)

    async def run(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await run_in_threadpool(func, *args, **kwargs)

    # -- budgets --------------------------------------------------------------------------------
    async def list_budgets(self, request: Request) -> Response:
        query = _query(request, ("kind",))
        kind = inp.parse_choice(query, "kind", ("all", "default", *SCOPE_KINDS), "all")
        stored = await self.run(self.ledger.budgets)
        rows = [
            s
            for s in stored
            if kind == "all"
            or (kind == "default" and s.is_default)
            or (not s.is_default and s.scope.partition(":")[0] == kind)
        ]
        return JSONResponse({"budgets": [views.stored_budget_json(s) for s in rows]})

    async def get_budget(self, request: Request) -> Response:
        _query(request, ())
        scope = inp.scope_text(request.path_params["scope"])
        stored = (await self.run(self.ledger.control_snapshot)).get(scope)
        if stored is None:
            return error(404, "not_found", f"no budget is stored for {scope!r}")
        return JSONResponse(views.stored_budget_json(stored))

    async def put_budget(self, request: Request) -> Response:
        _query(request, ())
        scope = inp.scope_text(request.path_params["scope"])
        data = await _body(request, allowed=inp.BUDGET_FIELDS, required=True)
        budget = inp.parse_budget(data)
        stored = await self.run(self.ledger.put_budget, scope, budget, actor=ACTOR, now=time.time())
        return JSONResponse(views.stored_budget_json(stored))

    async def delete_budget(self, request: Request) -> Response:
        _query(request, ())
        scope = inp.scope_text(request.path_params["scope"])
        removed = await self.run(self.ledger.remove_budget, scope, actor=ACTOR, now=time.time())
        if removed is None:
            return error(404, "not_found", f"no budget is stored for {scope!r}; nothing removed")
        return JSONResponse({"removed": views.stored_budget_json(removed)})

    # -- keys -------------------------------------------------------------------------------------
    async def list_keys(self, request: Request) -> Response:
        query = _query(request, ("include_revoked",))
        everything = inp.parse_flag(query, "include_revoked", True)
        found = await self.run(keylib.list_keys, self.ledger, include_revoked=everything)
        return JSONResponse({"keys": [views.key_json(k) for k in found]})

    async def create_key(self, request: Request) -> Response:
        _query(request, ())
        data = await _body(request, allowed=inp.KEY_FIELDS, required=False)
        now = time.time()
        new = inp.parse_new_key(data, now)
        key, secret = await self.run(
            keylib.create_key,
            self.ledger,
            user=new.user,
            team=new.team,
            budget=new.budget,
            models=new.models,
            rpm=new.rpm,
            tpm=new.tpm,
            expires=new.expires_at,
            metadata=new.metadata,
            actor=ACTOR,
            now=now,
        )
        return JSONResponse({"key": views.key_json(key), "secret": secret}, 201)

    def _key_id(self, request: Request) -> str:
        key_id: str = request.path_params["key_id"]
        inp.check_text(key_id, "the key id")
        if len(key_id) > 200:
            raise UnknownKeyError(f"no virtual key with id {key_id[:40]!r}… in this ledger")
        return key_id

    async def get_key(self, request: Request) -> Response:
        _query(request, ())
        key_id = self._key_id(request)
        key = await self.run(self.ledger.key_by_id, key_id)
        if key is None:
            return error(404, "not_found", f"no virtual key with id {key_id!r} in this ledger")
        return JSONResponse(views.key_json(key))

    async def rotate_key(self, request: Request) -> Response:
        _query(request, ())
        key_id = self._key_id(request)
        grace = inp.parse_grace(await _body(request, allowed=inp.ROTATE_FIELDS, required=False))
        extra: dict[str, Any] = {} if grace is None else {"grace": grace}
        key, secret = await self.run(
            keylib.rotate_key, self.ledger, key_id, actor=ACTOR, now=time.time(), **extra
        )
        return JSONResponse({"key": views.key_json(key), "secret": secret})

    async def revoke_key(self, request: Request) -> Response:
        _query(request, ())
        key_id = self._key_id(request)
        await _body(request, allowed=(), required=False)
        key = await self.run(keylib.revoke_key, self.ledger, key_id, actor=ACTOR, now=time.time())
        return JSONResponse({"key": views.key_json(key)})

    # -- spend ------------------------------------------------------------------------------------
    def _default_since(self, zone: str) -> float:
        """The start of the current calendar month in ``zone``."""
        return float(calendar_window("monthly", datetime.now(UTC), get_zone(zone)).start)

    async def spend(self, request: Request) -> Response:
        query = _query(request, ("by", "since", "until", "timezone"))
        by = inp.parse_choice(query, "by", SPEND_BY, "model")
        span = inp.parse_span(query, default_zone=self.manager.budget.timezone)
        since = span.since if span.since is not None else self._default_since(span.timezone)
        until = span.until

        def build() -> dict[str, Any]:
            rows = self.ledger.records(
                round(since * 1_000_000), None if until is None else round(until * 1_000_000)
            )
            zone = get_zone(span.timezone)
            report = reports.build_report(
                rows,
                "user" if by == "user" else by,
                since=datetime.fromtimestamp(since, zone),
                until=None if until is None else datetime.fromtimestamp(until, zone),
                timezone=span.timezone,
            )
            return report.to_dict()

        return JSONResponse(await self.run(build))

    async def spend_series(self, request: Request) -> Response:
        query = _query(request, ("scope", "period", "since", "until", "timezone"))
        if "scope" not in query:
            raise InvalidInputError("name the scope: ?scope=global, key:<id>, user:alice, ...")
        scope = inp.scope_text(query["scope"])
        if scope.startswith("default:"):
            raise InvalidInputError("spend is per scope; a default budget has no spend of its own")
        period = inp.parse_choice(query, "period", SERIES_PERIODS, "daily")
        span = inp.parse_span(query, default_zone=self.manager.budget.timezone)
        since = span.since if span.since is not None else self._default_since(span.timezone)
        until = span.until if span.until is not None else time.time() + 1
        points = await self.run(self.ledger.series, scope, period, int(since), int(until) + 1)
        # A window counts when it starts in [since, until): a bucket's start is whole seconds.
        rows = [(start, spent) for start, spent in points if since <= start < until]
        total = sum(spent for _, spent in rows)
        return JSONResponse(
            {
                "scope": scope,
                "period": period,
                "timezone": span.timezone,
                "since": views.iso(since, span.timezone),
                "until": views.iso(until, span.timezone),
                "points": [
                    {
                        "start": views.iso(start, span.timezone),
                        "spent_usd": views.usd_text(spent),
                        "spent_nanos": spent,
                    }
                    for start, spent in rows
                ],
                "total_usd": views.usd_text(total),
                "total_nanos": total,
            }
        )

    # -- alerts and audit ---------------------------------------------------------------------
    async def alerts(self, request: Request) -> Response:
        query = _query(request, ("since", "limit"))
        span = inp.parse_span({k: v for k, v in query.items() if k == "since"})
        limit = inp.parse_limit(query, 100)
        rows = await self.run(self.ledger.deliveries, span.since, limit)
        return JSONResponse({"deliveries": [delivery_to_dict(d) for d in rows]})

    async def audit(self, request: Request) -> Response:
        query = _query(request, ("since", "until", "target", "limit"))
        span = inp.parse_span({k: v for k, v in query.items() if k in ("since", "until")})
        limit = inp.parse_limit(query, 100)
        events = await self.run(
            self.ledger.audit,
            since=span.since,
            until=span.until,
            target=query.get("target"),
            limit=limit,
        )
        return JSONResponse({"events": [views.audit_json(e) for e in events]})

    # -- a key's own view ---------------------------------------------------------------------
    async def key_info(self, request: Request) -> Response:
        """Authenticated by a virtual key's secret; answers about that key only."""
        token = _bearer(request)
        if token is None:
            return _unauthorized()
        now = time.time()
        try:
            inp.check_text(token, "the key")
            key = await self.run(keylib.authenticate, self.ledger, token, now=now)
        except (UnknownKeyError, InvalidInputError):
            return _unauthorized()
        except KeyAuthError as exc:  # revoked or expired: the holder of the secret may know
            return error(401, "unauthorized", str(exc), {"WWW-Authenticate": "Bearer"})
        except CostwardenError as exc:
            return _failure(exc)

        async def answer(request: Request) -> Response:
            _query(request, ())
            usage = await self.run(keylib.key_usage, self.ledger, key, now=now)
            return JSONResponse(views.key_usage_json(usage, key, now))

        return await self.guarded(answer, request)

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(openapi_schema())


def _control_ledger(manager: BudgetManager) -> ControlLedger:
    if not isinstance(manager, BudgetManager):
        raise InvalidInputError(f"admin_app needs a BudgetManager, got {type(manager).__name__}")
    ledger = manager.ledger
    if not isinstance(ledger, ControlPlane):
        raise ConfigurationError(
            f"the ledger {ledger.url!r} has no control plane (budgets and keys); use a "
            "memory://, sqlite:// or postgresql:// ledger"
        )
    return cast(ControlLedger, ledger)


def admin_app(manager: BudgetManager, *, master_key: str) -> Starlette:
    """The admin API over ``manager``'s ledger, behind ``master_key`` (at least 16 characters;
    give it from the environment, never from a file under version control)."""
    if not isinstance(master_key, str) or len(master_key.strip()) < MIN_MASTER_KEY_LENGTH:
        raise ConfigurationError(
            f"the admin master key must be a string of at least {MIN_MASTER_KEY_LENGTH} "
            "characters; generate one with: python -c 'import secrets; "
            "print(secrets.token_urlsafe(32))'"
        )
    if master_key.startswith(keylib.SECRET_PREFIX):
        raise ConfigurationError(
            "the master key must not look like a virtual key (cw-...): the two must never be "
            "confused; generate a separate one"
        )
    api = _Admin(manager, _control_ledger(manager), master_key.strip())
    m = api.master
    routes = [
        Route("/openapi.json", api.openapi, methods=["GET"]),
        Route("/key/info", api.key_info, methods=["GET"]),
        Route("/budgets", m(api.list_budgets), methods=["GET"]),
        Route("/budgets/{scope:path}", m(api.get_budget), methods=["GET"]),
        Route("/budgets/{scope:path}", m(api.put_budget), methods=["PUT"]),
        Route("/budgets/{scope:path}", m(api.delete_budget), methods=["DELETE"]),
        Route("/keys", m(api.list_keys), methods=["GET"]),
        Route("/keys", m(api.create_key), methods=["POST"]),
        Route("/keys/{key_id}", m(api.get_key), methods=["GET"]),
        Route("/keys/{key_id}/rotate", m(api.rotate_key), methods=["POST"]),
        Route("/keys/{key_id}/revoke", m(api.revoke_key), methods=["POST"]),
        Route("/spend", m(api.spend), methods=["GET"]),
        Route("/spend/series", m(api.spend_series), methods=["GET"]),
        Route("/alerts", m(api.alerts), methods=["GET"]),
        Route("/audit", m(api.audit), methods=["GET"]),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: _http_error})


__all__ = ["ACTOR", "admin_app"]
