"""``CostOptimizer``: the brief's facade over the catalogue, selection, estimates and advice.

Why the candidates are the pricing's models: a model can only be recommended if its cost can
be computed, and callers who pass the brief's small price table mean "choose among these".
A brief-style dict becomes ``PriceCatalog(custom=dict, include_defaults=False)``; a
``PriceCatalog`` contributes ``catalog.models()`` plus, when it includes the genai-prices
defaults, every catalogue model it can price.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from costwarden.bounds import MAX_INT64
from costwarden.caching import BoundedCache
from costwarden.errors import ConfigurationError, InvalidInputError
from costwarden.money import Nanos, usd_to_nanos
from costwarden.optimizer.catalogue import CAPABILITIES, ModelCatalogue, ModelInfo, normalize_task
from costwarden.optimizer.estimate import (
    CostEstimate,
    FastPath,
    Messages,
    count_input,
    estimate,
)
from costwarden.optimizer.recommend import Advisor, Recommendation
from costwarden.optimizer.select import (
    Candidate,
    Option,
    Selection,
    choose,
    price_options,
    provider_filter,
    request_usage,
)
from costwarden.pricing import PriceCatalog, default_catalog
from costwarden.records import Usage, check_count


class CostOptimizer:
    """Pick the cheapest adequate model, estimate calls, and advise from usage history.

    ``pricing``: the brief's ``{model: {"input": usd_per_1M, "output": usd_per_1M}}`` table, a
    :class:`~costwarden.pricing.PriceCatalog`, or None for the default catalogue.
    ``models``: catalogue entries to add or override (a mapping or a TOML/JSON file; see
    :meth:`ModelCatalogue.with_entries`).
    """

    def __init__(
        self,
        pricing: Mapping[str, Mapping[str, Any]] | PriceCatalog | None = None,
        *,
        models: Mapping[str, Any] | str | Path | None = None,
        catalogue: ModelCatalogue | None = None,
    ) -> None:
        if pricing is None:
            self.prices = default_catalog()
        elif isinstance(pricing, PriceCatalog):
            self.prices = pricing
        elif isinstance(pricing, Mapping):
            if not pricing:
                raise ConfigurationError("pricing is empty: give at least one model's prices")
            self.prices = PriceCatalog(custom=pricing, include_defaults=False)
        else:
            raise ConfigurationError(
                "pricing must be a {model: {'input': ..., 'output': ...}} mapping (USD per 1M "
                f"tokens) or a PriceCatalog, got {type(pricing).__name__}"
            )
        base = catalogue if catalogue is not None else ModelCatalogue.default()
        self.catalogue = base.with_entries(models) if models is not None else base
        self._candidates: list[Candidate] | None = None
        self._price_names: dict[str, tuple[str, str | None]] = {}
        self._fast: dict[str, FastPath | None] = {}
        self._options: BoundedCache[tuple[str, Usage, frozenset[str], int], list[Option]]
        self._options = BoundedCache(256)

    # -- candidates ---------------------------------------------------------------------------
    @property
    def candidates(self) -> list[Candidate]:
        """Priced models with catalogue data, one per catalogue entry (first name wins)."""
        if self._candidates is None:
            self._candidates = self._find_candidates()
        return list(self._candidates)

    def _find_candidates(self) -> list[Candidate]:
        seen: dict[str, Candidate] = {}
        names: list[tuple[str, str | None]] = [(n, None) for n in self.prices.models()]
        if self.prices.include_defaults:
            for entry in self.catalogue:
                provider, name = entry.price_ref if entry.price_ref else (None, entry.id)
                names.append((name, provider))
        for name, provider in names:
            info = self.catalogue.get(name)
            if info is None or info.id in seen:
                continue
            if provider is None and info.price_ref and self.prices.include_defaults:
                ref_provider, ref_name = info.price_ref
                if self.catalogue.get(ref_name) is info and _same(name, ref_name):
                    provider = ref_provider
            if not self.prices.knows(name, provider):
                continue
            seen[info.id] = Candidate(name, provider, info)
        return sorted(seen.values(), key=lambda c: c.name)

    def model_info(self, model: str) -> ModelInfo:
        """Catalogue entry of ``model`` (ids, aliases, dated ids, provider prefixes)."""
        return self.catalogue[model]

    # -- selection ----------------------------------------------------------------------------
    def select_model(
        self,
        task_type: str,
        max_cost: float | None = None,
        quality: str | float = "medium",
        **request: Any,
    ) -> str:
        """Name of the cheapest candidate good enough for ``task_type`` within ``max_cost``.

        ``max_cost`` is USD per request; ``quality`` is low/medium/high/best or a 0-100 score.
        Keyword options (see :meth:`select`): ``input_tokens``, ``output_tokens``,
        ``input_text``, ``requires``, ``min_context``, ``cached_tokens``, ``providers``.
        """
        return self.select(task_type, max_cost, quality, **request).model

    def select(
        self,
        task_type: str,
        max_cost: float | None = None,
        quality: str | float = "medium",
        *,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        input_text: str | Messages | None = None,
        requires: Iterable[str] = (),
        min_context: int = 0,
        cached_tokens: int = 0,
        providers: Iterable[str] | None = None,
    ) -> Selection:
        """:meth:`select_model` with the evidence: score, cost and every option considered.

        The request defaults to the task's token profile (``select.TASK_PROFILES``);
        ``input_text`` is counted (with the o200k encoding, as an estimate for other
        families) and overrides ``input_tokens``. ``providers`` limits the choice to models
        those providers serve (names such as ``"openai"``, ``"groq"``; None: every
        provider); ``Selection.provider`` is then the one that serves the pick.
        NoModelFitsError says what would fit.
        """
        task = normalize_task(task_type)
        allowed = provider_filter(providers)
        threshold = self.catalogue.threshold(quality)
        bound: Nanos | None = None
        if max_cost is not None:
            bound = usd_to_nanos(max_cost, field="max_cost")
        needs = _capabilities(requires)
        if isinstance(min_context, bool) or not isinstance(min_context, int) or min_context < 0:
            raise InvalidInputError(f"min_context must be a non-negative int, got {min_context!r}")
        if input_text is not None:
            input_tokens = count_input("gpt-4o", input_text)[0]
        elif input_tokens is not None:
            input_tokens = check_count(input_tokens, "input_tokens")
        if output_tokens is not None:
            output_tokens = check_count(output_tokens, "output_tokens")
        usage = request_usage(
            task, input_tokens, output_tokens, check_count(cached_tokens, "cached_tokens")
        )
        key = (task, usage, needs, min_context)
        options = self._options.get(key)
        if options is None:
            # Pricing every candidate is the slow part; the answer for a request shape only
            # changes with the prices, so it is kept (bounded) for repeated selections.
            options = price_options(
                self.prices, self.candidates, task, usage, requires=needs, min_context=min_context
            )
            self._options.put(key, options)
        label = repr(quality) if not isinstance(quality, str) else f"'{quality}'"
        return choose(
            options,
            task=task,
            threshold=threshold,
            best_tolerance=self.catalogue.best_tolerance,
            max_cost_nanos=bound,
            usage=usage,
            level_label=label,
            providers=allowed,
        )

    # -- estimates ----------------------------------------------------------------------------
    def estimate_cost(
        self,
        model: str,
        input_text: str | Messages,
        expected_output_tokens: int = 500,
        *,
        cached_tokens: int | bool = 0,
        provider: str | None = None,
        batch: bool = False,
    ) -> float:
        """Estimated USD of one call: real token count of ``input_text``, the output bound, the
        model's current price (cache-read rate for ``cached_tokens``, True = whole input)."""
        if (
            provider is None
            and not batch
            and type(input_text) is str
            and type(expected_output_tokens) is int
            and MAX_INT64 >= expected_output_tokens >= 0
            and type(cached_tokens) is int
            and cached_tokens >= 0
        ):
            fast = self._fast[model] if model in self._fast else self._compile_fast(model)
            if fast is not None:
                n_in = fast.count(input_text)
                if fast.threshold is None or n_in <= fast.threshold:
                    cached = cached_tokens if cached_tokens < n_in else n_in
                    return fast.cost(n_in, expected_output_tokens, cached) / 1_000_000_000
        return self.estimate(
            model,
            input_text,
            expected_output_tokens,
            cached_tokens=cached_tokens,
            provider=provider,
            batch=batch,
        ).cost_usd

    def estimate(
        self,
        model: str,
        input_text: str | Messages | None = None,
        expected_output_tokens: int = 500,
        *,
        input_tokens: int | None = None,
        cached_tokens: int | bool = 0,
        provider: str | None = None,
        batch: bool = False,
    ) -> CostEstimate:
        """The detailed form of :meth:`estimate_cost` (token counts, rates, source).

        Give either ``input_text`` (counted) or ``input_tokens`` (trusted);
        ``cached_tokens=True`` means the whole input is a cached prefix."""
        if provider is None:
            model, provider = self._price_name(model)
        return estimate(
            self.prices,
            model,
            provider,
            input_text,
            input_tokens,
            expected_output_tokens,
            cached_tokens,
            batch,
        )

    def _compile_fast(self, model: str) -> FastPath | None:
        name, provider = self._price_name(model) if isinstance(model, str) else (model, None)
        fast = FastPath.compile(self.prices, name) if provider is None else None
        if len(self._fast) < 4096 and isinstance(model, str):
            self._fast[model] = fast
        return fast

    def _price_name(self, model: str) -> tuple[str, str | None]:
        """(name, provider) to price ``model`` by: itself, or its catalogue price_ref (cached)."""
        found = self._price_names.get(model)
        if found is None:
            found = (model, None)
            if isinstance(model, str) and not self.prices.knows(model):
                info = self.catalogue.get(model)
                if info is not None and info.price_ref is not None:
                    ref_provider, ref_name = info.price_ref
                    found = (ref_name, ref_provider)
            if len(self._price_names) < 4096:
                self._price_names[model] = found
        return found

    # -- advice -------------------------------------------------------------------------------
    def recommend_optimizations(self, usage_records: Iterable[Any]) -> list[str]:
        """Concrete, quantified advice, biggest monthly saving first (the brief's form)."""
        return [r.message for r in self.recommendations(usage_records)]

    def recommendations(
        self,
        usage_records: Iterable[Any],
        *,
        min_monthly_saving: float = 0.01,
        trim_fraction: float = 0.25,
    ) -> list[Recommendation]:
        """Structured advice for the CLI and dashboard (see ``optimizer.recommend``)."""
        if isinstance(trim_fraction, bool) or not (
            isinstance(trim_fraction, (int, float))
            and math.isfinite(trim_fraction)
            and 0 < trim_fraction < 1
        ):
            raise InvalidInputError(f"trim_fraction must be within (0, 1), got {trim_fraction!r}")
        if isinstance(usage_records, (str, bytes)) or not isinstance(usage_records, Iterable):
            raise InvalidInputError("usage_records must be an iterable of UsageRecord")
        advisor = Advisor(
            self.prices,
            self.catalogue,
            self.candidates,
            min_monthly_saving_nanos=usd_to_nanos(min_monthly_saving, field="min_monthly_saving"),
            trim_fraction=float(trim_fraction),
        )
        try:
            advisor.load(usage_records)
        except AttributeError as exc:
            raise InvalidInputError(
                f"usage_records must hold UsageRecord (or ledger StoredRecord) objects: {exc}"
            ) from None
        return advisor.run()


def _same(a: str, b: str) -> bool:
    return a.strip().lower().rsplit("/", 1)[-1] == b.strip().lower().rsplit("/", 1)[-1]


def _capabilities(requires: Iterable[str]) -> frozenset[str]:
    if isinstance(requires, str):
        requires = (requires,)
    needs = frozenset(str(r).strip().lower() for r in requires)
    unknown = needs - CAPABILITIES
    if unknown:
        raise InvalidInputError(
            f"unknown capabilities {sorted(unknown)}; known: {', '.join(sorted(CAPABILITIES))}"
        )
    return needs
