"""Commands about spend: ``status``, ``records``, ``report``, ``forecast``, ``reset``."""

from __future__ import annotations

import enum
import json
import sys
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from costwarden import reports
from costwarden.budget import Scope
from costwarden.budget_sources import in_force
from costwarden.cli.base import (
    JsonOpt,
    TzOpt,
    app,
    handles_errors,
    local_time,
    money,
    money_row,
    money_usd,
    print_json,
    print_table,
    progress_bar,
    state,
    to_us,
    zone_option,
)
from costwarden.cli.options import ALL_TIME, NO_NAMES, ScopeNames, TimeRange, option_groups
from costwarden.errors import InvalidInputError
from costwarden.ledger import InspectableLedger
from costwarden.ledger.billing import stream_records
from costwarden.money import Nanos, nanos_to_usd, usd_to_nanos


@app.command()
@handles_errors
@option_groups
def status(ctx: typer.Context, names: ScopeNames = NO_NAMES, as_json: JsonOpt = False) -> None:
    """Spend, limits, reserved, remaining and reset times of one scope (default: global)."""
    scope_kw, scope = names.one()
    st = state(ctx)
    manager = st.manager()
    info = manager.status(**scope_kw)
    source = in_force({b.scope: b for b in manager.budgets()}, Scope.parse(scope))
    if as_json:
        doc = info.as_dict()
        doc["budget_source"] = None if source is None else source.source
        doc["budget_scope"] = None if source is None else source.scope
        print_json(doc)
        return
    zone = info.timezone
    table = Table(title=f"Budget status: {scope} ({zone})")
    for name in ("Period", "Spent", "Reserved", "Limit", "Remaining", "Used", "Calls", "Resets"):
        table.add_column(name, justify="left" if name in ("Period", "Resets") else "right")
    for p in (info.daily, info.weekly, info.monthly, *sorted(info.rolling, key=lambda r: r.key)):
        used = p.percent_used
        table.add_row(
            p.key.replace("rolling_", "rolling "),
            *money_row(p.spent_nanos, p.reserved_nanos, p.limit_nanos, p.remaining_nanos),
            "-" if not p.limit_nanos or used is None else f"{used:.1f}%",
            "-" if p.requests is None else str(p.requests),
            "-" if p.resets_at is None else local_time(p.resets_at.timestamp(), zone),
        )
    print_table(table)
    notes = [f"per-request limit {money(info.per_request_limit_nanos)}"]
    notes.append(f"most-used limit at {info.percent_used:.1f}%")
    if source is not None:
        notes.append(f"budget {source.scope} from {source.source}")
    if not info.has_budget:
        notes = [f"no budget applies to {scope}: spend is tracked, nothing is limited"]
    typer.echo("; ".join(notes))


class RecordsFormat(enum.StrEnum):
    """The output formats ``costwarden records`` can write."""

    table = "table"
    csv = "csv"
    json = "json"


def _count(ledger: Any) -> int | None:
    """How many records the ledger holds (a progress bar's total), where it can say."""
    return ledger.count_records() if isinstance(ledger, InspectableLedger) else None


