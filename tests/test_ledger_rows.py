"""The records row codec: one column list for SQLite and PostgreSQL, read by name."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import pytest

from costwarden.ledger import SQLiteLedger
from costwarden.ledger.rows import (
    APPEND_COLUMNS,
    POSTGRES_RECORDS,
    SELECT_COLUMNS,
    SQLITE_RECORDS,
    RecordCodec,
)
from costwarden.records import RECORD_FIELDS, NewRecord, StoredRecord


def _distinct() -> NewRecord:
    """A record whose every field holds a value no other field holds (a slip shows)."""
    return NewRecord(
        ts_us=1,
        model="m",
        provider="p",
        input_tokens=40,
        output_tokens=30,
        cache_read_tokens=4,
        cache_write_tokens=5,
        reasoning_tokens=6,
        cost_nanos=7,
        user_id="u",
        team="t",
        key="k",
        endpoint="e",
        request_id="r",
        tags=("a", "b"),
        latency_ms=8.5,
        status="ok",
        estimated=True,
        price_source="caller",
        metadata={"task": "chat"},
    )


def test_columns_are_the_record_fields() -> None:
    assert tuple(f.name for f in dataclasses.fields(NewRecord)) == RECORD_FIELDS
    assert SELECT_COLUMNS.split(", ") == [f.name for f in dataclasses.fields(StoredRecord)]
    assert sorted(APPEND_COLUMNS) == sorted((*RECORD_FIELDS, "hold_id"))


@pytest.mark.parametrize(
    ("codec", "stored_tags"), [(SQLITE_RECORDS, '["a", "b"]'), (POSTGRES_RECORDS, ["a", "b"])]
)
def test_params_name_each_value_by_its_column(codec: RecordCodec, stored_tags: object) -> None:
    record = _distinct()
    params = dict(zip(APPEND_COLUMNS, codec.params(record, "hold-1"), strict=True))
    expected = {name: getattr(record, name) for name in RECORD_FIELDS}
    expected |= {"tags": stored_tags, "metadata": '{"task":"chat"}', "hold_id": "hold-1"}
    assert params == expected


@pytest.mark.parametrize("codec", [SQLITE_RECORDS, POSTGRES_RECORDS])
def test_no_tags_and_no_metadata_are_null(codec: RecordCodec) -> None:
    record = dataclasses.replace(_distinct(), tags=(), metadata={})
    params = dict(zip(APPEND_COLUMNS, codec.params(record, None), strict=True))
    assert params["tags"] is None and params["metadata"] is None and params["hold_id"] is None
    row = [params[c] for c in SELECT_COLUMNS.split(", ") if c != "id"] + [9]
    assert codec.decode(row) == record.stored(9)
    assert codec.decode(row).metadata is None


@pytest.mark.parametrize("codec", [SQLITE_RECORDS, POSTGRES_RECORDS])
def test_decode_inverts_params(codec: RecordCodec) -> None:
    record = _distinct()
    params = dict(zip(APPEND_COLUMNS, codec.params(record, "h"), strict=True))
    params["estimated"] = 1  # as SQLite reads a boolean back
    row = [params[c] for c in SELECT_COLUMNS.split(", ") if c != "id"] + [42]
    decoded = codec.decode(row)
    assert decoded == record.stored(42)
    assert decoded.estimated is True and decoded.tags == ("a", "b")


def test_sqlite_row_holds_each_value_in_its_column(tmp_path: Path) -> None:
    path = tmp_path / "rows.db"
    ledger = SQLiteLedger(f"sqlite:///{path}")
    try:
        stored, _ = ledger.append(_distinct(), [], hold_id="hold-9")
        assert ledger.records() == [stored]
    finally:
        ledger.close()
    conn = sqlite3.connect(path)
    try:
        conn.row_factory = sqlite3.Row
        row = conn.execute("SELECT * FROM records").fetchone()
    finally:
        conn.close()
    assert row["hold_id"] == "hold-9"
    assert row["model"] == "m" and row["provider"] == "p" and row["cost_nanos"] == 7
    assert row["cache_read_tokens"] == 4 and row["reasoning_tokens"] == 6
    assert row["tags"] == '["a", "b"]' and row["metadata"] == '{"task":"chat"}'
    assert row["estimated"] == 1 and row["latency_ms"] == 8.5 and row["id"] == stored.id
