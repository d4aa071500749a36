"""Forecasts of a scope read from the ledger: its daily spend, projected to period ends.

The input is the ledger's daily spend of one scope (``Ledger.series(scope, "daily", ...)``,
or the records of the window when the scope has no daily totals), projected by
:mod:`costwarden.forecast.model`. Results are rounded once to integer
:data:`~costwarden.money.Nanos`; the amounts already spent are exact.

A scope with no budget of its own (and no default budget for its kind) is forecast with no
limits: the global budget limits the sum of everyone's spend, not this scope's, so measuring
one team against it would say "the monthly limit of $30.00 should hold" of a limit that is
not the team's. The forecast says that no budget applies, and no forecast alert fires.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Final, Protocol

from costwarden.budget import Budget, Scope, calendar_window
from costwarden.errors import InvalidInputError
from costwarden.forecast.model import (
    DEFAULT_METHOD,
    LOOKBACK_DAYS,
    METHODS,
    Projection,
    project,
    total_interval,
)
from costwarden.forecast.result import Forecast, PeriodForecast
from costwarden.money import format_compared, format_usd
from costwarden.records import StoredRecord

MIN_HISTORY_DAYS: Final = 7
_TREND_FLAT: Final = 0.05  # |weekly change| below 5% of the daily level is "flat"
_WEEKDAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


class SpendSource(Protocol):
    """What forecasting reads from a ledger (every :class:`~costwarden.ledger.Ledger` has it)."""

    def series(self, scope: str, period: str, since: int, until: int) -> list[tuple[int, int]]:
        """``[(window_start, spent)]`` of a scope's ``period`` buckets in ``[since, until)``."""
        ...

    def records(
        self, since_us: int | None = None, until_us: int | None = None, limit: int | None = None
    ) -> list[StoredRecord]:
        """Stored records between two epoch-microsecond times, for scopes the series lacks."""
        ...


def _scope_matches(scope: Scope, rec: StoredRecord) -> bool:
    kind, name = scope.kind, scope.name
    return (
        kind == "global"
        or (kind == "user" and rec.user_id == name)
        or (kind == "team" and rec.team == name)
        or (kind == "key" and rec.key == name)
        or (kind == "tag" and (name in rec.tags or rec.endpoint == name))
        or (kind == "model" and rec.model == name)
    )


def _daily_spend(
    ledger: SpendSource, scope: str, budget: Budget, first: date, last: date
) -> dict[date, int]:
    """Spend per local date in ``[first, last]``. From the ledger's daily totals; when the scope
    has none (no daily bucket kept for it), summed from the records of the window instead."""
    zone = budget.zone
    since = _day_start(first, budget)
    until = _day_start(last + timedelta(days=1), budget)
    out: dict[date, int] = {}
    rows = ledger.series(scope, "daily", since, until)
    if rows:
        for start, spent in rows:
            d = datetime.fromtimestamp(start + 43_200, zone).date()  # mid-day: robust to zones
            out[d] = out.get(d, 0) + spent
        return out
    parsed = Scope.parse(scope)
    for rec in ledger.records(since * 1_000_000, until * 1_000_000):
        if _scope_matches(parsed, rec):
            d = datetime.fromtimestamp(rec.ts_us / 1e6, zone).date()
            out[d] = out.get(d, 0) + rec.cost_nanos
    return out


def _day_start(d: date, budget: Budget) -> int:
    noon = datetime(d.year, d.month, d.day, 12, tzinfo=budget.zone)
    return calendar_window("daily", noon, budget.zone).start


def _period_spent(ledger: SpendSource, scope: str, period: str, start: int, fallback: int) -> int:
    """The period's own total (net of any reset baseline), else the sum of its days."""
    rows = ledger.series(scope, period, start, start + 1)
    return rows[0][1] if rows else fallback


