"""Two source trees of the gateway side by side, interleaved: what a change did, measured on a
shared machine.

``python -m benchmarks.gateway_ab --base DIR [--new DIR] [--ledgers sqlite,pg] [--workers N]
[--rate RPS] [--seconds S] [--rounds R] [--stream]``

``DIR`` is a tree's ``src`` folder (for the tree before a change: ``git worktree add --detach
/tmp/before main`` or ``git archive main | tar -x -C /tmp/before``, then ``/tmp/before/src``);
``--new`` defaults to this checkout's. Both gateways run at once (``costwarden serve`` with the
tree first on ``PYTHONPATH``, each on its own SQLite file or PostgreSQL schema, the benchmark's
budgets and key) behind one fake upstream (``gateway_upstream.py``), and the open-loop load
generator of ``bench_gateway`` drives them in turn, the order reversed every round, so drifting
load from other jobs falls on both alike. With ``--stream`` each level is preceded by the same
level direct to the upstream, and the time to first byte added is the difference.

Printed per round and as medians: CPU ms per request (the servers' utime + stime over the
requests answered: the figure least moved by the machine's load), p50 and p99, RSS per
process, and the ratios new/base. Absolute figures from a loaded machine are not the record
(docs/benchmarks.md says where they come from); the ratios are what this is for.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks import bench_gateway as bg

ROOT = Path(__file__).resolve().parent.parent

_KEY = """
import sys
from costwarden.budget import Budget
from costwarden.keys import create_key
from costwarden.ledger import open_ledger
ledger = open_ledger(sys.argv[1])
_, secret = create_key(
    ledger, user="bench", budget=Budget(daily_limit=1e6, monthly_limit=None, per_request_limit=None)
)
ledger.close()
print(secret)
"""


def _start(src: str, name: str, upstream: str, ledger: str, workers: int, d: Path) -> bg.Server:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COSTWARDEN_")}
    env["PYTHONPATH"] = os.pathsep.join([src, str(ROOT)])
    if ledger.startswith("postgresql"):
        bg._reset_pg_schema(ledger)
    config = bg.write_config(d / f"{name}.toml", ledger, upstream)
    made = subprocess.run(
        [sys.executable, "-c", _KEY, ledger],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    secret = made.stdout.strip().splitlines()[-1]
    port = bg.free_port()
    exe = str(Path(sys.executable).parent / "costwarden")
    cmd = [exe, "serve", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--workers", str(workers), "--config", str(config)]
    log = (d / f"{name}.log").open("wb")
    proc = subprocess.Popen(cmd, cwd=d, env=env, stderr=log, stdout=log)
    return bg.Server(name, f"http://127.0.0.1:{port}/v1/chat/completions", secret, proc)


def _ledger_url(kind: str, variant: str, d: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{d / variant}.db"
    base = os.environ.get(bg.PG_URL_ENV, bg.PG_DEFAULT).partition("?")[0]
    return f"{base}?schema=cw_bench_ab_{variant}"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.gateway_ab")
    p.add_argument("--base", required=True, help="the src folder of the tree before")
    p.add_argument("--new", default=str(ROOT / "src"), help="the src folder of the tree after")
    p.add_argument("--ledgers", default="sqlite,pg")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--rate", type=int, default=300)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--stream", action="store_true")
    args = p.parse_args(argv)
    trees = {"base": str(Path(args.base).resolve()), "new": str(Path(args.new).resolve())}
    print(f"(load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores)", flush=True)
    with tempfile.TemporaryDirectory(prefix="cw-bench-ab-") as tmp:
        d = Path(tmp)
        up_port = bg.free_port()
        up = bg.start_upstream(up_port)
        upstream = f"http://127.0.0.1:{up_port}/v1"
        direct = bg.Server("direct", upstream + "/chat/completions")
        servers: dict[tuple[str, str], bg.Server] = {}
        try:
            bg.wait_ready(direct, 20)
            for kind in args.ledgers.split(","):
                for variant, src in trees.items():
                    url = _ledger_url(kind, variant, d)
                    name = f"{variant}-{kind}-{args.workers}"
                    servers[(variant, kind)] = _start(src, name, upstream, url, args.workers, d)
            for server in servers.values():
                bg.wait_ready(server, 60)
                bg.run_load(server, 100, 2, stream=args.stream)  # warm-up
            results: dict[tuple[str, str], list[dict[str, Any]]] = {k: [] for k in servers}
            for r in range(args.rounds):
                order = list(servers) if r % 2 == 0 else list(reversed(servers))
                for key in order:
                    ref = (
                        bg.run_load(direct, args.rate, args.seconds, stream=True)
                        if args.stream
                        else None
                    )
                    x = bg.run_load(servers[key], args.rate, args.seconds, stream=args.stream)
                    if (
                        ref is not None
                        and x["ttfb_p50"] is not None
                        and ref["ttfb_p50"] is not None
                    ):
                        x["ttfb_added"] = x["ttfb_p50"] - ref["ttfb_p50"]
                    results[key].append(x)
                    print(f"  {'/'.join(key):12} {bg.fmt_level(x)}", flush=True)
            _summary(results, servers, args.stream)
        finally:
            for server in servers.values():
                if server.proc is not None:
                    bg.stop(server.proc)
            bg.stop(up)


def _median(runs: list[dict[str, Any]], field: str) -> float | None:
    values = [r[field] for r in runs if r.get(field) is not None]
    return statistics.median(values) if values else None


def _summary(
    results: dict[tuple[str, str], list[dict[str, Any]]],
    servers: dict[tuple[str, str], bg.Server],
    stream: bool,
) -> None:
    print("\nmedians over the rounds:")
    for key, runs in results.items():
        cpu, p50, p99 = (_median(runs, f) for f in ("cpu_ms_per_req", "p50", "p99"))
        line = f"  {'/'.join(key):12} CPU {cpu or 0:.3f} ms/req  p50 {1000 * (p50 or 0):.1f} ms"
        line += f"  p99 {1000 * (p99 or 0):.1f} ms"
        if stream:
            added = _median(runs, "ttfb_added")
            line += "  TTFB added -" if added is None else f"  TTFB added {1000 * added:.2f} ms"
        rss = ", ".join(f"{bg.rss_mb(pid):.0f}" for pid in servers[key].pids())
        print(f"{line}  RSS MB {rss}")
    for kind in sorted({k for _, k in results}):
        if ("base", kind) not in results or ("new", kind) not in results:
            continue
        for field, label in (("cpu_ms_per_req", "CPU/req"), ("ttfb_added", "TTFB added")):
            b, n = _median(results[("base", kind)], field), _median(results[("new", kind)], field)
            if b and n is not None:
                print(f"  {kind}: {label} new/base = {n / b:.3f}")


if __name__ == "__main__":
    main()
