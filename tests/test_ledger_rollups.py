"""The rollups (ledger/rollup.py) on every backend: what they say equals what the records say,
to the nano-USD, however the refreshes are chunked and whatever range a breakdown asks for
(whole UTC days from the daily level, their edges from the hours); PostgreSQL ids that become
visible late are folded once when they appear, and a rolled-back id is forgotten; migration 7
fills the daily level from the hours an older ledger folded."""

from __future__ import annotations

import random
import sqlite3
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from costwarden.errors import InvalidInputError
from costwarden.ledger import MemoryLedger, open_ledger
from costwarden.ledger.base import Bucket, NewRecord
from costwarden.ledger.rollup import (
    DAY_SECONDS,
    DIMENSIONS,
    SLOT_SECONDS,
    Rollups,
    matches,
    parse_scope,
    split_days,
)
from costwarden.records import StoredRecord
from tests import pg

T0 = 1_800_000_000
MODELS = ("gpt-4o", "gpt-4o-mini", "claude-haiku-4-5")


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Rollups]:
    if request.param == "memory":
        led: object = MemoryLedger()
        yield led  # type: ignore[misc]
        return
    if request.param == "sqlite":
        led = open_ledger(f"sqlite:///{tmp_path / 'r.db'}")
        yield led  # type: ignore[misc]
        led.close()  # type: ignore[attr-defined]
        return
    with pg.temp_schema_url() as url:
        led = open_ledger(url)
        yield led  # type: ignore[misc]
        led.close()  # type: ignore[attr-defined]


def new(rnd: random.Random, i: int) -> NewRecord:
    tags = tuple(rnd.choice([(), ("prod",), ("prod", "prod", "eval"), ("eval",)]))
    return NewRecord(
        ts_us=(T0 + rnd.randint(0, 3 * 86_400)) * 1_000_000 + rnd.randint(0, 999_999),
        model=rnd.choice(MODELS),
        provider=None,
        input_tokens=rnd.randint(1, 5000),
        output_tokens=rnd.randint(1, 500),
        cache_read_tokens=0,
        cache_write_tokens=0,
        reasoning_tokens=0,
        cost_nanos=rnd.randint(0, 50_000_000),
        user_id=rnd.choice([None, "alice", "bob", "carol"]),
        team=rnd.choice([None, "research", "sales"]),
        key=rnd.choice([None, "k1", "k2"]),
        endpoint=rnd.choice([None, "/chat", "/embed"]),
        request_id=f"r{i}",
        tags=tags,
        latency_ms=None,
        status="ok",
        estimated=False,
        price_source="caller",
    )


def fill(ledger: Rollups, n: int, seed: int = 7) -> list[StoredRecord]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        stored, _ = ledger.append(new(rnd, i), [Bucket("global", "daily", 0, 1)])  # type: ignore[attr-defined]
        out.append(stored)
    return out


def brute_series(
    recs: list[StoredRecord], kind: str, name: str
) -> dict[tuple[int, str], list[int]]:
    out: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0])
    for r in recs:
        if matches(r, kind, name):
            slot = r.ts_us // 1_000_000 // SLOT_SECONDS * SLOT_SECONDS
            out[(slot, r.model)][0] += r.cost_nanos
            out[(slot, r.model)][1] += 1
    return out


SCOPES = [
    "global",
    "user:alice",
    "team:sales",
    "key:k2",
    "endpoint:/chat",
    "tag:prod",
    "tag:eval",
    "model:gpt-4o-mini",
]


def test_rollups_equal_the_records_in_any_chunking(ledger: Rollups) -> None:
    recs = fill(ledger, 400)
    assert ledger.rollup_backlog() == 400
    folded = 0
    for chunk in (1, 7, 50, 1000):  # uneven chunks, then the rest
        folded += ledger.refresh_rollups(chunk)
    assert folded == 400
    assert ledger.rollup_backlog() == 0
    assert ledger.refresh_rollups() == 0  # nothing is folded twice
    lo, hi = T0 - SLOT_SECONDS, T0 + 4 * 86_400
    for scope in SCOPES:
        kind, name = parse_scope(scope)
        got = {(s, m): [v, c] for s, m, v, c in ledger.rollup_series(kind, name, lo, hi)}
        assert got == brute_series(recs, kind, name), scope
    # a breakdown over part of the range
    mid = T0 + 86_400
    users = ledger.rollup_breakdown("user", lo, mid)
    want: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in recs:
        if r.user_id and r.ts_us // 1_000_000 // SLOT_SECONDS * SLOT_SECONDS < mid:
            want[r.user_id][0] += r.cost_nanos
            want[r.user_id][1] += 1
    assert {n: [s, c] for n, s, c in users} == want
    tags = dict((n, c) for n, _s, c in ledger.rollup_breakdown("tag", lo, hi))
    assert tags["prod"] == sum(1 for r in recs if "prod" in r.tags)  # a repeated tag once
    models = ledger.rollup_breakdown("model", lo, hi, kind="team", name="sales")
    assert sum(s for _, s, _ in models) == sum(r.cost_nanos for r in recs if r.team == "sales")


