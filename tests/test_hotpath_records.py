"""Record validation fast paths accept and reject exactly what the full checks do.

The reference below is UsageRecord's and Usage's validation as it was before the fast paths,
applied to a plain namespace; every case must end the same way (same fields and types, or
the same InvalidInputError message).
"""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costwarden.budget import name_or_none
from costwarden.errors import InvalidInputError
from costwarden.records import (
    EXTRA_COUNTS,
    Usage,
    UsageRecord,
    _plain_record,  # the one-step test under test
    check_count,
    check_metadata,
    check_tags,
    check_timestamp,
)

_COUNTS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
_COUNTS += ("reasoning_tokens",)
_NAMES = ("user_id", "endpoint", "request_id", "team", "key", "provider")


def _reference_usage(**counts: Any) -> dict[str, Any]:
    out = {name: check_count(counts.get(name, 0), name) for name in _COUNTS}
    if out["cache_read_tokens"] + out["cache_write_tokens"] > out["input_tokens"]:
        raise InvalidInputError(
            "cache_read_tokens + cache_write_tokens "
            f"({out['cache_read_tokens']} + {out['cache_write_tokens']}) exceed input_tokens "
            f"({out['input_tokens']}); input_tokens must include cached tokens "
            "(Anthropic reports them separately: add them in)"
        )
    if out["reasoning_tokens"] > out["output_tokens"]:
        raise InvalidInputError(
            f"reasoning_tokens ({out['reasoning_tokens']}) exceed output_tokens "
            f"({out['output_tokens']}); output_tokens must include reasoning tokens"
        )
    return out


def _reference_record(**kw: Any) -> dict[str, Any]:
    r = SimpleNamespace(
        **{
            "cost_usd": None,
            "timestamp": datetime(2026, 1, 1, tzinfo=UTC),
            "tags": (),
            "latency_ms": None,
            "metadata": None,
            "status": "ok",
            "estimated": False,
            **dict.fromkeys(_NAMES),
            **dict.fromkeys(_COUNTS[2:], 0),
            **kw,
        }
    )
    if not isinstance(r.model, str) or not r.model.strip():
        raise InvalidInputError(f"model must be a non-empty string, got {r.model!r}")
    r.input_tokens = check_count(r.input_tokens, "input_tokens")
    r.output_tokens = check_count(r.output_tokens, "output_tokens")
    r.timestamp = check_timestamp(r.timestamp)
    for name in _NAMES:
        name_or_none(getattr(r, name), name)
    r.tags = check_tags(r.tags)
    if r.latency_ms is not None and (
        isinstance(r.latency_ms, bool)
        or not isinstance(r.latency_ms, (int, float))
        or not math.isfinite(r.latency_ms)
        or r.latency_ms < 0
    ):
        raise InvalidInputError(f"latency_ms must be a non-negative number, got {r.latency_ms!r}")
    for name in _COUNTS[2:]:
        setattr(r, name, check_count(getattr(r, name), name))
    if r.metadata is not None:
        check_metadata(r.metadata)
    if r.cache_read_tokens or r.cache_write_tokens or r.reasoning_tokens:
        _reference_usage(**{n: getattr(r, n) for n in _COUNTS})
    if not isinstance(r.status, str) or not r.status:
        raise InvalidInputError(
            f"status must be a non-empty string such as 'ok' or 'error', got {r.status!r}"
        )
    if not isinstance(r.estimated, bool):
        raise InvalidInputError(f"estimated must be True or False, got {r.estimated!r}")
    return {k: v for k, v in vars(r).items() if k != "cost_usd"}


def _outcome(make: Any, fields: tuple[str, ...], **kw: Any) -> tuple[str, Any]:
    """("ok", each field's type and value) or ("error", the InvalidInputError message)."""
    try:
        made = make(**kw)
    except InvalidInputError as exc:
        return "error", str(exc)
    get = made.get if isinstance(made, dict) else lambda name: getattr(made, name)
    return "ok", {name: (type(get(name)), get(name)) for name in fields}


_counts = st.one_of(
    st.integers(min_value=0, max_value=6),
    st.integers(min_value=-3, max_value=50),
    st.sampled_from([True, False, 2.0, -1.0, 2.5, math.nan, math.inf, "3", None]),
)


