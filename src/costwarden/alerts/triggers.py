"""What costwarden says when a budget event happens: pure functions from figures to words.

Four alert kinds come from admission and recording (``threshold``, ``denied``,
``hold_exceeded``, ``unknown_price``; forecasts word their own in :mod:`costwarden.forecast`),
and two errors (a denial, a per-request cap). Each function builds its ``Alert`` or error from
the figures it is given and nothing else, so the wording can be read, and tested, in one place;
deciding *whether* to send (dedup, delivery) is the caller's.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from costwarden.errors import BudgetExceededError
from costwarden.money import Nanos, format_compared, nanos_to_usd
from costwarden.records import Alert, AlertLevel

if TYPE_CHECKING:
    from collections.abc import Sequence

    from costwarden.budget import Scope
    from costwarden.ledger.base import Bucket, Denial

_PERIOD_WORD: Final = {"daily": "Daily", "weekly": "Weekly", "monthly": "Monthly"}


def period_word(period: str) -> str:
    """``Daily``, ``Weekly``, ``Monthly`` or ``Rolling 60-minute``."""
    if period.startswith("rolling:"):
        return f"Rolling {int(period[8:-1]) // 60}-minute"
    return _PERIOD_WORD.get(period, period)


def resets(bucket: Bucket) -> str:
    """When the bucket's window starts afresh, as a phrase after "it resets"."""
    if bucket.is_rolling:
        return "as the window rolls on"
    return datetime.fromtimestamp(bucket.end, UTC).strftime("%Y-%m-%d %H:%M UTC")


# -- thresholds -------------------------------------------------------------------------------
def reached(spent: Nanos, limit: Nanos, thresholds: Sequence[float]) -> list[float]:
    """The thresholds (fractions of ``limit``, ascending) that ``spent`` has reached
    (``spent >= limit * t``: a zero limit has reached them all)."""
    return list(itertools.takewhile(lambda t: spent >= limit * t, thresholds))


def threshold_level(threshold: float, warning_at: float) -> AlertLevel:
    """CRITICAL at 100% and above, WARNING from the budget's ``alert_threshold``, else INFO."""
    if threshold >= 1.0:
        return AlertLevel.CRITICAL
    return AlertLevel.WARNING if threshold >= warning_at else AlertLevel.INFO


def threshold_key(bucket: Bucket, threshold: float, baseline: Nanos) -> str:
    """Once per scope, period window, threshold and reset baseline."""
    return f"threshold|{bucket.scope}|{bucket.period}|{bucket.start}|{threshold:g}|{baseline}"


def threshold(
    bucket: Bucket,
    limit: Nanos,
    spent: Nanos,
    threshold: float,
    *,
    warning_at: float,
    dedup_key: str,
) -> Alert:
    """``Daily budget 80% used: $8.00 of $10.00 (user:alice, 83% now); it resets ...``."""
    pct = spent * 100 / limit if limit else 100.0
    shown_spent, shown_limit = format_compared(
        spent, limit, holds=lambda s, lim: s >= threshold * lim
    )
    return Alert(
        level=threshold_level(threshold, warning_at),
        message=(
            f"{period_word(bucket.period)} budget {threshold * 100:g}% used: "
            f"{shown_spent} of {shown_limit} ({bucket.scope}, {pct:.0f}% now); "
            f"it resets {resets(bucket)}."
        ),
        scope=bucket.scope,
        period=bucket.period,
        kind="threshold",
        threshold=threshold,
        spent_nanos=spent,
        limit_nanos=limit,
        period_start=datetime.fromtimestamp(bucket.start, UTC),
        dedup_key=dedup_key,
    )


# -- denials ----------------------------------------------------------------------------------
def per_request_error(scope: Scope, cap: Nanos, amount: Nanos) -> BudgetExceededError:
    """A request estimated above a budget's per-request limit."""
    asked, most = format_compared(amount, cap)
    return BudgetExceededError(
        f"Request estimated at {asked} exceeds the per-request limit of "
        f"{most} ({scope}). Lower max_tokens, pick a cheaper model, "
        "or raise per_request_limit.",
        scope=str(scope),
        period="per_request",
        limit=nanos_to_usd(cap),
        spent=0.0,
        attempted=nanos_to_usd(amount),
    )


def denied_error(denial: Denial) -> BudgetExceededError:
    """The error a reservation refused by the ledger raises: figures, what is left, reset."""
    b = denial.check.bucket
    left = max(0, denial.check.limit - denial.spent - denial.reserved)
    spent, reserved, asked, limit, rest = format_compared(
        denial.spent,
        denial.reserved,
        denial.attempted,
        denial.check.limit,
        left,
        holds=lambda s, r, a, lim, rest: s + r + a > lim and rest == max(0, lim - s - r),
    )
    return BudgetExceededError(
        f"{period_word(b.period)} budget for {b.scope} would be exceeded: {spent} spent "
        f"+ {reserved} reserved + {asked} requested "
        f"> {limit} limit ({rest} left). It resets {resets(b)}.",
        scope=b.scope,
        period=b.period,
        limit=nanos_to_usd(denial.check.limit),
        spent=nanos_to_usd(denial.spent),
        attempted=nanos_to_usd(denial.attempted),
        reserved=nanos_to_usd(denial.reserved),
    )


def denied(denial: Denial, error: BudgetExceededError) -> Alert:
    """CRITICAL, once per scope and window: a request was refused."""
    b = denial.check.bucket
    return Alert(
        level=AlertLevel.CRITICAL,
        message=f"Request denied: {error}",
        scope=b.scope,
        period=b.period,
        kind="denied",
        spent_nanos=denial.spent,
        limit_nanos=denial.check.limit,
        period_start=datetime.fromtimestamp(b.start, UTC),
        dedup_key=f"denied|{b.scope}|{b.period}|{b.start}",
    )


# -- recording --------------------------------------------------------------------------------
def hold_exceeded(cost: Nanos, held: Nanos, model: str, scope: str, hold_id: str) -> Alert:
    """WARNING: a call cost more than its reservation (the estimate was low)."""
    shown_cost, shown_held = format_compared(cost, held)
    return Alert(
        level=AlertLevel.WARNING,
        message=(
            f"A call cost {shown_cost}, more than the {shown_held} reserved for it "
            f"(model {model}); estimates are low: raise max_tokens bounds or check the price "
            "table."
        ),
        scope=scope,
        period="per_request",
        kind="hold_exceeded",
        spent_nanos=cost,
        limit_nanos=held,
        dedup_key=f"hold_exceeded|{hold_id}",
    )


def unknown_price(model: str, fallback: str, cost: Nanos) -> Alert:
    """WARNING, once per model: usage of an unpriced model was recorded at a fallback price."""
    return Alert(
        level=AlertLevel.WARNING,
        message=(
            f"Model {model!r} has no known price; its usage was recorded at the "
            f"fallback price ({fallback}). Add a price for it."
        ),
        scope="model:" + model,
        period="daily",
        kind="unknown_price",
        spent_nanos=cost,
        dedup_key=f"unknown_price|{model}",
    )
