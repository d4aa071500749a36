"""Forecast math and forecasts of a scope read from a real (memory/SQLite) ledger."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costwarden.budget import Budget, calendar_window, get_zone
from costwarden.errors import InvalidInputError
from costwarden.forecast import (
    METHODS,
    clip_spikes,
    forecast_alerts,
    forecast_scope,
    project,
    seasonal_factors,
    synthetic_history,
)
from costwarden.ledger import Bucket, MemoryLedger, NewRecord, SQLiteLedger
from costwarden.manager import BudgetManager
from costwarden.money import usd_to_nanos
from costwarden.records import AlertLevel, UsageRecord

NOW = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)  # a Wednesday, mid-month, noon


def _record(ts: datetime, cost_nanos: int, user: str | None = None) -> NewRecord:
    return NewRecord(
        ts_us=int(ts.timestamp() * 1_000_000),
        model="gpt-4o-mini",
        provider="openai",
        input_tokens=10,
        output_tokens=10,
        cache_read_tokens=0,
        cache_write_tokens=0,
        reasoning_tokens=0,
        cost_nanos=cost_nanos,
        user_id=user,
        team=None,
        key=None,
        endpoint=None,
        request_id=None,
        tags=(),
        latency_ms=None,
        status="ok",
        estimated=False,
        price_source="test",
    )


def _spend(
    ledger: MemoryLedger | SQLiteLedger,
    scope: str,
    at: datetime,
    usd: float,
    *,
    periods: tuple[str, ...] = ("daily", "weekly", "monthly"),
) -> None:
    """Record a spend the way the manager does: the record plus its scope's period totals."""
    buckets = []
    for p in periods:
        w = calendar_window(p, at, get_zone("UTC"))
        buckets.append(Bucket(scope, p, w.start, w.end))
    user = scope.split(":", 1)[1] if scope.startswith("user:") else None
    ledger.append(_record(at, usd_to_nanos(usd), user), buckets)


# ---- pure math ---------------------------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_constant_history_projects_the_constant(method: str) -> None:
    proj = project([7.0] * 30, 10, method)
    assert proj.daily == pytest.approx((7.0,) * 10)
    assert proj.sigma == pytest.approx(0.0, abs=1e-9)


def test_bad_input_is_rejected() -> None:
    with pytest.raises(InvalidInputError):
        project([1.0, -2.0], 3)
    with pytest.raises(InvalidInputError):
        project([1.0, math.nan], 3)
    with pytest.raises(InvalidInputError):
        project([1.0], -1)
    with pytest.raises(InvalidInputError):
        project([1.0], 3, "prophet")


def test_a_spike_is_clipped_but_a_step_is_kept() -> None:
    flat = [10.0] * 20
    spiked = [*flat[:10], 300.0, *flat[11:]]
    assert max(clip_spikes(spiked)) < 30
    step = [5.0] * 10 + [12.0] * 10
    assert clip_spikes(step)[12:] == step[12:]
    sporadic = [0.0, 0.0, 25.0, 0.0, 0.0, 0.0, 24.0, 0.0, 26.0, 0.0]
    assert clip_spikes(sporadic) == sporadic


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 1e6), min_size=0, max_size=60), st.sampled_from(METHODS))
def test_clipping_only_lowers_and_projection_is_sane(values: list[float], method: str) -> None:
    clipped = clip_spikes(values)
    assert all(c <= v for c, v in zip(clipped, values, strict=True))
    proj = project(values, 9, method)
    assert len(proj.daily) == 9
    assert all(math.isfinite(p) and p >= 0 for p in proj.daily)
    assert math.isfinite(proj.sigma) and proj.sigma >= 0


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(0, 1e4), min_size=8, max_size=50),
    st.sampled_from(METHODS),
    st.sampled_from([0.001, 3.0, 1000.0]),
)
def test_projection_is_scale_equivariant(values: list[float], method: str, k: float) -> None:
    """Spending in cents or in dollars must not change the shape of a forecast."""
    a = project(values, 7, method)
    b = project([v * k for v in values], 7, method)
    assert [x * k for x in a.daily] == pytest.approx(list(b.daily), rel=1e-6, abs=1e-6)


def test_weekday_pattern_is_found_only_when_real() -> None:
    factors = seasonal_factors(synthetic_history("weekly", 56, seed=1))
    assert factors is not None
    weekend = [factors[5], factors[6]]
    assert max(weekend) < 0.5 < min(factors[:5])
    assert seasonal_factors(synthetic_history("flat", 56, seed=1)) is None
    assert seasonal_factors(synthetic_history("sporadic", 56, seed=1)) is None


def test_weekly_pattern_is_projected() -> None:
    hist = synthetic_history("weekly", 56, seed=2)  # position 56 % 7 == 0: a weekday
    proj = project(hist, 7, "ets")
    assert proj.daily[5] < 0.5 * proj.daily[0] and proj.daily[6] < 0.5 * proj.daily[0]


