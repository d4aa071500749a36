"""Spend forecasting: where a scope's spend is heading and when its budgets run out.

The input is the ledger's daily spend of one scope (``Ledger.series(scope, "daily", ...)``).
Underneath is pure math on a list of daily amounts, oldest first, complete days only:

1. *Spikes* are clipped (an upward-only Hampel filter with a floor from the whole history), so
   one runaway day does not move a month's projection; a level shift survives (it is not an
   outlier among its own neighbours).
2. *Weekday seasonality*: with three weeks or more, a multiplicative factor per weekday
   (median ratio to the centred 7-day mean), used only when it is material (>= 10%).
3. A *method* projects the adjusted series: ``naive`` (mean of the last 7 raw days, the run
   rate most dashboards show), ``linear`` (exponentially weighted least-squares trend) or
   ``ets`` (damped-trend exponential smoothing, parameters picked by in-sample error).

The default method was chosen by backtest (:func:`backtest_table`, docs/forecasting.md), not
by taste; a test keeps :data:`DEFAULT_METHOD` equal to the backtest's winner.

Forecasts are statistical estimates, so the math runs in float nano-USD; results are rounded
once to integer :data:`~costwarden.money.Nanos`, and the amounts already spent are exact.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final, Protocol

from costwarden.budget import Budget, Scope, calendar_window
from costwarden.errors import InvalidInputError
from costwarden.money import Nanos, format_compared, format_usd, nanos_to_usd
from costwarden.records import Alert, AlertLevel, StoredRecord

METHODS: Final = ("naive", "linear", "ets")
DEFAULT_METHOD: Final = "ets"
"""The backtest winner (see module doc); ``tests/test_forecast_backtest.py`` checks it."""
MIN_HISTORY_DAYS: Final = 7
LOOKBACK_DAYS: Final = 56
INTERVAL: Final = 0.8
_Z: Final = 1.2815515655446004  # two-sided 80% normal quantile
_TREND_FLAT: Final = 0.05  # |weekly change| below 5% of the daily level is "flat"
_WIDEN = 1.2
"""Interval widening calibrated by backtest (see docs/forecasting.md)."""


# ---- preparation -------------------------------------------------------------------------------
def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else 0.0


def clip_spikes(values: Sequence[float], *, radius: int = 3, k: float = 4.0) -> list[float]:
    """Clip upward outliers: a day far above both its neighbours' median and the history's
    typical spend day. Why both: the local test alone would erase sporadic spend (most days
    zero), the global one alone would not catch a spike in a growing series."""
    n = len(values)
    nonzero = sorted(v for v in values if v > 0)
    if not nonzero:
        return list(values)
    upper = nonzero[min(len(nonzero) - 1, (3 * len(nonzero)) // 4)]
    global_cap = 2.5 * upper
    out = list(values)
    for i, v in enumerate(values):
        window = values[max(0, i - radius) : min(n, i + radius + 1)]
        med = _median(window)
        mad = 1.4826 * _median([abs(w - med) for w in window])
        local_cap = med + k * max(mad, 0.25 * med)
        cap = max(local_cap, global_cap)
        if v > cap:
            out[i] = cap
    return out


def weekday_factors(values: Sequence[float], weeks: int = 0) -> list[float] | None:
    """Multiplicative factor per position mod 7 (index = day index % 7), or None when the
    history is under three weeks or the pattern is immaterial (every factor within 10%).

    ``weeks`` = 1 or 2 uses only even or odd weeks (for the consistency check)."""
    n = len(values)
    if n < 21:
        return None
    ratios: list[list[float]] = [[] for _ in range(7)]
    for i in range(3, n - 3):
        if weeks and (i // 7) % 2 != weeks - 1:
            continue
        centred = sum(values[i - 3 : i + 4]) / 7
        if centred > 0:
            ratios[i % 7].append(values[i] / centred)
    if any(len(r) < (1 if weeks else 2) for r in ratios):
        return None
    raw = [_median(r) for r in ratios]
    mean = sum(raw) / 7
    if mean <= 0:
        return None
    factors = [f / mean for f in raw]
    if max(abs(f - 1) for f in factors) < 0.1:
        return None
    return factors


def _correlation(a: Sequence[float], b: Sequence[float]) -> float:
    ma, mb = statistics.fmean(a), statistics.fmean(b)
    cov = sum((x - ma) * (y - mb) for x, y in zip(a, b, strict=True))
    va = sum((x - ma) ** 2 for x in a)
    vb = sum((y - mb) ** 2 for y in b)
    return cov / math.sqrt(va * vb) if va > 0 and vb > 0 else 0.0


def seasonal_factors(values: Sequence[float]) -> list[float] | None:
    """Weekday factors only when the pattern is real: material over the whole history and the
    same shape in even and odd weeks (correlation >= 0.7). Why the check: in sporadic spend
    (most days zero) noise alone produces large "weekday" factors that ruin a forecast."""
    if len(values) < 28:
        return None
    factors = weekday_factors(values)
    even, odd = weekday_factors(values, 1), weekday_factors(values, 2)
    if factors is None or even is None or odd is None:
        return None
    return factors if _correlation(even, odd) >= 0.7 else None


# ---- methods -----------------------------------------------------------------------------------
def _linear(x: Sequence[float], horizon: int, half_life: float = 14.0) -> _Fit:
    """Weighted least squares ``a + b*t`` with weights halving every ``half_life`` days."""
    n = len(x)
    w = [0.5 ** ((n - 1 - i) / half_life) for i in range(n)]
    sw = sum(w)
    mt = sum(wi * i for i, wi in enumerate(w)) / sw
    mx = sum(wi * xi for wi, xi in zip(w, x, strict=True)) / sw
    var = sum(wi * (i - mt) ** 2 for i, wi in enumerate(w))
    cov = sum(wi * (i - mt) * (xi - mx) for i, (wi, xi) in enumerate(zip(w, x, strict=True)))
    slope = 0.0 if var == 0 else cov / var
    resid = [xi - (mx + slope * (i - mt)) for i, xi in enumerate(x)]
    return [mx + slope * (n + j - mt) for j in range(horizon)], slope, resid


def _holt(
    x: Sequence[float], alpha: float, beta: float, phi: float
) -> tuple[float, float, list[float]]:
    """Damped-trend Holt smoothing: final level and trend, and the one-day-ahead errors."""
    first = x[: min(7, len(x))]
    level = sum(first) / len(first)
    trend = 0.0
    errors = []
    for xi in x:
        pred = level + phi * trend
        errors.append(xi - pred)
        new_level = alpha * xi + (1 - alpha) * pred
        trend = beta * (new_level - level) + (1 - beta) * phi * trend
        level = new_level
    return level, trend, errors


_ETS_GRID: Final = [
    (a, b, phi) for a in (0.1, 0.2, 0.35, 0.5) for b in (0.0, 0.1) for phi in (0.9, 0.98)
]


def _ets(x: Sequence[float], horizon: int) -> _Fit:
    """Holt with the grid point of least in-sample squared one-day error (warm-up excluded)."""
    best: tuple[float, float, float, list[float]] | None = None
    best_sse = math.inf
    for a, b, phi in _ETS_GRID:
        level, trend, errors = _holt(x, a, b, phi)
        sse = sum(e * e for e in errors[7:])
        if sse < best_sse:
            best_sse, best = sse, (level, trend, phi, errors)
    assert best is not None
    level, trend, phi, errors = best
    out, damp = [], 0.0
    for j in range(1, horizon + 1):
        damp += phi**j
        out.append(level + damp * trend)
    return out, trend, errors[7:]


_Fit = tuple[list[float], float, list[float]]
"""(point forecasts, slope per day, in-sample one-day errors)."""


@dataclass(frozen=True, slots=True)
class Projection:
    """Point forecasts for the next days, the one-day error scale and what was found.

    ``slope`` is the trend in amount per day (de-seasonalised); ``level`` the current
    de-seasonalised daily amount; ``factors`` the weekday factors by ``day index % 7``.
    """

    daily: tuple[float, ...]
    sigma: float
    slope: float
    level: float
    factors: tuple[float, ...] | None


def _point(
    history: Sequence[float], horizon: int, method: str
) -> tuple[_Fit, list[float] | None, float]:
    """Point forecasts, in-sample errors and weekday factors of ``method``; and the level."""
    n = len(history)
    if n == 0:
        return ([0.0] * horizon, 0.0, []), None, 0.0
    if method == "naive":
        tail = history[-7:]
        errors = [
            history[i] - statistics.fmean(history[max(0, i - 7) : i])
            for i in range(max(1, n - 14), n)
        ]
        return ([sum(tail) / len(tail)] * horizon, 0.0, errors), None, sum(tail) / len(tail)
    clean = clip_spikes(history)
    factors = seasonal_factors(clean)
    x = clean if factors is None else [v / max(factors[i % 7], 0.1) for i, v in enumerate(clean)]
    x = x[-LOOKBACK_DAYS:]
    if method == "linear":
        pts, slope, errors = _linear(x, horizon)
    else:
        pts, slope, errors = _ets(x, horizon)
    level = pts[0] - slope if pts else 0.0
    if factors is not None:
        pts = [p * factors[(n + j) % 7] for j, p in enumerate(pts)]
    return ([max(0.0, p) for p in pts], slope, errors[-28:]), factors, level


def project(history: Sequence[float], horizon: int, method: str = DEFAULT_METHOD) -> Projection:
    """Forecast ``horizon`` days after ``history`` (daily amounts, oldest first).

    ``sigma`` is the RMS of the method's one-day errors over (up to) the last four weeks of
    history, so an interval reflects how predictable this very series has been.
    """
    if method not in METHODS:
        raise InvalidInputError(f"unknown forecast method {method!r}; use one of {METHODS}")
    if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 0:
        raise InvalidInputError(f"horizon must be a non-negative number of days, got {horizon!r}")
    hist = [float(v) for v in history]
    if any(not math.isfinite(v) or v < 0 for v in hist):
        raise InvalidInputError("daily spend history must be finite, non-negative amounts")
    (pts, slope, errors), factors, level = _point(hist, horizon, method)
    sigma = math.sqrt(sum(e * e for e in errors) / len(errors)) if errors else 0.0
    return Projection(tuple(pts), sigma, slope, level, None if factors is None else tuple(factors))


def total_interval(proj: Projection, days: float, n_history: int) -> float:
    """Half-width of the 80% interval of a total over ``days`` forecast days: day errors plus
    the error of the level itself (estimated from about two weeks of data)."""
    n_eff = max(1, min(n_history, 14))
    return _WIDEN * _Z * proj.sigma * math.sqrt(days + days * days / n_eff)


# ---- backtest ----------------------------------------------------------------------------------
SCENARIOS: Final = ("flat", "growing", "weekly", "step", "spike", "sporadic")


def synthetic_history(kind: str, days: int = 84, seed: int = 0) -> list[float]:
    """A daily spend history with known behaviour (USD-like units), 15% multiplicative noise."""
    rng = random.Random(f"{kind}:{seed}")
    out = []
    for t in range(days):
        if kind == "flat":
            base = 10.0
        elif kind == "growing":
            base = 5.0 * 1.015**t
        elif kind == "weekly":
            base = 3.0 if t % 7 in (5, 6) else 12.0
        elif kind == "step":
            base = 5.0 if t < days * 5 // 8 else 12.0
        elif kind == "spike":
            base = 150.0 if t in (days * 3 // 8, days * 9 // 16) else 10.0
        elif kind == "sporadic":
            base = 25.0 if rng.random() < 0.3 else 0.0
        else:
            raise InvalidInputError(f"unknown scenario {kind!r}; use one of {SCENARIOS}")
        out.append(max(0.0, base * rng.gauss(1.0, 0.15)))
    return out


@dataclass(frozen=True, slots=True)
class BacktestScore:
    """Mean absolute % error of the horizon's total, and how often the 80% interval held it."""

    method: str
    scenario: str
    horizon: int
    mape: float
    coverage: float
    origins: int


