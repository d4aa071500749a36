"""Spend forecasting: where a scope's spend is heading and when its budgets run out.

One concept per module:

- :mod:`~costwarden.forecast.model`: the maths on a list of daily amounts (spike clipping,
  weekday seasonality, the naive / linear / ets methods, intervals);
- :mod:`~costwarden.forecast.backtest`: backtests on synthetic histories, which chose the
  default method;
- :mod:`~costwarden.forecast.scope`: reading a scope's spend from the ledger and projecting it
  to the end of the day, ISO week and month (:func:`forecast_scope`);
- :mod:`~costwarden.forecast.result`: the :class:`Forecast` and :class:`PeriodForecast` it
  returns;
- :mod:`~costwarden.forecast.alerts`: the WARNING raised when a limit is forecast to run out.

See docs/forecasting.md.
"""

from __future__ import annotations

from costwarden.forecast.alerts import forecast_alerts
from costwarden.forecast.backtest import (
    SCENARIOS,
    BacktestScore,
    backtest,
    backtest_table,
    best_method,
    synthetic_history,
)
from costwarden.forecast.model import (
    DEFAULT_METHOD,
    INTERVAL,
    LOOKBACK_DAYS,
    METHODS,
    Projection,
    clip_spikes,
    project,
    seasonal_factors,
    total_interval,
    weekday_factors,
)
from costwarden.forecast.result import Forecast, PeriodForecast
from costwarden.forecast.scope import MIN_HISTORY_DAYS, SpendSource, forecast_scope

__all__ = [
    "DEFAULT_METHOD",
    "INTERVAL",
    "LOOKBACK_DAYS",
    "METHODS",
    "MIN_HISTORY_DAYS",
    "SCENARIOS",
    "BacktestScore",
    "Forecast",
    "PeriodForecast",
    "Projection",
    "SpendSource",
    "backtest",
    "backtest_table",
    "best_method",
    "clip_spikes",
    "forecast_alerts",
    "forecast_scope",
    "project",
    "seasonal_factors",
    "synthetic_history",
    "total_interval",
    "weekday_factors",
]
