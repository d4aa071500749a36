"""CSV files: a grouped report, and the raw records streamed in constant memory.

stdlib ``csv`` (RFC 4180 quoting). Money is the exact decimal text (``0.000001234``) beside
the exact integer ``cost_nanos``, so a spreadsheet's sum and the ledger's agree to the nano.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from typing import IO

from costwarden.records import StoredRecord
from costwarden.reports.records import RECORD_COLUMNS, TOKEN_FIELDS, LocalClock, usd_text
from costwarden.reports.summary import COLUMNS, Report, ReportRow

Progress = Callable[[int], None]
"""Called with the number of records written since the last call (for a progress bar)."""
_EVERY = 10_000


def _cells(row: ReportRow) -> list[str | int]:
    return [
        row.group,
        row.requests,
        *(getattr(row, name) for name in TOKEN_FIELDS),
        f"{row.cost_usd:f}",
        row.cost_nanos,
    ]


def write_csv(report: Report, out: IO[str]) -> None:
    """Header, one line per group, then the ``TOTAL`` line."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([report.by, *COLUMNS])
    for row in report.rows:
        writer.writerow(_cells(row))
    writer.writerow(_cells(report.total))


def write_records_csv(
    records: Iterable[StoredRecord],
    out: IO[str],
    *,
    timezone: str = "UTC",
    progress: Progress | None = None,
) -> int:
    """One line per record (columns :data:`RECORD_COLUMNS`), times in ``timezone`` with their
    offset, tags joined by ``|``; return how many were written. Reads ``records`` once, so a
    ledger's :meth:`iter_records` streams through in constant memory."""
    clock = LocalClock(timezone)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(RECORD_COLUMNS)
    write = writer.writerow
    n = 0
    for r in records:
        write(
            (
                r.id,
                clock.iso(r.ts_us),
                r.model,
                r.provider,
                r.user_id,
                r.team,
                r.key,
                r.endpoint,
                "|".join(r.tags),
                r.request_id,
                r.input_tokens,
                r.output_tokens,
                r.cache_read_tokens,
                r.cache_write_tokens,
                r.reasoning_tokens,
                usd_text(r.cost_nanos),
                r.cost_nanos,
                r.latency_ms,
                r.status,
                "true" if r.estimated else "false",
                r.price_source,
            )
        )
        n += 1
        if progress is not None and n % _EVERY == 0:
            progress(_EVERY)
    if progress is not None and n % _EVERY:
        progress(n % _EVERY)
    return n
