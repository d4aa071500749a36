"""Child processes for tests, and the small programs they run.

Why this module: the pytest process is multithreaded (checkpoint threads, the async offload
pool, servers' accept threads), and a child made by a bare ``os.fork()`` of it can deadlock on
a lock another thread held at the instant of the fork (it hung CI for 300 s once). So children
are started with ``subprocess`` (``python -m tests.procs <program> ...``), and every wait on
one has a deadline: a child that misbehaves fails its test in seconds instead of hanging it.
Where a test is about ``fork()`` itself, the forking happens in such a child, never here.

Programs (run as ``python -m tests.procs NAME ARGS``):

``hold URL [write] [release=SECONDS]``
    open the SQLite ledger at URL, take its ledger lock (and with ``write`` SQLite's write
    lock too), print ``locked``, and keep them until stdin closes (the test may SIGSTOP or
    SIGKILL it meanwhile); with ``release=`` let go of the ledger lock alone after SECONDS,
    with ``commit=`` of the write lock alone.
``fork-lock URL``
    a manager on URL forks; the child holds the ledger lock for 0.5 s through its own copy of
    the ledger while the parent records a spend; prints how long the parent waited.
``pg-fork URL``
    a PostgreSQL ledger reserves, forks; the child reads and reserves through its copy; the
    parent's still works afterwards; prints what each saw.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOW = 1_764_331_200.0  # 2025-11-28 12:00 UTC


def child_env() -> dict[str, str]:
    """The environment of a child that imports costwarden (this tree) and tests."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}


class Child:
    """A ``python -m tests.procs`` (or other module) child with deadlines on every wait."""

    def __init__(
        self, *args: str, module: str = "tests.procs", capture_stderr: bool = True
    ) -> None:
        self.args = (module, *args)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=ROOT,
            env=child_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE if capture_stderr else None,
        )
        assert self.proc.stdout is not None
        self._fd = self.proc.stdout.fileno()
        self._buffer = b""

    @property
    def pid(self) -> int:
        return self.proc.pid

    def readline(self, timeout: float = 15.0) -> str:
        """The child's next line of output; fails the test if none comes within ``timeout``."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                raise AssertionError(f"{self.args}: no output within {timeout:g}s{self._err()}")
            ready, _, _ = select.select([self._fd], [], [], left)
            if ready:
                chunk = os.read(self._fd, 65536)
                if not chunk:
                    self.kill()
                    raise AssertionError(
                        f"{self.args}: exited ({self.proc.returncode}) before answering"
                        f"{self._err()}"
                    )
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode()

    def expect(self, word: str, timeout: float = 15.0) -> None:
        line = self.readline(timeout)
        assert line == word, f"{self.args}: expected {word!r}, got {line!r}{self._err()}"

    def result(self, timeout: float = 60.0) -> object:
        """The JSON the child prints last, once it exits 0 within ``timeout``."""
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.args}: still running after {timeout:g}s") from None
        text = (self._buffer + out).decode()
        assert self.proc.returncode == 0, (
            f"{self.args}: exit {self.proc.returncode}\n{text}\n{(err or b'').decode()}"
        )
        return json.loads(text.strip().splitlines()[-1])

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def close_stdin_and_wait(self, timeout: float = 10.0) -> None:
        """Close stdin (the child's cue to finish) and reap it; SIGKILL after ``timeout``."""
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout)
        self.kill()

    def stop(self) -> None:
        os.kill(self.proc.pid, signal.SIGSTOP)

    def kill(self, timeout: float = 10.0) -> None:
        """SIGKILL (a stopped child too) and reap it, waiting at most ``timeout``."""
        if self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                raise AssertionError(f"{self.args}: survived SIGKILL for {timeout:g}s") from None
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()

    def _err(self) -> str:
        if self.proc.poll() is None or self.proc.stderr is None or self.proc.stderr.closed:
            return ""
        return "\n" + self.proc.stderr.read().decode(errors="replace")[-4000:]


def wait_child(pid: int, timeout: float) -> int:
    """Exit code of a forked ``pid`` (in a driver child); SIGKILL and -9 after ``timeout``."""
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() >= deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return -signal.SIGKILL
        time.sleep(delay)
        delay = min(delay * 2, 0.02)


# -- programs run in the child -------------------------------------------------------------------
def _hold(url: str, *how: str) -> None:
    from costwarden.ledger.sqlite import SQLiteLedger

    led = SQLiteLedger(url)
    conn = led._conn_for_pid()
    led._board.lock()
    if "write" in how:
        conn.execute("BEGIN IMMEDIATE")
    print("locked", flush=True)
    for option in how:
        if option.startswith("release="):
            time.sleep(float(option.split("=", 1)[1]))
            led._board.unlock()
        if option.startswith("commit="):
            time.sleep(float(option.split("=", 1)[1]))
            conn.execute("COMMIT")
    sys.stdin.read()  # until the test closes stdin (or kills this process)


def _fork_lock(url: str) -> None:
    from costwarden.budget import Budget
    from costwarden.ledger.base import Bucket, LimitCheck
    from costwarden.ledger.sqlite import SQLiteLedger
    from costwarden.manager import BudgetManager
    from costwarden.records import UsageRecord

    day = Bucket("global", "daily", 1_764_288_000, 1_764_374_400)
    mgr = BudgetManager(Budget(1.0, None, None), ledger=url, clock=lambda: NOW)
    led = mgr.ledger
    assert isinstance(led, SQLiteLedger)
    led.reserve("warm", 1, [LimitCheck(day, 10**9)], NOW + 60, NOW)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: hold the ledger lock for a while through its own copy
        code = 1
        try:
            with led._ledger_locked():
                os.write(w, b"x")
                time.sleep(0.5)
            code = 0
        finally:
            os._exit(code)
    ready, _, _ = select.select([r], [], [], 10)
    assert ready, "the forked child never took the ledger lock"
    started = time.monotonic()
    mgr.record_spend(UsageRecord("gpt-4o-mini", 10, 10))
    waited = time.monotonic() - started
    code = wait_child(pid, 10)
    mgr.close()
    print(json.dumps({"waited": waited, "child": code}))


def _pg_fork(url: str) -> None:
    from costwarden.ledger import Bucket, LimitCheck, open_ledger

    day = Bucket("global", "daily", 1_799_971_200, 1_800_057_600)
    now = 1_800_000_000.0
    led = open_ledger(url)
    led.reserve("parent", 5, [LimitCheck(day, 100)], now + 60, now)
    pid = os.fork()
    if pid == 0:  # the child: must not use the parent's sockets
        code = 1
        try:
            ok = led.usage([day], now)[0].reserved == 5
            ok = ok and led.reserve("child", 5, [LimitCheck(day, 100)], now + 60, now) is None
            led.close()
            code = 0 if ok else 2
        finally:
            os._exit(code)
    code = wait_child(pid, 20)
    reserved = led.usage([day], now)[0].reserved  # and the parent's connections still work
    led.close()
    print(json.dumps({"child": code, "reserved": reserved}))


PROGRAMS = {"hold": _hold, "fork-lock": _fork_lock, "pg-fork": _pg_fork}

if __name__ == "__main__":
    PROGRAMS[sys.argv[1]](*sys.argv[2:])
