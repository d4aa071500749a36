"""Open-loop load generator of the gateway benchmark (its own process, asyncio + aiohttp).

``python -m benchmarks.gateway_load URL RATE SECONDS [--stream] [--key K] [--timeout S]``
prints one JSON object. Request ``i`` is *scheduled* at ``t0 + i / RATE`` whatever happened to
the earlier ones (open loop, like wrk2, unlike wrk), and its latency is timed from that
scheduled time, not from when it was actually sent: a server that stalls is charged for the
whole queue it builds, so there is no coordinated omission. The generator wakes up, launches
every request whose time has come, and sleeps until the next one; ``send_lag`` (how late
requests left against their schedule) says whether the generator itself kept up.

Every loop is bounded: RATE * SECONDS requests, each cut at ``--timeout`` (an error then), and
the whole run waits at most ``--timeout`` after the last scheduled send.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import resource
import time
from typing import Any

import aiohttp

BODY = json.dumps(
    {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Hello, how are you today?"}],
        "max_tokens": 16,
    }
).encode()
STREAM_BODY = json.dumps(
    {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Hello, how are you today?"}],
        "max_tokens": 16,
        "stream": True,
    }
).encode()


def percentile(values: list[float], q: float) -> float | None:
    """The ``q``-quantile (nearest rank) of ``values``; None when there are none."""
    if not values:
        return None
    s = sorted(values)
    k = min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))
    return s[k]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    n = max(1, int(args.rate * args.seconds))
    n_warm = int(args.rate * args.warmup)
    headers = {"content-type": "application/json"}
    if args.key:
        headers["authorization"] = f"Bearer {args.key}"
    body = STREAM_BODY if args.stream else BODY
    latencies: list[float] = []
    ttfbs: list[float] = []
    lags: list[float] = []
    errors: dict[str, int] = {}
    connector = aiohttp.TCPConnector(limit=args.connections, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(scheduled: float, measured: bool) -> None:
            try:
                async with asyncio.timeout(args.timeout):
                    async with session.post(args.url, data=body, headers=headers) as resp:
                        first = await resp.content.readany()
                        t_first = time.perf_counter()
                        while await resp.content.readany():
                            pass
                        status = resp.status
                t_end = time.perf_counter()
            except TimeoutError:
                if not measured:
                    return
                errors["timeout"] = errors.get("timeout", 0) + 1
                return
            except (aiohttp.ClientError, OSError) as exc:
                if not measured:
                    return
                name = type(exc).__name__
                errors[name] = errors.get(name, 0) + 1
                return
            if not measured:
                return
            if status != 200 or not first:
                errors[f"http {status}"] = errors.get(f"http {status}", 0) + 1
                return
            latencies.append(t_end - scheduled)
            ttfbs.append(t_first - scheduled)

        tasks: set[asyncio.Task[None]] = set()
        interval = 1.0 / args.rate
        start = time.perf_counter() + 0.05
        t0 = start + n_warm * interval  # the measured window starts here
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        i = 0
        total = n_warm + n
        while i < total:
            now = time.perf_counter()
            while i < total and start + i * interval <= now:
                scheduled = start + i * interval
                measured = i >= n_warm
                if i == n_warm:
                    print("START", flush=True)  # the caller reads the servers' CPU now
                    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
                if measured:
                    lags.append(now - scheduled)
                task = asyncio.create_task(one(scheduled, measured))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                i += 1
            if i < total:
                await asyncio.sleep(max(0.0, start + i * interval - time.perf_counter()))
        sent_at = time.perf_counter()
        if tasks:
            await asyncio.wait(set(tasks), timeout=args.timeout + 1)
        for task in list(tasks):
            task.cancel()
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    return {
        "offered_rps": args.rate,
        "scheduled": n,
        "ok": len(latencies),
        "errors": errors,
        "window_s": sent_at - t0,
        "p50": percentile(latencies, 0.50),
        "p99": percentile(latencies, 0.99),
        "ttfb_p50": percentile(ttfbs, 0.50),
        "ttfb_p99": percentile(ttfbs, 0.99),
        "send_lag_p99": percentile(lags, 0.99),
        "loadgen_cpu_ms_per_req": 1000 * cpu / n,
    }


def main() -> None:
    import uvloop

    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("rate", type=float)
    p.add_argument("seconds", type=float)
    p.add_argument("--stream", action="store_true")
    p.add_argument("--key", default="")
    p.add_argument("--timeout", type=float, default=5.0)
    p.add_argument("--connections", type=int, default=2000)
    p.add_argument("--warmup", type=float, default=1.0, help="seconds at RATE, not measured")
    args = p.parse_args()
    print(json.dumps(uvloop.run(run(args))), flush=True)


if __name__ == "__main__":
    main()