@settings(max_examples=1000)
@given(st.fixed_dictionaries({name: _counts for name in _COUNTS}))
def test_usage_fast_path_matches_full_checks(counts: dict[str, Any]) -> None:
    assert _outcome(Usage, _COUNTS, **counts) == _outcome(_reference_usage, _COUNTS, **counts)


@pytest.mark.parametrize("name", _COUNTS)
@pytest.mark.parametrize("bad", [-1, True, 1.5, math.nan, "1"])
def test_each_bad_count_is_refused(name: str, bad: object) -> None:
    counts = {**dict.fromkeys(_COUNTS, 0), "input_tokens": 10, "output_tokens": 10, name: bad}
    expected = _outcome(_reference_usage, _COUNTS, **counts)
    assert expected[0] == "error"
    assert _outcome(Usage, _COUNTS, **counts) == expected
    assert _outcome(UsageRecord, _COUNTS, model="m", **counts) == expected


_stamps = st.sampled_from(
    [
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=2))),
        datetime(2026, 1, 1),  # naive: local time
        datetime(9999, 6, 1, tzinfo=UTC),  # out of range: period arithmetic would overflow
        datetime(1969, 12, 31, 23, 59, tzinfo=UTC),
        "2026-01-01",
        None,
    ]
)
_names = st.sampled_from([None, "alice", "", 5, b"x"])
_tags = st.sampled_from([(), ("a",), ["a", "b"], "solo", ("",), (1,), [], 5, None])
_latency = st.sampled_from([None, 0, 12.5, -1.0, math.nan, math.inf, True, "5"])


@settings(max_examples=500)
@given(
    counts=st.fixed_dictionaries({name: _counts for name in _COUNTS}),
    timestamp=_stamps,
    names=st.fixed_dictionaries({name: _names for name in _NAMES}),
    tags=_tags,
    latency_ms=_latency,
    model=st.sampled_from(["gpt-4o-mini", " ", 3]),
    status=st.sampled_from(["ok", "error", "", None, 5]),
    estimated=st.sampled_from([False, True, 0, "yes", None]),
)
def test_record_fast_paths_match_full_checks(
    counts: dict[str, Any],
    timestamp: Any,
    names: dict[str, Any],
    tags: Any,
    latency_ms: Any,
    model: Any,
    status: Any,
    estimated: Any,
) -> None:
    kw = {
        **counts,
        **names,
        "model": model,
        "timestamp": timestamp,
        "tags": tags,
        "latency_ms": latency_ms,
        "status": status,
        "estimated": estimated,
    }
    fields = (*_COUNTS, *_NAMES, "model", "timestamp", "tags", "latency_ms", "status")
    fields += ("estimated",)
    assert _outcome(UsageRecord, fields, **kw) == _outcome(_reference_record, fields, **kw)


@pytest.mark.parametrize("stamp", [datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1)])
def test_check_timestamp_fast_path_returns_aware_input_unchanged(stamp: datetime) -> None:
    out = check_timestamp(stamp)
    assert out.tzinfo is not None
    assert (out is stamp) == (stamp.tzinfo is not None)


