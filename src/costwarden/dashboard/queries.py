"""What each view shows, read from the ledger's rollups (never a scan of all records).

Every function takes the ledger and the :class:`~costwarden.dashboard.filters.Filters` and
returns plain data for a template: amounts stay integer nano-USD until they are formatted.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from costwarden.dashboard.filters import Filters
from costwarden.ledger.rollup import SLOT_SECONDS, Rollups, Window
from costwarden.money import Nanos, nanos_to_usd
from costwarden.records import StoredRecord

MAX_SERIES: Final = 8
"""Models drawn as their own series; the rest are summed as "other"."""
OTHER: Final = "(other models)"
TOP_N: Final = 25
RECORDS_PAGE: Final = 50
BREAKDOWN_ROWS: Final = 100


def period_start(d: date, step: str) -> date:
    """The local day, ISO week (Monday) or month a local date belongs to."""
    if step == "week":
        return d - timedelta(days=d.weekday())
    if step == "month":
        return d.replace(day=1)
    return d


def _periods(f: Filters) -> list[date]:
    out: list[date] = []
    d = period_start(f.first, f.step)
    while d <= f.last:
        out.append(d)
        if f.step == "day":
            d += timedelta(days=1)
        elif f.step == "week":
            d += timedelta(days=7)
        else:
            d = (d.replace(day=28) + timedelta(days=4)).replace(day=1)
    return out


@dataclass(frozen=True, slots=True)
class Series:
    """Spend per period stacked by model: ``values[model][i]`` for ``periods[i]``."""

    periods: list[date]
    models: list[str]
    values: dict[str, list[Nanos]]
    counts: list[int]
    total: Nanos
    requests: int

    def period_total(self, i: int) -> Nanos:
        """The spend of period ``i`` over every model."""
        return sum(v[i] for v in self.values.values())

    def columns(self) -> list[list[Nanos]]:
        """The figures table's amount columns: each model's spend per period (in
        :attr:`models` order), then the periods' totals."""
        totals = [self.period_total(i) for i in range(len(self.periods))]
        return [*(self.values[m] for m in self.models), totals]

    def chart_json(self, tz: str) -> str:
        """The data the page's uPlot chart draws (x: local period starts as epoch seconds
        of their local midnight; y: USD per model)."""
        from costwarden.budget import get_zone
        from costwarden.dashboard.filters import _midnight

        zone = get_zone(tz)
        return json.dumps(
            {
                "x": [_midnight(p, zone) for p in self.periods],
                "labels": [p.isoformat() for p in self.periods],
                "tz": tz,
                "series": [
                    {"label": m, "values": [nanos_to_usd(v) for v in self.values[m]]}
                    for m in self.models
                ],
            },
            separators=(",", ":"),
        )


