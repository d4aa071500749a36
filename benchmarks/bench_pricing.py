"""Cost of one call's usage: costwarden's PriceCatalog vs genai-prices' calc_price.

Both are warmed up first (genai-prices caches its model lookup; costwarden resolves and
compiles the model's price once). Figures are the best of several repeats, in µs per call.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from genai_prices import Usage as GenaiUsage
from genai_prices import calc_price

from costwarden.pricing import PriceCatalog
from costwarden.records import Usage

CASES = [
    # (label, model, usage, batch)
    ("gpt-4o plain", "gpt-4o", Usage(1_200, 350), False),
    ("gpt-4o cached", "gpt-4o", Usage(12_000, 3_000, cache_read_tokens=8_000), False),
    (
        "claude-sonnet-4-5 tiered+cache",
        "claude-sonnet-4-5",
        Usage(250_000, 4_000, 100_000, 20_000),
        False,
    ),
    ("gemini-2.5-pro batch", "gemini-2.5-pro", Usage(50_000, 2_000, 10_000), True),
    ("o3 (date-dependent)", "o3", Usage(5_000, 9_000, 1_000, 0, 7_000), False),
]


def _best_us(fn: Callable[[], object], number: int, repeat: int = 5) -> float:
    for _ in range(1_000):
        fn()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - start) / number)
    return best * 1e6


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    n_ours, n_peer = (20_000, 2_000) if quick else (200_000, 20_000)
    catalog = PriceCatalog()
    when = datetime(2026, 11, 28, 12, tzinfo=UTC)
    print(f"{'case':34} {'costwarden µs':>14} {'ops/s':>11} {'calc_price µs':>14} {'ops/s':>9}")
    for label, model, usage, batch in CASES:
        raw = GenaiUsage(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cache_read_tokens,
            cache_write_tokens=usage.cache_write_tokens,
        )
        context = {"processing": "batch"} if batch else None

        def ours(model: str = model, usage: Usage = usage, batch: bool = batch) -> object:
            return catalog.cost_nanos(model, usage, batch=batch)

        def peer(
            model: str = model, raw: GenaiUsage = raw, context: dict[str, str] | None = context
        ) -> object:
            return calc_price(raw, model, price_context=context)

        assert catalog.cost_nanos(model, usage, batch=batch, when=when) == round(
            calc_price(
                raw, model, price_context=context, genai_request_timestamp=when
            ).total_price.scaleb(9)
        )
        us_ours = _best_us(ours, n_ours)
        us_peer = _best_us(peer, n_peer)
        print(
            f"{label:34} {us_ours:14.2f} {1e6 / us_ours:11,.0f} {us_peer:14.1f} "
            f"{1e6 / us_peer:9,.0f}"
        )
    start = time.perf_counter()
    fresh = PriceCatalog()
    fresh.resolve("claude-3-haiku-20240307")
    cold_ms = (time.perf_counter() - start) * 1e3
    print(f"first resolve of a model (new catalogue object): {cold_ms:.2f} ms")
