"""The dashboard's ASGI app: server-rendered pages (Jinja2 on Starlette), updated in place
by htmx, charts drawn by uPlot, every asset served from the package (works offline).

``dashboard_app(manager)`` answers relative to where it is mounted (``/`` standalone, the
gateway mounts it at ``/dashboard``): links are built from the request's ``root_path``.
A request made by htmx (``HX-Request``) gets only the ``#main`` part of the page; any other
request the whole page, so every URL is a bookmark.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from costwarden.dashboard import queries
from costwarden.dashboard.auth import COOKIE, SESSION_SECONDS, LoopbackOnly, Sessions, Viewer
from costwarden.dashboard.background import Advice, AdviceCache, Refresher
from costwarden.dashboard.budgets import gauges
from costwarden.dashboard.filters import RANGES, STEPS, Filters, parse_filters
from costwarden.dashboard.formatting import places_for, usd
from costwarden.errors import CostwardenError, InvalidInputError, KeyAuthError
from costwarden.ledger.rollup import DIMENSIONS, Rollups
from costwarden.manager import BudgetManager

_HERE = Path(str(resources.files("costwarden.dashboard")))
ADVICE_RECORDS: Final = 20_000
BREAKDOWNS: Final = ("model", *DIMENSIONS)
_CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_HERE / "templates")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["usd"] = usd  # one rule for money: see dashboard/formatting.py
    env.filters["places"] = places_for
    env.filters["num"] = lambda n: f"{n:,}"
    env.filters["pct"] = lambda x: f"{x:.1f}%"
    return env


class Dashboard:
    """The app's state: the manager, sessions, background work and the templates."""

    def __init__(
        self,
        manager: BudgetManager,
        *,
        master_key: str | None,
        key_login: bool,
        clock: Callable[[], float],
        background: bool,
    ) -> None:
        ledger = manager.ledger
        if not isinstance(ledger, Rollups):
            raise InvalidInputError(
                f"the dashboard needs a ledger with rollups (memory, SQLite or PostgreSQL); "
                f"{type(ledger).__name__} has none"
            )
        self.manager = manager
        self.ledger: Rollups = ledger
        self.sessions = Sessions(master_key, key_login=key_login, ledger=ledger)
        self.clock = clock
        self.refresher = Refresher(ledger)
        self.advice = AdviceCache(self._compute_advice)
        self.background = background
        self.env = _environment()

    # -- rendering ----------------------------------------------------------------------------
    def render(
        self, request: Request, view: str, ctx: Mapping[str, Any], status: int = 200
    ) -> HTMLResponse:
        """``view`` as a whole page, or only its main part for an htmx request."""
        base = request.scope.get("root_path", "").rstrip("/")
        partial = "HX-Request" in request.headers and (
            "HX-History-Restore-Request" not in request.headers
        )
        viewer: Viewer | None = ctx.get("viewer")
        page = {
            "base": base,
            "view": view,
            "viewer": viewer,
            "login_required": self.sessions.required,
            "now": datetime.fromtimestamp(self.clock(), UTC),
            **ctx,
        }
        template = f"views/{view}.html" if partial else "page.html"
        html = self.env.get_template(template).render(page)
        headers = dict(_HEADERS)
        f = ctx.get("f")
        if partial and isinstance(f, Filters) and status == 200:
            # the form sends every field; the address bar gets the short, canonical URL
            extra = {"by": ctx["by"]} if ctx.get("by", "model") != "model" else {}
            headers["HX-Push-Url"] = f"{base}{ctx['path']}{f.query(**extra)}"
        return HTMLResponse(html, status_code=status, headers=headers)

    def filters(self, request: Request, viewer: Viewer) -> Filters:
        """The request's filters, limited to the viewer's one scope when it has one."""
        params = {k: v for k, v in request.query_params.items()}
        return parse_filters(
            params,
            default_tz=self.manager.budget.timezone,
            now=self.clock(),
            scope=viewer.scope,
        )

    def common(self, request: Request, viewer: Viewer, f: Filters) -> dict[str, Any]:
        """What every view's template needs (and the rollup folded up to now first)."""
        backlog = self.refresher.catch_up(background=self.background)
        return {
            "viewer": viewer,
            "f": f,
            "ranges": list(RANGES),
            "steps": STEPS,
            "backlog": backlog,
            "path": request.url.path[len(request.scope.get("root_path", "")) :] or "/",
        }

    # -- views --------------------------------------------------------------------------------
    def overview(self, request: Request, viewer: Viewer) -> HTMLResponse:
        """Spend over time stacked by model (``/``)."""
        f = self.filters(request, viewer)
        ctx = self.common(request, viewer, f)
        series = queries.spend_series(self.ledger, f)
        ctx.update(series=series, chart=series.chart_json(f.tz))
        return self.render(request, "overview", ctx)

    def budgets(self, request: Request, viewer: Viewer) -> HTMLResponse:
        """Budget gauges with forecasts (``/budgets``)."""
        f = self.filters(request, viewer)
        ctx = self.common(request, viewer, f)
        ctx["gauges"] = gauges(self.manager, self.clock(), only=viewer.scope)
        return self.render(request, "budgets", ctx)

    def breakdown(self, request: Request, viewer: Viewer) -> HTMLResponse:
        """Spend by one dimension, each name linking to its records (``/breakdown``)."""
        params = dict(request.query_params)
        by = params.get("by", "model")
        if by not in BREAKDOWNS:
            raise InvalidInputError(f"by must be one of {', '.join(BREAKDOWNS)}, got {by!r}")
        f = self.filters(request, viewer)
        if viewer.scope is not None and by != "model":
            raise InvalidInputError("a key's login sees its own spend by model only")
        ctx = self.common(request, viewer, f)
        crossing = by != "model" and f.kind != "global"
        rows = [] if crossing else queries.breakdown(self.ledger, f, by)
        ctx.update(by=by, rows=rows, crossing=crossing, breakdowns=BREAKDOWNS)
        return self.render(request, "breakdown", ctx)

    def top(self, request: Request, viewer: Viewer) -> HTMLResponse:
        """The most expensive requests of the scope and period (``/top``)."""
        f = self.filters(request, viewer)
        ctx = self.common(request, viewer, f)
        ctx["rows"] = [queries.record_row(r, f.tz) for r in queries.top_requests(self.ledger, f)]
        return self.render(request, "top", ctx)

    def records(self, request: Request, viewer: Viewer) -> HTMLResponse:
        """The newest records of the scope: the drill-down (``/records``)."""
        f = self.filters(request, viewer)
        ctx = self.common(request, viewer, f)
        rows = queries.latest_records(self.ledger, f)
        ctx["rows"] = [queries.record_row(r, f.tz) for r in rows]
        return self.render(request, "records", ctx)

    def alerts(self, request: Request, viewer: Viewer) -> HTMLResponse:
        """Alerts and their deliveries from the ledger's outbox (``/alerts``)."""
        f = self.filters(request, viewer)
        ctx = self.common(request, viewer, f)
        rows = []
        for d in self.manager.ledger.deliveries(since=f.start, limit=500):
            try:
                payload = json.loads(d.payload)
            except ValueError:
                payload = {}
            if not isinstance(payload, dict):
                payload = {}
            scope = str(payload.get("scope", ""))
            if viewer.scope is not None and scope != viewer.scope:
                continue
            if f.scope != "global" and viewer.scope is None and scope != f.scope:
                continue
            rows.append(
                {
                    "created": datetime.fromtimestamp(d.created_at, UTC).astimezone(f.zone),
                    "level": str(payload.get("level", "")),
                    "message": str(payload.get("message", d.dedup_key)),
                    "scope": scope,
                    "channel": d.channel,
                    "status": d.status,
                    "attempts": d.attempts,
                    "error": d.last_error or "",
                    "delivered": None
                    if d.delivered_at is None
                    else datetime.fromtimestamp(d.delivered_at, UTC).astimezone(f.zone),
                }
            )
        ctx["rows"] = rows
        return self.render(request, "alerts", ctx)

    def advice_view(self, request: Request, viewer: Viewer) -> HTMLResponse:
        """The optimizer's recommendations, from the background cache (``/advice``)."""
        if viewer.scope is not None:
            raise InvalidInputError("recommendations cover the whole ledger: admins only")
        f = self.filters(request, viewer)
        ctx = self.common(request, viewer, f)
        ctx["advice"] = self.advice.get() if self.background else self._compute_advice()
        return self.render(request, "advice", ctx)

    def _compute_advice(self) -> Advice:
        from costwarden.optimizer import CostOptimizer

        now = self.clock()
        week = Filters("global", None, _day(now - 6 * 86_400), _day(now), "day", "UTC", "UTC")
        recs = queries.latest_records(self.ledger, week, limit=ADVICE_RECORDS)
        items = CostOptimizer(self.manager.pricing).recommendations(list(reversed(recs)))
        return Advice(items, len(recs), time.time())

    def billed(self, request: Request, viewer: Viewer) -> HTMLResponse:
        """Tracked spend beside an imported provider bill (``/billed``)."""
        if viewer.scope is not None:
            raise InvalidInputError("the provider's bill covers the whole ledger: admins only")
        f = self.filters(request, viewer)
        ctx = self.common(request, viewer, f)
        ctx.update(queries.tracked_vs_billed(self.manager.ledger, self.ledger, f))
        return self.render(request, "billed", ctx)


