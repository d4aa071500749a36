"""Budgets, the scopes they apply to, and calendar periods in a time zone.

A :class:`Budget` holds limits per period. Periods are calendar day, ISO week (Monday) and
month in the budget's IANA time zone, plus optional rolling windows. A spend counts in the
period of its own timestamp, so a backdated record lands in the period it belongs to.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from costwarden.caching import BoundedCache
from costwarden.errors import InvalidInputError
from costwarden.money import Nanos, usd_to_nanos

PeriodKind = Literal["daily", "weekly", "monthly"]
CALENDAR_PERIODS: Final[tuple[PeriodKind, ...]] = ("daily", "weekly", "monthly")
SCOPE_KINDS: Final = ("global", "user", "team", "key", "tag", "model")
ROLLING_SLOT_SECONDS: Final = 60
"""Rolling windows are summed from one-minute slots, so they are exact to the minute."""
MAX_ROLLING_SECONDS: Final = 366 * 86400
"""The longest rolling window (a leap year): longer ones are typos (milliseconds for seconds)
and would put window starts outside what the ledgers' 64-bit columns hold."""


def name_or_none(value: object, what: str) -> str | None:
    """A scope name (``user``, ``team``, ``key``, ``tag``, ``model``) or record name: ``None``
    means "no such scope"; a name is any non-empty string. ``""`` is an error, never a quiet
    "no scope": it is nearly always a bug, such as an unset environment variable, and treating
    it as None would let that caller skip its own budget."""
    return None if value is None else require_name(value, what)


def require_name(value: object, what: str) -> str:
    """A non-empty string naming ``what`` (see :func:`name_or_none`). Only the type and
    emptiness: the length and encoding bounds are :func:`costwarden.bounds.check_name`'s."""
    if type(value) is str and value:
        return value
    if isinstance(value, str):
        if value:
            return value
        raise InvalidInputError(
            f"{what} must be a non-empty string, got '': pass a name, or None for no {what} "
            "(an empty name is usually an unset environment variable)"
        )
    raise InvalidInputError(
        f"{what} must be a non-empty string or None, got {type(value).__name__}: {value!r}"
    )


def _check_tag(value: object) -> str:
    if isinstance(value, str) and value:
        return value
    raise InvalidInputError(f"tags must be non-empty strings, got {value!r}")


