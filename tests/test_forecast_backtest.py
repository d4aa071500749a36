"""The forecast method is chosen by backtest: this keeps the choice and its error bounds true."""

from __future__ import annotations

import pytest

from costwarden.forecast import (
    DEFAULT_METHOD,
    BacktestScore,
    backtest,
    backtest_table,
    best_method,
    synthetic_history,
)

Table = dict[str, dict[str, BacktestScore]]


@pytest.fixture(scope="module")
def table() -> Table:
    return backtest_table(range(3), horizon=14)


def test_default_method_is_the_backtest_winner(table: Table) -> None:
    assert best_method(table) == DEFAULT_METHOD
    assert table[DEFAULT_METHOD]["mean"].mape < 0.8 * table["naive"]["mean"].mape


@pytest.mark.parametrize(
    ("scenario", "bound"),
    [
        ("flat", 0.08),
        ("growing", 0.12),
        ("weekly", 0.08),
        ("step", 0.30),
        ("spike", 0.35),
        ("sporadic", 0.70),
    ],
)
def test_error_bounds_of_the_default_method(table: Table, scenario: str, bound: float) -> None:
    """Mean absolute % error of the next 14 days' total, per synthetic history."""
    assert table[DEFAULT_METHOD][scenario].mape < bound


def test_spikes_do_not_drag_the_forecast(table: Table) -> None:
    assert table[DEFAULT_METHOD]["spike"].mape < 0.6 * table["naive"]["spike"].mape


def test_interval_coverage_on_steady_spend(table: Table) -> None:
    for scenario in ("flat", "weekly"):
        assert 0.65 <= table[DEFAULT_METHOD][scenario].coverage <= 0.97


def test_backtest_scores_a_perfect_forecast_as_zero_error() -> None:
    score = backtest([4.0] * 50, DEFAULT_METHOD, horizon=7)
    assert score.mape == pytest.approx(0.0) and score.origins == 50 - 28 - 7 + 1


def test_backtest_detects_a_bad_method() -> None:
    """The harness can fail: naive on a growing series under-forecasts measurably."""
    series = synthetic_history("growing", 84, seed=0)
    assert backtest(series, "naive", horizon=14).mape > 0.10
