"""BudgetStatus: spend, limits and what is left for one scope, as typed fields.

``BudgetManager.status()`` returns one; ``get_status()`` returns its :meth:`~BudgetStatus.as_dict`
(the brief's ``daily_spent``, ``daily_remaining``, ``monthly_spent``, ``monthly_remaining``,
``percent_used`` and the rest, in float USD). The fields are exact nano-USD; ``as_dict()`` is
the float edge.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from costwarden.budget import Budget, WindowCache
from costwarden.caching import BoundedCache
from costwarden.ledger.base import Bucket, BucketUsage
from costwarden.money import Nanos, nanos_to_usd
from costwarden.plans import CALENDAR_PERIODS


class PeriodStatus(NamedTuple):
    """One period's (or rolling window's) figures for a scope.

    ``requests`` and ``resets_at`` are None for a rolling window (it never resets: it rolls).
    A named tuple: immutable, and made several times per status read at tuple speed.
    """

    period: str  # "daily", "weekly", "monthly" or "rolling:<s>s"
    spent_nanos: Nanos
    reserved_nanos: Nanos
    limit_nanos: Nanos | None
    requests: int | None
    resets_at: datetime | None

    @property
    def remaining_nanos(self) -> Nanos | None:
        """``limit - spent`` floored at 0; None without a limit."""
        return None if self.limit_nanos is None else max(0, self.limit_nanos - self.spent_nanos)

    @property
    def percent_used(self) -> float | None:
        """Percent of the limit spent (spend on a zero limit is 100%); None without a limit."""
        limit = self.limit_nanos
        if limit is None:
            return None
        if limit == 0:
            return 100.0 if self.spent_nanos > 0 else 0.0
        return self.spent_nanos * 100 / limit

    @property
    def key(self) -> str:
        """The name of this period in :meth:`BudgetStatus.as_dict` (``rolling_3600s``)."""
        return self.period.replace(":", "_")


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """Spend, limits and what is left for one scope (``get_status()``'s figures, typed)."""

    scope: str
    has_budget: bool
    timezone: str
    periods: tuple[PeriodStatus, ...]
    """Day, week, month, then each rolling window."""
    percent_used: float
    """Percent of the most-used limit (0 without limits)."""
    per_request_limit_nanos: Nanos | None
    per_request_limit: float | None  # as the budget was given

    @property
    def daily(self) -> PeriodStatus:
        """The status of the daily period."""
        return self.periods[0]

    @property
    def weekly(self) -> PeriodStatus:
        """The status of the weekly period."""
        return self.periods[1]

    @property
    def monthly(self) -> PeriodStatus:
        """The status of the monthly period."""
        return self.periods[2]

    @property
    def rolling(self) -> tuple[PeriodStatus, ...]:
        """The statuses of the rolling windows, after the three calendar periods."""
        return self.periods[3:]

    def as_dict(self) -> dict[str, Any]:
        """The brief's dict: ``<period>_spent``, ``_reserved``, ``_limit``, ``_remaining`` (and
        ``_requests``, ``_resets_at`` for calendar periods), ``percent_used``, ``scope``,
        ``has_budget``, ``per_request_limit``, ``timezone``; float USD, ISO times."""
        out: dict[str, Any] = {"scope": self.scope, "has_budget": self.has_budget}
        for p in self.periods:
            limit, spent, resets = p.limit_nanos, p.spent_nanos, p.resets_at
            name = p.period if resets is not None else p.period.replace(":", "_")
            out[name + "_spent"] = nanos_to_usd(spent)
            out[name + "_reserved"] = nanos_to_usd(p.reserved_nanos)
            out[name + "_limit"] = None if limit is None else nanos_to_usd(limit)
            out[name + "_remaining"] = (
                None if limit is None else nanos_to_usd(max(0, limit - spent))
            )
            if resets is not None:
                out[name + "_requests"] = p.requests
                out[name + "_resets_at"] = resets.isoformat()
        out["percent_used"] = self.percent_used
        out["per_request_limit"] = self.per_request_limit
        out["timezone"] = self.timezone
        return out


def status_buckets(
    scope: str, budget: Budget | None, zone: str, windows: WindowCache, now: float
) -> list[Bucket]:
    """The buckets a status reads: the scope's day, week and month in ``zone``, then the
    current window of each rolling limit of ``budget``."""
    periods: Sequence[str] = CALENDAR_PERIODS
    if budget is not None and budget.rolling_limits:
        periods = (*periods, *(p for p in budget.periods() if p.startswith("rolling:")))
    out = []
    for period in periods:
        w = windows.window(period, zone, now)
        out.append(Bucket(scope, period, w.start, w.end))
    return out


class StatusBuckets:
    """:func:`status_buckets`, remembered per scope and zone while its calendar windows hold
    and its budget is the same object: a status read then builds no bucket (three frozen
    dataclasses, about a sixth of a ``get_status``). A scope with rolling limits is built every
    time, since its windows move with the clock."""

    __slots__ = ("_memo",)

    def __init__(self) -> None:
        self._memo: BoundedCache[tuple[str, str], _Remembered] = BoundedCache(4096)

    def buckets(
        self, scope: str, budget: Budget | None, zone: str, windows: WindowCache, now: float
    ) -> Sequence[Bucket]:
        """The buckets :func:`status_buckets` would return for these arguments."""
        if budget is not None and budget.rolling_limits:
            return status_buckets(scope, budget, zone, windows, now)
        hit = self._memo.get((scope, zone))
        if hit is not None and hit[0] is budget and hit[1] <= now < hit[2]:
            return hit[3]
        out = tuple(status_buckets(scope, budget, zone, windows, now))
        start, end = max(b.start for b in out), min(b.end for b in out)
        self._memo.put((scope, zone), (budget, start, end, out))
        return out


_Remembered = tuple[Budget | None, float, float, tuple[Bucket, ...]]


def build_status(
    scope: str,
    budget: Budget | None,
    zone: str,
    buckets: Sequence[Bucket],
    usages: Sequence[BucketUsage],
) -> BudgetStatus:
    """The status of ``scope`` from the usage of its :func:`status_buckets`."""
    periods = []
    percent = 0.0
    for b, u in zip(buckets, usages, strict=True):
        calendar = not b.is_rolling
        limit = budget.limit_nanos(b.period) if budget else None
        period = PeriodStatus(
            b.period,
            u.spent,
            u.reserved,
            limit,
            u.count if calendar else None,
            datetime.fromtimestamp(b.end, UTC) if calendar else None,
        )
        periods.append(period)
        if limit:
            percent = max(percent, u.spent * 100 / limit)
        elif limit == 0 and u.spent > 0:
            percent = max(percent, 100.0)
    return BudgetStatus(
        scope=scope,
        has_budget=budget is not None,
        timezone=zone,
        periods=tuple(periods),
        percent_used=percent,
        per_request_limit_nanos=budget.per_request_nanos if budget else None,
        per_request_limit=budget.per_request_limit if budget else None,
    )