def spend_series(ledger: Rollups, f: Filters) -> Series:
    """Spend over the filters' range by local period and model (hour slots of the rollup,
    each put in the local day of its start)."""
    since, until = f.slots
    rows = ledger.rollup_series(f.kind, f.name, since, until)
    periods = _periods(f)
    index = {p: i for i, p in enumerate(periods)}
    zone = f.zone
    per_model: dict[str, list[int]] = defaultdict(lambda: [0] * len(periods))
    counts = [0] * len(periods)
    slot_period: dict[int, int | None] = {}
    start, end = f.start, f.end  # properties that do time zone arithmetic: once, not per row
    for slot, model, spent, count in rows:
        i = slot_period.get(slot, -1)
        if i == -1:
            # the slot's middle decides its local day (an hour slot of a half-hour zone
            # straddles two days; its middle is in one of them)
            local = datetime.fromtimestamp(slot + SLOT_SECONDS // 2, UTC).astimezone(zone)
            i = slot_period[slot] = index.get(period_start(local.date(), f.step))
        if i is None or not start <= slot + SLOT_SECONDS // 2 < end:
            continue
        per_model[model][i] += spent
        counts[i] += count
    ranked = sorted(per_model, key=lambda m: (-sum(per_model[m]), m))
    models = ranked[:MAX_SERIES]
    values = {m: per_model[m] for m in models}
    if len(ranked) > MAX_SERIES:
        rest = [0] * len(periods)
        for m in ranked[MAX_SERIES:]:
            for i, v in enumerate(per_model[m]):
                rest[i] += v
        values[OTHER] = rest
        models.append(OTHER)
    total = sum(sum(v) for v in values.values())
    return Series(periods, models, values, counts, total, sum(counts))


@dataclass(frozen=True, slots=True)
class BreakdownRow:
    """One name of a breakdown: its spend, requests and share of the total."""

    name: str
    spent: Nanos
    count: int
    share: float  # of the breakdown's total, 0..1


def breakdown(ledger: Rollups, f: Filters, dim: str) -> list[BreakdownRow]:
    """Spend by ``dim`` (user, team, key, tag, endpoint, model) over the range."""
    since, until = f.slots
    rows = ledger.rollup_breakdown(dim, since, until, kind=f.kind, name=f.name)
    total = sum(s for _, s, _ in rows) or 1
    return [BreakdownRow(n, s, c, s / total) for n, s, c in rows[:BREAKDOWN_ROWS]]


def _windows(slots: Sequence[int], f: Filters) -> list[Window]:
    lo, hi = f.start * 1_000_000, f.end * 1_000_000  # once: properties with zone arithmetic
    out = []
    for s in sorted(slots):
        a, b = max(lo, s * 1_000_000), min(hi, (s + SLOT_SECONDS) * 1_000_000)
        if a < b:
            out.append((a, b))
    return out


def top_requests(ledger: Rollups, f: Filters, n: int = TOP_N) -> list[StoredRecord]:
    """The ``n`` most expensive records of the scope and range (read from the ``n`` hours
    whose most expensive record cost the most, and only the records of those hours that cost
    at least the least of those maxima: see ledger/rollup.py)."""
    since, until = f.slots
    top = ledger.rollup_top_slots(f.kind, f.name, since, until, n)
    floor = top[-1][1] if len(top) == n else 0
    windows = _windows([slot for slot, _cost in top], f)
    return ledger.scope_records(f.kind, f.name, windows, by_cost=True, limit=n, min_cost=floor)


def latest_records(ledger: Rollups, f: Filters, limit: int = RECORDS_PAGE) -> list[StoredRecord]:
    """The newest records of the scope in the range: only the hours that hold them are read
    (the newest hours with records of the scope, until they hold ``limit``)."""
    since, until = f.slots
    per_slot: dict[int, int] = defaultdict(int)
    for slot, _m, _s, count in ledger.rollup_series(f.kind, f.name, since, until):
        per_slot[slot] += count
    chosen: list[int] = []
    seen = 0
    for slot in sorted(per_slot, reverse=True):
        chosen.append(slot)
        seen += per_slot[slot]
        if seen >= limit:
            break
    return ledger.scope_records(f.kind, f.name, _windows(chosen, f), by_cost=False, limit=limit)


def tracked_vs_billed(ledger: object, rollups: Rollups, f: Filters) -> dict[str, Any]:
    """Tracked spend (the rollup) beside imported bill lines, per UTC day and per canonical
    model, as ``report --vs-billed`` compares them (costwarden.billing.compare): providers
    bill by UTC day, so this view cuts UTC days whatever the chosen zone."""
    from costwarden.billing.compare import canonical_model
    from costwarden.ledger.billing import BillingLedger

    if not isinstance(ledger, BillingLedger):
        return {"has_billed": False, "days": [], "models": []}
    since, until = f.slots
    lines = ledger.bill_lines(since * 1_000_000, until * 1_000_000)
    if not lines:
        return {"has_billed": False, "days": [], "models": []}
    by_day: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    by_model: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for slot, model, spent, _count in rollups.rollup_series("global", "", since, until):
        day = datetime.fromtimestamp(slot, UTC).date().isoformat()
        by_day[day][0] += spent
        by_model[canonical_model(model)][0] += spent
    for line in lines:
        day = datetime.fromtimestamp(line.start_us / 1e6, UTC).date().isoformat()
        by_day[day][1] += line.cost_nanos
        by_model[canonical_model(line.model)][1] += line.cost_nanos

    def rows(src: dict[str, list[int]]) -> list[dict[str, Any]]:
        return [{"name": k, "tracked": t, "billed": b, "diff": b - t} for k, (t, b) in src.items()]

    models = sorted(rows(by_model), key=lambda r: (-r["billed"], r["name"]))
    return {"has_billed": True, "days": sorted(rows(by_day), key=lambda r: r["name"]),
            "models": models}  # fmt: skip


def record_row(rec: StoredRecord, zone_name: str) -> dict[str, Any]:
    """One record as a table row (local time in the viewer's zone)."""
    from costwarden.budget import get_zone

    local = datetime.fromtimestamp(rec.ts_us / 1e6, UTC).astimezone(get_zone(zone_name))
    return {
        "id": rec.id,
        "time": local.strftime("%Y-%m-%d %H:%M:%S"),
        "model": rec.model,
        "user": rec.user_id or "",
        "team": rec.team or "",
        "key": rec.key or "",
        "endpoint": rec.endpoint or "",
        "tags": ", ".join(rec.tags),
        "input_tokens": rec.input_tokens,
        "output_tokens": rec.output_tokens,
        "cost": rec.cost_nanos,
        "status": rec.status,
        "request_id": rec.request_id or "",
    }


__all__ = [
    "BreakdownRow",
    "Series",
    "breakdown",
    "latest_records",
    "period_start",
    "record_row",
    "spend_series",
    "top_requests",
]
