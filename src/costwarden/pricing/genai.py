"""Adapter to genai-prices: find a model once, then price from compiled schedules.

genai-prices is the catalogue (its offline snapshot, bundled in the wheel; its updater is
never started here). It is imported lazily because loading the snapshot takes ~0.5 s and many
costwarden commands never price anything.

What may change per call, and how it is kept both correct and fast:

* **Time-dependent prices** (a model whose ``prices`` is a list of ``ConditionalPrice``: a new
  price from a start date, or DeepSeek's off-peak hours): the active price is chosen for the
  request's time on every call, and the schedule compiled for that choice is cached.
* **Batch and service tiers** (``price_context={"processing": "batch"}`` and/or
  ``{"service_tier": "flex"}``): the variants whose ``when`` the context matches and that are
  active at the request time override the standard keys they name, first variant first; the
  rest of the standard price stays. As in genai-prices, a model reached through a provider's
  ``fallback_model_providers`` ignores the context, and a context no variant matches is the
  standard price.
* Everything else is one compiled :class:`~costwarden.pricing.rates.Schedule`.
"""

from __future__ import annotations

import difflib
import threading
import time
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cache
from typing import Any

from costwarden import forksafe
from costwarden.caching import BoundedCache
from costwarden.pricing.rates import PriceValue, Schedule, compile_schedule
from costwarden.pricing.tiers import STANDARD, Context


def _start_date_type() -> type:
    from genai_prices.types import StartDateConstraint

    return StartDateConstraint  # type: ignore[no-any-return]


_lock = forksafe.fresh_after_fork(threading.Lock())


def _snapshot() -> Any:
    from genai_prices import data_snapshot

    from costwarden.pricing.snapshot import install_downloaded

    install_downloaded()  # a snapshot fetched by `costwarden prices update`, if any
    return data_snapshot.get_snapshot()


def price_dict(model_price: Any) -> dict[str, PriceValue]:
    """The set price keys of a genai-prices ``ModelPrice`` (a plain attribute bag)."""
    return {
        key: value
        for key, value in vars(model_price).items()
        if not key.startswith("_") and value is not None
    }


_EPOCH_DAY = date(1970, 1, 1).toordinal()
"""The proleptic ordinal of the Unix epoch's day: the day memo's keys are UTC day ordinals."""


def _aware(when: datetime | None) -> datetime:
    if when is None:
        return datetime.now(UTC)
    if when.tzinfo is None or when.utcoffset() is None:
        return when.astimezone()  # naive means local time (DESIGN.md)
    return when


