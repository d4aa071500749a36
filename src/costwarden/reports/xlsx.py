"""Excel workbooks: a summary sheet with native charts, a sheet per grouping, the raw records.

Layout of :func:`write_workbook`: "Summary" (the period, zone, scope and totals; spend per day
and share by model, each a small table with a native Excel chart over it), one "By <group>"
sheet per grouping (typed, formatted columns, frozen header, autofilter, a bold ``TOTAL`` row
with the exact total), then "Records" (one row per record; past Excel's 1,048,576 rows a
"Records 2" sheet, and so on).

Why the records sheet is written by hand: XlsxWriter's ``constant_memory`` mode takes about
200 s for a million records of 21 columns here (its per-cell bookkeeping), and without that
mode it keeps every cell in memory. The records sheet is plain ``sheetData`` XML, streamed
straight into the zip member while the same pass sums the records for the summary sheets
(about 10x faster, memory bounded by one batch); XlsxWriter writes everything else, with its
chart caches intact, into a side file whose parts are then copied in. The cell styles the hand
written sheet points at are XlsxWriter formats whose index is fixed up front
(``Format._get_xf_index``, tested by reading the file back with openpyxl).

Money cells are numbers (so charts and sums work) formatted as dollars; every sheet also
carries the exact integer ``cost_nanos``, and the totals are exact values, not ``SUM()``
formulas of floats. Needs the optional ``xlsxwriter`` package (``costwarden[excel]``).
"""

from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any, Final
from xml.sax.saxutils import escape

from costwarden.errors import ConfigurationError, InvalidInputError
from costwarden.records import StoredRecord
from costwarden.reports.records import RECORD_COLUMNS, TOKEN_FIELDS, LocalClock
from costwarden.reports.summary import COLUMNS, Cube, Report, ReportRow

Progress = Callable[[int], None]
WORKBOOK_GROUPS: Final = (
    "day",
    "week",
    "month",
    "model",
    "user",
    "team",
    "key",
    "tag",
    "endpoint",
    "provider",
)
MAX_ROWS: Final = 1_048_576  # Excel's rows per sheet, the header included
GROUP_HEADER: Final = (
    "Calls",
    "Input tokens",
    "Output tokens",
    "Cache read tokens",
    "Cache write tokens",
    "Reasoning tokens",
    "Cost (USD)",
    "Share",
    "Cost (nano-USD)",
)
MONEY: Final = "$#,##0.000000"
_EVERY: Final = 10_000
_BAD_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_LETTERS: Final = tuple(chr(ord("A") + i) for i in range(len(RECORD_COLUMNS)))


def _xlsxwriter() -> Any:
    try:
        import xlsxwriter
    except ImportError:
        raise ConfigurationError(
            "XLSX reports need the xlsxwriter package: pip install 'costwarden[excel]' "
            "(or choose --format csv)"
        ) from None
    return xlsxwriter


class _Styles:
    """The workbook's formats, each with its style index fixed now (the hand-written sheet
    refers to them by number)."""

    def __init__(self, wb: Any) -> None:
        self.bold = wb.add_format({"bold": True})
        self.header = wb.add_format({"bold": True, "bottom": 1, "text_wrap": True})
        self.title = wb.add_format({"bold": True, "font_size": 14})
        self.money = wb.add_format({"num_format": MONEY})
        self.bold_money = wb.add_format({"bold": True, "num_format": MONEY})
        self.integer = wb.add_format({"num_format": "#,##0"})
        self.bold_integer = wb.add_format({"bold": True, "num_format": "#,##0"})
        self.exact = wb.add_format({"num_format": "0"})
        self.bold_exact = wb.add_format({"bold": True, "num_format": "0"})
        self.share = wb.add_format({"num_format": "0.0%"})
        self.bold_share = wb.add_format({"bold": True, "num_format": "0.0%"})
        self.date = wb.add_format({"num_format": "yyyy-mm-dd"})
        self.stamp = wb.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        self.decimal = wb.add_format({"num_format": "0.0"})
        self.wrap = wb.add_format({"text_wrap": True, "valign": "top"})
        for fmt in vars(self).values():
            fmt._get_xf_index()  # fixed now: the records sheet's XML names these numbers


