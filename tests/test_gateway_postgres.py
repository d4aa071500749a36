"""Gateway processes started by ``costwarden serve`` sharing one PostgreSQL ledger: a storm
of concurrent requests through both never spends past the key's budget, and a revocation is
refused by both."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from costwarden import Budget, BudgetManager
from costwarden.keys import create_key, revoke_key
from tests.pg import require_postgres, temp_schema_url
from tests.procs import child_env

pytestmark = pytest.mark.postgres
NO_LIMITS_BUDGET = Budget(daily_limit=None, monthly_limit=None, per_request_limit=None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _serve(url: str, folder: Path, *extra: str) -> Iterator[str]:
    port = _free_port()
    log = open(folder / f"gateway-{port}.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "costwarden.cli",
            "serve",
            "--port",
            str(port),
            "--ledger",
            url,
            *extra,
        ],
        cwd=folder,
        env={k: v for k, v in child_env().items() if k != "COSTWARDEN_CONFIG"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(base + "/health", timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((folder / f"gateway-{port}.log").read_text()) from None
                time.sleep(0.1)
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


def _post(base: str, secret: str, max_tokens: int = 40) -> int:
    body = json.dumps(
        {
            "model": "gpt-4o",
            "messages": [{"role": "user", "content": "storm"}],
            "max_tokens": max_tokens,
        }
    ).encode()
    request = urllib.request.Request(
        base + "/v1/chat/completions",
        data=body,
        headers={"authorization": f"Bearer {secret}", "content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            r.read()
            return int(r.status)
    except urllib.error.HTTPError as exc:
        with exc:  # it holds the connection: closed here, not by the garbage collector
            exc.read()
            return int(exc.code)


def test_two_gateway_processes_on_one_postgres_ledger_never_overspend(tmp_path: Path) -> None:
    require_postgres()
    with temp_schema_url() as url, ExitStack() as stack:
        manager = stack.enter_context(
            BudgetManager(
                Budget(daily_limit=None, monthly_limit=None, per_request_limit=None), ledger=url
            )
        )
        limit = 0.004
        key, secret = create_key(
            manager.ledger,
            budget=Budget(daily_limit=limit, monthly_limit=None, per_request_limit=None),
        )
        a = stack.enter_context(_serve(url, tmp_path))
        b = stack.enter_context(_serve(url, tmp_path))
        statuses: list[int] = []
        lock = threading.Lock()

        def worker(base: str) -> None:
            for _ in range(15):
                status = _post(base, secret)
                with lock:
                    statuses.append(status)

        threads = [threading.Thread(target=worker, args=(base,)) for base in (a, b) * 6]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert set(statuses) <= {200, 429} and 200 in statuses and 429 in statuses
        status = manager.get_status(key=key.key_id)
        assert 0 < status["daily_spent"] <= limit  # zero overspend across both processes
        assert status["daily_reserved"] == 0  # every hold settled
        records = manager.records()
        assert len(records) == statuses.count(200)
        # revocation: both processes refuse within the bound (PostgreSQL poll + cache, < 2 s)
        revoke_key(manager.ledger, key.key_id)
        time.sleep(1.5)
        assert _post(a, secret) == 401 and _post(b, secret) == 401


def _first_requests_at_once(url: str, now: float, workers: int = 6) -> list[object]:
    """Each of ``workers`` ledgers' first rpm-limited request, for a key of its own, released
    at once: what each ``admit`` returned, or the exception it raised."""
    from costwarden.gateway.ratelimit import RateLimiter
    from costwarden.ledger import open_ledger

    outcomes: list[object] = []
    with ExitStack() as stack:
        ledgers = [open_ledger(url) for _ in range(workers)]
        for ledger in ledgers:
            stack.callback(ledger.close)
        limiters = [RateLimiter(ledger) for ledger in ledgers]
        start = threading.Barrier(workers)

        def first(i: int) -> None:
            start.wait()
            try:
                outcomes.append(limiters[i].admit(f"key{i}", 100, None, 10, now))
            except Exception as exc:  # what the test is about: none may fail
                outcomes.append(exc)

        threads = [threading.Thread(target=first, args=(i,)) for i in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    return outcomes


def test_first_rate_limited_requests_of_many_keys_at_once_all_count() -> None:
    """Six workers' first rpm-limited requests, for six different keys, at the same moment on a
    fresh ledger: every one is counted (the rate table was made under each key's own lock, and
    PostgreSQL's CREATE TABLE IF NOT EXISTS failed one of them in every such round)."""
    for round_ in range(3):
        with temp_schema_url() as url:
            outcomes = _first_requests_at_once(url, 1000.0 + round_)
        assert len(outcomes) == 6
        assert all(isinstance(o, tuple) and o[0] is None for o in outcomes), outcomes


def test_two_leasing_gateway_processes_never_overspend_and_give_their_leases_back(
    tmp_path: Path,
) -> None:
    """Leases on (the default on PostgreSQL) with a budget several leases fit in: the workers
    admit from leases, then exactly near the limit; the total spent plus reserved never goes
    past the limit at any instant, and once the gateways stop nothing is left held."""
    import psycopg

    require_postgres()
    with temp_schema_url() as url, ExitStack() as stack:
        manager = stack.enter_context(BudgetManager(NO_LIMITS_BUDGET, ledger=url))
        limit = 0.03  # ~70 requests of ~$0.000425; a lease of 16 is ~$0.0068
        key, secret = create_key(
            manager.ledger,
            budget=Budget(daily_limit=limit, monthly_limit=None, per_request_limit=None),
        )
        schema = url.rsplit("schema=", 1)[1]
        a = stack.enter_context(_serve(url, tmp_path))
        b = stack.enter_context(_serve(url, tmp_path))
        statuses: list[int] = []
        peaks: list[float] = []
        leases_seen: set[str] = set()
        lock = threading.Lock()
        done = threading.Event()

        def monitor() -> None:
            with psycopg.connect(require_postgres(), autocommit=True) as conn:
                while not done.is_set():
                    status = manager.get_status(key=key.key_id)
                    peaks.append(status["daily_spent"] + status["daily_reserved"])
                    rows = conn.execute(
                        f"SELECT DISTINCT hold_id FROM \"{schema}\".holds WHERE hold_id LIKE 'L%%'"
                    ).fetchall()
                    leases_seen.update(str(r[0]) for r in rows)
                    time.sleep(0.005)

        def worker(base: str) -> None:
            for _ in range(20):
                status = _post(base, secret)
                with lock:
                    statuses.append(status)

        watcher = threading.Thread(target=monitor)
        watcher.start()
        threads = [threading.Thread(target=worker, args=(base,)) for base in (a, b) * 5]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        done.set()
        watcher.join(10)
        assert set(statuses) <= {200, 429} and 200 in statuses and 429 in statuses
        assert leases_seen, "no gateway took a lease"
        assert max(peaks) <= limit + 1e-9  # zero overspend, leases' free parts included
        status = manager.get_status(key=key.key_id)
        assert 0 < status["daily_spent"] <= limit
        assert len(manager.records()) == statuses.count(200)
        stack.close()  # both gateways stop (SIGTERM): their leases are given back
        with psycopg.connect(require_postgres(), autocommit=True) as conn:
            assert conn.execute(f'SELECT count(*) FROM "{schema}".holds').fetchone()[0] == 0
