"""The rollup's SQL, for the SQLite and PostgreSQL ledgers (see ledger/rollup.py).

Both keep one table, ``rollup (kind, name, slot, model, spent, count, max_cost)`` keyed by
``(kind, slot, name, model)`` (a breakdown reads one kind over a range of slots) with an index
on ``(kind, name, slot)`` (a scope's series). The two dialects differ in placeholders, in how
tags are stored (a JSON array in SQLite, ``text[]`` in PostgreSQL) and in ``max``/``GREATEST``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from costwarden.ledger.rollup import SLOT_SECONDS, Window, check_rollup_args

_SLOT_US: Final = SLOT_SECONDS * 1_000_000
MAX_WINDOWS: Final = 64

SQLITE_TABLES: Final = [
    """CREATE TABLE rollup (
        kind TEXT NOT NULL, name TEXT NOT NULL, slot INTEGER NOT NULL, model TEXT NOT NULL,
        spent INTEGER NOT NULL, count INTEGER NOT NULL, max_cost INTEGER NOT NULL,
        PRIMARY KEY (kind, slot, name, model)
    ) WITHOUT ROWID""",
    "CREATE INDEX rollup_scope ON rollup (kind, name, slot)",
    "CREATE TABLE rollup_state (one INTEGER PRIMARY KEY CHECK (one = 1), last_id INTEGER NOT NULL)",
    "INSERT INTO rollup_state (one, last_id) VALUES (1, 0)",
]

POSTGRES_TABLES: Final = [
    """CREATE TABLE rollup (
        kind TEXT NOT NULL, name TEXT NOT NULL, slot BIGINT NOT NULL, model TEXT NOT NULL,
        spent BIGINT NOT NULL, count BIGINT NOT NULL, max_cost BIGINT NOT NULL,
        PRIMARY KEY (kind, slot, name, model)
    )""",
    "CREATE INDEX rollup_scope ON rollup (kind, name, slot)",
    "CREATE TABLE rollup_state (one INTEGER PRIMARY KEY CHECK (one = 1), last_id BIGINT NOT NULL)",
    "INSERT INTO rollup_state (one, last_id) VALUES (1, 0)",
    # ids at or below last_id not seen yet (a transaction still running, or rolled back)
    """CREATE TABLE rollup_gaps (
        id BIGINT PRIMARY KEY, seen_xmax BIGINT NOT NULL, seen_at DOUBLE PRECISION NOT NULL
    )""",
]


@dataclass(frozen=True, slots=True)
class Dialect:
    """What differs between the two SQL ledgers."""

    ph: str  # the placeholder: "?" or "%s"
    tags_rows: str  # FROM-clause item giving one row per tag of records r, column value
    has_tag: str  # condition: the record has the tag (one placeholder)
    greatest: str  # the two-argument maximum function
    select_where: str  # SQLite needs WHERE true before ON CONFLICT in INSERT ... SELECT

    def fold(self, where: str) -> str:
        """INSERT ... SELECT folding the records matching ``where`` into the rollup."""
        cols = f"r.ts_us / {_SLOT_US} * {SLOT_SECONDS} AS slot, r.model, r.cost_nanos AS c"
        parts = [f"SELECT 'global' AS kind, '' AS name, {cols} FROM records r WHERE {where}"]
        for kind, col in (("user", "user_id"), ("team", "team"), ("key", "key")):
            parts.append(
                f"SELECT '{kind}', r.{col}, {cols} FROM records r WHERE ({where}) AND r.{col} <> ''"
            )
        parts.append(
            f"SELECT 'endpoint', r.endpoint, {cols} FROM records r "
            f"WHERE ({where}) AND r.endpoint <> ''"
        )
        parts.append(  # a record's tag counts once even if the record names it twice
            f"SELECT 'tag', d.value, d.slot, d.model, d.c FROM (SELECT DISTINCT r.id, "
            f"t.value AS value, {cols} FROM records r, {self.tags_rows} "
            f"WHERE ({where}) AND t.value <> '') d"
        )
        union = " UNION ALL ".join(parts)
        g = self.greatest
        return (
            "INSERT INTO rollup (kind, name, slot, model, spent, count, max_cost) "
            f"SELECT kind, name, slot, model, SUM(c), COUNT(*), MAX(c) FROM ({union}) s "
            f"{self.select_where} GROUP BY kind, name, slot, model "
            "ON CONFLICT (kind, slot, name, model) DO UPDATE SET "
            "spent = rollup.spent + excluded.spent, count = rollup.count + excluded.count, "
            f"max_cost = {g}(rollup.max_cost, excluded.max_cost)"
        )

    def scope_where(self, kind: str, name: str) -> tuple[str, list[Any]]:
        """A condition on rollup rows for scope ``(kind, name)`` and its parameters."""
        check_rollup_args(kind)
        p = self.ph
        if kind == "model":
            return f"kind = 'global' AND name = '' AND model = {p}", [name]
        return f"kind = {p} AND name = {p}", [kind, name]

    def record_where(self, kind: str, name: str) -> tuple[str, list[Any]]:
        """A condition on records for scope ``(kind, name)`` and its parameters."""
        check_rollup_args(kind)
        p = self.ph
        if kind == "global":
            return "1 = 1", []
        if kind == "tag":
            return self.has_tag, [name]
        column = {"user": "user_id", "team": "team", "key": "key", "endpoint": "endpoint"}.get(
            kind, "model"
        )
        return f"{column} = {p}", [name]

    def scope_records_sql(
        self, columns: str, kind: str, name: str, windows: Sequence[Window], by_cost: bool
    ) -> tuple[str, list[Any]]:
        """The records of one scope inside ``windows``, ordered, with a ``LIMIT`` placeholder
        last. One ``UNION ALL`` branch per window, so that each is a range of the timestamp
        index (an ``OR`` of ranges beside another condition made SQLite scan the table: 10 s
        on 10M records); adjacent windows are merged first, and more than
        :data:`MAX_WINDOWS` become one range."""
        p = self.ph
        merged: list[list[int]] = []
        for a, b in sorted(windows):
            if merged and a <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        if len(merged) > MAX_WINDOWS:
            merged = [[merged[0][0], merged[-1][1]]]
        cond, cparams = self.record_where(kind, name)
        order = "cost_nanos DESC, id DESC" if by_cost else "ts_us DESC, id DESC"
        if not merged:
            return f"SELECT {columns} FROM records WHERE 1 = 0 LIMIT {p}", []
        branch = f"SELECT {columns} FROM records WHERE ts_us >= {p} AND ts_us < {p} AND {cond}"
        sql = " UNION ALL ".join(branch for _ in merged)
        params = [v for a, b in merged for v in (a, b, *cparams)]
        return f"SELECT * FROM ({sql}) w ORDER BY {order} LIMIT {p}", params


SQLITE: Final = Dialect(
    ph="?",
    tags_rows="json_each(r.tags) t",
    has_tag="EXISTS (SELECT 1 FROM json_each(records.tags) WHERE value = ?)",
    greatest="max",
    select_where="WHERE true",
)
POSTGRES: Final = Dialect(
    ph="%s",
    tags_rows="unnest(r.tags) AS t(value)",
    has_tag="%s = ANY(tags)",
    greatest="GREATEST",
    select_where="",
)


__all__ = ["POSTGRES", "POSTGRES_TABLES", "SQLITE", "SQLITE_TABLES", "Dialect"]
