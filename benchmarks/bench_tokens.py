"""Token counting throughput: costwarden.count_tokens vs the raw tiktoken encoder underneath.

Texts are built offline from files on this machine: package descriptions (mostly English
prose in Markdown/reST) and Python standard-library source (code). Also printed: the cold
cost of building an encoding from the bundled rank files, and the cl100k/o200k count ratio
(a proxy used in docs/tokens.md for the Llama 3 estimate, whose tokenizer extends cl100k).
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable
from pathlib import Path

from costwarden.tokens import count_tokens, get_encoding


def _corpus(paths: list[Path], limit: int) -> str:
    parts: list[str] = []
    size = 0
    for path in sorted(paths):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        parts.append(text)
        size += len(text.encode("utf-8"))
        if size >= limit:
            break
    return "\n".join(parts)


def _best_seconds(fn: Callable[[], object], repeat: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    limit = 500_000 if quick else 2_000_000
    repeat = 2 if quick else 5
    site = Path(sysconfig.get_paths()["purelib"])
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    corpora = {
        "prose (package descriptions)": _corpus(list(site.glob("*.dist-info/METADATA")), limit),
        "code (stdlib .py)": _corpus(list(stdlib.glob("*.py")), limit),
    }
    cold = subprocess.run(
        [
            sys.executable,
            "-c",
            "import time; t = time.perf_counter(); from costwarden.tokens import get_encoding; "
            "get_encoding('o200k_base'); a = time.perf_counter(); get_encoding('cl100k_base'); "
            "print(f'{a - t:.3f} {time.perf_counter() - a:.3f}')",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    print(f"cold build (new process): o200k_base {cold[0]} s, cl100k_base {cold[1]} s")
    print(f"{'text':30} {'MB':>5} {'model':8} {'count_tokens MB/s':>18} {'tiktoken MB/s':>14}")
    for label, text in corpora.items():
        megabytes = len(text.encode("utf-8")) / 1e6
        for model in ("gpt-4o", "gpt-4"):
            encoding = get_encoding("o200k_base" if model == "gpt-4o" else "cl100k_base")

            def ours(model: str = model, text: str = text) -> object:
                return count_tokens(text, model)

            def raw(encoding: object = encoding, text: str = text) -> object:
                return encoding.encode(text, disallowed_special=())  # type: ignore[attr-defined]

            t_ours = _best_seconds(ours, repeat)
            t_raw = _best_seconds(raw, repeat)
            print(
                f"{label:30} {megabytes:5.2f} {model:8} {megabytes / t_ours:18.1f} "
                f"{megabytes / t_raw:14.1f}"
            )
        o200k = count_tokens(text, "gpt-4o").tokens
        cl100k = count_tokens(text, "gpt-4").tokens
        print(f"{label:30} tokens o200k {o200k:,}, cl100k {cl100k:,}, ratio {cl100k / o200k:.3f}")
    short = "Hello, world! How are you today?"
    n = 20_000 if quick else 200_000
    start = time.perf_counter()
    for _ in range(n):
        count_tokens(short, "gpt-4o")
    print(f"count_tokens of a 32-char prompt: {(time.perf_counter() - start) / n * 1e6:.2f} µs")