class GenaiPricer:
    """Prices one (provider, model) pair of the genai-prices catalogue."""

    def __init__(self, provider: Any, model: Any) -> None:
        self.provider_id: str = provider.id
        self.model_id: str = model.id
        self._model = model
        self._conditional = isinstance(model.prices, list)
        in_provider = any(model is m for m in provider.models)
        self._variants: tuple[Any, ...] = tuple(model.price_variants or ()) if in_provider else ()
        self._matching: dict[Context, tuple[int, ...]] = {}
        self._compiled: dict[tuple[int, tuple[int, ...]], Schedule] = {}
        self.static: Schedule | None = (
            None if self._conditional else self._compile(0, ())
        )  # valid for any time for the standard context
        constraints = [c.constraint for c in model.prices] if self._conditional else []
        constraints += [v.constraint for v in self._variants]
        # Start dates are compared on the UTC date, so the choice can be memoised per day.
        self._by_day: BoundedCache[tuple[int, Context], Schedule] | None = (
            BoundedCache(64)
            if all(c is None or isinstance(c, _start_date_type()) for c in constraints)
            else None
        )

    def matching(self, context: Context) -> tuple[int, ...]:
        """Indices of the variants whose ``when`` the context satisfies (any date)."""
        found = self._matching.get(context)
        if found is None:
            batch, tier = context
            wanted: dict[str, str] = {}
            if batch:
                wanted["processing"] = "batch"
            if tier is not None:
                wanted["service_tier"] = tier
            found = tuple(
                i
                for i, v in enumerate(self._variants)
                if wanted and all(wanted.get(k) == value for k, value in v.when.items())
            )
            self._matching[context] = found
        return found

    def _standard_index(self, ts: datetime) -> int:
        prices = self._model.prices
        if not self._conditional:
            return 0
        for index in range(len(prices) - 1, -1, -1):  # the last active price wins
            constraint = prices[index].constraint
            if constraint is None or constraint.active(ts):
                return index
        return 0

    def _compile(self, standard: int, variants: tuple[int, ...]) -> Schedule:
        key = (standard, variants)
        found = self._compiled.get(key)
        if found is None:
            found = compile_schedule(self._merged(standard, variants))
            self._compiled[key] = found
        return found

    def _merged(self, standard: int, variants: tuple[int, ...]) -> dict[str, PriceValue]:
        prices = self._model.prices
        merged = price_dict(prices[standard].prices if self._conditional else prices)
        overrides: dict[str, PriceValue] = {}
        for index in variants:
            for key, value in price_dict(self._variants[index].prices).items():
                overrides.setdefault(key, value)
        merged.update(overrides)
        return merged

    def standard_prices(self, when: datetime | None = None) -> dict[str, PriceValue]:
        """The standard (non-batch) price keys in force at ``when`` (default now)."""
        return self._merged(self._standard_index(_aware(when)), ())

    def schedule(self, when: datetime | None, context: Context = STANDARD) -> Schedule:
        """The price schedule in force at ``when`` for ``context`` (batch, service tier); a model
        with one unchanging price returns it without a lookup.
        """
        static = self.static
        if static is not None:
            if context == STANDARD:
                return static
            matched = self._matching.get(context)  # matching()'s memo, read without a call
            if not (matched if matched is not None else self.matching(context)):
                return static  # no variant prices this context: the standard price holds
        by_day = self._by_day
        if when is None and by_day is not None:  # fast shape: today's, by the clock's UTC day
            found = by_day.get((int(time.time() // 86_400) + _EPOCH_DAY, context))
            if found is not None:
                return found
        ts = _aware(when)
        if by_day is not None:
            utc_day = ts.date() if ts.tzinfo is UTC else ts.astimezone(UTC).date()
            day = (utc_day.toordinal(), context)
            found = by_day.get(day)
            if found is None:
                found = self._choose(ts, context)
                by_day.put(day, found)
            return found
        return self._choose(ts, context)

    def _choose(self, ts: datetime, context: Context) -> Schedule:
        variants: tuple[int, ...] = ()
        if context != STANDARD:
            variants = tuple(
                i
                for i in self.matching(context)
                if self._variants[i].constraint is None or self._variants[i].constraint.active(ts)
            )
        return self._compile(self._standard_index(ts), variants)


def find(model: str, provider: str | None) -> tuple[Any, Any]:
    """(provider, model) from genai-prices' matcher, or raise ``LookupError``.

    A ``provider/model`` reference (LiteLLM style, ``openai/gpt-4o``) is retried as model
    ``gpt-4o`` of provider ``openai``, which is what genai-prices does for its ``litellm``
    provider. A provider id genai-prices does not know is treated as a hint and dropped, so
    that a gateway's own provider names still find the model; a known provider that lacks the
    model is an error (its price may differ from the model's first-party price). Without a
    provider, a model id that only a hosting provider lists is found by exact id.
    """
    snapshot = _snapshot()
    from genai_prices.data_snapshot import find_provider_by_id

    if provider is not None and find_provider_by_id(snapshot.providers, provider) is None:
        provider = None
    try:
        return snapshot.find_provider_model(model, None, provider, None)  # type: ignore[no-any-return]
    except LookupError as exc:
        first_error = exc
    if "/" in model:
        prefix, rest = model.split("/", 1)
        via = provider
        if via is None and find_provider_by_id(snapshot.providers, prefix) is not None:
            via = prefix
        try:
            return snapshot.find_provider_model(rest, None, via, None)  # type: ignore[no-any-return]
        except LookupError:
            pass
    if provider is None:
        # genai-prices finds a provider by model-name patterns only; a model listed solely
        # under a hosting provider (Groq's llama-3.3-70b-versatile, Perplexity's sonar) is
        # still found by its exact id, first provider in the snapshot's order.
        wanted = model.lower()
        for candidate in snapshot.providers:
            for info in candidate.models:
                if info.id == wanted:
                    return candidate, info
    raise first_error


@cache
def all_model_ids() -> tuple[str, ...]:
    """Every model id in the snapshot (for "did you mean" suggestions)."""
    with _lock:
        return tuple(sorted({m.id for p in _snapshot().providers for m in p.models}))


def provider_models() -> list[tuple[str, str]]:
    """Every (provider id, model id) of the snapshot in force, in the snapshot's order (for
    listing prices: ``costwarden prices --search``)."""
    with _lock:
        return [(p.id, m.id) for p in _snapshot().providers for m in p.models]


def suggestions(model: str, extra: Mapping[str, object] | None = None, n: int = 3) -> list[str]:
    """Close model names, custom ones included."""
    candidates = list(all_model_ids()) + list(extra or ())
    return difflib.get_close_matches(model.lower(), candidates, n=n, cutoff=0.6)


def base_rate(value: PriceValue | None) -> Decimal | None:
    """The short-context rate of a price value (a tiered price's ``base``)."""
    if value is None or isinstance(value, Decimal):
        return value
    return value.base


def top_rate(value: PriceValue | None) -> Decimal | None:
    """The highest rate of a price value (its most expensive tier)."""
    if value is None or isinstance(value, Decimal):
        return value
    return max([value.base, *(tier.price for tier in value.tiers)])
