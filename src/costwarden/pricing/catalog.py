"""PriceCatalog: custom prices over the genai-prices catalogue, resolved once per model.

Lookup order for ``resolve(model, provider)``: a custom entry by exact name, then by a
normalised spelling (lower case, no ``provider/`` prefix, no date suffix), then genai-prices'
own matcher (which knows dated ids such as ``claude-3-haiku-20240307``; ``openai/gpt-4o`` is
retried as provider ``openai``). The result (or the UnknownModelError) is cached per
``(model, provider)``, so pricing a known model afterwards costs a dict lookup plus a few
Decimal multiplications.

An unknown model is an error, never $0. After a call has happened, when a record must be
priced anyway, :meth:`PriceCatalog.fallback_cost_nanos` prices it at a conservative fallback.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, Literal, ParamSpec, Protocol

from costwarden import forksafe
from costwarden.errors import (
    ConfigurationError,
    InvalidInputError,
    NoTierPriceError,
    UnknownModelError,
)
from costwarden.money import Nanos, nanos_to_usd
from costwarden.pricing import custom as _custom
from costwarden.pricing.custom import CustomPrice, PriceTable
from costwarden.pricing.rates import PriceValue, Schedule, compile_schedule
from costwarden.pricing.tiers import STANDARD, Context, context_of, describe
from costwarden.records import Usage

Source = Literal["custom", "genai-prices", "fallback"]
_P = ParamSpec("_P")
_MAX_CACHED_MISSES: Final = 10_000  # unknown names come from callers: do not grow unbounded


def _in_usd(cost_nanos: Callable[_P, Nanos], doc: str) -> Callable[_P, float]:
    """The ``cost_usd`` twin of a ``cost_nanos`` method: the same parameters (the same call,
    passed on whole), the result converted to float USD at the public edge.

    Why one helper: each ``cost_usd`` only converts what its ``cost_nanos`` returns, and a twin
    written out by hand repeats every parameter and default, which can then drift apart. Its
    signature (``inspect.signature``, ``help()``) is ``cost_nanos``'s returning ``float``.
    """

    def cost_usd(*args: _P.args, **kwargs: _P.kwargs) -> float:
        return nanos_to_usd(cost_nanos(*args, **kwargs))

    cost_usd.__doc__ = doc
    cost_usd.__module__ = cost_nanos.__module__
    cost_usd.__qualname__ = cost_nanos.__qualname__.replace("cost_nanos", "cost_usd")
    cost_usd.__signature__ = inspect.signature(cost_nanos).replace(  # type: ignore[attr-defined]
        return_annotation="float"
    )
    return cost_usd


class _Pricer(Protocol):
    static: Schedule | None

    def schedule(self, when: datetime | None, context: Context = STANDARD) -> Schedule: ...


class _CustomPricer:
    """A custom (or fallback) price: its standard table, dated changes, batch and tiers.

    Asking for batch or a service tier the entry has no table for is a
    :class:`~costwarden.errors.NoTierPriceError`: a custom entry's batch or flex price is not
    knowable from its standard one, and guessing would misprice silently.
    """

    def __init__(self, price: CustomPrice) -> None:
        self._price = price
        self._compiled: dict[tuple[int, Context], Schedule] = {}
        self.static: Schedule | None = (
            None if price.changes else compile_schedule(price.standard.price_keys())
        )  # valid for any time for the standard context

    def _period(self, when: datetime | None) -> int:
        """How many dated changes are in force at ``when`` (UTC date; default now)."""
        changes = self._price.changes
        if not changes:
            return 0
        ts = datetime.now(UTC) if when is None else when
        if ts.tzinfo is None or ts.utcoffset() is None:
            ts = ts.astimezone()  # naive means local time (DESIGN.md)
        day = ts.astimezone(UTC).date()
        return sum(1 for start, _ in changes if start <= day)

    def schedule(self, when: datetime | None, context: Context = STANDARD) -> Schedule:
        if self.static is not None and context == STANDARD:
            return self.static
        key = (self._period(when), context)
        found = self._compiled.get(key)
        if found is None:
            found = self._compiled[key] = compile_schedule(self._merged(*key))
        return found

    def _merged(self, period: int, context: Context) -> dict[str, PriceValue]:
        price = self._price
        merged = price.standard.price_keys()
        for _, change in price.changes[:period]:
            merged.update(change.price_keys(merged))
        batch, tier = context
        overlays: list[PriceTable] = []
        if tier is not None:
            table = price.service_tiers.get(tier)
            if table is None:
                raise NoTierPriceError(price.model, describe((False, tier)), price.service_tiers)
            overlays.append(table)
        if batch:
            if price.batch is None:
                raise NoTierPriceError(price.model, "batch", price.service_tiers)
            overlays.append(price.batch)
        overrides: dict[str, PriceValue] = {}
        for overlay in overlays:  # the tier's rates first, as genai-prices orders variants
            for key, value in overlay.price_keys(merged).items():
                overrides.setdefault(key, value)
        merged.update(overrides)
        return merged


@dataclass(frozen=True, slots=True)
class ResolvedPrice:
    """A model's price, found once. Rates are Decimal USD per 1M tokens.

    ``input``/``output``/``cache_read``/``cache_write`` are the standard short-context rates in
    force when the price was resolved; ``cost_nanos`` applies long-context tiers, batch and
    date- or hour-dependent prices for the call itself. ``cache_read`` is None when the model
    has no cache-read rate (cached tokens then pay the input rate).
    """

    model: str
    provider: str | None
    source: Source
    input: Decimal
    output: Decimal
    cache_read: Decimal | None
    cache_write: Decimal | None
    long_context_threshold: int | None = None
    """Input tokens above which the whole request pays the first long-context tier rate."""
    _pricer: _Pricer = field(default=None, repr=False, compare=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self._pricer is None:  # built by hand: price from the rates given
            entry = CustomPrice.simple(
                self.model, self.input, self.output, self.cache_read, self.cache_write
            )
            object.__setattr__(self, "_pricer", _CustomPricer(entry))

    def cost_nanos(
        self,
        usage: Usage,
        *,
        when: datetime | None = None,
        batch: bool = False,
        service_tier: str | None = None,
    ) -> Nanos:
        """Exact cost of ``usage`` in nano-USD (Decimal, rounded once half-even).

        ``batch=True`` prices at the batch rates, ``service_tier`` ("flex", "priority"; None
        or "default"/"auto"/"standard" for the standard price; "batch" is ``batch=True``) at
        that tier's rates. A catalogue model without such a price pays its standard price (as
        genai-prices does); a custom entry without one raises NoTierPriceError.
        """
        if not isinstance(usage, Usage):
            raise InvalidInputError(
                f"usage must be a costwarden.records.Usage, got {type(usage).__name__}"
            )
        static = self._pricer.static
        if static is not None and batch is False and service_tier is None:
            return static.cost_nanos(usage)
        if when is not None and not isinstance(when, datetime):
            raise InvalidInputError(f"when must be a datetime or None, got {when!r}")
        if service_tier is None and (batch is True or batch is False):
            context: Context = (batch, None)  # the usual shape: no tier to normalise
        else:
            context = context_of(batch, service_tier)
        return self._pricer.schedule(when, context).cost_nanos(usage)

    cost_usd = _in_usd(
        cost_nanos,
        "The cost of ``usage`` in US dollars (``cost_nanos`` converted at the public edge).",
    )


def _resolved(
    model: str, provider: str | None, source: Source, prices: Mapping[str, Any], pricer: _Pricer
) -> ResolvedPrice:
    from costwarden.pricing.genai import base_rate

    schedule = pricer.static or pricer.schedule(None)
    return ResolvedPrice(
        model=model,
        provider=provider,
        source=source,
        input=base_rate(prices.get("input_mtok")) or Decimal(0),
        output=base_rate(prices.get("output_mtok")) or Decimal(0),
        cache_read=base_rate(prices.get("cache_read_mtok")),
        cache_write=base_rate(prices.get("cache_write_mtok")),
        long_context_threshold=schedule.thresholds[0] if schedule.thresholds else None,
        _pricer=pricer,
    )


class PriceCatalog:
    """Prices for models: custom entries first, then the genai-prices catalogue.

    ``custom`` is a mapping ``{model: {"input": ..., "output": ..., "cache_read": ...,
    "cache_write": ..., "provider": ...}}`` in USD per 1M tokens, or the path of a .toml,
    .json or .yaml file of that shape. ``include_defaults=False`` prices only the custom
    entries. ``fallback_model`` names the model whose price is used by
    :meth:`fallback_cost_nanos`; by default it is the highest rates of a set of flagship
    models (``pricing.defaults.FALLBACK_REFERENCE``).
    """

    def __init__(
        self,
        custom: Mapping[str, Mapping[str, Any]] | str | Path | None = None,
        *,
        include_defaults: bool = True,
        fallback_model: str | None = None,
    ) -> None:
        if custom is None:
            entries: dict[str, CustomPrice] = {}
        elif isinstance(custom, (str, Path)):
            entries = _custom.load_file(custom)
        else:
            entries = _custom.parse_table(custom)
        self._custom = entries
        self._custom_normalised: dict[str, CustomPrice] = {}
        for name, entry in entries.items():
            for spelled in [name.strip().lower(), *_custom.name_candidates(name)]:
                self._custom_normalised.setdefault(spelled, entry)
        self.include_defaults = bool(include_defaults)
        self._cache: dict[tuple[str, str | None], ResolvedPrice] = {}
        self._misses: dict[tuple[str, str | None], list[str]] = {}  # -> suggestions
        self._genai_pricers: dict[tuple[str, str], Any] = {}
        self._fallback: tuple[ResolvedPrice, str] | None = None
        self._lock = forksafe.fresh_after_fork(threading.Lock())
        self._fallback_model = fallback_model
        if fallback_model is not None:
            try:
                self.resolve(fallback_model)
            except UnknownModelError as exc:
                raise ConfigurationError(f"fallback_model: {exc}") from None

    # -- resolution -------------------------------------------------------------------------

    def resolve(self, model: str, provider: str | None = None) -> ResolvedPrice:
        """The price of ``model`` (optionally at ``provider``), or UnknownModelError."""
        key = (model, provider)
        found = self._cache.get(key)
        if found is not None:
            return found
        if not isinstance(model, str) or not model.strip():
            raise InvalidInputError(f"model must be a non-empty string, got {model!r}")
        if provider is not None and (not isinstance(provider, str) or not provider.strip()):
            raise InvalidInputError(
                f"provider must be a non-empty string or None, got {provider!r}"
            )
        missed = self._misses.get(key)
        if missed is not None:  # a fresh error each time: re-raising one instance grows its
            raise UnknownModelError(model, provider, suggestions=missed)  # traceback forever
        try:
            found = self._resolve_uncached(model.strip(), provider)
        except UnknownModelError as exc:
            if len(self._misses) < _MAX_CACHED_MISSES:
                self._misses[key] = exc.suggestions
            raise
        self._cache[key] = found
        return found

    def _custom_entry(self, model: str, provider: str | None) -> CustomPrice | None:
        entry = self._custom.get(model)
        if entry is None:
            for spelled in [model.lower(), *_custom.name_candidates(model)]:
                entry = self._custom_normalised.get(spelled)
                if entry is not None:
                    break
        if entry is None:
            return None
        if entry.provider and provider and provider.strip().lower() != entry.provider:
            return None  # a custom price for another provider's deployment of this model
        return entry

    def _resolve_uncached(self, model: str, provider: str | None) -> ResolvedPrice:
        entry = self._custom_entry(model, provider)
        if entry is not None:
            return _resolved(
                entry.model,
                entry.provider or provider,
                "custom",
                entry.price_keys(),
                _CustomPricer(entry),
            )
        if self.include_defaults:
            from costwarden.pricing.genai import GenaiPricer, find

            try:
                provider_info, model_info = find(model, provider)
            except LookupError:
                pass
            else:
                pricer_key = (provider_info.id, model_info.id)
                with self._lock:
                    pricer = self._genai_pricers.get(pricer_key)
                    if pricer is None:
                        pricer = GenaiPricer(provider_info, model_info)
                        self._genai_pricers[pricer_key] = pricer
                return _resolved(
                    model_info.id,
                    provider_info.id,
                    "genai-prices",
                    pricer.standard_prices(),
                    pricer,
                )
        raise UnknownModelError(model, provider, suggestions=self._suggest(model))

    def _suggest(self, model: str) -> list[str]:
        import difflib

        if self.include_defaults:
            from costwarden.pricing.genai import suggestions

            return suggestions(model, self._custom)
        return difflib.get_close_matches(model, list(self._custom), n=3, cutoff=0.6)

    def knows(self, model: str, provider: str | None = None) -> bool:
        """Whether a price is known (custom or catalogue) for ``model``."""
        try:
            self.resolve(model, provider)
        except UnknownModelError:
            return False
        return True

    # -- costs ------------------------------------------------------------------------------

    def cost_nanos(
        self,
        model: str,
        usage: Usage,
        *,
        provider: str | None = None,
        when: datetime | None = None,
        batch: bool = False,
        service_tier: str | None = None,
    ) -> Nanos:
        """Exact cost of a call in nano-USD. Raises UnknownModelError for an unknown model.

        ``batch`` and ``service_tier`` as in :meth:`ResolvedPrice.cost_nanos`."""
        price = self._cache.get((model, provider)) or self.resolve(model, provider)
        if when is None and batch is False and service_tier is None and type(usage) is Usage:
            static = price._pricer.static  # fast shape: ResolvedPrice.cost_nanos's first step
            if static is not None:
                return static.cost_nanos(usage)
        return price.cost_nanos(usage, when=when, batch=batch, service_tier=service_tier)

    cost_usd = _in_usd(
        cost_nanos, ":meth:`cost_nanos` as float USD (for the public boundary only)."
    )

    def fallback_cost_nanos(self, usage: Usage) -> tuple[Nanos, str]:
        """Price the usage of an UNKNOWN model after the call, conservatively.

        Returns ``(nanos, description)``; the description says which rates were used so the
        record and the WARNING can tell a person what to fix. Cached tokens pay the full input
        rate (an unknown model's cache discount is unknown).
        """
        price, description = self._fallback_price()
        return price.cost_nanos(usage), description

    def fallback_price(self) -> ResolvedPrice:
        """The price :meth:`fallback_cost_nanos` uses."""
        return self._fallback_price()[0]

    def _fallback_price(self) -> tuple[ResolvedPrice, str]:
        if self._fallback is not None:
            return self._fallback
        if self._fallback_model is not None:
            price = self.resolve(self._fallback_model)
            what = f"the price of {price.model}"
        else:
            price, what = self._reference_fallback()
        rates = f"${price.input}/${price.output} per 1M input/output tokens"
        self._fallback = (price, f"unknown model priced at fallback rates: {what} ({rates})")
        return self._fallback

    def _reference_fallback(self) -> tuple[ResolvedPrice, str]:
        from costwarden.pricing.defaults import FALLBACK_REFERENCE
        from costwarden.pricing.genai import GenaiPricer, find, top_rate

        maxima: dict[str, Decimal] = {}
        used: list[str] = []
        for name in FALLBACK_REFERENCE:
            try:
                prices = GenaiPricer(*find(name, None)).standard_prices()
            except LookupError:
                continue
            used.append(name)
            for key in ("input_mtok", "output_mtok", "cache_write_mtok"):
                rate = top_rate(prices.get(key))
                if rate is not None and rate > maxima.get(key, Decimal(-1)):
                    maxima[key] = rate
        if not used:  # pragma: no cover - only with an empty custom snapshot
            raise ConfigurationError(
                "no fallback price: none of the reference models is in the genai-prices "
                "snapshot; pass PriceCatalog(fallback_model=...)"
            )
        input_rate = maxima["input_mtok"]
        entry = CustomPrice.simple(
            model="fallback",
            input=input_rate,
            output=maxima["output_mtok"],
            cache_read=None,
            cache_write=max(maxima.get("cache_write_mtok", input_rate), input_rate),
        )
        price = _resolved("fallback", None, "fallback", entry.price_keys(), _CustomPricer(entry))
        return price, f"the highest rates among {', '.join(used)}"

    # -- listing ----------------------------------------------------------------------------

    def models(self) -> list[str]:
        """Custom model names plus the default tables' names (PRICING, POPULAR_PRICING)."""
        names = list(self._custom)
        if self.include_defaults:
            from costwarden.pricing.defaults import classic_pricing, popular_pricing

            names += list(classic_pricing()) + list(popular_pricing())
        return list(dict.fromkeys(names))

    def entries(self) -> list[tuple[str, str | None]]:
        """Every (model, provider) this catalogue lists: the custom entries (provider None
        unless the entry names one), then each model of each genai-prices provider. A listed
        entry may still fail to :meth:`resolve` (a genai-prices model with no price in force)."""
        listed: list[tuple[str, str | None]] = [(n, e.provider) for n, e in self._custom.items()]
        if self.include_defaults:
            from costwarden.pricing.genai import provider_models

            listed += [(model, provider) for provider, model in provider_models()]
        return listed

    def __repr__(self) -> str:
        return (
            f"PriceCatalog({len(self._custom)} custom models, "
            f"include_defaults={self.include_defaults})"
        )
