"""Ledger data classes after the hot-path work: what the fast constructions must keep."""

from __future__ import annotations

import dataclasses

import pytest

from costwarden.ledger.base import Bucket, BucketUsage, NewRecord
from costwarden.records import UNSTORED, StoredRecord, record_values


def test_stored_copies_every_field_to_its_namesake() -> None:
    # Each field a distinct value, so a positional slip shows up as a mismatch.
    values = {f.name: f"v{i}" for i, f in enumerate(dataclasses.fields(NewRecord))}
    values["metadata"] = {"k": 1}
    stored = NewRecord(**values).stored(7)  # type: ignore[arg-type]
    # One field list: a StoredRecord is a NewRecord plus its id.
    assert issubclass(StoredRecord, NewRecord)
    assert [f.name for f in dataclasses.fields(StoredRecord)] == [
        *(f.name for f in dataclasses.fields(NewRecord)),
        "id",
    ]
    assert stored == StoredRecord(id=7, **values)  # type: ignore[arg-type]
    assert stored.id == 7 and stored.metadata == {"k": 1}


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


def test_from_usage_is_the_keyword_built_record() -> None:
    from datetime import UTC, datetime

    from costwarden.records import UsageRecord

    r = UsageRecord(
        "gpt-4o",
        100,
        50,
        timestamp=datetime(2026, 3, 1, tzinfo=UTC),
        user_id="u",
        endpoint="/chat",
        request_id="req",
        team="t",
        key="k",
        provider="openai",
        tags=("a", "b"),
        cache_read_tokens=10,
        cache_write_tokens=5,
        reasoning_tokens=7,
        latency_ms=12.5,
        status="error",
        estimated=True,
        metadata={"task": "chat"},
    )
    expected = NewRecord(
        ts_us=123,
        model=r.model,
        provider=r.provider,
        input_tokens=r.input_tokens,
        output_tokens=r.output_tokens,
        cache_read_tokens=r.cache_read_tokens,
        cache_write_tokens=r.cache_write_tokens,
        reasoning_tokens=r.reasoning_tokens,
        cost_nanos=999,
        user_id=r.user_id,
        team=r.team,
        key=r.key,
        endpoint=r.endpoint,
        request_id=r.request_id,
        tags=r.tags,
        latency_ms=r.latency_ms,
        status=r.status,
        estimated=r.estimated,
        price_source="catalogue",
        metadata=r.metadata,
    )
    built = NewRecord.from_usage(r, ts_us=123, cost_nanos=999, price_source="catalogue")
    assert record_values(built) == record_values(expected)
    assert [type(getattr(built, f.name)) for f in dataclasses.fields(NewRecord)] == [
        type(getattr(expected, f.name)) for f in dataclasses.fields(NewRecord)
    ]
    # Made as a StoredRecord not stored yet: the ledger's stored() gives it its id in place,
    # once; a second stored() copies, so the first stored record never changes.
    assert isinstance(built, NewRecord) and isinstance(built, StoredRecord)
    assert built.id == UNSTORED
    first = built.stored(5)
    assert first is built and first.id == 5
    again = built.stored(6)
    assert again is not built and (first.id, again.id) == (5, 6)
    assert again == dataclasses.replace(first, id=6)
    assert expected.stored(7) is not expected  # a NewRecord proper is always copied


def test_built_records_stay_frozen() -> None:
    values = {f.name: None for f in dataclasses.fields(NewRecord)}
    stored = NewRecord(**values).stored(1)  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        stored.model = "x"  # type: ignore[misc]
    usage = BucketUsage(1, 2, 3)
    assert usage == BucketUsage(spent=1, reserved=2, count=3, baseline=0)
    assert hash(usage) == hash(BucketUsage(1, 2, 3, 0))
    with pytest.raises(dataclasses.FrozenInstanceError):
        usage.spent = 5  # type: ignore[misc]
