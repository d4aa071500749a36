"""Bad input gets a clear typed error and changes nothing (issue #11).

Each case below is a call with one bad argument. On every ledger (memory, SQLite, PostgreSQL)
it must raise :class:`InvalidInputError` (a ``ValueError``), and the ledger must look exactly
as before: the same records, holds, totals, reset events and budgets. The hypothesis tests at
the end throw random junk at the public constructors and manager methods: whatever they do,
they raise nothing but the typed error.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from costwarden.budget import GLOBAL, Budget, Scope
from costwarden.clients import OpenAIProvider, TrackedLLMClient
from costwarden.errors import ConfigurationError, CostwardenError, InvalidInputError
from costwarden.manager import BudgetManager, Hold
from costwarden.records import Usage, UsageRecord
from costwarden.testing.fake_upstream import FakeUpstream
from tests import pg

MODEL = "gpt-4o-mini"
ALICE = Scope("user", "alice")
HELLO = [{"role": "user", "content": "Hello"}]
Case = Callable[[BudgetManager, Hold], object]


def rec(**kw: Any) -> UsageRecord:
    """A record of one cent, with ``kw`` changed."""
    return UsageRecord(**{"model": MODEL, "input_tokens": 10, "output_tokens": 5, **kw})


def aware(year: int, hours: int = 0) -> datetime:
    return datetime(year, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=hours)))


# -- the table -----------------------------------------------------------------------------------
CASES: list[Any] = [
    # 1. Empty scope names: one rule everywhere ('' is an error; None means no such scope).
    pytest.param(lambda m, h: m.reserve(0.01, user=""), id="reserve-user-empty"),
    pytest.param(lambda m, h: m.reserve(0.01, team=""), id="reserve-team-empty"),
    pytest.param(lambda m, h: m.reserve(0.01, key=""), id="reserve-key-empty"),
    pytest.param(lambda m, h: m.reserve(0.01, model=""), id="reserve-model-empty"),
    pytest.param(lambda m, h: m.reserve(0.01, tags=["ok", ""]), id="reserve-tag-empty"),
    pytest.param(lambda m, h: m.can_spend(0.01, user=""), id="can_spend-user-empty"),
    pytest.param(lambda m, h: m.can_spend(0.01, team=""), id="can_spend-team-empty"),
    pytest.param(lambda m, h: m.record_spend(rec(user_id="")), id="record-user_id-empty"),
    pytest.param(lambda m, h: m.record_spend(rec(team="")), id="record-team-empty"),
    pytest.param(lambda m, h: m.record_spend(rec(key="")), id="record-key-empty"),
    pytest.param(lambda m, h: m.record_spend(rec(endpoint="")), id="record-endpoint-empty"),
    pytest.param(lambda m, h: m.record_spend(rec(provider="")), id="record-provider-empty"),
    pytest.param(lambda m, h: m.record_spend(rec(request_id="")), id="record-request_id-empty"),
    pytest.param(lambda m, h: m.commit(h, rec(user_id="")), id="commit-user_id-empty"),
    pytest.param(lambda m, h: m.get_status(user=""), id="get_status-user-empty"),
    pytest.param(lambda m, h: m.get_status(tag=""), id="get_status-tag-empty"),
    pytest.param(lambda m, h: m.set_budget(Budget(), user=""), id="set_budget-user-empty"),
    pytest.param(lambda m, h: m.set_budget(Budget(), model=""), id="set_budget-model-empty"),
    pytest.param(lambda m, h: m.reset_daily(user=""), id="reset_daily-user-empty"),
    pytest.param(lambda m, h: m.reset_monthly(team=""), id="reset_monthly-team-empty"),
    pytest.param(lambda m, h: m.forecast("user:"), id="forecast-user-empty"),
    # ... and names that are not strings at all
    pytest.param(lambda m, h: m.reserve(0.01, user=5), id="reserve-user-int"),
    pytest.param(lambda m, h: m.get_status(user=["alice"]), id="get_status-user-list"),
    pytest.param(lambda m, h: m.forecast(5), id="forecast-scope-int"),
    pytest.param(lambda m, h: m.reset_daily(users="alice"), id="reset_daily-unknown-kwarg"),
    # 2. Timestamps that period arithmetic cannot place (OverflowError / ValueError before).
    pytest.param(lambda m, h: m.record_spend(rec(timestamp=aware(9999))), id="ts-9999-utc"),
    pytest.param(lambda m, h: m.record_spend(rec(timestamp=aware(9999, -14))), id="ts-9999-14"),
    pytest.param(lambda m, h: m.record_spend(rec(timestamp=aware(1, 0))), id="ts-year-1"),
    pytest.param(
        lambda m, h: m.record_spend(rec(timestamp=datetime(1, 1, 1))), id="ts-year-1-naive"
    ),
    pytest.param(lambda m, h: m.commit(h, rec(timestamp=aware(9999))), id="commit-ts-9999"),
    pytest.param(lambda m, h: m.forecast(now=aware(9999)), id="forecast-now-9999"),
    pytest.param(lambda m, h: m.records(since=aware(9999, -14)), id="records-since-10000"),
    # ... record fields of the wrong type (sqlite3.IntegrityError, ValueError, TypeError before)
    pytest.param(lambda m, h: m.record_spend(rec(status=None)), id="status-none"),
    pytest.param(lambda m, h: m.record_spend(rec(status="")), id="status-empty"),
    pytest.param(lambda m, h: m.record_spend(rec(status=5)), id="status-int"),
    pytest.param(lambda m, h: m.record_spend(rec(estimated="yes")), id="estimated-str"),
    pytest.param(lambda m, h: m.record_spend(rec(estimated=1)), id="estimated-int"),
    pytest.param(lambda m, h: m.record_spend(rec(tags=5)), id="tags-int"),
    pytest.param(lambda m, h: m.record_spend(rec(tags=None)), id="tags-none"),
    pytest.param(lambda m, h: m.record_spend(rec(tags=[1])), id="tags-not-strings"),
    pytest.param(lambda m, h: m.record_spend(rec(tags=b"ab")), id="tags-bytes"),
    pytest.param(lambda m, h: m.commit(h, rec(status=None)), id="commit-status-none"),
    pytest.param(lambda m, h: m.reserve(0.01, tags=5), id="reserve-tags-int"),
    # ... absurd budgets (windows and limits)
    pytest.param(lambda m, h: m.set_budget(Budget(rolling_limits={6e21: 1})), id="window-6e21"),
    pytest.param(
        lambda m, h: m.set_budget(Budget(rolling_limits={60 * 10**20: 1})), id="window-huge-int"
    ),
    pytest.param(
        lambda m, h: m.set_budget(Budget(rolling_limits={366 * 86400 + 60: 1})), id="window-367d"
    ),
    pytest.param(lambda m, h: m.set_budget(Budget(rolling_limits={math.nan: 1})), id="window-nan"),
    pytest.param(lambda m, h: m.set_budget(Budget(rolling_limits={math.inf: 1})), id="window-inf"),
    pytest.param(
        lambda m, h: m.set_budget(Budget(rolling_limits={-3600: 1})), id="window-negative"
    ),
    pytest.param(lambda m, h: m.set_budget(Budget(rolling_limits={True: 1})), id="window-bool"),
    pytest.param(lambda m, h: m.set_budget(Budget(rolling_limits={90: 1})), id="window-90s"),
    pytest.param(
        lambda m, h: m.set_budget(Budget(rolling_limits={timedelta(seconds=60.5): 1})),
        id="window-fractional-timedelta",
    ),
    pytest.param(
        lambda m, h: m.set_budget(Budget(rolling_limits={3600: 1, timedelta(hours=1): 2})),
        id="window-twice",
    ),
    pytest.param(lambda m, h: m.set_budget(Budget(rolling_limits={60: math.nan})), id="roll-nan"),
    pytest.param(lambda m, h: m.set_budget(Budget(rolling_limits={60: math.inf})), id="roll-inf"),
    pytest.param(lambda m, h: m.set_budget(Budget(rolling_limits={60: -1})), id="roll-negative"),
    pytest.param(lambda m, h: m.set_budget(Budget(rolling_limits={60: True})), id="roll-bool"),
    pytest.param(lambda m, h: m.set_budget(Budget(rolling_limits=5)), id="rolling-not-mapping"),  # type: ignore[arg-type]
    pytest.param(lambda m, h: m.set_budget(Budget(daily_limit=True)), id="limit-bool"),
    pytest.param(lambda m, h: m.set_budget(Budget(daily_limit=math.nan)), id="limit-nan"),
    pytest.param(lambda m, h: m.set_budget(Budget(monthly_limit=math.inf)), id="limit-inf"),
    pytest.param(lambda m, h: m.set_budget(Budget(weekly_limit=-1.0)), id="limit-negative"),
    pytest.param(lambda m, h: m.set_budget(Budget(alert_threshold=True)), id="threshold-bool"),
    pytest.param(lambda m, h: m.set_budget(Budget(alert_thresholds=5)), id="thresholds-int"),  # type: ignore[arg-type]
    pytest.param(lambda m, h: m.set_budget(Budget(timezone=None)), id="timezone-none"),  # type: ignore[arg-type]
    pytest.param(lambda m, h: m.set_budget(Budget(timezone={})), id="timezone-dict"),  # type: ignore[arg-type]
    # ... bools are not numbers: TTLs, amounts, costs, token counts (True meant 1 before)
    pytest.param(lambda m, h: BudgetManager(hold_ttl=True), id="hold_ttl-bool"),
    pytest.param(lambda m, h: BudgetManager(hold_ttl=10**400), id="hold_ttl-huge-int"),
    pytest.param(lambda m, h: m.reserve(0.01, ttl=True), id="ttl-bool"),
    pytest.param(lambda m, h: m.reserve(0.01, ttl=math.nan), id="ttl-nan"),
    pytest.param(lambda m, h: m.reserve(0.01, ttl=10**400), id="ttl-huge-int"),
    pytest.param(lambda m, h: m.reserve(True), id="estimate-bool"),
    pytest.param(lambda m, h: m.can_spend(True), id="amount-bool"),
    pytest.param(lambda m, h: m.record_spend(rec(cost_usd=True)), id="cost-bool"),
    pytest.param(lambda m, h: m.record_spend(rec(input_tokens=True)), id="tokens-bool"),
    pytest.param(lambda m, h: m.record_spend(rec(latency_ms=True)), id="latency-bool"),
    # ... other constructor arguments found by fuzzing
    pytest.param(lambda m, h: BudgetManager(fail_open="no"), id="fail_open-str"),  # type: ignore[arg-type]
]


# -- the ledgers ---------------------------------------------------------------------------------
@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def manager(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BudgetManager]:
    """A manager with something to lose: budgets, a record, an open hold and a reset."""

    def build(url: str) -> BudgetManager:
        m = BudgetManager(Budget(5.0, 50.0, 1.0, rolling_limits={3600: 2.0}), ledger=url)
        m.set_budget(Budget(1.0, 10.0, 0.5), user="alice")
        m.set_default_budget("user", Budget(0.0, None, None))
        m.record_spend(rec(cost_usd=0.01, user_id="alice", tags=("beta",)))
        m.reserve(0.02, user="alice", ttl=3600)
        m.reset_weekly(user="alice")
        return m

    if request.param == "memory":
        m = build("memory://")
    elif request.param == "sqlite":
        m = build(f"sqlite:///{tmp_path / 'ledger.db'}")
    else:
        with pg.temp_schema_url() as url:
            m = build(url)
            yield m
            m.close()
        return
    yield m
    m.close()


def snapshot(m: BudgetManager) -> tuple[object, ...]:
    """Everything a bad call could change: records, totals and holds (via status), reset
    events and budgets."""
    return (
        [(r.id, r.ts_us, r.user_id, r.cost_nanos, r.status, r.tags) for r in m.records()],
        m.get_status(),
        m.get_status(user="alice"),
        m.get_status(user="bob"),
        m.get_status(tag="beta"),
        [(e.kind, e.scope, e.period, e.amount) for e in m.ledger.events()],
        m.budget_for(GLOBAL),
        m.budget_for(ALICE),
        m.budget_for(Scope("user", "bob")),
    )


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_a_typed_error_and_changes_nothing(manager: BudgetManager, case: Case) -> None:
    hold = manager.reserve(0.03, user="alice")
    try:
        before = snapshot(manager)
        with pytest.raises(InvalidInputError) as err:
            case(manager, hold)
        assert isinstance(err.value, ValueError)
        assert str(err.value)  # says what happened
        assert snapshot(manager) == before
        assert not hold.settled
    finally:
        manager.release(hold)


def test_a_ledger_that_is_not_one_is_a_configuration_error() -> None:
    for bad in (5, None, b"memory://"):
        with pytest.raises(ConfigurationError, match="ledger must be a ledger URL"):
            BudgetManager(ledger=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "bad",
    [
        {"budget": 5},
        {"local_budgets": {"global": 5}},
        {"local_budgets": [("global",)]},
        {"alert_handler": 3},
        {"hold_ttl": 0},
        {"fail_open": 1},
        {"alert_options": {"no_such_option": 1}},
    ],
    ids=["budget", "local-global", "local-not-mapping", "handler", "ttl", "fail_open", "option"],
)
def test_a_bad_constructor_argument_opens_no_ledger(bad: dict[str, Any], tmp_path: Path) -> None:
    # Opening a SQLite URL creates its file: every argument is refused before that.
    path = tmp_path / "spend.db"
    with pytest.raises((InvalidInputError, ConfigurationError, TypeError, ValueError)):
        BudgetManager(ledger=f"sqlite:///{path}", **bad)
    assert not path.exists()


def test_an_empty_user_is_not_a_way_around_the_user_budget(make_manager: Any) -> None:
    """The report's case: every user has a $0 budget; user='' used to skip it (admitted)."""
    m = make_manager(Budget(10.0, None, None))
    m.set_default_budget("user", Budget(0.0, None, None))
    assert not m.can_spend(0.01, user="alice")
    with pytest.raises(InvalidInputError, match="user must be a non-empty string, got ''"):
        m.can_spend(0.01, user="")
    with pytest.raises(InvalidInputError, match="user must be a non-empty string, got ''"):
        m.reserve(0.01, user="")
    assert m.get_status()["daily_reserved"] == 0
    # None is the way to say "no user": only the global budget applies.
    with m.reserve(0.01, user=None) as hold:
        assert hold.scopes == (GLOBAL,)