def test_usage_keeps_its_dataclass_behaviour() -> None:
    import copy
    import dataclasses
    import inspect
    import pickle

    u = Usage(5, 3, cache_read_tokens=1)
    assert u == Usage(input_tokens=5, output_tokens=3, cache_read_tokens=1)
    assert hash(u) == hash(Usage(5, 3, 1, 0, 0))
    assert pickle.loads(pickle.dumps(u)) == u == copy.deepcopy(u)
    assert dataclasses.replace(u, output_tokens=9).output_tokens == 9
    assert list(inspect.signature(Usage).parameters) == [*_COUNTS, *EXTRA_COUNTS]
    assert Usage() == Usage(0, 0, 0, 0, 0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        u.input_tokens = 3  # type: ignore[misc]


def _reference_extra(**counts: Any) -> dict[str, Any]:
    """The extra counts' rules written out plainly (records.EXTRA_COUNTS' docstring)."""
    out = _reference_usage(**counts)
    extra = {name: check_count(counts.get(name, 0), name) for name in EXTRA_COUNTS}
    cw1h, ia, car, oa = (extra[n] for n in EXTRA_COUNTS[:4])
    ok = (
        cw1h <= out["cache_write_tokens"]
        and car <= min(out["cache_read_tokens"], ia)
        and out["cache_read_tokens"] + out["cache_write_tokens"] + ia - car <= out["input_tokens"]
        and out["reasoning_tokens"] + oa <= out["output_tokens"]
    )
    if not ok:
        raise InvalidInputError("inconsistent")
    return {**out, **extra}


@settings(max_examples=1000)
@given(
    st.fixed_dictionaries(
        {
            **{name: st.integers(min_value=0, max_value=12) for name in _COUNTS},
            **{name: _counts for name in EXTRA_COUNTS},
        }
    )
)
def test_usage_extra_counts_fast_path_matches_full_checks(counts: dict[str, Any]) -> None:
    fields = (*_COUNTS, *EXTRA_COUNTS)
    ours = _outcome(Usage, fields, **counts)
    reference = _outcome(_reference_extra, fields, **counts)
    assert ours[0] == reference[0]
    if ours[0] == "ok":
        assert ours == reference
        record = UsageRecord("m", **counts)
        assert record.usage == Usage(**{k: reference[1][k][1] for k in fields})
        assert all(type(getattr(record, name)) is int for name in EXTRA_COUNTS)
    else:
        with pytest.raises(InvalidInputError):
            UsageRecord("m", **counts)


@pytest.mark.parametrize("tier", [5, b"flex", ["flex"]])
def test_a_service_tier_that_is_not_a_string_is_refused(tier: object) -> None:
    # an otherwise usual record: the one-step check must not wave the tier through
    with pytest.raises(InvalidInputError, match="service_tier must be a string or None"):
        UsageRecord("gpt-4o", 10, 5, service_tier=tier)  # type: ignore[arg-type]
    assert UsageRecord("gpt-4o", 10, 5, service_tier="flex").service_tier == "flex"


# -- issue 12: the record's one-step test (records._plain_record) against the full checks ----

_RECORD_DEFAULTS: dict[str, Any] = {
    f.name: f.default for f in dataclasses.fields(UsageRecord) if f.init and f.name != "timestamp"
}


class _IntZero(int):
    """An int 0 that is not the int 0 object: must take the full path (and pass it)."""


def _raw_record(kw: dict[str, Any]) -> UsageRecord:
    """A UsageRecord with exactly these field values, no check run (``__post_init__`` not
    called): what either path is handed."""
    raw = object.__new__(UsageRecord)
    values = {**_RECORD_DEFAULTS, "timestamp": datetime(2026, 1, 1, tzinfo=UTC), **kw}
    for name, value in values.items():
        setattr(raw, name, value)
    raw._nanos = (None, None)
    return raw


_FIELDS = tuple(f.name for f in dataclasses.fields(UsageRecord) if f.init)


def _full_outcome(kw: dict[str, Any]) -> tuple[str, Any]:
    """The full checks' outcome (``UsageRecord._validate``, the path every record took before
    the one-step test): each field's type and value, or the error message."""
    raw = _raw_record(kw)
    try:
        raw._validate()
    except InvalidInputError as exc:
        return "error", str(exc)
    return "ok", {n: (type(getattr(raw, n)), getattr(raw, n)) for n in _FIELDS}


def _made_outcome(kw: dict[str, Any]) -> tuple[str, Any]:
    try:
        made = UsageRecord(**{"timestamp": datetime(2026, 1, 1, tzinfo=UTC), **kw})
    except InvalidInputError as exc:
        return "error", str(exc)
    return "ok", {n: (type(getattr(made, n)), getattr(made, n)) for n in _FIELDS}


def _check_both_paths(kw: dict[str, Any]) -> bool:
    """The one-step test only passes records the full checks accept unchanged, and a record
    made either way ends the same; returns whether the one-step test took it."""
    raw = _raw_record(kw)
    fast = _plain_record(raw)
    if fast:
        before = {n: getattr(raw, n) for n in _FIELDS}
        raw._validate()  # raises nothing...
        assert all(getattr(raw, n) is v for n, v in before.items())  # ...and changes nothing
    assert _made_outcome(kw) == _full_outcome(kw)
    return fast


_zero_like = st.sampled_from([0, 1, 0.0, False, True, _IntZero(0), None, "0"])
_name_like = st.one_of(
    st.sampled_from([None, "alice", "", " ", 5, b"x", "é", "\ud800", "x" * 300, "y" * 600]),
    st.text(max_size=8),
)


@settings(max_examples=1500)
@given(
    extras=st.fixed_dictionaries({name: _zero_like for name in EXTRA_COUNTS}),
    counts=st.fixed_dictionaries(
        {
            "input_tokens": st.sampled_from([0, 10, 2**63 - 1, 2**63, -1, 3.0, True]),
            "output_tokens": st.sampled_from([0, 7, 2**63 - 1, 2**63, -1, 2.0, False]),
            "cache_read_tokens": _zero_like,
            "cache_write_tokens": _zero_like,
            "reasoning_tokens": _zero_like,
        }
    ),
    names=st.fixed_dictionaries({name: _name_like for name in (*_NAMES, "model", "status")}),
    tier=st.sampled_from([None, "flex", "", 5]),
    latency=_latency,
    metadata=st.sampled_from([None, {}, {"a": 1}]),
    tags=st.sampled_from([(), ("a",), []]),
    estimated=st.sampled_from([False, True, 0]),
)
def test_one_step_record_test_matches_the_full_checks(
    extras: dict[str, Any],
    counts: dict[str, Any],
    names: dict[str, Any],
    tier: Any,
    latency: Any,
    metadata: Any,
    tags: Any,
    estimated: Any,
) -> None:
    kw = {**extras, **counts, **names, "service_tier": tier, "latency_ms": latency}
    kw |= {"metadata": metadata, "tags": tags, "estimated": estimated}
    _check_both_paths(kw)


_USUAL: dict[str, Any] = {"model": "gpt-4o-mini", "input_tokens": 120, "output_tokens": 40}


@pytest.mark.parametrize(
    ("change", "fast"),
    [
        ({}, True),
        ({"user_id": "u", "request_id": "r", "provider": "openai", "latency_ms": 1.5}, True),
        ({"endpoint": "/chat", "team": "t", "key": "k", "service_tier": "flex"}, True),
        ({"cache_read_tokens": 20, "reasoning_tokens": 5}, True),  # _plain_counts' branch
        ({"cache_read_tokens": 200}, False),  # over input_tokens: refused
        ({"input_tokens": 2**63}, False),
        ({"web_searches": 1}, False),  # an extra count: the full path checks its rules
        ({"web_searches": _IntZero(0)}, False),  # equal to 0 but not the int 0: full path
        ({"input_audio_tokens": 0.0}, False),  # converted by the full path
        ({"output_audio_tokens": False}, False),  # refused by the full path
        ({"user_id": ""}, False),
        ({"status": ""}, False),
        ({"model": "  "}, False),
        ({"user_id": "u" * 300, "request_id": "r" * 300}, False),  # long together, each fine
        ({"user_id": "é"}, False),  # not ASCII: the full path checks the encoding
        ({"service_tier": 5}, False),
        ({"latency_ms": 3}, False),  # an int latency: fine, but not the float shape
        ({"timestamp": datetime(2026, 1, 1)}, False),  # naive: converted
        ({"metadata": {"a": 1}}, False),
        ({"tags": ("a",)}, False),
        ({"estimated": 1}, False),
    ],
)
def test_each_branch_of_the_one_step_record_test(change: dict[str, Any], fast: bool) -> None:
    assert _check_both_paths({**_USUAL, **change}) is fast


@pytest.mark.parametrize(
    "extra", [{}, {"cache_write_tokens": 4, "cache_write_1h_tokens": 2}, {"web_searches": 3}]
)
def test_record_usage_is_every_count_whichever_shape(extra: dict[str, int]) -> None:
    # The usual shape builds Usage from five positional counts, any extra count by name.
    record = UsageRecord("m", 50, 9, cache_read_tokens=3, reasoning_tokens=2, **extra)
    counts = (*_COUNTS, *EXTRA_COUNTS)
    assert record.usage == Usage(**{n: getattr(record, n) for n in counts})
    assert all(getattr(record.usage, n) == getattr(record, n) for n in counts)
