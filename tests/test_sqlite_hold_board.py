"""The SQLite ledger's hold board (ledger/sqlite_holds.py) and the totals cache it guards.

The board is a shared-memory file, so these tests look at it the way other processes do: as
bytes in a file, through a second handle, after a killed writer, beside a recreated database.
"""

from __future__ import annotations

import sqlite3
import struct
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from costwarden.budget import Budget
from costwarden.errors import LedgerError, LedgerUnavailableError
from costwarden.ledger.base import Bucket, LimitCheck
from costwarden.ledger.sqlite import SQLiteLedger
from costwarden.ledger.sqlite_holds import ENTRY, HEADER, HoldBoard, digest64
from costwarden.manager import BudgetManager
from costwarden.records import UsageRecord
from tests.procs import Child
from tests.test_ledger_conformance import rec

NOW = 1_764_331_200.0  # 2025-11-28 12:00 UTC
DAY = Bucket("global", "daily", 1_764_288_000, 1_764_374_400)
USER_DAY = Bucket("user:alice", "daily", 1_764_288_000, 1_764_374_400)


def board_at(tmp_path: Path, ledger_id: int = 7, capacity: int = 64) -> HoldBoard:
    board = HoldBoard(str(tmp_path / "b-holds"), ledger_id, capacity)
    board.lock()
    return board


def sums_of(board: HoldBoard, *buckets: int, now: float = NOW) -> dict[int, int]:
    sums = dict.fromkeys(buckets, 0)
    board.reserved(sums, now)
    return sums


def test_holds_count_on_their_buckets_until_removed_or_expired(tmp_path: Path) -> None:
    board = board_at(tmp_path)
    board.add(digest64("h1"), [1, 2], 30, NOW + 10, NOW)
    board.add(digest64("h2"), [2], 5, NOW + 1, NOW)
    assert sums_of(board, 1, 2, 3) == {1: 30, 2: 35, 3: 0}
    assert sums_of(board, 1, 2, now=NOW + 1) == {1: 30, 2: 30}  # h2 expired at NOW + 1
    assert board.exists(digest64("h1"), NOW) and not board.exists(digest64("h2"), NOW + 1)
    assert board.remove(digest64("h1")) is True
    assert board.remove(digest64("h1")) is False
    assert sums_of(board, 1, 2) == {1: 0, 2: 5}
    assert board.purge(NOW + 2) == 1
    assert board.live_holds(NOW) == 0


def test_freed_entries_are_reused_and_the_scan_shrinks(tmp_path: Path) -> None:
    board = board_at(tmp_path, capacity=16)
    for i in range(16):
        board.add(digest64(f"h{i}"), [i], 1, NOW + 10, NOW)
    with pytest.raises(LedgerError, match="full"):
        board.add(digest64("one-more"), [99], 1, NOW + 10, NOW)
    assert board.remove(digest64("h3"))
    board.add(digest64("one-more"), [99], 1, NOW + 10, NOW)  # takes h3's entry
    assert sums_of(board, 99, 3) == {99: 1, 3: 0}
    for i in range(16):
        board.remove(digest64(f"h{i}"))
    board.remove(digest64("one-more"))
    high = struct.unpack_from("<I", board._map, 16)[0]
    assert high == 0


def test_expired_entries_are_reused_when_the_board_is_full(tmp_path: Path) -> None:
    board = board_at(tmp_path, capacity=16)
    for i in range(16):
        board.add(digest64(f"h{i}"), [i], 1, NOW + 1, NOW)
    board.add(digest64("later"), [1, 2], 4, NOW + 100, NOW + 5)  # all 16 expired by now
    assert sums_of(board, 1, 2, now=NOW + 5) == {1: 4, 2: 4}


def test_a_live_duplicate_hold_id_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    board = board_at(tmp_path)
    board.add(digest64("same"), [1], 10, NOW + 10, NOW)
    with pytest.raises(LedgerError, match="'same' already exists"):
        board.add(digest64("same"), [2], 10, NOW + 10, NOW, name="same")
    assert sums_of(board, 1, 2) == {1: 10, 2: 0}


def test_an_entry_torn_before_its_tag_is_free(tmp_path: Path) -> None:
    """A writer killed after the payload but before the tag leaves nothing that counts."""
    board = board_at(tmp_path)
    board.add(digest64("whole"), [1], 10, NOW + 10, NOW)
    at = HEADER.size + 1 * ENTRY.size  # the next entry: payload written, tag never was
    struct.pack_into("<Qqd", board._map, at + 8, 1, 999, NOW + 10)
    struct.pack_into("<I", board._map, 16, 2)
    assert sums_of(board, 1) == {1: 10}


