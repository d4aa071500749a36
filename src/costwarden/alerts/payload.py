"""The JSON form of an alert: what the ledger outbox stores and what webhooks receive.

Amounts travel as exact integer nano-USD (``spent_nanos``) with float USD beside them for
readers; times as ISO 8601 UTC. ``alert_from_json(alert_to_json(a)) == a``.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from costwarden.errors import InvalidInputError
from costwarden.money import nanos_to_usd
from costwarden.records import Alert, AlertLevel


def alert_to_dict(alert: Alert) -> dict[str, Any]:
    """The alert as JSON-ready plain values (the outbox, webhook bodies and log extras all use this
    one shape).
    """
    return {
        "level": alert.level.value,
        "message": alert.message,
        "scope": alert.scope,
        "period": alert.period,
        "kind": alert.kind,
        "threshold": alert.threshold,
        "spent_nanos": alert.spent_nanos,
        "limit_nanos": alert.limit_nanos,
        "spent_usd": nanos_to_usd(alert.spent_nanos),
        "limit_usd": alert.limit_usd,
        "period_start": None if alert.period_start is None else alert.period_start.isoformat(),
        "dedup_key": alert.dedup_key,
        "created_at": alert.created_at.isoformat(),
    }


def alert_to_json(alert: Alert) -> str:
    """The alert as compact JSON with sorted keys, so equal alerts give equal bytes."""
    return json.dumps(alert_to_dict(alert), sort_keys=True, separators=(",", ":"))


def alert_from_dict(data: dict[str, Any]) -> Alert:
    """Rebuild an Alert from ``alert_to_dict``'s shape; a missing or mistyped field is an
    InvalidInputError.
    """
    try:
        start = data.get("period_start")
        return Alert(
            level=AlertLevel(data["level"]),
            message=str(data["message"]),
            scope=str(data["scope"]),
            period=str(data["period"]),
            kind=str(data["kind"]),
            threshold=None if data.get("threshold") is None else float(data["threshold"]),
            spent_nanos=int(data.get("spent_nanos", 0)),
            limit_nanos=None if data.get("limit_nanos") is None else int(data["limit_nanos"]),
            period_start=None if start is None else datetime.fromisoformat(start),
            dedup_key=str(data.get("dedup_key", "")),
            created_at=datetime.fromisoformat(data["created_at"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInputError(f"not a costwarden alert payload: {exc}") from None


def alert_from_json(text: str) -> Alert:
    """Parse an alert stored or sent as JSON; text that is not a JSON object is an
    InvalidInputError.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"alert payload is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidInputError("alert payload must be a JSON object")
    return alert_from_dict(data)
