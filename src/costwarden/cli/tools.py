"""Commands around the ledger: ``alerts``, ``recommend``, ``prices``, ``tokens``, ``demo``,
``config``."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from costwarden.alerts.history import delivery_to_dict
from costwarden.budget import Budget
from costwarden.cli.base import (
    JsonOpt,
    SinceOpt,
    app,
    budget_cells,
    command_group,
    fail,
    handles_errors,
    local_time,
    money,
    parse_when,
    print_json,
    print_table,
    state,
    to_us,
)
from costwarden.cli.price_list import list_prices, price_dict
from costwarden.errors import UnknownModelError

if TYPE_CHECKING:
    from costwarden.pricing import PriceCatalog

alerts_app = command_group(
    "alerts",
    "Alert delivery history (newest first); 'alerts test' sends a test alert.",
    no_args_is_help=False,
)


@alerts_app.callback(invoke_without_command=True)
@handles_errors
def alerts(
    ctx: typer.Context,
    since: SinceOpt = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="Show the latest N.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Alert delivery history (newest first): channel, status, attempts, last error."""
    if ctx.invoked_subcommand is not None:
        return
    st = state(ctx)
    zone = st.config.timezone
    start = parse_when(since, zone, option="--since")
    rows = st.ledger().deliveries(None if start is None else start.timestamp(), limit)
    if as_json:
        print_json([delivery_to_dict(d) for d in rows])
        return
    table = Table(title=f"Alert deliveries ({len(rows)}, times in {zone})")
    for name in ("Created", "Channel", "Status", "Tries", "Level", "Scope", "Message / error"):
        table.add_column(name, justify="right" if name == "Tries" else "left")
    for d in rows:
        info = delivery_to_dict(d)
        text = str(info["message"] or "")
        if d.last_error and d.status != "delivered":
            text += f" [error: {d.last_error}]"
        table.add_row(
            local_time(d.created_at, zone),
            d.channel,
            d.status,
            str(d.attempts),
            str(info["level"] or "-"),
            str(info["scope"] or "-"),
            text,
        )
    print_table(table)


