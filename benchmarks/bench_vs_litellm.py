"""costwarden's BudgetManager beside LiteLLM's, on the same calls, in one run.

``python -m benchmarks vs_litellm [--quick]``. LiteLLM 1.110.2 runs in its own throwaway venv
(``benchmarks/peers.py``); both sides replay one stream of calls written to a JSON file.

1. Bookkeeping per tracked call, one process. costwarden: count the prompt's tokens, price
   them with max_tokens as the output bound, ``reserve`` against the global and the user's
   budget, ``commit`` the reported usage (priced from the catalogue, 9 period totals). LiteLLM:
   ``projected_cost`` (counts the prompt's tokens, prices them) checked against
   ``get_total_budget``, then ``update_cost(completion_obj=...)`` (prices the reported usage,
   adds it to a dict, saves user_cost.json from a new thread).
2. Storm: THREADS threads share one manager and one small budget; each loops check -> sleep
   (the LLM call) -> record until refused. Overspend is what was really spent above the
   budget. costwarden's must be zero: ``reserve`` holds the max_tokens-bounded estimate
   atomically, so every admitted call fits even if all of them finish at once.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from benchmarks.bench_ledger import (
    MAX_TOKENS,
    MODEL,
    ROUNDS,
    Call,
    bookkeeping_loop,
    estimator,
    make_stream,
    open_postgres_manager,
    postgres_url,
    print_load,
    roomy_budget,
    scratch_dir,
    timed_rounds,
    token_counter,
)
from benchmarks.peers import LITELLM, PeerUnavailable, run_peer
from costwarden.budget import Budget
from costwarden.errors import BudgetExceededError
from costwarden.manager import BudgetManager
from costwarden.money import format_usd, nanos_to_usd, usd_to_nanos
from costwarden.records import UsageRecord

STORM_THREADS = 64
STORM_BUDGET_USD = 0.01
STORM_LATENCY_S = 0.02


def _write_stream(path: Path, calls: Sequence[Call]) -> None:
    data = {
        "model": MODEL,
        "calls": [[c.prompt, c.user, c.input_tokens, c.output_tokens] for c in calls],
    }
    path.write_text(json.dumps(data))


def _manager(name: str, d: Path, budget: Budget) -> tuple[BudgetManager | None, str]:
    if name == "postgresql":
        return open_postgres_manager(budget)
    url = "memory://" if name == "memory" else f"sqlite:///{d / f'{name}.db'}"
    return BudgetManager(budget, ledger=url), url


# -- 1. bookkeeping -----------------------------------------------------------------------------


def bench_bookkeeping(n: int) -> dict[str, float]:
    calls = make_stream(n)
    rates: dict[str, float] = {}
    print(
        f"\nbookkeeping per tracked call, {n:,} calls of {MODEL} from 10 users, one process, "
        f"best of {ROUNDS} rounds each:\n"
        f"  costwarden: {token_counter()[1]} on the prompt + price with max_tokens="
        f"{MAX_TOKENS}, reserve (global + user budgets), commit (reported usage, priced)\n"
        "  LiteLLM: projected_cost (token_counter on the prompt + cost_per_token) <= "
        "get_total_budget, then update_cost(completion_obj=response)"
    )
    with scratch_dir() as d:
        for name in ("memory", "sqlite", "postgresql"):
            mgr, why = _manager(name, d, roomy_budget())
            if mgr is None:
                print(f"  costwarden {name:10}: skipped ({why})")
                continue
            with mgr:
                mgr.set_default_budget("user", roomy_budget())
                bookkeeping_loop(mgr, calls[:50], per_user=True)
                t = timed_rounds(partial(bookkeeping_loop, mgr, calls, per_user=True))
            rates[name] = n / t.seconds
            print(f"  costwarden {name:10}: {t}")
        stream = d / "stream.json"
        _write_stream(stream, calls)
        try:
            peer = run_peer("litellm_budget.py", ["bookkeeping", str(stream)])
        except PeerUnavailable as exc:
            print(f"  LiteLLM BudgetManager: skipped ({exc})")
            return rates
    loop_rate = peer["calls"] / peer["loop_seconds"]
    full_rate = peer["calls"] / peer["seconds_with_saves"]
    rates["litellm"] = full_rate
    print(
        f"  LiteLLM {LITELLM} BudgetManager: {full_rate:>9,.0f} calls/s "
        f"({1e6 / full_rate:,.1f} µs) with its background user_cost.json saves finished; "
        f"{loop_rate:,.0f} calls/s counting the loop alone"
    )
    for name in ("memory", "sqlite", "postgresql"):
        if name in rates:
            print(f"  costwarden {name} / LiteLLM: {rates[name] / full_rate:.1f}x (target >= 3x)")
    floor = postgres_floor(n)
    if floor is not None:
        print(
            f"  PostgreSQL floor, no costwarden code: {floor:>9,.0f} calls/s "
            f"({1e6 / floor:,.1f} µs) = {floor / full_rate:.1f}x LiteLLM. One round trip before "
            "the call (SELECT 1) and one durable INSERT after it (synchronous_commit=on, as "
            "a record needs), on one psycopg connection: what any hard budget shared across "
            "hosts through this server must pay at least"
        )
    return rates


def postgres_floor(n: int) -> float | None:
    """Calls/s of the bare minimum a PostgreSQL-backed tracked call needs: a round trip for
    the admission before the provider call, and an insert with a flushed commit after it."""
    try:
        import psycopg
    except ImportError:
        return None
    url = postgres_url().partition("?")[0]
    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=3)
    except psycopg.Error:
        return None
    table = "cw_bench_floor"  # a real table: a temporary one would skip the WAL flush
    with conn:
        conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.execute(f"CREATE TABLE {table} (id BIGSERIAL PRIMARY KEY, cost BIGINT)")
        conn.execute("SET synchronous_commit = on")
        insert = f"INSERT INTO {table} (cost) VALUES (%s)"

        def loop() -> list[float]:
            out = []
            for _ in range(n):
                t0 = time.perf_counter()
                conn.execute("SELECT 1").fetchone()
                conn.execute(insert, (1,))
                out.append(time.perf_counter() - t0)
            return out

        try:
            loop()  # warm-up: psycopg prepares both statements after a few runs
            t = timed_rounds(loop)
        finally:
            conn.execute(f"DROP TABLE {table}")
    return n / t.seconds


# -- 2. storm -----------------------------------------------------------------------------------


def storm_ours(mgr: BudgetManager, calls: Sequence[Call], threads: int) -> dict[str, Any]:
    """THREADS threads share ``mgr``; each reserves, waits out the 'call', commits, until the
    budget refuses it. Returns what was admitted and really spent (nano-USD summed exactly)."""
    mgr.set_budget(
        Budget(daily_limit=STORM_BUDGET_USD, monthly_limit=None, per_request_limit=None),
        user="storm",
    )
    estimate = estimator()
    lock = threading.Lock()
    spent = [0]
    admitted = [0]
    start = threading.Barrier(threads)

    def worker(k: int) -> None:
        start.wait()
        j = k
        while True:
            c = calls[j % len(calls)]
            try:
                hold = mgr.reserve(nanos_to_usd(estimate(c.prompt)), user="storm")
            except BudgetExceededError:
                return
            threading.Event().wait(STORM_LATENCY_S)  # the LLM call itself
            stored = mgr.commit(
                hold, UsageRecord(MODEL, c.input_tokens, c.output_tokens, user_id="storm")
            )
            with lock:
                spent[0] += stored.cost_nanos
                admitted[0] += 1
            j += threads

    pool = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    ledger_spent = mgr.get_status(user="storm")["daily_spent"]
    return {"admitted": admitted[0], "spent_nanos": spent[0], "ledger_usd": ledger_spent}


def bench_storm(threads: int) -> dict[str, float]:
    calls = make_stream(500, seed=11)
    limit = usd_to_nanos(STORM_BUDGET_USD)
    overspend: dict[str, float] = {}
    print(
        f"\nstorm: {threads} threads share one manager and one {format_usd(limit)} budget; "
        f"each call = check, {STORM_LATENCY_S * 1000:g} ms 'LLM call', record; until refused"
    )
    with scratch_dir() as d:
        for name in ("memory", "sqlite", "postgresql"):
            mgr, why = _manager(name, d, roomy_budget())
            if mgr is None:
                print(f"  costwarden {name:10}: skipped ({why})")
                continue
            with mgr:
                r = storm_ours(mgr, calls, threads)
            over = max(0, r["spent_nanos"] - limit)
            overspend[name] = nanos_to_usd(over)
            print(
                f"  costwarden {name:10}: {r['admitted']:4} calls admitted, spent "
                f"{format_usd(r['spent_nanos'])} ({r['spent_nanos'] / limit:.0%} of the budget;"
                f" ledger says ${r['ledger_usd']:.6f}), overspend {format_usd(over)}"
            )
        stream = d / "storm.json"
        _write_stream(stream, calls)
        try:
            peer = run_peer(
                "litellm_budget.py",
                ["storm", str(stream), str(threads), repr(STORM_BUDGET_USD), repr(STORM_LATENCY_S)],
            )
        except PeerUnavailable as exc:
            print(f"  LiteLLM BudgetManager: skipped ({exc})")
            return overspend
    overspend["litellm"] = peer["overspend_usd"]
    print(
        f"  LiteLLM BudgetManager: {peer['admitted']:4} calls admitted, spent "
        f"${peer['spent_usd']:.6f} ({peer['spent_usd'] / STORM_BUDGET_USD:.0%} of the budget; "
        f"it recorded ${peer['litellm_recorded_usd']:.6f}), overspend "
        f"${peer['overspend_usd']:.6f} (+{peer['overspend_usd'] / STORM_BUDGET_USD:.0%})"
    )
    return overspend


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    # Denials in the storm are expected; their CRITICAL alerts would only clutter the figures.
    logging.getLogger("costwarden").setLevel(logging.ERROR)
    print_load()
    bench_bookkeeping(1_000 if quick else 3_000)
    bench_storm(STORM_THREADS)


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
