"""Run every ``benchmarks/bench_*.py`` (or the ones named) and print their figures.

Each module has a ``main(argv: list[str]) -> None``. Peers (genai-prices' own ``calc_price``,
LiteLLM) are measured side by side in the same run; LiteLLM is installed into a throwaway venv
by the benchmark that needs it, never made a dependency.
"""

from __future__ import annotations

import importlib
import pkgutil
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path


def main(argv: list[str]) -> None:
    names = sorted(
        m.name
        for m in pkgutil.iter_modules([str(Path(__file__).parent)])
        if m.name.startswith("bench_")
    )
    chosen = [a for a in argv if not a.startswith("-")]
    if chosen:
        names = [n for n in names if any(c in n for c in chosen)]
    print(f"# costwarden benchmarks, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"# {platform.processor() or platform.machine()}, Python {platform.python_version()}")
    for name in names:
        print(f"\n## {name}")
        module = importlib.import_module(f"benchmarks.{name}")
        module.main([a for a in argv if a.startswith("-")])


if __name__ == "__main__":
    main(sys.argv[1:])
