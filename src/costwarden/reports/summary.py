"""Spend summaries: ledger records grouped into rows (the writers are reports/csv.py, xlsx.py).

Why the care with sums: a report total is what someone reconciles against an invoice. Every
amount is summed as integer nano-USD and written as an exact decimal (``1.000000000``), never
through a float; 10,000 records of $0.0001 total exactly $1. XLSX cells are numbers (so
spreadsheets can chart them) and carry the exact integer nano-USD in a column beside them.

Grouping by ``tag`` puts a record with several tags in several rows, so the rows may add up to
more than the total; the total always counts each record once (``Report.rows_overlap`` says so).
Records without the grouped field land in the ``(none)`` row. ``day`` is the local calendar
date in the report's time zone, ``week`` its ISO week (``2026-W45``, weeks start on Monday) and
``month`` its month (``2026-11``).

:class:`Cube` sums records once at the finest grain (local day x every name of a record) and
rolls that up into any grouping: one pass over a ledger gives every sheet of a workbook.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Final

from costwarden.budget import calendar_window, get_zone
from costwarden.errors import InvalidInputError
from costwarden.money import Nanos, nanos_to_decimal
from costwarden.records import StoredRecord
from costwarden.reports.records import TOKEN_FIELDS

GROUP_BY: Final = (
    "user",
    "team",
    "model",
    "key",
    "tag",
    "day",
    "week",
    "month",
    "endpoint",
    "provider",
)
PERIODS: Final = ("day", "week", "month")
NONE_LABEL: Final = "(none)"
TOTAL_LABEL: Final = "TOTAL"
JSON_SCHEMA: Final = "costwarden.report/1"
COLUMNS: Final = ("requests", *TOKEN_FIELDS, "cost_usd", "cost_nanos")


@dataclass(frozen=True, slots=True)
class ReportRow:
    """One group's totals; ``cost_nanos`` is exact."""

    group: str
    requests: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    cost_nanos: Nanos

    @property
    def cost_usd(self) -> Decimal:
        """Exact USD with nine decimal places (``Decimal('1.000000000')``)."""
        return nanos_to_decimal(self.cost_nanos).quantize(Decimal("1e-9"))

    def to_dict(self) -> dict[str, Any]:
        """JSON form: cost as an exact decimal string and as integer nano-USD."""
        return {
            "group": self.group,
            "requests": self.requests,
            **{name: getattr(self, name) for name in TOKEN_FIELDS},
            "cost_usd": f"{self.cost_usd:f}",
            "cost_nanos": self.cost_nanos,
        }


