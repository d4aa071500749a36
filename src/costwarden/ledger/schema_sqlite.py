"""SQLite schema, as an ordered list of migrations (index + 1 = schema version).

Never edit a released migration: append a new one. ``SQLiteLedger`` applies the missing ones
in one transaction when it opens a file.
"""

from __future__ import annotations

from typing import Final

from costwarden.ledger import billing_sql, rollup_sql, schema_control

MIGRATIONS: Final[list[list[str]]] = [
    # 1: records, totals, holds, events, alert outbox
    [
        """CREATE TABLE records (
            id INTEGER PRIMARY KEY,
            ts_us INTEGER NOT NULL,
            model TEXT NOT NULL,
            provider TEXT,
            input_tokens INTEGER NOT NULL,
            output_tokens INTEGER NOT NULL,
            cache_read_tokens INTEGER NOT NULL DEFAULT 0,
            cache_write_tokens INTEGER NOT NULL DEFAULT 0,
            reasoning_tokens INTEGER NOT NULL DEFAULT 0,
            cost_nanos INTEGER NOT NULL CHECK (cost_nanos >= 0),
            user_id TEXT, team TEXT, key TEXT, endpoint TEXT, request_id TEXT, tags TEXT,
            latency_ms REAL,
            status TEXT NOT NULL DEFAULT 'ok',
            estimated INTEGER NOT NULL DEFAULT 0,
            price_source TEXT NOT NULL DEFAULT '',
            hold_id TEXT
        )""",
        "CREATE INDEX records_ts ON records (ts_us)",
        """CREATE TABLE totals (
            scope TEXT NOT NULL, period TEXT NOT NULL, start INTEGER NOT NULL,
            end_ INTEGER NOT NULL,
            spent INTEGER NOT NULL DEFAULT 0, count INTEGER NOT NULL DEFAULT 0,
            baseline INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (scope, period, start)
        ) WITHOUT ROWID""",
        # Keyed by bucket first: the admission check sums one bucket's live holds with a
        # prefix scan; one more index finds a hold's rows to settle it. Two b-trees only,
        # because every page a transaction touches is a page written to the WAL.
        """CREATE TABLE holds (
            scope TEXT NOT NULL, period TEXT NOT NULL, start INTEGER NOT NULL,
            hold_id TEXT NOT NULL, amount INTEGER NOT NULL CHECK (amount >= 0),
            expires_at REAL NOT NULL,
            PRIMARY KEY (scope, period, start, hold_id)
        ) WITHOUT ROWID""",
        "CREATE INDEX holds_by_id ON holds (hold_id)",
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY, ts REAL NOT NULL, kind TEXT NOT NULL, scope TEXT NOT NULL,
            period TEXT NOT NULL, start INTEGER NOT NULL, amount INTEGER NOT NULL, detail TEXT
        )""",
        """CREATE TABLE alert_claims (
            dedup_key TEXT PRIMARY KEY, created_at REAL NOT NULL, payload TEXT NOT NULL
        )""",
        """CREATE TABLE deliveries (
            id INTEGER PRIMARY KEY, dedup_key TEXT NOT NULL, channel TEXT NOT NULL,
            payload TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL,
            created_at REAL NOT NULL, next_attempt_at REAL, last_error TEXT, delivered_at REAL
        )""",
        "CREATE INDEX deliveries_pending ON deliveries (status, next_attempt_at)",
    ],
    # 2: a record's metadata (JSON: task, max_tokens, prompt and prefix hashes, ...), read by
    # the optimizer's recommendations
    ["ALTER TABLE records ADD COLUMN metadata TEXT"],
    # 3: live holds moved to the hold board beside the file (ledger/sqlite_holds.py), which
    # names the database it belongs to by this id
    [
        "DROP TABLE holds",
        "INSERT INTO meta (key, value) VALUES ('ledger_id', lower(hex(randomblob(8))))",
    ],
    # 4: the control plane: budgets, virtual keys (hashes only), audit log, control version
    schema_control.SQLITE,
    # 5: imported provider bill lines (costwarden import, report --vs-billed, the dashboard)
    billing_sql.SQLITE_TABLE,
    # 6: hourly rollups per scope and model, kept by the dashboard (ledger/rollup.py)
    rollup_sql.SQLITE_TABLES,
    # 7: the daily level of the rollups, which the breakdowns read (ledger/rollup.py)
    rollup_sql.SQLITE_DAILY,
]