def brute_breakdown(
    recs: list[StoredRecord], dim: str, since: int, until: int, kind: str = "global", name: str = ""
) -> dict[str, list[int]]:
    """The breakdown from the records alone: slots ``[since, until)`` (a record's hour)."""
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in recs:
        slot = r.ts_us // 1_000_000 // SLOT_SECONDS * SLOT_SECONDS
        if not since <= slot < until or not matches(r, kind, name):
            continue
        if dim == "model":
            names = [r.model]
        elif dim == "tag":
            names = list(dict.fromkeys(t for t in r.tags if t))
        else:
            value = getattr(r, "user_id" if dim == "user" else dim)
            names = [value] if value else []
        for n in names:
            out[n][0] += r.cost_nanos
            out[n][1] += 1
    return out


DAY0 = T0 // DAY_SECONDS * DAY_SECONDS  # the UTC midnight before the first record
RANGES = [
    (DAY0 - DAY_SECONDS, DAY0 + 5 * DAY_SECONDS),  # whole days only
    (T0 + 5 * SLOT_SECONDS, T0 + 2 * DAY_SECONDS + 7 * SLOT_SECONDS),  # partial days at both ends
    (DAY0 + DAY_SECONDS, DAY0 + DAY_SECONDS + 17 * SLOT_SECONDS),  # from midnight, no whole day
    (DAY0 + 30 * SLOT_SECONDS, DAY0 + 2 * DAY_SECONDS),  # to midnight, no whole day
    (T0 + 3 * SLOT_SECONDS, T0 + 4 * SLOT_SECONDS),  # one hour
    (T0 + 7 * SLOT_SECONDS, T0 + 7 * SLOT_SECONDS),  # empty
    (T0 + 1234, T0 + 86_400 + 999),  # not on the hour (the budgets page's last 24 hours)
]


def test_breakdowns_equal_the_records_for_any_range(ledger: Rollups) -> None:
    recs = fill(ledger, 500, seed=11)
    while ledger.refresh_rollups(37):  # many small folds: the daily rows add up across them
        pass
    for since, until in RANGES:
        for dim in DIMENSIONS:
            got = {n: [s, c] for n, s, c in ledger.rollup_breakdown(dim, since, until)}
            assert got == brute_breakdown(recs, dim, since, until), (dim, since, until)
        for scope in SCOPES:
            kind, name = parse_scope(scope)
            rows = ledger.rollup_breakdown("model", since, until, kind=kind, name=name)
            want = brute_breakdown(recs, "model", since, until, kind, name)
            assert {n: [s, c] for n, s, c in rows} == want, (scope, since, until)
            assert [r[1] for r in rows] == sorted((r[1] for r in rows), reverse=True)


