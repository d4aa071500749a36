"""What is recorded: token usage, usage records, and alerts.

Token convention (DESIGN.md): ``input_tokens`` counts *all* prompt tokens, cache reads and
writes included; ``output_tokens`` counts all completion tokens, reasoning included. The
cache and reasoning fields are subsets used for pricing, never added on top.
"""

from __future__ import annotations

import enum
import json
import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from functools import partial
from itertools import repeat
from operator import attrgetter, call
from typing import Any, Final, TypeVar, cast

from costwarden.bounds import MAX_INT64, MAX_NAME_LENGTH, check_int64, check_names
from costwarden.budget import name_or_none
from costwarden.errors import InvalidInputError
from costwarden.money import Nanos, SpentAndLimitUsd, nanos_to_usd, usd_to_nanos

_T = TypeVar("_T")


class AlertLevel(enum.StrEnum):
    """Severity of a budget alert (the brief's names and values).

    A ``StrEnum``, so ``str(level)`` is its value: the brief's ``alert_handler=print`` prints
    ``warning Daily budget 80% used ...``, not ``AlertLevel.WARNING ...``."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """The level's severity as a number (info < warning < critical), for comparing levels."""
        return _LEVEL_RANK[self]


_LEVEL_RANK = {AlertLevel.INFO: 0, AlertLevel.WARNING: 1, AlertLevel.CRITICAL: 2}


def check_count(value: object, name: str) -> int:
    """Validate a token count: a non-negative ``int`` (not bool, not float) within int64."""
    if type(value) is int and 0 <= value <= MAX_INT64:
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and math.isfinite(value) and value.is_integer() and value >= 0:
            return check_int64(int(value), name)
        raise InvalidInputError(f"{name} must be a non-negative integer, got {value!r}")
    if value < 0:
        raise InvalidInputError(f"{name} must not be negative, got {value}")
    return check_int64(value, name)


_ZERO: Final = 0
"""The int 0 every count defaults to. A count that *is* this object is an exact int 0 (a
value equal to it, such as ``0.0`` or ``False``, is another object): the hot paths' fast
shapes test the counts that are nearly always left at 0 with one identity test each, where
``type(n) is int and n == 0`` would be two steps (issue 12)."""


def _plain_counts(i: object, o: object, cr: object, cw: object, r: object) -> bool:
    """Whether input, output, cache read, cache write and reasoning counts are plain
    non-negative ints within the subset rules and int64 (the subsets are at most ``i`` and
    ``o``): ``check_count`` would return each unchanged and :class:`Usage` would accept them,
    so validation can skip the per-field work (hot path)."""
    return (
        type(i) is int
        and type(o) is int
        and type(cr) is int
        and type(cw) is int
        and type(r) is int
        and MAX_INT64 >= o >= r >= 0
        and cr >= 0
        and cw >= 0
        and MAX_INT64 >= i >= cr + cw
    )


_NAME_FIELDS: Final = (
    "model",
    "user_id",
    "endpoint",
    "request_id",
    "team",
    "key",
    "provider",
    "status",
)


def check_metadata(value: object) -> dict[str, Any]:
    """Metadata is kept in the ledger as JSON: a dict with string keys, JSON-serialisable."""
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise InvalidInputError(f"metadata must be a dict with string keys, got {value!r}")
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"metadata must be JSON-serialisable: {exc}") from None
    return value


TIMESTAMP_MIN: Final = datetime(1970, 1, 1, tzinfo=UTC)
TIMESTAMP_END: Final = datetime(9999, 1, 1, tzinfo=UTC)
"""Timestamps lie in ``[1970-01-01, 9999-01-01)`` UTC: a day, week or month around any such
instant exists in every time zone (later ones overflow ``datetime`` in period arithmetic);
anything outside is a bug (seconds for milliseconds, ``datetime.max`` as "never")."""


