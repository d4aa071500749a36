"""Pricing a usage record after the call: never refused, never silently $0.

The call has happened, so its record must be stored at *some* price: the catalogue's at the
reported service tier; the standard rates, with a WARNING, when that tier has no price; or, for
a model the catalogue does not know, a conservative fallback that the caller raises an
``unknown_price`` alert about (see ``BudgetManager.price``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from costwarden.errors import NoTierPriceError, UnknownModelError
from costwarden.money import Nanos, format_usd

if TYPE_CHECKING:
    from costwarden.pricing.catalog import PriceCatalog
    from costwarden.records import UsageRecord

log = logging.getLogger("costwarden")


def price_record(catalog: PriceCatalog, record: UsageRecord) -> tuple[Nanos, str, str | None]:
    """``(nano-USD, price source, fallback)`` of a record the caller did not price: the
    source as stored with the record, and ``fallback`` (which rates were used) only when the
    model has no known price."""
    try:
        nanos = catalog.cost_nanos(
            record.model,
            record.usage,
            provider=record.provider,
            when=record.timestamp,
            service_tier=record.service_tier,
        )
        return nanos, "catalogue", None
    except NoTierPriceError as exc:
        log.warning("costwarden: %s; recorded at the standard rates", exc)
        nanos = catalog.cost_nanos(
            record.model, record.usage, provider=record.provider, when=record.timestamp
        )
        return nanos, f"catalogue:standard rates, no {exc.what} price", None
    except UnknownModelError as exc:
        nanos, desc = catalog.fallback_cost_nanos(record.usage)
        log.warning(
            "costwarden: no price for model %r; recorded at the fallback price (%s): %s. %s",
            record.model,
            desc,
            format_usd(nanos),
            exc,
        )
        return nanos, f"fallback:{desc}", desc