def test_the_board_of_a_recreated_database_is_wiped(tmp_path: Path) -> None:
    path = tmp_path / "spend.db"
    led = SQLiteLedger(f"sqlite:///{path}")
    assert led.reserve("h", 50, [LimitCheck(DAY, 100)], NOW + 600, NOW) is None
    led.close()
    for suffix in ("", "-wal", "-shm"):  # the database goes; its board file stays
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    assert Path(f"{path}-holds").exists()
    fresh = SQLiteLedger(f"sqlite:///{path}")
    try:
        assert fresh.usage([DAY], NOW)[0].reserved == 0
        assert fresh.reserve("h2", 100, [LimitCheck(DAY, 100)], NOW + 600, NOW) is None
    finally:
        fresh.close()


def test_a_too_small_capacity_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="at least 16"):
        HoldBoard(str(tmp_path / "x-holds"), 1, capacity=4)


def test_holds_url_option_sets_the_capacity_of_a_new_board(tmp_path: Path) -> None:
    led = SQLiteLedger(f"sqlite:///{tmp_path / 's.db'}?holds=32")
    try:
        assert led._board.capacity == 32
        checks = [LimitCheck(DAY, 10**12)]
        for i in range(32):
            assert led.reserve(f"h{i}", 1, checks, NOW + 60, NOW) is None
        with pytest.raises(LedgerError, match=r"\?holds="):
            led.reserve("h-extra", 1, checks, NOW + 60, NOW)
    finally:
        led.close()


# -- the totals cache ---------------------------------------------------------------------------
def test_a_second_handle_sees_every_write_of_the_first(tmp_path: Path) -> None:
    """Each handle caches totals; the generation makes the other's writes visible at once."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    a, b = SQLiteLedger(url), SQLiteLedger(url)
    checks = [LimitCheck(DAY, 100), LimitCheck(USER_DAY, 100)]
    try:
        assert a.check(60, checks, NOW) is None  # a has now cached both buckets at 0
        b.append(rec(50, user_id="alice"), [DAY, USER_DAY])
        denial = a.check(60, checks, NOW)
        assert denial is not None and denial.spent == 50
        assert b.reserve("hb", 40, checks, NOW + 60, NOW) is None
        denial = a.check(20, checks, NOW)
        assert denial is not None and (denial.spent, denial.reserved) == (50, 40)
        b.reset(DAY, NOW)
        assert a.check(20, [LimitCheck(DAY, 100)], NOW) is None  # 0 spent + 40 held + 20
        a.append(rec(10, user_id="alice"), [DAY, USER_DAY], "hb")  # a settles b's hold
        assert b.usage([DAY, USER_DAY], NOW) == a.usage([DAY, USER_DAY], NOW)
        assert [u.spent for u in b.usage([DAY, USER_DAY], NOW)] == [10, 60]
    finally:
        a.close()
        b.close()


def test_a_failed_record_leaves_the_cache_and_the_hold_as_they_were(tmp_path: Path) -> None:
    led = SQLiteLedger(f"sqlite:///{tmp_path / 's.db'}")
    checks = [LimitCheck(DAY, 100)]
    try:
        led.append(rec(30), [DAY])
        assert led.reserve("h", 20, checks, NOW + 60, NOW) is None
        bad = rec(5)
        object.__setattr__(bad, "cost_nanos", -1)  # the CHECK constraint refuses it
        with pytest.raises(sqlite3.IntegrityError):
            led.append(bad, [DAY], "h")
        u = led.usage([DAY], NOW)[0]
        assert (u.spent, u.reserved) == (30, 20)
        assert led.check(50, checks, NOW) is None and led.check(51, checks, NOW) is not None
    finally:
        led.close()


def test_a_forked_child_gets_its_own_ledger_lock(tmp_path: Path) -> None:
    """An inherited flock would be shared with the parent; the child must reopen the board.

    The fork happens in a driver process (tests/procs.py ``fork-lock``): the forked child holds
    the ledger lock for 0.5 s through its copy of the ledger, and the parent must wait for it.
    """
    out = Child("fork-lock", f"sqlite:///{tmp_path / 's.db'}").result(timeout=60)
    assert isinstance(out, dict)
    assert out["child"] == 0
    assert out["waited"] > 0.1, "the parent did not wait for the child's ledger lock"


def test_a_writer_killed_holding_the_ledger_lock_frees_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    led = SQLiteLedger(url)
    holder = Child("hold", url)
    try:
        holder.expect("locked")
        holder.kill()
        assert led.reserve("h", 1, [LimitCheck(DAY, 10)], NOW + 60, NOW) is None
    finally:
        holder.kill()
        led.close()


def test_a_stopped_lock_holder_makes_calls_fail_closed_after_the_timeout(tmp_path: Path) -> None:
    """A blocking flock has no timeout; the ledger's own timeout must still apply."""
    url = f"sqlite:///{tmp_path / 's.db'}?timeout=0.3"
    mgr = BudgetManager(Budget(1.0, None, None), ledger=url)
    open_mgr = BudgetManager(Budget(1.0, None, None), ledger=url, fail_open=True)
    holder = Child("hold", url)
    try:
        holder.expect("locked")
        holder.stop()  # SIGSTOP: it keeps the lock and will never let go by itself
        started = time.monotonic()
        with pytest.raises(LedgerUnavailableError, match="ledger lock"):
            mgr.reserve(0.01)
        assert 0.25 < time.monotonic() - started < 3.0
        with pytest.raises(LedgerUnavailableError):
            mgr.record_spend(UsageRecord("gpt-4o-mini", 10, 10))
        with pytest.raises(LedgerUnavailableError, match="ledger lock"):
            SQLiteLedger(url)  # opening waits no longer either
        assert open_mgr.reserve(0.01).unchecked  # the configured policy applies
    finally:
        holder.kill()
    try:
        mgr.reserve(0.01).release()  # and all is well once the holder is gone
    finally:
        mgr.close()
        open_mgr.close()


