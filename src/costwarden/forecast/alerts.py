"""Forecast alerts: a WARNING when a weekly or monthly limit is forecast to run out early."""

from __future__ import annotations

from datetime import UTC
from typing import Final

from costwarden.budget import Budget
from costwarden.forecast.result import Forecast
from costwarden.money import format_compared
from costwarden.records import Alert, AlertLevel

_PERIOD_TITLE: Final = {"daily": "Daily", "weekly": "Weekly", "monthly": "Monthly"}


def forecast_alerts(forecast: Forecast, budget: Budget | None, scope: str) -> list[Alert]:
    """WARNING alerts for weekly/monthly limits forecast to run out before their period ends.

    One per scope, period and period start (the dedup key), and none from a forecast without
    enough history, for a limit already used up (threshold alerts cover that), or for a scope
    with no budget (``budget`` None): the global limit is not that scope's to run out of."""
    if budget is None or not forecast.has_budget or not forecast.sufficient_history:
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
            f"{spent} of {limit} spent, projected {projected} by period end ({scope}), resets "
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
