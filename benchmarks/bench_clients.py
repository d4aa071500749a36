"""Added latency of a tracked call over a direct SDK call to the same fake upstream.

The fake upstream runs in its own process (so it does not share the client's GIL) and answers
immediately. Every variant has its own SDK client with the same settings (``max_retries=0``,
same base URL and key). Direct and tracked calls are interleaved one by one, in a shuffled
order each round (a fixed order would hand one variant, every time, whatever the previous
one left behind: a WAL checkpoint thread, a cold cache); so all see the same server and
machine noise. The figure reported is the difference of their latency percentiles. The ledger
is a SQLite file (the embedded default), then in-memory for reference; each is printed.

``--calls=N`` sets the number of calls per variant (default 2000). ``--system=CHARS`` starts
every prompt with a system message of that many characters (default 0: one short user
message), the shape of most applications, whose repeated prefix the client counts once.
"""

from __future__ import annotations

import asyncio
import logging
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

MODEL = "gpt-4o-mini"
MESSAGES: list[dict[str, str]] = [{"role": "user", "content": "Give me one word for thrift."}]
ARGS: dict[str, Any] = {"model": MODEL, "messages": MESSAGES, "max_tokens": 16}
SYSTEM_TEXT = (
    "You are the assistant of a budgeting app. Answer in at most 2 lines; amounts in USD "
    "($4.20), shares in % (12%). Say so if unsure. "
)
"""Repeated to the requested length. The fake upstream bills about one token per 4 characters;
this text counts ~3.6 characters per token, so the hold (our count) covers the bill as with a
real provider. Looser text (plain prose runs ~4.4) would make every call's cost exceed its
hold and time the manager's hold-exceeded alert instead of a normal call."""


def _set_system_prompt(chars: int) -> None:
    """Start every variant's prompt with one system message of ``chars`` characters."""
    del MESSAGES[:-1]
    if chars > 0:
        text = (SYSTEM_TEXT * (chars // len(SYSTEM_TEXT) + 1))[:chars]
        MESSAGES.insert(0, {"role": "system", "content": text})


def _order(names: list[str], rng: random.Random) -> list[str]:
    """This round's order of the variants (shuffled, so no variant always follows another)."""
    out = list(names)
    rng.shuffle(out)
    return out


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000.0


def _row(name: str, samples: dict[str, list[float]], base: str = "direct") -> None:
    b50, b99 = statistics.median(samples[base]) * 1000, _pct(samples[base], 0.99)
    for variant, values in samples.items():
        p50, p99 = statistics.median(values) * 1000, _pct(values, 0.99)
        added = (
            "" if variant == base else f"  added p50 {p50 - b50:+.3f} ms  p99 {p99 - b99:+.3f} ms"
        )
        print(f"  {name:<7} {variant:<14} p50 {p50:7.3f} ms  p99 {p99:7.3f} ms{added}")


def _start_upstream() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "costwarden.testing.fake_upstream"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http://"):
        proc.kill()
        raise RuntimeError(f"fake upstream did not start: {url!r}")
    return proc, url


def _sync(url: str, ledger: str, calls: int) -> dict[str, list[float]]:
    import openai

    from costwarden.budget import Budget
    from costwarden.clients import OpenAIProvider, TrackedLLMClient, wrap
    from costwarden.manager import BudgetManager

    manager = BudgetManager(Budget(daily_limit=1e6, monthly_limit=None), ledger=ledger)
    direct = openai.OpenAI(base_url=f"{url}/v1", api_key="bench", max_retries=0)
    wrapped = wrap(
        openai.OpenAI(base_url=f"{url}/v1", api_key="bench", max_retries=0),
        manager=manager,
        provider="openai",
    )
    tracked = TrackedLLMClient(
        manager, providers=[OpenAIProvider(base_url=f"{url}/v1", api_key="bench")]
    )
    variants: dict[str, Callable[[], object]] = {
        "direct": lambda: direct.chat.completions.create(**ARGS),
        "wrap()": lambda: wrapped.chat.completions.create(**ARGS),
        "TrackedLLM": lambda: tracked.chat(MESSAGES, model=MODEL, max_tokens=16),
    }
    samples: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(50):  # warm-up: connections, tokenizer, price cache
        for f in variants.values():
            f()
    rng = random.Random(1)
    for _ in range(calls):
        for name in _order(list(variants), rng):
            f = variants[name]
            t0 = time.perf_counter()
            f()
            samples[name].append(time.perf_counter() - t0)
    manager.close()
    return samples


def _async(url: str, ledger: str, calls: int) -> dict[str, list[float]]:
    import openai

    from costwarden.budget import Budget
    from costwarden.clients import AsyncTrackedLLMClient, OpenAIProvider, wrap
    from costwarden.manager import BudgetManager

    async def run() -> dict[str, list[float]]:
        manager = BudgetManager(Budget(daily_limit=1e6, monthly_limit=None), ledger=ledger)
        direct = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="bench", max_retries=0)
        wrapped = wrap(
            openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="bench", max_retries=0),
            manager=manager,
            provider="openai",
        )
        tracked = AsyncTrackedLLMClient(
            manager, providers=[OpenAIProvider(base_url=f"{url}/v1", api_key="bench")]
        )
        variants: dict[str, Callable[[], Awaitable[object]]] = {
            "direct": lambda: direct.chat.completions.create(**ARGS),
            "wrap()": lambda: wrapped.chat.completions.create(**ARGS),
            "TrackedLLM": lambda: tracked.chat(MESSAGES, model=MODEL, max_tokens=16),
        }
        samples: dict[str, list[float]] = {k: [] for k in variants}
        for _ in range(50):
            for f in variants.values():
                await f()
        rng = random.Random(1)
        for _ in range(calls):
            for name in _order(list(variants), rng):
                f = variants[name]
                t0 = time.perf_counter()
                await f()
                samples[name].append(time.perf_counter() - t0)
        await direct.close()
        await wrapped.unwrapped.close()
        provider = tracked.providers.get("openai")
        await provider.async_client.close()  # type: ignore[attr-defined]
        manager.close()
        return samples

    return asyncio.run(run())


