"""Choosing a model before a call: ``estimate`` (what a prompt costs on candidate models) and
``select`` (the optimizer's pick for a task under a cost).

Both are the library's answers printed, never a second computation: token counts come from
``costwarden.tokens`` through ``CostOptimizer.estimate``, prices from the configured
``PriceCatalog``, the pick from ``CostOptimizer.select`` with ``providers=``. What the CLI adds
is which candidates to show when none is named, and which providers count as reachable (those
whose credentials are set, as for the tracked clients: ``credentialed_providers``).
"""

from __future__ import annotations

import contextlib
import difflib
import sys
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from costwarden.cli.base import (
    JsonOpt,
    app,
    fail,
    handles_errors,
    money_row,
    print_json,
    print_table,
    state,
)
from costwarden.errors import NoModelFitsError, UnknownModelError
from costwarden.money import usd_to_nanos

if TYPE_CHECKING:
    from costwarden.optimizer import CostEstimate, CostOptimizer, Option

DEFAULT_MAX_TOKENS = 1024
"""The output bound when ``--max-tokens`` is not given: what a tracked client reserves for a
call without ``max_tokens`` (``TrackedLLMClient(default_max_tokens=1024)``)."""


def read_input(text: str | None, file: Path | None) -> str:
    """The TEXT argument or the ``--file`` (``-``: stdin), exactly one of them."""
    if (text is None) == (file is None):
        raise typer.BadParameter("give the TEXT argument or --file, one of them")
    if file is None:
        assert text is not None
        return text
    return sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8")


def _optimizer(ctx: typer.Context) -> CostOptimizer:
    from costwarden.optimizer import CostOptimizer

    return CostOptimizer(state(ctx).config.build_catalog())


def _usd(nanos: int) -> str:
    """Exact decimal USD for JSON (``"0.001022500"``), as reports and records give it."""
    return f"{Decimal(nanos).scaleb(-9):.9f}"