def backtest(
    series: Sequence[float],
    method: str,
    *,
    horizon: int = 14,
    min_train: int = 28,
    scenario: str = "",
) -> BacktestScore:
    """Rolling-origin backtest: at every origin, forecast the next ``horizon`` days' total."""
    errs, hits = [], 0
    for origin in range(min_train, len(series) - horizon + 1):
        proj = project(series[:origin], horizon, method)
        predicted = sum(proj.daily)
        actual = sum(series[origin : origin + horizon])
        if actual <= 0:
            continue
        errs.append(abs(predicted - actual) / actual)
        half = total_interval(proj, horizon, origin)
        hits += predicted - half <= actual <= predicted + half
    n = len(errs)
    return BacktestScore(
        method, scenario, horizon, sum(errs) / n if n else math.nan, hits / n if n else math.nan, n
    )


def backtest_table(
    seeds: Sequence[int] = range(5), *, horizon: int = 14, days: int = 84
) -> dict[str, dict[str, BacktestScore]]:
    """``{method: {scenario: score}}`` averaged over ``seeds``; ``"mean"`` holds the average
    over scenarios (the figure the method is chosen by)."""
    table: dict[str, dict[str, BacktestScore]] = {}
    for method in METHODS:
        row: dict[str, BacktestScore] = {}
        for kind in SCENARIOS:
            scores = [
                backtest(synthetic_history(kind, days, s), method, horizon=horizon) for s in seeds
            ]
            row[kind] = BacktestScore(
                method,
                kind,
                horizon,
                statistics.fmean(s.mape for s in scores),
                statistics.fmean(s.coverage for s in scores),
                sum(s.origins for s in scores),
            )
        row["mean"] = BacktestScore(
            method,
            "mean",
            horizon,
            statistics.fmean(s.mape for s in row.values()),
            statistics.fmean(s.coverage for s in row.values()),
            sum(s.origins for s in row.values()),
        )
        table[method] = row
    return table


