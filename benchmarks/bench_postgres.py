"""The PostgreSQL ledger's hot path beside SQLite's, through the BudgetManager.

Measures, per backend: reserve+commit and reserve+release (one thread), can_spend and
get_status (read-only), and reserve+commit from 16 threads sharing one manager (what a
gateway worker does). PostgreSQL write figures are bounded by the server's commit flush
(``synchronous_commit``); they are printed beside the server's setting.

The server comes from ``COSTWARDEN_BENCH_POSTGRES_URL`` or ``COSTWARDEN_TEST_POSTGRES_URL``;
a throwaway schema is created and dropped. Without one, only SQLite is measured.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from costwarden.budget import Budget
from costwarden.manager import BudgetManager
from costwarden.records import UsageRecord

_BUDGET = Budget(daily_limit=1e9, monthly_limit=None, per_request_limit=None)
_RECORD = UsageRecord("bench-model", 100, 50, cost_usd=0.0001)


def _rate(n: int, fn: Callable[[], object], repeats: int = 3) -> float:
    """Best calls per second over ``repeats`` runs of ``n`` calls."""
    best = 0.0
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        best = max(best, n / (time.perf_counter() - t))
    return best


def _threaded_rate(manager: BudgetManager, threads: int, per_thread: int) -> float:
    barrier = threading.Barrier(threads + 1)

    def work() -> None:
        barrier.wait()
        for _ in range(per_thread):
            manager.reserve(0.001).commit(_RECORD)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for w in workers:
        w.start()
    barrier.wait()
    t = time.perf_counter()
    for w in workers:
        w.join()
    return threads * per_thread / (time.perf_counter() - t)


def _measure(name: str, url: str, n: int) -> None:
    manager = BudgetManager(_BUDGET, ledger=url)
    try:
        for _ in range(50):  # warm-up: connections, prepared statements, caches
            manager.reserve(0.001).commit(_RECORD)
        figures = {
            "reserve+commit, 1 thread": _rate(n, lambda: manager.reserve(0.001).commit(_RECORD)),
            "reserve+release, 1 thread": _rate(n, lambda: manager.reserve(0.001).release()),
            "can_spend": _rate(n, lambda: manager.can_spend(0.001)),
            "get_status": _rate(n, manager.get_status),
            "reserve+commit, 16 threads": _threaded_rate(manager, 16, max(10, n // 16)),
        }
    finally:
        manager.close()
    for label, rate in figures.items():
        print(f"{name:10} {label:28} {rate:10,.0f} calls/s  {1e6 / rate:9.1f} µs/call")


def main(argv: list[str]) -> None:
    n = 2000 if "--full" in argv else 400
    with tempfile.TemporaryDirectory() as tmp:
        _measure("sqlite", f"sqlite:///{Path(tmp) / 'bench.db'}", n)
    server = os.environ.get("COSTWARDEN_BENCH_POSTGRES_URL") or os.environ.get(
        "COSTWARDEN_TEST_POSTGRES_URL"
    )
    if not server:
        print("postgres   skipped: set COSTWARDEN_BENCH_POSTGRES_URL=postgresql://...")
        return
    import psycopg

    schema = f"cw_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as conn:
        row = conn.execute("SHOW synchronous_commit").fetchone()
        print(f"postgres   server synchronous_commit={row[0] if row else '?'}")
    try:
        sep = "&" if "?" in server else "?"
        _measure("postgres", f"{server}{sep}schema={schema}&pool_max=8", n)
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
