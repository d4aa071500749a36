"""Hard limits under real concurrency, on SQLite and PostgreSQL.

The storm: 8 processes x 16 threads reserve random estimates against one small budget; an
admitted call commits an actual cost no larger than its hold, or releases it. A monitor in this
process samples committed + reserved all along and it must never exceed the limit; at the end
the spend is within the limit, every committed call is one record, and the ledger's totals are
the sum of what the workers say they committed, to the nano-dollar.

The exact fits: 100 vs two concurrent 60s admits exactly one; 1.00 vs ten concurrent 0.20s
admits exactly five; with threads (each its own manager, as separate clients are) and with
processes, released together.

Workers are this module run as a script (``python -m tests.test_concurrency_storm ...``): a
fresh interpreter per process, as separate services would be, sharing only the ledger URL.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from costwarden.budget import Budget, calendar_window, get_zone
from costwarden.errors import BudgetExceededError
from costwarden.ledger import Bucket, open_ledger
from costwarden.manager import BudgetManager
from costwarden.money import usd_to_nanos
from costwarden.records import UsageRecord

ROOT = Path(__file__).resolve().parent.parent
STORM_LIMIT_USD = 1.0
NO_LIMITS = Budget(daily_limit=None, monthly_limit=None, per_request_limit=None)


LEASED = "leased+"
"""A shared URL with this prefix: every manager admits from budget leases (chunk 8)."""


def _ledger(url: str) -> Any:
    """What a worker's manager is given for ``url``: the URL, or a leased ledger on it."""
    if not url.startswith(LEASED):
        return url
    from costwarden.ledger.leases import LeasedLedger

    return LeasedLedger(open_ledger(url[len(LEASED) :]), chunk=8)


def _plain(url: str) -> str:
    """The ledger URL itself, for reading what the workers did."""
    return url.removeprefix(LEASED)


def _daily(at: float | None = None) -> Bucket:
    w = calendar_window("daily", datetime.fromtimestamp(at or time.time(), UTC), get_zone("UTC"))
    return Bucket("global", "daily", w.start, w.end)


# -- worker side (runs in the child interpreter) -------------------------------------------------
def _wait_until(at: float) -> None:
    time.sleep(max(0.0, at - time.time()))


