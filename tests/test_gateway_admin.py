"""The gateway's admin API under a real uvicorn server on 127.0.0.1, on SQLite and PostgreSQL.

Every route, the master key (missing, wrong, a virtual key's secret instead), bad input that
must change nothing, and the rule that a virtual key reads only its own budget and spend.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from costwarden.budget import Budget
from costwarden.errors import ConfigurationError
from costwarden.gateway.admin import admin_app
from costwarden.manager import BudgetManager
from costwarden.records import UsageRecord
from tests import pg
from tests.asgi_server import LiveServer, call

MASTER = "test-master-key-0123456789"


@dataclass
class Admin:
    """A live admin API over a manager's ledger."""

    url: str
    manager: BudgetManager

    def __call__(self, method: str, path: str, body: object = None, **kw: Any) -> tuple[int, Any]:
        kw.setdefault("token", MASTER)
        return call(self.url + path, method, body, **kw)

    def get(self, path: str, **kw: Any) -> Any:
        status, data = self("GET", path, **kw)
        assert status == 200, (path, status, data)
        return data

    def state(self) -> tuple[Any, ...]:
        """Everything the API can change, to show that a refused request changed nothing."""
        ledger: Any = self.manager.ledger
        return (
            ledger.control_version(),
            [s.as_dict() for s in ledger.budgets()],
            [k.as_dict() for k in ledger.list_keys()],
            len(ledger.audit(limit=10_000)),
        )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
    else:
        with pg.temp_schema_url() as url:
            yield url


@pytest.fixture
def admin(ledger_url: str) -> Iterator[Admin]:
    manager = BudgetManager(Budget(daily_limit=None, monthly_limit=None), ledger=ledger_url)
    try:
        with LiveServer(admin_app(manager, master_key=MASTER)) as server:
            yield Admin(server.url, manager)
    finally:
        manager.close()


MASTER_ROUTES = [
    ("GET", "/budgets"),
    ("GET", "/budgets/global"),
    ("PUT", "/budgets/team:eng"),
    ("DELETE", "/budgets/team:eng"),
    ("GET", "/keys"),
    ("POST", "/keys"),
    ("GET", "/keys/abc"),
    ("POST", "/keys/abc/rotate"),
    ("POST", "/keys/abc/revoke"),
    ("GET", "/spend"),
    ("GET", "/spend/series?scope=global"),
    ("GET", "/alerts"),
    ("GET", "/audit"),
]


def test_every_route_refuses_a_missing_wrong_or_virtual_key_and_says_nothing_more(
    admin: Admin,
) -> None:
    st, made = admin("POST", "/keys", {"user": "alice"})
    assert st == 201
    virtual = made["secret"]
    before = admin.state()
    answers = set()
    for method, path in MASTER_ROUTES:
        body = {"daily_limit": 1} if method == "PUT" else None
        for token in (None, "", "wrong", MASTER + "x", MASTER[:-1], virtual, "Basic " + MASTER):
            status, data = admin(method, path, body, token=token)
            assert status == 401, (method, path, token)
            answers.add(json.dumps(data))
        status, data = call(admin.url + path, method, body, headers={"Authorization": MASTER})
        assert status == 401  # no Bearer scheme
        answers.add(json.dumps(data))
    assert len(answers) == 1  # one answer for every refusal: nothing about why
    assert json.loads(answers.pop()) == {
        "error": {
            "type": "unauthorized",
            "message": "a valid key is required: Authorization: Bearer <key>",
        }
    }
    assert admin.state() == before
    # and the master key is no virtual key
    assert admin("GET", "/key/info")[0] == 401