def check_timestamp(value: object, name: str = "timestamp") -> datetime:
    """Validate a datetime; naive datetimes mean local time (as ``astimezone()`` reads them).
    It must lie between :data:`TIMESTAMP_MIN` and :data:`TIMESTAMP_END`."""
    if type(value) is datetime and value.tzinfo is UTC and 1970 <= value.year < 9999:
        return value  # the usual case: already aware, in UTC, in range
    if not isinstance(value, datetime):
        raise InvalidInputError(f"{name} must be a datetime, got {type(value).__name__}")
    try:
        aware = value.astimezone() if value.tzinfo is None or value.utcoffset() is None else value
        in_range = TIMESTAMP_MIN <= aware < TIMESTAMP_END
    except (ArithmeticError, ValueError, TypeError):  # no local time or offset for it
        in_range = False
    if not in_range:
        try:
            text = value.isoformat()
        except (ArithmeticError, ValueError, TypeError):
            text = repr(value)
        raise InvalidInputError(
            f"{name} {text} is out of range: timestamps must lie between "
            f"{TIMESTAMP_MIN:%Y-%m-%d} and {TIMESTAMP_END:%Y-%m-%d} UTC"
        )
    return aware


@dataclass(frozen=True, slots=True, init=False)
class Usage:
    """Token usage of one call, in the OpenAI/genai-prices convention (see module doc)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cache_write_1h_tokens: int = 0
    input_audio_tokens: int = 0
    cache_audio_read_tokens: int = 0
    output_audio_tokens: int = 0
    web_searches: int = 0

    def __init__(
        self,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
        reasoning_tokens: int = 0,
        *,
        cache_write_1h_tokens: int = 0,
        input_audio_tokens: int = 0,
        cache_audio_read_tokens: int = 0,
        output_audio_tokens: int = 0,
        web_searches: int = 0,
    ) -> None:
        # Written out (init=False) because every tracked call builds two: plain counts (the
        # usual case) go straight into the slots, at half the cost of the generated frozen
        # __init__'s object.__setattr__ calls; anything else is checked (and converted) first.
        if not (
            (  # no cache or reasoning tokens (the usual shape): the subset rules hold
                cache_read_tokens is _ZERO
                and cache_write_tokens is _ZERO
                and reasoning_tokens is _ZERO
                and type(input_tokens) is int
                and type(output_tokens) is int
                and 0 <= input_tokens <= MAX_INT64
                and 0 <= output_tokens <= MAX_INT64
            )
            or _plain_counts(
                input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens
            )
        ):
            input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens = (
                _checked_usage_counts(
                    input_tokens,
                    output_tokens,
                    cache_read_tokens,
                    cache_write_tokens,
                    reasoning_tokens,
                )
            )
        _set_input_tokens(self, input_tokens)
        _set_output_tokens(self, output_tokens)
        _set_cache_read_tokens(self, cache_read_tokens)
        _set_cache_write_tokens(self, cache_write_tokens)
        _set_reasoning_tokens(self, reasoning_tokens)
        if not (  # the usual case is five int zeros, which need no checks
            cache_write_1h_tokens is _ZERO
            and input_audio_tokens is _ZERO
            and cache_audio_read_tokens is _ZERO
            and output_audio_tokens is _ZERO
            and web_searches is _ZERO
        ):
            (
                cache_write_1h_tokens,
                input_audio_tokens,
                cache_audio_read_tokens,
                output_audio_tokens,
                web_searches,
            ) = _checked_extra_counts(
                self,
                cache_write_1h_tokens,
                input_audio_tokens,
                cache_audio_read_tokens,
                output_audio_tokens,
                web_searches,
            )
        _set_cw1h(self, cache_write_1h_tokens)
        _set_ia(self, input_audio_tokens)
        _set_car(self, cache_audio_read_tokens)
        _set_oa(self, output_audio_tokens)
        _set_ws(self, web_searches)

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens


def _checked_usage_counts(
    i: object, o: object, cr: object, cw: object, r: object
) -> tuple[int, int, int, int, int]:
    """Usage's full validation: each count through ``check_count``, then the subset rules."""
    i = check_count(i, "input_tokens")
    o = check_count(o, "output_tokens")
    cr = check_count(cr, "cache_read_tokens")
    cw = check_count(cw, "cache_write_tokens")
    r = check_count(r, "reasoning_tokens")
    if cr + cw > i:
        raise InvalidInputError(
            f"cache_read_tokens + cache_write_tokens ({cr} + {cw}) exceed input_tokens ({i}); "
            "input_tokens must include cached tokens "
            "(Anthropic reports them separately: add them in)"
        )
    if r > o:
        raise InvalidInputError(
            f"reasoning_tokens ({r}) exceed output_tokens ({o}); "
            "output_tokens must include reasoning tokens"
        )
    return i, o, cr, cw, r