def _rate(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


# -- estimate ------------------------------------------------------------------------------------
def default_candidates(opt: CostOptimizer) -> tuple[list[tuple[str, str | None]], str]:
    """The models ``estimate`` prices when none is named, and a sentence saying which.

    With provider credentials set: every catalogued model those providers serve (what the
    tracked clients could choose among). Without: a handful that shows the range, for each
    provider in the catalogue its cheapest model and its best for chat (scores and a chat
    request's cost as the optimizer reckons them), rather than all of them.
    """
    from costwarden.clients.providers import credentialed_providers
    from costwarden.optimizer.select import price_options, request_usage

    candidates = opt.candidates
    reachable = credentialed_providers()
    if reachable:
        served = [c for c in candidates if reachable.keys() & set(c.served_by)]
        if served:
            names = ", ".join(sorted(reachable))
            return [(c.name, c.provider) for c in served], (
                f"every catalogued model served by {names} (credentials set)"
            )
    by_name = {c.name: c for c in candidates}
    options = price_options(opt.prices, candidates, "chat", request_usage("chat", None, None))
    groups: dict[str, list[Option]] = {}
    for option in options:  # cheapest first
        groups.setdefault(option.providers[0] if option.providers else "-", []).append(option)
    picked: dict[str, None] = {}
    for group in groups.values():
        picked[group[0].name] = None
        picked[max(group, key=lambda o: (o.score, -o.cost_nanos)).name] = None
    chosen = [(by_name[n].name, by_name[n].provider) for n in picked]
    return chosen, (
        "no provider credentials set: each catalogued provider's cheapest model and its best "
        "for chat (name models with --model, or set OPENAI_API_KEY... to see all they serve)"
    )


def _estimate_dict(e: CostEstimate) -> dict[str, Any]:
    return {
        "model": e.model,
        "provider": e.provider,
        "input_tokens": e.input_tokens,
        "tokens_exact": e.tokens_exact,
        "token_method": e.token_method,
        "output_tokens": e.output_tokens,
        "cost_usd": _usd(e.cost_nanos),
        "cost_nanos": e.cost_nanos,
        "input_per_1m": _rate(e.input_rate),
        "output_per_1m": _rate(e.output_rate),
        "price_source": e.price_source,
    }


@app.command()
@handles_errors
def estimate(
    ctx: typer.Context,
    text: Annotated[str | None, typer.Argument(help="The prompt (or --file).")] = None,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="Estimate a file's text ('-': stdin).")
    ] = None,
    models: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "-m",
            help="A candidate model (repeat for more; default: see docs/cli.md).",
        ),
    ] = None,
    max_tokens: Annotated[
        int,
        typer.Option(
            "--max-tokens", min=0, help="Output bound in tokens, priced as output (default 1024)."
        ),
    ] = DEFAULT_MAX_TOKENS,
    as_json: JsonOpt = False,
) -> None:
    """What one call with this prompt costs on candidate models, cheapest first.

    The input is counted offline for each model (exact for OpenAI encodings, a labelled
    estimate for others) and ``--max-tokens`` is priced as output, as a tracked call's hold is.
    An unknown model is an error (exit 1) naming the near names, and nothing is printed.
    """
    body = read_input(text, file)
    opt = _optimizer(ctx)
    if models:
        wanted: list[tuple[str, str | None]] = [(m, None) for m in dict.fromkeys(models)]
        basis = "the models named"
    else:
        wanted, basis = default_candidates(opt)
    found: list[CostEstimate] = []
    errors: list[str] = []
    for name, provider in wanted:
        try:
            found.append(opt.estimate(name, body, max_tokens, provider=provider))
        except UnknownModelError as exc:
            errors.append(str(exc))
    if errors:
        for message in errors[:-1]:
            typer.echo(f"error: {message}", err=True)
        raise fail(errors[-1])
    found.sort(key=lambda e: (e.cost_nanos, e.model))
    if as_json:
        print_json(
            {
                "characters": len(body),
                "max_tokens": max_tokens,
                "candidates": basis,
                "estimates": [_estimate_dict(e) for e in found],
            }
        )
        return
    table = Table(
        title=f"Estimated cost of one call ({len(body):,} characters in, up to "
        f"{max_tokens:,} tokens out), cheapest first"
    )
    for name in ("Model", "Provider", "Input tokens", "Counted", "Output bound", "Cost"):
        right = name in ("Input tokens", "Output bound", "Cost")
        table.add_column(name, justify="right" if right else "left")
    costs = money_row(*(e.cost_nanos for e in found))
    for e, cost in zip(found, costs, strict=True):
        label = "exact" if e.tokens_exact else "estimate"
        table.add_row(
            e.model,
            e.provider or "-",
            f"{e.input_tokens:,}",
            f"{label} ({e.token_method})",
            f"{e.output_tokens:,}",
            cost,
        )
    print_table(table)
    typer.echo(f"Candidates: {basis}.")


# -- select --------------------------------------------------------------------------------------
def _providers(given: list[str] | None, opt: CostOptimizer) -> tuple[list[str], str]:
    """The providers to choose among, and where they came from. A name that no catalogued
    model is served by is an error naming the near ones (``opnai``), not "nothing fits"."""
    from costwarden.clients.providers import credentialed_providers

    known = sorted({p for c in opt.candidates for p in c.served_by})
    if given:
        names = list(dict.fromkeys(p.strip().lower() for p in given))
        for name in names:
            if name not in known:
                near = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
                hint = f" Did you mean: {', '.join(near)}?" if near else ""
                raise fail(
                    f"no catalogued model is served by provider {name!r}.{hint} "
                    f"Providers with catalogued models: {', '.join(known)}"
                )
        return names, "--provider"
    reachable = credentialed_providers()
    if not reachable:
        raise fail(
            "no provider to choose for: no provider credentials are set (OPENAI_API_KEY, "
            "ANTHROPIC_API_KEY, GROQ_API_KEY, TOGETHER_API_KEY, OPENROUTER_API_KEY); set one, "
            f"or name providers with --provider (one of: {', '.join(known)})"
        )
    return sorted(reachable), "credentials set: " + ", ".join(
        f"{name} ({var})" for name, var in sorted(reachable.items())
    )