def test_budgets_set_get_list_delete_with_defaults_and_the_actor_recorded(admin: Admin) -> None:
    st, stored = admin("PUT", "/budgets/team:eng", {"daily_limit": 5, "monthly_limit": "100.5"})
    assert st == 200
    assert stored["scope"] == "team:eng" and stored["actor"] == "admin-api"
    assert stored["budget"]["daily_limit"] == 5.0 and stored["budget"]["monthly_limit"] == 100.5
    assert stored["budget"]["per_request_limit"] is None  # left out means no limit
    st, _ = admin("PUT", "/budgets/default:user", {"daily_limit": 0.25, "timezone": "Asia/Tokyo"})
    assert st == 200
    st, _ = admin(
        "PUT", "/budgets/global", {"monthly_limit": 1000, "rolling_limits": {"3600": 2.5}}
    )
    assert st == 200
    assert [b["scope"] for b in admin.get("/budgets")["budgets"]] == [
        "default:user",
        "global",
        "team:eng",
    ]
    assert [b["scope"] for b in admin.get("/budgets?kind=default")["budgets"]] == ["default:user"]
    assert [b["scope"] for b in admin.get("/budgets?kind=team")["budgets"]] == ["team:eng"]
    got = admin.get("/budgets/global")
    assert got["budget"]["rolling_limits"] == {"3600": 2.5}
    # what was read can be sent back as it is
    st, again = admin("PUT", "/budgets/global", got["budget"])
    assert st == 200 and again["budget"] == got["budget"] and again["version"] > got["version"]
    # the ledger holds exactly what was sent, for every process to enforce
    ledger: Any = admin.manager.ledger
    assert ledger.control_snapshot().get("team:eng").budget.limit_nanos("daily") == 5_000_000_000
    assert ledger.control_snapshot().get("default:user").budget.timezone == "Asia/Tokyo"
    st, removed = admin("DELETE", "/budgets/team:eng")
    assert st == 200 and removed["removed"]["scope"] == "team:eng"
    assert admin("GET", "/budgets/team:eng")[0] == 404
    assert admin("DELETE", "/budgets/team:eng")[0] == 404
    events = admin.get("/audit")["events"]
    assert [e["action"] for e in events] == ["budget.remove", *["budget.put"] * 4]
    assert {e["actor"] for e in events} == {"admin-api"}


BAD_BUDGETS: list[tuple[str, object, str]] = [
    ("team:eng", {}, "sets no limit"),
    ("team:eng", {"montly_limit": 5}, "unknown field"),
    ("team:eng", {"daily_limit": -1}, "daily_limit"),
    ("team:eng", {"daily_limit": "ten"}, "daily_limit"),
    ("team:eng", {"daily_limit": True}, "daily_limit"),
    ("team:eng", {"daily_limit": 1e30}, "daily_limit"),
    ("team:eng", {"daily_limit": 1, "timezone": "Mars/Olympus"}, "time zone"),
    ("team:eng", {"daily_limit": 1, "alert_threshold": 2}, "alert_threshold"),
    ("team:eng", {"daily_limit": 1, "alert_thresholds": []}, "alert_thresholds"),
    ("team:eng", {"rolling_limits": {"90": 1}}, "whole number of minutes"),
    ("team:eng", {"rolling_limits": {"1h": 1}}, "whole seconds"),
    ("team:eng", {"rolling_limits": {"3600": None}}, "rolling_limits"),
    ("team:eng", [1, 2], "JSON object"),
    ("team:eng", "not json", "JSON"),
    ("team:eng", {"daily_limit": 1, "timezone": "UTC\u0000"}, "NUL"),
    ("nobody", {"daily_limit": 1}, "scope"),
    ("user:", {"daily_limit": 1}, "non-empty"),
    ("default:global", {"daily_limit": 1}, "default budget"),
    ("planet:mars", {"daily_limit": 1}, "scope kind"),
    ("user:" + "a" * 600, {"daily_limit": 1}, "at most"),
]


@pytest.mark.parametrize(("scope", "body", "says"), BAD_BUDGETS, ids=lambda v: str(v)[:30])
def test_bad_budget_input_is_a_400_that_says_what_and_changes_nothing(
    admin: Admin, scope: str, body: object, says: str
) -> None:
    admin("PUT", "/budgets/team:eng", {"daily_limit": 1})
    before = admin.state()
    raw = body.encode() if isinstance(body, str) else None
    status, data = admin("PUT", f"/budgets/{scope}", None if raw else body, raw=raw)
    assert status == 400, data
    assert data["error"]["type"] == "invalid_request"
    assert says.lower() in data["error"]["message"].lower(), data
    assert admin.state() == before


def test_a_lone_surrogate_or_nan_in_json_is_refused_before_the_ledger(admin: Admin) -> None:
    before = admin.state()
    for raw in (
        b'{"daily_limit": NaN}',
        b'{"daily_limit": 1, "timezone": "\\ud800"}',
        b'{"user": "\\udfff"}',
        b'{"metadata": {"\\ud800": 1}}',
        b'{"models": ["gpt\\u0000"]}',
    ):
        path = "/keys" if b"daily" not in raw else "/budgets/team:x"
        status, data = admin("PUT" if "budgets" in path else "POST", path, raw=raw)
        assert status == 400, (raw, data)
    assert admin.state() == before