def _bookkeeping(ledger: str, calls: int) -> list[float]:
    """Estimate + reserve + commit alone (no network), in a tight loop: a floor of the added
    latency (a real call runs it with caches the SDK call has cooled, so it costs more).

    Same attribution as the tracked calls (none): a user here would add a scope, and its
    buckets, that the calls being compared do not have.
    """
    from costwarden.budget import Budget
    from costwarden.clients import Attribution, CallAccount, estimate_call
    from costwarden.manager import BudgetManager
    from costwarden.records import Usage

    manager = BudgetManager(Budget(daily_limit=1e6, monthly_limit=None), ledger=ledger)
    who = Attribution()
    out = []
    for i in range(calls + 50):
        t0 = time.perf_counter()
        est = estimate_call(manager.pricing, "chat", ARGS, MODEL, provider="openai")
        account = CallAccount(manager, est, who, api="chat", provider="openai")
        account.succeed(Usage(12, 3), model=MODEL, request_id="r")
        if i >= 50:
            out.append(time.perf_counter() - t0)
    manager.close()
    return out


def main(argv: list[str]) -> None:
    calls = 2000
    system = 0
    for arg in argv:
        if arg.startswith("--calls="):
            calls = int(arg.split("=", 1)[1])
        elif arg.startswith("--system="):
            system = int(arg.split("=", 1)[1])
    _set_system_prompt(system)
    logging.disable(logging.WARNING)
    proc, url = _start_upstream()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for label, ledger in (
                ("SQLite", f"sqlite:///{Path(tmp) / 'bench.db'}"),
                ("memory", "memory://"),
            ):
                shape = f"{system}-char system prompt + " if system else ""
                print(
                    f"ledger {label} ({ledger}): {calls} calls per variant, interleaved in "
                    f"shuffled order; prompt: {shape}1 user message, max_tokens=16"
                )
                book = _bookkeeping(ledger.replace("bench.db", "book.db"), calls)
                print(
                    f"  bookkeeping only (estimate+reserve+commit): p50 "
                    f"{statistics.median(book) * 1e3:.3f} ms  p99 {_pct(book, 0.99):.3f} ms"
                )
                _row("sync", _sync(url, ledger, calls))
                _row("async", _async(url, ledger.replace("bench.db", "async.db"), calls))
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main(sys.argv[1:])