def best_method(table: dict[str, dict[str, BacktestScore]]) -> str:
    return min(table, key=lambda m: table[m]["mean"].mape)


# ---- forecasts of a scope from the ledger -------------------------------------------------------
class SpendSource(Protocol):
    """What forecasting reads from a ledger (every :class:`~costwarden.ledger.Ledger` has it)."""

    def series(self, scope: str, period: str, since: int, until: int) -> list[tuple[int, int]]: ...

    def records(
        self, since_us: int | None = None, until_us: int | None = None, limit: int | None = None
    ) -> list[StoredRecord]: ...


_PERIOD_TITLE: Final = {"daily": "Daily", "weekly": "Weekly", "monthly": "Monthly"}
_WEEKDAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True, slots=True)
class PeriodForecast:
    """Spend of one calendar period: so far, projected at its end (with an 80% interval), and
    the local date its limit is expected to be reached (``None``: not before the period ends)."""

    period: str
    start: datetime
    end: datetime
    spent_nanos: Nanos
    projected_nanos: Nanos
    low_nanos: Nanos
    high_nanos: Nanos
    limit_nanos: Nanos | None
    runs_out_on: date | None
    exhausted: bool

    @property
    def projected_usd(self) -> float:
        return nanos_to_usd(self.projected_nanos)

    @property
    def interval_usd(self) -> tuple[float, float]:
        return nanos_to_usd(self.low_nanos), nanos_to_usd(self.high_nanos)

    @property
    def spent_usd(self) -> float:
        return nanos_to_usd(self.spent_nanos)

    @property
    def limit_usd(self) -> float | None:
        return None if self.limit_nanos is None else nanos_to_usd(self.limit_nanos)

    def to_dict(self) -> dict[str, Any]:
        return {
            "period": self.period,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "spent_usd": self.spent_usd,
            "projected_usd": self.projected_usd,
            "interval_usd": list(self.interval_usd),
            "limit_usd": self.limit_usd,
            "runs_out_on": None if self.runs_out_on is None else self.runs_out_on.isoformat(),
            "exhausted": self.exhausted,
        }