@dataclass(frozen=True, slots=True)
class Report:
    """Spend grouped ``by`` one field over ``[since, until)``."""

    by: str
    rows: tuple[ReportRow, ...]
    total: ReportRow
    since: datetime | None
    until: datetime | None
    timezone: str
    generated_at: datetime
    rows_overlap: bool

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready values, with its schema name so readers can check the shape."""
        return {
            "schema": JSON_SCHEMA,
            "by": self.by,
            "since": None if self.since is None else self.since.isoformat(),
            "until": None if self.until is None else self.until.isoformat(),
            "timezone": self.timezone,
            "currency": "USD",
            "generated_at": self.generated_at.isoformat(),
            "rows_overlap": self.rows_overlap,
            "rows": [row.to_dict() for row in self.rows],
            "total": self.total.to_dict(),
        }


class _DayLabel:
    """Local date of a timestamp, recomputed only when a record leaves the cached day (time
    zone arithmetic per record would dominate a report of a million records)."""

    def __init__(self, zone_name: str) -> None:
        self.zone = get_zone(zone_name)
        self.start = self.end = 0.0
        self.label: tuple[str] = ("",)

    def __call__(self, rec: StoredRecord) -> Sequence[str]:
        ts = rec.ts_us / 1_000_000
        if not self.start <= ts < self.end:
            w = calendar_window("daily", datetime.fromtimestamp(ts, UTC), self.zone)
            self.start, self.end = float(w.start), float(w.end)
            self.label = (datetime.fromtimestamp(w.start, self.zone).date().isoformat(),)
        return self.label


def period_label(day: str, period: str) -> str:
    """The ``week`` (``2026-W45``) or ``month`` (``2026-11``) of a local ``day`` label."""
    if period == "day":
        return day
    if period == "month":
        return day[:7]
    year, week, _ = date.fromisoformat(day).isocalendar()
    return f"{year}-W{week:02d}"


class _PeriodLabel:
    def __init__(self, zone_name: str, period: str) -> None:
        self.day = _DayLabel(zone_name)
        self.period = period
        self.last_day = ""
        self.label: tuple[str] = ("",)

    def __call__(self, rec: StoredRecord) -> Sequence[str]:
        (day,) = self.day(rec)
        if day != self.last_day:
            self.last_day, self.label = day, (period_label(day, self.period),)
        return self.label


def _field(name: str) -> Callable[[StoredRecord], Sequence[str]]:
    def key(rec: StoredRecord) -> Sequence[str]:
        return (getattr(rec, name) or NONE_LABEL,)

    return key


def _tags(rec: StoredRecord) -> Sequence[str]:
    return rec.tags or (NONE_LABEL,)


def _key_function(by: str, zone_name: str) -> Callable[[StoredRecord], Sequence[str]]:
    """The group label(s) of a record: one, except for ``tag`` (each of its tags)."""
    if by == "day":
        return _DayLabel(zone_name)
    if by in PERIODS:
        return _PeriodLabel(zone_name, by)
    if by == "tag":
        return _tags
    return _field("user_id" if by == "user" else by)


def _counts(rec: StoredRecord) -> tuple[int, ...]:
    """A record's seven summed columns (one request, five token counts, cost in nano-USD), in
    COLUMNS order without ``cost_usd``: the one place that order is spelt out for summing."""
    return (
        1,
        rec.input_tokens,
        rec.output_tokens,
        rec.cache_read_tokens,
        rec.cache_write_tokens,
        rec.reasoning_tokens,
        rec.cost_nanos,
    )


def _add(acc: list[int], values: Sequence[int]) -> None:
    """Add ``values`` into ``acc`` column by column (integers, so sums stay exact)."""
    for i, v in enumerate(values):
        acc[i] += v


def _add_to(group: dict[str, list[int]], key: str, values: Sequence[int]) -> None:
    """Add ``values`` into ``group[key]``, starting that row from them if it is new."""
    acc = group.get(key)
    if acc is None:
        group[key] = list(values)
    else:
        _add(acc, values)


def build_report(
    records: Iterable[StoredRecord],
    by: str = "model",
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    timezone: str = "UTC",
) -> Report:
    """Group records into rows (most expensive first; by ``day``, oldest first).

    ``since``/``until`` are only recorded in the report: pass the records of that range.
    """
    if by not in GROUP_BY:
        raise InvalidInputError(f"a report groups by one of {', '.join(GROUP_BY)}, not {by!r}")
    keys_of = _key_function(by, timezone)  # a misspelt zone fails here, before any work
    sums: dict[str, list[int]] = {}
    total = [0] * 7
    for rec in records:
        values = _counts(rec)
        _add(total, values)
        for key in keys_of(rec):
            _add_to(sums, key, values)
    return _report(by, sums, total, since, until, timezone)


def _report(
    by: str,
    sums: dict[str, list[int]],
    total: list[int],
    since: datetime | None,
    until: datetime | None,
    timezone: str,
) -> Report:
    rows = [ReportRow(key, *acc) for key, acc in sums.items()]
    if by in PERIODS:
        rows.sort(key=lambda r: r.group)
    else:
        rows.sort(key=lambda r: (-r.cost_nanos, r.group))
    return Report(
        by=by,
        rows=tuple(rows),
        total=ReportRow(TOTAL_LABEL, *total),
        since=since,
        until=until,
        timezone=timezone,
        generated_at=datetime.now(UTC),
        rows_overlap=by == "tag",
    )


_FIELDS: Final = (
    ("user", "user_id"),
    ("team", "team"),
    ("key", "key"),
    ("model", "model"),
    ("endpoint", "endpoint"),
    ("provider", "provider"),
)


class Cube:
    """Every grouping of one pass over the records.

    ``add`` updates one running sum per grouping (the day label is cached), so memory grows
    with the number of distinct users, models, days... and never with the number of records
    or of their combinations; weeks and months are rolled up from the days at the end.
    ``report(by)`` gives the same rows as :func:`build_report` on the same records.
    """

    def __init__(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        timezone: str = "UTC",
    ) -> None:
        self._day = _DayLabel(timezone)  # a misspelt zone fails here, before any work
        self.since, self.until, self.timezone = since, until, timezone
        self.sums: dict[str, dict[str, list[int]]] = {
            name: {} for name in ("day", "tag", *(n for n, _ in _FIELDS))
        }
        self.total = [0] * 7

    def add(self, rec: StoredRecord) -> None:
        """Add one record's counts and cost to every grouping it belongs to."""
        values = _counts(rec)
        _add(self.total, values)
        sums = self.sums
        names = [
            ("day", self._day(rec)[0]),
            *((kind, getattr(rec, attr) or NONE_LABEL) for kind, attr in _FIELDS),
            *(("tag", t) for t in (rec.tags or (NONE_LABEL,))),
        ]
        for kind, name in names:
            _add_to(sums[kind], name, values)

    def feed(self, records: Iterable[StoredRecord]) -> Cube:
        """Add every record and return the cube, for chaining."""
        for rec in records:
            self.add(rec)
        return self

    @property
    def requests(self) -> int:
        """How many records were added."""
        return self.total[0]

    @property
    def cost_nanos(self) -> Nanos:
        """The total cost of the records added, in nano-USD."""
        return self.total[6]

    def report(self, by: str) -> Report:
        """The totals grouped ``by`` one of GROUP_BY, as a Report; an unknown grouping is an
        InvalidInputError.
        """
        if by not in GROUP_BY:
            raise InvalidInputError(f"a report groups by one of {', '.join(GROUP_BY)}, not {by!r}")
        if by not in PERIODS or by == "day":
            sums = {k: list(v) for k, v in self.sums[by].items()}
        else:
            sums = {}
            for day, values in self.sums["day"].items():
                _add_to(sums, period_label(day, by), values)
        return _report(by, sums, list(self.total), self.since, self.until, self.timezone)
