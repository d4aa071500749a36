"""The ``records`` table's row codec, one for the SQLite and PostgreSQL ledgers.

The columns are a record's fields (:data:`~costwarden.records.RECORD_FIELDS`, declared once
on :class:`~costwarden.records.NewRecord`) plus ``id`` and ``hold_id``, so a field added to
the record is a column here with no list to keep in step. The two backends differ only in
how they store a record's tags (JSON text in SQLite, ``text[]`` in PostgreSQL); each makes
its :class:`RecordCodec` with its own pair of tag functions and uses it for every append and
every read of history.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from costwarden.records import RECORD_FIELDS, NewRecord, StoredRecord, record_values

APPEND_COLUMNS: Final = (*RECORD_FIELDS[:-1], "hold_id", RECORD_FIELDS[-1])
"""What an append writes, in the order of :meth:`RecordCodec.params`: the record's fields,
with the settled hold's id before the metadata (``cw_append``'s parameter order in
PostgreSQL, fixed by its migration 3; SQLite's INSERT names the columns in the same order)."""

SELECT_COLUMNS: Final = ", ".join((*RECORD_FIELDS, "id"))
"""The select list that :meth:`RecordCodec.decode` reads: the record's fields, then ``id``
(the order of :class:`StoredRecord`'s fields)."""

_TAGS: Final = RECORD_FIELDS.index("tags")
_ESTIMATED: Final = RECORD_FIELDS.index("estimated")
_METADATA: Final = RECORD_FIELDS.index("metadata")
assert len(RECORD_FIELDS) - 1 == _METADATA  # APPEND_COLUMNS puts hold_id just before it


@dataclass(frozen=True, slots=True)
class RecordCodec:
    """A record to parameters and back, for one SQL backend.

    ``tags_to_db`` encodes a non-empty tags tuple (no tags is stored as NULL);
    ``tags_from_db`` decodes a stored non-NULL, non-empty value. Metadata is JSON text and
    ``estimated`` a boolean (SQLite stores it as 0 or 1) in both backends.
    """

    tags_to_db: Callable[[tuple[str, ...]], object]
    tags_from_db: Callable[[Any], tuple[str, ...]]

    def params(self, record: NewRecord, hold_id: str | None) -> list[object]:
        """The append's parameters, in :data:`APPEND_COLUMNS` order."""
        values: list[object] = list(record_values(record))
        values[_TAGS] = self.tags_to_db(record.tags) if record.tags else None
        values[_METADATA] = record.metadata_json
        values.insert(_METADATA, hold_id)
        return values

    def decode(self, row: Sequence[Any]) -> StoredRecord:
        """The stored record of a row read with :data:`SELECT_COLUMNS`."""
        values = list(row)
        record_id = values.pop()
        tags, metadata = values[_TAGS], values[_METADATA]
        values[_TAGS] = self.tags_from_db(tags) if tags else ()
        values[_ESTIMATED] = bool(values[_ESTIMATED])
        values[_METADATA] = json.loads(metadata) if metadata else None
        return StoredRecord(*values, id=record_id)


def _json_tags(tags: tuple[str, ...]) -> str:
    return json.dumps(list(tags))


def _tags_from_json(text: str) -> tuple[str, ...]:
    return tuple(json.loads(text))


SQLITE_RECORDS: Final = RecordCodec(tags_to_db=_json_tags, tags_from_db=_tags_from_json)
"""SQLite keeps tags as a JSON array in a TEXT column."""

POSTGRES_RECORDS: Final = RecordCodec(tags_to_db=list, tags_from_db=tuple)
"""PostgreSQL keeps tags as ``text[]`` (psycopg sends a list and reads back a list)."""


__all__ = [
    "APPEND_COLUMNS",
    "POSTGRES_RECORDS",
    "SELECT_COLUMNS",
    "SQLITE_RECORDS",
    "RecordCodec",
]
