"""The SQLite ledger's hold board with many holds in flight: its fast steps beside its plain scans.

``python -m benchmarks hold_board [--quick]``. A gateway's holds live as long as their calls:
at 100 requests a second of 20 s streams, 2,000 holds of three buckets each are on the board,
and every admission reads the board under the ledger lock, the lock every process of the host
waits for. Timed per admission, with N live holds of three buckets already filed (N = 0, 100,
1,000, 10,000): ``reserved`` (the sums of three buckets) and one ``add`` + ``remove`` of a
three-bucket hold, each with the fast steps (sums of the whole board kept while nothing else
changed it; entries this process freed; one byte search of the map for a duplicate hold)
and with the plain scan of every entry (the same code with the fast steps switched
off), side by side in one run; median of 5 rounds.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from costwarden.ledger import sqlite_holds
from costwarden.ledger.sqlite_holds import HoldBoard, digest64

NOW = 1_764_331_200.0
ASKED = (digest64("global|daily"), digest64("user|daily"), digest64("key|daily"))


def _filled(path: str, live: int) -> HoldBoard:
    board = HoldBoard(path, 1, max(1_024, 4 * live + 64))
    board.lock()
    for i in range(live):
        other = (digest64(f"user{i % 50}|daily"), digest64(f"key{i % 200}|daily"))
        board.add(digest64(f"live{i}"), (ASKED[0], *other), 1_000, NOW + 600, NOW)
    return board


def _time(board: HoldBoard, n: int) -> tuple[float, float]:
    """µs per ``reserved`` of three buckets, and per ``add`` + ``remove`` of one hold."""
    sums = dict.fromkeys(ASKED, 0)
    board.reserved(sums, NOW)  # the fast step sums the board once, then keeps the sums
    t0 = time.perf_counter()
    for _ in range(n):
        board.reserved(sums, NOW)
    t1 = time.perf_counter()
    for i in range(n):
        tag = digest64(f"new{i}")
        board.add(tag, ASKED, 10, NOW + 60, NOW)
        board.remove(tag)
    t2 = time.perf_counter()
    return 1e6 * (t1 - t0) / n, 1e6 * (t2 - t1) / n


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    rounds = 3 if quick else 5
    print("live holds | reserved fast / plain (µs) | add+remove fast / plain (µs)")
    with tempfile.TemporaryDirectory() as d:
        for live in (0, 100, 1_000, 10_000):
            n = max(50, 20_000 // max(1, live)) if not quick else 50
            figures: dict[str, list[tuple[float, float]]] = {"fast": [], "plain": []}
            board = _filled(str(Path(d) / f"b{live}-holds"), live)
            try:
                for _ in range(rounds):
                    for mode in ("fast", "plain"):
                        saved = sqlite_holds._FIND_FROM, sqlite_holds._SUM_FROM
                        if mode == "plain":  # the fast steps never apply
                            sqlite_holds._FIND_FROM = sqlite_holds._SUM_FROM = 10**9
                            board._sums = None
                        try:
                            figures[mode].append(_time(board, n))
                        finally:
                            sqlite_holds._FIND_FROM, sqlite_holds._SUM_FROM = saved
            finally:
                board.close()
            med = {
                k: [statistics.median(x[i] for x in v) for i in (0, 1)] for k, v in figures.items()
            }
            print(
                f"{live:10} | {med['fast'][0]:8.1f} / {med['plain'][0]:8.1f} "
                f"| {med['fast'][1]:8.1f} / {med['plain'][1]:8.1f}",
                flush=True,
            )


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
