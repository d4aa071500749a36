"""The hold board's fast steps (a byte search of the map, entries this process freed) give the
answers of its plain scans, on boards big enough for them to run, with two handles on one file
(another process's adds and removes make this one's hints stale)."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from costwarden.errors import LedgerError
from costwarden.ledger import sqlite_holds
from costwarden.ledger.sqlite_holds import ENTRY, HEADER, HoldBoard, digest64

NOW = 1_764_331_200.0
BUCKETS = (11, 12, 13, 2**63 + 5)
# Amounts and tags equal to a bucket's digest put its bytes at the wrong offsets of entries.
AMOUNTS = st.sampled_from([1, 7, 1_000, 11, 12, 2**62 + 3])
OPS = st.lists(
    st.one_of(
        st.tuples(
            st.just("add"),
            st.integers(0, 1),  # which handle
            st.integers(1, 60),  # the hold's name
            st.lists(st.sampled_from(BUCKETS), min_size=1, max_size=3, unique=True),
            AMOUNTS,
            st.sampled_from([-1.0, 5.0, 100.0]),  # expires relative to the clock
        ),
        st.tuples(st.just("remove"), st.integers(0, 1), st.integers(1, 60)),
        st.tuples(st.just("tick"), st.floats(-3, 10)),
    ),
    max_size=80,
)


def _plain_sums(board: HoldBoard, now: float) -> dict[int, int]:
    sums = dict.fromkeys(BUCKETS, 0)
    for tag, bucket, amount, expires_at in board._entries():
        if tag and bucket in sums and expires_at > now:
            sums[bucket] += amount
    return sums


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=OPS)
def test_fast_steps_agree_with_the_plain_scan(
    tmp_path_factory: pytest.TempPathFactory, ops: list[Any]
) -> None:
    path = str(tmp_path_factory.mktemp("board") / "b-holds")
    boards = [HoldBoard(path, 7, 2_048), HoldBoard(path, 7, 2_048)]
    try:
        now = NOW
        # 300 long-lived holds of other buckets: the fast steps run above 32 entries per bucket.
        for i in range(300):
            boards[i % 2].add(digest64(f"bg{i}"), [BUCKETS[i % 4] + 100], 3, NOW + 1e6, now)
        live: dict[int, tuple[list[int], int, float]] = {}
        for op in ops:
            if op[0] == "add":
                _, who, name, buckets, amount, ttl = op
                tag = digest64(f"h{name}")
                exists = tag in live and live[tag][2] > now
                if exists:
                    with pytest.raises(LedgerError, match="already exists"):
                        boards[who].add(tag, buckets, amount, now + ttl, now)
                else:
                    if tag in live:  # expired: it no longer counts; drop it first as settling would
                        boards[who].remove(tag)
                    boards[who].add(tag, buckets, amount, now + ttl, now)
                    live[tag] = (buckets, amount, now + ttl)
            elif op[0] == "remove":
                _, who, name = op
                tag = digest64(f"h{name}")
                assert boards[who].remove(tag) is (tag in live)
                live.pop(tag, None)
            else:
                now += op[1]
            want = dict.fromkeys(BUCKETS, 0)
            for buckets, amount, expires_at in live.values():
                if expires_at > now:
                    for b in buckets:
                        want[b] += amount
            for board in boards:
                got = dict.fromkeys(BUCKETS, 0)
                board.reserved(got, now)
                assert got == want == _plain_sums(board, now)
    finally:
        for board in boards:
            board.close()


def test_a_stale_or_repeated_hint_is_never_used_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Entries this handle freed and another handle took since, or listed twice, are skipped:
    every live hold keeps entries of its own."""
    path = str(tmp_path / "b-holds")
    mine, other = HoldBoard(path, 7, 1_024), HoldBoard(path, 7, 1_024)
    for i in range(200):
        mine.add(digest64(f"bg{i}"), [1], 1, NOW + 100, NOW)
    mine.add(digest64("a"), [2, 3], 5, NOW + 100, NOW)  # entries 200 and 201
    mine.add(digest64("tail"), [1], 1, NOW + 100, NOW)  # 202: the high-water mark stays
    assert mine.remove(digest64("a")) and mine._freed == [200, 201]
    with monkeypatch.context() as m:  # the other handle scans, and takes entry 200
        m.setattr(sqlite_holds, "_FIND_FROM", 10**6)
        other.add(digest64("b"), [4], 7, NOW + 100, NOW)
    mine._freed.extend(mine._freed)  # every hint twice: 200, 201, 200, 201
    mine.add(digest64("c"), [5, 6, 8], 9, NOW + 100, NOW)
    tags = [t for t, *_ in ENTRY.iter_unpack(mine._map[HEADER.size : HEADER.size + 210 * 32])]
    assert tags[200] == digest64("b") and tags.count(digest64("c")) == 3
    sums = dict.fromkeys([1, 4, 5, 6, 8], 0)
    mine.reserved(sums, NOW)
    assert sums == {1: 201, 4: 7, 5: 9, 6: 9, 8: 9}


def test_the_fast_add_falls_back_to_reusing_expired_entries_when_full(tmp_path: Path) -> None:
    board = HoldBoard(str(tmp_path / "b-holds"), 7, 256)
    for i in range(256):
        board.add(digest64(f"h{i}"), [i], 1, NOW + 1, NOW)
    summed = dict.fromkeys(range(256), 0)
    board.reserved(summed, NOW)  # the sums are kept from here
    assert set(summed.values()) == {1}
    board.remove(digest64("h0"))  # one hint, the add wants two entries, none above high
    board.add(digest64("late"), [1, 2], 4, NOW + 100, NOW + 5)  # every other one expired
    # A clock set back to before the old holds expired: the entries "late" took count no more.
    back = dict.fromkeys(range(256), 0)
    board.reserved(back, NOW + 0.5)
    plain = dict.fromkeys(range(256), 0)
    for tag, bucket, amount, expires_at in board._entries():
        if tag and expires_at > NOW + 0.5:
            plain[bucket] += amount
    assert back == plain and back[1] == 4
    sums = {1: 0, 2: 0}
    board.reserved(sums, NOW + 5)
    assert sums == {1: 4, 2: 4}
    high = struct.unpack_from("<I", board._map, 16)[0]
    assert high == 256
