"""Virtual key lifecycle on every ledger: create (secret once), authenticate, rotate with a
grace period, revoke; typed errors that change nothing; the secret never stored; a key's
usage lookup that cannot reveal another key's spend."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from costwarden.budget import Budget, WindowCache
from costwarden.errors import (
    ExpiredKeyError,
    InvalidInputError,
    KeyAuthError,
    RevokedKeyError,
    UnknownKeyError,
)
from costwarden.keys import (
    DEFAULT_GRACE,
    authenticate,
    create_key,
    hash_secret,
    key_usage,
    list_keys,
    revoke_key,
    rotate_key,
)
from costwarden.ledger import NewRecord, open_ledger
from costwarden.ledger.base import Bucket
from tests import pg

NOW = 1_800_000_000.0
TIGHT = Budget(daily_limit=0.05, monthly_limit=None, per_request_limit=0.01)


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "postgres":
        with pg.temp_schema_url() as url:
            handle = open_ledger(url)
            try:
                yield handle
            finally:
                handle.close()
        return
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'k.db'}"
    handle = open_ledger(url)
    yield handle
    handle.close()


def state(ledger: Any) -> tuple[Any, ...]:
    return (ledger.control_version(), ledger.budgets(), ledger.list_keys(), ledger.audit())


def test_create_returns_the_secret_once_and_stores_only_its_hash(ledger: Any) -> None:
    key, secret = create_key(
        ledger,
        user="alice",
        team="research",
        budget=TIGHT,
        models=["gpt-4o-mini", "gpt-4o-mini", "claude-haiku-4-5"],
        rpm=60,
        tpm=20_000,
        expires=timedelta(days=30),
        metadata={"purpose": "ci"},
        actor="ann",
        now=NOW,
    )
    assert re.fullmatch(r"cw-[A-Za-z0-9_-]{43}", secret)  # 32 random bytes, url-safe base64
    assert key.hash == hash_secret(secret) and key.prefix == secret[:11]
    assert key.models == ("gpt-4o-mini", "claude-haiku-4-5")
    assert key.expires_at == NOW + 30 * 86_400
    assert list_keys(ledger) == [key]
    assert authenticate(ledger, secret, now=NOW + 1) == key
    assert secret not in repr(key.as_dict()) and key.hash not in repr(key.as_dict())
    other, other_secret = create_key(ledger, now=NOW)
    assert other.key_id != key.key_id and other_secret != secret


@pytest.mark.parametrize(
    "kwargs",
    [
        {"user": ""},
        {"team": 3},
        {"budget": {"daily_limit": 1.0}},
        {"models": "gpt-4o"},
        {"models": []},
        {"models": ["gpt-4o", ""]},
        {"rpm": 0},
        {"tpm": -1},
        {"rpm": True},
        {"rpm": 1.5},
        {"expires": timedelta(seconds=-1)},
        {"expires": NOW - 1},
        {"expires": "tomorrow"},
        {"metadata": {"x": object()}},
        {"metadata": {1: "x"}},
        {"metadata": {"x": float("nan")}},
        {"metadata": {"x": "y" * 20_000}},
        {"actor": ""},
        {"now": "now"},
    ],
)
def test_bad_create_input_is_a_typed_error_that_changes_nothing(
    ledger: Any, kwargs: dict[str, Any]
) -> None:
    create_key(ledger, user="bob", now=NOW)
    before = state(ledger)
    kwargs.setdefault("now", NOW)
    with pytest.raises(InvalidInputError):
        create_key(ledger, **kwargs)
    assert state(ledger) == before


def test_expiry_as_a_datetime(ledger: Any) -> None:
    when = datetime(2027, 1, 15, 9, 0, tzinfo=UTC)
    key, secret = create_key(ledger, expires=when, now=NOW)
    assert key.expires_at == when.timestamp()
    assert authenticate(ledger, secret, now=when.timestamp() - 1) == key
    with pytest.raises(ExpiredKeyError):
        authenticate(ledger, secret, now=when.timestamp())


@pytest.mark.parametrize(
    "secret", ["", "sk-live-123", "cw-", "cw-" + "A" * 43, 42, None, b"cw-bytes"]
)
def test_unknown_or_malformed_secrets_are_unknown(ledger: Any, secret: Any) -> None:
    create_key(ledger, now=NOW)
    with pytest.raises(UnknownKeyError) as info:
        authenticate(ledger, secret, now=NOW)
    assert isinstance(info.value, KeyAuthError) and isinstance(info.value, PermissionError)


def test_revocation_is_immediate_final_and_idempotent(ledger: Any) -> None:
    key, secret = create_key(ledger, budget=TIGHT, now=NOW)
    revoked = revoke_key(ledger, key.key_id, actor="ann", now=NOW + 10)
    assert revoked.revoked_at == NOW + 10
    with pytest.raises(RevokedKeyError) as info:
        authenticate(ledger, secret, now=NOW + 10)
    assert info.value.key_id == key.key_id
    before = state(ledger)
    assert revoke_key(ledger, key.key_id, now=NOW + 20) == revoked  # no second event
    with pytest.raises(RevokedKeyError):
        rotate_key(ledger, key.key_id, now=NOW + 20)
    assert state(ledger) == before
    assert list_keys(ledger, include_revoked=False) == []
    assert [e.action for e in ledger.audit()] == ["key.update", "key.create"]


def test_rotation_keeps_the_old_secret_for_the_grace_period(ledger: Any) -> None:
    key, old = create_key(ledger, budget=TIGHT, user="alice", now=NOW)
    rotated, new = rotate_key(ledger, key.key_id, grace=timedelta(minutes=5), now=NOW + 100)
    assert new != old and rotated.key_id == key.key_id and rotated.budget == TIGHT
    assert rotated.prefix == new[:11] and rotated.previous_prefix == key.prefix
    assert authenticate(ledger, new, now=NOW + 101) == rotated
    assert authenticate(ledger, old, now=NOW + 399) == rotated
    with pytest.raises(ExpiredKeyError, match="rotated out"):
        authenticate(ledger, old, now=NOW + 400)
    assert authenticate(ledger, new, now=NOW + 10_000) == rotated
    # Rotating again ends the first secret's grace at once; revoking ends every secret.
    again, newest = rotate_key(ledger, key.key_id, now=NOW + 200)
    assert again.grace_until == NOW + 200 + DEFAULT_GRACE.total_seconds()
    with pytest.raises(UnknownKeyError):
        authenticate(ledger, old, now=NOW + 201)
    assert authenticate(ledger, new, now=NOW + 201) == again
    revoke_key(ledger, key.key_id, now=NOW + 300)
    for s in (new, newest):
        with pytest.raises(RevokedKeyError):
            authenticate(ledger, s, now=NOW + 301)


def test_rotation_with_no_grace_drops_the_old_secret(ledger: Any) -> None:
    key, old = create_key(ledger, now=NOW)
    rotated, _new = rotate_key(ledger, key.key_id, grace=0, now=NOW + 1)
    assert rotated.previous_hash is None and rotated.grace_until is None
    with pytest.raises(UnknownKeyError):
        authenticate(ledger, old, now=NOW + 1)


@pytest.mark.parametrize("grace", [-1, float("nan"), "1h", timedelta(seconds=-5)])
def test_bad_rotation_input_changes_nothing(ledger: Any, grace: Any) -> None:
    key, _secret = create_key(ledger, now=NOW)
    before = state(ledger)
    with pytest.raises(InvalidInputError):
        rotate_key(ledger, key.key_id, grace=grace, now=NOW)
    with pytest.raises(UnknownKeyError):
        rotate_key(ledger, "no-such-key", now=NOW)
    with pytest.raises(UnknownKeyError):
        revoke_key(ledger, "no-such-key", now=NOW)
    with pytest.raises(InvalidInputError):
        revoke_key(ledger, "", now=NOW)
    assert state(ledger) == before


def _record(cost: int, key: str) -> NewRecord:
    return NewRecord(
        ts_us=int(NOW * 1e6),
        model="gpt-4o",
        provider=None,
        input_tokens=1,
        output_tokens=1,
        cache_read_tokens=0,
        cache_write_tokens=0,
        reasoning_tokens=0,
        cost_nanos=cost,
        user_id=None,
        team=None,
        key=key,
        endpoint=None,
        request_id=None,
        tags=(),
        latency_ms=None,
        status="ok",
        estimated=False,
        price_source="test",
    )


def test_key_usage_shows_only_that_keys_own_spend_and_budget(ledger: Any) -> None:
    mine, _ = create_key(ledger, budget=TIGHT, now=NOW)
    theirs, _ = create_key(ledger, budget=Budget(daily_limit=9.0), now=NOW)
    day = key_usage(ledger, mine, now=NOW).periods[0]
    window = WindowCache().window("daily", "UTC", NOW)
    for key_id, cost in ((mine.key_id, 7_000_000), (theirs.key_id, 900_000_000)):
        bucket = Bucket(f"key:{key_id}", "daily", window.start, window.end)
        ledger.append(_record(cost, key_id), [bucket])
    usage = key_usage(ledger, mine, now=NOW)
    assert usage.key_id == mine.key_id and usage.budget == TIGHT
    assert usage.budget_scope == f"key:{mine.key_id}"
    (daily,) = usage.periods
    assert (daily.period, daily.spent, daily.limit) == ("daily", 7_000_000, 50_000_000)
    assert day.spent == 0
    # A key with no budget of its own reports the default budget for keys, if any.
    bare, _ = create_key(ledger, now=NOW)
    assert key_usage(ledger, bare, now=NOW).budget is None
    ledger.put_budget("default:key", Budget(daily_limit=1.0), actor="ann", now=NOW)
    assert key_usage(ledger, bare, now=NOW).budget_scope == "default:key"
    with pytest.raises(InvalidInputError):
        key_usage(ledger, f"key:{theirs.key_id}", now=NOW)


# -- the secret is never stored --------------------------------------------------------------
def _needles(secret: str) -> list[str]:
    return [secret] + [secret[i : i + 16] for i in range(len(secret) - 15)]


def _assert_absent(values: list[str], secret: str, where: str) -> None:
    needles = _needles(secret)
    for value in values:
        for needle in needles:
            assert needle not in value, f"{needle!r} of the secret found in {where}: {value!r}"


def test_sqlite_file_never_contains_the_secret(tmp_path: Path) -> None:
    path = tmp_path / "keys.db"
    ledger = open_ledger(f"sqlite:///{path}")
    secrets_made = []
    key, secret = create_key(ledger, budget=TIGHT, metadata={"a": 1}, now=NOW)
    secrets_made.append(secret)
    _rotated, secret2 = rotate_key(ledger, key.key_id, now=NOW + 1)
    secrets_made.append(secret2)
    revoke_key(ledger, key.key_id, now=NOW + 2)
    conn = sqlite3.connect(path)
    values = []
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    assert {"virtual_keys", "audit_log", "budgets"} <= set(tables)
    for table in tables:
        for row in conn.execute(f"SELECT * FROM {table}"):
            values += [str(v) for v in row]
    conn.close()
    ledger.close()
    for s in secrets_made:
        _assert_absent(values, s, "a SQLite table")
        assert hash_secret(s) in values  # the search did reach the key rows
        raw = b"".join(
            p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("keys.db")
        ).decode("latin-1")
        _assert_absent([raw], s, "the SQLite files (database, WAL, hold board)")


@pytest.mark.postgres
def test_postgres_schema_never_contains_the_secret() -> None:
    with pg.temp_schema_url() as url:
        ledger = open_ledger(url)
        key, secret = create_key(ledger, budget=TIGHT, now=NOW)
        _rotated, secret2 = rotate_key(ledger, key.key_id, now=NOW + 1)
        revoke_key(ledger, key.key_id, now=NOW + 2)
        schema = url.rsplit("schema=", 1)[1]
        server = url.rsplit("?", 1)[0] if "?schema=" in url else url
        ledger.close()
        values: list[str] = []
        with psycopg.connect(server, autocommit=True) as conn:
            tables = [
                r[0]
                for r in conn.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                    (schema,),
                )
            ]
            assert {"virtual_keys", "audit_log", "budgets"} <= set(tables)
            for table in tables:
                rows = conn.execute(
                    sql.SQL("SELECT t::text FROM {}.{} t").format(
                        sql.Identifier(schema), sql.Identifier(table)
                    )
                ).fetchall()
                values += [r[0] for r in rows]
        for s in (secret, secret2):
            _assert_absent(values, s, "a PostgreSQL table")
            assert any(hash_secret(s) in v for v in values)
