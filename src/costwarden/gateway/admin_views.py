"""What the admin API answers: the JSON form of budgets, keys, audit events and spend.

Limits are USD as JSON numbers, the form a ``PUT`` takes, so a budget read can be sent back
as it is (a limit a float cannot carry to the nano, above about $9M, is an exact decimal
string instead). Spend is an exact decimal string (``"0.050000000"``) beside integer
nano-USD, as in the CLI's reports. Times are ISO 8601. A key is shown without its secret and
without its hashes, always.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from costwarden.budget import Budget, get_zone
from costwarden.control import AuditEvent, StoredBudget, VirtualKey
from costwarden.keys import KeyUsage
from costwarden.money import Nanos, nanos_to_decimal

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def iso(epoch: float | None, zone: str = "UTC") -> str | None:
    """ISO 8601 of ``epoch``, rounded *down* to the microsecond: a time read here and sent
    back as ``since`` includes the thing it was read from (and as ``until`` excludes it)."""
    if epoch is None:
        return None
    at = _EPOCH + timedelta(microseconds=math.floor(epoch * 1_000_000))
    return at.astimezone(get_zone(zone)).isoformat()


def usd_text(nanos: Nanos) -> str:
    """Exact USD with nine decimal places: ``"0.050000000"``."""
    return f"{nanos_to_decimal(nanos).quantize(Decimal('1e-9')):f}"


def _limit(value: float | None) -> float | str | None:
    if value is None or isinstance(value, float | int):
        return value
    return str(value)  # an exact Decimal (see admin_input.exact_usd)


def budget_json(budget: Budget) -> dict[str, Any]:
    """A budget as the admin API shows it (limits in dollars, None where unset)."""
    return {
        "daily_limit": _limit(budget.daily_limit),
        "weekly_limit": _limit(budget.weekly_limit),
        "monthly_limit": _limit(budget.monthly_limit),
        "per_request_limit": _limit(budget.per_request_limit),
        "rolling_limits": (
            None
            if not budget.rolling_limits
            else {str(s): _limit(v) for s, v in sorted(budget.rolling_limits.items())}
        ),
        "timezone": budget.timezone,
        "alert_threshold": float(budget.alert_threshold),
        "alert_thresholds": (
            None if budget.alert_thresholds is None else [float(t) for t in budget.alert_thresholds]
        ),
    }


def stored_budget_json(stored: StoredBudget) -> dict[str, Any]:
    """A stored budget (scope, budget, version, who changed it when) as the admin API shows it."""
    return {
        "scope": stored.scope,
        "budget": budget_json(stored.budget),
        "version": stored.version,
        "updated_at": iso(stored.updated_at),
        "actor": stored.actor,
    }


def key_json(key: VirtualKey) -> dict[str, Any]:
    """Everything about a key but its secret and hashes: :meth:`VirtualKey.as_dict` with the
    key's scope, the API's budget form and ISO times."""
    doc = key.as_dict()
    doc["scope"] = key.scope
    doc["budget"] = None if key.budget is None else budget_json(key.budget)
    for name in ("expires_at", "created_at", "revoked_at", "grace_until"):
        doc[name] = iso(doc[name])
    return doc


def audit_json(event: AuditEvent) -> dict[str, Any]:
    """An audit event as the admin API shows it (times as ISO strings)."""
    return {
        "id": event.id,
        "at": iso(event.at),
        "actor": event.actor,
        "action": event.action,
        "target": event.target,
        "old": _no_hashes(event.old),
        "new": _no_hashes(event.new),
    }


def _no_hashes(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """An audit snapshot as stored (keys' snapshots never hold hashes; dropped if one did)."""
    if value is None:
        return None
    return {k: v for k, v in value.items() if k not in ("hash", "previous_hash")}


def key_usage_json(usage: KeyUsage, key: VirtualKey, now: float) -> dict[str, Any]:
    """A key's own budget and spend per period: what ``GET /key/info`` answers."""
    return {
        "key": key_json(key),
        "budget_scope": usage.budget_scope,
        "budget": None if usage.budget is None else budget_json(usage.budget),
        "periods": [
            {
                "period": p.period,
                "spent_usd": usd_text(p.spent),
                "spent_nanos": p.spent,
                "reserved_nanos": p.reserved,
                "limit_usd": None if p.limit is None else usd_text(p.limit),
                "limit_nanos": p.limit,
                "remaining_usd": (
                    None if p.limit is None else usd_text(max(0, p.limit - p.spent - p.reserved))
                ),
            }
            for p in usage.periods
        ],
        "as_of": datetime.fromtimestamp(now, UTC).isoformat(),
    }


__all__ = [
    "audit_json",
    "budget_json",
    "iso",
    "key_json",
    "key_usage_json",
    "stored_budget_json",
    "usd_text",
]
