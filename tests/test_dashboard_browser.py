"""The dashboard in a real browser: Debian's chromium driven by playwright (never
``playwright install``), against the app on uvicorn on 127.0.0.1.

Every request the page makes is routed through the test, which fails on any that would leave
127.0.0.1; the console must stay free of errors; the chart must draw the ledger's numbers and
a filter must change them without a reload (htmx), keeping the filter in the URL. Screenshots
are kept under ``artifacts/dashboard/`` (ignored by git; docs/img/ holds two of them).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.dashboard_data import NOW, Fixture, build

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts" / "dashboard"

if not Path(CHROMIUM).exists():
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{CHROMIUM} is missing (scripts/test-services.sh installs it)", pytrace=False)
    pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium", allow_module_level=True)

playwright_api = pytest.importorskip("playwright.sync_api")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Fixture]]:
    import uvicorn

    from costwarden.dashboard import dashboard_app

    fx = build(f"sqlite:///{tmp_path_factory.mktemp('browser') / 'ledger.db'}")
    app = dashboard_app(fx.manager, clock=NOW.timestamp, background=False)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", fx
    server.should_exit = True
    thread.join(10)
    fx.manager.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


class Watch:
    """A page's console errors and any request that would leave loopback."""

    def __init__(self, page: Any) -> None:
        self.errors: list[str] = []
        self.outside: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.route("**/*", self._route)

    def _route(self, route: Any) -> None:
        url = route.request.url
        host = urlsplit(url).hostname
        if host != "127.0.0.1":
            self.outside.append(url)
            route.abort()
        else:
            route.continue_()

    def check(self) -> None:
        assert self.outside == [], f"requests left 127.0.0.1: {self.outside}"
        assert self.errors == [], f"console errors: {self.errors}"


def daily_spend(fx: Fixture, days: int) -> list[int]:
    """Nano-USD per UTC day of the last ``days`` days (oldest first), from the records."""
    first = (NOW - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    out = [0] * days
    for r in fx.manager.ledger.records(round(first.timestamp() * 1e6)):
        out[int((r.ts_us / 1e6 - first.timestamp()) // 86_400)] += r.cost_nanos
    return out


def chart_days(page: Any) -> list[float]:
    """The chart's drawn data: USD per period, summed over its series."""
    return list(
        page.evaluate(
            """() => { const s = window.cwCharts[0].cwSpec;
                return s.x.map((_, i) => s.series.reduce((a, q) => a + q.values[i], 0)); }"""
        )
    )


def shot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def test_the_chart_draws_the_ledgers_numbers_and_a_filter_changes_them(
    served: tuple[str, Fixture], browser: Any, tmp_path: Path
) -> None:
    url, fx = served
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    watch = Watch(page)
    page.goto(url + "/?range=30d")
    page.wait_for_function("() => window.cwCharts && window.cwCharts.length === 1")
    assert page.locator("[data-chart] canvas").count() == 1
    want = [n / 1e9 for n in daily_spend(fx, 30)]
    assert chart_days(page) == pytest.approx(want, abs=1e-9)
    assert page.locator("#total").inner_text() == f"${sum(want):,.2f}"
    shutil.copy(shot(page, "overview"), tmp_path / "overview.png")

    page.evaluate("() => { window.__notReloaded = true; }")
    page.select_option("select[name=range]", "7d")
    page.wait_for_url("**/?range=7d")
    page.wait_for_function("() => window.cwCharts[0].cwSpec.x.length === 7")
    assert page.evaluate("() => window.__notReloaded === true"), "the filter reloaded the page"
    assert chart_days(page) == pytest.approx([n / 1e9 for n in daily_spend(fx, 7)], abs=1e-9)

    page.select_option("select[name=step]", "week")
    page.wait_for_url("**/?range=7d&step=week")
    # this week (Monday to Wednesday) and the days of the week before
    page.wait_for_function("() => window.cwCharts[0].cwSpec.x.length === 2")
    assert sum(chart_days(page)) == pytest.approx(sum(daily_spend(fx, 7)) / 1e9, abs=1e-9)
    watch.check()
    page.close()


def test_every_view_loads_cleanly_on_a_laptop_and_a_phone(
    served: tuple[str, Fixture], browser: Any
) -> None:
    url, _fx = served
    views = [
        "/",
        "/budgets",
        "/breakdown?by=user",
        "/top",
        "/records?scope=user:alice",
        "/alerts",
        "/advice",
        "/billed",
    ]
    for name, size in (("laptop", (1280, 860)), ("phone", (390, 844))):
        page = browser.new_page(viewport={"width": size[0], "height": size[1]})
        watch = Watch(page)
        for path in views:
            page.goto(url + path)
            page.wait_for_load_state("networkidle")
            width = page.evaluate("() => document.documentElement.scrollWidth")
            assert width <= size[0] + 1, f"{path} is wider than the {name} screen ({width}px)"
        page.goto(url + "/budgets")
        shot(page, f"budgets-{name}")
        page.goto(url + "/breakdown?by=model")
        shot(page, f"breakdown-{name}")
        watch.check()
        page.close()


def test_navigation_swaps_the_page_in_place_and_back_restores_it(
    served: tuple[str, Fixture], browser: Any
) -> None:
    url, _fx = served
    page = browser.new_page()
    watch = Watch(page)
    page.goto(url + "/?range=7d")
    page.evaluate("() => { window.__notReloaded = true; }")
    page.click("nav >> text=Breakdown")
    page.wait_for_url("**/breakdown?range=7d")
    page.wait_for_selector("#breakdown-table")
    assert page.evaluate("() => window.__notReloaded === true")
    page.go_back()
    page.wait_for_url("**/?range=7d")
    page.wait_for_function("() => window.cwCharts && window.cwCharts.length === 1")
    watch.check()
    page.close()