# -- the records sheet, by hand -----------------------------------------------------------------
def _text(col: str, row: int, value: str | None) -> str:
    if value is None:
        return ""
    if _BAD_XML.search(value):
        value = _BAD_XML.sub("\ufffd", value)
    space = ' xml:space="preserve"' if value != value.strip() else ""
    return f'<c r="{col}{row}" t="inlineStr"><is><t{space}>{escape(value)}</t></is></c>'


_WIDTHS: Final = (10, 20, 24, 12, 16, 14, 14, 14, 16, 20, 12, 12, 12, 12, 12, 14, 16, 10, 8, 9, 14)


class _RecordsSheets:
    """Streams records into ``xl/worksheets/sheetN.xml`` members of the final zip."""

    def __init__(
        self, zf: zipfile.ZipFile, first_sheet: int, styles: _Styles, clock: LocalClock
    ) -> None:
        self.zf, self.first_sheet, self.clock = zf, first_sheet, clock
        self.s = {
            name: getattr(styles, name)._get_xf_index()
            for name in ("header", "stamp", "integer", "money", "exact", "decimal")
        }
        self.sheets: list[int] = []  # data rows of each sheet
        self._out: IO[bytes] | None = None
        self._row = 0
        self._buffer: list[str] = []

    def open_sheet(self) -> None:
        self._close()
        number = self.first_sheet + len(self.sheets)
        self.sheets.append(0)
        self._out = self.zf.open(f"xl/worksheets/sheet{number}.xml", "w")
        cols = "".join(
            f'<col min="{i}" max="{i}" width="{w}" customWidth="1"/>'
            for i, w in enumerate(_WIDTHS, start=1)
        )
        header = "".join(
            f'<c r="{c}1" t="inlineStr" s="{self.s["header"]}"><is><t>{name}</t></is></c>'
            for c, name in zip(_LETTERS, RECORD_COLUMNS, strict=True)
        )
        self._out.write(
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
            'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
            '<sheetViews><sheetView workbookViewId="0"><pane ySplit="1" topLeftCell="A2" '
            'activePane="bottomLeft" state="frozen"/><selection pane="bottomLeft"/>'
            '</sheetView></sheetViews><sheetFormatPr defaultRowHeight="15"/>'
            f'<cols>{cols}</cols><sheetData><row r="1">{header}</row>'.encode()
        )
        self._row = 1

    def _flush(self) -> None:
        if self._buffer and self._out is not None:
            self._out.write("".join(self._buffer).encode())
            self._buffer.clear()

    def _close(self) -> None:
        if self._out is None:
            return
        self._flush()
        last = f"{_LETTERS[-1]}{self._row}"
        self._out.write(
            f'</sheetData><autoFilter ref="A1:{last}"/><pageMargins left="0.7" right="0.7" '
            'top="0.75" bottom="0.75" header="0.3" footer="0.3"/></worksheet>'.encode()
        )
        self._out.close()
        self._out = None

    def write(self, r: StoredRecord) -> None:
        if self._out is None or self._row >= MAX_ROWS:
            self.open_sheet()
        self._row += 1
        self.sheets[-1] += 1
        n, s = self._row, self.s
        tokens = s["integer"]
        latency = (
            ""
            if r.latency_ms is None
            else f'<c r="R{n}" s="{s["decimal"]}"><v>{r.latency_ms!r}</v></c>'
        )
        self._buffer.append(
            f'<row r="{n}"><c r="A{n}"><v>{r.id}</v></c>'
            f'<c r="B{n}" s="{s["stamp"]}"><v>{self.clock.excel(r.ts_us)!r}</v></c>'
            f"{_text('C', n, r.model)}{_text('D', n, r.provider)}{_text('E', n, r.user_id)}"
            f"{_text('F', n, r.team)}{_text('G', n, r.key)}{_text('H', n, r.endpoint)}"
            f"{_text('I', n, '|'.join(r.tags) if r.tags else None)}{_text('J', n, r.request_id)}"
            f'<c r="K{n}" s="{tokens}"><v>{r.input_tokens}</v></c>'
            f'<c r="L{n}" s="{tokens}"><v>{r.output_tokens}</v></c>'
            f'<c r="M{n}" s="{tokens}"><v>{r.cache_read_tokens}</v></c>'
            f'<c r="N{n}" s="{tokens}"><v>{r.cache_write_tokens}</v></c>'
            f'<c r="O{n}" s="{tokens}"><v>{r.reasoning_tokens}</v></c>'
            f'<c r="P{n}" s="{s["money"]}"><v>{r.cost_nanos / 1e9!r}</v></c>'
            f'<c r="Q{n}" s="{s["exact"]}"><v>{r.cost_nanos}</v></c>'
            f"{latency}{_text('S', n, r.status)}"
            f'<c r="T{n}" t="b"><v>{1 if r.estimated else 0}</v></c>'
            f"{_text('U', n, r.price_source)}</row>"
        )
        if len(self._buffer) >= 2_000:
            self._flush()

    def finish(self) -> list[int]:
        self._close()
        return self.sheets