def test_keys_secret_once_never_listed_rotate_with_grace_and_revoke(admin: Admin) -> None:
    st, made = admin(
        "POST",
        "/keys",
        {
            "user": "alice",
            "team": "eng",
            "budget": {"daily_limit": 2},
            "models": ["gpt-4o-mini"],
            "rpm": 60,
            "metadata": {"owner": "docs"},
            "expires_at": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
        },
    )
    assert st == 201
    key, secret = made["key"], made["secret"]
    assert secret.startswith("cw-") and key["prefix"] == secret[:11]
    key_id = key["key_id"]
    stored: Any = admin.manager.ledger.key_by_id(key_id)  # type: ignore[attr-defined]
    for path in ("/keys", f"/keys/{key_id}", "/audit"):
        text = json.dumps(admin.get(path))
        assert secret not in text and stored.hash not in text
        assert '"hash"' not in text
    listed = admin.get("/keys")["keys"]
    assert [k["key_id"] for k in listed] == [key_id]
    assert listed[0]["budget"]["daily_limit"] == 2.0 and listed[0]["models"] == ["gpt-4o-mini"]
    assert admin.get(f"/keys/{key_id}") == listed[0]
    assert admin("GET", "/keys/nope")[0] == 404

    st, rotated = admin("POST", f"/keys/{key_id}/rotate", {"grace_seconds": 3600})
    assert st == 200 and rotated["secret"] != secret
    assert rotated["key"]["previous_prefix"] == key["prefix"]
    assert admin("GET", "/key/info", token=secret)[0] == 200  # still within its grace
    assert admin("GET", "/key/info", token=rotated["secret"])[0] == 200
    st, again = admin("POST", f"/keys/{key_id}/rotate", {"grace_seconds": 0})
    assert st == 200
    assert admin("GET", "/key/info", token=rotated["secret"])[0] == 401  # no grace asked

    st, revoked = admin("POST", f"/keys/{key_id}/revoke")
    assert st == 200 and revoked["key"]["revoked_at"] is not None
    status, data = admin("GET", "/key/info", token=again["secret"])
    assert status == 401 and "revoked" in data["error"]["message"]
    assert admin("POST", f"/keys/{key_id}/revoke")[0] == 200  # idempotent
    before = admin.state()
    status, data = admin("POST", f"/keys/{key_id}/rotate")
    assert status == 409 and "revoked" in data["error"]["message"]
    assert admin.state() == before
    assert admin.get("/keys?include_revoked=false") == {"keys": []}
    assert [e["action"] for e in admin.get(f"/audit?target=key:{key_id}")["events"]] == [
        "key.update",
        "key.update",
        "key.update",
        "key.create",
    ]


@pytest.mark.parametrize(
    "body",
    [
        {"user": ""},
        {"user": 5},
        {"rpm": 0},
        {"rpm": 2**70},
        {"tpm": 1.5},
        {"models": []},
        {"models": "gpt-4o"},
        {"metadata": [1]},
        {"expires_at": "2001-01-01T00:00:00Z"},
        {"expires_at": "tomorrow"},
        {"budget": {"montly_limit": 1}},
        {"secret": "cw-chosen-by-me"},
    ],
    ids=lambda b: json.dumps(b)[:30],
)
def test_bad_key_input_is_a_400_and_creates_nothing(admin: Admin, body: object) -> None:
    before = admin.state()
    status, data = admin("POST", "/keys", body)
    assert status == 400, data
    assert admin.state() == before


def _spend(manager: BudgetManager, at: datetime, cost_tokens: int, **who: Any) -> None:
    manager.record_spend(UsageRecord("gpt-4o-mini", cost_tokens, 0, timestamp=at, **who))