EXTRA_COUNTS: Final = (
    "cache_write_1h_tokens",
    "input_audio_tokens",
    "cache_audio_read_tokens",
    "output_audio_tokens",
    "web_searches",
)
"""Usage counts beyond the classic five, each priced at its own rate where a model has one:
1-hour cache writes (a subset of ``cache_write_tokens``), audio input (a subset of
``input_tokens``) and its cached part (a subset of both ``cache_read_tokens`` and
``input_audio_tokens``), audio output (a subset of ``output_tokens``), and server-side web
searches (a count of searches, not tokens). Keyword-only, default 0."""
_INT_ZEROS: Final = frozenset({int})


def _checked_extra_counts(
    usage: Usage, cw1h: object, ia: object, car: object, oa: object, ws: object
) -> tuple[int, int, int, int, int]:
    """Validate the extra counts against the classic ones (the subset rules of EXTRA_COUNTS).

    The one overlap allowed between audio and cache is ``cache_audio_read_tokens`` (cached
    audio): uncached text input, ``input - cache_read - cache_write - input_audio +
    cache_audio_read``, must not be negative, nor may text output, ``output - reasoning -
    output_audio``, so that no priced part of a call is counted twice."""
    cw1h_n = check_count(cw1h, "cache_write_1h_tokens")
    ia_n = check_count(ia, "input_audio_tokens")
    car_n = check_count(car, "cache_audio_read_tokens")
    oa_n = check_count(oa, "output_audio_tokens")
    ws_n = check_count(ws, "web_searches")
    u = usage
    if cw1h_n > u.cache_write_tokens:
        raise InvalidInputError(
            f"cache_write_1h_tokens ({cw1h_n}) exceed cache_write_tokens "
            f"({u.cache_write_tokens}); cache_write_tokens must include the 1-hour writes"
        )
    if car_n > min(u.cache_read_tokens, ia_n):
        raise InvalidInputError(
            f"cache_audio_read_tokens ({car_n}) exceed cache_read_tokens "
            f"({u.cache_read_tokens}) or input_audio_tokens ({ia_n}); cached audio is part "
            "of both"
        )
    if u.cache_read_tokens + u.cache_write_tokens + ia_n - car_n > u.input_tokens:
        raise InvalidInputError(
            f"cached, cache-write and audio input tokens ({u.cache_read_tokens} + "
            f"{u.cache_write_tokens} + {ia_n} - {car_n} cached audio) exceed input_tokens "
            f"({u.input_tokens}); input_tokens must include all of them"
        )
    if u.reasoning_tokens + oa_n > u.output_tokens:
        raise InvalidInputError(
            f"reasoning_tokens + output_audio_tokens ({u.reasoning_tokens} + {oa_n}) exceed "
            f"output_tokens ({u.output_tokens}); output_tokens must include both"
        )
    return cw1h_n, ia_n, car_n, oa_n, ws_n


def slot_setter(cls: type, name: str) -> Callable[[object, object], None]:
    """The setter of a slots class's field (its member descriptor's ``__set__``, found on the
    class or the base that declares the slot): how the hot path fills frozen dataclasses
    without ``object.__setattr__`` per field."""
    owner = next(c for c in cls.__mro__ if name in vars(c))
    setter: Callable[[object, object], None] = vars(owner)[name].__set__
    return setter


_set_input_tokens = slot_setter(Usage, "input_tokens")
_set_output_tokens = slot_setter(Usage, "output_tokens")
_set_cache_read_tokens = slot_setter(Usage, "cache_read_tokens")
_set_cache_write_tokens = slot_setter(Usage, "cache_write_tokens")
_set_reasoning_tokens = slot_setter(Usage, "reasoning_tokens")
_set_cw1h, _set_ia, _set_car, _set_oa, _set_ws = (slot_setter(Usage, n) for n in EXTRA_COUNTS)