# -- the XlsxWriter sheets ----------------------------------------------------------------------
def _label_cell(sheet: Any, row: int, by: str, label: str, styles: _Styles) -> None:
    if by == "day" and len(label) == 10 and label[4] == "-":
        day = date.fromisoformat(label)
        sheet.write_datetime(row, 0, datetime(day.year, day.month, day.day), styles.date)
    else:
        sheet.write_string(row, 0, label)


def _group_sheet(wb: Any, name: str, report: Report, styles: _Styles) -> Any:
    sheet = wb.add_worksheet(name)
    sheet.write_row(0, 0, [report.by, *GROUP_HEADER], styles.header)
    total = report.total
    lines = [*report.rows, total]
    for r, row in enumerate(lines, start=1):
        is_total = row is total
        if is_total:
            sheet.write_string(r, 0, row.group, styles.bold)
        else:
            _label_cell(sheet, r, report.by, row.group, styles)
        ints = styles.bold_integer if is_total else styles.integer
        sheet.write_number(r, 1, row.requests, ints)
        for c, field in enumerate(TOKEN_FIELDS, start=2):
            sheet.write_number(r, c, getattr(row, field), ints)
        sheet.write_number(
            r, 7, row.cost_nanos / 1e9, styles.bold_money if is_total else styles.money
        )
        if total.cost_nanos:
            share = row.cost_nanos / total.cost_nanos
            sheet.write_number(r, 8, share, styles.bold_share if is_total else styles.share)
        sheet.write_number(r, 9, row.cost_nanos, styles.bold_exact if is_total else styles.exact)
    width = max([len(report.by), 10, *(len(x.group) for x in lines)]) + 2
    sheet.set_column(0, 0, min(width, 80))
    sheet.set_column(1, 6, 13)
    sheet.set_column(7, 7, 16)
    sheet.set_column(8, 8, 8)
    sheet.set_column(9, 9, 17)
    sheet.set_row(0, 30)
    sheet.freeze_panes(1, 1)
    sheet.autofilter(0, 0, max(len(report.rows), 1), len(GROUP_HEADER))
    note = len(lines) + 2
    sheet.write_string(
        note,
        0,
        "Rows by tag overlap (a record with two tags is in both); the total counts each "
        "record once."
        if report.rows_overlap
        else "Cost (nano-USD) is exact (1e-9 USD); the TOTAL row is the exact total.",
    )
    return sheet


