"""Price catalogue: what an LLM call costs, exactly, in microseconds.

``PriceCatalog`` layers custom prices over the genai-prices catalogue and compiles each
model's price once (see ``rates.py``); ``default_catalog()`` is the shared instance.
``PRICING`` (the original brief's classic table) and ``POPULAR_PRICING`` are derived from
genai-prices on first access, so importing this package stays cheap (no 0.5 s snapshot load
until a price is needed).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from costwarden import forksafe
from costwarden.pricing.catalog import PriceCatalog, ResolvedPrice

__all__ = ["POPULAR_PRICING", "PRICING", "PriceCatalog", "ResolvedPrice", "default_catalog"]

if TYPE_CHECKING:
    PRICING: dict[str, dict[str, float]]
    POPULAR_PRICING: dict[str, dict[str, float]]

_default: PriceCatalog | None = None
_default_lock = forksafe.fresh_after_fork(threading.Lock())


def default_catalog() -> PriceCatalog:
    """The process-wide catalogue (genai-prices defaults, no custom prices), created once."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = PriceCatalog()
    return _default


def __getattr__(name: str) -> Any:
    # PEP 562: build the derived tables on first use, then keep them as module attributes.
    if name in ("PRICING", "POPULAR_PRICING"):
        from costwarden.pricing.defaults import classic_pricing, popular_pricing

        value = classic_pricing() if name == "PRICING" else popular_pricing()
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
