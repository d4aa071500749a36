"""Tracked spend against the provider's bill, per UTC day and model.

Why UTC days: providers bucket their bills by UTC day, so tracked records are cut the same way
or a day's difference would only be the time zone. Why a canonical model name: a bill names
the dated snapshot (``gpt-4o-2024-08-06``, ``claude-3-5-haiku-20241022``) where a caller may
have asked for the alias; both sides drop a trailing date (``-2024-08-06``, ``-20241022``) and
``-latest`` before they are matched. Lines without a model (tools, storage) are one
``(no model)`` row per day.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from costwarden.ledger.billing import BillLine
from costwarden.money import Nanos
from costwarden.records import StoredRecord
from costwarden.reports.records import usd_text

NO_MODEL: Final = "(no model)"
_DATED = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8}|latest)$")


def canonical_model(model: str | None) -> str:
    """``gpt-4o-2024-08-06`` -> ``gpt-4o``; ``claude-3-5-haiku-latest`` -> ``claude-3-5-haiku``;
    a provider prefix (``openai/``) is dropped too."""
    if not model:
        return NO_MODEL
    name = model.rsplit("/", 1)[-1].strip().lower()
    return _DATED.sub("", name)


@dataclass(frozen=True, slots=True)
class BilledRow:
    """One day and model of the comparison: what the provider billed beside what the ledger
    recorded.
    """

    day: str
    model: str
    tracked_nanos: Nanos
    billed_nanos: Nanos
    tracked_requests: int

    @property
    def difference_nanos(self) -> Nanos:
        """Billed minus tracked: positive means the provider charged more than was tracked."""
        return self.billed_nanos - self.tracked_nanos

    def to_dict(self) -> dict[str, Any]:
        """The row as JSON-ready values (``costwarden billing compare --format json``)."""
        return {
            "day": self.day,
            "model": self.model,
            "tracked_usd": usd_text(self.tracked_nanos),
            "billed_usd": usd_text(self.billed_nanos),
            "difference_usd": usd_text(self.difference_nanos),
            "tracked_nanos": self.tracked_nanos,
            "billed_nanos": self.billed_nanos,
            "difference_nanos": self.difference_nanos,
            "tracked_requests": self.tracked_requests,
        }


def _day(us: int) -> str:
    return datetime.fromtimestamp(us / 1_000_000, UTC).date().isoformat()


def compare(
    records: Iterable[StoredRecord],
    lines: Iterable[BillLine],
    *,
    providers: Iterable[str] | None = None,
) -> list[BilledRow]:
    """Rows per (UTC day, canonical model), oldest day first, most billed first within a
    day. Tracked records of providers the bill does not cover are left out when
    ``providers`` is given (a record with no provider is kept)."""
    allowed = None if providers is None else set(providers)
    sums: dict[tuple[str, str], list[int]] = {}
    last_us, last_day = -1, ""
    for r in records:
        if allowed is not None and r.provider is not None and r.provider not in allowed:
            continue
        if not last_us <= r.ts_us < last_us + 1:
            last_day = _day(r.ts_us)
        acc = sums.setdefault((last_day, canonical_model(r.model)), [0, 0, 0])
        acc[0] += r.cost_nanos
        acc[2] += 1
    for line in lines:
        acc = sums.setdefault((_day(line.start_us), canonical_model(line.model)), [0, 0, 0])
        acc[1] += line.cost_nanos
    rows = [BilledRow(day, model, t, b, n) for (day, model), (t, b, n) in sums.items()]
    rows.sort(key=lambda x: (x.day, -x.billed_nanos, -x.tracked_nanos, x.model))
    return rows