def _summary_sheet(
    wb: Any,
    sheet: Any,
    cube: Cube,
    by_day: Report,
    by_model: Report,
    scope: str,
    styles: _Styles,
) -> None:
    span = " to ".join(
        "(open)" if t is None else t.isoformat(timespec="minutes") for t in (cube.since, cube.until)
    )
    total = by_day.total
    sheet.write_string(0, 0, "costwarden spend report", styles.title)
    facts: list[tuple[str, Any, Any]] = [
        ("Period", span, None),
        ("Time zone", cube.timezone, None),
        ("Scope", scope, None),
        ("Generated", by_day.generated_at.isoformat(timespec="seconds"), None),
        ("Calls", total.requests, styles.integer),
        ("Input tokens", total.input_tokens, styles.integer),
        ("Output tokens", total.output_tokens, styles.integer),
        ("Total cost (USD)", total.cost_nanos / 1e9, styles.bold_money),
        ("Total cost (nano-USD, exact)", total.cost_nanos, styles.exact),
    ]
    for r, (label, value, fmt) in enumerate(facts, start=2):
        sheet.write_string(r, 0, label, styles.bold)
        if isinstance(value, str):
            sheet.write_string(r, 1, value)
        else:
            sheet.write_number(r, 1, value, fmt)
    top = len(facts) + 4
    sheet.write_row(top, 0, ["Day", "Cost (USD)", "Calls"], styles.header)
    for r, row in enumerate(by_day.rows, start=top + 1):
        _label_cell(sheet, r, "day", row.group, styles)
        sheet.write_number(r, 1, row.cost_nanos / 1e9, styles.money)
        sheet.write_number(r, 2, row.requests, styles.integer)
    models = list(by_model.rows[:9])
    rest = by_model.rows[9:]
    shares = [(m.group, m.cost_nanos) for m in models]
    if rest:
        shares.append((f"other ({len(rest)} models)", sum(m.cost_nanos for m in rest)))
    sheet.write_row(top, 4, ["Model", "Cost (USD)", "Share"], styles.header)
    for r, (name, nanos) in enumerate(shares, start=top + 1):
        sheet.write_string(r, 4, name)
        sheet.write_number(r, 5, nanos / 1e9, styles.money)
        if total.cost_nanos:
            sheet.write_number(r, 6, nanos / total.cost_nanos, styles.share)
    sheet.set_column(0, 0, 28)
    sheet.set_column(1, 1, 22)
    sheet.set_column(2, 2, 10)
    sheet.set_column(4, 4, max([24, *(len(n) + 2 for n, _ in shares)]))
    sheet.set_column(5, 6, 14)
    if by_day.rows:
        chart = wb.add_chart({"type": "column"})
        last = top + len(by_day.rows)
        chart.add_series(
            {
                "name": "Spend per day",
                "categories": ["Summary", top + 1, 0, last, 0],
                "values": ["Summary", top + 1, 1, last, 1],
            }
        )
        chart.set_title({"name": f"Spend per day ({cube.timezone})"})
        chart.set_legend({"none": True})
        chart.set_y_axis({"num_format": "$#,##0.00"})
        chart.set_x_axis({"date_axis": True, "num_format": "mm-dd"})
        sheet.insert_chart(1, 8, chart, {"x_scale": 1.3, "y_scale": 1.1})
    if shares:
        pie = wb.add_chart({"type": "pie"})
        last = top + len(shares)
        pie.add_series(
            {
                "name": "Share by model",
                "categories": ["Summary", top + 1, 4, last, 4],
                "values": ["Summary", top + 1, 5, last, 5],
                "data_labels": {"percentage": True},
            }
        )
        pie.set_title({"name": "Share by model"})
        sheet.insert_chart(19, 8, pie, {"x_scale": 1.3, "y_scale": 1.2})
    sheet.activate()


