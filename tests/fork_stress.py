"""Driver for tests/test_fork_safety.py: fork a busy costwarden process many times.

Run as ``python -m tests.fork_stress MODE URL FORKS`` (by the test, with subprocess: the
forking happens here, never in pytest's process). Modes:

``busy``
    A BudgetManager on URL with every background part of costwarden busy: writer threads
    reserving and committing (so the SQLite checkpoint thread keeps checkpointing), an alert
    dispatcher delivering a stream of alerts to a signed webhook on 127.0.0.1 whose handler
    is slow, and the async offload pool running ledger calls. While all that runs, the main
    thread forks FORKS children, up to 8 alive at once. Each child reserves and commits one
    record (its request id names it), reads get_status, emits an alert and runs a call on the
    offload pool, then exits: half through a normal interpreter exit (atexit handlers, thread
    joins, finalisers), half with ``os._exit`` as multiprocessing does. A watchdog kills a
    child still alive after 10 s.
``held``
    Another thread holds the locks a fork could catch held (the manager's, the ledger's, the
    dispatcher's condition, the token-encoding and price-catalogue locks) for 0.3 s while the
    main thread forks; each child must use all of them at once.

Prints one JSON line: exit codes of the children, the slowest child's seconds, and which
children's records the ledger has afterwards.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import os
import sys
import threading
import time
import uuid
from collections import Counter
from typing import Any

from costwarden import tokens
from costwarden.alerts.webhook import WebhookChannel, generate_secret
from costwarden.budget import Budget
from costwarden.clients import offload
from costwarden.manager import BudgetManager
from costwarden.records import Alert, AlertLevel, UsageRecord
from tests.procs import wait_child

CHILD_LIMIT_S = 10.0
_SECONDS: tuple[list[float], list[float]] = ([], [])  # children's lives: normal exit, _exit
ALIVE_AT_ONCE = 4


class _Hook(http.server.BaseHTTPRequestHandler):
    posts = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        time.sleep(0.003)  # a slow receiver: the dispatcher's worker is mid-send often
        type(self).posts += 1
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _alert(tag: str) -> Alert:
    return Alert(
        AlertLevel.WARNING,
        f"fork stress {tag}",
        "global",
        "daily",
        "threshold",
        dedup_key=f"fork-stress|{tag}|{uuid.uuid4().hex}",
    )


def _record(request_id: str) -> UsageRecord:
    return UsageRecord("gpt-4o-mini", 10, 10, cost_usd=0.000001, request_id=request_id)


def _setup(url: str) -> tuple[BudgetManager, http.server.ThreadingHTTPServer]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hook = WebhookChannel(f"http://127.0.0.1:{server.server_address[1]}/hook", generate_secret())
    mgr = BudgetManager(
        Budget(daily_limit=1_000_000.0, monthly_limit=None, per_request_limit=None),
        ledger=url,
        alert_channels=[hook],
        alert_options={"digest_window": 0.002, "poll_interval": 0.05},
    )
    assert mgr.alerts is not None
    return mgr, server


def _busy(mgr: BudgetManager, stop: threading.Event) -> list[threading.Thread]:
    """Start the background load; every thread ends soon after ``stop`` is set."""

    def writer(n: int) -> None:
        i = 0
        while not stop.is_set():
            i += 1
            hold = mgr.reserve(0.000002)
            mgr.commit(hold, _record(f"parent-{n}-{i}"))

    def alerts() -> None:
        dispatcher = mgr.alerts
        assert dispatcher is not None
        i = 0
        while not stop.is_set():
            i += 1
            dispatcher.emit(_alert(f"parent-{i}"))
            time.sleep(0.002)

    def offloaded() -> None:
        async def loop() -> None:
            while not stop.is_set():
                await asyncio.gather(
                    *(offload.run_offloaded(mgr.get_status, what="status") for _ in range(4))
                )

        asyncio.run(loop())

    threads = [threading.Thread(target=writer, args=(n,), daemon=True) for n in range(2)]
    threads += [threading.Thread(target=f, daemon=True) for f in (alerts, offloaded)]
    for t in threads:
        t.start()
    return threads


def _child_work(mgr: BudgetManager, index: int) -> None:
    """What each child must manage with its inherited manager."""
    hold = mgr.reserve(0.000002)
    mgr.commit(hold, _record(f"child-{index}"))
    status = mgr.get_status()
    assert status["daily_spent"] > 0, status
    dispatcher = mgr.alerts
    assert dispatcher is not None
    dispatcher.emit(_alert(f"child-{index}"))
    got = asyncio.run(offload.run_offloaded(mgr.get_status, what="status"))
    assert got["daily_spent"] > 0


def _locks_a_fork_may_catch(mgr: BudgetManager) -> list[Any]:
    """The manager's (its budget registry's and alert claims'), the dispatcher's condition,
    the token-encoding and price locks."""
    from costwarden.pricing import defaults, genai

    dispatcher = mgr.alerts
    assert dispatcher is not None
    return [
        mgr.registry._lock,
        mgr._alerts._lock,
        dispatcher._cond,
        tokens._encoding_lock,
        defaults._lock,
        genai._lock,
        mgr.pricing._lock,  # type: ignore[attr-defined]
    ]


def _held_locks(mgr: BudgetManager) -> threading.Thread:
    """A thread that holds the ledger's lock for 0.1 s (a fork waits for that one) and every
    other lock for 0.3 s (a fork catches those held)."""
    ledger_lock = mgr.ledger._lock  # type: ignore[attr-defined]
    others = _locks_a_fork_may_catch(mgr)
    taken = threading.Event()

    def hold() -> None:
        ledger_lock.acquire()
        for lock in others:
            lock.acquire()
        taken.set()
        time.sleep(0.1)
        ledger_lock.release()
        time.sleep(0.2)
        for lock in reversed(others):
            lock.release()

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    assert taken.wait(10)
    return thread


def main(mode: str, url: str, forks: int) -> tuple[str, Any]:
    """Returns ("child", (manager, index)) in a forked child, ("parent", summary) in the driver.

    No ``with`` or ``finally`` here: a child returns through this frame, and must not run
    the parent's clean-up on its way out."""
    mgr, server = _setup(url)
    mgr.reserve(0.000002).release()  # warm: prices, plans
    tokens.count_tokens("warm", "gpt-4o")  # (a child would load the encoding: seconds of CPU)
    stop = threading.Event()
    threads = _busy(mgr, stop) if mode == "busy" else []
    time.sleep(0.2)  # let every background part get going
    alive: dict[int, tuple[int, float]] = {}
    codes: dict[int, int] = {}
    slowest = 0.0
    for index in range(forks):
        while len(alive) >= ALIVE_AT_ONCE:
            slowest = max(slowest, _reap(alive, codes))
        holder = _held_locks(mgr) if mode == "held" else None
        pid = os.fork()
        if pid == 0:
            return "child", (mgr, index)
        alive[pid] = (index, time.monotonic())
        if holder is not None:
            holder.join(10)
    while alive:
        slowest = max(slowest, _reap(alive, codes))
    stop.set()
    for t in threads:
        t.join(10)
    found = sorted(
        int(r.request_id.split("-")[1])
        for r in mgr.ledger.records()
        if r.request_id and r.request_id.startswith("child-")
    )
    summary: dict[str, Any] = {
        "codes": dict(Counter(codes.values())),
        "failed": sorted(i for i, c in codes.items() if c != 0),
        "slowest": slowest,
        "median": [sorted(x)[len(x) // 2] if x else None for x in _SECONDS],
        "records": found,
        "webhook_posts": _Hook.posts,
    }
    integrity = getattr(mgr.ledger, "integrity_check", None)
    if integrity is not None:
        summary["integrity"] = integrity()
    mgr.close()
    server.shutdown()
    return "parent", summary


def _reap(alive: dict[int, tuple[int, float]], codes: dict[int, int]) -> float:
    """Wait a little for any child; kill those past the limit. Returns the slowest reaped."""
    slowest = 0.0
    time.sleep(0.002)
    for pid, (index, started) in list(alive.items()):
        done, status = os.waitpid(pid, os.WNOHANG)
        elapsed = time.monotonic() - started
        if done:
            codes[index] = os.waitstatus_to_exitcode(status)
            _SECONDS[index % 2].append(elapsed)
        elif elapsed > CHILD_LIMIT_S:
            codes[index] = wait_child(pid, 0)  # the watchdog: SIGKILL, reaped, -9
        else:
            continue
        slowest = max(slowest, elapsed)
        del alive[pid]
    return slowest


def _as_child(mgr: BudgetManager, index: int, mode: str) -> int:
    try:
        if mode == "held":  # each was held by a thread that does not exist here
            for lock in [mgr.ledger._lock, *_locks_a_fork_may_catch(mgr)]:  # type: ignore[attr-defined]
                assert lock.acquire(timeout=2), f"{lock!r} is still held in the child"
                lock.release()
            mgr.set_budget(Budget(daily_limit=1_000_000.0, monthly_limit=None))
            tokens.count_tokens("a forked child counts tokens", "gpt-4o")
        _child_work(mgr, index)
    except BaseException as exc:
        print(f"child {index}: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return 3
    return 0


if __name__ == "__main__":
    role, value = main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
    if role == "child":
        child_mgr, child_index = value
        code = _as_child(child_mgr, child_index, sys.argv[1])
        if child_index % 2:
            os._exit(code)  # as multiprocessing's fork start method ends its children
        sys.exit(code)  # a normal exit: atexit handlers, thread joins, finalisers
    print(json.dumps(value), flush=True)
