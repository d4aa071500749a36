"""Writers killed with SIGKILL at random points, many times, on SQLite and PostgreSQL.

Each round forks fresh writer processes (several threads each, reserving, committing and
releasing as fast as they can with short hold TTLs) and kills every one of them at its own
random instant: in the middle of a transaction, between reserve and commit, during the first
start's migration. After every round the ledger must open cleanly (SQLite's
``integrity_check`` is "ok"), every record a writer acknowledged must be there with its cost,
the per-period totals must equal the sum of the records (a record and its totals are one
transaction), and the holds the dead writers left must stop counting once their TTL passes.

A writer acknowledges a record by writing its id to an append-only file after ``commit``
returns; ``os.write`` puts it in the kernel before the process can be killed, so an
acknowledged id is one the ledger told a caller was stored.

Writers are forked from a "zygote": this module run as a script, which has imported
everything once and forks a writer per request, so a round costs milliseconds, not an
interpreter start per process. No ledger is ever opened in the zygote itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sys
import threading
import time
from pathlib import Path

from costwarden.budget import Budget
from costwarden.errors import BudgetExceededError, LedgerUnavailableError
from costwarden.manager import BudgetManager
from costwarden.records import UsageRecord

HOLD_TTL = 0.5
WRITER_BUDGET = Budget(daily_limit=1_000_000.0, monthly_limit=None, per_request_limit=None)


# -- writer side (forked from the zygote) -------------------------------------------------------
def _write_forever(url: str, seed: int, ack_path: str, threads: int) -> None:
    """Reserve, commit (acknowledging each record) or release, until killed."""
    ack = os.open(ack_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        manager = BudgetManager(WRITER_BUDGET, ledger=url, hold_ttl=HOLD_TTL)
    except Exception as exc:
        _note_death(ack_path, "open", exc)
        raise

    def run(index: int) -> None:
        try:
            loop(index)
        except BaseException as exc:
            _note_death(ack_path, "run", exc)
            raise

    def loop(index: int) -> None:
        rng = random.Random(seed * 100 + index)
        n = 0
        while True:
            n += 1
            try:
                holds = [manager.reserve(rng.randint(1, 1000) / 10_000) for _ in range(3)]
            except (BudgetExceededError, LedgerUnavailableError):
                continue
            for k, hold in enumerate(holds):
                if rng.random() < 0.15:
                    manager.release(hold)
                    continue
                cost = rng.randint(0, hold.amount_nanos // 100_000) / 10_000
                stored = manager.commit(
                    hold,
                    UsageRecord(
                        "crash-model", 5, 5, cost_usd=cost, request_id=f"{seed}-{index}-{n}-{k}"
                    ),
                )
                os.write(ack, f"{stored.id} {stored.cost_nanos} {stored.request_id}\n".encode())

    workers = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()


def _note_death(ack_path: str, stage: str, exc: BaseException) -> None:
    """Leave why a writer died on its own (not by SIGKILL) beside its acknowledgements."""
    with open(ack_path + ".err", "a") as f:
        f.write(f"{stage} {type(exc).__name__}: {exc}\n")


def _zygote() -> None:
    """Fork one writer per JSON request on stdin and answer with its pid."""
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps killed writers
    with contextlib.suppress(ImportError):  # imported once here, not in every writer
        import costwarden.ledger.postgres  # noqa: F401
    print(json.dumps("ready"), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        # Forking is safe here only because this process has one thread (no ledger is open).
        assert threading.active_count() == 1, threading.enumerate()
        pid = os.fork()
        if pid == 0:  # the writer
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            try:
                _write_forever(cmd["url"], cmd["seed"], cmd["ack"], cmd["threads"])
            finally:
                os._exit(1)
        print(json.dumps(pid), flush=True)


if __name__ == "__main__":
    _zygote()
    sys.exit(0)

# -- test side ----------------------------------------------------------------------------------
from collections.abc import Callable, Iterator  # noqa: E402

import psycopg  # noqa: E402
import pytest  # noqa: E402

from costwarden.ledger import Bucket, Ledger, open_ledger  # noqa: E402
from costwarden.ledger.sqlite import SQLiteLedger  # noqa: E402
from tests import pg  # noqa: E402
from tests.procs import Child  # noqa: E402

ROUNDS = 20
WRITERS_PER_ROUND = 3


class Zygote:
    """The zygote, started by subprocess; every answer it owes has a deadline."""

    def __init__(self) -> None:
        self.child = Child(module="tests.test_crash_safety", capture_stderr=False)
        assert json.loads(self.child.readline(timeout=30)) == "ready"

    def fork_writer(self, url: str, seed: int, ack: Path, threads: int = 4) -> int:
        cmd = {"url": url, "seed": seed, "ack": str(ack), "threads": threads}
        self.child.send(json.dumps(cmd))
        pid = json.loads(self.child.readline(timeout=15))
        assert isinstance(pid, int)
        return pid

    def stop(self) -> None:
        self.child.close_stdin_and_wait(timeout=10)


@pytest.fixture(scope="module")
def zygote() -> Iterator[Zygote]:
    z = Zygote()
    yield z
    z.stop()


def _kill_and_wait(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:  # it died on its own first; the round's checks say why
        return
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.005)
    raise AssertionError(f"writer {pid} survived SIGKILL")


def _acknowledged(ack_dir: Path) -> dict[int, tuple[int, str]]:
    out: dict[int, tuple[int, str]] = {}
    for path in ack_dir.glob("*.ack"):
        for line in path.read_text().splitlines():
            rid, cost, request_id = line.split()
            out[int(rid)] = (int(cost), request_id)
    return out


def _wait_for_first_ack(ack: Path, timeout: float) -> None:
    """Wait until a writer has acknowledged a record, or has died on its own (an .err file),
    or ``timeout`` passed (the round's checks then say what went wrong)."""
    deadline = time.time() + timeout
    err = ack.with_name(ack.name + ".err")
    while time.time() < deadline:
        if err.exists() or (ack.exists() and ack.stat().st_size > 0):
            return
        time.sleep(0.002)


def _all_buckets_of(led: Ledger) -> list[Bucket]:
    """The daily buckets the writers' records fell in (a run may cross midnight UTC)."""
    days = {r.ts_us // 86_400_000_000 * 86_400 for r in led.records()}
    return [Bucket("global", "daily", d, d + 86_400) for d in sorted(days)]


def _crash_rounds(
    url: str,
    zygote: Zygote,
    ack_dir: Path,
    *,
    sqlite: bool,
    settle: Callable[[], None] = lambda: None,
) -> None:
    rng = random.Random(20261128)
    rounds_with_leftover_holds = 0
    open_failures: list[str] = []
    seed = 0
    round_no = -1
    # At least ROUNDS rounds; on a loaded machine writers may be killed before their first
    # commit more often, so go on (up to 4x) until more than ROUNDS records were acknowledged.
    while True:
        round_no += 1
        if round_no >= ROUNDS and (len(_acknowledged(ack_dir)) > ROUNDS or round_no >= 4 * ROUNDS):
            break
        pids, acks = [], []
        for _ in range(WRITERS_PER_ROUND):
            seed += 1
            acks.append(ack_dir / f"{seed}.ack")
            pids.append(zygote.fork_writer(url, seed, acks[-1]))
        # Each writer dies at its own random instant. The first of a round dies within 0.3 s
        # of its fork, often while opening the ledger or migrating it; the others die within
        # 0.3 s of their first acknowledged record, so that however slow a loaded machine is
        # to connect, most deaths land among live transactions and records get acknowledged.
        started = time.time()
        first, *others = pids
        time.sleep(max(0.0, started + rng.uniform(0.0, 0.3) - time.time()))
        _kill_and_wait(first)
        for pid, ack in zip(others, acks[1:], strict=True):
            _wait_for_first_ack(ack, timeout=30)
            time.sleep(rng.uniform(0.0, 0.3))
            _kill_and_wait(pid)
        crashed_at = time.time()  # every hold filed so far was filed before this instant
        settle()

        for err in ack_dir.glob("*.err"):
            # A writer may only fail by finding the ledger unavailable while opening it (SQLite
            # can answer "database is locked" to simultaneous first opens); nothing else.
            for line in err.read_text().splitlines():
                assert line.startswith("open LedgerUnavailableError"), line
                open_failures.append(line)
            err.unlink()

        led = open_ledger(url)  # opens cleanly after the crash (and migrates if it never did)
        try:
            if sqlite:
                assert isinstance(led, SQLiteLedger)
                assert led.integrity_check() == "ok", f"round {round_no}"
            assert led.schema_version >= 1  # type: ignore[attr-defined]
            acked = _acknowledged(ack_dir)
            records = {r.id: r for r in led.records()}
            missing = set(acked) - set(records)
            assert not missing, f"round {round_no}: acknowledged records lost: {sorted(missing)}"
            for rid, (cost, request_id) in acked.items():
                assert (records[rid].cost_nanos, records[rid].request_id) == (cost, request_id)
            assert len({r.request_id for r in records.values()}) == len(records)  # no doubles
            buckets = _all_buckets_of(led)
            usages = led.usage(buckets, crashed_at)
            # a record and its totals are one transaction: they agree after any crash
            assert sum(u.spent for u in usages) == sum(r.cost_nanos for r in records.values())
            assert sum(u.count for u in usages) == len(records)
            if any(u.reserved for u in usages):
                rounds_with_leftover_holds += 1
            # the dead writers' holds stop counting when their TTL has passed
            later = led.usage(buckets, crashed_at + HOLD_TTL + 0.001)
            assert all(u.reserved == 0 for u in later), f"round {round_no}: holds outlive TTL"
        finally:
            led.close()

    assert len(open_failures) < round_no * WRITERS_PER_ROUND // 4, open_failures
    # the kills did land mid-flight: some rounds left holds behind
    assert rounds_with_leftover_holds > 0
    assert len(_acknowledged(ack_dir)) > ROUNDS
    # after the TTL a fresh manager can reserve all that is left of a budget set just above
    # today's spend (dead holds would block it), and a purge removes every hold row
    time.sleep(HOLD_TTL + 0.05)
    probe = BudgetManager(WRITER_BUDGET, ledger=url)
    try:
        spent_today = probe.get_status()["daily_spent"]
        probe.set_budget(Budget(spent_today + 1.0, None, None))
        probe.reserve(1.0).release()
        probe.ledger.purge_expired_holds(time.time())
        buckets = _all_buckets_of(probe.ledger)
        assert all(u.reserved == 0 for u in probe.ledger.usage(buckets, float("-inf")))
    finally:
        probe.close()


def test_sqlite_survives_sigkill(zygote: Zygote, tmp_path: Path) -> None:
    ack_dir = tmp_path / "acks"
    ack_dir.mkdir()
    _crash_rounds(f"sqlite:///{tmp_path / 'crash.db'}", zygote, ack_dir, sqlite=True)


@pytest.mark.postgres
def test_postgres_survives_sigkill(zygote: Zygote, tmp_path: Path) -> None:
    ack_dir = tmp_path / "acks"
    ack_dir.mkdir()
    server = pg.require_postgres()
    with pg.temp_schema_url(server) as url:
        app = "cw_crash_" + url.rsplit("schema=", 1)[1]

        def settle() -> None:
            """Wait until the server has ended the dead writers' sessions.

            A statement a writer sent just before it died still runs to its end (and commits)
            on the server; the checks must not read the ledger half-way through one.
            """
            deadline = time.time() + 15
            with psycopg.connect(server, autocommit=True) as conn:
                while True:
                    row = conn.execute(
                        "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = %s",
                        (app,),
                    ).fetchone()
                    if row is not None and row[0] == 0:
                        return
                    assert time.time() < deadline, "dead writers' sessions linger on the server"
                    time.sleep(0.01)

        writer_url = f"{url}&pool_min=1&pool_max=4&application_name={app}"
        _crash_rounds(writer_url, zygote, ack_dir, sqlite=False, settle=settle)