def test_empty_names_are_refused_by_tracked_clients_before_any_request(up: FakeUpstream) -> None:
    m = BudgetManager(Budget(10.0, None, None))
    provider = OpenAIProvider(base_url=up.openai_base_url, api_key="test")
    for name in ("user", "team", "key", "endpoint"):
        with pytest.raises(InvalidInputError, match=name):
            TrackedLLMClient(m, providers=[provider], **{name: ""})  # type: ignore[arg-type]
    client = TrackedLLMClient(m, providers=[provider])
    with pytest.raises(InvalidInputError, match="user"):
        client.chat(HELLO, model=MODEL, max_tokens=8, user="")
    with pytest.raises(InvalidInputError, match="tags"):
        client.chat(HELLO, model=MODEL, max_tokens=8, tags=[""])
    with pytest.raises(InvalidInputError, match="ttl"):
        TrackedLLMClient(m, providers=[provider], hold_ttl=True).chat(HELLO, model=MODEL)
    assert up.requests == [] and m.records() == []
    assert m.get_status()["daily_reserved"] == 0


def test_empty_names_are_refused_by_wrapped_sdk_clients(up: FakeUpstream) -> None:
    openai = pytest.importorskip("openai")
    from costwarden import wrap

    m = BudgetManager(Budget(10.0, None, None))
    with (
        openai.OpenAI(base_url=up.openai_base_url, api_key="t", max_retries=0) as sdk,
        pytest.raises(InvalidInputError, match="user"),
    ):
        wrap(sdk, manager=m, user="", provider="openai")


