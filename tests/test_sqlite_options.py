"""The SQLite ledger's URL options (read strictly) and the modes of the files it creates."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from costwarden.errors import ConfigurationError
from costwarden.ledger import open_ledger
from costwarden.ledger.base import Bucket, LimitCheck
from costwarden.ledger.sqlite import SQLiteLedger
from costwarden.ledger.sqlite_options import parse_options
from tests.test_ledger_conformance import rec

NOW = 1_764_331_200.0
DAY = Bucket("global", "daily", 1_764_288_000, 1_764_374_400)


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("synchronus=full", ["'synchronus'", "did you mean 'synchronous'", "timeout"]),
        ("timout=5", ["'timout'", "did you mean 'timeout'"]),
        ("hold=100", ["'hold'", "did you mean 'holds'"]),
        ("journal=wal", ["'journal'", "Accepted: timeout", "checkpoint", "holds"]),
        ("timeout=-5", ["timeout", "0 or more", "'-5'"]),
        ("timeout=nan", ["timeout", "'nan'"]),
        ("timeout=inf", ["timeout", "'inf'"]),
        ("timeout=soon", ["timeout", "number of seconds", "'soon'"]),
        ("timeout=", ["timeout", "number of seconds"]),
        ("timeout", ["'timeout'", "needs a value"]),
        ("timeout=1&timeout=2", ["'timeout'", "twice"]),
        ("synchronous=fast", ["synchronous", "off, normal, full, extra", "'fast'"]),
        ("checkpoint=sometimes", ["checkpoint", "background or auto"]),
        ("holds=8", ["holds", "from 16", "'8'"]),
        ("holds=1e5", ["holds", "whole number"]),
        ("holds=-100", ["holds", "whole number"]),
    ],
)
def test_unknown_options_and_bad_values_are_refused_by_name(
    tmp_path: Path, query: str, words: list[str]
) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}?{query}"
    with pytest.raises(ConfigurationError) as caught:
        open_ledger(url)
    for word in words:
        assert word in str(caught.value)
    assert not list(tmp_path.iterdir()), "a refused URL must create nothing"


def test_good_options_are_read() -> None:
    opts = parse_options("sqlite:///x.db?timeout=0.5&synchronous=FULL&checkpoint=auto&holds=64")
    assert (opts.timeout, opts.synchronous, opts.background_checkpoints, opts.holds) == (
        0.5,
        "FULL",
        False,
        64,
    )
    assert parse_options("sqlite:///x.db", timeout=3).timeout == 3.0  # the keyword default
    assert parse_options("sqlite:///x.db?timeout=1", timeout=3).timeout == 1.0  # URL wins
    with pytest.raises(ConfigurationError, match="timeout"):
        parse_options("sqlite:///x.db", timeout=-1)


def test_synchronous_full_is_applied(tmp_path: Path) -> None:
    led = SQLiteLedger(f"sqlite:///{tmp_path / 's.db'}?synchronous=full")
    try:
        with led._read() as conn:
            assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    finally:
        led.close()


# -- file modes -----------------------------------------------------------------------------------
@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("umask_022")
def test_new_ledger_files_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    db = tmp_path / "spend.db"
    led = SQLiteLedger(f"sqlite:///{db}")
    try:
        led.append(rec(5), [DAY])  # a write: the -wal and -shm exist now
        assert led.reserve("h", 1, [LimitCheck(DAY, 100)], NOW + 60, NOW) is None
        files = {p.name: _mode(p) for p in tmp_path.iterdir()}
        assert files == {
            "spend.db": 0o600,
            "spend.db-wal": 0o600,
            "spend.db-shm": 0o600,
            "spend.db-holds": 0o600,
        }
    finally:
        led.close()


@pytest.mark.usefixtures("umask_022")
def test_an_existing_files_mode_is_left_alone(tmp_path: Path) -> None:
    db = tmp_path / "spend.db"
    SQLiteLedger(f"sqlite:///{db}").close()
    db.chmod(0o640)  # the operator's choice, e.g. a group that reads reports
    led = SQLiteLedger(f"sqlite:///{db}")
    try:
        led.append(rec(5), [DAY])
        assert _mode(db) == 0o640
        assert _mode(tmp_path / "spend.db-holds") == 0o600
    finally:
        led.close()
