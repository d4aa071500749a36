"""Alert delivery history as plain JSON: what ``costwarden alerts --json`` prints and the
gateway's admin API serves (one shape for both, read from the ledger's outbox rows)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from costwarden.ledger.base import Delivery


def _iso(epoch: float | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat()


def delivery_to_dict(d: Delivery) -> dict[str, Any]:
    """One delivery: channel, status, tries, times (ISO, UTC) and the alert's level, scope,
    kind and message read from its payload (a payload that is not a JSON object is shown as
    the message, so an old or foreign row still reads)."""
    try:
        payload = json.loads(d.payload)
    except ValueError:
        payload = {"message": d.payload}
    if not isinstance(payload, dict):
        payload = {"message": str(payload)}
    return {
        "id": d.id,
        "channel": d.channel,
        "status": d.status,
        "attempts": d.attempts,
        "created_at": _iso(d.created_at),
        "delivered_at": _iso(d.delivered_at),
        "last_error": d.last_error,
        "level": payload.get("level"),
        "scope": payload.get("scope"),
        "kind": payload.get("kind"),
        "message": payload.get("message"),
        "dedup_key": d.dedup_key,
    }


__all__ = ["delivery_to_dict"]