def write_workbook(
    path: str | Path,
    records: Iterable[StoredRecord],
    *,
    timezone: str = "UTC",
    since: datetime | None = None,
    until: datetime | None = None,
    scope: str = "all records",
    groupings: Sequence[str] = WORKBOOK_GROUPS,
    include_records: bool = True,
    progress: Progress | None = None,
) -> Cube:
    """Write the workbook described in the module doc in one pass over ``records`` (pass a
    ledger's ``iter_records()`` to export any size in bounded memory); return the sums.

    The file appears whole or not at all (written beside it, then renamed).
    """
    xlsxwriter = _xlsxwriter()
    groupings = list(dict.fromkeys(groupings))
    cube = Cube(since=since, until=until, timezone=timezone)  # a bad zone fails here
    for by in groupings:
        cube.report(by)  # a bad grouping fails before any work
    target = Path(path)
    part = target.with_name(f".{target.name}.part")
    book = target.with_name(f".{target.name}.book")
    try:
        wb = xlsxwriter.Workbook(str(book), {"strings_to_numbers": False})
        styles = _Styles(wb)
        with zipfile.ZipFile(part, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as final:
            first_records_sheet = 2 + len(groupings)
            sheets = (
                _RecordsSheets(final, first_records_sheet, styles, LocalClock(timezone))
                if include_records
                else None
            )
            n = 0
            for n, rec in enumerate(records, start=1):
                cube.add(rec)
                if sheets is not None:
                    sheets.write(rec)
                if progress is not None and n % _EVERY == 0:
                    progress(_EVERY)
            counts: list[int] = []
            if sheets is not None:
                counts = sheets.finish()
                if not counts:  # no record: still a sheet with the header
                    sheets.open_sheet()
                    counts = sheets.finish()
            if progress is not None and n % _EVERY:
                progress(n % _EVERY)
            summary = wb.add_worksheet("Summary")
            reports = {by: cube.report(by) for by in {*groupings, "day", "model"}}
            for by in groupings:
                _group_sheet(wb, f"By {by}", reports[by], styles)
            for i, rows in enumerate(counts):
                sheet = wb.add_worksheet("Records" if i == 0 else f"Records {i + 1}")
                sheet.autofilter(0, 0, rows, len(RECORD_COLUMNS) - 1)  # the defined name
            _summary_sheet(wb, summary, cube, reports["day"], reports["model"], scope, styles)
            wb.close()
            replaced = {
                f"xl/worksheets/sheet{first_records_sheet + i}.xml" for i in range(len(counts))
            }
            with zipfile.ZipFile(book) as side:
                for info in side.infolist():
                    if info.filename not in replaced:
                        final.writestr(info, side.read(info.filename), zipfile.ZIP_DEFLATED, 6)
        os.replace(part, target)
    finally:
        for leftover in (part, book):
            leftover.unlink(missing_ok=True)
    return cube


# -- one grouped report -------------------------------------------------------------------------
def write_xlsx(report: Report, path: str | Path) -> None:
    """One grouped report as a workbook: the table (typed, frozen header, autofilter, bold
    exact total) and a sheet "About" that records the range, zone and schema."""
    xlsxwriter = _xlsxwriter()
    workbook = xlsxwriter.Workbook(str(path))
    try:
        styles = _Styles(workbook)
        sheet = workbook.add_worksheet(f"Spend by {report.by}")
        sheet.write_row(0, 0, [report.by, *COLUMNS], styles.header)
        lines: list[ReportRow] = [*report.rows, report.total]
        for r, row in enumerate(lines, start=1):
            is_total = row is report.total
            ints = styles.bold_integer if is_total else styles.integer
            sheet.write_string(r, 0, row.group, styles.bold if is_total else None)
            sheet.write_row(r, 1, [row.requests, *(getattr(row, n) for n in TOKEN_FIELDS)], ints)
            sheet.write_number(
                r,
                2 + len(TOKEN_FIELDS),
                float(row.cost_usd),
                styles.bold_money if is_total else styles.money,
            )
            sheet.write_number(
                r,
                3 + len(TOKEN_FIELDS),
                row.cost_nanos,
                styles.bold_exact if is_total else styles.exact,
            )
        sheet.set_column(0, 0, min(max([len(report.by), *(len(x.group) for x in lines)]) + 2, 80))
        sheet.set_column(1, len(COLUMNS), 16)
        sheet.freeze_panes(1, 0)
        sheet.autofilter(0, 0, max(len(report.rows), 1), len(COLUMNS))
        about = workbook.add_worksheet("About")
        facts = report.to_dict()
        for r, key in enumerate(
            ("schema", "by", "since", "until", "timezone", "currency", "generated_at")
        ):
            about.write_string(r, 0, key, styles.bold)
            about.write_string(r, 1, str(facts[key] if facts[key] is not None else "(open)"))
        about.write_string(7, 0, "note", styles.bold)
        about.write_string(
            7,
            1,
            "cost_nanos is exact (1e-9 USD); rows by tag may overlap, the total counts each "
            "record once",
        )
        about.set_column(0, 1, 24)
    finally:
        workbook.close()


def check_groupings(groupings: Iterable[str]) -> list[str]:
    """Check each requested workbook sheet grouping is one the workbook can write; an unknown one is
    an InvalidInputError.
    """
    out = list(groupings)
    for by in out:
        if by not in WORKBOOK_GROUPS:
            raise InvalidInputError(
                f"a workbook groups by {', '.join(WORKBOOK_GROUPS)}, not {by!r}"
            )
    return out