@lru_cache(maxsize=64)
def get_zone(name: str) -> ZoneInfo:
    """An IANA time zone by name, with a clear error for a misspelt one."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInputError(
            f"unknown time zone {name!r}; use an IANA name such as 'UTC' or 'Europe/Paris'"
        ) from None


def _limit(value: object, name: str) -> Nanos | None:
    if value is None:
        return None
    return usd_to_nanos(value, field=name)


def _window_seconds(window: object) -> int:
    """A rolling window's length: whole minutes of seconds (an int or a timedelta), at most
    :data:`MAX_ROLLING_SECONDS`."""
    if isinstance(window, timedelta):
        secs: object = window // timedelta(seconds=1)
        if window % timedelta(seconds=1):
            secs = None  # a fraction of a second: refused below
    else:
        secs = window
    if isinstance(secs, bool) or not isinstance(secs, int) or secs <= 0:
        raise InvalidInputError(
            f"rolling window must be a positive whole number of seconds (or a timedelta), "
            f"got {window!r}"
        )
    if secs % ROLLING_SLOT_SECONDS:
        raise InvalidInputError(f"rolling window {secs}s must be a whole number of minutes")
    if secs > MAX_ROLLING_SECONDS:
        raise InvalidInputError(
            f"rolling window {secs}s is longer than {MAX_ROLLING_SECONDS}s (366 days); "
            "windows are in seconds, not milliseconds"
        )
    return secs


@dataclass(frozen=True, slots=True)
class Budget:
    """Spending limits in USD (the brief's fields and defaults; new ones keyword-only).

    A limit of ``None`` means no limit for that period. ``alert_threshold`` is the WARNING
    threshold (a fraction of a limit); ``alert_thresholds`` replaces the whole list (default
    ``(0.5, alert_threshold, 1.0)``: INFO, WARNING, CRITICAL).
    """

    daily_limit: float | None = 10.0
    monthly_limit: float | None = 200.0
    per_request_limit: float | None = 0.50
    alert_threshold: float = 0.8
    weekly_limit: float | None = field(default=None, kw_only=True)
    rolling_limits: Mapping[int, float] | None = field(default=None, kw_only=True)
    timezone: str = field(default="UTC", kw_only=True)
    alert_thresholds: tuple[float, ...] | None = field(default=None, kw_only=True)
    _nanos: dict[str, Nanos | None] = field(
        init=False, repr=False, compare=False, hash=False, default_factory=dict
    )
    _thresholds: tuple[float, ...] = field(init=False, repr=False, compare=False, default=())

    def __post_init__(self) -> None:
        if not isinstance(self.timezone, str):
            raise InvalidInputError(
                f"timezone must be an IANA name such as 'UTC' or 'Europe/Paris', got "
                f"{type(self.timezone).__name__}: {self.timezone!r}"
            )
        nanos: dict[str, Nanos | None] = {}
        for name in ("daily_limit", "monthly_limit", "per_request_limit", "weekly_limit"):
            nanos[name.removesuffix("_limit")] = _limit(getattr(self, name), name)
        t = self.alert_threshold
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t):
            raise InvalidInputError(f"alert_threshold must be a number, got {t!r}")
        if not 0 < t <= 1:
            raise InvalidInputError(f"alert_threshold must be in (0, 1], got {t}")
        if self.alert_thresholds is not None:
            if isinstance(self.alert_thresholds, (str, bytes, Mapping)) or not isinstance(
                self.alert_thresholds, Iterable
            ):
                raise InvalidInputError(
                    "alert_thresholds must be a list of fractions such as (0.5, 0.8, 1.0), got "
                    f"{self.alert_thresholds!r}"
                )
            ts = tuple(self.alert_thresholds)
            for x in ts:
                if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
                    raise InvalidInputError(f"alert_thresholds must be numbers, got {x!r}")
                if not 0 < x <= 10:
                    raise InvalidInputError(f"alert thresholds must be in (0, 10], got {x}")
            object.__setattr__(self, "alert_thresholds", tuple(sorted(set(ts))))
        if self.rolling_limits is not None:
            if not isinstance(self.rolling_limits, Mapping):
                raise InvalidInputError(
                    "rolling_limits must map window seconds to USD, such as {3600: 1.0}, got "
                    f"{self.rolling_limits!r}"
                )
            rolling: dict[int, float] = {}
            for seconds, limit in dict(self.rolling_limits).items():
                secs = _window_seconds(seconds)
                if secs in rolling:
                    raise InvalidInputError(f"rolling window {secs}s is given twice")
                nanos[f"rolling:{secs}s"] = _limit(limit, f"rolling_limits[{secs}]")
                rolling[secs] = limit
            object.__setattr__(self, "rolling_limits", rolling)
        get_zone(self.timezone)
        object.__setattr__(self, "_nanos", nanos)
        thresholds = (
            self.alert_thresholds
            if self.alert_thresholds is not None
            else tuple(sorted({0.5, float(self.alert_threshold), 1.0}))
        )
        object.__setattr__(self, "_thresholds", thresholds)

    # -- derived, exact figures -------------------------------------------------------------
    @property
    def zone(self) -> ZoneInfo:
        """The ZoneInfo for ``timezone``, in which daily and monthly periods start at local
        midnight.
        """
        return get_zone(self.timezone)

    def limit_nanos(self, period: str) -> Nanos | None:
        """The limit for ``daily``/``weekly``/``monthly``/``rolling:<s>s`` in nano-USD."""
        return self._nanos.get(period)

    @property
    def per_request_nanos(self) -> Nanos | None:
        """The per-request limit in nano-USD (None = no per-request limit), as the admission check
        compares it.
        """
        return self._nanos["per_request"]

    def periods(self) -> tuple[str, ...]:
        """The periods this budget limits (calendar ones first, then rolling windows)."""
        out: list[str] = [p for p in CALENDAR_PERIODS if getattr(self, f"{p}_limit") is not None]
        out += [f"rolling:{s}s" for s in sorted(self.rolling_limits or {})]
        return tuple(out)

    def thresholds(self) -> tuple[float, ...]:
        """The alert thresholds, ascending (``alert_thresholds`` or 50% / warning / 100%)."""
        return self._thresholds


@dataclass(frozen=True, slots=True, order=True)
class Scope:
    """Who or what a budget applies to: ``global``, ``user:alice``, ``team:eng``, ..."""

    kind: str
    name: str = ""

    def __post_init__(self) -> None:
        if self.kind not in SCOPE_KINDS:
            raise InvalidInputError(f"scope kind must be one of {SCOPE_KINDS}, got {self.kind!r}")
        if self.kind == "global":
            if self.name:
                raise InvalidInputError("the global scope has no name")
        else:
            require_name(self.name, self.kind)

    def __str__(self) -> str:
        return "global" if self.kind == "global" else f"{self.kind}:{self.name}"

    @classmethod
    def parse(cls, text: str) -> Scope:
        """Read a scope from its text form ('global' or 'kind:name'), the inverse of ``str(scope)``;
        anything else is an InvalidInputError.
        """
        if not isinstance(text, str):
            raise InvalidInputError(
                f"scope must be a string such as 'user:alice' or 'global', got {text!r}"
            )
        if text == "global":
            return GLOBAL
        kind, sep, name = text.partition(":")
        if not sep:
            raise InvalidInputError(f"scope must look like 'user:alice' or 'global', got {text!r}")
        return cls(kind, name)


GLOBAL: Final = Scope("global")


def scopes_for(
    *,
    user: str | None = None,
    team: str | None = None,
    key: str | None = None,
    tags: Iterable[str] = (),
    model: str | None = None,
) -> tuple[Scope, ...]:
    """All scopes a request or record belongs to, global first (memoised: hot path). A name
    of None means no such scope; anything else must be a non-empty string (:func:`name_or_none`).
    """
    if isinstance(tags, str):
        tags = (tags,)
    try:
        return _scopes_for(user, team, key, tuple(tags), model)
    except TypeError:  # an unhashable name: not a string
        raise InvalidInputError(
            f"user, team, key, tags and model must be strings, got {user!r}, {team!r}, "
            f"{key!r}, {tags!r}, {model!r}"
        ) from None


@lru_cache(maxsize=4096)
def _scopes_for(
    user: str | None, team: str | None, key: str | None, tags: tuple[str, ...], model: str | None
) -> tuple[Scope, ...]:
    # Scope() validates each name (require_name), behind the cache: repeats cost nothing.
    out = [GLOBAL]
    if user is not None:
        out.append(Scope("user", user))
    if team is not None:
        out.append(Scope("team", team))
    if key is not None:
        out.append(Scope("key", key))
    out.extend(Scope("tag", _check_tag(t)) for t in dict.fromkeys(tags))
    if model is not None:
        out.append(Scope("model", model))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Window:
    """A half-open time range ``[start, end)`` in UTC epoch seconds, for one period."""

    period: str
    start: int
    end: int

    def contains(self, ts: float) -> bool:
        """Whether epoch second ``ts`` falls in this window (start included, end excluded)."""
        return self.start <= ts < self.end

    @property
    def start_dt(self) -> datetime:
        """The window's start as an aware UTC datetime."""
        return datetime.fromtimestamp(self.start, UTC)

    @property
    def end_dt(self) -> datetime:
        """The window's end as an aware UTC datetime (exclusive)."""
        return datetime.fromtimestamp(self.end, UTC)


def _local_midnight(year: int, month: int, day: int, zone: ZoneInfo) -> datetime:
    """Local midnight as an aware datetime; where midnight does not exist (a DST jump at
    00:00), the first existing instant of the day."""
    naive = datetime(year, month, day)
    aware = naive.replace(tzinfo=zone)
    # A non-existent wall time does not survive a round trip through UTC.
    back = aware.astimezone(UTC).astimezone(zone)
    if back.replace(tzinfo=None) != naive:
        aware = back if back.replace(tzinfo=None) > naive else aware
    return aware


def calendar_window(period: str, at: datetime, zone: ZoneInfo) -> Window:
    """The calendar day, ISO week or month containing ``at``, in ``zone``."""
    local = at.astimezone(zone)
    if period == "daily":
        start = _local_midnight(local.year, local.month, local.day, zone)
        nxt = local.date() + timedelta(days=1)
        end = _local_midnight(nxt.year, nxt.month, nxt.day, zone)
    elif period == "weekly":
        monday = local.date() - timedelta(days=local.weekday())
        start = _local_midnight(monday.year, monday.month, monday.day, zone)
        nxt = monday + timedelta(days=7)
        end = _local_midnight(nxt.year, nxt.month, nxt.day, zone)
    elif period == "monthly":
        start = _local_midnight(local.year, local.month, 1, zone)
        y, m = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
        end = _local_midnight(y, m, 1, zone)
    else:
        raise InvalidInputError(f"unknown calendar period {period!r}")
    return Window(period, int(start.timestamp()), int(end.timestamp()))


def rolling_window(period: str, at_epoch: float) -> Window:
    """The rolling window ending at the minute slot containing ``at_epoch``."""
    secs = int(period[len("rolling:") : -1])
    slot_end = (int(at_epoch) // ROLLING_SLOT_SECONDS + 1) * ROLLING_SLOT_SECONDS
    return Window(period, slot_end - secs, slot_end)


class WindowCache:
    """Windows for hot paths: recomputed only when a timestamp leaves the cached one.

    ``calendar_window`` costs several microseconds (time zone arithmetic); the tracked-call
    path asks for the same few windows thousands of times a second.
    """

    __slots__ = ("_cache",)

    def __init__(self) -> None:
        self._cache: BoundedCache[tuple[str, str], Window] = BoundedCache(256)

    def window(self, period: str, zone_name: str, at_epoch: float) -> Window:
        """The window of ``period`` in zone ``zone_name`` containing ``at_epoch``; calendar windows
        are cached until time leaves them, rolling ones are computed each time.
        """
        if period.startswith("rolling:"):
            return rolling_window(period, at_epoch)
        key = (period, zone_name)
        w = self._cache.get(key)
        if w is not None and w.start <= at_epoch < w.end:
            return w
        w = calendar_window(period, datetime.fromtimestamp(at_epoch, UTC), get_zone(zone_name))
        self._cache.put(key, w)
        return w
