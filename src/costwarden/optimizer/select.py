"""Choosing the cheapest model that is good enough for a task.

The rule (documented in docs/optimizer.md): among the priced candidates that have catalogue
data, keep those whose context window holds the request, that have every required capability,
and whose quality score for the task meets the level; price a typical request of the task (the
token profile below, or the caller's own counts) with each; return the cheapest that fits
``max_cost``. Ties go to the higher score, then the name, so the answer is deterministic.
A ``providers`` filter keeps only the models one of the named providers serves (a caller that
can only reach OpenAI must not be handed a Gemini model). When nothing fits,
:class:`~costwarden.errors.NoModelFitsError` says what would: the cheapest model meeting the
quality (and its cost) and the best model within the cost.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from costwarden.errors import InvalidInputError, NoModelFitsError, UnknownModelError
from costwarden.money import Nanos, format_compared
from costwarden.optimizer.catalogue import ModelInfo
from costwarden.pricing import PriceCatalog
from costwarden.records import Usage


@dataclass(frozen=True, slots=True)
class TokenProfile:
    """A typical request of a task type: prompt tokens in, completion tokens out."""

    input_tokens: int
    output_tokens: int
    why: str


TASK_PROFILES: dict[str, TokenProfile] = {
    "summarization": TokenProfile(3000, 300, "a few pages in, a paragraph out"),
    "classification": TokenProfile(500, 10, "a short text and instructions in, a label out"),
    "extraction": TokenProfile(1500, 200, "a document in, a small JSON object out"),
    "translation": TokenProfile(800, 900, "a page in, the same page in another language out"),
    "chat": TokenProfile(1500, 400, "a system prompt and a few turns in, one reply out"),
    "code": TokenProfile(4000, 800, "files and instructions in, a patch or function out"),
    "reasoning": TokenProfile(800, 2500, "a problem in, worked reasoning (thinking) out"),
    "creative_writing": TokenProfile(300, 1200, "a brief in, a story or article out"),
    "long_context": TokenProfile(100_000, 800, "a long document or codebase in, an answer out"),
}


@dataclass(frozen=True, slots=True)
class Candidate:
    """A priced model with catalogue data: ``name`` is what the caller's pricing calls it."""

    name: str
    provider: str | None
    info: ModelInfo

    @property
    def served_by(self) -> tuple[str, ...]:
        """Providers that serve this model, the one it is priced at first: the pricing's
        provider (``groq`` for ``groq/llama-3.1-8b-instant``), then the catalogue's."""
        names = (self.provider, self.info.provider)
        return tuple(dict.fromkeys(n.lower() for n in names if n))


@dataclass(frozen=True, slots=True)
class Option:
    """One candidate judged for one request."""

    name: str
    score: int
    cost_nanos: Nanos
    excluded: str | None  # why it cannot serve the request at all (context, capability)
    providers: tuple[str, ...] = ()  # who serves it (Candidate.served_by)


@dataclass(frozen=True, slots=True)
class Selection:
    """The chosen model and the evidence (every option considered, cheapest first)."""

    model: str
    task: str
    score: int
    required_score: int
    cost_nanos: Nanos
    input_tokens: int
    output_tokens: int
    options: tuple[Option, ...]
    provider: str | None = None  # with a providers= filter: the allowed provider serving it


def price_options(
    catalog: PriceCatalog,
    candidates: Iterable[Candidate],
    task: str,
    usage: Usage,
    *,
    requires: frozenset[str] = frozenset(),
    min_context: int = 0,
) -> list[Option]:
    """Score and price every candidate for the request, cheapest first."""
    options: list[Option] = []
    needed_context = max(min_context, usage.input_tokens + usage.output_tokens)
    for cand in candidates:
        info = cand.info
        excluded = None
        missing = requires - info.capabilities
        if missing:
            excluded = f"lacks {', '.join(sorted(missing))}"
        elif info.context_window is None or info.context_window < needed_context:
            excluded = (
                f"context window {info.context_window or 'unknown'} < {needed_context} tokens"
            )
        try:
            cost = catalog.cost_nanos(cand.name, usage, provider=cand.provider)
        except UnknownModelError:
            continue  # not priced after all: never treated as free
        options.append(Option(cand.name, info.quality[task], cost, excluded, cand.served_by))
    options.sort(key=lambda o: (o.cost_nanos, -o.score, o.name))
    return options