def _option_dict(o: Option, cost: str) -> dict[str, Any]:
    return {
        "model": o.name,
        "providers": list(o.providers),
        "score": o.score,
        "cost_usd": cost,
        "cost_nanos": o.cost_nanos,
    }


@app.command("select")
@handles_errors
def select_command(
    ctx: typer.Context,
    task: Annotated[
        str, typer.Argument(help="Task type: summarization, classification, chat, code, ...")
    ],
    max_cost: Annotated[float, typer.Option("--max-cost", help="USD per request at most.")],
    max_tokens: Annotated[
        int | None,
        typer.Option("--max-tokens", min=0, help="Output tokens (default: the task's typical)."),
    ] = None,
    input_tokens: Annotated[
        int | None,
        typer.Option("--input-tokens", min=0, help="Input tokens (default: the task's typical)."),
    ] = None,
    quality: Annotated[
        str, typer.Option("--quality", help="low, medium, high, best or a 0-100 score.")
    ] = "medium",
    providers: Annotated[
        list[str] | None,
        typer.Option(
            "--provider",
            "-p",
            help="Choose among this provider's models (repeat for more; default: those "
            "whose credentials are set).",
        ),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=0, help="Runners-up to show (default 5).")
    ] = 5,
    as_json: JsonOpt = False,
) -> None:
    """The optimizer's choice for a task under a cost: the cheapest model good enough.

    Only models a reachable provider serves are considered: the ``--provider`` names, else
    the providers whose API keys are set in the environment (as the tracked clients choose).
    When nothing fits, the optimizer's message says what would, and the command exits 1.
    """
    opt = _optimizer(ctx)
    allowed, source = _providers(providers, opt)
    level: str | float = quality
    with contextlib.suppress(ValueError):  # "70": a score; "high": a level
        level = float(quality)
    try:
        pick = opt.select(
            task,
            max_cost,
            level,
            input_tokens=input_tokens,
            output_tokens=max_tokens,
            providers=allowed,
        )
    except NoModelFitsError as exc:
        raise fail(f"{exc} (providers: {', '.join(allowed)}, from {source})") from None
    bound = usd_to_nanos(max_cost, field="max_cost")  # checked by select() already
    chosen = next(o for o in pick.options if o.name == pick.model)
    fits = [
        o
        for o in pick.options
        if o.excluded is None
        and o.score >= pick.required_score
        and o.cost_nanos <= bound
        and o is not chosen
    ][:limit]
    shown = money_row(chosen.cost_nanos, *(o.cost_nanos for o in fits), bound)
    cost, others, bound_text = shown[0], shown[1:-1], shown[-1]
    if as_json:
        print_json(
            {
                "task": pick.task,
                "model": pick.model,
                "provider": pick.provider,
                "cost_usd": _usd(pick.cost_nanos),
                "cost_nanos": pick.cost_nanos,
                "max_cost_usd": _usd(bound),
                "score": pick.score,
                "required_score": pick.required_score,
                "quality": quality,
                "input_tokens": pick.input_tokens,
                "output_tokens": pick.output_tokens,
                "providers": allowed,
                "providers_from": source,
                "considered": len(pick.options),
                "runners_up": [_option_dict(o, _usd(o.cost_nanos)) for o in fits],
            }
        )
        return
    request = f"{pick.input_tokens:,} input + {pick.output_tokens:,} output tokens"
    typer.echo(f"Choice:    {pick.model} ({pick.provider or '-'}) for {pick.task}")
    typer.echo(f"Cost:      {cost} per request, estimated for {request} (max {bound_text})")
    typer.echo(f"Quality:   {pick.score} for {pick.task} (needs {pick.required_score}: {quality})")
    typer.echo(f"Providers: {', '.join(allowed)} ({source}); {len(pick.options)} models considered")
    if not fits:
        typer.echo("Runners-up: none (no other model meets the quality within the cost).")
        return
    table = Table(title="Runners-up (within cost and quality)")
    for name in ("Model", "Providers", "Quality", "Cost"):
        table.add_column(name, justify="right" if name in ("Quality", "Cost") else "left")
    for o, text in zip(fits, others, strict=True):
        table.add_row(o.name, ", ".join(o.providers), str(o.score), text)
    print_table(table)
