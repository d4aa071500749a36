"""Which price a call pays besides its token counts: batch, and the provider's service tier.

A *context* is ``(batch, service_tier)``: ``batch`` for the providers' batch APIs, and a
service tier such as OpenAI's ``"flex"`` / ``"priority"``. Providers report the standard tier
under several names (OpenAI ``"default"`` and ``"auto"``, Anthropic ``"standard"`` and the request
value ``"standard_only"``), all of which
mean the standard price; Anthropic reports a batch call as service tier ``"batch"``, which is the
same as ``batch=True``. Normalising once here keeps every pricer's cache keyed on one spelling.
"""

from __future__ import annotations

from typing import Final

from costwarden.errors import InvalidInputError

Context = tuple[bool, str | None]
STANDARD: Final[Context] = (False, None)
STANDARD_NAMES: Final = frozenset({"", "default", "auto", "standard", "standard_only"})


def context_of(batch: object, service_tier: object) -> Context:
    """``(batch, tier)`` with the tier normalised (lower case; standard names -> None)."""
    if not isinstance(batch, bool):
        raise InvalidInputError(f"batch must be True or False, got {batch!r}")
    if service_tier is None:
        return (batch, None)
    if not isinstance(service_tier, str):
        raise InvalidInputError(
            f"service_tier must be a string such as 'flex' or 'priority', or None; "
            f"got {service_tier!r}"
        )
    tier = service_tier.strip().lower()
    if tier == "batch":
        return (True, None)
    return (batch, None if tier in STANDARD_NAMES else tier)


def describe(context: Context) -> str:
    """Words for a context in error messages: ``batch``, ``service tier 'flex'``, ..."""
    batch, tier = context
    parts = (["batch"] if batch else []) + ([f"service tier {tier!r}"] if tier else [])
    return " and ".join(parts) or "standard"