@alerts_app.command("test")
@handles_errors
def alerts_test(
    ctx: typer.Context,
    channel: Annotated[
        str | None, typer.Option("--channel", help="Only this channel (its name).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Send a test alert through the configured channels now; exit 1 if any failed."""
    from costwarden.alerts.probe import probe_channels

    cfg = state(ctx).config
    channels = cfg.alert_channels()  # reads their secrets from the environment
    where = f"in {cfg.path}" if cfg.path is not None else "(no config file)"
    if not channels:
        raise fail(f"no alert channels configured {where}; add [[alerts.channels]] tables")
    if channel is not None:
        names = [c.name for c in channels]
        channels = [c for c in channels if c.name == channel]
        if not channels:
            raise fail(f"no alert channel named {channel!r} {where}; configured: {names}")
    results = probe_channels(channels)
    if as_json:
        print_json([{"channel": r.channel, "ok": r.ok, "error": r.error} for r in results])
    else:
        for r in results:
            typer.echo(
                f"{'ok' if r.ok else 'failed':<7} {r.channel}" + (f": {r.error}" if r.error else "")
            )
    failed = [r.channel for r in results if not r.ok]
    if failed:
        raise fail(f"{len(failed)} of {len(results)} alert channel(s) failed: {', '.join(failed)}")


@app.command()
@handles_errors
def recommend(
    ctx: typer.Context,
    since: Annotated[
        str, typer.Option("--since", help="History to learn from (default 30d).")
    ] = "30d",
    as_json: JsonOpt = False,
) -> None:
    """Cost-saving advice from usage history, with the monthly saving of each."""
    from costwarden.optimizer import CostOptimizer

    st = state(ctx)
    start = parse_when(since, st.config.timezone, option="--since")
    history = st.ledger().records(to_us(start), None)
    advice = CostOptimizer(st.config.build_catalog()).recommendations(history)
    total = sum(r.monthly_saving_nanos for r in advice)
    if as_json:
        print_json(
            {
                "since": None if start is None else start.isoformat(),
                "records": len(history),
                "monthly_saving_usd": str(Decimal(total).scaleb(-9)),
                "recommendations": [r.to_dict() for r in advice],
            }
        )
        return
    if not advice:
        typer.echo(f"No savings found in {len(history)} records since {since}.")
        return
    table = Table(title=f"Recommendations from {len(history)} records since {since}")
    table.add_column("Saving / month", justify="right")
    table.add_column("Kind")
    table.add_column("Advice")
    for r in advice:
        table.add_row(money(r.monthly_saving_nanos), r.kind, r.message)
    print_table(table)
    typer.echo(f"Total possible saving: {money(total)} per month")


def _rate_cells(row: Mapping[str, Any]) -> list[str]:
    """A price row's four per-million rates as table cells, input to cache write."""
    return [
        _rate(None if row[k] is None else Decimal(row[k]))
        for k in ("input_per_1m", "output_per_1m", "cache_read_per_1m", "cache_write_per_1m")
    ]


def _rate(value: Decimal | None) -> str:
    """``$2.50``, ``$0.075``: at least cents, never a trailing run of zeros."""
    if value is None:
        return "-"
    text = f"{value.normalize():f}"
    whole, _, frac = text.partition(".")
    return f"${whole}.{frac.ljust(2, '0')}"


@app.command()
@handles_errors
def prices(
    ctx: typer.Context,
    models: Annotated[
        list[str] | None,
        typer.Argument(
            help="Model names, e.g. gpt-4o claude-3-haiku; or 'update' to fetch a newer "
            "genai-prices snapshot."
        ),
    ] = None,
    provider: Annotated[
        str | None,
        typer.Option("--provider", "-p", help="The provider to price at, or to list."),
    ] = None,
    search: Annotated[
        str | None,
        typer.Option("--search", "-s", help="List models whose id contains this (or is near it)."),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, help="List at most N models (default 50).")
    ] = 50,
    source: Annotated[
        bool, typer.Option("--source", help="Say which price snapshot is in force, and its age.")
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait for `prices update`.")
    ] = 10.0,
    url: Annotated[
        str | None,
        typer.Option("--url", help="Where `prices update` fetches from (default: genai-prices')."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Resolved price per 1M tokens of each model and where it comes from.

    Without model names, lists the catalogue (custom prices and genai-prices'), filtered by
    ``--search`` and ``--provider``, at most ``--limit`` rows. ``prices update`` fetches
    genai-prices' published data (only when asked) and keeps it as the snapshot in force;
    ``prices --source`` says which snapshot that is and how old.
    """
    from costwarden.pricing import snapshot

    models = list(models or [])
    if models == ["update"]:
        updated = snapshot.update(timeout=timeout, url=url)
        if as_json:
            print_json({"updated": True, "source": _snapshot_dict(updated)})
        else:
            typer.echo(f"prices now from the {updated.describe()}")
        return
    listing = search is not None or not (models or source)
    if models and search is not None:
        raise typer.BadParameter("--search lists models: give it without model names")
    if listing:
        if source and not as_json:
            typer.echo(f"Prices from the {snapshot.info().describe()}.")
        _list(state(ctx).config.build_catalog(), search, provider, limit, as_json, source)
        return
    if source:
        current = snapshot.info()
        if as_json and not models:
            print_json({"source": _snapshot_dict(current)})
            return
        if not as_json:
            typer.echo(f"Prices from the {current.describe()}.")
        if not models:
            return
    catalog = state(ctx).config.build_catalog()
    found: list[dict[str, Any]] = []
    errors: list[str] = []
    for name in models:
        try:
            p = catalog.resolve(name, provider)
        except UnknownModelError as exc:
            errors.append(str(exc))
            continue
        found.append(price_dict(name, p))
    if as_json:
        extra = {"source": _snapshot_dict(snapshot.info())} if source else {}
        print_json({"prices": found, "errors": errors, **extra})
    elif found:
        table = Table(title="Prices (USD per 1M tokens)")
        for name in (
            "Model",
            "Resolved as",
            "Provider",
            "Source",
            "Input",
            "Output",
            "Cache rd",
            "Cache wr",
        ):
            table.add_column(
                name, justify="right" if name.startswith(("In", "Out", "Cache")) else "left"
            )
        for row in found:
            table.add_row(
                row["model"],
                row["resolved_as"],
                row["provider"] or "-",
                row["source"],
                *_rate_cells(row),
            )
        print_table(table)
    if errors:
        for message in errors[:-1]:
            typer.echo(f"error: {message}", err=True)
        raise fail(errors[-1])


def _list(
    catalog: PriceCatalog,
    search: str | None,
    provider: str | None,
    limit: int,
    as_json: bool,
    source: bool,
) -> None:
    """``prices [--search TEXT] [--provider P] [--limit N]``: see ``cli.price_list``."""
    from costwarden.pricing import snapshot

    found = list_prices(catalog, search=search, provider=provider, limit=limit)
    rows = [price_dict(p.model, p) for p in found.prices]
    if as_json:
        extra = {"source": _snapshot_dict(snapshot.info())} if source else {}
        print_json(
            {
                "search": search,
                "provider": provider,
                "matched": found.matched,
                "near_names": found.fuzzy,
                "unpriced_skipped": found.unpriced,
                "prices": rows,
                **extra,
            }
        )
        return
    where = f" at {provider}" if provider else ""
    if not rows:
        what = f"matching {search!r}" if search else "listed"
        raise fail(
            f"no priced model {what}{where}; try a shorter --search, another --provider, "
            "or `costwarden prices MODEL` for one model"
        )
    if found.fuzzy:
        typer.echo(f"No model id contains {search!r}{where}; the nearest names:")
    more = found.matched - len(rows) - found.unpriced  # matched, neither shown nor tried
    count = f"{len(rows)} of {found.matched}" if more > 0 else f"{len(rows)}"
    title = f"Prices (USD per 1M tokens): {count}"
    if search and not found.fuzzy:
        title += f" matching {search!r}"
    table = Table(title=title + where)
    for name in ("Model", "Provider", "Source", "Input", "Output", "Cache rd", "Cache wr"):
        table.add_column(
            name, justify="right" if name.startswith(("In", "Out", "Cache")) else "left"
        )
    for row in rows:
        table.add_row(
            row["resolved_as"],
            row["provider"] or "-",
            row["source"],
            *_rate_cells(row),
        )
    print_table(table)
    if more > 0:
        typer.echo(f"{more} more: raise --limit, or narrow with --search or --provider.")


def _snapshot_dict(info: Any) -> dict[str, Any]:
    return {
        "source": info.source,
        "genai_prices_version": info.genai_prices_version,
        "path": None if info.path is None else str(info.path),
        "fetched_at": None if info.fetched_at is None else info.fetched_at.isoformat(),
        "installed_at": None if info.installed_at is None else info.installed_at.isoformat(),
        "newest_price_date": None
        if info.newest_price_date is None
        else info.newest_price_date.isoformat(),
        "age_days": info.age_days(),
        "url": info.url,
    }


@app.command()
@handles_errors
def tokens(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="The model whose tokenizer to use.")],
    text: Annotated[str | None, typer.Argument(help="Text to count (or --file).")] = None,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="Count a file's text ('-': stdin).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Count tokens offline: exact for OpenAI encodings, a labelled estimate otherwise.

    A model with no known price is an error (exit 1) naming the near names, as everywhere
    else: a typo such as ``gpt-4oo`` would otherwise count with a guessed tokenizer and go
    unnoticed.
    """
    from costwarden.records import Usage
    from costwarden.tokens import count_tokens

    if (text is None) == (file is None):
        raise typer.BadParameter("give the TEXT argument or --file, one of them")
    if file is not None:
        body = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8")
    else:
        assert text is not None
        body = text
    price = state(ctx).config.build_catalog().resolve(model)  # UnknownModelError: exit 1
    count = count_tokens(body, model)
    cost: int | None = price.cost_nanos(Usage(input_tokens=count.tokens))
    out = {
        "model": model,
        "tokens": count.tokens,
        "exact": count.exact,
        "method": count.method,
        "characters": len(body),
        "input_cost_usd": None if cost is None else str(Decimal(cost).scaleb(-9)),
    }
    if as_json:
        print_json(out)
        return
    label = "exact" if count.exact else "estimate"
    line = f"{count.tokens:,} tokens ({label}, {count.method}) for {model}"
    if cost is not None:
        line += f"; as input: {money(cost)}"
    typer.echo(line)


@app.command()
@handles_errors
def demo(
    path: Annotated[Path, typer.Option("--path", help="SQLite file to (re)create.")] = Path(
        "demo-output/spend.db"
    ),
    seed: Annotated[int, typer.Option("--seed")] = 7,
) -> None:
    """Simulate a working day of LLM calls under budgets, offline, into a SQLite file."""
    from costwarden.demo import run

    run(path, seed=seed)
    typer.echo(f"\nExplore it: costwarden --ledger sqlite:///{path} report --by user")


@app.command("config")
@handles_errors
def show_config(
    ctx: typer.Context,
    check_alerts: Annotated[
        bool,
        typer.Option("--check-alerts", help="Also build the alert channels (reads their secrets)."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """The configuration in force: file, ledger, budgets, prices, alert channels."""
    cfg = state(ctx).config
    budgets = {"global": cfg.budget}
    budgets.update({str(s): b for s, b in cfg.budgets.items()})
    budgets.update({f"{k}:* (default)": b for k, b in cfg.default_budgets.items()})
    channels = (
        [c.name for c in cfg.alert_channels()]
        if check_alerts
        else [
            str(c.get("name", c.get("type")))
            for c in cfg.alerts.get("channels", [])
            if isinstance(c, Mapping)
        ]
    )
    out = {
        "path": None if cfg.path is None else str(cfg.path),
        "ledger": cfg.ledger,
        "ledger_source": cfg.ledger_source,
        "hold_ttl": cfg.hold_ttl,
        "fail_open": cfg.fail_open,
        "prices": "file " + str(cfg.prices_file)
        if cfg.prices_file
        else (f"{len(cfg.prices)} custom models" if cfg.prices else "genai-prices defaults"),
        "alert_channels": channels,
        "budgets": {name: _budget_dict(b) for name, b in budgets.items()},
    }
    if as_json:
        print_json(out)
        return
    typer.echo(f"config file: {out['path'] or '(none: defaults)'}")
    typer.echo(f"ledger:      {cfg.ledger} (from {cfg.ledger_source})")
    typer.echo(f"prices:      {out['prices']}")
    typer.echo(
        f"alerts:      {', '.join(channels) or '(no channels)'}"
        + (" - built OK" if check_alerts else "")
    )
    table = Table(title="Budgets")
    for name in ("Scope", "Daily", "Weekly", "Monthly", "Per request", "Rolling", "Time zone"):
        table.add_column(
            name, justify="left" if name in ("Scope", "Rolling", "Time zone") else "right"
        )
    for name, b in budgets.items():
        table.add_row(
            name,
            *budget_cells(b),
        )
    print_table(table)


def _budget_dict(b: Budget) -> dict[str, Any]:
    return {
        "daily_limit": b.daily_limit,
        "weekly_limit": b.weekly_limit,
        "monthly_limit": b.monthly_limit,
        "per_request_limit": b.per_request_limit,
        "rolling_limits": {str(k): v for k, v in (b.rolling_limits or {}).items()},
        "timezone": b.timezone,
        "alert_thresholds": list(b.thresholds()),
    }
