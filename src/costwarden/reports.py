"""Spend reports: ledger records grouped into rows, written as CSV, JSON or XLSX.

Why the care with sums: a report total is what someone reconciles against an invoice. Every
amount is summed as integer nano-USD and written as an exact decimal (``1.000000000``), never
through a float; 10,000 records of $0.0001 total exactly $1. XLSX cells are numbers (so
spreadsheets can chart them) and carry the exact integer nano-USD in a column beside them.

Grouping by ``tag`` puts a record with several tags in several rows, so the rows may add up to
more than the total; the total always counts each record once (``Report.rows_overlap`` says so).
Records without the grouped field land in the ``(none)`` row. ``day`` is the local calendar
date in the report's time zone.

XLSX needs the optional ``xlsxwriter`` package (``pip install 'costwarden[excel]'``).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, Final

from costwarden.budget import calendar_window, get_zone
from costwarden.errors import ConfigurationError, InvalidInputError
from costwarden.money import Nanos, nanos_to_decimal
from costwarden.records import StoredRecord

GROUP_BY: Final = ("user", "team", "model", "key", "tag", "day", "endpoint", "provider")
NONE_LABEL: Final = "(none)"
TOTAL_LABEL: Final = "TOTAL"
JSON_SCHEMA: Final = "costwarden.report/1"
TOKEN_FIELDS: Final = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
)
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
    if by == "tag":
        return _tags
    return _field("user_id" if by == "user" else by)


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
        values = (
            1,
            rec.input_tokens,
            rec.output_tokens,
            rec.cache_read_tokens,
            rec.cache_write_tokens,
            rec.reasoning_tokens,
            rec.cost_nanos,
        )
        for i, v in enumerate(values):
            total[i] += v
        for key in keys_of(rec):
            acc = sums.get(key)
            if acc is None:
                acc = sums[key] = [0] * 7
            for i, v in enumerate(values):
                acc[i] += v
    rows = [ReportRow(key, *acc) for key, acc in sums.items()]
    if by == "day":
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


# -- writers -------------------------------------------------------------------------------------
def _cells(row: ReportRow) -> list[str | int]:
    return [
        row.group,
        row.requests,
        *(getattr(row, name) for name in TOKEN_FIELDS),
        f"{row.cost_usd:f}",
        row.cost_nanos,
    ]


def write_csv(report: Report, out: IO[str]) -> None:
    """Header, one line per group, then the ``TOTAL`` line (stdlib csv, RFC 4180 quoting)."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([report.by, *COLUMNS])
    for row in report.rows:
        writer.writerow(_cells(row))
    writer.writerow(_cells(report.total))


def write_json(report: Report, out: IO[str]) -> None:
    """The :meth:`Report.to_dict` document (schema ``costwarden.report/1``), indented."""
    json.dump(report.to_dict(), out, indent=2)
    out.write("\n")


def write_xlsx(report: Report, path: str | Path) -> None:
    """An Excel workbook: the grouped table (numbers, money formatted) and a sheet about it."""
    try:
        import xlsxwriter
    except ImportError:
        raise ConfigurationError(
            "XLSX reports need the xlsxwriter package: pip install 'costwarden[excel]' "
            "(or choose --format csv)"
        ) from None
    workbook = xlsxwriter.Workbook(str(path))
    try:
        bold = workbook.add_format({"bold": True})
        money = workbook.add_format({"num_format": "$#,##0.000000"})
        bold_money = workbook.add_format({"bold": True, "num_format": "$#,##0.000000"})
        sheet = workbook.add_worksheet(f"Spend by {report.by}")
        sheet.write_row(0, 0, [report.by, *COLUMNS], bold)
        lines = [*report.rows, report.total]
        for r, row in enumerate(lines, start=1):
            is_total = row is report.total
            sheet.write_string(r, 0, row.group, bold if is_total else None)
            sheet.write_row(r, 1, [row.requests, *(getattr(row, n) for n in TOKEN_FIELDS)])
            sheet.write_number(
                r, 2 + len(TOKEN_FIELDS), float(row.cost_usd), bold_money if is_total else money
            )
            sheet.write_number(r, 3 + len(TOKEN_FIELDS), row.cost_nanos)
        sheet.set_column(0, 0, max([len(report.by), *(len(x.group) for x in lines)]) + 2)
        sheet.set_column(1, len(COLUMNS), 14)
        sheet.freeze_panes(1, 0)
        about = workbook.add_worksheet("About")
        facts = report.to_dict()
        for r, key in enumerate(
            ("schema", "by", "since", "until", "timezone", "currency", "generated_at")
        ):
            about.write_string(r, 0, key, bold)
            about.write_string(r, 1, str(facts[key] if facts[key] is not None else "(open)"))
        about.write_string(7, 0, "note", bold)
        about.write_string(
            7,
            1,
            "cost_nanos is exact (1e-9 USD); rows by tag may overlap, the total counts each "
            "record once",
        )
        about.set_column(0, 1, 24)
    finally:
        workbook.close()


# -- records -------------------------------------------------------------------------------------
def record_to_dict(rec: StoredRecord, timezone: str = "UTC") -> dict[str, Any]:
    """One ledger record for JSON output: exact cost as a decimal string and nano-USD."""
    return {
        "id": rec.id,
        "timestamp": datetime.fromtimestamp(rec.ts_us / 1_000_000, get_zone(timezone)).isoformat(),
        "model": rec.model,
        "provider": rec.provider,
        "user": rec.user_id,
        "team": rec.team,
        "key": rec.key,
        "endpoint": rec.endpoint,
        "request_id": rec.request_id,
        "tags": list(rec.tags),
        **{name: getattr(rec, name) for name in TOKEN_FIELDS},
        "cost_usd": f"{nanos_to_decimal(rec.cost_nanos).quantize(Decimal('1e-9')):f}",
        "cost_nanos": rec.cost_nanos,
        "latency_ms": rec.latency_ms,
        "status": rec.status,
        "estimated": rec.estimated,
        "price_source": rec.price_source,
    }
