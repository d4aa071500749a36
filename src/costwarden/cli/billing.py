"""``costwarden import`` (usage files and provider bills into the ledger) and the
``report --vs-billed`` comparison."""

from __future__ import annotations

import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from costwarden import billing, reports
from costwarden.cli.base import (
    JsonOpt,
    app,
    fail,
    handles_errors,
    money_row,
    print_json,
    print_table,
    progress_bar,
    state,
    to_us,
)
from costwarden.ledger.billing import BillingLedger, stream_records


@app.command("import")
@handles_errors
def import_file(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Argument(help="Usage (JSONL/CSV) or bill files.")],
    fmt: Annotated[
        str,
        typer.Option(
            "--format", "-f", help=f"One of {', '.join(billing.FORMATS)} (auto: by content)."
        ),
    ] = "auto",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Read and check the files; store nothing.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Bring usage records or a provider's bill into the ledger.

    Usage (``usage-jsonl``, ``usage-csv``: another tracker's log, or ``records --format csv``)
    is recorded as spend, in the periods of its own timestamps. Bills (OpenAI's costs or usage
    API pages and costs CSV, Anthropic's cost or usage report: see docs/reports.md) are kept
    as bill lines for ``report --vs-billed``; importing a bill again replaces its lines. Every
    file is read and checked before anything is stored.
    """
    if fmt not in billing.FORMATS:
        raise typer.BadParameter(
            f"{fmt!r} is not one of {', '.join(billing.FORMATS)}", param_hint="--format"
        )
    st = state(ctx)
    catalog = st.config.build_catalog()
    now = time.time()
    parsed = [(p, billing.read_import(p, fmt, catalog=catalog, imported_at=now)) for p in files]
    summary: list[dict[str, Any]] = []
    manager = None
    for path, got in parsed:
        item: dict[str, Any] = {"file": str(path), "format": got.format}
        if got.lines:
            item["bill_lines"] = len(got.lines)
            item["billed_usd"] = reports.usd_text(sum(x.cost_nanos for x in got.lines))
            if not dry_run:
                ledger = st.ledger()
                if not isinstance(ledger, BillingLedger):
                    raise fail(f"the ledger {ledger.url} cannot keep bills (no put_bill_lines)")
                ledger.put_bill_lines(got.lines)
        else:
            item["records"] = len(got.records)
            if not dry_run and got.records:
                manager = manager or st.manager()
                with progress_bar(f"Importing {path.name}", len(got.records)) as advance:
                    stored = 0
                    for rec in got.records:
                        stored += manager.record_spend(rec).cost_nanos
                        advance(1)
                item["recorded_usd"] = reports.usd_text(stored)
        summary.append(item)
    if as_json:
        print_json({"dry_run": dry_run, "files": summary})
        return
    verb = "would import" if dry_run else "imported"
    for item in summary:
        if "bill_lines" in item:
            what = f"{item['bill_lines']} bill lines, ${item['billed_usd']} billed"
        else:
            what = f"{item['records']} usage records"
            if "recorded_usd" in item:
                what += f", ${item['recorded_usd']} recorded"
        typer.echo(f"{verb} {item['file']} ({item['format']}): {what}")


def vs_billed_report(
    ledger: Any,
    start: datetime | None,
    end: datetime | None,
    wanted: reports.RecordFilter,
    fmt: str,
    output: Path | None,
) -> None:
    """Tracked against billed per UTC day and model (see billing/compare.py)."""
    if not isinstance(ledger, BillingLedger):
        raise fail(f"the ledger {ledger.url} keeps no bills")
    lines = ledger.bill_lines(to_us(start), to_us(end))
    if not lines:
        raise fail(
            "no provider bill imported for this period: run `costwarden import FILE` with an "
            "OpenAI or Anthropic cost export first (docs/reports.md)"
        )
    providers = sorted({x.provider for x in lines})
    records = wanted.apply(stream_records(ledger, to_us(start), to_us(end)))
    rows = billing.compare(records, lines, providers=providers)
    tracked = sum(r.tracked_nanos for r in rows)
    billed = sum(r.billed_nanos for r in rows)
    total: dict[str, Any] = {
        "tracked_usd": reports.usd_text(tracked),
        "billed_usd": reports.usd_text(billed),
        "difference_usd": reports.usd_text(billed - tracked),
        "tracked_nanos": tracked,
        "billed_nanos": billed,
        "difference_nanos": billed - tracked,
    }
    doc: dict[str, Any] = {
        "providers": providers,
        "days": "UTC",
        "rows": [r.to_dict() for r in rows],
        "total": total,
    }
    if fmt == "json":
        if output is None:
            print_json(doc)
        else:
            import json

            output.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        return
    if fmt == "csv":
        import csv

        out = sys.stdout if output is None else output.open("w", encoding="utf-8", newline="")
        try:
            writer = csv.writer(out, lineterminator="\n")
            head = ["day", "model", "tracked_usd", "billed_usd", "difference_usd"]
            writer.writerow([*head, "tracked_nanos", "billed_nanos", "difference_nanos"])
            for r in rows:
                d = r.to_dict()
                writer.writerow(
                    [d[k] for k in (*head, "tracked_nanos", "billed_nanos")]
                    + [d["difference_nanos"]]
                )
            t = total
            writer.writerow(
                [
                    "TOTAL",
                    "",
                    t["tracked_usd"],
                    t["billed_usd"],
                    t["difference_usd"],
                    tracked,
                    billed,
                    billed - tracked,
                ]
            )
        finally:
            if output is not None:
                out.close()
        return
    if fmt != "table":
        raise typer.BadParameter("--vs-billed writes a table, csv or json", param_hint="--format")
    table = Table(title=f"Tracked vs billed ({', '.join(providers)}; UTC days)", show_footer=True)
    foot = money_row(tracked, billed, billed - tracked)
    table.add_column("Day", footer="TOTAL")
    table.add_column("Model")
    table.add_column("Calls", justify="right")
    table.add_column("Tracked", justify="right", footer=foot[0])
    table.add_column("Billed", justify="right", footer=foot[1])
    table.add_column("Billed - tracked", justify="right", footer=foot[2])
    table.add_column("Tracked/billed", justify="right", footer=_ratio(tracked, billed))
    for r in rows:
        cells = money_row(r.tracked_nanos, r.billed_nanos, r.difference_nanos)
        table.add_row(
            r.day,
            r.model,
            f"{r.tracked_requests:,}",
            *cells,
            _ratio(r.tracked_nanos, r.billed_nanos),
        )
    print_table(table)


def _ratio(tracked: int, billed: int) -> str:
    return "-" if not billed else f"{tracked * 100 / billed:.1f}%"
