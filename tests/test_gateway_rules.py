"""The gateway's admission rules: end users, downgrade, rate limits, revocation seen by every
worker, a key reading only itself, and secrets kept out of logs."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from costwarden import Budget, BudgetManager
from costwarden.gateway import Gateway
from costwarden.gateway.logs import JsonFormatter
from costwarden.keys import create_key, key_usage, revoke_key
from costwarden.testing.fake_upstream import FakeUpstream
from tests.gateway_server import RunningGateway, running_gateway
from tests.helpers import close_after_test
from tests.test_gateway import ENV, MSG, NO_LIMITS, _settings


@pytest.fixture
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream() as server:
        yield server


@pytest.fixture
def manager(tmp_path: Any) -> Iterator[BudgetManager]:
    m = BudgetManager(NO_LIMITS, ledger=f"sqlite:///{tmp_path}/gw.db")
    yield m
    m.close()


@pytest.fixture
def gateway(up: FakeUpstream, manager: BudgetManager) -> Iterator[RunningGateway]:
    with running_gateway(Gateway(manager, _settings(up), environ=ENV)) as gw:
        yield gw


def _client(gw: RunningGateway, secret: str, **headers: str) -> openai.OpenAI:
    return close_after_test(
        openai.OpenAI(
            base_url=gw.openai_base_url, api_key=secret, max_retries=0, default_headers=headers
        )
    )


def _chat(client: openai.OpenAI, **kw: Any) -> Any:
    kw.setdefault("model", "gpt-4o-mini")
    kw.setdefault("max_tokens", 20)
    return client.chat.completions.with_raw_response.create(messages=MSG, **kw)


def test_end_user_cannot_escape_the_keys_budget(
    gateway: RunningGateway, manager: BudgetManager
) -> None:
    small = Budget(daily_limit=0.00002, monthly_limit=None, per_request_limit=None)
    key, secret = create_key(manager.ledger, budget=small, metadata={"end_users": True})
    client = _client(gateway, secret)
    _chat(client, user="bob", max_tokens=5)  # fits: 20 µ$ key budget
    (record,) = manager.records()
    assert record.tags == (f"end_user:{key.key_id}:bob",) and record.key == key.key_id
    for who in ("carol", "dave", "x" * 200):  # any end user: the key's budget still applies
        with pytest.raises(openai.RateLimitError) as err:
            _chat(client, user=who, max_tokens=50)
        assert err.value.body["budget"]["scope"] == f"key:{key.key_id}"  # type: ignore[index]
    with pytest.raises(openai.RateLimitError):
        _client(gateway, secret, **{"x-costwarden-end-user": "eve"}).chat.completions.create(
            model="gpt-4o-mini", messages=MSG, max_tokens=50
        )


def test_end_user_budget_limits_only_that_end_user_of_that_key(
    gateway: RunningGateway, manager: BudgetManager
) -> None:
    key, secret = create_key(manager.ledger, metadata={"end_users": True})
    _, other_secret = create_key(manager.ledger, metadata={"end_users": True})
    tiny = Budget(daily_limit=0.000001, monthly_limit=None, per_request_limit=None)
    manager.ledger.put_budget(f"tag:end_user:{key.key_id}:bob", tiny, actor="test", now=1.0)
    headers = {"x-costwarden-end-user": "bob"}
    with pytest.raises(openai.RateLimitError) as err:
        _client(gateway, secret, **headers).chat.completions.create(
            model="gpt-4o-mini", messages=MSG, max_tokens=20
        )
    assert err.value.body["budget"]["scope"] == f"tag:end_user:{key.key_id}:bob"  # type: ignore[index]
    _chat(_client(gateway, secret, **{"x-costwarden-end-user": "alice"}))  # another end user
    _chat(_client(gateway, other_secret, **headers))  # bob of another key: not the same budget


def test_end_users_need_the_keys_permission(
    gateway: RunningGateway, manager: BudgetManager
) -> None:
    _, secret = create_key(manager.ledger)
    with pytest.raises(openai.PermissionDeniedError, match="end user"):
        _client(gateway, secret, **{"x-costwarden-end-user": "bob"}).chat.completions.create(
            model="gpt-4o-mini", messages=MSG, max_tokens=5
        )
    _chat(_client(gateway, secret), user="bob")  # the `user` field alone is the upstream's
    assert manager.records()[-1].tags == ()


def test_downgrade_past_the_fraction_switches_model_and_says_so(
    gateway: RunningGateway, manager: BudgetManager, up: FakeUpstream
) -> None:
    budget = Budget(daily_limit=0.001, monthly_limit=None, per_request_limit=None)
    key, secret = create_key(
        manager.ledger,
        budget=budget,
        metadata={"downgrade_at": 0.5, "downgrade_to": "gpt-4o-mini"},
    )
    client = _client(gateway, secret)
    first = _chat(client, model="gpt-4o")
    assert "x-costwarden-downgraded" not in first.headers
    from costwarden.records import UsageRecord

    manager.record_spend(UsageRecord("gpt-4o", 1, 1, cost_usd=0.0006, key=key.key_id))
    import time

    time.sleep(1.1)  # the key's usage fraction is cached for key_cache_seconds
    second = _chat(client, model="gpt-4o")
    assert second.headers["x-costwarden-downgraded"] == "gpt-4o -> gpt-4o-mini"
    assert up.requests[-1].json()["model"] == "gpt-4o-mini"
    assert manager.records()[-1].model == "gpt-4o-mini"


def test_rpm_limit_is_shared_by_workers_on_one_ledger(
    up: FakeUpstream, manager: BudgetManager, tmp_path: Any
) -> None:
    _, secret = create_key(manager.ledger, rpm=3)
    second = BudgetManager(NO_LIMITS, ledger=f"sqlite:///{tmp_path}/gw.db")
    try:
        with (
            running_gateway(Gateway(manager, _settings(up), environ=ENV)) as a,
            running_gateway(Gateway(second, _settings(up), environ=ENV)) as b,
        ):
            _chat(_client(a, secret))
            _chat(_client(b, secret))
            _chat(_client(a, secret))
            with pytest.raises(openai.RateLimitError) as err:
                _chat(_client(b, secret))
            assert err.value.body["code"] == "rate_limit_exceeded"  # type: ignore[index]
            assert int(err.value.response.headers["retry-after"]) >= 1
            assert "x-should-retry" not in err.value.response.headers
    finally:
        second.close()
    assert len(manager.records()) == 3


def test_tpm_limit_counts_estimates_then_actuals(
    gateway: RunningGateway, manager: BudgetManager
) -> None:
    _, secret = create_key(manager.ledger, tpm=200)
    client = _client(gateway, secret)
    with pytest.raises(openai.RateLimitError, match="tpm"):
        _chat(client, max_tokens=500)  # the bound alone exceeds the limit
    _chat(client, max_tokens=150)  # counted at ~160, then corrected to the ~30 used
    _chat(client, max_tokens=150)
    assert len(manager.records()) == 2


def test_revoked_key_is_refused_by_every_worker_within_the_bound(
    up: FakeUpstream, manager: BudgetManager, tmp_path: Any
) -> None:
    key, secret = create_key(manager.ledger)
    second = BudgetManager(NO_LIMITS, ledger=f"sqlite:///{tmp_path}/gw.db")
    try:
        with (
            running_gateway(Gateway(manager, _settings(up), environ=ENV)) as a,
            running_gateway(Gateway(second, _settings(up), environ=ENV)) as b,
        ):
            _chat(_client(a, secret))
            _chat(_client(b, secret))  # both workers now hold the key in their cache
            revoke_key(manager.ledger, key.key_id)
            for gw in (a, b):  # on SQLite the control version moves at once: no wait at all
                with pytest.raises(openai.AuthenticationError, match="revoked"):
                    _chat(_client(gw, secret))
    finally:
        second.close()


def test_a_key_reads_only_its_own_spend(gateway: RunningGateway, manager: BudgetManager) -> None:
    a, a_secret = create_key(manager.ledger, budget=Budget(daily_limit=1.0, monthly_limit=None))
    b, b_secret = create_key(manager.ledger)
    _chat(_client(gateway, a_secret))
    usage = key_usage(manager.ledger, b)  # b's view: no argument can name another scope
    assert usage.key_id == b.key_id and all(p.spent == 0 for p in usage.periods)
    assert manager.get_status(key=a.key_id)["daily_spent"] > 0
    # the gateway answers b's /v1/models with b's models, never a's spend or models
    models = _client(gateway, b_secret).models.list()
    assert all("spent" not in str(m) for m in models)


def test_secrets_and_prompts_never_reach_the_logs(
    gateway: RunningGateway, manager: BudgetManager, up: FakeUpstream
) -> None:
    records: list[str] = []

    class Grab(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(JsonFormatter().format(record))

    grab = Grab(logging.DEBUG)
    root = logging.getLogger()
    root.addHandler(grab)
    old = root.level
    root.setLevel(logging.DEBUG)
    cw = logging.getLogger("costwarden")
    cw_level = cw.level
    cw.setLevel(logging.DEBUG)
    try:
        key, secret = create_key(manager.ledger)
        client = _client(gateway, secret)
        client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "PROMPT-CANARY-42"}],
            max_tokens=5,
        )
        with pytest.raises(openai.AuthenticationError):
            _client(gateway, "cw-WRONG-SECRET-CANARY").chat.completions.create(
                model="gpt-4o-mini", messages=MSG, max_tokens=5
            )
    finally:
        root.removeHandler(grab)
        root.setLevel(old)
        cw.setLevel(cw_level)
    text = "\n".join(records)
    assert '"msg":"request"' in text and key.key_id in text
    for secret_text in (secret, "PROMPT-CANARY-42", "WRONG-SECRET-CANARY", *ENV.values()):
        assert secret_text not in text
