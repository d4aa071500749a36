"""CostOptimizer latency: select_model, and estimate_cost against raw tiktoken encoding.

estimate_cost is on the hot path of every tracked call, so its target is to cost no more than
1.5x the raw tiktoken encoding of the same text (``Encoding.encode_ordinary`` on the same
o200k_base encoding, whose ranks costwarden.tokens loads offline). Figures are the best of
several repeats after a warm-up; ``--quick`` runs fewer iterations.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from functools import partial

from costwarden.optimizer import CostOptimizer
from costwarden.pricing import PRICING
from costwarden.tokens import get_encoding

_SENTENCE = "The quarterly report shows revenue grew 12% while operating costs fell slightly. "
TEXTS = [
    ("9 tokens", "Hello, world! How are you today?"),
    ("~1 KB", (_SENTENCE * 13)[:1000]),
    ("~10 KB", (_SENTENCE * 125)[:10_000]),
    ("~100 KB", (_SENTENCE * 1250)[:100_000]),
]


def _best_us(fn: Callable[[], object], number: int, repeat: int = 5) -> float:
    for _ in range(min(number, 200)):
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
    scale = 10 if quick else 1

    print("select_model (µs per call; repeated request shapes reuse the priced options)")
    brief = CostOptimizer(PRICING)
    full = CostOptimizer()
    start = time.perf_counter()
    full.select_model("summarization")
    first_ms = (time.perf_counter() - start) * 1e3
    print(f"  default catalogue, first call (finds candidates): {first_ms:.1f} ms")
    for label, opt in (("brief PRICING (6 models)", brief), ("default catalogue", full)):
        n = len(opt.candidates)
        for task, quality in (("summarization", "medium"), ("code", "best")):
            call = partial(opt.select_model, task, max_cost=0.05, quality=quality)
            us = _best_us(call, 5_000 // scale)
            print(f"  {label:26} {n:3} candidates  {task:14} {quality:7} {us:9.1f} µs")
        shapes = itertools.count(1000)

        def new_shape(o: CostOptimizer = opt, sh: Iterator[int] = shapes) -> str:
            return o.select_model("summarization", input_tokens=next(sh))

        us = _best_us(new_shape, 1_000 // scale)
        print(f"  {label:26} {n:3} candidates  new request shape each call {us:9.1f} µs")

    print("\nestimate_cost vs raw tiktoken encode_ordinary (o200k_base), gpt-4o")
    enc = get_encoding("o200k_base")
    head = ("text", "tokens", "tiktoken µs", "estimate µs", "ratio", "MB/s")
    print("  {:9} {:>7} {:>12} {:>12} {:>6} {:>6}".format(*head))
    for label, text in TEXTS:
        number = max(20, 20_000 // max(1, len(text) // 200)) // scale
        raw = _best_us(partial(enc.encode_ordinary, text), number)
        est = _best_us(partial(full.estimate_cost, "gpt-4o", text, 500), number)
        tokens = len(enc.encode_ordinary(text))
        mbps = len(text.encode()) / est  # bytes per µs == MB/s
        print(f"  {label:9} {tokens:7d} {raw:12.2f} {est:12.2f} {est / raw:6.2f} {mbps:6.1f}")
    msgs = [
        {"role": "system", "content": "You are a careful summariser."},
        {"role": "user", "content": TEXTS[1][1]},
    ]
    us = _best_us(lambda: full.estimate_cost("gpt-4o", msgs, 500), 20_000 // scale)
    print(f"  2-message chat (~1 KB): {us:.2f} µs per estimate")
    us = _best_us(
        lambda: full.estimate_cost("claude-3-5-sonnet", TEXTS[1][1], 500), 20_000 // scale
    )
    print(f"  claude-3-5-sonnet (~1 KB, estimated count): {us:.2f} µs per estimate")
