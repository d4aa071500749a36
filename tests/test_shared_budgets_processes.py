"""Budgets changed through one manager are enforced by managers in other processes, within the
bound docs/storage.md states (SQLite: at once; PostgreSQL: the 250 ms poll plus a round trip).

- Two processes: the child admits calls until one is denied; this process tightens the budget;
  the denial comes within the bound.
- A storm across a budget change: processes and threads reserve $0.01 calls against a $100
  team budget (more than the storm can spend in its seconds, so the old limit alone never
  stops it); once $0.30 is spent it is tightened to $0.20. The limit in force at each
  admission is read back from the audit log (each ``budget.put``, in order): every call whose
  admission started after the tightening had returned, plus the bound, met $0.20 with at least
  $0.30 spent, so none may be admitted; before it the limit was $100, which the total must
  not pass. Children are started with subprocess, never fork.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from costwarden.budget import Budget
from costwarden.errors import BudgetExceededError
from costwarden.manager import BudgetManager
from costwarden.records import UsageRecord
from tests import pg

ROOT = Path(__file__).resolve().parent.parent
SLACK = 1.0  # the machine is shared: a late child is slow, not wrong (bounds asserted apart)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "postgres":
        with pg.temp_schema_url() as pg_url:
            yield pg_url
        return
    yield f"sqlite:///{tmp_path / 'shared.db'}"


def bound(url: str) -> float:
    """How late another process may enforce a change (docs/storage.md), plus a round trip."""
    return 0.0 if url.startswith("sqlite") else 0.25 + 0.05


def _child(script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )


ENFORCER = r"""
import json, sys, time
from costwarden.errors import BudgetExceededError
from costwarden.manager import BudgetManager

manager = BudgetManager(ledger=sys.argv[1])   # no budget of its own: the ledger's
manager.reserve(0.02, team="research").release()
print("ready", flush=True)
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    started = time.time()
    try:
        manager.reserve(0.02, team="research").release()
    except BudgetExceededError as exc:
        print(json.dumps({"denied_at": time.time(), "started": started, "limit": exc.limit}))
        break
manager.close()
"""


def test_a_budget_tightened_in_one_process_is_enforced_by_another(url: str) -> None:
    with BudgetManager(ledger=url) as manager:
        manager.set_budget(Budget(daily_limit=1.0), team="research", actor="test")
        with _child(ENFORCER, url) as child:  # leaving it closes the pipe and reaps the child
            try:
                assert child.stdout is not None
                assert child.stdout.readline().strip() == "ready"
                time.sleep(0.3)  # the child is admitting calls against the old budget
                manager.set_budget(Budget(daily_limit=0.01), team="research", actor="test")
                done = time.time()
                seen = json.loads(child.stdout.readline())
                assert child.wait(30) == 0
            finally:
                child.kill()
    assert seen["limit"] == 0.01
    lag = seen["started"] - done  # the last admission the child started under the old budget
    assert lag <= bound(url) + SLACK, lag


STORM = r"""
import json, os, sys, threading, time
from costwarden.errors import BudgetExceededError
from costwarden.manager import BudgetManager
from costwarden.records import UsageRecord

url, stop, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
manager = BudgetManager(ledger=url)
log = []

def work():
    while not os.path.exists(stop):
        started = time.time()
        try:
            hold = manager.reserve(0.01, team="storm")
        except BudgetExceededError:
            log.append((started, time.time(), False))
            continue
        log.append((started, time.time(), True))
        hold.commit(UsageRecord("m", 0, 0, 0.01, team="storm"))

workers = [threading.Thread(target=work) for _ in range(threads)]
print("ready", flush=True)
for w in workers:
    w.start()
for w in workers:
    w.join()
manager.close()
print(json.dumps(log))
"""


def _local_worker(url: str, stop: Path, out: list[tuple[float, float, bool]]) -> None:
    with BudgetManager(ledger=url) as manager:
        while not stop.exists():
            started = time.time()
            try:
                hold = manager.reserve(0.01, team="storm")
            except BudgetExceededError:
                out.append((started, time.time(), False))
                continue
            out.append((started, time.time(), True))
            hold.commit(UsageRecord("m", 0, 0, 0.01, team="storm"))


def test_storm_across_a_budget_change_never_overspends_the_limit_in_force(
    url: str, tmp_path: Path
) -> None:
    stop = tmp_path / "stop"
    with BudgetManager(ledger=url) as manager:
        manager.set_budget(Budget(daily_limit=100.0), team="storm", actor="storm-test")
        children = [_child(STORM, url, str(stop), "3") for _ in range(2)]
        local: list[list[tuple[float, float, bool]]] = [[], []]
        threads = [threading.Thread(target=_local_worker, args=(url, stop, o)) for o in local]
        try:
            for c in children:
                assert c.stdout is not None and c.stdout.readline().strip() == "ready"
            for t in threads:
                t.start()
            deadline = time.monotonic() + 60
            while manager.get_status(team="storm")["daily_spent"] < 0.30:
                assert time.monotonic() < deadline, "the storm spent nothing"
                time.sleep(0.005)
            manager.set_budget(Budget(daily_limit=0.20), team="storm", actor="storm-test")
            done = time.time()  # committed: visible to every process within the bound
            time.sleep(1.5)  # the storm goes on against the tightened budget
        finally:
            stop.touch()
            for t in threads:
                t.join(30)
        logs: list[tuple[float, float, bool]] = [x for o in local for x in o]
        for c in children:
            out, _ = c.communicate(timeout=60)
            assert c.returncode == 0
            logs.extend(tuple(x) for x in json.loads(out.splitlines()[-1]))
        spent = manager.get_status(team="storm")["daily_spent"]
        events = [
            e
            for e in manager.ledger.audit(target="team:storm")  # type: ignore[attr-defined]
            if e.action == "budget.put"
        ]
    # Which limit was in force when: from the audit log, oldest first.
    changes = sorted((e.at, e.new["budget"]["daily_limit_nanos"] / 1e9) for e in events)
    assert [limit for _, limit in changes] == [100.0, 0.20]
    assert changes[1][0] <= done
    late = [x for x in logs if x[0] > done + bound(url)]
    assert len(late) > 10, "the storm must go on past the change"
    admitted_late = [x for x in late if x[2]]
    assert admitted_late == [], f"{len(admitted_late)} admitted against the $0.20 limit"
    admitted = sum(1 for x in logs if x[2])
    assert admitted >= 30
    assert spent <= 100.0 and round(spent * 100) == admitted  # every admission one record