@dataclass(frozen=True, slots=True)
class Forecast:
    """Where one scope's spend is heading (see :func:`forecast_scope`)."""

    scope: str
    as_of: datetime
    method: str
    sufficient_history: bool
    history_days: int
    daily_rate_nanos: Nanos
    trend: str  # "rising", "falling", "flat" or "unknown"
    weekly_change: float | None
    weekday_factors: dict[str, float] | None
    day: PeriodForecast
    week: PeriodForecast
    month: PeriodForecast
    summary: str
    periods: tuple[PeriodForecast, ...] = field(default=(), repr=False)

    @property
    def daily_rate_usd(self) -> float:
        return nanos_to_usd(self.daily_rate_nanos)

    def to_dict(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "as_of": self.as_of.isoformat(),
            "method": self.method,
            "sufficient_history": self.sufficient_history,
            "history_days": self.history_days,
            "daily_rate_usd": self.daily_rate_usd,
            "trend": self.trend,
            "weekly_change": self.weekly_change,
            "weekday_factors": self.weekday_factors,
            "day": self.day.to_dict(),
            "week": self.week.to_dict(),
            "month": self.month.to_dict(),
            "summary": self.summary,
        }


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
    budget: Budget,
    now: datetime,
    *,
    method: str = DEFAULT_METHOD,
    lookback_days: int = LOOKBACK_DAYS,
) -> Forecast:
    """Project ``scope``'s spend to the end of today, this ISO week and this month.

    History is the complete local days (budget time zone) from the first day with spend in the
    last ``lookback_days``; with fewer than :data:`MIN_HISTORY_DAYS` the result says so
    (``sufficient_history=False``) and falls back to a plain run rate including today.
    """
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