def _day(epoch: float) -> Any:
    return datetime.fromtimestamp(epoch, UTC).date()


_HEADERS: Final = {
    "Content-Security-Policy": _CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def dashboard_app(
    manager: BudgetManager,
    *,
    master_key: str | None = None,
    key_login: bool | None = None,
    clock: Callable[[], float] = time.time,
    background: bool = True,
) -> Starlette:
    """The dashboard as an ASGI app over ``manager``'s ledger and budgets.

    ``master_key``: a login with it sees everything. ``key_login`` (default: on when a master
    key is given): virtual-key holders may log in with their secret and see only their key.
    Neither: no login at all, and then it answers only requests from this machine (any other
    client gets a 403 saying to set a master key), wherever it is mounted. ``background``:
    fold big backlogs and compute the recommendations in threads (off: on the request, for
    tests).
    """
    if master_key is not None and (not isinstance(master_key, str) or len(master_key) < 8):
        raise InvalidInputError("master_key must be a string of at least 8 characters")
    dash = Dashboard(
        manager,
        master_key=master_key,
        key_login=bool(master_key) if key_login is None else key_login,
        clock=clock,
        background=background,
    )

    def page(view: Callable[[Request, Viewer], HTMLResponse]) -> Callable[..., Any]:
        async def endpoint(request: Request) -> Response:
            viewer = dash.sessions.viewer(request.cookies.get(COOKIE), dash.clock())
            base = request.scope.get("root_path", "").rstrip("/")
            if viewer is None:
                target = f"{base}/login"
                if "HX-Request" in request.headers:
                    return Response(status_code=401, headers={"HX-Redirect": target})
                return RedirectResponse(target, status_code=303)
            try:
                return await run_in_threadpool(view, request, viewer)
            except InvalidInputError as exc:
                return dash.render(request, "error", {"viewer": viewer, "message": str(exc)}, 400)
            except CostwardenError as exc:
                return dash.render(request, "error", {"viewer": viewer, "message": str(exc)}, 503)

        return endpoint

    async def login(request: Request) -> Response:
        base = request.scope.get("root_path", "").rstrip("/")
        if not dash.sessions.required:
            return RedirectResponse(f"{base}/", status_code=303)
        if request.method == "GET":
            return dash.render(request, "login", {"viewer": None, "message": None})
        body = (await request.body()).decode("utf-8", "replace")
        secret = (parse_qs(body).get("secret") or [""])[0]
        try:
            _viewer, cookie = await run_in_threadpool(dash.sessions.login, secret, dash.clock())
        except KeyAuthError as exc:
            msg = f"Not accepted: {exc}"
            return dash.render(request, "login", {"viewer": None, "message": msg}, 403)
        resp = RedirectResponse(f"{base}/", status_code=303)
        resp.set_cookie(
            COOKIE,
            cookie,
            max_age=SESSION_SECONDS,
            path=(base or "") + "/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return resp

    async def logout(request: Request) -> Response:
        base = request.scope.get("root_path", "").rstrip("/")
        resp = RedirectResponse(f"{base}/login" if dash.sessions.required else f"{base}/", 303)
        resp.delete_cookie(COOKIE, path=(base or "") + "/")
        return resp

    async def favicon(request: Request) -> Response:
        return Response((_HERE / "static" / "favicon.svg").read_bytes(), media_type="image/svg+xml")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if background:
            dash.refresher.start()
        try:
            yield
        finally:
            dash.refresher.stop()

    routes = [
        Route("/", page(dash.overview)),
        Route("/budgets", page(dash.budgets)),
        Route("/breakdown", page(dash.breakdown)),
        Route("/top", page(dash.top)),
        Route("/records", page(dash.records)),
        Route("/alerts", page(dash.alerts)),
        Route("/advice", page(dash.advice_view)),
        Route("/billed", page(dash.billed)),
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/favicon.ico", favicon),
        Mount("/static", app=StaticFiles(directory=str(_HERE / "static")), name="static"),
    ]
    # no login: only this machine may look (see dashboard/auth.py)
    guard = [] if dash.sessions.required else [Middleware(LoopbackOnly)]
    app = Starlette(routes=routes, lifespan=lifespan, middleware=guard)
    app.state.dashboard = dash
    return app


__all__ = ["dashboard_app"]