# -- fuzzing: random junk raises nothing but the typed error -------------------------------------
_junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=4),
    st.binary(max_size=3),
    st.decimals(min_value=-(10**12), max_value=10**12),
    st.sampled_from([Decimal("NaN"), Decimal("sNaN"), Decimal("-Infinity"), math.inf, -0.0]),
    st.lists(st.one_of(st.integers(), st.text(max_size=2)), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    st.datetimes(timezones=st.one_of(st.none(), st.timezones())),
    st.timedeltas(),
    st.fractions(),
    st.complex_numbers(),
    st.just(object()),
)
_hashable_junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=4),
    st.timedeltas(),
    st.sampled_from([6e21, 60 * 10**20, 60, 3600, Decimal(60)]),
)
_RECORD_FIELDS = (
    "model",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "timestamp",
    "user_id",
    "endpoint",
    "request_id",
    "team",
    "key",
    "provider",
    "tags",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "cache_write_1h_tokens",
    "input_audio_tokens",
    "cache_audio_read_tokens",
    "output_audio_tokens",
    "web_searches",
    "service_tier",
    "latency_ms",
    "status",
    "estimated",
    "metadata",
)
_FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))


@_FUZZ
@given(st.dictionaries(st.sampled_from(_RECORD_FIELDS), _junk, max_size=3))
def test_junk_record_fields_raise_only_the_typed_error(junk: dict[str, Any]) -> None:
    kw = {"model": MODEL, "input_tokens": 10, "output_tokens": 5, "cost_usd": 0.001, **junk}
    try:
        record = UsageRecord(**kw)
    except InvalidInputError:
        return
    with BudgetManager(Budget(100.0, None, 10.0, rolling_limits={3600: 50.0})) as m:
        m.set_default_budget("user", Budget(5.0, None, None))
        try:
            m.record_spend(record)
        except InvalidInputError:
            assert m.records() == []