# ---- forecasts from a ledger -------------------------------------------------------------------
def test_flat_spend_projects_month_and_run_out_date() -> None:
    ledger = MemoryLedger()
    for d in range(1, 18):  # Nov 1..17, $10/day
        _spend(ledger, "global", datetime(2026, 11, d, 9, tzinfo=UTC), 10.0)
    _spend(ledger, "global", NOW - timedelta(hours=2), 5.0)  # today so far
    budget = Budget(daily_limit=None, monthly_limit=250.0, per_request_limit=None)
    fc = forecast_scope(ledger, "global", budget, NOW)
    assert fc.sufficient_history and fc.history_days == 17 and fc.method == "ets"
    assert fc.month.spent_nanos == usd_to_nanos(175.0)
    # the rest of today at half a day of $10, then 12 full days of $10
    assert fc.month.projected_usd == pytest.approx(175 + 5 + 120, abs=0.01)
    assert fc.month.low_nanos <= fc.month.projected_nanos <= fc.month.high_nanos
    assert fc.month.runs_out_on == date(2026, 11, 25)  # 180 at end of 18th, +10/day -> 250
    assert fc.trend == "flat"
    assert fc.daily_rate_usd == pytest.approx(10.0)
    assert fc.week.limit_nanos is None and fc.week.runs_out_on is None
    assert "2026-11-25" in fc.summary
    alerts = forecast_alerts(fc, budget, "global")
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert.kind == "forecast" and alert.level is AlertLevel.WARNING
    assert (
        alert.dedup_key
        == f"forecast|global|monthly|{int(datetime(2026, 11, 1, tzinfo=UTC).timestamp())}"
    )
    assert "2026-11-25" in alert.message and "$250.00" in alert.message
    assert fc.to_dict()["month"]["runs_out_on"] == "2026-11-25"


def test_limit_that_holds_gives_no_alert() -> None:
    ledger = MemoryLedger()
    for d in range(1, 18):
        _spend(ledger, "user:alice", datetime(2026, 11, d, 9, tzinfo=UTC), 1.0)
    budget = Budget(daily_limit=5.0, monthly_limit=100.0, weekly_limit=20.0)
    fc = forecast_scope(ledger, "user:alice", budget, NOW)
    assert fc.month.runs_out_on is None and fc.week.runs_out_on is None
    assert forecast_alerts(fc, budget, "user:alice") == []
    assert "should hold" in fc.summary


def test_little_history_says_so_and_never_alerts() -> None:
    ledger = MemoryLedger()
    for d in (16, 17):
        _spend(ledger, "global", datetime(2026, 11, d, 9, tzinfo=UTC), 50.0)
    _spend(ledger, "global", NOW - timedelta(hours=1), 25.0)
    budget = Budget(daily_limit=None, monthly_limit=200.0)
    fc = forecast_scope(ledger, "global", budget, NOW)
    assert not fc.sufficient_history and fc.method == "naive" and fc.trend == "unknown"
    assert "Only 2 full day(s)" in fc.summary
    assert fc.daily_rate_usd == pytest.approx(125 / 2.5)
    assert fc.month.exhausted is False and fc.month.runs_out_on is not None
    assert forecast_alerts(fc, budget, "global") == []


def test_empty_ledger_forecasts_zero() -> None:
    fc = forecast_scope(MemoryLedger(), "team:eng", Budget(), NOW)
    assert fc.month.projected_nanos == 0 and fc.history_days == 0
    assert not fc.sufficient_history


def test_exhausted_budget_is_reported_not_forecast() -> None:
    ledger = MemoryLedger()
    for d in range(1, 18):
        _spend(ledger, "global", datetime(2026, 11, d, 9, tzinfo=UTC), 20.0)
    budget = Budget(daily_limit=None, monthly_limit=200.0)
    fc = forecast_scope(ledger, "global", budget, NOW)
    assert fc.month.exhausted and fc.month.runs_out_on == NOW.date()
    assert forecast_alerts(fc, budget, "global") == []


def test_records_are_used_when_the_scope_has_no_daily_totals(tmp_path: object) -> None:
    ledger = SQLiteLedger(f"sqlite:///{tmp_path}/f.db")
    try:
        for d in range(1, 18):
            _spend(
                ledger, "user:bob", datetime(2026, 11, d, 9, tzinfo=UTC), 2.0, periods=("monthly",)
            )
            _spend(
                ledger,
                "user:carol",
                datetime(2026, 11, d, 9, tzinfo=UTC),
                9.0,
                periods=("monthly",),
            )
        fc = forecast_scope(ledger, "user:bob", Budget(monthly_limit=50.0), NOW)
        assert fc.history_days == 17 and fc.daily_rate_usd == pytest.approx(2.0)
        assert fc.month.spent_nanos == usd_to_nanos(34.0)
        assert fc.month.runs_out_on == date(2026, 11, 26)  # 34 + 1 (rest of today) + 2/day: 51
    finally:
        ledger.close()