@dataclass(slots=True)
class UsageRecord:
    """One LLM call's usage and cost (the brief's fields and order, new ones keyword-only).

    ``cost_usd`` may be ``None``: the BudgetManager then prices the tokens from its catalogue.
    ``timestamp`` defaults to now; a naive datetime means local time.
    """

    model: str
    input_tokens: int
    output_tokens: int
    cost_usd: float | None = None
    timestamp: datetime = field(default_factory=partial(datetime.now, UTC))
    user_id: str | None = None
    endpoint: str | None = None
    request_id: str | None = None
    team: str | None = field(default=None, kw_only=True)
    key: str | None = field(default=None, kw_only=True)
    provider: str | None = field(default=None, kw_only=True)
    tags: tuple[str, ...] = field(default=(), kw_only=True)
    cache_read_tokens: int = field(default=0, kw_only=True)
    cache_write_tokens: int = field(default=0, kw_only=True)
    reasoning_tokens: int = field(default=0, kw_only=True)
    cache_write_1h_tokens: int = field(default=0, kw_only=True)
    input_audio_tokens: int = field(default=0, kw_only=True)
    cache_audio_read_tokens: int = field(default=0, kw_only=True)
    output_audio_tokens: int = field(default=0, kw_only=True)
    web_searches: int = field(default=0, kw_only=True)
    service_tier: str | None = field(default=None, kw_only=True)
    """The provider's service tier for the call ("flex", "priority", "batch"; None, "default",
    "auto" and "standard" mean the standard price), which the catalogue prices it at."""
    latency_ms: float | None = field(default=None, kw_only=True)
    status: str = field(default="ok", kw_only=True)
    estimated: bool = field(default=False, kw_only=True)
    metadata: dict[str, Any] | None = field(default=None, kw_only=True)
    # The validated cost in nano-USD and the cost_usd value it was computed from (so a later
    # change of cost_usd is never served a stale figure).
    _nanos: tuple[object, Nanos | None] = field(
        init=False, repr=False, compare=False, default=(None, None)
    )

    def __post_init__(self) -> None:
        if _plain_record(self):  # the usual shape: nothing to check but the cost
            if self.cost_usd is not None:
                self._nanos = (self.cost_usd, usd_to_nanos(self.cost_usd, field="cost_usd"))
            return
        self._validate()

    def _validate(self) -> None:
        """Every check, in order, converting what may be converted (a float count, a naive
        timestamp, a list of tags); the first failure raises InvalidInputError."""
        if not isinstance(self.model, str) or not self.model.strip():
            raise InvalidInputError(f"model must be a non-empty string, got {self.model!r}")
        self.input_tokens = check_count(self.input_tokens, "input_tokens")
        self.output_tokens = check_count(self.output_tokens, "output_tokens")
        if self.cost_usd is not None:
            self._nanos = (self.cost_usd, usd_to_nanos(self.cost_usd, field="cost_usd"))
        self.timestamp = check_timestamp(self.timestamp)
        for name in _NAME_FIELDS[1:-1]:  # user_id ... provider: None or a non-empty string
            name_or_none(getattr(self, name), name)
        check_names(_names(self), _NAME_FIELDS)
        self.tags = check_tags(self.tags)
        check_names(self.tags, ("tag",) * len(self.tags))
        if self.latency_ms is not None and (
            isinstance(self.latency_ms, bool)
            or not isinstance(self.latency_ms, (int, float))
            or not math.isfinite(self.latency_ms)
            or self.latency_ms < 0
        ):
            raise InvalidInputError(
                f"latency_ms must be a non-negative number, got {self.latency_ms!r}"
            )
        self.cache_read_tokens = check_count(self.cache_read_tokens, "cache_read_tokens")
        self.cache_write_tokens = check_count(self.cache_write_tokens, "cache_write_tokens")
        self.reasoning_tokens = check_count(self.reasoning_tokens, "reasoning_tokens")
        if self.metadata is not None:
            check_metadata(self.metadata)
        if self.service_tier is not None and not isinstance(self.service_tier, str):
            raise InvalidInputError(
                f"service_tier must be a string or None, got {self.service_tier!r}"
            )
        extras = self._extra_counts()
        if not _INT_ZEROS.issuperset(map(type, extras)) or any(extras):
            usage = self.usage  # validates the counts and their subset rules
            for name in EXTRA_COUNTS:
                setattr(self, name, getattr(usage, name))
        elif self.cache_read_tokens or self.cache_write_tokens or self.reasoning_tokens:
            self.usage  # validates the cache/reasoning subsets  # noqa: B018
        if not isinstance(self.status, str) or not self.status:
            raise InvalidInputError(
                f"status must be a non-empty string such as 'ok' or 'error', got {self.status!r}"
            )
        if not isinstance(self.estimated, bool):
            raise InvalidInputError(f"estimated must be True or False, got {self.estimated!r}")

    def _extra_counts(self) -> tuple[object, ...]:
        return (
            self.cache_write_1h_tokens,
            self.input_audio_tokens,
            self.cache_audio_read_tokens,
            self.output_audio_tokens,
            self.web_searches,
        )

    @property
    def usage(self) -> Usage:
        """The token breakdown used for pricing (validated as the record was)."""
        if (  # the usual shape, no extra counts: five positional counts bind the cheapest
            self.cache_write_1h_tokens is _ZERO
            and self.input_audio_tokens is _ZERO
            and self.cache_audio_read_tokens is _ZERO
            and self.output_audio_tokens is _ZERO
            and self.web_searches is _ZERO
        ):
            return Usage(
                self.input_tokens,
                self.output_tokens,
                self.cache_read_tokens,
                self.cache_write_tokens,
                self.reasoning_tokens,
            )
        return Usage(
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cache_read_tokens=self.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens,
            reasoning_tokens=self.reasoning_tokens,
            cache_write_1h_tokens=self.cache_write_1h_tokens,
            input_audio_tokens=self.input_audio_tokens,
            cache_audio_read_tokens=self.cache_audio_read_tokens,
            output_audio_tokens=self.output_audio_tokens,
            web_searches=self.web_searches,
        )

    @property
    def cost_nanos(self) -> Nanos | None:
        """The cost in nano-USD (exact, from the float cost_usd by the one rounding rule), or None
        if the record is to be priced.
        """
        if self.cost_usd is None:
            return None
        source, nanos = self._nanos
        if source is self.cost_usd or source == self.cost_usd:
            return nanos
        return usd_to_nanos(self.cost_usd, field="cost_usd")


