"""Forecast backtest (error of each method on synthetic histories) and forecast latency.

``python -m benchmarks forecast`` prints the table docs/forecasting.md reports.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from costwarden.budget import Budget, calendar_window, get_zone
from costwarden.forecast import SCENARIOS, backtest_table, best_method, forecast_scope
from costwarden.ledger import Bucket, MemoryLedger, NewRecord


def _table(seeds: int, horizon: int) -> None:
    t0 = time.perf_counter()
    table = backtest_table(range(seeds), horizon=horizon)
    took = time.perf_counter() - t0
    cols = [*SCENARIOS, "mean"]
    print(f"\nbacktest: {seeds} seeds x 84-day histories, error of the next {horizon} days' total")
    print("| method | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for method, row in table.items():
        print(f"| {method} | " + " | ".join(f"{row[c].mape:.1%}" for c in cols) + " |")
    print(
        f"| 80% interval coverage ({best_method(table)}) | "
        + " | ".join(f"{table[best_method(table)][c].coverage:.0%}" for c in cols)
        + " |"
    )
    print(f"best: {best_method(table)}  ({took:.1f} s)")


def _latency() -> None:
    ledger = MemoryLedger()
    now = datetime(2026, 11, 18, 12, tzinfo=UTC)
    for d in range(56):
        at = now - timedelta(days=d + 1)
        buckets = [
            Bucket("global", p, (w := calendar_window(p, at, get_zone("UTC"))).start, w.end)
            for p in ("daily", "weekly", "monthly")
        ]
        ledger.append(
            NewRecord(
                int(at.timestamp() * 1e6),
                "m",
                None,
                1,
                1,
                0,
                0,
                0,
                10**9,
                None,
                None,
                None,
                None,
                None,
                (),
                None,
                "ok",
                False,
                "t",
            ),
            buckets,
        )
    budget = Budget(monthly_limit=100.0, weekly_limit=30.0)
    n = 200
    t0 = time.perf_counter()
    for _ in range(n):
        forecast_scope(ledger, "global", budget, now)
    per = (time.perf_counter() - t0) / n
    print(f"\nforecast_scope, 56 days of history, memory ledger: {per * 1e3:.2f} ms per call")


def main(argv: list[str]) -> None:
    seeds = 20 if "--full" in argv else 5
    for horizon in (7, 14):
        _table(seeds, horizon)
    _latency()
