"""Forecast maths: project a list of daily amounts (oldest first, complete days only).

1. *Spikes* are clipped (an upward-only Hampel filter with a floor from the whole history), so
   one runaway day does not move a month's projection; a level shift survives (it is not an
   outlier among its own neighbours).
2. *Weekday seasonality*: with three weeks or more, a multiplicative factor per weekday
   (median ratio to the centred 7-day mean), used only when it is material (>= 10%).
3. A *method* projects the adjusted series: ``naive`` (mean of the last 7 raw days, the run
   rate most dashboards show), ``linear`` (exponentially weighted least-squares trend) or
   ``ets`` (damped-trend exponential smoothing, parameters picked by in-sample error).

The default method was chosen by backtest (:func:`costwarden.forecast.backtest.backtest_table`,
docs/forecasting.md), not by taste; a test keeps :data:`DEFAULT_METHOD` equal to the
backtest's winner. Forecasts are statistical estimates, so the maths runs in float nano-USD.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from costwarden.errors import InvalidInputError

METHODS: Final = ("naive", "linear", "ets")
DEFAULT_METHOD: Final = "ets"
"""The backtest winner (see module doc); ``tests/test_forecast_backtest.py`` checks it."""
LOOKBACK_DAYS: Final = 56
INTERVAL: Final = 0.8
_Z: Final = 1.2815515655446004  # two-sided 80% normal quantile
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
