"""Two source trees' bookkeeping path side by side, interleaved: what a change did to the cost
of one reserve + commit, measured on a shared machine.

``python -m benchmarks.bookkeeping_ab --base /work/wt/before [--new DIR] [--rounds 8]
[--pairs 4000] [--only pair/memory,tracked/sqlite]``

``DIR`` is a tree's root (the folder holding ``src/costwarden``; for the tree before a change:
``git worktree add --detach /tmp/before <commit>``); ``--new`` defaults to this checkout. Each
tree runs in its own subprocess, with its own ``.venv/bin/python`` when it has one (else this
interpreter) and its ``src`` first on ``PYTHONPATH``; the two alternate for ``--rounds`` rounds,
the order reversed every round, so drifting load from other jobs falls on both alike.

The worker uses only calls both sides of issue 12 have (``BudgetManager(budget, ledger=...)``,
``reserve``, ``commit``, ``set_default_budget``, ``UsageRecord``, ``Usage``,
``costwarden.tokens.count_tokens``, the default catalogue, ``CallAccount``/``estimate_call``).
Its scenarios, each warmed, then timed in blocks of ``--pairs`` (``/5`` on SQLite):

- ``pair/memory``, ``pair/sqlite``: ``reserve(estimate)`` + ``commit(UsageRecord(model, in, out))``
  priced from the catalogue, global budget only (the SQLite ledger is a file in a temp folder);
- ``pair/memory-user``: the same attributed to one of ten users, with a default user budget;
- ``tracked/memory``, ``tracked/sqlite``: bench_ledger's "bookkeeping of one tracked call":
  count the prompt's tokens, price it with a max_tokens bound, then the pair;
- ``clients/memory``: bench_clients' "bookkeeping only": ``estimate_call`` + ``CallAccount`` +
  ``succeed``.

Printed per round and as medians with ranges: CPU µs per pair (``time.process_time``: the
figure least moved by other processes) and wall µs, and the ratio new/base of each round's pair
(its median and range). The load average is printed before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SCENARIOS = (
    "pair/memory",
    "pair/sqlite",
    "pair/memory-user",
    "tracked/memory",
    "tracked/sqlite",
    "clients/memory",
)

_WORKER = r"""
import json, logging, os, random, sys, time
from pathlib import Path
from costwarden import Budget, BudgetManager, Usage, UsageRecord
from costwarden.money import nanos_to_usd
from costwarden.pricing import default_catalog
from costwarden.tokens import count_tokens

logging.disable(logging.WARNING)
tmp, pairs, blocks = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
chosen = sys.argv[4].split(",")
MARKED = sys.argv[5:] == ["marked"]
MODEL = "gpt-4o-mini"
WORDS = ("budget", "ledger", "token", "limit", "spend", "model", "reply", "prompt", "cost")
rng = random.Random(7)
PROMPTS = [" ".join(rng.choices(WORDS, k=rng.randint(5, 80))) for _ in range(64)]
OUTS = [rng.randint(1, 256) for _ in range(64)]
ROOMY = dict(daily_limit=1_000_000.0, monthly_limit=10_000_000.0, per_request_limit=None)
catalog = default_catalog()

def manager(ledger, per_user=False):
    mgr = BudgetManager(Budget(**ROOMY), ledger=ledger)
    if per_user:
        mgr.set_default_budget("user", Budget(**ROOMY))
    return mgr

def pair_loop(mgr, n, per_user=False):
    for i in range(n):
        user = f"user-{i % 10}" if per_user else None
        hold = mgr.reserve(0.0004, user=user)
        mgr.commit(hold, UsageRecord(MODEL, 120 + (i & 63), OUTS[i & 63], user_id=user))

