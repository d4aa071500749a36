"""Budget gauges: every scope with a budget, its spend per period and the forecast to the
period's end with its interval (:mod:`costwarden.forecast`).

Which scopes: every budget in force (:meth:`~costwarden.manager.BudgetManager.budgets`: the
ledger's and the local ones) and, for a default budget (``default:user``...), the scopes of
that kind with the most spend in the last 24 hours (read from the rollup, at most
:data:`DEFAULT_SCOPES` per kind).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from costwarden.budget import GLOBAL, Budget, Scope, WindowCache
from costwarden.control import DEFAULT_PREFIX
from costwarden.forecast import LOOKBACK_DAYS, Forecast, forecast_scope
from costwarden.ledger.base import Bucket
from costwarden.ledger.rollup import Rollups
from costwarden.manager import BudgetManager
from costwarden.money import Nanos

DEFAULT_SCOPES: Final = 10
PERIODS: Final = ("daily", "weekly", "monthly")


@dataclass(frozen=True, slots=True)
class PeriodGauge:
    """One period of a gauge: spent, limit, forecast with its interval, reset time."""

    period: str
    spent: Nanos
    limit: Nanos | None
    projected: Nanos | None
    low: Nanos | None
    high: Nanos | None
    runs_out_on: str | None
    resets_at: datetime

    @property
    def percent(self) -> float:
        """Spent as a percentage of the limit (0 without a limit)."""
        if self.limit is None:
            return 0.0
        if self.limit == 0:
            return 100.0 if self.spent else 0.0
        return self.spent * 100 / self.limit

    def pct_of_limit(self, amount: Nanos | None) -> float:
        """``amount`` as a percentage of the limit, capped at 100 (for bar widths)."""
        if amount is None or not self.limit:
            return 0.0
        return min(100.0, amount * 100 / self.limit)


@dataclass(frozen=True, slots=True)
class Gauge:
    """One scope's gauge: its periods, the forecast's summary and a level for colour."""

    scope: str
    source: str  # "code", "ledger" or "default:<kind>"
    timezone: str
    periods: list[PeriodGauge]
    summary: str
    level: str  # "ok", "warn", "over"


def budget_scopes(manager: BudgetManager) -> list[tuple[Scope, Budget, str]]:
    """The scopes with a budget of their own and its source (``ledger``, ``code``,
    ``config:<path>``: :meth:`BudgetManager.budgets`), global first."""
    out = [
        (Scope.parse(b.scope), b.budget, b.source)
        for b in manager.budgets()
        if not b.scope.startswith(DEFAULT_PREFIX)
    ]
    out.sort(key=lambda t: (t[0] != GLOBAL, str(t[0])))
    return out


def default_budgets(manager: BudgetManager) -> dict[str, tuple[Budget, str]]:
    """Default budgets by scope kind, with their source."""
    return {
        b.scope[len(DEFAULT_PREFIX) :]: (b.budget, b.source)
        for b in manager.budgets()
        if b.scope.startswith(DEFAULT_PREFIX)
    }


def gauge(manager: BudgetManager, scope: Scope, budget: Budget, source: str, now: float) -> Gauge:
    """One scope's gauge: spend per period (from the ledger's totals) and the forecast."""
    ledger = manager.ledger
    windows = WindowCache()
    zone = budget.timezone
    buckets = [
        Bucket(str(scope), p, w.start, w.end)
        for p in PERIODS
        for w in [windows.window(p, zone, now)]
    ]
    usages = ledger.usage(buckets, now)
    at = datetime.fromtimestamp(now, UTC)
    forecast: Forecast | None = None
    day = windows.window("daily", zone, now)
    history = ledger.series(str(scope), "daily", day.start - LOOKBACK_DAYS * 86_400, day.end)
    if history:  # no daily totals at all: the forecast would read records instead (slow)
        forecast = forecast_scope(ledger, str(scope), budget, at, timezone=zone)
    by_period: dict[str, Any] = {}
    if forecast is not None:
        by_period = {"daily": forecast.day, "weekly": forecast.week, "monthly": forecast.month}
    periods = []
    level = "ok"
    for b, u in zip(buckets, usages, strict=True):
        limit = budget.limit_nanos(b.period)
        pf = by_period.get(b.period)
        g = PeriodGauge(
            period=b.period,
            spent=u.spent,
            limit=limit,
            projected=None if pf is None else pf.projected_nanos,
            low=None if pf is None else pf.low_nanos,
            high=None if pf is None else pf.high_nanos,
            runs_out_on=None if pf is None or pf.runs_out_on is None else str(pf.runs_out_on),
            resets_at=datetime.fromtimestamp(b.end, UTC),
        )
        if limit is not None:
            if g.percent >= 100:
                level = "over"
            elif level == "ok" and (
                g.percent >= budget.alert_threshold * 100
                or (g.projected is not None and g.projected > limit)
            ):
                level = "warn"
        periods.append(g)
    summary = forecast.summary if forecast is not None else "No spend in the last weeks yet."
    return Gauge(str(scope), source, zone, periods, summary, level)


def gauges(manager: BudgetManager, now: float, *, only: str | None = None) -> list[Gauge]:
    """Gauges for every budgeted scope (``only``: that one scope, for a key's holder)."""
    out = []
    listed: set[str] = set()
    for scope, budget, source in budget_scopes(manager):
        if only is not None and str(scope) != only:
            continue
        out.append(gauge(manager, scope, budget, source, now))
        listed.add(str(scope))
    defaults = default_budgets(manager)
    ledger = manager.ledger
    if isinstance(ledger, Rollups):
        day_start = int(now) - 86_400  # the last 24 hours: a short read of the rollup
        for kind, (budget, _src) in sorted(defaults.items()):
            if only is not None:
                if only.startswith(kind + ":") and only not in listed:
                    out.append(gauge(manager, Scope.parse(only), budget, f"default:{kind}", now))
                continue
            if kind == "model":
                rows = ledger.rollup_breakdown("model", day_start, int(now) + 3600)
            elif kind in ("user", "team", "key", "tag"):
                rows = ledger.rollup_breakdown(kind, day_start, int(now) + 3600)
            else:
                continue
            for name, _spent, _count in rows[:DEFAULT_SCOPES]:
                scope = Scope(kind, name)
                if str(scope) in listed:
                    continue
                out.append(gauge(manager, scope, budget, f"default:{kind}", now))
    return out


__all__ = ["Gauge", "PeriodGauge", "budget_scopes", "gauges"]
