"""The records as plain rows, in batches: the fast step in front of ``iter_records`` for exports.

Why: an export of a million records spent most of its time building them. ``iter_records``
gives :class:`~costwarden.records.StoredRecord` objects (every field decoded and checked,
metadata parsed from JSON); a CSV needs only the values. :meth:`RowStreamingLedger.iter_record_rows`
reads the same records, in the same ``(ts_us, id)`` keyset batches (no cursor or transaction
stays open between batches, so a slow reader never holds writers or PostgreSQL's vacuum
back), but hands each batch over as the tuples the database driver made, in
:data:`ROW_FIELDS` order, nothing rebuilt per row: the tags stay JSON array text (as SQLite
stores them; PostgreSQL's ``text[]`` is sent as the same JSON), which :func:`tags_decoder`
turns into a tuple, decoding each distinct text once. Memory stays bounded by one batch
whatever the ledger's size.

The SQL ledgers have it; the memory ledger (whose records are objects already) does not, and
a caller falls back to ``iter_records`` for it (:func:`stream_rows` says which).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar, runtime_checkable

from costwarden.caching import BoundedCache
from costwarden.ledger import billing_sql
from costwarden.ledger.billing import BATCH, check_batch

_T = TypeVar("_T")
ROW_FIELDS: Final = (
    "id",
    "ts_us",
    "model",
    "provider",
    "user_id",
    "team",
    "key",
    "endpoint",
    "tags",
    "request_id",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "cost_nanos",
    "latency_ms",
    "status",
    "estimated",
    "price_source",
)
"""A row's values, by the names of :class:`~costwarden.records.StoredRecord`'s fields (the
export's column order). ``tags`` is a JSON array of str as text, or None for no tags
(:func:`tags_decoder`); ``estimated`` is truthy or not (SQLite keeps 0 or 1); ``metadata`` is
left out."""
_ID: Final = ROW_FIELDS.index("id")
_TS: Final = ROW_FIELDS.index("ts_us")
_CACHE: Final = 4096  # distinct stored tag values kept decoded (a ledger has few tag sets)
Row = tuple[Any, ...]


@runtime_checkable
class RowStreamingLedger(Protocol):
    """A ledger that can hand its records over as plain rows (the SQL ledgers)."""

    def iter_record_rows(
        self, since_us: int | None = None, until_us: int | None = None, batch: int = BATCH
    ) -> Iterator[list[Row]]:
        """The records of ``[since_us, until_us)`` in ``(ts_us, id)`` order as lists of at
        most ``batch`` rows (:data:`ROW_FIELDS`)."""
        ...


def _batches(
    read: Callable[[tuple[int, ...]], list[Row]],
    since_us: int | None,
    until_us: int | None,
    batch: int,
) -> Iterator[list[Row]]:
    """Keyset-paged batches of ``read(params)``, as they come from the driver."""
    check_batch(batch)
    after = billing_sql.first_after(since_us)
    while True:
        rows = read(billing_sql.batch_params(after, until_us, batch))
        if not rows:
            return
        yield rows
        if len(rows) < batch:
            return
        after = (rows[-1][_TS], rows[-1][_ID])


def tags_decoder() -> Callable[[str | None], tuple[str, ...]]:
    """A function from a row's ``tags`` (JSON text or None) to the record's tags tuple, which
    decodes each distinct text once (a bounded cache: a ledger has few distinct tag sets)."""
    seen: BoundedCache[str, tuple[str, ...]] = BoundedCache(_CACHE)

    def tags(text: str | None) -> tuple[str, ...]:
        if not text:  # NULL (SQLite) or empty: no tags
            return ()
        got = seen.get(text)
        if got is None:
            got = tuple(json.loads(text))
            seen.put(text, got)
        return got

    return tags


def _select(tags_as_json: str) -> str:
    return ", ".join(tags_as_json if f == "tags" else f for f in ROW_FIELDS)


_SQLITE_SELECT: Final = _select("tags")
_POSTGRES_SELECT: Final = _select("array_to_json(tags)::text")


class SQLiteRecordRows:
    """Mixin for SQLiteLedger: :meth:`iter_record_rows` over its ``_read`` connections."""

    if TYPE_CHECKING:

        def _read(self) -> AbstractContextManager[Any]: ...

    def iter_record_rows(
        self, since_us: int | None = None, until_us: int | None = None, batch: int = BATCH
    ) -> Iterator[list[Row]]:
        """See :class:`RowStreamingLedger`."""
        sql = billing_sql.batch_sql(_SQLITE_SELECT, "?")

        def read(params: tuple[int, ...]) -> list[Row]:
            with self._read() as conn:
                rows: list[Row] = conn.execute(sql, params).fetchall()
            return rows

        return _batches(read, since_us, until_us, batch)


class PostgresRecordRows:
    """Mixin for PostgresLedger: :meth:`iter_record_rows` over its ``_run`` connections."""

    if TYPE_CHECKING:

        def _run(self, what: str, fn: Callable[[Any], _T]) -> _T: ...

    def iter_record_rows(
        self, since_us: int | None = None, until_us: int | None = None, batch: int = BATCH
    ) -> Iterator[list[Row]]:
        """See :class:`RowStreamingLedger`."""
        sql = billing_sql.batch_sql(_POSTGRES_SELECT, "%s")

        def read(params: tuple[int, ...]) -> list[Row]:
            rows: list[Row] = self._run(
                "iter_record_rows", lambda c: c.execute(sql, params).fetchall()
            )
            return rows

        return _batches(read, since_us, until_us, batch)


def stream_rows(
    ledger: object, since_us: int | None = None, until_us: int | None = None, batch: int = BATCH
) -> Iterator[list[Row]] | None:
    """``ledger.iter_record_rows(...)`` where it has it, else None (use ``iter_records``)."""
    if isinstance(ledger, RowStreamingLedger):
        return ledger.iter_record_rows(since_us, until_us, batch)
    return None


__all__ = [
    "ROW_FIELDS",
    "PostgresRecordRows",
    "Row",
    "RowStreamingLedger",
    "SQLiteRecordRows",
    "stream_rows",
    "tags_decoder",
]
