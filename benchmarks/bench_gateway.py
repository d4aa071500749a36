"""The gateway against a bare passthrough and the LiteLLM proxy, side by side in one run.

``python -m benchmarks gateway [--quick] [--only=direct,gw-sqlite-2,...]``. Every part is its
own process on 127.0.0.1, sharing the machine's cores:

* the fake upstream (``gateway_upstream.py``): OpenAI Chat Completions after a fixed 50 ms;
* the system under test: ``direct`` (no proxy: the reference every "added" figure is taken
  against), ``passthrough-N`` (``gateway_passthrough.py``: uvicorn + httptools + uvloop with an
  aiohttp client, no keys, no bookkeeping: the floor of this stack), ``gw-sqlite-N`` and
  ``gw-pg-N`` (``costwarden serve --workers N`` with a virtual key, a key budget, a user and a
  global budget, so every request is authenticated, estimated, held on three budgets and
  settled in the ledger, and logged as one JSON line), and ``litellm-N`` (LiteLLM's proxy from
  PyPI in a throwaway venv, with a model-level ``max_budget``/``budget_duration``: its
  key/user budgets need Prisma engine binaries that cannot be downloaded here);
* the open-loop load generator (``gateway_load.py``): request ``i`` is scheduled at
  ``i / RATE`` and timed from that moment, whatever the server does (like wrk2, not wrk).

Per system: 100, 500 and 1,000 RPS for ``LEVEL_S`` seconds each (after 1 s of warm-up at the
same rate); a higher level is skipped once a lower one was not sustained. **Sustained** means
at least 95% of the offered requests answered 200 within the 5 s timeout and p99 under 1 s,
over the whole level. The highest sustained RPS is then searched on a ladder of rates (a few
probes, bounded). CPU per request is the servers' utime + stime (``/proc/<pid>/stat`` of the
whole process tree, workers and supervisor) over the measured window, divided by the requests
answered; RSS is each process's ``VmRSS``, read after every sustained level until the first
level that is not (the footprint under a load it carries; the target is held against the
largest) and again after the run
(which includes any overloaded level's queue of thousands of waiting requests). Streaming:
time to the first body byte at 100 RPS with ``"stream": true`` (at the sustained rate if
that is lower), minus the same figure direct, measured right before it (the load of a shared
machine drifts).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.peers import PEER_ENV, PeerUnavailable, ensure_venv

ROOT = Path(__file__).resolve().parent.parent
LEVELS = (100, 500, 1000)
LADDER = (
    25, 50, 75, 100, 150, 200, 300, 400, 500, 700, 1000, 1250, 1500, 1750, 2000, 2250, 2500,
    2750, 3000, 3500, 4000,
)  # fmt: skip
"""The rates the sustained search may try: steps of 10-15% above 1,000 RPS."""
TIMEOUT_S = 5.0
SUSTAINED_P99_S = 1.0
SUSTAINED_SHARE = 0.95
PG_URL_ENV = "COSTWARDEN_BENCH_GATEWAY_PG"
PG_DEFAULT = "postgresql://root@127.0.0.1:5432/test?schema=cw_bench_gateway"
# litellm[proxy]==1.110.2 asks for ``litellm-proxy==1.110.2``, ``litellm-proxy-extras==
# 0.4.114.post1`` and ``litellm-enterprise==0.1.83.post1``, which the package index does not
# have. The proxy's code is in the litellm wheel itself (the extras are Prisma migrations and
# enterprise hooks, unused without a database), so the venv gets litellm and the rest of the
# ``proxy`` extra's requirements, as its metadata lists them.
LITELLM_PROXY = " ".join(
    [
        "litellm==1.110.2",
        "gunicorn>=23.0.0,<24.0 uvicorn>=0.33.0,<1.0 granian>=2.7.4,<3.0 uvloop>=0.22.1,<1.0",
        "fastapi>=0.136.3,<1.0 starlette>=1.0.1,<2.0 backoff>=2.2.1,<3.0 pyyaml>=6.0.3,<7.0",
        "rq>=2.7.0,<3.0 orjson>=3.11.6,<4.0 hiredis>=3.0.0,<4.0 apscheduler>=3.11.2,<4.0",
        "fastapi-sso>=0.19.0,<1.0 pyjwt>=2.13.0,<3.0 python-multipart>=0.0.27,<1.0",
        "cryptography>=49.0.0,<51.0 pynacl>=1.6.2,<2.0 websockets>=15.0.1,<16.0",
        "boto3>=1.43.117,<2.0 azure-identity>=1.25.2,<2.0 azure-storage-blob>=12.28.0,<13.0",
        "mcp>=2.3.0,<3 httpx2>=2.10.0,<3 pydantic>=2.12.0,<3",
        "restrictedpython>=8.5,<9.0 rich>=13.9.4,<14.0 inquirerpy>=0.3.4,<1.0",
        "tomlkit>=0.13.3,<1.0 polars>=1.38.1,<2.0 soundfile>=0.12.1,<1.0",
        "pyroscope-io>=0.8.16,<1.0 expression>=5.6.0,<6.0 backports-zstd>=1.0.0,<2.0",
        "semver>=3.0.4,<4",
    ]
)
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Server:
    """A running system under test: its URL, the key to send, its process (tree root)."""

    name: str
    url: str
    key: str = ""
    proc: subprocess.Popen[bytes] | None = None

    def pids(self) -> list[int]:
        return [] if self.proc is None else process_tree(self.proc.pid)


@dataclass
class Figures:
    """Everything measured for one system."""

    name: str
    levels: dict[int, dict[str, Any] | None] = field(default_factory=dict)
    stream: dict[str, Any] | None = None
    sustained: int = 0
    probes: list[tuple[int, bool]] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)
    """Per process, after the run (an overloaded level's queue included)."""
    rss_sustained_mb: list[float] = field(default_factory=list)
    """Per process, the largest reading taken right after a sustained level."""
    skipped: str = ""
    cpu_at: int = 0
    cpu_ms: float | None = None
    stream_rate: int = 100
    stream_direct: dict[str, Any] | None = None


# -- processes ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants (from the ppid field of /proc/*/stat)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    out: list[int] = []
    todo = [root]
    while todo and len(out) < 1000:
        pid = todo.pop()
        out.append(pid)
        todo.extend(parents.get(pid, []))
    return out


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / CLK_TCK


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process we started (uvicorn passes it to its workers), then SIGKILL it."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            for pid in reversed(process_tree(proc.pid)):
                with suppress(OSError):
                    os.kill(pid, 9)
            proc.wait(5)


def wait_ready(server: Server, timeout: float) -> None:
    """Poll one chat completion until it is answered 200 (bounded by ``timeout``)."""
    deadline = time.monotonic() + timeout
    body = json.dumps(
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    ).encode()
    last = ""
    while time.monotonic() < deadline:
        if server.proc is not None and server.proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {server.proc.returncode}")
        req = urllib.request.Request(
            server.url, data=body, headers={"content-type": "application/json"}
        )
        if server.key:
            req.add_header("authorization", f"Bearer {server.key}")
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        time.sleep(0.3)
    raise RuntimeError(f"{server.name} not ready after {timeout:g} s: {last}")


# -- load ---------------------------------------------------------------------------------------


def run_load(
    server: Server, rate: float, seconds: float, *, stream: bool = False
) -> dict[str, Any]:
    """One open-loop level from the load generator's process; adds the servers' CPU/request."""
    cmd = [sys.executable, "-m", "benchmarks.gateway_load", server.url, str(rate), str(seconds)]
    cmd += ["--timeout", str(TIMEOUT_S)]
    if stream:
        cmd.append("--stream")
    if server.key:
        cmd += ["--key", server.key]
    pids = server.pids()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    cpu0 = cpu_seconds(pids)
    result: dict[str, Any] = {}
    for line in proc.stdout:
        if line.strip() == "START":
            cpu0 = cpu_seconds(pids)
        elif line.startswith("{"):
            result = json.loads(line)
    cpu1 = cpu_seconds(pids)
    proc.wait(TIMEOUT_S + 10)
    if not result:
        raise RuntimeError(f"the load generator failed (exit {proc.returncode})")
    result["cpu_ms_per_req"] = 1000 * (cpu1 - cpu0) / max(1, result["ok"]) if pids else None
    return result


def sustained(r: dict[str, Any] | None) -> bool:
    if r is None or r["p99"] is None:
        return False
    return bool(r["ok"] >= SUSTAINED_SHARE * r["scheduled"] and r["p99"] < SUSTAINED_P99_S)


def fmt_level(r: dict[str, Any]) -> str:
    def ms(v: float | None) -> str:
        return "-" if v is None else f"{1000 * v:7.1f}"

    cpu = r.get("cpu_ms_per_req")
    return (
        f"ok {r['ok']:5}/{r['scheduled']:<5} p50 {ms(r['p50'])} ms  p99 {ms(r['p99'])} ms  "
        f"ttfb p50 {ms(r['ttfb_p50'])} ms  cpu/req {'-' if cpu is None else f'{cpu:.2f}'} ms  "
        f"send lag p99 {ms(r['send_lag_p99'])} ms  errors {r['errors'] or '-'}"
    )


def settle(server: Server, timeout: float = 20.0) -> None:
    """After an overloaded level, wait (bounded) until one request is answered within 300 ms
    again, so that the backlog of abandoned requests does not pollute the next level."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        t0 = time.perf_counter()
        with suppress(RuntimeError):
            wait_ready(server, 5)
        if time.perf_counter() - t0 < 0.3:
            return
        time.sleep(1)


def measure(
    server: Server, level_s: float, max_probes: int, direct: Server | None = None
) -> Figures:
    fig = Figures(server.name)
    runs: list[tuple[int, dict[str, Any]]] = []
    overloaded = False

    def level(rate: int, label: str = "") -> dict[str, Any]:
        nonlocal overloaded
        r = run_load(server, rate, level_s)
        runs.append((rate, r))
        print(f"  {server.name:14} {rate:5} RPS{label}: {fmt_level(r)}", flush=True)
        if sustained(r) and not overloaded:  # an overload's queue stays in the heap after it
            now = [rss_mb(p) for p in server.pids()]
            seen = fig.rss_sustained_mb + [0.0] * (len(now) - len(fig.rss_sustained_mb))
            fig.rss_sustained_mb = [max(a, b) for a, b in zip(seen, now, strict=False)]
        if not sustained(r):
            overloaded = True
            settle(server)
        return r

    failed = False
    for rate in LEVELS:
        if failed:
            fig.levels[rate] = None
            print(f"  {server.name:14} {rate:5} RPS: skipped (a lower rate was not sustained)")
            continue
        fig.levels[rate] = level(rate)
        failed = not sustained(fig.levels[rate])
    good = [rate for rate in LEVELS if sustained(fig.levels.get(rate))]
    lo = max(good, default=0)
    bad = [rate for rate in LEVELS if fig.levels.get(rate) is not None and rate not in good]
    hi = min(bad, default=10**9)
    for _ in range(max_probes):
        between = [r for r in LADDER if lo < r < hi]
        if not between:
            break
        if hi < 10**9:  # bisect between the highest sustained rate and the lowest failed one
            rate = between[len(between) // 2]
        else:  # nothing failed yet: gallop (x1.5), so that a few probes reach the top
            rate = next((r for r in between if r >= lo * 1.5), between[-1])
        ok = sustained(level(rate, " (probe)"))
        fig.probes.append((rate, ok))
        if ok:
            lo = rate
        else:
            hi = rate
    fig.sustained = lo
    # CPU per request: at 500 RPS, or at the sustained rate nearest to it.
    kept = [(rate, r) for rate, r in runs if sustained(r) and r.get("cpu_ms_per_req") is not None]
    if kept:
        fig.cpu_at = min(kept, key=lambda x: abs(x[0] - 500))[0]
        fig.cpu_ms = kept[[rate for rate, _ in kept].index(fig.cpu_at)][1]["cpu_ms_per_req"]
    # Streaming at 100 RPS, or at the highest sustained rate if that is lower.
    fig.stream_rate = min(100, max(lo, LADDER[0]))
    stream_s = max(3.0, level_s / 2)
    if direct is not None:  # the reference right before, so that drifting load cancels out
        fig.stream_direct = run_load(direct, fig.stream_rate, stream_s, stream=True)
    fig.stream = run_load(server, fig.stream_rate, stream_s, stream=True)
    print(f"  {server.name:14} stream {fig.stream_rate} RPS: {fmt_level(fig.stream)}", flush=True)
    fig.rss_mb = [rss_mb(p) for p in server.pids()]
    return fig


# -- the systems --------------------------------------------------------------------------------


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COSTWARDEN_")}
    env["PYTHONPATH"] = str(ROOT)
    return env


def start_upstream(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.gateway_upstream", str(port), "0.05"],
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.DEVNULL,
    )
    return proc


def start_passthrough(upstream: str, workers: int, d: Path) -> Server:
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", "benchmarks.gateway_passthrough:app"]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    cmd += ["--http", "httptools", "--loop", "uvloop", "--no-access-log", "--log-level", "warning"]
    log = (d / f"passthrough-{workers}.log").open("wb")
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env={**_env(), "BENCH_UPSTREAM": upstream}, stderr=log, stdout=log
    )
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    return Server(f"passthrough-{workers}", url, "", proc)


def _reset_pg_schema(url: str) -> None:
    import psycopg

    base, _, query = url.partition("?")
    schema = dict(p.split("=", 1) for p in query.split("&") if "=" in p).get("schema")
    if schema:
        with psycopg.connect(base, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def write_config(path: Path, ledger: str, upstream: str) -> Path:
    """The gateway's costwarden.toml of the benchmark: its ledger, the global and the user's
    budgets, the one upstream and the model routed to it."""
    path.write_text(
        f'ledger = "{ledger}"\n\n'
        "[budget]\ndaily_limit = 1000000.0\nmonthly_limit = 10000000.0\n\n"
        "[budgets.user.bench]\ndaily_limit = 1000000.0\n\n"
        '[gateway]\nlog_level = "info"\n\n'
        '[gateway.upstreams.bench]\nkind = "openai-compatible"\n'
        f'base_url = "{upstream}"\n\n'
        '[gateway.models]\n"gpt-4o-mini" = "bench"\n'
    )
    return path


def start_gateway(upstream: str, ledger: str, workers: int, name: str, d: Path) -> Server:
    from costwarden.budget import Budget
    from costwarden.keys import create_key
    from costwarden.ledger import open_ledger

    if ledger.startswith("postgresql"):
        _reset_pg_schema(ledger)
    config = write_config(d / f"{name}.toml", ledger, upstream)
    ledger_obj: Any = open_ledger(ledger)
    try:
        _, secret = create_key(
            ledger_obj,
            user="bench",
            budget=Budget(daily_limit=1_000_000.0, monthly_limit=None, per_request_limit=None),
        )
    finally:
        ledger_obj.close()
    port = free_port()
    exe = shutil.which("costwarden", path=str(Path(sys.executable).parent)) or "costwarden"
    cmd = [exe, "serve", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--workers", str(workers), "--config", str(config)]
    log = (d / f"{name}.log").open("wb")  # one JSON line per request, as in production
    proc = subprocess.Popen(cmd, cwd=d, env=_env(), stderr=log, stdout=log)
    return Server(name, f"http://127.0.0.1:{port}/v1/chat/completions", secret, proc)


def start_litellm(upstream: str, workers: int, d: Path) -> Server:
    python = ensure_venv("litellm-proxy", LITELLM_PROXY)
    # It refuses to start without a master key; with no database that key is the only one,
    # checked on every request (as the gateway checks its virtual key).
    master = "sk-bench-" + os.urandom(16).hex()
    config = d / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: gpt-4o-mini\n"
        "    litellm_params:\n"
        "      model: openai/gpt-4o-mini\n"
        f"      api_base: {upstream}\n"
        "      api_key: sk-bench\n"
        "      max_budget: 1000000\n"
        "      budget_duration: 1d\n"
        "litellm_settings:\n"
        "  telemetry: false\n"
        "general_settings:\n"
        f"  master_key: {master}\n"
    )
    port = free_port()
    env = {**os.environ, **PEER_ENV}
    env.pop("PYTHONPATH", None)
    cmd = [str(python.parent / "litellm"), "--config", str(config), "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--num_workers", str(workers)]
    log = (d / f"litellm-{workers}.log").open("wb")
    proc = subprocess.Popen(cmd, cwd=d, env=env, stderr=log, stdout=log)
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    return Server(f"litellm-{workers}", url, master, proc)


def systems(upstream: str, pg: str, d: Path, quick: bool) -> list[tuple[str, Callable[[], Server]]]:
    def gw(ledger: str, n: int, name: str) -> Callable[[], Server]:
        return lambda: start_gateway(upstream, ledger, n, name, d)

    sqlite = f"sqlite:///{d / 'gateway.db'}"
    out: list[tuple[str, Callable[[], Server]]] = [
        ("direct", lambda: Server("direct", upstream + "/chat/completions")),
    ]
    for n in (1, 2):
        out.append((f"passthrough-{n}", lambda n=n: start_passthrough(upstream, n, d)))  # type: ignore[misc]
    for n in (1, 2):
        out.append((f"gw-sqlite-{n}", gw(sqlite, n, f"gw-sqlite-{n}")))
    for n in (1, 2):
        out.append((f"gw-pg-{n}", gw(pg, n, f"gw-pg-{n}")))
    out.append(("litellm-2", lambda: start_litellm(upstream, 2, d)))
    if quick:
        keep = {"direct", "passthrough-2", "gw-sqlite-2", "gw-pg-2", "litellm-2"}
        out = [s for s in out if s[0] in keep]
    return out


# -- report -------------------------------------------------------------------------------------


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{1000 * v:.1f}"


def ttfb_added(f: Figures) -> float | None:
    """Streaming time to first byte, p50, minus direct's measured just before it."""
    if f.stream is None or f.stream_direct is None:
        return None
    a, b = f.stream["ttfb_p50"], f.stream_direct["ttfb_p50"]
    return None if a is None or b is None else float(a - b)


def report(figs: dict[str, Figures], load: list[float]) -> None:
    direct = figs.get("direct")
    print(
        f"\nload average during the run: {min(load):.2f}-{max(load):.2f} (1 min, sampled "
        f"between levels) on {os.cpu_count()} cores"
    )
    print(
        "\n| system | added p50 / p99 @100 RPS (ms) | @500 | @1000 | sustained RPS | "
        "CPU ms/req @500 | RSS MB per process, sustained load | stream TTFB added p50 (ms) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, f in figs.items():
        if f.skipped:
            print(f"| {name} | skipped: {f.skipped} | | | | | | |")
            continue
        cells = []
        for rate in LEVELS:
            r, base = f.levels.get(rate), direct.levels.get(rate) if direct else None
            if r is None or r["p50"] is None:
                cells.append("-")
            elif base is None or base["p50"] is None or name == "direct":
                cells.append(f"({_ms(r['p50'])} / {_ms(r['p99'])} abs)")
            else:
                mark = "" if sustained(r) else " (not sustained)"
                cells.append(f"{_ms(r['p50'] - base['p50'])} / {_ms(r['p99'] - base['p99'])}{mark}")
        cpu = "-" if f.cpu_ms is None else f"{f.cpu_ms:.2f}"
        if f.cpu_ms is not None and f.cpu_at != 500:
            cpu += f" (@{f.cpu_at})"
        ttfb = "-"
        if name == "direct" and f.stream:
            ttfb = f"({_ms(f.stream['ttfb_p50'])} abs)"
        elif (added := ttfb_added(f)) is not None:
            ttfb = _ms(added) + ("" if f.stream_rate == 100 else f" (@{f.stream_rate} RPS)")
        rss = ", ".join(f"{m:.0f}" for m in f.rss_sustained_mb if m > 0) or "-"
        after = ", ".join(f"{m:.0f}" for m in f.rss_mb if m > 0)
        if after and after != rss:
            rss += f" (after the run: {after})"
        print(
            f"| {name} | {cells[0]} | {cells[1]} | {cells[2]} | {f.sustained or '<25'} | "
            f"{cpu} | {rss} | {ttfb} |"
        )
    targets(figs, direct)


def targets(figs: dict[str, Figures], direct: Figures | None) -> None:
    def verdict(ok: bool | None) -> str:
        return "n/a" if ok is None else ("MET" if ok else "MISSED")

    print("\ntargets (issue #15):")
    g2 = figs.get("gw-sqlite-2")
    b = direct.levels.get(500) if direct else None
    if g2 and not g2.skipped and b is not None:
        r = g2.levels.get(500)
        if r is None or r["p99"] is None:
            print("  added p99 <= 2 ms at 500 RPS (gw-sqlite-2): not sustained -> MISSED")
        else:
            added = r["p99"] - b["p99"]
            print(
                f"  added p99 <= 2 ms at 500 RPS (gw-sqlite-2): {_ms(added)} ms -> "
                f"{verdict(added <= 0.002)}"
            )
    gws = {n: f for n, f in figs.items() if n.startswith("gw-") and not f.skipped}
    best = max(gws.values(), key=lambda f: f.sustained, default=None)
    lite = figs.get("litellm-2")
    floor = max(
        (f for n, f in figs.items() if n.startswith("passthrough") and not f.skipped),
        key=lambda f: f.sustained,
        default=None,
    )
    if best and lite and not lite.skipped:
        ratio = best.sustained / max(lite.sustained, 1)
        print(
            f"  sustained >= 10x LiteLLM's: {best.name} {best.sustained} vs {lite.name} "
            f"{lite.sustained or '<25'} RPS = {ratio:.1f}x -> {verdict(ratio >= 10)}"
        )
    if best and floor:
        share = best.sustained / max(floor.sustained, 1)
        print(
            f"  sustained >= 60% of the passthrough floor: {best.name} {best.sustained} vs "
            f"{floor.name} {floor.sustained} RPS = {share:.0%} -> {verdict(share >= 0.6)}"
        )
    for name, f in gws.items():
        cpu = f.cpu_ms
        ttfb = ttfb_added(f)
        rss = max(f.rss_sustained_mb, default=0.0)
        peak = max(f.rss_mb, default=0.0)
        print(
            f"  {name}: CPU {'-' if cpu is None else f'{cpu:.2f}'} ms/req (<= 1.5) -> "
            f"{verdict(None if cpu is None else cpu <= 1.5)}; stream TTFB added p50 "
            f"{_ms(ttfb)} ms (<= 1) -> {verdict(None if ttfb is None else ttfb <= 0.001)}; "
            f"RSS max {rss:.0f} MB under sustained load (<= 150) -> "
            f"{verdict(rss <= 150 if rss else None)} ({peak:.0f} MB after the run)"
        )


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    only = next((a.split("=", 1)[1].split(",") for a in argv if a.startswith("--only=")), None)
    level_s = 3.0 if quick else 10.0
    max_probes = 2 if quick else 6  # enough to gallop from 1,000 to the top and bisect back
    pg = os.environ.get(PG_URL_ENV, PG_DEFAULT)
    load = [os.getloadavg()[0]]
    print(
        f"(load average {load[0]:.2f} at the start on {os.cpu_count()} cores; "
        f"{level_s:g} s per level after 1 s of warm-up; upstream answers after 50 ms)"
    )
    figs: dict[str, Figures] = {}
    with tempfile.TemporaryDirectory(prefix="cw-bench-gw-") as tmp:
        d = Path(tmp)
        up_port = free_port()
        upstream_proc = start_upstream(up_port)
        upstream = f"http://127.0.0.1:{up_port}/v1"
        try:
            wait_ready(Server("upstream", upstream + "/chat/completions"), 20)
            for name, start in systems(upstream, pg, d, quick):
                if only and name not in only and name != "direct":
                    continue
                try:
                    server = start()
                except (PeerUnavailable, RuntimeError, OSError, ImportError) as exc:
                    figs[name] = Figures(name, skipped=str(exc)[:200])
                    print(f"  {name}: skipped ({exc})")
                    continue
                try:
                    wait_ready(server, 120 if name.startswith("litellm") else 30)
                    ref = (
                        None
                        if name == "direct"
                        else Server("direct", upstream + "/chat/completions")
                    )
                    figs[name] = measure(server, level_s, max_probes, ref)
                except RuntimeError as exc:
                    figs[name] = Figures(name, skipped=str(exc)[:200])
                    print(f"  {name}: skipped ({exc})")
                finally:
                    if server.proc is not None:
                        stop(server.proc)
                load.append(os.getloadavg()[0])
        finally:
            stop(upstream_proc)
    report(figs, load)


if __name__ == "__main__":
    main(sys.argv[1:])
