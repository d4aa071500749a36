"""``costwarden prices`` without model names: list and search the price catalogue.

Why matching is done on names before any price is resolved: the genai-prices snapshot lists
over two thousand (provider, model) pairs and resolving one takes about 2 ms, so only the
rows that will be shown are resolved. A search matches the model ids that contain it,
ignoring case and the separators ids differ in (``sonnet 4.5`` finds ``claude-sonnet-4-5``),
else those with every word of it in any order (``haiku claude``); when no id matches, the
nearest ids (difflib, as the "did you mean" of an unknown model) are listed instead, and the
output says so.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from costwarden.pricing import PriceCatalog, ResolvedPrice

_SEPARATORS = re.compile(r"[\s\-_.:/@]+")


def _norm(text: str) -> str:
    return _SEPARATORS.sub("-", text.strip().lower()).strip("-")


@dataclass(frozen=True, slots=True)
class Listing:
    """The rows to show, how many entries matched in all, and whether they are near names
    (no id contained the search) rather than matches."""

    prices: list[ResolvedPrice]
    matched: int
    fuzzy: bool
    unpriced: int  # listed entries skipped because no price is in force for them


def list_prices(
    catalog: PriceCatalog, *, search: str | None, provider: str | None, limit: int
) -> Listing:
    """Entries of ``catalog`` matching ``search`` and ``provider`` (exact id, case-insensitive),
    resolved up to ``limit``: exact id first, then ids starting with the search, then the rest,
    each by model then provider; with no search, by provider then model."""
    from costwarden.errors import UnknownModelError

    entries = list(dict.fromkeys(catalog.entries()))
    if provider is not None:
        wanted = provider.strip().lower()
        entries = [(m, p) for m, p in entries if (p or "").lower() == wanted]
    fuzzy = False
    if search is None or not search.strip():
        ranked = sorted(entries, key=lambda e: ((e[1] or "").lower(), e[0].lower()))
    else:
        query = _norm(search)
        words = query.split("-")
        rank: dict[tuple[str, str | None], int] = {}
        loose: list[tuple[str, str | None]] = []
        for model, prov in entries:
            name = _norm(model)
            if query in name:
                rank[(model, prov)] = 0 if name == query else 1 if name.startswith(query) else 2
            elif all(w in name for w in words):
                loose.append((model, prov))
        ranked = sorted(rank, key=lambda e: (rank[e], e[0].lower(), (e[1] or "").lower()))
        if not ranked:  # "haiku claude" for claude-3-haiku: every word, in any order
            ranked = sorted(loose, key=lambda e: (e[0].lower(), (e[1] or "").lower()))
        if not ranked:
            fuzzy = True
            by_name: dict[str, list[tuple[str, str | None]]] = {}
            for model, prov in entries:
                by_name.setdefault(model.lower(), []).append((model, prov))
            near = difflib.get_close_matches(
                search.strip().lower(), list(by_name), n=10, cutoff=0.6
            )
            ranked = [e for name in near for e in by_name[name]]
    shown: dict[tuple[str, str | None], ResolvedPrice] = {}
    unpriced = 0
    for model, prov in ranked:
        if len(shown) >= limit:
            break
        try:
            price = catalog.resolve(model, prov)
        except UnknownModelError:
            unpriced += 1  # listed by genai-prices with no price in force today
            continue
        # A custom price for a model overrides genai-prices' rows of it: show it once.
        shown.setdefault((price.model, price.provider), price)
    return Listing(list(shown.values()), len(ranked), fuzzy, unpriced)


def price_dict(name: str, p: ResolvedPrice) -> dict[str, Any]:
    """One price as ``costwarden prices --json`` gives it (rates: exact decimal strings)."""
    return {
        "model": name,
        "resolved_as": p.model,
        "provider": p.provider,
        "source": p.source,
        "input_per_1m": str(p.input),
        "output_per_1m": str(p.output),
        "cache_read_per_1m": None if p.cache_read is None else str(p.cache_read),
        "cache_write_per_1m": None if p.cache_write is None else str(p.cache_write),
        "long_context_threshold": p.long_context_threshold,
    }
