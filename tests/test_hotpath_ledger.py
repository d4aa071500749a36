"""Ledger data classes after the hot-path work: what the fast constructions must keep."""

from __future__ import annotations

import dataclasses

from costwarden.ledger.base import Bucket, NewRecord
from costwarden.records import StoredRecord


def test_stored_copies_every_field_to_its_namesake() -> None:
    # Each field a distinct value, so a positional slip shows up as a mismatch.
    values = {f.name: f"v{i}" for i, f in enumerate(dataclasses.fields(NewRecord))}
    values["metadata"] = {"k": 1}
    stored = NewRecord(**values).stored(7)  # type: ignore[arg-type]
    assert [f.name for f in dataclasses.fields(StoredRecord)] == [
        "id",
        *(f.name for f in dataclasses.fields(NewRecord)),
    ]
    assert stored == StoredRecord(id=7, **values)  # type: ignore[arg-type]


def test_empty_metadata_is_stored_as_none() -> None:
    values = {f.name: None for f in dataclasses.fields(NewRecord)}
    assert NewRecord(**{**values, "metadata": {}}).stored(1).metadata is None  # type: ignore[arg-type]


def test_bucket_keys() -> None:
    day = Bucket("user:a", "daily", 86400, 172800)
    assert day.key == day.hold_key == ("user:a", "daily", 86400)
    rolling = Bucket("global", "rolling:3600s", 600, 4200)
    assert rolling.key == ("global", "rolling:3600s", 600)
    assert rolling.hold_key == ("global", "rolling:3600s", 0)
    assert rolling == Bucket("global", "rolling:3600s", 600, 4200)