def test_split_days_covers_every_hour_once() -> None:
    for since, until in RANGES:
        parts = split_days(since, until)
        covered = []
        for level, lo, hi in parts:
            step = DAY_SECONDS if level == "day" else SLOT_SECONDS
            assert lo % step == 0 or level == "hour"
            for start in range(lo, hi, step):
                first = -(-max(start, since) // SLOT_SECONDS) * SLOT_SECONDS
                covered.extend(range(first, min(start + step, until), SLOT_SECONDS))
        first = -(-since // SLOT_SECONDS) * SLOT_SECONDS
        assert sorted(covered) == list(range(first, until, SLOT_SECONDS)), (since, until)
    assert [p[0] for p in split_days(DAY0 + 3600, DAY0 + 3 * DAY_SECONDS)] == ["hour", "day"]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'm.db'}"
        return
    with pg.temp_schema_url() as url:
        yield url


def _raw(url: str) -> Any:
    """A plain DB-API connection to the ledger's database (and schema)."""
    if url.startswith("sqlite:///"):
        return sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    schema = url.rsplit("schema=", 1)[1]
    return psycopg.connect(url.split("?")[0], options=f"-c search_path={schema}", autocommit=True)


def test_migration_7_fills_the_daily_level_from_the_folded_hours(sql_url: str) -> None:
    led = open_ledger(sql_url)
    recs = fill(led, 300, seed=5)  # type: ignore[arg-type]
    led.refresh_rollups(120)  # type: ignore[attr-defined]  # part folded before the upgrade
    led.close()
    conn = _raw(sql_url)
    try:  # back to schema 6: no daily level
        conn.execute("DROP TABLE rollup_daily")
        conn.execute("UPDATE meta SET value = '6' WHERE key = 'schema_version'")
    finally:
        conn.close()
    led = open_ledger(sql_url)
    try:
        while led.refresh_rollups(50):  # type: ignore[attr-defined]
            pass
        lo, hi = DAY0 - DAY_SECONDS, DAY0 + 5 * DAY_SECONDS
        for dim in DIMENSIONS:
            got = {n: [s, c] for n, s, c in led.rollup_breakdown(dim, lo, hi)}  # type: ignore[attr-defined]
            assert got == brute_breakdown(recs, dim, lo, hi), dim
        conn = _raw(sql_url)
        try:  # each day's row is the sum of its hours
            day = "slot / 86400 * 86400"
            hours = conn.execute(
                f"SELECT kind, name, {day}, model, SUM(spent), SUM(count) FROM rollup "
                f"GROUP BY kind, name, {day}, model"
            ).fetchall()
            days = conn.execute(
                "SELECT kind, name, slot, model, spent, count FROM rollup_daily"
            ).fetchall()
        finally:
            conn.close()
        assert sorted(tuple(map(str, r)) for r in hours) == sorted(tuple(map(str, r)) for r in days)
    finally:
        led.close()


def test_top_slots_hold_the_most_expensive_records(ledger: Rollups) -> None:
    recs = fill(ledger, 300, seed=3)
    ledger.refresh_rollups()
    for scope in ("global", "user:bob", "tag:eval"):
        kind, name = parse_scope(scope)
        slots = ledger.rollup_top_slots(kind, name, 0, 2**40, 10)
        assert len(slots) == 10 and [c for _s, c in slots] == sorted(
            (c for _s, c in slots), reverse=True
        )
        windows = [(s * 1_000_000, (s + SLOT_SECONDS) * 1_000_000) for s, _c in slots]
        want = sorted((r for r in recs if matches(r, kind, name)), key=lambda r: -r.cost_nanos)
        for floor in (0, slots[-1][1]):  # the last slot's maximum bounds the ten from below
            top = ledger.scope_records(kind, name, windows, by_cost=True, limit=10, min_cost=floor)
            assert [r.cost_nanos for r in top] == [r.cost_nanos for r in want[:10]], scope
        above = slots[0][1] + 1  # nothing costs more than the most expensive slot's maximum
        none = ledger.scope_records(kind, name, windows, by_cost=True, limit=10, min_cost=above)
        assert none == []
        newest = ledger.scope_records(kind, name, [(0, 2**62)], by_cost=False, limit=5)
        by_time = sorted(want, key=lambda r: (-r.ts_us, -r.id))
        assert [r.id for r in newest] == [r.id for r in by_time[:5]]


def test_bad_kinds_are_typed_errors(ledger: Rollups) -> None:
    with pytest.raises(InvalidInputError, match="unknown scope kind"):
        ledger.rollup_series("nope", "x", 0, 1)
    with pytest.raises(InvalidInputError, match="whole ledger only"):
        ledger.rollup_breakdown("user", 0, 1, kind="team", name="x")
    with pytest.raises(InvalidInputError, match="unknown breakdown"):
        ledger.rollup_breakdown("colour", 0, 1)
    with pytest.raises(InvalidInputError, match="scope must be"):
        parse_scope("user:")


@pytest.mark.postgres
def test_postgres_late_visible_ids_are_folded_once_and_rolled_back_ones_forgotten() -> None:
    with pg.temp_schema_url() as url:
        led = open_ledger(url)
        schema = url.rsplit("schema=", 1)[1]
        server = url.split("?")[0]
        late = psycopg.connect(server, options=f"-c search_path={schema}")
        gone = psycopg.connect(server, options=f"-c search_path={schema}")
        try:
            insert = (
                "INSERT INTO records (ts_us, model, input_tokens, output_tokens, cost_nanos) "
                "VALUES (%s, 'gpt-4o', 1, 1, %s) RETURNING id"
            )
            late_id = late.execute(insert, (T0 * 1_000_000, 7)).fetchone()
            gone_id = gone.execute(insert, (T0 * 1_000_000, 1000)).fetchone()
            rnd = random.Random(1)
            stored, _ = led.append(new(rnd, 0), [])
            assert late_id is not None and gone_id is not None
            assert stored.id > max(late_id[0], gone_id[0])
            assert led.refresh_rollups() == 1  # the committed one; two ids are gaps
            assert led.rollup_backlog() == 2
            late.commit()
            gone.rollback()
            assert led.refresh_rollups() == 1  # the late one, once
            assert led.refresh_rollups() == 0
            total = sum(v for _s, _m, v, _c in led.rollup_series("global", "", 0, 2**40))
            assert total == stored.cost_nanos + 7
            led.rollup_gap_grace = 0.0  # type: ignore[attr-defined]
            # The rolled-back id is forgotten once every transaction that was running when the
            # gap was seen has ended, on the whole server: other sessions (another test run on
            # the same server) may hold one open a while, so wait for them, within a bound.
            deadline = time.monotonic() + 60
            while True:
                led.refresh_rollups()
                if led.rollup_backlog() == 0 or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert led.rollup_backlog() == 0
        finally:
            late.close()
            gone.close()
            led.close()