def tracked_loop(mgr, n):
    for i in range(n):
        prompt = PROMPTS[i & 63]
        est = catalog.cost_nanos(
            MODEL, Usage(input_tokens=count_tokens(prompt, MODEL).tokens, output_tokens=256)
        )
        hold = mgr.reserve(nanos_to_usd(est))
        mgr.commit(hold, UsageRecord(MODEL, 120 + (i & 63), OUTS[i & 63]))

def clients_loop(mgr, n):
    try:
        from costwarden.clients import Attribution, CallAccount, estimate_call
    except ImportError:
        from costwarden.clients.accounting import Attribution, CallAccount, estimate_call
    args = {"model": MODEL, "messages": [{"role": "user", "content": "One word for thrift."}],
            "max_tokens": 16}
    who = Attribution()
    for _ in range(n):
        est = estimate_call(mgr.pricing, "chat", args, MODEL, provider="openai")
        account = CallAccount(mgr, est, who, api="chat", provider="openai")
        account.succeed(Usage(12, 3), model=MODEL, request_id="r")

def run(name):
    kind, ledger_kind = name.split("/")
    per_user = ledger_kind == "memory-user"
    ledger = f"sqlite:///{tmp / (kind + '.db')}" if ledger_kind == "sqlite" else "memory://"
    n = pairs // 5 if ledger_kind == "sqlite" else pairs
    loop = {"pair": lambda m, k: pair_loop(m, k, per_user), "tracked": tracked_loop,
            "clients": clients_loop}[kind]
    cpu, wall = [], []
    with manager(ledger, per_user) as mgr:
        loop(mgr, 300)  # warm caches, plans, statements
        if MARKED:  # under callgrind --dump-before=os_getppid: one counted block
            os.getppid()
            loop(mgr, n)
            os.getppid()
            return {"pairs": n}
        for _ in range(blocks):
            c0, w0 = time.process_time(), time.perf_counter()
            loop(mgr, n)
            cpu.append((time.process_time() - c0) / n * 1e6)
            wall.append((time.perf_counter() - w0) / n * 1e6)
    return {"cpu": sorted(cpu)[len(cpu) // 2], "wall": sorted(wall)[len(wall) // 2]}

print(json.dumps({name: run(name) for name in chosen}))
"""


def _python(tree: Path) -> str:
    venv = tree / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def _run(tree: Path, pairs: int, blocks: int, chosen: list[str]) -> dict[str, dict[str, float]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COSTWARDEN_")}
    env["PYTHONPATH"] = str(tree / "src")
    with tempfile.TemporaryDirectory(prefix="cw-book-ab-") as d:
        done = subprocess.run(
            [_python(tree), "-c", _WORKER, d, str(pairs), str(blocks), ",".join(chosen)],
            env=env,
            cwd=d,
            capture_output=True,
            text=True,
            timeout=900,
        )
    if done.returncode != 0:
        raise SystemExit(f"worker in {tree} failed ({done.returncode}):\n{done.stderr}")
    result: dict[str, dict[str, float]] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _instructions(tree: Path, pairs: int, chosen: list[str]) -> dict[str, float]:
    """Instructions per pair of each scenario, counted by callgrind (deterministic: what the
    machine's load cannot move). The worker calls ``os.getppid()`` before and after one block
    of each scenario; ``--dump-before=os_getppid`` dumps the counts at each call, so every
    second dump holds one block."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COSTWARDEN_")}
    env |= {"PYTHONPATH": str(tree / "src"), "PYTHONHASHSEED": "0"}
    with tempfile.TemporaryDirectory(prefix="cw-book-cg-") as d:
        out = Path(d) / "cg.out"
        cmd = ["valgrind", "--tool=callgrind", "--dump-before=os_getppid"]
        cmd += [f"--callgrind-out-file={out}", _python(tree), "-c", _WORKER]
        cmd += [d, str(pairs), "1", ",".join(chosen), "marked"]
        done = subprocess.run(cmd, env=env, cwd=d, capture_output=True, text=True, timeout=3600)
        if done.returncode != 0:
            raise SystemExit(f"callgrind worker in {tree} failed:\n{done.stderr[-3000:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        dumps = sorted(Path(d).glob("cg.out.*"), key=lambda f: int(f.suffix[1:]))
        totals = [_total(f) for f in dumps]
    # dumps: [start..before 1st block], [1st block], [between], [2nd block], ...
    return {s: totals[2 * i + 1] / result[s]["pairs"] for i, s in enumerate(chosen)}


def _total(dump: Path) -> int:
    with dump.open() as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise SystemExit(f"{dump} has no totals line")


def _span(values: list[float], fmt: str = "{:.1f}") -> str:
    med = statistics.median(values)
    return f"{fmt.format(med)} [{fmt.format(min(values))}-{fmt.format(max(values))}]"


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} / {five:.2f} (1 / 5 min) on {os.cpu_count()} cores"


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, type=Path, help="the tree before (its root)")
    parser.add_argument("--new", default=ROOT, type=Path, help="the tree after (default: this)")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--pairs", type=int, default=4000, help="pairs per timed block")
    parser.add_argument("--blocks", type=int, default=3, help="timed blocks per scenario")
    parser.add_argument("--only", default=",".join(SCENARIOS))
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="also count instructions per pair under callgrind (valgrind; minutes per tree)",
    )
    opts = parser.parse_args(argv)
    chosen = [s for s in opts.only.split(",") if s]
    unknown = sorted(set(chosen) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenarios {unknown}; choose from {', '.join(SCENARIOS)}")
    trees = {"base": opts.base.resolve(), "new": opts.new.resolve()}
    for tree in trees.values():
        if not (tree / "src" / "costwarden").is_dir():
            parser.error(f"{tree} has no src/costwarden: pass a tree's root")
    print(f"# bookkeeping A/B: base {trees['base']}, new {trees['new']}; {_load()}")
    runs: dict[str, list[dict[str, dict[str, float]]]] = {"base": [], "new": []}
    for r in range(opts.rounds):
        order = ("base", "new") if r % 2 == 0 else ("new", "base")
        for side in order:
            runs[side].append(_run(trees[side], opts.pairs, opts.blocks, chosen))
        cells = "  ".join(
            f"{s} {runs['base'][-1][s]['cpu']:.1f}->{runs['new'][-1][s]['cpu']:.1f}" for s in chosen
        )
        print(f"round {r + 1}/{opts.rounds} (CPU µs/pair base->new): {cells}", flush=True)
    print(
        f"\n{'scenario':18} {'CPU µs base':>22} {'CPU µs new':>22} {'new/base (CPU)':>22}"
        f" {'wall µs base':>14} {'wall µs new':>12}"
    )
    for s in chosen:
        base = [run[s]["cpu"] for run in runs["base"]]
        new = [run[s]["cpu"] for run in runs["new"]]
        ratios = [n / b for n, b in zip(new, base, strict=True)]
        wall_b = statistics.median(run[s]["wall"] for run in runs["base"])
        wall_n = statistics.median(run[s]["wall"] for run in runs["new"])
        print(
            f"{s:18} {_span(base):>22} {_span(new):>22} {_span(ratios, '{:.3f}'):>22}"
            f" {wall_b:>14.1f} {wall_n:>12.1f}"
        )
    if opts.instructions:
        pairs = max(opts.pairs // 4, 500)
        counted = {side: _instructions(trees[side], pairs, chosen) for side in ("base", "new")}
        print(f"\ninstructions per pair (callgrind, {pairs} pairs; SQLite {pairs // 5}):")
        for s in chosen:
            b, n = counted["base"][s], counted["new"][s]
            print(f"{s:18} base {b / 1e3:8.1f}k  new {n / 1e3:8.1f}k  new/base {n / b:.3f}")
    print(f"# after: {_load()}")


if __name__ == "__main__":
    main(sys.argv[1:])
