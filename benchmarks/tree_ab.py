"""Any of the benchmarks in two source trees, interleaved: a before/after in one run.

``python -m benchmarks.tree_ab --base DIR [--new DIR] [--rounds R] [--logs DIR] NAME [ARGS...]
[-- NAME [ARGS...] ...]``

``DIR`` is a checkout with its own ``.venv`` (``make install`` there), e.g. the tree before a
change: ``git worktree add --detach /tmp/before <commit> && make -C /tmp/before install``.
``--new`` defaults to this checkout. Each round runs ``python -m benchmarks NAME ARGS`` in
the base tree, then in the new one, then reverses the order for the next round, so load that
drifts during the run falls on both alike. Each tree runs its own benchmark code with its own
interpreter and packages, as a user of that tree would.

Every output is kept in ``--logs`` (default: a temporary folder, named at the end). The
comparison pairs the lines of the two outputs that read the same once their numbers are
taken out (a table row with the same label, say) and prints, per number, the median of each
tree over the rounds, the range, and new/base. It reads the figures as printed; which of
them are times (lower is better) and which are rates is for the reader of the row.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?")


def skeleton(line: str) -> str:
    """The line with its numbers replaced, which pairs a row of one output with the same row
    of the other."""
    return NUMBER.sub("#", line.strip())


def numbers(line: str) -> list[float]:
    return [float(n.replace(",", "")) for n in NUMBER.findall(line)]


def run_one(tree: Path, command: list[str], log: Path) -> list[str]:
    python = tree / ".venv" / "bin" / "python"
    if not python.exists():
        raise SystemExit(f"{tree} has no .venv: run `make install` there first")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    started = time.monotonic()
    done = subprocess.run(
        [str(python), "-m", "benchmarks", *command],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    log.write_text(done.stdout + done.stderr)
    seconds = time.monotonic() - started
    load = os.getloadavg()[0]
    print(
        f"  {tree.name:>12}: {' '.join(command)}: exit {done.returncode}, "
        f"{seconds:.0f} s, load {load:.1f}, log {log}",
        flush=True,
    )
    return done.stdout.splitlines() if done.returncode == 0 else []


def compare(base_runs: list[list[str]], new_runs: list[list[str]]) -> None:
    """Print each row both trees printed in every round, medians per number."""

    sample: dict[str, str] = {}

    def rows(runs: list[list[str]]) -> dict[str, list[list[float]]]:
        found: dict[str, list[list[float]]] = defaultdict(list)
        for lines in runs:
            seen: dict[str, int] = defaultdict(int)
            for line in lines:
                key = skeleton(line)
                if "#" not in key:
                    continue
                seen[key] += 1
                found[f"{key}\x00{seen[key]}"].append(numbers(line))
                sample.setdefault(f"{key}\x00{seen[key]}", line.strip())
        return found

    base, new = rows(base_runs), rows(new_runs)
    for key, base_values in base.items():
        new_values = new.get(key)
        if not new_values or len(base_values) < len(base_runs) or len(new_values) < len(new_runs):
            continue
        label = sample[key]
        cells = []
        for i in range(len(base_values[0])):
            b = [v[i] for v in base_values if len(v) > i]
            n = [v[i] for v in new_values if len(v) > i]
            if not b or not n:
                continue
            mb, mn = statistics.median(b), statistics.median(n)
            if mb == mn:
                continue
            ratio = f"{mn / mb:.2f}x" if mb else "-"
            cells.append(
                f"{mb:g} [{min(b):g}-{max(b):g}] -> {mn:g} [{min(n):g}-{max(n):g}] ({ratio})"
            )
        if cells:
            print(f"  {label}")
            for cell in cells:
                print(f"      {cell}")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tree_ab")
    parser.add_argument("--base", required=True, type=Path)
    parser.add_argument("--new", type=Path, default=ROOT)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--logs", type=Path)
    parser.add_argument("commands", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    commands: list[list[str]] = [[]]
    for word in args.commands:
        if word == "--":
            commands.append([])
        else:
            commands[-1].append(word)
    commands = [c for c in commands if c]
    if not commands:
        parser.error("name at least one benchmark, e.g. `pricing --quick`")
    logs = args.logs or Path(tempfile.mkdtemp(prefix="cw-tree-ab-"))
    logs.mkdir(parents=True, exist_ok=True)
    trees = {"base": args.base.resolve(), "new": args.new.resolve()}
    for command in commands:
        print(f"# {' '.join(command)}: base {trees['base']}, new {trees['new']}", flush=True)
        outputs: dict[str, list[list[str]]] = {"base": [], "new": []}
        for r in range(args.rounds):
            order = ["base", "new"] if r % 2 == 0 else ["new", "base"]
            for side in order:
                log = logs / f"{command[0]}-{side}-{r + 1}.log"
                outputs[side].append(run_one(trees[side], command, log))
        compare([o for o in outputs["base"] if o], [o for o in outputs["new"] if o])
    print(f"# logs in {logs}")


if __name__ == "__main__":
    main(sys.argv[1:])
