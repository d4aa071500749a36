"""The hourly rollups (ledger/rollup.py) on every backend: what they say equals what the
records say, however the refreshes are chunked; PostgreSQL ids that become visible late are
folded once when they appear, and a rolled-back id is forgotten."""

from __future__ import annotations

import random
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from costwarden.errors import InvalidInputError
from costwarden.ledger import MemoryLedger, open_ledger
from costwarden.ledger.base import Bucket, NewRecord
from costwarden.ledger.rollup import SLOT_SECONDS, Rollups, matches, parse_scope
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


def test_top_slots_hold_the_most_expensive_records(ledger: Rollups) -> None:
    recs = fill(ledger, 300, seed=3)
    ledger.refresh_rollups()
    for scope in ("global", "user:bob", "tag:eval"):
        kind, name = parse_scope(scope)
        slots = ledger.rollup_top_slots(kind, name, 0, 2**40, 10)
        windows = [(s * 1_000_000, (s + SLOT_SECONDS) * 1_000_000) for s in slots]
        top = ledger.scope_records(kind, name, windows, by_cost=True, limit=10)
        want = sorted((r for r in recs if matches(r, kind, name)), key=lambda r: -r.cost_nanos)
        assert [r.cost_nanos for r in top] == [r.cost_nanos for r in want[:10]], scope
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
