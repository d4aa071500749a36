"""Backtests on synthetic histories: how the forecast method was chosen, and how well it does.

Six scenarios with known behaviour (flat, growing, weekly pattern, a level step, spikes,
sporadic spend), 15% noise, and a rolling-origin backtest of each method's horizon total;
:func:`backtest_table` is the table docs/forecasting.md shows and :func:`best_method` its
winner, which ``tests/test_forecast_backtest.py`` keeps equal to ``DEFAULT_METHOD``.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from costwarden.errors import InvalidInputError
from costwarden.forecast.model import METHODS, project, total_interval

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
    """The forecast method with the lowest mean absolute percentage error in a backtest table."""
    return min(table, key=lambda m: table[m]["mean"].mape)