TIMEOUT = 2.0
MARGIN = 0.5


def _waited(call: Callable[[], object]) -> float:
    started = time.monotonic()
    with pytest.raises(LedgerUnavailableError):
        call()
    return time.monotonic() - started


def test_a_stopped_holder_delays_a_reservation_by_the_timeout_once(tmp_path: Path) -> None:
    """The manager purges expired holds before some reservations: that must not be a second
    wait of ``timeout`` for the same stopped holder."""
    url = f"sqlite:///{tmp_path / 's.db'}?timeout={TIMEOUT}"
    mgr = BudgetManager(Budget(1.0, None, None), ledger=url)
    holder = Child("hold", url)
    try:
        holder.expect("locked")
        holder.stop()
        assert TIMEOUT - 0.1 < _waited(lambda: mgr.reserve(0.01)) <= TIMEOUT + MARGIN
        assert _waited(mgr.get_status) <= TIMEOUT + MARGIN
    finally:
        holder.kill()
        mgr.close()


def test_the_ledger_lock_and_sqlites_write_lock_share_one_deadline(tmp_path: Path) -> None:
    """A holder that lets go of the ledger lock after 1 s but keeps SQLite's write lock: the
    record waits 1 s for the one, and only what is left of the timeout for the other."""
    url = f"sqlite:///{tmp_path / 's.db'}?timeout={TIMEOUT}"
    mgr = BudgetManager(Budget(1.0, None, None), ledger=url)
    mgr.reserve(0.01).release()  # warm: prices and plans are not part of the wait
    holder = Child("hold", url, "write", "release=1.0")
    try:
        holder.expect("locked")
        waited = _waited(lambda: mgr.record_spend(UsageRecord("gpt-4o-mini", 10, 10)))
        assert TIMEOUT - 0.1 < waited <= TIMEOUT + MARGIN
    finally:
        holder.kill()
        mgr.close()


def test_opening_a_ledger_waits_the_timeout_in_all(tmp_path: Path) -> None:
    """Opening takes SQLite's write lock (migrations), then the ledger lock (the board): a
    holder that lets go of the first after 1 s and never of the second."""
    url = f"sqlite:///{tmp_path / 's.db'}?timeout={TIMEOUT}"
    SQLiteLedger(url).close()
    holder = Child("hold", url, "write", "commit=1.0")
    try:
        holder.expect("locked")
        assert _waited(lambda: SQLiteLedger(url)) <= TIMEOUT + MARGIN
    finally:
        holder.kill()


def test_a_reused_and_changed_list_of_checks_is_read_afresh(tmp_path: Path) -> None:
    """Work is remembered per tuple (immutable) only; a list a caller changes is re-read."""
    led = SQLiteLedger(f"sqlite:///{tmp_path / 's.db'}")
    try:
        checks = [LimitCheck(DAY, 100)]
        assert led.reserve("a", 60, checks, NOW + 60, NOW) is None
        checks[0] = LimitCheck(USER_DAY, 100)
        assert led.reserve("b", 60, checks, NOW + 60, NOW) is None  # alice's day is empty
        buckets = [DAY]
        led.append(rec(5), buckets)
        buckets[0] = USER_DAY
        led.append(rec(7), buckets)
        assert [(u.spent, u.reserved) for u in led.usage([DAY, USER_DAY], NOW)] == [
            (5, 60),
            (7, 60),
        ]
    finally:
        led.close()
