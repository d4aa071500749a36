"""The dashboard over HTTP (Starlette's test client on a real SQLite ledger): every view
answers with the ledger's figures, filters live in the URL and bad ones are a 400 with the
reason, logins (master key, virtual key) and what a key's holder may see, the mount point, and
money shown with one number of decimals per column."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from costwarden.cli.dashboard import check_exposure, is_loopback
from costwarden.dashboard import dashboard_app
from costwarden.dashboard.formatting import places_for, usd
from costwarden.errors import ConfigurationError, InvalidInputError
from costwarden.keys import revoke_key
from tests.dashboard_data import NOW, Fixture, build

MASTER = "master-key-for-tests"


@pytest.fixture(scope="module")
def fx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fixture]:
    path = tmp_path_factory.mktemp("dash") / "ledger.db"
    fixture = build(f"sqlite:///{path}")
    yield fixture
    fixture.manager.close()


def client(fx: Fixture, **kw: object) -> TestClient:
    app = dashboard_app(fx.manager, clock=NOW.timestamp, background=False, **kw)  # type: ignore[arg-type]
    return TestClient(app, client=("127.0.0.1", 50000))  # a browser on this machine


def spent(fx: Fixture, days: int, **match: str) -> int:
    """Nano-USD of the records of the last ``days`` UTC days (today included) matching."""
    first = (NOW - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    total = 0
    for r in fx.manager.ledger.records(round(first.timestamp() * 1e6)):
        if all(getattr(r, k) == v for k, v in match.items()):
            total += r.cost_nanos
    return total


def test_every_view_answers_without_login_on_the_open_app(fx: Fixture) -> None:
    c = client(fx)
    for path in (
        "/",
        "/budgets",
        "/breakdown?by=user",
        "/top",
        "/records",
        "/alerts",
        "/advice",
        "/billed",
        "/breakdown?by=tag",
        "/?step=week&tz=Asia/Tokyo",
    ):
        r = c.get(path)
        assert r.status_code == 200, (path, r.text[:500])
        assert "script-src 'self'" in r.headers["content-security-policy"]
        assert "http://" not in r.text and "https://" not in r.text  # no CDN, nothing remote


def test_the_spend_view_shows_the_ledgers_total_and_the_range_changes_it(fx: Fixture) -> None:
    c = client(fx)
    for rng, days in (("30d", 30), ("7d", 7), ("1d", 1)):
        html = c.get(f"/?range={rng}").text
        total = int(re.search(r'id="total" data-nanos="(\d+)"', html).group(1))  # type: ignore[union-attr]
        assert total == spent(fx, days), rng
        assert f'data-nanos="{total}">{usd(total)}<' in html


class Tables(HTMLParser):
    """Every ``<table>`` of a page as rows of ``(cell text, data-nanos of its row)``."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: list[list[str]] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._table = self.tables.setdefault(str(dict(attrs).get("id")), [])
        elif tag == "tr" and self._table is not None:
            self._table.append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            self._table[-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def money_columns(html: str) -> dict[tuple[str, int], list[str]]:
    """The money cells (``$...``) of every table, by (table id, column)."""
    parser = Tables()
    parser.feed(html)
    out: dict[tuple[str, int], list[str]] = {}
    for table, rows in parser.tables.items():
        for row in rows[1:]:
            for i, cell in enumerate(row):
                if cell.lstrip("−-").startswith("$"):
                    out.setdefault((table, i), []).append(cell)
    return out


def test_money_shows_one_number_of_decimals_per_column(fx: Fixture) -> None:
    """The fixture's costs run from $0.001 to $0.017 a record: rounded one by one they printed
    ``$0.02`` beside ``$0.008000``; a column now shares its decimals, enough for two
    significant digits of its smallest non-zero figure."""
    c = client(fx)
    seen = 0
    pages = ("/", "/?range=1d", "/breakdown?by=user", "/breakdown?by=model", "/top", "/records")
    for path in pages:
        for (table, col), cells in money_columns(c.get(path).text).items():
            places = {len(x.rpartition(".")[2]) for x in cells}
            assert len(places) == 1, (path, table, col, cells)
            values = [Decimal(x.lstrip("−-$").replace(",", "")) for x in cells]
            smallest = min((v for v in values if v), default=None)
            if smallest is not None:  # two significant digits of the smallest, no more
                assert Decimal(1).scaleb(-places.pop() + 1) <= smallest, (path, table, cells)
            seen += len(cells)
    assert seen > 100
    top = client(fx).get("/top?range=30d").text
    cost_cell = r'data-nanos="(\d+)"><td>[^<]*</td><td>[^<]*</td><td class="n">([^<]+)<'
    shown = re.findall(cost_cell, top)
    assert len(shown) == 25
    for nanos, text in shown:  # each figure is its cost rounded half-even to those places
        quantum = Decimal(1).scaleb(-len(text.split(".")[1]))
        assert Decimal(text.lstrip("$")) == (Decimal(nanos) / 10**9).quantize(quantum)


def test_the_money_rule() -> None:
    column = [20_000_000, 8_000_000, 0]  # $0.02, $0.008, nothing
    assert [usd(n, places_for(column)) for n in column] == ["$0.0200", "$0.0080", "$0.0000"]
    assert places_for([0, None]) == 2 and usd(None) == "—" and usd(0) == "$0.00"
    assert usd(4_010_000_000) == "$4.01" and usd(1_234_500_000_000) == "$1,234.50"
    assert usd(1) == "$0.000000001"  # nine places at most: exact, never $0.00
    assert usd(150_000) == "$0.00015" and usd(-8_000_000) == "-$0.0080"
    assert usd(5_000_000, 2) == "$0.00" and usd(15_000_000, 2) == "$0.02"  # half-even
    assert usd(25_000_000, 2) == "$0.02" and usd(125_000_000_000, 0 + 2) == "$125.00"


def test_breakdown_by_user_matches_the_records_and_links_to_them(fx: Fixture) -> None:
    c = client(fx)
    html = c.get("/breakdown?by=user&range=7d").text
    rows = dict(re.findall(r'<tr data-name="([^"]+)" data-nanos="(\d+)"', html))
    assert {k: int(v) for k, v in rows.items()} == {
        u: spent(fx, 7, user_id=u) for u in ("alice", "bob", "carol")
    }
    assert 'href="/records?range=7d&amp;scope=user%3Aalice"' in html
    drill = c.get("/records?scope=user:alice&range=7d").text
    users = set(re.findall(r"<td>(alice|bob|carol)</td>", drill))
    assert users == {"alice"}


def test_top_requests_are_the_most_expensive_records(fx: Fixture) -> None:
    html = client(fx).get("/top?range=30d").text
    shown = [int(n) for n in re.findall(r'<tr data-id="\d+" data-nanos="(\d+)"', html)]
    first = (NOW - timedelta(days=29)).replace(hour=0, minute=0, second=0, microsecond=0)
    costs = sorted(
        (r.cost_nanos for r in fx.manager.ledger.records(round(first.timestamp() * 1e6))),
        reverse=True,
    )
    assert shown == costs[: len(shown)] and len(shown) == 25


def test_budget_gauges_show_every_budget_with_a_forecast(fx: Fixture) -> None:
    html = client(fx).get("/budgets").text
    for scope in ("global", "team:research", f"key:{fx.key_id}"):
        assert f'data-scope="{scope}"' in html
    assert "forecast at period end" in html and "80%" in html


def test_bad_filters_are_a_400_naming_the_problem(fx: Fixture) -> None:
    c = client(fx)
    for path, words in (
        ("/?tz=Mars/Olympus", "unknown time zone"),
        ("/?range=2y", "range must be one of"),
        ("/?step=hour", "step must be one of"),
        ("/?since=2025-06-10&until=2025-06-01", "is before since"),
        ("/?scope=planet:x", "scope must be"),
        ("/breakdown?by=colour", "by must be one of"),
        ("/?colour=red", "unknown filter"),
    ):
        r = c.get(path)
        assert r.status_code == 400 and words in r.text, path


def test_a_scope_breakdown_other_than_by_model_says_why_it_is_not_kept(fx: Fixture) -> None:
    html = client(fx).get("/breakdown?by=user&scope=team:research").text
    assert "keeps the breakdown by model only" in html


def test_htmx_requests_get_the_main_part_only(fx: Fixture) -> None:
    c = client(fx)
    part = c.get("/?range=7d", headers={"HX-Request": "true"}).text
    assert "<html" not in part and 'data-chart="spend"' in part
    full = c.get("/?range=7d", headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    assert "<html" in full.text


def test_master_key_login(fx: Fixture) -> None:
    c = client(fx, master_key=MASTER)
    r = c.get("/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert c.get("/", headers={"HX-Request": "true"}).headers["HX-Redirect"] == "/login"
    bad = c.post("/login", data={"secret": "wrong"})
    assert bad.status_code == 403 and "Not accepted" in bad.text
    ok = c.post("/login", data={"secret": MASTER}, follow_redirects=False)
    assert ok.status_code == 303
    assert "httponly" in ok.headers["set-cookie"].lower()
    assert "samesite=strict" in ok.headers["set-cookie"].lower()
    assert c.get("/breakdown?by=key").status_code == 200
    c.post("/logout")
    assert c.get("/", follow_redirects=False).status_code == 303
    forged = client(fx, master_key=MASTER)
    forged.cookies.set("cw_dashboard", "eyJyIjoiYWRtaW4iLCJleHAiOjk5OTk5OTk5OTl9.00")
    assert forged.get("/", follow_redirects=False).status_code == 303


def test_a_key_holder_sees_only_their_key(fx: Fixture) -> None:
    c = client(fx, master_key=MASTER)
    assert c.post("/login", data={"secret": fx.key_secret}).status_code == 200
    html = c.get("/?range=7d").text
    total = int(re.search(r'id="total" data-nanos="(\d+)"', html).group(1))  # type: ignore[union-attr]
    assert total == spent(fx, 7, key=fx.key_id) > 0
    assert f'value="key:{fx.key_id}" readonly' in html
    for path in (
        f"/?scope=key:{fx.other_key_id}",
        "/?scope=global",
        "/breakdown?by=user",
        "/advice",
        "/billed",
    ):
        r = c.get(path)
        assert r.status_code == 400, path
    top = c.get("/top").text
    assert fx.other_key_id not in top and fx.key_id in top
    budgets = c.get("/budgets").text
    assert re.findall(r'data-scope="([^"]+)"', budgets) == [f"key:{fx.key_id}"]


def test_a_revoked_keys_session_ends_at_once(tmp_path: Path) -> None:
    fx = build(f"sqlite:///{tmp_path / 'l.db'}")
    try:
        c = client(fx, master_key=MASTER)
        c.post("/login", data={"secret": fx.key_secret})
        assert c.get("/", follow_redirects=False).status_code == 200
        revoke_key(fx.manager.ledger, fx.key_id, now=NOW.timestamp() - 1)  # type: ignore[arg-type]
        assert c.get("/", follow_redirects=False).status_code == 303
        assert c.post("/login", data={"secret": fx.key_secret}).status_code == 403
    finally:
        fx.manager.close()


def test_mounted_under_a_prefix_every_link_keeps_it(fx: Fixture) -> None:
    inner = dashboard_app(fx.manager, clock=NOW.timestamp, background=False)
    outer = Starlette(routes=[Mount("/dashboard", app=inner)])
    c = TestClient(outer, client=("::1", 50000))
    html = c.get("/dashboard/?range=7d").text
    assert 'src="/dashboard/static/vendor/htmx-2.0.11.min.js"' in html
    assert 'href="/dashboard/budgets?range=7d"' in html
    assert c.get("/dashboard/static/app.js").status_code == 200
    links = re.findall(r'(?:href|src|action|hx-get)="(/[^"]*)"', html)
    assert links and all(u.startswith("/dashboard/") for u in links), links


def test_the_open_app_answers_only_this_machine(fx: Fixture) -> None:
    """No login: a request from another address gets a 403 naming the fix, whatever the
    path (pages, assets, login); with a master key the login page is served to anyone."""
    for far in ("192.0.2.7", "2001:db8::7", "testclient"):
        c = TestClient(dashboard_app(fx.manager, background=False), client=(far, 50000))
        for path in ("/", "/breakdown?by=user", "/static/app.js", "/login"):
            r = c.get(path)
            assert r.status_code == 403, (far, path)
            assert "no login (no master key is set)" in r.text and far in r.text
            assert "Set a master key" in r.text and "127.0.0.1" in r.text
    for near in ("127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"):
        c = TestClient(dashboard_app(fx.manager, background=False), client=(near, 50000))
        assert c.get("/").status_code == 200, near
    c = TestClient(dashboard_app(fx.manager, master_key=MASTER), client=("192.0.2.7", 50000))
    assert c.get("/login").status_code == 200
    assert c.get("/", follow_redirects=False).headers["location"] == "/login"


def test_the_command_refuses_an_open_dashboard_off_loopback() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert is_loopback("[::1]") and is_loopback("::ffff:127.0.0.1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2")
    assert not is_loopback("::") and not is_loopback("myhost") and not is_loopback(None)
    check_exposure("127.0.0.1", None, False)
    check_exposure("0.0.0.0", "a-master-key", False)
    check_exposure("0.0.0.0", None, True)
    with pytest.raises(ConfigurationError, match="without a login"):
        check_exposure("0.0.0.0", None, False)


def test_a_short_master_key_is_refused(fx: Fixture) -> None:
    with pytest.raises(InvalidInputError, match="at least 8"):
        dashboard_app(fx.manager, master_key="short")


def test_the_dashboard_command_exits_1_off_loopback_without_a_login(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from costwarden.cli.app import app

    monkeypatch.delenv("COSTWARDEN_MASTER_KEY", raising=False)
    url = f"sqlite:///{tmp_path / 'x.db'}"
    result = CliRunner().invoke(app, ["dashboard", "--host", "0.0.0.0", "--ledger", url])
    assert result.exit_code == 1
    assert "refusing to serve the dashboard on 0.0.0.0 without a login" in result.output
    assert not (tmp_path / "x.db").exists()  # refused before anything was opened


def test_the_folding_thread_ends_quietly_when_its_ledger_is_closed(tmp_path: Path) -> None:
    import threading
    import time as _time

    from costwarden.dashboard.background import Refresher
    from costwarden.ledger import open_ledger

    ledger = open_ledger(f"sqlite:///{tmp_path / 'c.db'}")
    refresher = Refresher(ledger, interval=0.01)  # type: ignore[arg-type]
    seen: list[BaseException] = []
    old = threading.excepthook
    threading.excepthook = lambda args: seen.append(args.exc_value)  # type: ignore[assignment]
    try:
        refresher.start()
        ledger.close()
        deadline = _time.monotonic() + 5
        while refresher._thread is not None and _time.monotonic() < deadline:
            _time.sleep(0.02)
    finally:
        threading.excepthook = old
    assert refresher._thread is None and seen == []


def test_tracked_vs_billed_shows_an_imported_bill_beside_the_tracked_spend(tmp_path: Path) -> None:
    from costwarden.ledger.billing import BillLine

    fx = build(f"sqlite:///{tmp_path / 'b.db'}")
    try:
        c = client(fx)
        assert "No provider bill has been imported" in c.get("/billed?range=7d").text
        day = (NOW - timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        start = round(day.timestamp() * 1e6)
        end = start + 86_400_000_000
        line = BillLine("openai", start, end, "gpt-4o-2024-08-06", "in", 5_000_000)
        fx.manager.ledger.put_bill_lines([line])  # type: ignore[attr-defined]
        html = c.get("/billed?range=7d").text
        row = re.search(r'<tr data-name="gpt-4o" data-tracked="(\d+)" data-billed="(\d+)"', html)
        assert row is not None
        tracked = sum(
            r.cost_nanos
            for r in fx.manager.ledger.records(
                round((NOW - timedelta(days=6)).replace(hour=0, minute=0).timestamp() * 1e6)
            )
            if r.model == "gpt-4o"
        )
        assert (int(row.group(1)), int(row.group(2))) == (tracked, 5_000_000)
        assert f'<tr data-name="{day.date()}"' in html
    finally:
        fx.manager.close()