def test_weekday_factors_are_named_by_real_weekday() -> None:
    ledger = MemoryLedger()
    start = date(2026, 9, 30)
    for i in range((NOW.date() - start).days):
        d = start + timedelta(days=i)
        _spend(
            ledger,
            "global",
            datetime(d.year, d.month, d.day, 9, tzinfo=UTC),
            2.0 if d.weekday() >= 5 else 10.0 + (i % 3) * 0.3,
        )
    fc = forecast_scope(ledger, "global", Budget(), NOW)
    assert fc.weekday_factors is not None
    assert fc.weekday_factors["Sat"] < 0.4 and fc.weekday_factors["Mon"] > 1.0


def test_invalid_arguments() -> None:
    with pytest.raises(InvalidInputError):
        forecast_scope(MemoryLedger(), "nobody", Budget(), NOW)
    with pytest.raises(InvalidInputError):
        forecast_scope(MemoryLedger(), "global", Budget(), "today")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        forecast_scope(MemoryLedger(), "global", Budget(), NOW, method="magic")


# ---- scopes without a budget of their own ------------------------------------------------------
def _team_spending_manager(tmp_path: Path, seen: list[str]) -> BudgetManager:
    """Global monthly limit $30; team x spends $1.50 a day: $25.50 by the 17th, on course for
    about $44 by the month's end (over $30, so the global limit would "run out")."""
    m = BudgetManager(
        Budget(daily_limit=None, monthly_limit=30.0, per_request_limit=None),
        alert_handler=lambda level, message: seen.append(message),
        ledger=f"sqlite:///{tmp_path / 'ledger.db'}",
        clock=NOW.timestamp,
    )
    for d in range(1, 18):
        m.record_spend(
            UsageRecord("gpt-4o", 1, 1, 1.5, datetime(2026, 11, d, 9, tzinfo=UTC), team="x")
        )
    return m


def _forecast_alerts(seen: list[str]) -> list[str]:
    return [s for s in seen if "forecast to run out" in s]  # not the threshold alerts


def test_a_scope_without_a_budget_is_forecast_without_limits_and_raises_no_alert(
    tmp_path: Path,
) -> None:
    seen: list[str] = []
    with _team_spending_manager(tmp_path, seen) as m:
        fc = m.forecast("team:x", now=NOW)
        assert m.flush_alerts(5)
        assert _forecast_alerts(seen) == []
        assert all(p.limit_nanos is None and p.runs_out_on is None for p in fc.periods)
        assert fc.month.projected_usd > 30.0  # over the global limit, which is not team x's
        assert "limit of" not in fc.summary and "should hold" not in fc.summary
        assert "No budget applies to team:x" in fc.summary
        assert not fc.has_budget and fc.to_dict()["has_budget"] is False
        assert forecast_alerts(fc, None, "team:x") == []
        glob = m.forecast("global", now=NOW)  # the global scope is measured against its own
        assert glob.has_budget and glob.month.limit_usd == 30.0


@pytest.mark.parametrize("how", ["own", "default"])
def test_a_scope_with_its_own_or_a_default_budget_is_forecast_against_it(
    tmp_path: Path, how: str
) -> None:
    seen: list[str] = []
    with _team_spending_manager(tmp_path, seen) as m:
        team_budget = Budget(daily_limit=None, monthly_limit=40.0, per_request_limit=None)
        if how == "own":
            m.set_budget(team_budget, team="x")
        else:
            m.set_default_budget("team", team_budget)
        fc = m.forecast("team:x", now=NOW)
        assert fc.has_budget and fc.month.limit_usd == 40.0
        assert fc.month.runs_out_on is not None and "$40.00" in fc.summary
        assert m.flush_alerts(5)
        (alert,) = _forecast_alerts(seen)
        assert "team:x" in alert and "$40.00" in alert


def test_forecast_scope_without_a_budget_counts_days_in_the_given_zone() -> None:
    ledger = MemoryLedger()
    at = datetime(2026, 11, 17, 23, 30, tzinfo=UTC)  # the 18th in Tokyo
    ledger.append(_record(at, usd_to_nanos(3.0), "bob"), [])
    utc = forecast_scope(ledger, "user:bob", None, NOW)
    tokyo = forecast_scope(ledger, "user:bob", None, NOW, timezone="Asia/Tokyo")
    assert utc.day.spent_usd == 0.0 and tokyo.day.spent_usd == 3.0
    assert utc.month.limit_nanos is None and not tokyo.has_budget
    with pytest.raises(InvalidInputError):
        forecast_scope(ledger, "user:bob", {"monthly_limit": 5}, NOW)  # type: ignore[arg-type]
