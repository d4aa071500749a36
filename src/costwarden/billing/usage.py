"""Usage records from JSONL or CSV files (another tracker's log, or our own export), as
:class:`~costwarden.records.UsageRecord` s for the manager to record.

One record per JSON line or CSV row. Fields (CSV headers or JSON keys; the columns
``costwarden records --format csv`` and ``--json`` write are all understood, so an export
imports back): ``model`` (required), ``timestamp`` (ISO 8601 with an offset, or Unix
seconds; naive times are UTC; required), ``input_tokens``, ``output_tokens``,
``cache_read_tokens``, ``cache_write_tokens``, ``reasoning_tokens`` (default 0),
``cost_nanos`` (exact) or ``cost_usd`` (a decimal; neither: priced from the catalogue),
``user`` or ``user_id``, ``team``, ``key``, ``endpoint``, ``provider``, ``request_id``,
``tags`` (a JSON list, or text split on ``|``), ``latency_ms``, ``status``. Other fields
are ignored. A bad row is an error naming its line, and nothing is recorded.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from costwarden.errors import CostwardenError, InvalidInputError
from costwarden.records import UsageRecord

_INTS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
)


def _int(value: object, name: str, where: str) -> int:
    if value in (None, ""):
        return 0
    try:
        out = int(str(value).strip()) if not isinstance(value, int) else value
    except ValueError:
        raise InvalidInputError(f"{where}: {name} must be a whole number, got {value!r}") from None
    if isinstance(out, bool) or out < 0:
        raise InvalidInputError(f"{where}: {name} must be >= 0, got {value!r}")
    return out


def _when(value: object, where: str) -> datetime:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            if text.replace(".", "", 1).isdigit():
                return datetime.fromtimestamp(float(text), UTC)
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    raise InvalidInputError(f"{where}: timestamp {value!r} is not an ISO 8601 time or Unix seconds")


def _text(row: Mapping[str, Any], *names: str) -> str | None:
    for name in names:
        value = row.get(name)
        if value not in (None, ""):
            return str(value)
    return None


def usage_record(row: Mapping[str, Any], where: str) -> UsageRecord:
    """One row as a record (typed errors name ``where``)."""
    model = _text(row, "model")
    if model is None:
        raise InvalidInputError(f"{where}: a usage row needs a model")
    if "timestamp" not in row and "ts" not in row:
        raise InvalidInputError(f"{where}: a usage row needs a timestamp")
    counts = {name: _int(row.get(name), name, where) for name in _INTS}
    cost: float | None = None
    nanos, usd = row.get("cost_nanos"), row.get("cost_usd")
    try:
        if nanos not in (None, ""):
            cost = float(Decimal(str(nanos)).scaleb(-9))
        elif usd not in (None, ""):
            cost = float(Decimal(str(usd)))
    except InvalidOperation:
        raise InvalidInputError(
            f"{where}: cost {nanos if nanos else usd!r} is not a number"
        ) from None
    tags: Any = row.get("tags") or ()
    if isinstance(tags, str):
        tags = tuple(t for t in tags.split("|") if t)
    latency = row.get("latency_ms")
    try:
        return UsageRecord(
            model,
            counts["input_tokens"],
            counts["output_tokens"],
            cost,
            _when(row.get("timestamp", row.get("ts")), where),
            _text(row, "user", "user_id"),
            _text(row, "endpoint"),
            _text(row, "request_id"),
            team=_text(row, "team"),
            key=_text(row, "key"),
            provider=_text(row, "provider"),
            tags=tuple(tags),
            cache_read_tokens=counts["cache_read_tokens"],
            cache_write_tokens=counts["cache_write_tokens"],
            reasoning_tokens=counts["reasoning_tokens"],
            latency_ms=None if latency in (None, "") else float(latency),
            status=_text(row, "status") or "ok",
        )
    except (CostwardenError, ValueError, TypeError) as exc:
        raise InvalidInputError(f"{where}: {exc}") from None


def read_usage(text: str, where: str, fmt: str) -> list[UsageRecord]:
    """Every record of a ``usage-jsonl`` or ``usage-csv`` file (all checked before any is
    recorded)."""
    rows: list[tuple[str, Mapping[str, Any]]] = []
    if fmt == "usage-jsonl":
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
            except ValueError as exc:
                raise InvalidInputError(f"{where}:{n}: not JSON ({exc})") from None
            if isinstance(doc, list):  # `records --json` writes one list
                rows.extend((f"{where}:{n}[{i}]", d) for i, d in enumerate(doc))
            else:
                rows.append((f"{where}:{n}", doc))
    else:
        reader = csv.DictReader(io.StringIO(text))
        rows = [(f"{where}:{n}", r) for n, r in enumerate(reader, start=2)]
    out = []
    for here, row in rows:
        if not isinstance(row, Mapping):
            raise InvalidInputError(f"{here}: a usage row must be an object, got {row!r}")
        out.append(usage_record(row, here))
    return out
