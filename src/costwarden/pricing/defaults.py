"""The brief's price tables (``PRICING``, ``POPULAR_PRICING``) and the fallback reference set.

The tables are *derived* from genai-prices when first used, never typed in by hand, so they
cannot drift from the catalogue that prices calls. They are plain ``{model: {"input": ...,
"output": ..., "cache_read": ..., "cache_write": ...}}`` dicts of float USD per 1M tokens (the
brief's public shape); a long-context model shows its short-context (base) rates.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import Final

from costwarden import forksafe
from costwarden.pricing.genai import GenaiPricer, base_rate, find

CLASSIC_MODELS: Final = (
    "gpt-4o",
    "gpt-4o-mini",
    "gpt-4-turbo",
    "claude-3-5-sonnet",
    "claude-3-haiku",
    "claude-3-opus",
)
"""The original brief's table; its acceptance test depends on exactly these names."""

POPULAR_MODELS: Final = (
    "gpt-4.1",
    "gpt-4.1-mini",
    "gpt-4.1-nano",
    "gpt-5",
    "gpt-5-mini",
    "gpt-5-nano",
    "o3",
    "o4-mini",
    "claude-sonnet-4-5",
    "claude-sonnet-4-0",
    "claude-opus-4-1",
    "claude-opus-4-5",
    "claude-haiku-4-5",
    "gemini-2.5-pro",
    "gemini-2.5-flash",
    "gemini-2.5-flash-lite",
    "mistral-large-latest",
    "mistral-small-latest",
    "deepseek-chat",
    "deepseek-reasoner",
    # genai-prices lists Llama only under hosting providers, so the provider prefix is needed
    "groq/llama-3.3-70b-versatile",
    "groq/llama-3.1-8b-instant",
    "groq/meta-llama/llama-4-maverick-17b-128e-instruct",
    "groq/meta-llama/llama-4-scout-17b-16e-instruct",
)
"""Current models; any the genai-prices snapshot lacks are left out of POPULAR_PRICING."""

FALLBACK_REFERENCE: Final = (
    "gpt-5.5",
    "claude-opus-4-8",
    "claude-sonnet-4-5",
    "gemini-3-pro-preview",
    "gemini-2.5-pro",
)
"""Flagship models whose highest rates price an unknown model after the fact."""

_RATE_NAMES: Final = (
    ("input", "input_mtok"),
    ("output", "output_mtok"),
    ("cache_read", "cache_read_mtok"),
    ("cache_write", "cache_write_mtok"),
)
_lock = forksafe.fresh_after_fork(threading.Lock())


def _table(names: tuple[str, ...]) -> dict[str, dict[str, float]]:
    table: dict[str, dict[str, float]] = {}
    for name in names:
        try:
            provider, model = find(name, None)
        except LookupError:
            continue
        prices = GenaiPricer(provider, model).standard_prices()
        row: dict[str, float] = {}
        for public, key in _RATE_NAMES:
            rate = base_rate(prices.get(key))
            if rate is not None:
                row[public] = float(rate)
        if "input" in row and "output" in row:
            table[name] = row
    return table


@cache
def classic_pricing() -> dict[str, dict[str, float]]:
    """The brief's ``PRICING`` table (gpt-4o ... claude-3-opus) from genai-prices."""
    with _lock:
        return _table(CLASSIC_MODELS)


@cache
def popular_pricing() -> dict[str, dict[str, float]]:
    """``POPULAR_PRICING``: current models present in the genai-prices snapshot."""
    with _lock:
        return _table(POPULAR_MODELS)
