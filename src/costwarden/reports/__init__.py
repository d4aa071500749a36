"""Spend reports: summaries and raw records as CSV, JSON and Excel files.

Why the care with sums: a report total is what someone reconciles against an invoice. Every
amount is summed as integer nano-USD and written as an exact decimal (``1.000000000``), never
through a float; 10,000 records of $0.0001 total exactly $1. Spreadsheet cells are numbers (so
they chart) and carry the exact integer nano-USD in a column beside them.

- :mod:`~costwarden.reports.summary`: :func:`build_report` (one grouping) and :class:`Cube`
  (every grouping from one pass); by user, team, model, key, tag, day, week, month, endpoint,
  provider, in any time zone.
- :mod:`~costwarden.reports.csv`, :mod:`~costwarden.reports.json`: a report's file; the raw
  records as CSV, streamed (:func:`write_records_csv`; :func:`write_ledger_csv` straight from
  a ledger's rows).
- :mod:`~costwarden.reports.xlsx`: :func:`write_workbook` (summary sheet and charts, a sheet per
  grouping, the raw records in bounded memory) and :func:`write_xlsx` (one report).
- :mod:`~costwarden.reports.filters`: :class:`RecordFilter`, which records a report covers.
"""

from __future__ import annotations

from costwarden.reports.csv import write_csv, write_ledger_csv, write_records_csv
from costwarden.reports.filters import RecordFilter
from costwarden.reports.json import write_json
from costwarden.reports.records import (
    RECORD_COLUMNS,
    TOKEN_FIELDS,
    LocalClock,
    record_to_dict,
    usd_text,
)
from costwarden.reports.summary import (
    COLUMNS,
    GROUP_BY,
    JSON_SCHEMA,
    NONE_LABEL,
    PERIODS,
    TOTAL_LABEL,
    Cube,
    Report,
    ReportRow,
    build_report,
)
from costwarden.reports.xlsx import WORKBOOK_GROUPS, write_workbook, write_xlsx

__all__ = [
    "COLUMNS",
    "GROUP_BY",
    "JSON_SCHEMA",
    "NONE_LABEL",
    "PERIODS",
    "RECORD_COLUMNS",
    "TOKEN_FIELDS",
    "TOTAL_LABEL",
    "WORKBOOK_GROUPS",
    "Cube",
    "LocalClock",
    "RecordFilter",
    "Report",
    "ReportRow",
    "build_report",
    "record_to_dict",
    "usd_text",
    "write_csv",
    "write_json",
    "write_ledger_csv",
    "write_records_csv",
    "write_workbook",
    "write_xlsx",
]
