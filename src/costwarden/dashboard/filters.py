"""The dashboard's filters, read from the URL so that every view is bookmarkable.

``scope`` (``global``, ``user:alice``, ``team:x``, ``key:<id>``, ``tag:x``, ``endpoint:/v1/x``,
``model:gpt-4o``), ``range`` (``1d``, ``7d``, ``30d``, ``90d``, ``365d``) or ``since``/``until``
(local ISO dates, inclusive), ``step`` (``day``, ``week``, ``month``) and ``tz`` (an IANA zone).
Bad values are a typed :class:`~costwarden.errors.InvalidInputError` (the app answers 400 with
its message), never a silent default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Final
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from costwarden.budget import get_zone
from costwarden.errors import InvalidInputError
from costwarden.ledger.rollup import SLOT_SECONDS, parse_scope

STEPS: Final = ("day", "week", "month")
RANGES: Final = {"1d": 1, "7d": 7, "30d": 30, "90d": 90, "365d": 365}
DEFAULT_RANGE: Final = "30d"
MAX_DAYS: Final = 3 * 366


@dataclass(frozen=True, slots=True)
class Filters:
    """One view's period, scope, step and time zone (see module doc)."""

    scope: str
    range: str | None  # a RANGES key, or None for since/until
    first: date  # local, inclusive
    last: date  # local, inclusive
    step: str
    tz: str
    default_tz: str

    @property
    def kind(self) -> str:
        """The scope's kind (``global``, ``user``, ...)."""
        return parse_scope(self.scope)[0]

    @property
    def name(self) -> str:
        """The scope's name (``""`` for ``global``)."""
        return parse_scope(self.scope)[1]

    @property
    def zone(self) -> ZoneInfo:
        """The viewer's time zone."""
        return get_zone(self.tz)

    @property
    def start(self) -> int:
        """The range's first instant, UTC epoch seconds (local midnight of ``first``)."""
        return _midnight(self.first, self.zone)

    @property
    def end(self) -> int:
        """The instant after the range (local midnight after ``last``)."""
        return _midnight(self.last + timedelta(days=1), self.zone)

    @property
    def slots(self) -> tuple[int, int]:
        """The rollup slots covering the range: ``[since, until)``, whole hours."""
        return (
            self.start // SLOT_SECONDS * SLOT_SECONDS,
            -(-self.end // SLOT_SECONDS) * SLOT_SECONDS,
        )

    def params(self, **change: str | None) -> dict[str, str]:
        """The query parameters of these filters (defaults left out), with ``change``."""
        out: dict[str, str] = {}
        if self.scope != "global":
            out["scope"] = self.scope
        if self.range is not None:
            if self.range != DEFAULT_RANGE:
                out["range"] = self.range
        else:
            out["since"], out["until"] = self.first.isoformat(), self.last.isoformat()
        if self.step != "day":
            out["step"] = self.step
        if self.tz != self.default_tz:
            out["tz"] = self.tz
        for k, v in change.items():
            if v is None:
                out.pop(k, None)
            else:
                out[k] = v
        if "range" in change:
            out.pop("since", None)
            out.pop("until", None)
        return out

    def query(self, **change: str | None) -> str:
        """``?a=b&...`` for a link keeping these filters (empty string when all default)."""
        q = urlencode(self.params(**change))
        return "?" + q if q else ""

    def with_scope(self, scope: str) -> Filters:
        """These filters for another scope (a typed error for a bad one)."""
        parse_scope(scope)
        return replace(self, scope=scope)


def _midnight(d: date, zone: ZoneInfo) -> int:
    from costwarden.budget import calendar_window

    noon = datetime(d.year, d.month, d.day, 12, tzinfo=zone)
    return calendar_window("daily", noon, zone).start


def _date(text: str, what: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInputError(
            f"{what} must be an ISO date such as 2025-01-31, got {text!r}"
        ) from None


def parse_filters(
    params: Mapping[str, str], *, default_tz: str, now: float, scope: str | None = None
) -> Filters:
    """Filters from query parameters. ``scope`` given: the viewer may see only that scope
    (a virtual key's holder), and another one asked for is an error."""
    unknown = sorted(set(params) - {"scope", "range", "since", "until", "step", "tz", "by"})
    if unknown:
        raise InvalidInputError(
            f"unknown filter {unknown[0]!r}; use scope, range, since, until, step, tz"
        )
    tz = params.get("tz") or default_tz
    zone = get_zone(tz)  # a typed error naming the zone when it is unknown
    asked = params.get("scope") or (scope or "global")
    parse_scope(asked)
    if scope is not None and asked != scope:
        raise InvalidInputError(f"this login may see scope {scope} only, not {asked}")
    step = params.get("step") or "day"
    if step not in STEPS:
        raise InvalidInputError(f"step must be one of {', '.join(STEPS)}, got {step!r}")
    today = datetime.fromtimestamp(now, UTC).astimezone(zone).date()
    rng: str | None
    if "since" in params or "until" in params:
        if "range" in params:
            raise InvalidInputError("give range or since/until, not both")
        first = _date(params.get("since") or today.isoformat(), "since")
        last = _date(params.get("until") or today.isoformat(), "until")
        if last < first:
            raise InvalidInputError(f"until ({last}) is before since ({first})")
        if (last - first).days >= MAX_DAYS:
            raise InvalidInputError(f"a range may span at most {MAX_DAYS} days")
        rng = None
    else:
        rng = params.get("range") or DEFAULT_RANGE
        if rng not in RANGES:
            raise InvalidInputError(f"range must be one of {', '.join(RANGES)}, got {rng!r}")
        last = today
        first = today - timedelta(days=RANGES[rng] - 1)
    return Filters(asked, rng, first, last, step, tz, default_tz)


__all__ = ["DEFAULT_RANGE", "RANGES", "STEPS", "Filters", "parse_filters"]