def test_spend_by_key_user_team_model_and_day_for_a_period(admin: Admin) -> None:
    _, a = admin("POST", "/keys", {"user": "alice", "team": "eng"})
    _, b = admin("POST", "/keys", {"user": "bob", "team": "ops"})
    ka, kb = a["key"]["key_id"], b["key"]["key_id"]
    day1 = datetime(2026, 11, 2, 10, tzinfo=UTC)
    day2 = datetime(2026, 11, 3, 23, 30, tzinfo=UTC)  # 2026-11-04 in Tokyo
    m = admin.manager
    _spend(m, day1, 1_000_000, key=ka, user_id="alice", team="eng")  # $0.15 (gpt-4o-mini input)
    _spend(m, day2, 2_000_000, key=ka, user_id="alice", team="eng")
    _spend(m, day2, 4_000_000, key=kb, user_id="bob", team="ops")
    _spend(m, day2 + timedelta(days=40), 9_000_000, key=kb, user_id="bob", team="ops")  # outside
    span = "since=2026-11-01&until=2026-12-01"
    cost = {r.key: 0 for r in m.ledger.records()}
    for r in m.ledger.records():
        cost[r.key] += r.cost_nanos
    by_key = admin.get(f"/spend?by=key&{span}")
    rows = {r["group"]: r for r in by_key["rows"]}
    assert rows[kb]["requests"] == 1 and rows[ka]["requests"] == 2
    assert rows[ka]["cost_nanos"] == sum(r.cost_nanos for r in m.ledger.records() if r.key == ka)
    assert by_key["total"]["requests"] == 3
    assert {r["group"] for r in admin.get(f"/spend?by=user&{span}")["rows"]} == {"alice", "bob"}
    assert {r["group"] for r in admin.get(f"/spend?by=team&{span}")["rows"]} == {"eng", "ops"}
    assert [r["group"] for r in admin.get(f"/spend?by=model&{span}")["rows"]] == ["gpt-4o-mini"]
    days = admin.get(f"/spend?by=day&{span}")["rows"]
    assert [(r["group"], r["requests"]) for r in days] == [("2026-11-02", 1), ("2026-11-03", 2)]
    tokyo = admin.get(f"/spend?by=day&{span}&timezone=Asia/Tokyo")["rows"]
    assert [(r["group"], r["requests"]) for r in tokyo] == [("2026-11-02", 1), ("2026-11-04", 2)]
    # naive times are read in the given zone: Tokyo's 2026-11-04 starts at 15:00 UTC on the 3rd
    late = admin.get("/spend?by=key&since=2026-11-04T00:00&until=2026-11-05&timezone=Asia/Tokyo")
    assert late["total"]["requests"] == 2
    # exact money as a decimal string beside nano-USD
    assert by_key["total"]["cost_usd"] == f"{by_key['total']['cost_nanos'] / 1e9:.9f}"

    series = admin.get(f"/spend/series?scope=key:{ka}&period=daily&{span}")
    assert [p["start"][:10] for p in series["points"]] == ["2026-11-02", "2026-11-03"]
    assert series["total_nanos"] == rows[ka]["cost_nanos"]
    month = admin.get(f"/spend/series?scope=global&period=monthly&{span}")
    assert month["total_nanos"] == by_key["total"]["cost_nanos"]
    assert (
        admin.get(f"/spend/series?scope=team:ops&{span}")["total_nanos"] == rows[kb]["cost_nanos"]
    )


@pytest.mark.parametrize(
    "query",
    [
        "/spend?by=colour",
        "/spend?since=yesterday",
        "/spend?since=2026-11-02&until=2026-11-01",
        "/spend?timezone=Mars/Olympus",
        "/spend?bye=key",
        "/spend/series",
        "/spend/series?scope=default:user",
        "/spend/series?scope=global&period=hourly",
        "/alerts?limit=0",
        "/alerts?limit=abc",
        "/alerts?limit=99999999999999999999",
        "/audit?since=2026-13-01",
        "/audit?target=x%00y",
        "/budgets?kind=planet",
        "/keys?include_revoked=maybe",
        "/budgets/global?x=1",
    ],
)
def test_bad_queries_are_400s(admin: Admin, query: str) -> None:
    status, data = admin("GET", query)
    assert status == 400, data
    assert data["error"]["type"] == "invalid_request" and data["error"]["message"]


def test_a_key_reads_its_own_budget_and_spend_and_never_another_keys(admin: Admin) -> None:
    _, a = admin("POST", "/keys", {"user": "alice", "budget": {"daily_limit": 1}})
    _, b = admin("POST", "/keys", {"user": "bob", "budget": {"daily_limit": 50}})
    now = datetime.now(UTC)
    _spend(admin.manager, now, 1_000_000, key=a["key"]["key_id"], user_id="alice")
    _spend(admin.manager, now, 5_000_000, key=b["key"]["key_id"], user_id="bob")
    mine = admin.get("/key/info", token=a["secret"])
    assert mine["key"]["key_id"] == a["key"]["key_id"] and mine["budget_scope"].startswith("key:")
    daily = {p["period"]: p for p in mine["periods"]}["daily"]
    own = sum(r.cost_nanos for r in admin.manager.ledger.records() if r.key == a["key"]["key_id"])
    assert daily["spent_nanos"] == own and daily["limit_nanos"] == 1_000_000_000
    text = json.dumps(mine)
    assert b["key"]["key_id"] not in text and "bob" not in text and b["secret"] not in text
    # no way to name another key: parameters are refused, master routes refuse the key
    for path in (
        f"/key/info?key_id={b['key']['key_id']}",
        f"/key/info?scope=key:{b['key']['key_id']}",
    ):
        status, data = admin("GET", path, token=a["secret"])
        assert status == 400 and b["key"]["key_id"] not in json.dumps(data)
    for path in (f"/keys/{b['key']['key_id']}", "/spend?by=key", "/keys", "/audit"):
        assert admin("GET", path, token=a["secret"])[0] == 401
    assert admin("GET", "/key/info", token="cw-not-a-key")[0] == 401
    assert admin("GET", "/key/info", token=None)[0] == 401


