"""SQLite-specific behaviour: background WAL checkpoints, many processes opening a new file."""

from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path

import pytest

from costwarden.budget import Budget
from costwarden.errors import ConfigurationError
from costwarden.ledger.sqlite import SQLiteLedger
from costwarden.manager import BudgetManager
from costwarden.records import UsageRecord


def test_background_checkpoints_keep_the_wal_short(tmp_path: Path) -> None:
    db = tmp_path / "l.db"
    m = BudgetManager(Budget(daily_limit=None, per_request_limit=None), ledger=f"sqlite:///{db}")
    ledger = m.ledger
    assert isinstance(ledger, SQLiteLedger) and ledger._checkpointer is not None
    for _ in range(300):
        m.record_spend(UsageRecord("gpt-4o", 10, 10, 0.001))
    deadline = time.monotonic() + 5
    while ledger._checkpointer.checkpoints == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ledger._checkpointer.checkpoints >= 1
    thread = ledger._checkpointer._thread
    m.close()
    thread.join(2)
    assert not thread.is_alive()


def test_a_relative_path_names_the_same_file_after_a_chdir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sqlite:///spend.db is the file in the working directory *when the ledger opened*: the
    checkpointer thread connects later, after the caller moved elsewhere, and must not create
    (and checkpoint) an empty spend.db there."""
    opened_in, moved_to = tmp_path / "app", tmp_path / "elsewhere"
    opened_in.mkdir()
    moved_to.mkdir()
    monkeypatch.chdir(opened_in)
    m = BudgetManager(Budget(daily_limit=None, per_request_limit=None), ledger="sqlite:///spend.db")
    ledger = m.ledger
    assert isinstance(ledger, SQLiteLedger) and ledger._checkpointer is not None
    assert ledger.path == str(opened_in / "spend.db")
    monkeypatch.chdir(moved_to)
    m.record_spend(UsageRecord("gpt-4o", 10, 10, 0.001))
    deadline = time.monotonic() + 5
    while ledger._checkpointer.checkpoints == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ledger._checkpointer.checkpoints >= 1
    assert len(m.records()) == 1
    m.close()
    assert not (moved_to / "spend.db").exists()
    assert (opened_in / "spend.db").stat().st_size > 0


def test_auto_checkpoint_mode_has_no_thread(tmp_path: Path) -> None:
    ledger = SQLiteLedger(f"sqlite:///{tmp_path / 'a.db'}?checkpoint=auto")
    assert ledger._checkpointer is None
    ledger.close()
    with pytest.raises(ConfigurationError):
        SQLiteLedger(f"sqlite:///{tmp_path / 'b.db'}?checkpoint=sometimes")


def _open_many(folder: str) -> int:
    failures = 0
    for k in range(15):
        try:
            SQLiteLedger(f"sqlite:///{folder}/f{k}.db").close()
        except Exception:
            failures += 1
    return failures


def test_processes_opening_new_files_at_once(tmp_path: Path) -> None:
    # Switching a new file to WAL is not covered by the busy handler; the ledger retries.
    ctx = mp.get_context("spawn")
    with ctx.Pool(4) as pool:
        assert sum(pool.map(_open_many, [str(tmp_path)] * 4)) == 0
