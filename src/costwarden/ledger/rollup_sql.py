"""The rollup's SQL, for the SQLite and PostgreSQL ledgers (see ledger/rollup.py).

Both keep two tables of the same shape: ``rollup (kind, name, slot, model, spent, count,
max_cost)`` per hour and ``rollup_daily`` (no ``max_cost``) per UTC day, each keyed by
``(kind, slot, name, model)`` (a breakdown reads one kind over a range of slots) with an index
on ``(kind, name, slot)`` (a scope's series). A fold groups the new records once by hour and
adds those sums to both tables in one transaction. The two dialects differ in placeholders,
in how tags are stored (a JSON array in SQLite, ``text[]`` in PostgreSQL), in
``max``/``GREATEST`` and in how the grouped rows reach both tables (a temporary table in
SQLite, a data-modifying ``WITH`` in PostgreSQL). :class:`SQLRollups` holds the reads both
ledgers share.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from costwarden.ledger.rollup import (
    DAY_SECONDS,
    SLOT_SECONDS,
    Part,
    Pick,
    Rollups,
    Window,
    check_rollup_args,
)
from costwarden.ledger.rows import SELECT_COLUMNS, RecordCodec
from costwarden.records import StoredRecord

_SLOT_US: Final = SLOT_SECONDS * 1_000_000
MAX_WINDOWS: Final = 64
TABLES: Final = {"hour": "rollup", "day": "rollup_daily"}
"""The table of each level."""
_KEY: Final = "kind, slot, name, model"
_DAY_OF: Final = f"slot / {DAY_SECONDS} * {DAY_SECONDS}"


def _tables(integer: str, *, without_rowid: str) -> list[str]:
    """Both levels' tables and indexes (``integer``: the dialect's 64-bit integer type)."""
    return [
        f"""CREATE TABLE rollup (
        kind TEXT NOT NULL, name TEXT NOT NULL, slot {integer} NOT NULL, model TEXT NOT NULL,
        spent {integer} NOT NULL, count {integer} NOT NULL, max_cost {integer} NOT NULL,
        PRIMARY KEY ({_KEY})
    ){without_rowid}""",
        "CREATE INDEX rollup_scope ON rollup (kind, name, slot)",
        "CREATE TABLE rollup_state (one INTEGER PRIMARY KEY CHECK (one = 1), "
        f"last_id {integer} NOT NULL)",
        "INSERT INTO rollup_state (one, last_id) VALUES (1, 0)",
    ]


def _daily(integer: str, *, without_rowid: str) -> list[str]:
    """Migration 7: the daily level, filled from the hours already folded (exact: a day's
    sums are its hours' sums)."""
    return [
        f"""CREATE TABLE rollup_daily (
        kind TEXT NOT NULL, name TEXT NOT NULL, slot {integer} NOT NULL, model TEXT NOT NULL,
        spent {integer} NOT NULL, count {integer} NOT NULL, PRIMARY KEY ({_KEY})
    ){without_rowid}""",
        "CREATE INDEX rollup_daily_scope ON rollup_daily (kind, name, slot)",
        "INSERT INTO rollup_daily (kind, name, slot, model, spent, count) "
        f"SELECT kind, name, {_DAY_OF}, model, SUM(spent), SUM(count) FROM rollup "
        f"GROUP BY kind, name, {_DAY_OF}, model",
    ]


SQLITE_TABLES: Final = _tables("INTEGER", without_rowid=" WITHOUT ROWID")
SQLITE_DAILY: Final = _daily("INTEGER", without_rowid=" WITHOUT ROWID")
POSTGRES_TABLES: Final = [
    *_tables("BIGINT", without_rowid=""),
    # ids at or below last_id not seen yet (a transaction still running, or rolled back)
    """CREATE TABLE rollup_gaps (
        id BIGINT PRIMARY KEY, seen_xmax BIGINT NOT NULL, seen_at DOUBLE PRECISION NOT NULL
    )""",
]
POSTGRES_DAILY: Final = _daily("BIGINT", without_rowid="")


@dataclass(frozen=True, slots=True)
class Dialect:
    """What differs between the two SQL ledgers."""

    ph: str  # the placeholder: "?" or "%s"
    tags_rows: str  # FROM-clause item giving one row per tag of records r, column value
    has_tag: str  # condition: the record has the tag (one placeholder)
    greatest: str  # the two-argument maximum function
    select_where: str  # SQLite needs WHERE true before ON CONFLICT in INSERT ... SELECT
    temp_table: bool  # the grouped rows go through a temporary table (SQLite: no DML in WITH)

    def _grouped(self, where: str) -> str:
        """The records matching ``where`` grouped by rollup key: one row per (kind, name,
        hour slot, model) with ``spent``, ``count`` and ``max_cost``."""
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
        return (
            "SELECT kind, name, slot, model, SUM(c) AS spent, COUNT(*) AS count, "
            f"MAX(c) AS max_cost FROM ({union}) s {self.select_where} "
            "GROUP BY kind, name, slot, model"
        )

    def _add_to(self, level: str, source: str) -> str:
        """Add the grouped rows of ``source`` (a table or a ``WITH`` name) to one level."""
        table = TABLES[level]
        adds = f"spent = {table}.spent + excluded.spent, count = {table}.count + excluded.count"
        if level == "hour":
            return (
                f"INSERT INTO {table} (kind, name, slot, model, spent, count, max_cost) "
                f"SELECT kind, name, slot, model, spent, count, max_cost FROM {source} "
                f"{self.select_where} ON CONFLICT ({_KEY}) DO UPDATE SET {adds}, "
                f"max_cost = {self.greatest}({table}.max_cost, excluded.max_cost)"
            )
        return (
            f"INSERT INTO {table} (kind, name, slot, model, spent, count) "
            f"SELECT kind, name, {_DAY_OF}, model, SUM(spent), SUM(count) FROM {source} "
            f"{self.select_where} GROUP BY kind, name, {_DAY_OF}, model "
            f"ON CONFLICT ({_KEY}) DO UPDATE SET {adds}"
        )

    def fold(self, where: str) -> list[str]:
        """The statements (run in order, in one transaction) folding the records matching
        ``where`` into both levels; only the statements naming ``where`` take its parameters."""
        grouped = self._grouped(where)
        if self.temp_table:
            return [
                "CREATE TEMP TABLE IF NOT EXISTS rollup_delta (kind TEXT, name TEXT, "
                "slot INTEGER, model TEXT, spent INTEGER, count INTEGER, max_cost INTEGER)",
                "DELETE FROM temp.rollup_delta",
                f"INSERT INTO temp.rollup_delta {grouped}",
                self._add_to("hour", "temp.rollup_delta"),
                self._add_to("day", "temp.rollup_delta"),
            ]
        hour = self._add_to("hour", "d")
        return [f"WITH d AS ({grouped}), h AS ({hour}) {self._add_to('day', 'd')}"]

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
        self, columns: str, kind: str, name: str, windows: Sequence[Window], pick: Pick
    ) -> tuple[str, list[Any]]:
        """The records of one scope inside ``windows`` as ``pick`` says (ordered, limited,
        at least its ``min_cost``), and the parameters. One ``UNION ALL`` branch per window,
        so that each is a range of the timestamp index (an ``OR`` of ranges beside another
        condition made SQLite scan the table: 10 s on 10M records); adjacent windows are
        merged first, and more than :data:`MAX_WINDOWS` become one range."""
        by_cost, limit, min_cost = pick
        p = self.ph
        merged: list[list[int]] = []
        for a, b in sorted(windows):
            if merged and a <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        if len(merged) > MAX_WINDOWS:
            merged = [[merged[0][0], merged[-1][1]]]
        if not merged:
            return f"SELECT {columns} FROM records WHERE 1 = 0 LIMIT {p}", [limit]
        cond, cparams = self.record_where(kind, name)
        order = "cost_nanos DESC, id DESC" if by_cost else "ts_us DESC, id DESC"
        branch = (
            f"SELECT {columns} FROM records WHERE ts_us >= {p} AND ts_us < {p} "
            f"AND cost_nanos >= {p} AND {cond}"
        )
        sql = " UNION ALL ".join(branch for _ in merged)
        params = [v for a, b in merged for v in (a, b, min_cost, *cparams)]
        return f"SELECT * FROM ({sql}) w ORDER BY {order} LIMIT {p}", [*params, limit]