def test_alert_delivery_history_newest_first_with_since_and_limit(admin: Admin) -> None:
    ledger: Any = admin.manager.ledger
    base = time.time() - 100
    for i in range(3):
        payload = json.dumps({"level": "warning", "scope": "team:eng", "message": f"m{i}"})
        assert ledger.claim_alert(f"dedup-{i}", payload, ["slack", "email"], base + i)
    rows = admin.get("/alerts")["deliveries"]
    assert len(rows) == 6 and rows[0]["message"] == "m2" and rows[-1]["message"] == "m0"
    assert {r["channel"] for r in rows} == {"slack", "email"}
    assert rows[0]["status"] == "pending" and rows[0]["level"] == "warning"
    assert len(admin.get("/alerts?limit=2")["deliveries"]) == 2
    since = datetime.fromtimestamp(base + 1.5, UTC).isoformat()
    assert {r["message"] for r in admin.get(f"/alerts?since={_q(since)}")["deliveries"]} == {"m2"}


def test_audit_filters_since_until_target_limit(admin: Admin) -> None:
    for team in ("a", "b", "c"):
        admin("PUT", f"/budgets/team:{team}", {"daily_limit": 1})
        time.sleep(0.02)
    events = admin.get("/audit")["events"]
    assert [e["target"] for e in events] == ["team:c", "team:b", "team:a"]
    assert [e["target"] for e in admin.get("/audit?target=team:b")["events"]] == ["team:b"]
    assert len(admin.get("/audit?limit=1")["events"]) == 1
    middle = events[1]["at"]
    since = [e["target"] for e in admin.get(f"/audit?since={_q(middle)}")["events"]]
    until = [e["target"] for e in admin.get(f"/audit?until={_q(middle)}")["events"]]
    assert since == ["team:c", "team:b"] and until == ["team:a"]
    assert events[0]["new"]["scope"] == "team:c" and events[0]["old"] is None


def _q(text: str) -> str:
    return text.replace("+", "%2B")


def test_routes_and_methods_that_do_not_exist_answer_json(admin: Admin) -> None:
    status, data = admin("GET", "/nothing")
    assert status == 404 and data["error"]["type"] == "not_found"
    status, data = admin("DELETE", "/keys")
    assert status == 405 and data["error"]["type"] == "method_not_allowed"


def test_a_body_over_the_limit_is_413_and_changes_nothing(admin: Admin) -> None:
    before = admin.state()
    status, data = admin("POST", "/keys", raw=b'{"metadata": {"x": "' + b"a" * 70_000 + b'"}}')
    assert status == 413 and data["error"]["type"] == "too_large"
    assert admin.state() == before


def test_the_openapi_schema_is_served_and_lists_every_route(admin: Admin) -> None:
    schema = admin.get("/openapi.json", token=None)
    assert schema["openapi"].startswith("3.1")
    assert set(schema["paths"]) == {
        "/budgets",
        "/budgets/{scope}",
        "/keys",
        "/keys/{key_id}",
        "/keys/{key_id}/rotate",
        "/keys/{key_id}/revoke",
        "/spend",
        "/spend/series",
        "/alerts",
        "/audit",
        "/key/info",
    }


@pytest.mark.parametrize(
    "master", ["", "short", "  padded-short  ", "cw-0123456789abcdefghij", None]
)
def test_a_weak_or_confusable_master_key_is_refused(tmp_path: Path, master: Any) -> None:
    with (
        BudgetManager(ledger=f"sqlite:///{tmp_path / 'l.db'}") as manager,
        pytest.raises(ConfigurationError, match="master key"),
    ):
        admin_app(manager, master_key=master)