def _storm(url: str, threads: int, iterations: int, seed: int, at: float) -> dict[str, int]:
    """``threads`` threads reserve, commit or release from ``at`` on; what they did."""
    budget = Budget(daily_limit=STORM_LIMIT_USD, monthly_limit=None, per_request_limit=None)
    manager = BudgetManager(budget, ledger=_ledger(url), hold_ttl=120)
    totals = {"admitted": 0, "denied": 0, "committed": 0, "released": 0, "errors": 0}
    totals["committed_nanos"] = 0
    lock = threading.Lock()

    def run(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        mine = dict.fromkeys(totals, 0)
        _wait_until(at)
        for _ in range(iterations):
            units = rng.randint(1, 500)  # estimates of $0.0001 .. $0.05
            try:
                hold = manager.reserve(units / 10_000)
            except BudgetExceededError:
                mine["denied"] += 1
                continue
            except Exception as exc:
                mine["errors"] += 1
                print(f"error: {exc!r}", file=sys.stderr, flush=True)
                continue
            mine["admitted"] += 1
            if rng.random() < 0.2:
                manager.release(hold)
                mine["released"] += 1
                continue
            actual = rng.randint(0, units) / 10_000
            manager.commit(hold, UsageRecord("storm-model", 10, 10, cost_usd=actual))
            mine["committed"] += 1
            mine["committed_nanos"] += usd_to_nanos(actual)
        with lock:
            for k, v in mine.items():
                totals[k] += v

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    manager.close()
    return totals


def _contend(url: str, kind: str, name: str, at: float) -> str:
    """One reservation at ``at``: $60 of a $100 user budget, or $0.20 of a $1 team budget."""
    manager = BudgetManager(NO_LIMITS, ledger=_ledger(url), hold_ttl=120)
    manager.set_default_budget("user", Budget(100.0, None, None))
    manager.set_default_budget("team", Budget(1.0, None, None))
    _wait_until(at)
    try:
        if kind == "sixty":
            manager.reserve(60.0, user=name)
        else:
            manager.reserve(0.20, team=name)
        return "admitted"
    except BudgetExceededError:
        return "denied"
    finally:
        manager.close()


def _serve() -> None:
    """Answer one JSON command per stdin line with one JSON line (the worker's whole life)."""
    print(json.dumps("ready"), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["op"] == "storm":
            out: object = _storm(
                cmd["url"], cmd["threads"], cmd["iterations"], cmd["seed"], cmd["at"]
            )
        else:
            out = _contend(cmd["url"], cmd["kind"], cmd["name"], cmd["at"])
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    _serve()
    sys.exit(0)

# -- test side ----------------------------------------------------------------------------------
import pytest  # noqa: E402  (placed after the worker's exit: workers start faster without it)

from tests import pg  # noqa: E402


class Worker:
    """A worker interpreter: this module run as a script, serving JSON commands."""

    def __init__(self) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.test_concurrency_storm"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def send(self, **cmd: object) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()

    def answer(self) -> Any:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError(f"worker {self.proc.pid} died (exit {self.proc.wait()})")
        return json.loads(line)

    def stop(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()  # a pipe left to the garbage collector is a ResourceWarning


@pytest.fixture(scope="module")
def workers() -> Iterator[list[Worker]]:
    """Ten worker processes, started once for every test here (start-up is the slow part)."""
    pool = [Worker() for _ in range(10)]
    try:
        for w in pool:
            assert w.answer() == "ready"
        yield pool
    finally:
        for w in pool:
            w.stop()
    assert all(w.proc.returncode == 0 for w in pool)


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("leased", marks=pytest.mark.postgres),
    ]
)
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A ledger URL every worker opens, schema created; PostgreSQL pools kept small;
    ``leased``: PostgreSQL with every manager admitting from budget leases."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'storm.db'}"
        open_ledger(url).close()
        yield url
        return
    with pg.temp_schema_url() as url:
        open_ledger(url).close()
        prefix = LEASED if request.param == "leased" else ""
        yield f"{prefix}{url}&pool_min=1&pool_max=3"


def test_storm_never_overspends(shared_url: str, workers: list[Worker]) -> None:
    processes, threads, iterations = 8, 16, 25
    limit = usd_to_nanos(STORM_LIMIT_USD)
    ledger = open_ledger(_plain(shared_url))
    bucket = _daily()
    samples: list[int] = []
    stop = threading.Event()

    def monitor() -> None:
        while not stop.is_set():
            u = ledger.usage([bucket], time.time())[0]
            samples.append(u.spent + u.reserved)
            time.sleep(0.0005)

    watcher = threading.Thread(target=monitor)
    watcher.start()
    try:
        at = time.time() + 0.5
        for seed, w in enumerate(workers[:processes]):
            w.send(
                op="storm", url=shared_url, threads=threads, iterations=iterations, seed=seed, at=at
            )
        results = [w.answer() for w in workers[:processes]]
    finally:
        stop.set()
        watcher.join()
    try:
        if _daily() != bucket:
            pytest.skip("the UTC day changed during the storm")
        final = ledger.usage([bucket], time.time())[0]  # leases too were given back
        total = {k: sum(r[k] for r in results) for k in results[0]}
        assert total["errors"] == 0
        assert total["admitted"] + total["denied"] == processes * threads * iterations
        assert total["admitted"] == total["committed"] + total["released"]
        # the budget was contended: many calls were turned away, many got through
        assert total["denied"] > 0 and total["committed"] > 50
        assert len(samples) > 10
        assert max(samples) <= limit, f"committed + reserved reached {max(samples)} > {limit}"
        assert final.reserved == 0  # every hold was settled
        assert final.spent <= limit
        assert final.spent == total["committed_nanos"]  # nothing lost, nothing doubled
        assert final.count == total["committed"]
        assert ledger.count_records() == total["committed"]
        assert sum(r.cost_nanos for r in ledger.records()) == total["committed_nanos"]
        assert final.spent > limit // 2  # the storm did use the budget up
    finally:
        ledger.close()


def _thread_contenders(
    url: str, n: int, amount: float, *, user: str | None = None, team: str | None = None
) -> int:
    """``n`` threads, each with its own manager on ``url``, reserve at once; admitted count."""
    managers = []
    for _ in range(n):
        m = BudgetManager(NO_LIMITS, ledger=_ledger(url), hold_ttl=120)
        m.set_default_budget("user", Budget(100.0, None, None))
        m.set_default_budget("team", Budget(1.0, None, None))
        managers.append(m)
    barrier = threading.Barrier(n)
    outcomes: list[bool] = []

    def contend(m: BudgetManager) -> None:
        barrier.wait()
        try:
            m.reserve(amount, user=user, team=team)
            outcomes.append(True)
        except BudgetExceededError:
            outcomes.append(False)

    workers = [threading.Thread(target=contend, args=(m,)) for m in managers]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    for m in managers:
        m.close()
    assert len(outcomes) == n
    return sum(outcomes)


def test_exact_fit_with_threads(shared_url: str) -> None:
    for r in range(5):
        assert _thread_contenders(shared_url, 2, 60.0, user=f"t{r}") == 1
        assert _thread_contenders(shared_url, 10, 0.20, team=f"t{r}") == 5
    ledger = open_ledger(_plain(shared_url))
    day = _daily()
    for r in range(5):
        user = Bucket(f"user:t{r}", "daily", day.start, day.end)
        team = Bucket(f"team:t{r}", "daily", day.start, day.end)
        assert [u.reserved for u in ledger.usage([user, team], time.time())] == [
            usd_to_nanos(60.0),
            usd_to_nanos(1.0),
        ]
    ledger.close()


def test_exact_fit_with_processes(shared_url: str, workers: list[Worker]) -> None:
    def contest(kind: str, name: str, contenders: list[Worker]) -> int:
        at = time.time() + 0.3  # every contender reserves at this instant
        for w in contenders:
            w.send(op="contend", url=shared_url, kind=kind, name=name, at=at)
        answers = [w.answer() for w in contenders]
        assert set(answers) <= {"admitted", "denied"}, answers
        return answers.count("admitted")

    for r in range(3):
        assert contest("sixty", f"p{r}", workers[:2]) == 1
        assert contest("fifth", f"p{r}", workers) == 5


def test_workers_report_what_they_did(tmp_path: Path, workers: list[Worker]) -> None:
    """The storm's bookkeeping itself: one worker alone matches the ledger exactly."""
    url = f"sqlite:///{tmp_path / 'solo.db'}"
    workers[0].send(op="storm", url=url, threads=2, iterations=40, seed=7, at=0)
    result = workers[0].answer()
    ledger = open_ledger(url)
    assert result["admitted"] + result["denied"] == 80
    assert result["committed"] > 0
    assert ledger.count_records() == result["committed"]
    assert sum(r.cost_nanos for r in ledger.records()) == result["committed_nanos"]
    ledger.close()
