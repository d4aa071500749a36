"""Reports and CLI: grouping speed, writer speed, and the CLI end to end on a SQLite ledger.

``python -m benchmarks reports`` (add ``--quick`` for smaller sizes). Figures: records grouped
per second by each key; CSV/JSON/XLSX writing of a 1,000-row report; ``costwarden --version``
start-up; ``costwarden report`` as a real process on a SQLite ledger (fetch + group + write).
"""

from __future__ import annotations

import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from costwarden import reports
from costwarden.ledger import NewRecord, SQLiteLedger
from costwarden.records import StoredRecord

_T0_US = 1_790_000_000_000_000
_MODELS = ("gpt-4o", "gpt-4o-mini", "claude-3-haiku", "gemini-2.5-flash")


def _new(i: int, users: int) -> NewRecord:
    return NewRecord(
        ts_us=_T0_US + i * 60_000_000,  # one a minute: spans days
        model=_MODELS[i % len(_MODELS)],
        provider=None,
        input_tokens=100 + i % 900,
        output_tokens=50 + i % 400,
        cache_read_tokens=0,
        cache_write_tokens=0,
        reasoning_tokens=0,
        cost_nanos=1_000 + i % 97_000,
        user_id=f"user{i % users}",
        team=f"team{i % 13}",
        key=None,
        endpoint="/chat" if i % 3 else "/embed",
        request_id=None,
        tags=("prod",) if i % 2 else ("prod", "batch"),
        latency_ms=None,
        status="ok",
        estimated=False,
        price_source="caller",
    )


def _records(n: int, users: int = 200) -> list[StoredRecord]:
    return [_new(i, users).stored(i + 1) for i in range(n)]


def _best(fn: Callable[[], object], rounds: int = 3) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _grouping(sizes: list[int]) -> None:
    print("\ngrouping (build_report, in memory), best of 3:")
    print("| records | by | time | records/s |")
    print("|---|---|---|---|")
    for n in sizes:
        recs = _records(n)
        for by in ("user", "model", "day", "tag"):

            def group(by: str = by, recs: list[StoredRecord] = recs) -> object:
                return reports.build_report(recs, by)

            took = _best(group)
            print(f"| {n:,} | {by} | {took * 1000:.1f} ms | {n / took:,.0f} |")


def _writers() -> None:
    report = reports.build_report(_records(50_000, users=1_000), "user")
    print(f"\nwriters, a {len(report.rows):,}-row report, best of 3:")
    print("| format | time |")
    print("|---|---|")
    print(f"| csv | {_best(lambda: reports.write_csv(report, io.StringIO())) * 1000:.1f} ms |")
    print(f"| json | {_best(lambda: reports.write_json(report, io.StringIO())) * 1000:.1f} ms |")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "r.xlsx"
        print(f"| xlsx | {_best(lambda: reports.write_xlsx(report, path)) * 1000:.1f} ms |")


def _cli(n: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    env.pop("COSTWARDEN_CONFIG", None)
    env.pop("COSTWARDEN_LEDGER", None)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        ledger = SQLiteLedger(url)
        t0 = time.perf_counter()
        for i in range(n):
            ledger.append(_new(i, 200), [])
        fill = time.perf_counter() - t0
        t0 = time.perf_counter()
        fetched = ledger.records()
        fetch = time.perf_counter() - t0
        ledger.close()
        assert len(fetched) == n

        def run(*args: str) -> float:
            t0 = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "costwarden.cli", *args],
                env=env,
                cwd=tmp,
                check=True,
                capture_output=True,
            )
            return time.perf_counter() - t0

        startup = [run("--version") for _ in range(5)]
        report = [
            run("--ledger", url, "report", "--by", "user", "--format", "csv") for _ in range(3)
        ]
        status = [run("--ledger", url, "status", "--json") for _ in range(3)]
    print(f"\nCLI as a real process, SQLite ledger of {n:,} records (filled in {fill:.1f} s):")
    print("| what | median | best |")
    print("|---|---|---|")
    print(f"| ledger.records() of all {n:,} (in process) | {fetch * 1000:.0f} ms | - |")
    for name, times in (
        ("costwarden --version (start-up)", startup),
        ("costwarden report --by user --format csv", report),
        ("costwarden status --json", status),
    ):
        print(f"| {name} | {statistics.median(times) * 1000:.0f} ms | {min(times) * 1000:.0f} ms |")


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    _grouping([10_000] if quick else [10_000, 100_000, 1_000_000])
    _writers()
    _cli(20_000 if quick else 200_000)


if __name__ == "__main__":
    main(sys.argv[1:])