def forecast_scope(
    ledger: SpendSource,
    scope: str,
    budget: Budget | None,
    now: datetime,
    *,
    method: str = DEFAULT_METHOD,
    lookback_days: int = LOOKBACK_DAYS,
    timezone: str = "UTC",
) -> Forecast:
    """Project ``scope``'s spend to the end of today, this ISO week and this month.

    ``budget`` is the scope's own (or its kind's default budget); None when it has none: the
    forecast then has no limits (``has_budget=False``), its summary says so, and
    :func:`~costwarden.forecast.alerts.forecast_alerts` raises nothing for it. Days are local
    to the budget's time zone, else to ``timezone`` (pass the global budget's: the ledger
    files an unbudgeted scope's days in that zone).

    History is the complete local days from the first day with spend in the last
    ``lookback_days``; with fewer than :data:`MIN_HISTORY_DAYS` the result says so
    (``sufficient_history=False``) and falls back to a plain run rate including today.
    """
    has_budget = budget is not None
    if budget is None:
        budget = Budget(None, None, None, timezone=timezone)
    elif not isinstance(budget, Budget):
        raise InvalidInputError(f"budget must be a Budget or None, got {type(budget).__name__}")
    if method not in METHODS:
        raise InvalidInputError(f"unknown forecast method {method!r}; use one of {METHODS}")
    if not isinstance(now, datetime):
        raise InvalidInputError(f"now must be a datetime, got {type(now).__name__}")
    if now.tzinfo is None:
        now = now.astimezone()
    Scope.parse(scope)  # validates
    zone = budget.zone
    today = now.astimezone(zone).date()
    first = today - timedelta(days=lookback_days)
    spend = _daily_spend(ledger, scope, budget, first, today)
    days_with_spend = sorted(d for d, v in spend.items() if v > 0 and d < today)
    start_day = days_with_spend[0] if days_with_spend else today
    history = [
        float(spend.get(start_day + timedelta(days=i), 0)) for i in range((today - start_day).days)
    ]
    today_spent = spend.get(today, 0)
    day_w = calendar_window("daily", now, zone)
    elapsed = min(1.0, max(0.0, (now.timestamp() - day_w.start) / (day_w.end - day_w.start)))
    remaining_today = 1.0 - elapsed
    month_w = calendar_window("monthly", now, zone)
    last_day = datetime.fromtimestamp(month_w.end - 1, zone).date()
    week_end = today + timedelta(days=6 - today.weekday())
    horizon = (max(last_day, week_end) - today).days + 1

    sufficient = len(history) >= MIN_HISTORY_DAYS
    used_method = method if sufficient else "naive"
    if sufficient:
        proj = project(history, horizon, method)
        daily = list(proj.daily)
    else:
        observed = sum(history) + today_spent
        rate = observed / (len(history) + elapsed) if len(history) + elapsed > 0.05 else 0.0
        proj = Projection((rate,) * horizon, rate, 0.0, rate, None)
        daily = list(proj.daily)
    amounts = [daily[0] * remaining_today, *daily[1:]]

    periods = []
    for period in ("daily", "weekly", "monthly"):
        w = calendar_window(period, now, zone)
        end_day = datetime.fromtimestamp(w.end - 1, zone).date()
        n_days = (end_day - today).days + 1
        sum_days = sum(v for d, v in spend.items() if w.start <= _day_start(d, budget) < w.end)
        spent = _period_spent(ledger, scope, period, w.start, sum_days)
        rest = amounts[:n_days]
        projected = spent + round(sum(rest))
        half = round(total_interval(proj, remaining_today + n_days - 1, max(1, len(history))))
        limit = budget.limit_nanos(period)
        runs_out: date | None = None
        exhausted = limit is not None and spent >= limit
        if exhausted:
            runs_out = today
        elif limit is not None:
            cum = float(spent)
            for j, amount in enumerate(rest):
                cum += amount
                if cum >= limit:
                    runs_out = today + timedelta(days=j)
                    break
        periods.append(
            PeriodForecast(
                period,
                w.start_dt,
                w.end_dt,
                spent,
                projected,
                max(spent, projected - half),
                projected + half,
                limit,
                runs_out,
                exhausted,
            )
        )
    day_f, week_f, month_f = periods

    trend, change = "unknown", None
    if sufficient and proj.level > 0:
        change = proj.slope * 7 / proj.level
        trend = "rising" if change > _TREND_FLAT else "falling" if change < -_TREND_FLAT else "flat"
    factors = None
    if proj.factors is not None:
        wd0 = start_day.weekday()
        factors = {_WEEKDAYS[wd]: round(proj.factors[(wd - wd0) % 7], 3) for wd in range(7)}
    rate_nanos = round(daily[0]) if daily else 0
    summary = _summary(scope, sufficient, len(history), used_method, month_f, week_f, trend, change)
    if not has_budget:
        summary += f" No budget applies to {scope}: this is projected spend only, with no limit."
    return Forecast(
        scope,
        now,
        used_method,
        sufficient,
        len(history),
        rate_nanos,
        trend,
        change,
        factors,
        day_f,
        week_f,
        month_f,
        summary,
        tuple(periods),
        has_budget,
    )


def _summary(
    scope: str,
    sufficient: bool,
    n_hist: int,
    method: str,
    month: PeriodForecast,
    week: PeriodForecast,
    trend: str,
    change: float | None,
) -> str:
    parts = []
    if not sufficient:
        parts.append(
            f"Only {n_hist} full day(s) of history for {scope} ({MIN_HISTORY_DAYS} needed to "
            "forecast): figures below are a plain run rate and may be far off."
        )
    end = (month.end - timedelta(seconds=1)).date()
    spent, projected, low, high = format_compared(
        month.spent_nanos, month.projected_nanos, month.low_nanos, month.high_nanos
    )
    parts.append(
        f"{scope}: {spent} spent this month, projected {projected} by {end} (80% interval "
        f"{low}–{high})."
    )
    for pf in (week, month):
        if pf.limit_nanos is None:
            continue
        name = pf.period
        if pf.exhausted:
            parts.append(f"The {name} limit of {format_usd(pf.limit_nanos)} is already used up.")
        elif pf.runs_out_on is not None:
            parts.append(
                f"The {name} limit of {format_usd(pf.limit_nanos)} is expected to run out on "
                f"{pf.runs_out_on}, before the period ends."
            )
        else:
            parts.append(f"The {name} limit of {format_usd(pf.limit_nanos)} should hold.")
    if change is not None:
        parts.append(f"Spend is {trend} ({change:+.0%} a week); method {method}, {n_hist} days.")
    return " ".join(parts)