def check_tags(value: object) -> tuple[str, ...]:
    """Tags: one string or an iterable of non-empty strings, kept as a tuple."""
    if isinstance(value, str):
        value = (value,)
    try:
        tags = tuple(cast("Iterable[object]", value))
    except TypeError:
        raise InvalidInputError(
            f"tags must be a string or an iterable of strings, got {type(value).__name__}: "
            f"{value!r}"
        ) from None
    if not all(isinstance(t, str) and t for t in tags):
        raise InvalidInputError(f"tags must be non-empty strings, got {tags!r}")
    return tags  # type: ignore[return-value]  # checked: all non-empty strings


_names: Final[Callable[[UsageRecord], tuple[object, ...]]] = attrgetter(*_NAME_FIELDS)
"""A record's names, in :data:`_NAME_FIELDS` order."""


def _plain_record(r: UsageRecord) -> bool:
    """Whether ``r`` has the usual shape, which every check of :meth:`UsageRecord._validate`
    would pass and leave unchanged: plain int counts within the subset rules and no extra
    counts (audio, 1-hour cache writes, web searches: all int 0), a UTC-aware timestamp in
    range, non-empty string-or-None names and service tier (status a non-empty string), a
    bool ``estimated``, the names short ASCII together,
    no tags, no metadata, and no latency or a plain finite float one.

    Why: every tracked call makes a record, and this one test costs a fraction of the full
    checks; anything else takes the full path, which raises or converts as it always has.
    Written as chains of identity and exact-type tests, building no sets and calling no
    helper in the usual case: measured (callgrind), 9.8k instructions against 18.1k for the
    same test with ``frozenset.issuperset(map(type, ...))`` and ``filter`` (issue 12: the
    record's checks were the largest part of the bookkeeping path's regression).
    """
    ts = r.timestamp
    latency = r.latency_ms
    tier = r.service_tier
    if not (
        r.cache_write_1h_tokens is _ZERO
        and r.input_audio_tokens is _ZERO
        and r.cache_audio_read_tokens is _ZERO
        and r.output_audio_tokens is _ZERO
        and r.web_searches is _ZERO
        and (
            (  # no cache or reasoning tokens: the subset rules hold for any plain counts
                r.cache_read_tokens is _ZERO
                and r.cache_write_tokens is _ZERO
                and r.reasoning_tokens is _ZERO
                and type(r.input_tokens) is int
                and type(r.output_tokens) is int
                and 0 <= r.input_tokens <= MAX_INT64
                and 0 <= r.output_tokens <= MAX_INT64
            )
            or _plain_counts(
                r.input_tokens,
                r.output_tokens,
                r.cache_read_tokens,
                r.cache_write_tokens,
                r.reasoning_tokens,
            )
        )
        and type(ts) is datetime
        and ts.tzinfo is UTC
        and 1970 <= ts.year < 9999  # TIMESTAMP_MIN, TIMESTAMP_END
        and r.metadata is None
        and type(r.tags) is tuple
        and not r.tags
        and (latency is None or (type(latency) is float and 0.0 <= latency < math.inf))
        and (tier is None or type(tier) is str)
        and type(r.estimated) is bool
    ):
        return False
    model, user, endpoint, request, team, key, provider, status = _names(r)
    if not (
        type(model) is str
        and type(status) is str
        and model != ""
        and status != ""
        and (user is None or (type(user) is str and user != ""))
        and (endpoint is None or (type(endpoint) is str and endpoint != ""))
        and (request is None or (type(request) is str and request != ""))
        and (team is None or (type(team) is str and team != ""))
        and (key is None or (type(key) is str and key != ""))
        and (provider is None or (type(provider) is str and provider != ""))
        and not model.isspace()
    ):
        return False
    # Every name is a str or None here, so `or ""` drops only the Nones.
    joined = "".join(
        (
            model,
            user or "",
            endpoint or "",
            request or "",
            team or "",
            key or "",
            provider or "",
            status,
        )
    )
    return len(joined) <= MAX_NAME_LENGTH and joined.isascii()


