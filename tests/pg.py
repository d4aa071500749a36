"""PostgreSQL for tests: which server, whether it is up, and a throwaway schema per test.

The server is named by ``COSTWARDEN_TEST_POSTGRES_URL``; under ``CI=true`` it defaults to
``postgresql://root@127.0.0.1:5432/test``. When no server is named or it cannot be reached the
PostgreSQL tests are skipped with the reason, except under ``CI=true``, where they fail: CI must
never pass by skipping the backend that matters most for many hosts.

Each test gets its own schema (``cw_test_<random>``, passed as ``?schema=`` in the ledger URL)
and the schema is dropped afterwards, so tests never see each other's rows and can run beside
other users of the same database.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import psycopg
import pytest
from psycopg import sql

ENV_VAR = "COSTWARDEN_TEST_POSTGRES_URL"
CI_DEFAULT_URL = "postgresql://root@127.0.0.1:5432/test"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def configured_url() -> str | None:
    """The server to test against, or None when none is named (and not in CI)."""
    url = os.environ.get(ENV_VAR)
    if url:
        return url
    return CI_DEFAULT_URL if in_ci() else None


@cache
def _unreachable(url: str) -> str | None:
    """Why ``url`` cannot be used (None when a connection works); checked once per run."""
    try:
        with psycopg.connect(url, connect_timeout=3, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"PostgreSQL at {url} is unreachable: {exc}".strip()
    return None


def require_postgres() -> str:
    """The server URL, or skip (fail under CI=true) with the reason it cannot be used."""
    url = configured_url()
    reason = (
        f"no PostgreSQL server named: set {ENV_VAR}=postgresql://user@host:5432/db"
        if url is None
        else _unreachable(url)
    )
    if reason is None and url is not None:
        return url
    if in_ci():
        pytest.fail(f"{reason} (CI=true: PostgreSQL tests must run, not skip)")
    pytest.skip(reason or "PostgreSQL unavailable")


def with_schema(url: str, schema: str) -> str:
    """``url`` with ``schema=<schema>`` added to its query string."""
    return f"{url}{'&' if '?' in url else '?'}schema={schema}"


def new_schema_name() -> str:
    return f"cw_test_{uuid.uuid4().hex[:12]}"


def drop_schema(url: str, schema: str) -> None:
    with psycopg.connect(url, connect_timeout=5, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@contextmanager
def temp_schema_url(url: str | None = None) -> Iterator[str]:
    """A ledger URL naming a fresh schema on the test server; the schema is dropped after."""
    server = url if url is not None else require_postgres()
    schema = new_schema_name()
    try:
        yield with_schema(server, schema)
    finally:
        drop_schema(server, schema)