def forecast_alerts(forecast: Forecast, budget: Budget, scope: str) -> list[Alert]:
    """WARNING alerts for weekly/monthly limits forecast to run out before their period ends.

    One per scope, period and period start (the dedup key), and none from a forecast without
    enough history or for a limit already used up (threshold alerts cover that)."""
    if not forecast.sufficient_history:
        return []
    out = []
    for pf in (forecast.week, forecast.month):
        if pf.limit_nanos is None or pf.exhausted or pf.runs_out_on is None:
            continue
        resets = pf.end.astimezone(budget.zone)
        spent, limit, projected = format_compared(
            pf.spent_nanos, pf.limit_nanos, pf.projected_nanos
        )
        message = (
            f"{_PERIOD_TITLE[pf.period]} budget forecast to run out on {pf.runs_out_on}: "
            f"{spent} of {limit} spent, projected "
            f"{projected} by period end ({scope}), resets "
            f"{resets:%Y-%m-%d %H:%M} {budget.timezone}"
        )
        out.append(
            Alert(
                level=AlertLevel.WARNING,
                message=message,
                scope=scope,
                period=pf.period,
                kind="forecast",
                threshold=None,
                spent_nanos=pf.spent_nanos,
                limit_nanos=pf.limit_nanos,
                period_start=pf.start,
                dedup_key=f"forecast|{scope}|{pf.period}|{int(pf.start.timestamp())}",
                created_at=forecast.as_of.astimezone(UTC),
            )
        )
    return out