@app.command()
@handles_errors
@option_groups
def records(
    ctx: typer.Context,
    span: TimeRange = ALL_TIME,
    names: ScopeNames = NO_NAMES,
    limit: Annotated[
        int | None,
        typer.Option("--limit", "-n", min=1, help="Show the latest N (table default 50)."),
    ] = None,
    fmt: Annotated[
        RecordsFormat, typer.Option("--format", "-f", help="table, csv (every match) or json.")
    ] = RecordsFormat.table,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to a file.")] = None,
    tz: TzOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Usage records, latest last (filters combine). ``--format csv`` streams every matching
    record (or the latest ``--limit``) in constant memory."""
    if as_json:
        fmt = RecordsFormat.json
    st = state(ctx)
    zone = zone_option(tz, st.config.timezone)
    start, end = span.bounds(zone)
    wanted = reports.RecordFilter(**names.given())
    ledger = st.ledger()
    if fmt is RecordsFormat.csv and limit is None:
        total = None if start or end or not wanted.empty else _count(ledger)
        export = partial(
            reports.write_ledger_csv,
            ledger,
            since_us=to_us(start),
            until_us=to_us(end),
            where=wanted,
            timezone=zone,
        )
        if output is None:
            export(sys.stdout)
            return
        with (
            output.open("w", encoding="utf-8", newline="") as fh,
            progress_bar("Exporting records", total) as advance,
        ):
            n = export(fh, progress=advance)
        typer.echo(f"wrote {output} ({n:,} records)")
        return
    if output is not None and fmt is RecordsFormat.table:
        raise typer.BadParameter("--output needs --format csv or json", param_hint="--output")
    rows = list(wanted.apply(stream_records(ledger, to_us(start), to_us(end))))
    matched = len(rows)
    rows = rows[-(limit or 50) :] if fmt is RecordsFormat.table or limit else rows
    if fmt is RecordsFormat.csv:
        out = sys.stdout if output is None else output.open("w", encoding="utf-8", newline="")
        try:
            reports.write_records_csv(rows, out, timezone=zone)
        finally:
            if output is not None:
                out.close()
        return
    if fmt is RecordsFormat.json:
        doc = [reports.record_to_dict(r, zone) for r in rows]
        if output is None:
            print_json(doc)
        else:
            output.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        return
    table = Table(title=f"Records ({len(rows)} of {matched} matching, times in {zone})")
    for name in ("Time", "Model", "User", "Team", "Endpoint/tags", "In", "Out", "Cost"):
        table.add_column(name, justify="right" if name in ("In", "Out", "Cost") else "left")
    for r in rows:
        where = ", ".join([*([r.endpoint] if r.endpoint else []), *r.tags])
        cost = money(r.cost_nanos) + ("*" if r.price_source.startswith("fallback") else "")
        table.add_row(
            local_time(r.ts_us / 1e6, zone),
            r.model,
            r.user_id or "-",
            r.team or "-",
            where or "-",
            f"{r.input_tokens:,}",
            f"{r.output_tokens:,}",
            cost,
        )
    print_table(table)
    if any(r.price_source.startswith("fallback") for r in rows):
        typer.echo("* priced at the fallback rate: the model had no known price")


class GroupBy(enum.StrEnum):
    """What ``costwarden spend`` groups its totals by."""

    user = "user"
    team = "team"
    model = "model"
    key = "key"
    tag = "tag"
    day = "day"
    week = "week"
    month = "month"
    endpoint = "endpoint"
    provider = "provider"


class ReportFormat(enum.StrEnum):
    """The output formats ``costwarden report`` can write."""

    table = "table"
    csv = "csv"
    json = "json"
    xlsx = "xlsx"


@app.command()
@handles_errors
@option_groups
def report(
    ctx: typer.Context,
    span: TimeRange = ALL_TIME,
    by: Annotated[GroupBy, typer.Option("--by", "-b", help="Group spend by.")] = GroupBy.model,
    fmt: Annotated[ReportFormat, typer.Option("--format", "-f")] = ReportFormat.table,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to a file.")] = None,
    names: ScopeNames = NO_NAMES,
    tz: TzOpt = None,
    vs_billed: Annotated[
        bool,
        typer.Option(
            "--vs-billed", help="Tracked spend against imported provider bills, per day and model."
        ),
    ] = False,
    no_records: Annotated[
        bool, typer.Option("--no-records", help="XLSX: leave out the raw records sheet.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Spend grouped by user, team, model, key, tag, day, week, month, endpoint or provider
    (exact totals), over any period and scope; ``--format xlsx`` writes the whole workbook
    (summary and charts, a sheet per grouping, the records)."""
    if as_json:
        fmt = ReportFormat.json
    if fmt is ReportFormat.xlsx and output is None:
        raise typer.BadParameter("an XLSX report needs --output PATH", param_hint="--format")
    if fmt is ReportFormat.table and output is not None:
        raise typer.BadParameter("--output needs --format csv, json or xlsx")
    st = state(ctx)
    zone = zone_option(tz, st.config.timezone)
    start, end = span.bounds(zone)
    wanted = reports.RecordFilter(**names.given())
    ledger = st.ledger()
    if vs_billed:
        from costwarden.cli.billing import vs_billed_report

        vs_billed_report(ledger, start, end, wanted, fmt.value, output)
        return
    stream = wanted.apply(stream_records(ledger, to_us(start), to_us(end)))
    if fmt is ReportFormat.xlsx:
        assert output is not None
        total = None if start or end or not wanted.empty else _count(ledger)
        order = [str(by), *(g for g in reports.WORKBOOK_GROUPS if g != str(by))]
        with progress_bar("Writing workbook", total) as advance:
            cube = reports.write_workbook(
                output,
                stream,
                timezone=zone,
                since=start,
                until=end,
                scope=wanted.describe(),
                groupings=order,
                include_records=not no_records,
                progress=advance,
            )
        typer.echo(f"wrote {output} ({cube.requests:,} records, total {money(cube.cost_nanos)})")
        return
    result = reports.build_report(stream, str(by), since=start, until=end, timezone=zone)
    if fmt is ReportFormat.table:
        _report_table(result, wanted)
        return
    writer = reports.write_csv if fmt is ReportFormat.csv else reports.write_json
    if output is None:
        writer(result, sys.stdout)
        return
    with output.open("w", encoding="utf-8", newline="") as fh:
        writer(result, fh)
    typer.echo(f"wrote {output} ({len(result.rows)} rows, total {money(result.total.cost_nanos)})")


def _report_table(result: reports.Report, wanted: reports.RecordFilter) -> None:
    span = (
        "all time"
        if result.since is None and result.until is None
        else " to ".join(
            "..." if t is None else t.strftime("%Y-%m-%d %H:%M")
            for t in (result.since, result.until)
        )
    )
    scope = "" if wanted.empty else f", {wanted.describe()}"
    table = Table(
        title=f"Spend by {result.by} ({span}, {result.timezone}{scope})", show_footer=True
    )
    total = result.total
    table.add_column(result.by, footer=reports.TOTAL_LABEL)
    table.add_column("Calls", justify="right", footer=f"{total.requests:,}")
    table.add_column("Input", justify="right", footer=f"{total.input_tokens:,}")
    table.add_column("Output", justify="right", footer=f"{total.output_tokens:,}")
    table.add_column("Cost", justify="right", footer=money(total.cost_nanos))
    table.add_column("Share", justify="right", footer="100%" if total.cost_nanos else "-")
    for row in result.rows:
        table.add_row(
            row.group,
            f"{row.requests:,}",
            f"{row.input_tokens:,}",
            f"{row.output_tokens:,}",
            money(row.cost_nanos),
            _share(row.cost_nanos, total.cost_nanos),
        )
    print_table(table)
    if result.rows_overlap:
        typer.echo("a record with several tags is in several rows; the total counts it once")


def _share(part: Nanos, whole: Nanos) -> str:
    return "-" if not whole else f"{part * 100 / whole:.1f}%"


@app.command()
@handles_errors
def forecast(
    ctx: typer.Context,
    scope: Annotated[
        str, typer.Option("--scope", "-s", help="global, user:alice, team:eng...")
    ] = "global",
    as_json: JsonOpt = False,
) -> None:
    """Projected spend to the end of the day, week and month, and when limits run out."""
    from costwarden.forecast import forecast_scope

    try:
        parsed = Scope.parse(scope)
    except InvalidInputError as exc:
        raise typer.BadParameter(str(exc), param_hint="--scope") from None
    manager = state(ctx).manager()
    budget = manager.budget_for(parsed)  # None: no limit of its own to forecast against
    zone = (budget or manager.budget).timezone
    # Read-only: forecast_scope directly, so the CLI raises no forecast alerts.
    result = forecast_scope(manager.ledger, str(parsed), budget, datetime.now(UTC), timezone=zone)
    if as_json:
        print_json(result.to_dict())
        return
    table = Table(title=f"Forecast for {result.scope} ({result.method}, {zone})")
    for name in ("Period", "Spent", "Projected", "80% range", "Limit", "Runs out"):
        table.add_column(name, justify="left" if name in ("Period", "Runs out") else "right")
    for p in (result.day, result.week, result.month):
        runs_out = "exhausted" if p.exhausted else (p.runs_out_on or "-")
        spent, projected, low, high, limit = money_row(
            p.spent_nanos, p.projected_nanos, p.low_nanos, p.high_nanos, p.limit_nanos
        )
        table.add_row(p.period, spent, projected, f"{low}-{high}", limit, str(runs_out))
    print_table(table)
    typer.echo(result.summary)


class Period(enum.StrEnum):
    """The calendar period a command reports on."""

    daily = "daily"
    weekly = "weekly"
    monthly = "monthly"


@app.command()
@handles_errors
@option_groups
def reset(
    ctx: typer.Context,
    period: Annotated[Period, typer.Argument(help="daily, weekly or monthly")],
    names: ScopeNames = NO_NAMES,
    every: Annotated[
        bool, typer.Option("--all", help="Every scope with spend in the period, budgeted or not.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Start the period's count afresh: one scope, or by default every scope a budget covers
    (each with a budget of its own, and each covered by a default budget that has spend in
    the period). History is kept; each reset is recorded as a ledger event."""
    scope_kw, scope = names.one()
    if every and scope_kw:
        raise typer.BadParameter("--all resets every scope: name no scope with it")
    manager = state(ctx).manager()
    moved = manager.reset(period.value, "all" if every else None, **scope_kw)
    if scope_kw:
        target = scope
    else:
        target = "every scope with spend" if every else "every scope a budget covers"
    total = sum(usd_to_nanos(v) for v in moved.values())  # exact: floats of nano-USD
    out: dict[str, Any] = {
        "period": period.value,
        "scope": target,
        "baseline_usd": nanos_to_usd(total),
        "scopes": moved,
    }
    if as_json:
        print_json(out)
        return
    what = target if scope_kw else f"{len(moved)} scope{'s' if len(moved) != 1 else ''}"
    typer.echo(
        f"Reset the {period.value} count of {what}: {money(total)} of this period's spend no "
        "longer counts against its limit (records are kept)."
    )
    if not scope_kw:
        width = max(map(len, moved), default=0)
        for name, usd in moved.items():
            typer.echo(f"  {name.ljust(width)}  {money_usd(usd)}")