SQLITE: Final = Dialect(
    ph="?",
    tags_rows="json_each(r.tags) t",
    has_tag="EXISTS (SELECT 1 FROM json_each(records.tags) WHERE value = ?)",
    greatest="max",
    select_where="WHERE true",
    temp_table=True,
)
POSTGRES: Final = Dialect(
    ph="%s",
    tags_rows="unnest(r.tags) AS t(value)",
    has_tag="%s = ANY(tags)",
    greatest="GREATEST",
    select_where="",
    temp_table=False,
)


class SQLRollups(Rollups):
    """The rollup reads of both SQL ledgers: the mixin of each sets ``_rollup_sql`` and
    ``_rollup_codec`` and runs a query with ``_rollup_query``."""

    _rollup_sql: Dialect
    _rollup_codec: RecordCodec

    if TYPE_CHECKING:

        def _rollup_query(self, sql: str, params: Sequence[Any]) -> list[Any]: ...

    def _series(
        self, kind: str, name: str, since: int, until: int
    ) -> list[tuple[int, str, int, int]]:
        d = self._rollup_sql
        where, params = d.scope_where(kind, name)
        rows = self._rollup_query(
            f"SELECT slot, model, spent, count FROM rollup WHERE {where} "
            f"AND slot >= {d.ph} AND slot < {d.ph}",
            [*params, since, until],
        )
        return [(int(s), str(m), int(v), int(c)) for s, m, v, c in rows]

    def _sums(
        self, dim: str, kind: str, name: str, parts: Sequence[Part]
    ) -> list[tuple[str, int, int]]:
        if not parts:
            return []
        d = self._rollup_sql
        if dim == "model":
            where, params = d.scope_where(kind, name)
            column = "model"
        else:
            where, params, column = f"kind = {d.ph}", [dim], "name"
        branches = [
            f"SELECT {column} AS g, spent, count FROM {TABLES[level]} WHERE {where} "
            f"AND slot >= {d.ph} AND slot < {d.ph}"
            for level, _lo, _hi in parts
        ]
        rows = self._rollup_query(
            f"SELECT g, SUM(spent), SUM(count) FROM ({' UNION ALL '.join(branches)}) u GROUP BY g",
            [v for _level, lo, hi in parts for v in (*params, lo, hi)],
        )
        return [(str(n), int(s), int(c)) for n, s, c in rows]

    def _top_slots(
        self, kind: str, name: str, since: int, until: int, n: int
    ) -> list[tuple[int, int]]:
        d = self._rollup_sql
        where, params = d.scope_where(kind, name)
        rows = self._rollup_query(
            f"SELECT slot, MAX(max_cost) AS m FROM rollup WHERE {where} AND slot >= {d.ph} "
            f"AND slot < {d.ph} GROUP BY slot ORDER BY m DESC, slot DESC LIMIT {d.ph}",
            [*params, since, until, n],
        )
        return [(int(s), int(m)) for s, m in rows]

    def _scope_records(
        self, kind: str, name: str, windows: Sequence[Window], pick: Pick
    ) -> list[StoredRecord]:
        sql, params = self._rollup_sql.scope_records_sql(SELECT_COLUMNS, kind, name, windows, pick)
        rows = self._rollup_query(sql, params)
        return [self._rollup_codec.decode(r) for r in rows]


__all__ = [
    "POSTGRES",
    "POSTGRES_DAILY",
    "POSTGRES_TABLES",
    "SQLITE",
    "SQLITE_DAILY",
    "SQLITE_TABLES",
    "TABLES",
    "Dialect",
    "SQLRollups",
]