def choose(
    options: list[Option],
    *,
    task: str,
    threshold: int | None,
    best_tolerance: int,
    max_cost_nanos: Nanos | None,
    usage: Usage,
    level_label: str,
    providers: frozenset[str] | None = None,
) -> Selection:
    """Apply the provider filter, the level and the cost bound to priced options (see the
    module doc); ``providers`` None means every provider."""
    if providers is not None:
        options = [o for o in options if providers.intersection(o.providers)]
        if not options:
            raise NoModelFitsError(
                f"no priced model in the catalogue is served by "
                f"{', '.join(sorted(providers)) or 'any provider (none was given)'}. "
                "Configure a provider that serves catalogued models, add this provider's "
                "models to the pricing and the catalogue (models=...), or pass model=..."
            )
    usable = [o for o in options if o.excluded is None]
    if not usable:
        reasons = "; ".join(f"{o.name}: {o.excluded}" for o in options[:8]) or "no priced models"
        raise NoModelFitsError(
            f"no candidate model can serve a {task} request of {usage.input_tokens} input + "
            f"{usage.output_tokens} output tokens with the required capabilities ({reasons}). "
            "Add a model with a larger context window or the capabilities to the pricing."
        )
    if threshold is None:  # "best": top score among usable, within tolerance
        top = max(o.score for o in usable)
        required = top - best_tolerance
    else:
        required = threshold
    good = [o for o in usable if o.score >= required]
    affordable = [o for o in usable if max_cost_nanos is None or o.cost_nanos <= max_cost_nanos]
    fits = [o for o in good if max_cost_nanos is None or o.cost_nanos <= max_cost_nanos]
    if fits:
        pick = fits[0]
        return Selection(
            model=pick.name,
            task=task,
            score=pick.score,
            required_score=required,
            cost_nanos=pick.cost_nanos,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            options=tuple(options),
            provider=_serving(pick, providers),
        )
    request = f"{usage.input_tokens} input + {usage.output_tokens} output tokens"
    g = good[0] if good else None
    b = max(affordable, key=lambda o: (o.score, -o.cost_nanos)) if affordable else None
    # The figures are compared with each other and with max_cost: print them at one precision
    # that keeps their order (never "over max_cost $0.01" for a model shown at "$0.01").
    named = [o.cost_nanos for o in (g, b, usable[0]) if o is not None]
    bounds = [] if max_cost_nanos is None else [max_cost_nanos]
    printed = format_compared(*named, *bounds)
    usd = dict(zip([*named, *bounds], printed, strict=True))
    bound = "no cost bound" if max_cost_nanos is None else f"max_cost {usd[max_cost_nanos]}"
    parts = [
        f"No model meets quality {level_label} (score >= {required}) for {task} within {bound} "
        f"(estimated for {request})."
    ]
    if g is not None:
        parts.append(
            f"Cheapest model meeting the quality: {g.name} (score {g.score}, "
            f"{usd[g.cost_nanos]} per request)."
        )
    else:
        top_opt = max(usable, key=lambda o: (o.score, -o.cost_nanos))
        parts.append(
            f"No candidate reaches that score; the best is {top_opt.name} (score {top_opt.score})."
        )
    if b is not None:
        parts.append(
            f"Best model within the cost: {b.name} (score {b.score}, "
            f"{usd[b.cost_nanos]} per request)."
        )
    else:
        parts.append(
            f"The cheapest candidate, {usable[0].name}, costs {usd[usable[0].cost_nanos]}."
        )
    parts.append("Raise max_cost, lower quality, or add models to the pricing.")
    raise NoModelFitsError(" ".join(parts))


def _serving(option: Option, providers: frozenset[str] | None) -> str | None:
    """The first provider of the option's that the filter allows (None without a filter)."""
    if providers is None:
        return None
    return next(p for p in option.providers if p in providers)


def provider_filter(providers: Iterable[str] | None) -> frozenset[str] | None:
    """Validate ``select(providers=...)``: None (every provider) or provider names."""
    if providers is None:
        return None
    if isinstance(providers, str):
        providers = (providers,)
    if not isinstance(providers, Iterable):
        raise InvalidInputError(
            f"providers must be provider names (e.g. ['openai']) or None, got {providers!r}"
        )
    names = []
    for name in providers:
        if not isinstance(name, str) or not name.strip():
            raise InvalidInputError(f"providers must be non-empty strings, got {name!r}")
        names.append(name.strip().lower())
    return frozenset(names)


def request_usage(
    task: str, input_tokens: int | None, output_tokens: int | None, cached_tokens: int = 0
) -> Usage:
    """The request to price: the task's profile, with the caller's counts where given."""
    profile = TASK_PROFILES[task]
    n_in = profile.input_tokens if input_tokens is None else input_tokens
    n_out = profile.output_tokens if output_tokens is None else output_tokens
    if cached_tokens > n_in:
        raise InvalidInputError(f"cached_tokens ({cached_tokens}) exceed input tokens ({n_in})")
    return Usage(input_tokens=n_in, output_tokens=n_out, cache_read_tokens=cached_tokens)
