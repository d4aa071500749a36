"""Runs INSIDE the LiteLLM venv (see benchmarks/peers.py): LiteLLM's BudgetManager replaying the
call stream costwarden's side replays, in its documented pattern.

    python litellm_budget.py bookkeeping STREAM.json
    python litellm_budget.py storm STREAM.json THREADS BUDGET_USD LATENCY_S

STREAM.json: {"model": ..., "calls": [[prompt, user, input_tokens, output_tokens], ...]}.
Per call, LiteLLM's side does what its docs and code show: ``projected_cost(model, messages,
user)`` (counts the prompt's tokens and prices them, plus the user's current cost) compared
with ``get_total_budget(user)``, then ``update_cost(user=..., completion_obj=response)``, where
``response`` is a ModelResponse carrying the usage the provider reported (built before the
clock starts, as the SDK would have built it). update_cost saves ``user_cost.json`` from a new
thread on every call; the figures say whether those saves are counted.

Prints one JSON line with the figures. Needs LITELLM_LOCAL_MODEL_COST_MAP=True (no network).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

import litellm  # type: ignore[import-not-found]
from litellm import BudgetManager, ModelResponse
from litellm.types.utils import Usage  # type: ignore[import-not-found]

ROUNDS = 3


def _load(path: str) -> tuple[str, list[list[Any]]]:
    with open(path) as f:
        data = json.load(f)
    return str(data["model"]), list(data["calls"])


def _response(model: str, input_tokens: int, output_tokens: int) -> Any:
    usage = Usage(
        prompt_tokens=input_tokens,
        completion_tokens=output_tokens,
        total_tokens=input_tokens + output_tokens,
    )
    return ModelResponse(model=model, usage=usage)


def _drain_save_threads() -> None:
    main = threading.main_thread()
    for t in threading.enumerate():
        if t is not main and t is not threading.current_thread():
            t.join()


def bookkeeping(path: str) -> dict[str, Any]:
    model, calls = _load(path)
    bm = BudgetManager(project_name="costwarden-bench")
    for user in sorted({c[1] for c in calls}):
        bm.create_budget(total_budget=1_000_000.0, user=user)
    _drain_save_threads()
    prepared = [
        ([{"role": "user", "content": prompt}], user, _response(model, i, o))
        for prompt, user, i, o in calls
    ]
    for messages, user, response in prepared[:50]:  # warm-up, as costwarden's side does
        bm.projected_cost(model, messages, user)
        bm.update_cost(user=user, completion_obj=response)
    _drain_save_threads()
    loop = drained = float("inf")
    admitted = 0
    for _ in range(ROUNDS):  # best of ROUNDS, as costwarden's side reports
        admitted = 0
        t0 = time.perf_counter()
        for messages, user, response in prepared:
            if bm.projected_cost(model, messages, user) <= bm.get_total_budget(user):
                bm.update_cost(user=user, completion_obj=response)
                admitted += 1
        loop = min(loop, time.perf_counter() - t0)
        _drain_save_threads()
        drained = min(drained, time.perf_counter() - t0)
    return {
        "calls": len(prepared),
        "admitted": admitted,
        "loop_seconds": loop,
        "seconds_with_saves": drained,
        "rounds": ROUNDS,
    }


def storm(path: str, threads: int, budget: float, latency: float) -> dict[str, Any]:
    model, calls = _load(path)
    bm = BudgetManager(project_name="costwarden-bench-storm")
    user = "storm"
    bm.create_budget(total_budget=budget, user=user)
    _drain_save_threads()
    prepared = [
        ([{"role": "user", "content": prompt}], _response(model, i, o)) for prompt, _, i, o in calls
    ]
    costs = [litellm.completion_cost(completion_response=r) for _, r in prepared]
    lock = threading.Lock()
    true_spent = [0.0]
    admitted = [0]
    start = threading.Barrier(threads)

    def worker(k: int) -> None:
        start.wait()
        j = k
        while True:
            messages, response = prepared[j % len(prepared)]
            if bm.projected_cost(model, messages, user) > bm.get_total_budget(user):
                return
            time.sleep(latency)  # the LLM call itself
            bm.update_cost(user=user, completion_obj=response)
            with lock:
                true_spent[0] += costs[j % len(prepared)]
                admitted[0] += 1
            j += threads

    pool = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    _drain_save_threads()
    return {
        "threads": threads,
        "budget_usd": budget,
        "latency_s": latency,
        "admitted": admitted[0],
        "spent_usd": true_spent[0],
        "litellm_recorded_usd": bm.get_current_cost(user),
        "overspend_usd": max(0.0, true_spent[0] - budget),
    }


def main(argv: list[str]) -> None:
    if argv[:1] == ["bookkeeping"] and len(argv) == 2:
        result = bookkeeping(argv[1])
    elif argv[:1] == ["storm"] and len(argv) == 5:
        result = storm(argv[1], int(argv[2]), float(argv[3]), float(argv[4]))
    else:
        sys.exit(__doc__)
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
