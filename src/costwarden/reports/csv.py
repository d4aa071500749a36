"""CSV files: a grouped report, and the raw records streamed in constant memory.

stdlib ``csv`` (RFC 4180 quoting). Money is the exact decimal text (``0.000001234``) beside
the exact integer ``cost_nanos``, so a spreadsheet's sum and the ledger's agree to the nano.

A ledger's records have two writers that write the same bytes: :func:`write_records_csv`
over any records (objects), and :func:`write_ledger_csv`, the fast step for a whole ledger
or a time range of it, which writes the SQL ledgers' rows straight from their batches
(ledger/record_rows.py) without building a record object per row: most of an export's time
went there (``python -m benchmarks reports --exports-only``: docs/benchmarks.md).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from typing import IO

from costwarden.caching import BoundedCache
from costwarden.ledger.billing import stream_records
from costwarden.ledger.record_rows import ROW_FIELDS, stream_rows, tags_decoder
from costwarden.records import StoredRecord
from costwarden.reports.filters import RecordFilter
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


# the rows' fields are the file's columns, but for the time's and cost's two forms
_FILE_ORDER = ("id", "ts_us", *RECORD_COLUMNS[2:4], "user_id", *RECORD_COLUMNS[5:15])
assert (*_FILE_ORDER, "cost_nanos", *RECORD_COLUMNS[17:]) == ROW_FIELDS


def write_ledger_csv(
    ledger: object,
    out: IO[str],
    *,
    since_us: int | None = None,
    until_us: int | None = None,
    where: RecordFilter | None = None,
    timezone: str = "UTC",
    progress: Progress | None = None,
) -> int:
    """The ledger's records of ``[since_us, until_us)`` that ``where`` keeps, as
    :func:`write_records_csv` writes them (the same bytes); return how many were written.

    Rows go straight from the ledger's batches to the file where the ledger hands them over
    (the SQL ledgers) and no filter is set; otherwise the records stream through
    :func:`write_records_csv`. Memory stays bounded by one batch either way."""
    batches = stream_rows(ledger, since_us, until_us)
    if batches is None or (where is not None and not where.empty):
        records = stream_records(ledger, since_us, until_us)
        if where is not None:
            records = where.apply(records)
        return write_records_csv(records, out, timezone=timezone, progress=progress)
    iso = LocalClock(timezone).iso
    decode = tags_decoder()
    joined: BoundedCache[str | None, str] = BoundedCache(4096)

    def tag_text(stored: str | None) -> str:
        text = joined.get(stored)
        if text is None:
            text = "|".join(decode(stored))
            joined.put(stored, text)
        return text

    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(RECORD_COLUMNS)
    n = 0
    for rows in batches:
        writer.writerows(
            [
                (
                    r[0],
                    iso(r[1]),
                    *r[2:8],
                    tag_text(r[8]),
                    *r[9:15],
                    usd_text(r[15]),
                    *r[15:18],
                    "true" if r[18] else "false",
                    r[19],
                )
                for r in rows
            ]
        )
        n += len(rows)
        if progress is not None:
            progress(len(rows))
    return n
