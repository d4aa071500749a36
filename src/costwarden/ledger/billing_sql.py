"""The SQL of imported bill lines and of batched record reads, shared by SQLite and PostgreSQL.

The ledgers call these with their own ``execute`` (and placeholder style) inside their own
transactions; see :mod:`costwarden.ledger.billing` for what the lines mean. The table is
``bill_lines``, keyed by ``(provider, start_us, account, model, item)`` so an import replaces
the lines it has already stored (a model-less line keeps ``model = ''``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final

from costwarden.ledger.billing import HIGH_US, LOW_US, BillLine, after_key, check_batch
from costwarden.records import StoredRecord

_COLUMNS: Final = (
    "provider, start_us, end_us, account, model, item, cost_nanos, input_tokens, "
    "output_tokens, requests, source, imported_at"
)


def _table(integer: str, real: str, options: str) -> list[str]:
    """The bill_lines DDL in one dialect: the same columns and key, only the type names (and
    SQLite's WITHOUT ROWID) differ, so both backends are written from this one definition."""
    return [
        f"""CREATE TABLE bill_lines (
        provider TEXT NOT NULL, start_us {integer} NOT NULL, end_us {integer} NOT NULL,
        account TEXT NOT NULL DEFAULT '', model TEXT NOT NULL DEFAULT '',
        item TEXT NOT NULL DEFAULT '', cost_nanos {integer} NOT NULL,
        input_tokens {integer} NOT NULL DEFAULT 0, output_tokens {integer} NOT NULL DEFAULT 0,
        requests {integer} NOT NULL DEFAULT 0, source TEXT NOT NULL DEFAULT '',
        imported_at {real} NOT NULL,
        PRIMARY KEY (provider, start_us, account, model, item)
    ){options}""",
        "CREATE INDEX bill_lines_start ON bill_lines (start_us)",
    ]


SQLITE_TABLE: Final = _table("INTEGER", "REAL", " WITHOUT ROWID")
POSTGRES_TABLE: Final = _table("BIGINT", "DOUBLE PRECISION", "")


def upsert_sql(placeholder: str) -> str:
    """The insert-or-replace of one bill line, written with the backend's ``placeholder``, so
    re-importing a bill does not double it.
    """
    marks = ", ".join([placeholder] * 12)
    return (
        f"INSERT INTO bill_lines ({_COLUMNS}) VALUES ({marks}) "
        "ON CONFLICT (provider, start_us, account, model, item) DO UPDATE SET "
        "end_us = excluded.end_us, cost_nanos = excluded.cost_nanos, "
        "input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens, "
        "requests = excluded.requests, source = excluded.source, "
        "imported_at = excluded.imported_at"
    )


def line_params(line: BillLine) -> tuple[Any, ...]:
    """A BillLine's values in ``_COLUMNS`` order, for the upsert."""
    return (
        line.provider,
        line.start_us,
        line.end_us,
        line.account,
        line.model or "",
        line.item,
        line.cost_nanos,
        line.input_tokens,
        line.output_tokens,
        line.requests,
        line.source,
        line.imported_at,
    )


def select_sql(placeholder: str, provider: str | None) -> str:
    """The query for bill lines starting in a range (and of one provider), written with the
    backend's ``placeholder``.
    """
    p = placeholder
    where = f"start_us >= {p} AND start_us < {p}" + (f" AND provider = {p}" if provider else "")
    return (
        f"SELECT {_COLUMNS} FROM bill_lines WHERE {where} "
        "ORDER BY start_us, provider, account, model, item"
    )


def select_params(
    since_us: int | None, until_us: int | None, provider: str | None
) -> tuple[Any, ...]:
    """The parameters of ``select_sql``: the start bounds (open ends as the extreme values) and the
    provider if given.
    """
    bounds = (LOW_US if since_us is None else since_us, HIGH_US if until_us is None else until_us)
    return (*bounds, provider) if provider else bounds


def line_from_row(row: Sequence[Any]) -> BillLine:
    """A BillLine from a ``bill_lines`` row (columns in ``_COLUMNS`` order)."""
    provider, start, end, account, model, item, cost, n_in, n_out, calls, source, at = row
    return BillLine(
        provider=provider,
        start_us=int(start),
        end_us=int(end),
        model=model or None,
        item=item,
        cost_nanos=int(cost),
        account=account,
        input_tokens=int(n_in),
        output_tokens=int(n_out),
        requests=int(calls),
        source=source,
        imported_at=float(at),
    )


def record_batches(
    read: Callable[[tuple[int, ...]], Sequence[Sequence[Any]]],
    decode: Callable[[Sequence[Any]], StoredRecord],
    since_us: int | None,
    until_us: int | None,
    batch: int,
) -> Iterator[StoredRecord]:
    """``iter_records`` of a SQL ledger: the records of ``[since_us, until_us)`` in ``(ts_us, id)``
    order, ``batch`` rows at a time. ``read(params)`` runs the ledger's :func:`batch_sql` with
    the parameters of one batch, each in a transaction of its own (none stays open between
    batches); ``decode`` makes a row a record."""
    check_batch(batch)
    after = first_after(since_us)
    while True:
        rows = read(batch_params(after, until_us, batch))
        if not rows:
            return
        records = [decode(row) for row in rows]
        yield from records
        if len(rows) < batch:
            return
        after = after_key(records)


def batch_sql(columns: str, placeholder: str) -> str:
    """The next batch of records after ``(ts_us, id)``: ``ts_us >= ?`` lets the planner use the
    ``ts_us`` index, the row comparison skips what the previous batch already returned."""
    p = placeholder
    return (
        f"SELECT {columns} FROM records WHERE ts_us >= {p} AND (ts_us, id) > ({p}, {p}) "
        f"AND ts_us < {p} ORDER BY ts_us, id LIMIT {p}"
    )


def batch_params(after: tuple[int, int], until_us: int | None, batch: int) -> tuple[int, ...]:
    """The parameters of one keyset-paged batch after (ts_us, id) ``after``, up to ``until_us``."""
    ts, rid = after
    return (ts, ts, rid, HIGH_US if until_us is None else until_us, batch)


def first_after(since_us: int | None) -> tuple[int, int]:
    """The ``(ts_us, id)`` before the first record of the range."""
    return (LOW_US if since_us is None else since_us, -(2**62))


Execute = Callable[..., Any]
