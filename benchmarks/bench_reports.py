"""Reports and CLI: grouping speed, writer speed, the CLI end to end on a SQLite ledger, and
the export of a large ledger (records CSV, the XLSX workbook) with each one's peak memory.

``python -m benchmarks reports`` (add ``--quick`` for smaller sizes; ``--exports-only`` for the
export figures alone; ``--export-records=N`` for an export ledger of N records instead of 1M).
Figures: records grouped per second by each key; CSV/JSON/XLSX writing of a 1,000-row report;
``costwarden --version`` start-up; ``costwarden report`` as a real process on a SQLite ledger
(fetch + group + write); then, each in a fresh child process: ``write_ledger_csv`` (rows
straight from the ledger's batches, what ``costwarden records --format csv`` runs), the same
file through record objects (``write_records_csv`` over ``iter_records``), ``write_workbook``
(summary, charts, every grouping, the records sheet) and, for comparison, XlsxWriter's own
``constant_memory`` mode writing the same records sheet, with the child's peak RSS (``VmHWM``)
beside that of a child that only imports and opens the ledger.
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


_EXPORT_CHILD = r"""
import resource, sys, time
from costwarden import reports
from costwarden.ledger import open_ledger
url, what, out = sys.argv[1:4]
ledger = open_ledger(url)
t0, c0 = time.perf_counter(), time.process_time()
if what == "csv":
    with open(out, "w", newline="", encoding="utf-8") as fh:
        n = reports.write_ledger_csv(ledger, fh, timezone="Europe/Paris")
elif what == "csv-objects":
    with open(out, "w", newline="", encoding="utf-8") as fh:
        n = reports.write_records_csv(ledger.iter_records(), fh, timezone="Europe/Paris")
elif what == "xlsx":
    n = reports.write_workbook(out, ledger.iter_records(), timezone="Europe/Paris").requests
elif what == "xlsxwriter":
    import xlsxwriter
    from costwarden.reports.records import LocalClock
    clock = LocalClock("Europe/Paris")
    wb = xlsxwriter.Workbook(out, {"constant_memory": True})
    ws = wb.add_worksheet("Records")
    stamp = wb.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    n = 0
    for n, r in enumerate(ledger.iter_records(), start=1):
        row = (r.id, None, r.model, r.provider, r.user_id, r.team, r.key, r.endpoint,
               "|".join(r.tags), r.request_id, r.input_tokens, r.output_tokens,
               r.cache_read_tokens, r.cache_write_tokens, r.reasoning_tokens,
               r.cost_nanos / 1e9, r.cost_nanos, r.latency_ms, r.status, r.estimated,
               r.price_source)
        ws.write_row(n, 0, row)
        ws.write_number(n, 1, clock.excel(r.ts_us), stamp)
    wb.close()
else:
    n = 0
took, cpu = time.perf_counter() - t0, time.process_time() - c0
# VmHWM: this process image's own peak (ru_maxrss keeps the forking parent's peak across exec)
try:
    with open("/proc/self/status") as fh:
        peak = next(int(x.split()[1]) for x in fh if x.startswith("VmHWM:"))
except OSError:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(n, took, cpu, peak)
"""


def _fill_fast(url: str, n: int) -> None:
    """Bulk-insert ``n`` benchmark records in one transaction (setup only: the ledger's own
    append is one transaction per record, measured elsewhere)."""
    import json
    import sqlite3

    from costwarden.ledger.sqlite import path_from_url

    SQLiteLedger(url).close()  # the schema
    conn = sqlite3.connect(path_from_url(url))
    rows = []
    for i in range(n):
        r = _new(i, 2_000)
        rows.append(
            (
                r.ts_us,
                r.model,
                r.provider,
                r.input_tokens,
                r.output_tokens,
                r.cost_nanos,
                r.user_id,
                r.team,
                r.endpoint,
                json.dumps(list(r.tags)),
                r.status,
                r.price_source,
            )
        )
    conn.executemany(
        "INSERT INTO records (ts_us, model, provider, input_tokens, output_tokens, cost_nanos, "
        "user_id, team, endpoint, tags, status, price_source) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        rows,
    )
    conn.commit()
    conn.close()


def _exports(n: int, baseline_n: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/big.db"
        t0 = time.perf_counter()
        _fill_fast(url, n)
        small = f"sqlite:///{tmp}/small.db"
        _fill_fast(small, baseline_n)
        print(
            f"\nexports of a SQLite ledger, each in a fresh process (filled in "
            f"{time.perf_counter() - t0:.0f} s):"
        )
        print("| export | records | time | CPU | records/s | file | peak RSS | over idle |")
        print("|---|---|---|---|---|---|---|---|")

        def child(what: str, ledger: str, out: str) -> tuple[int, float, float, int]:
            done = subprocess.run(
                [sys.executable, "-c", _EXPORT_CHILD, ledger, what, out],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            )
            count, took, cpu, rss = done.stdout.split()
            return int(count), float(took), float(cpu), int(rss)

        _, _, _, idle = child("idle", url, "")
        for what, ledger, count in (
            ("csv", url, n),
            ("csv-objects", url, n),
            ("xlsx", url, n),
            ("xlsxwriter", small, baseline_n),
            ("xlsx", small, baseline_n),
        ):
            out = f"{tmp}/out.{'csv' if what.startswith('csv') else 'xlsx'}"
            got, took, cpu, rss = child(what, ledger, out)
            assert got == count
            size = os.path.getsize(out) / 1e6
            label = {
                "csv": "records CSV (write_ledger_csv: rows straight from the batches)",
                "csv-objects": "records CSV through record objects (write_records_csv)",
                "xlsx": "workbook (write_workbook: summary, charts, groupings, records)",
                "xlsxwriter": "XlsxWriter constant_memory, the records sheet alone",
            }[what]
            print(
                f"| {label} | {got:,} | {took:.1f} s | {cpu:.1f} s | {got / took:,.0f} | "
                f"{size:.0f} MB | {rss / 1024:.0f} MB | {(rss - idle) / 1024:.0f} MB |"
            )
            os.unlink(out)


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    if "--exports-only" not in argv:
        _grouping([10_000] if quick else [10_000, 100_000, 1_000_000])
        _writers()
        _cli(20_000 if quick else 200_000)
    n = 50_000 if quick else 1_000_000
    for a in argv:
        if a.startswith("--export-records="):
            n = int(a.split("=", 1)[1].replace("_", ""))
    _exports(n, min(n, 10_000 if quick else 100_000))


if __name__ == "__main__":
    main(sys.argv[1:])