@dataclass(frozen=True, slots=True)
class NewRecord:
    """A usage record as handed to the ledger: priced, validated, UTC microseconds.

    The one field list of a record: :class:`StoredRecord` is this plus the ledger's ``id``,
    and the SQL backends' columns and row codec (:mod:`costwarden.ledger.rows`) are derived
    from these fields, in this order.
    """

    ts_us: int
    model: str
    provider: str | None
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    cost_nanos: Nanos
    user_id: str | None
    team: str | None
    key: str | None
    endpoint: str | None
    request_id: str | None
    tags: tuple[str, ...]
    latency_ms: float | None
    status: str
    estimated: bool
    price_source: str
    metadata: dict[str, Any] | None = None

    @property
    def metadata_json(self) -> str | None:
        """The metadata as the SQL backends store it (None when there is none)."""
        return None if not self.metadata else json.dumps(self.metadata, separators=(",", ":"))

    @classmethod
    def from_usage(
        cls, record: UsageRecord, *, ts_us: int, cost_nanos: Nanos, price_source: str
    ) -> NewRecord:
        """The ledger's copy of a validated, priced UsageRecord (every tracked call).

        Made as a :class:`StoredRecord` not stored yet (its ``id`` is :data:`UNSTORED`), which
        is a NewRecord to every reader, so that the ledger's :meth:`stored` can give it its id
        in place rather than copy twenty fields into a second object."""
        r = record
        return _build_stored_record(
            ts_us,
            r.model,
            r.provider,
            r.input_tokens,
            r.output_tokens,
            r.cache_read_tokens,
            r.cache_write_tokens,
            r.reasoning_tokens,
            cost_nanos,
            r.user_id,
            r.team,
            r.key,
            r.endpoint,
            r.request_id,
            r.tags,
            r.latency_ms,
            r.status,
            r.estimated,
            price_source,
            r.metadata,
            UNSTORED,
        )

    def stored(self, record_id: int) -> StoredRecord:
        """This record as the ledger keeps it, under ``record_id`` (empty metadata is kept as
        None, as the SQL backends read it back).

        A record from :meth:`from_usage` (the manager's, which only the ledger it is handed to
        sees) is given its id in place and returned itself, once; any other is copied."""
        if (
            type(self) is StoredRecord
            and self.id == UNSTORED
            and (self.metadata is None or self.metadata)
        ):
            _set_id(self, record_id)
            return self
        values = record_values(self)
        if self.metadata is not None and not self.metadata:
            values = (*values[:-1], None)
        return _build_stored_record(*values, record_id)


