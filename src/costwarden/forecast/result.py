"""What a forecast of one scope says: per period (day, ISO week, month) and overall."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from costwarden.money import Nanos, SpentAndLimitUsd, nanos_to_usd


@dataclass(frozen=True, slots=True)
class PeriodForecast(SpentAndLimitUsd):
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
        """The spend projected for the whole period in US dollars."""
        return nanos_to_usd(self.projected_nanos)

    @property
    def interval_usd(self) -> tuple[float, float]:
        """The projection's uncertainty interval (low, high) in US dollars."""
        return nanos_to_usd(self.low_nanos), nanos_to_usd(self.high_nanos)

    def to_dict(self) -> dict[str, Any]:
        """The period's forecast as JSON-ready values."""
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
    has_budget: bool = True  # False: no budget of its own, so no limits (and no alerts)

    @property
    def daily_rate_usd(self) -> float:
        """The projected daily spend rate in US dollars."""
        return nanos_to_usd(self.daily_rate_nanos)

    def to_dict(self) -> dict[str, Any]:
        """The forecast as JSON-ready values (the CLI's ``--json`` and the dashboard use this
        shape).
        """
        return {
            "scope": self.scope,
            "has_budget": self.has_budget,
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
