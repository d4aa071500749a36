"""Dashboard views on a 10M-record SQLite ledger: server-side time per view (target: every
view under 200 ms, DESIGN "Targets").

The ledger is bulk-built in SQL, consistent with what the ledger itself writes: records
(60 days up to now, 100 keys, each key one user's, 50 users in 8 teams, 8 models, 6
endpoints, 10 tags), the daily/weekly/monthly totals of every scope they count in (UTC), and
then the hourly rollup folded by ``refresh_rollups`` exactly as the dashboard does (timed: it
is what a dashboard pointed at an existing big ledger does once). Views are requested through
Starlette's in-process client, so the figure is the server's work (routing, queries, Jinja2)
without a network. ``--records N`` for a smaller run, ``--db PATH`` to keep and reuse the file.
"""

from __future__ import annotations

import sqlite3
import statistics
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

from costwarden import Budget, BudgetManager
from costwarden.ledger import SQLiteLedger

DAYS = 60
MODELS = (
    "gpt-4o", "gpt-4o-mini", "gpt-4.1", "o4-mini",
    "claude-sonnet-4-5", "claude-haiku-4-5", "gemini-2.5-flash", "gemini-2.5-pro",
)  # fmt: skip
VIEWS = (
    "/",
    "/?range=90d&step=week",
    "/?range=365d&step=month",
    "/?tz=Asia/Kolkata",
    "/?scope=user:user-7",
    "/?scope=tag:tag-3&range=7d",
    "/budgets",
    "/breakdown?by=model",
    "/breakdown?by=user",
    "/breakdown?by=team",
    "/breakdown?by=key",
    "/breakdown?by=tag",
    "/breakdown?by=endpoint",
    "/breakdown?by=model&scope=team:team-3",
    "/top",
    "/top?scope=user:user-7",
    "/top?range=1d",
    "/records",
    "/records?scope=key:key-42",
    "/alerts",
    "/advice",
    "/billed",
)


def build(path: Path, n: int, now: float) -> dict[str, float]:
    """Records and totals by SQL, then the rollup by refresh_rollups; seconds per phase."""
    SQLiteLedger(f"sqlite:///{path}").close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-400000")
    first = int((now - DAYS * 86_400) * 1e6)
    step = max(1, DAYS * 86_400 * 1_000_000 // n)
    model = "CASE (i * 7919) % 8 " + " ".join(f"WHEN {k} THEN '{m}'" for k, m in enumerate(MODELS))
    t0 = time.perf_counter()
    chunk = 1_000_000
    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        conn.execute("BEGIN")
        conn.execute(
            "WITH RECURSIVE s(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM s WHERE i + 1 < ?) "
            "INSERT INTO records (ts_us, model, input_tokens, output_tokens, cost_nanos, "
            "user_id, team, key, endpoint, request_id, tags, status, estimated, price_source) "
            f"SELECT ? + i * ?, {model} END, 100 + (i * 31) % 4000, 10 + (i * 17) % 800, "
            "1000 + (i * 2654435761) % 5000000, 'user-' || (i % 100 % 50), "
            "'team-' || (i % 100 % 50 % 8), 'key-' || (i % 100), '/v1/e' || ((i * 13) % 6), "
            "'r' || i, '[\"tag-' || ((i * 11) % 10) || '\"]', 'ok', 0, 'catalogue' FROM s",
            (lo, hi, first, step),
        )
        conn.execute("COMMIT")
    t1 = time.perf_counter()
    day = "ts_us / 86400000000"
    parts = [f"SELECT 'global' AS scope, {day} AS d, cost_nanos AS c FROM records"]
    for kind, col in (("user", "user_id"), ("team", "team"), ("key", "key"), ("model", "model")):
        parts.append(f"SELECT '{kind}:' || {col}, {day}, cost_nanos FROM records")
    parts.append(f"SELECT 'tag:' || endpoint, {day}, cost_nanos FROM records")
    parts.append(f"SELECT 'tag:' || json_extract(tags, '$[0]'), {day}, cost_nanos FROM records")
    daily = conn.execute(
        f"SELECT scope, d, SUM(c), COUNT(*) FROM ({' UNION ALL '.join(parts)}) GROUP BY scope, d"
    ).fetchall()
    totals: dict[tuple[str, str, int], list[int]] = defaultdict(lambda: [0, 0, 0])
    for scope, d, spent, count in daily:
        date = datetime.fromtimestamp(d * 86_400, UTC).date()
        monday = date - timedelta(days=date.weekday())
        month = date.replace(day=1)
        nxt = (month.replace(day=28) + timedelta(days=4)).replace(day=1)
        for period, a, b in (
            ("daily", d * 86_400, d * 86_400 + 86_400),
            ("weekly", _epoch(monday), _epoch(monday) + 7 * 86_400),
            ("monthly", _epoch(month), _epoch(nxt)),
        ):
            acc = totals[(scope, period, a)]
            acc[0] += spent
            acc[1] += count
            acc[2] = b
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO totals (scope, period, start, end_, spent, count) VALUES (?,?,?,?,?,?)",
        [(s, p, a, v[2], v[0], v[1]) for (s, p, a), v in totals.items()],
    )
    conn.execute("COMMIT")
    conn.close()
    t2 = time.perf_counter()
    led = SQLiteLedger(f"sqlite:///{path}")
    while led.refresh_rollups(200_000):
        pass
    led.close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("ANALYZE")
    conn.close()
    t3 = time.perf_counter()
    return {"records": t1 - t0, "totals": t2 - t1, "rollup": t3 - t2}