@_FUZZ
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "daily_limit",
                "monthly_limit",
                "per_request_limit",
                "alert_threshold",
                "weekly_limit",
                "rolling_limits",
                "timezone",
                "alert_thresholds",
            ]
        ),
        st.one_of(_junk, st.dictionaries(_hashable_junk, _junk, max_size=2)),
        max_size=3,
    )
)
def test_junk_budget_arguments_raise_only_the_typed_error(junk: dict[str, Any]) -> None:
    try:
        budget = Budget(**junk)
    except InvalidInputError:
        return
    with BudgetManager(budget) as m:  # a budget that was accepted works everywhere
        answer(m.can_spend, 0.01)
        answer(m.reserve, 0.01)
        answer(m.record_spend, rec(cost_usd=0.001))
        answer(m.get_status)
        answer(m.forecast)


def answer(fn: Callable[..., object], *args: object, **kw: object) -> object:
    """``fn``'s result, or the CostwardenError it raised (a denial is an answer); any other
    exception propagates and fails the test."""
    try:
        return fn(*args, **kw)
    except CostwardenError as exc:
        return exc


_SCOPE_CALLS = ("reserve", "can_spend", "get_status", "set_budget", "reset_daily", "forecast")


@_FUZZ
@given(
    call=st.sampled_from(_SCOPE_CALLS),
    kind=st.sampled_from(["user", "team", "key", "model", "tag"]),
    name=_junk,
    amount=st.one_of(st.floats(0, 0.5), _junk),
)
def test_junk_scope_arguments_raise_only_the_typed_error(
    call: str, kind: str, name: object, amount: object
) -> None:
    with BudgetManager(Budget(1.0, None, 1.0)) as m:
        m.set_default_budget("user", Budget(0.5, None, None))
        before = (m.get_status(), m.ledger.events(), m.budget)
        try:
            if call in ("reserve", "can_spend"):
                arg = {"tags": name} if kind == "tag" else {kind: name}
                getattr(m, call)(amount, **arg)
                return
            if call == "forecast":
                m.forecast(name)  # type: ignore[arg-type]
            else:
                args = (Budget(),) if call == "set_budget" else ()
                getattr(m, call)(*args, **{kind: name})
            return
        except CostwardenError as exc:
            if not isinstance(exc, InvalidInputError):
                return  # a denial: an answer, not bad input
        assert (m.get_status(), m.ledger.events(), m.budget) == before


@_FUZZ
@given(st.fixed_dictionaries({}, optional=dict.fromkeys(Usage.__dataclass_fields__, _junk)))
def test_junk_usage_counts_raise_only_the_typed_error(junk: dict[str, Any]) -> None:
    with contextlib.suppress(InvalidInputError):
        Usage(**junk)


@pytest.mark.parametrize("call", ["status", "get_status", "set_budget", "remove_budget"])
def test_a_scope_keyword_that_names_no_kind_is_a_typed_error(call: str) -> None:
    """The methods that take one scope's names (``**names: ScopeKeywords``) refuse a keyword
    that is not a scope kind with an InvalidInputError naming it, and change nothing."""
    with BudgetManager(Budget(1.0, None, 1.0)) as m:
        before = (m.get_status(), m.budgets(), m.budget)
        args = (Budget(),) if call == "set_budget" else ()
        with pytest.raises(InvalidInputError, match="usr"):
            getattr(m, call)(*args, usr="alice")
        assert (m.get_status(), m.budgets(), m.budget) == before
