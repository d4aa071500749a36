"""A ledger made by the previous release (schema 3) upgrades to the control plane (schema 4)
keeping every record, total, event and alert row byte for byte.

SQLite: ``tests/data/ledger_v3.db`` was written by costwarden 0.1.0 itself
(``tests/data/make_ledger_v3.py`` run against that release). PostgreSQL: a schema built by the
released migrations 1-3 (never edited: only appended to) and filled through them.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from costwarden.budget import Budget
from costwarden.keys import authenticate, create_key
from costwarden.ledger import SQLiteLedger, open_ledger
from costwarden.ledger.migrations import apply_migrations
from costwarden.ledger.schema_postgres import MIGRATIONS as PG_MIGRATIONS
from tests import pg

FIXTURE = Path(__file__).parent / "data" / "ledger_v3.db"
OLD_TABLES = ("records", "totals", "events", "alert_claims", "deliveries")


def _sqlite_rows(path: Path) -> dict[str, list[Any]]:
    conn = sqlite3.connect(path)
    try:
        out = {
            t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2, 3").fetchall() for t in OLD_TABLES
        }
        out["meta"] = conn.execute(
            "SELECT * FROM meta WHERE key NOT IN ('schema_version', 'control_version') ORDER BY key"
        ).fetchall()
        return out
    finally:
        conn.close()


def test_sqlite_ledger_of_the_previous_release_upgrades_keeping_every_record(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    shutil.copy(FIXTURE, path)
    before = _sqlite_rows(path)
    assert len(before["records"]) == 12 and before["totals"] and before["events"]
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == ("3",)
    conn.close()
    ledger = SQLiteLedger(f"sqlite:///{path}")
    try:
        from costwarden.ledger.schema_sqlite import MIGRATIONS

        assert ledger.schema_version == len(MIGRATIONS)  # every later migration applied
        assert len(ledger.records()) == 12 and ledger.bill_lines() == []
        assert ledger.budgets() == [] and ledger.list_keys() == [] and ledger.audit() == []
        ledger.put_budget("team:research", Budget(daily_limit=1.0), actor="t", now=1.0)
        _key, secret = create_key(ledger, team="research", now=1.0)
        assert authenticate(ledger, secret, now=2.0).team == "research"
    finally:
        ledger.close()
    assert _sqlite_rows(path) == before
    reopened = open_ledger(f"sqlite:///{path}")
    assert [b.scope for b in reopened.budgets()] == ["team:research"]  # type: ignore[attr-defined]
    reopened.close()


def _pg_rows(conn: psycopg.Connection[Any], schema: str) -> dict[str, list[Any]]:
    out = {}
    for table in OLD_TABLES:
        out[table] = conn.execute(
            sql.SQL("SELECT t::text FROM {}.{} t ORDER BY 1").format(
                sql.Identifier(schema), sql.Identifier(table)
            )
        ).fetchall()
    return out


@pytest.mark.postgres
def test_postgres_schema_of_the_previous_release_upgrades_keeping_every_record() -> None:
    server = pg.require_postgres()
    schema = pg.new_schema_name()
    try:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
            conn.execute(sql.SQL("SET search_path = {}").format(sql.Identifier(schema)))
            with conn.transaction():
                apply_migrations(conn.execute, PG_MIGRATIONS[:3], placeholder="%s", where="v3")
            for i in range(10):
                conn.execute(
                    "SELECT cw_append(%s, 'gpt-4o', NULL, 10, 5, 0, 0, 0, %s, 'alice', "
                    "'research', NULL, NULL, %s, ARRAY['batch']::text[], 12.5, 'ok', FALSE, "
                    "'test', NULL, '{\"n\": 1}'::text, ARRAY['global','user:alice']::text[], "
                    "ARRAY['daily','daily']::text[], ARRAY[0,0]::bigint[], "
                    "ARRAY[86400,86400]::bigint[], ARRAY[]::text[], ARRAY[]::text[], "
                    "ARRAY[]::bigint[], ARRAY[]::bigint[])",
                    (1_000_000 * i, 1000 + i, f"req-{i}"),
                )
            conn.execute(
                "INSERT INTO events (ts, kind, scope, period, start, amount, detail) "
                "VALUES (1, 'reset', 'global', 'daily', 0, 5, NULL)"
            )
            conn.execute(
                "INSERT INTO alert_claims (dedup_key, created_at, payload) VALUES ('k', 1, '{}')"
            )
            conn.execute(
                "INSERT INTO deliveries (dedup_key, channel, payload, status, attempts, "
                "created_at) VALUES ('k', 'log', '{}', 'delivered', 1, 1)"
            )
            before = _pg_rows(conn, schema)
            assert len(before["records"]) == 10 and before["totals"]
        ledger = open_ledger(pg.with_schema(server, schema))
        try:
            from costwarden.ledger.schema_postgres import MIGRATIONS

            assert ledger.schema_version == len(MIGRATIONS)  # type: ignore[attr-defined]
            assert len(ledger.records()) == 10
            assert ledger.bill_lines() == []  # type: ignore[attr-defined]
            ledger.put_budget("global", Budget(daily_limit=1.0), actor="t", now=1.0)  # type: ignore[attr-defined]
        finally:
            ledger.close()
        with psycopg.connect(server, autocommit=True) as conn:
            assert _pg_rows(conn, schema) == before
    finally:
        pg.drop_schema(server, schema)