@dataclass(frozen=True, slots=True)
class StoredRecord(NewRecord):
    """A usage record as the ledger keeps it: a :class:`NewRecord` and its ``id`` in the
    ledger (exact cost in nano-USD, UTC microseconds)."""

    id: int = field(kw_only=True)

    @property
    def cost_usd(self) -> float:
        """The record's cost in US dollars."""
        return nanos_to_usd(self.cost_nanos)

    @property
    def timestamp(self) -> datetime:
        """When the usage happened, as an aware UTC datetime."""
        return datetime.fromtimestamp(self.ts_us / 1_000_000, UTC)


UNSTORED: Final = -1
"""The ``id`` of a StoredRecord that :meth:`NewRecord.from_usage` made and no ledger has stored
yet (a ledger's ids are positive)."""
_set_id: Final = slot_setter(StoredRecord, "id")

RECORD_FIELDS: Final = tuple(f.name for f in fields(NewRecord))
"""A record's field names in order: NewRecord's fields, then StoredRecord adds ``id``."""
assert RECORD_FIELDS[-1] == "metadata"  # NewRecord.stored relies on it
assert tuple(f.name for f in fields(StoredRecord)) == (*RECORD_FIELDS, "id")

record_values: Final[Callable[[NewRecord], tuple[Any, ...]]] = attrgetter(*RECORD_FIELDS)
"""A record's field values, in :data:`RECORD_FIELDS` order."""


def _slot_builder(cls: type[_T]) -> Callable[..., _T]:
    """``build(*values)``: an instance of the frozen slots dataclass ``cls`` from all its field
    values in field order, as ``cls(*values)`` would make it (``kw_only`` fields included).

    Why: the generated frozen ``__init__`` sets each field with ``object.__setattr__``; the
    slots' own setters cost about half as much, and every tracked call builds a NewRecord and
    a StoredRecord of 20-odd fields. The setters are called by ``map`` with ``operator.call``
    (no Python bytecode per field): measured (callgrind), 18.9k instructions per NewRecord
    against 22.4k for a ``for`` loop over ``zip`` and 28.4k for ``NewRecord(*values)``.
    Only for classes without ``__post_init__`` (nothing to run) and with every field in
    ``__init__``.
    """
    all_fields = fields(cls)  # type: ignore[arg-type]
    assert not hasattr(cls, "__post_init__") and all(f.init for f in all_fields)
    setters = tuple(slot_setter(cls, f.name) for f in all_fields)
    count = len(setters)
    new = object.__new__
    consume = deque[object](maxlen=0).extend  # runs an iterator to its end, keeping nothing

    def build(*values: object) -> _T:
        if len(values) != count:
            raise TypeError(f"{cls.__name__} has {count} fields, got {len(values)} values")
        obj = new(cls)
        consume(map(call, setters, repeat(obj, count), values))
        return obj

    return build


_build_stored_record = _slot_builder(StoredRecord)


@dataclass(frozen=True, slots=True)
class Alert(SpentAndLimitUsd):
    """A budget event worth telling a person about."""

    level: AlertLevel
    message: str
    scope: str
    period: str
    kind: str  # "threshold", "denied", "unknown_price", "hold_exceeded", "forecast"
    threshold: float | None = None
    spent_nanos: Nanos = 0
    limit_nanos: Nanos | None = None
    period_start: datetime | None = None
    dedup_key: str = ""
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