def _epoch(d: object) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp())  # type: ignore[attr-defined]


def time_views(path: Path, now: float, repeats: int) -> list[tuple[str, float, float, int]]:
    from starlette.testclient import TestClient

    from costwarden.dashboard import dashboard_app

    with BudgetManager(
        Budget(daily_limit=5_000.0, monthly_limit=100_000.0),
        ledger=f"sqlite:///{path}",
        clock=lambda: now,
    ) as mgr:
        mgr.set_budget(Budget(daily_limit=200.0), team="team-3")
        mgr.set_default_budget("user", Budget(daily_limit=100.0))
        app = dashboard_app(mgr, clock=lambda: now, background=True)
        out = []
        with TestClient(app, client=("127.0.0.1", 50000)) as client:  # the open app: loopback
            client.get("/advice")  # starts the advice in its thread; its time is below
            t0 = time.perf_counter()
            while "Reading the last week" in client.get("/advice").text:
                time.sleep(0.05)
            print(f"  recommendations (background, 20,000 newest records): "
                  f"{time.perf_counter() - t0:.2f} s")  # fmt: skip
            for view in VIEWS:
                client.get(view)  # warm (page cache, templates)
                samples = []
                size = 0
                for _ in range(repeats):
                    t = time.perf_counter()
                    r = client.get(view)
                    samples.append((time.perf_counter() - t) * 1000)
                    assert r.status_code == 200, (view, r.text[:300])
                    size = len(r.content)
                out.append((view, statistics.median(samples), max(samples), size))
    return out


def main(argv: list[str]) -> None:
    n = 10_000_000
    db: Path | None = None
    for a in argv:
        if a.startswith("--records="):
            n = int(a.split("=", 1)[1].replace("_", ""))
        if a.startswith("--db="):
            db = Path(a.split("=", 1)[1])
    now = time.time()
    with tempfile.TemporaryDirectory(prefix="cw-bench-dash-") as d:
        path = db or Path(d) / "dashboard.db"
        if not path.exists():
            phases = build(path, n, now)
            print(
                f"\nbuilt {n:,} records over {DAYS} days: records {phases['records']:.0f} s, "
                f"totals {phases['totals']:.0f} s, rollup (refresh_rollups) "
                f"{phases['rollup']:.0f} s = {n / phases['rollup']:,.0f} records/s; "
                f"{path.stat().st_size / 1e6:,.0f} MB"
            )
        conn = sqlite3.connect(path)
        count = conn.execute("SELECT COUNT(*) FROM records").fetchone()[0]
        rows = conn.execute("SELECT COUNT(*) FROM rollup").fetchone()[0]
        newest = conn.execute("SELECT MAX(ts_us) FROM records").fetchone()[0] / 1e6
        conn.close()
        print(f"ledger: {count:,} records, {rows:,} rollup rows")
        results = time_views(path, max(now, newest + 60), repeats=7)
    print(f"\n{'view':44} {'median ms':>10} {'max ms':>8} {'KB':>6}")
    for view, med, worst, size in results:
        flag = "" if worst < 200 else "  OVER 200 ms"
        print(f"{view:44} {med:10.1f} {worst:8.1f} {size / 1024:6.0f}{flag}")
    slowest = max(results, key=lambda r: r[2])
    print(f"slowest: {slowest[0]} {slowest[2]:.1f} ms (target: every view under 200 ms)")


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
