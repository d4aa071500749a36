"""costwarden stays usable across os.fork() (gunicorn --preload, multiprocessing's 'fork').

A driver process (tests/fork_stress.py, started with subprocess: pytest's own process never
forks) runs a BudgetManager with every background part busy (the SQLite checkpoint thread,
the alert dispatcher delivering to a slow webhook on 127.0.0.1, the async offload pool,
writer threads) and forks many times meanwhile. Every child must reserve, commit, read its
status, emit an alert and use the offload pool through what it inherited, and exit, within
10 s (a watchdog kills it otherwise, and the test fails); the driver then checks that every
child's record is in the ledger.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests import pg
from tests.procs import Child


def _run(mode: str, url: str, forks: int, timeout: float) -> dict[str, Any]:
    out = Child(mode, url, str(forks), module="tests.fork_stress").result(timeout=timeout)
    assert isinstance(out, dict)
    return out


def _check(out: dict[str, Any], forks: int) -> None:
    assert out["failed"] == [], f"children that failed or hung (killed: -9): {out}"
    assert out["codes"] == {"0": forks}
    assert out["records"] == list(range(forks)), "a child's record is missing"
    assert out["slowest"] < 10.0


def test_sqlite_children_of_a_busy_process_all_work_and_exit(tmp_path: Path) -> None:
    out = _run("busy", f"sqlite:///{tmp_path / 'fork.db'}", 200, timeout=240)
    _check(out, 200)
    assert out["integrity"] == "ok"
    assert out["webhook_posts"] > 0  # the dispatcher was delivering meanwhile


def test_locks_other_threads_held_at_the_fork_are_free_in_the_child(tmp_path: Path) -> None:
    """Another thread holds the manager's, the ledger's, the dispatcher's, the token and
    price locks as the fork comes; each child takes every one of them and works."""
    out = _run("held", f"sqlite:///{tmp_path / 'held.db'}", 10, timeout=120)
    _check(out, 10)


@pytest.mark.postgres
def test_postgres_children_of_a_busy_process_all_work_and_exit() -> None:
    server = pg.require_postgres()
    with pg.temp_schema_url(server) as url:
        out = _run("busy", url, 50, timeout=240)
    _check(out, 50)
    assert out["webhook_posts"] > 0


def test_held_over_fork_releases_only_the_lock_it_took() -> None:
    """The parent releases what ``take`` got and nothing else: a lock another thread holds past
    the wait is left to that thread, and a child (``forget``) releases nothing."""
    import threading

    from costwarden.forksafe import HeldOverFork

    hold, lock = HeldOverFork(), threading.Lock()
    assert hold.take(lock, 0.1) and lock.locked()
    hold.release()
    assert not lock.locked()
    hold.release()  # a second release is a no-op, not a RuntimeError
    busy, taken, done = threading.Lock(), threading.Event(), threading.Event()

    def owner() -> None:
        with busy:
            taken.set()
            done.wait(5)

    thread = threading.Thread(target=owner)
    thread.start()
    taken.wait(5)
    assert not hold.take(busy, 0.05)
    hold.release()
    assert busy.locked(), "released a lock another thread holds"
    done.set()
    thread.join(5)
    assert hold.take(lock, 0.1)
    hold.forget()
    hold.release()
    assert lock.locked(), "a child must not release the lock it made new"
