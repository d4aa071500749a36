"""Every exception costwarden raises, in one tree.

::

    CostwardenError
     ├── InvalidInputError (ValueError)        bad argument: negative/NaN cost, naive/aware mix...
     │    └── NoTierPriceError                 batch/service tier a custom price has no rates for
     ├── ConfigurationError (ValueError)       bad configuration file, URL or option
     ├── UnknownModelError (KeyError)          a model with no price: add one, never $0
     ├── TokenCountError                       text or messages that cannot be counted
     ├── BudgetExceededError                   admission denied; carries scope, period, figures
     ├── HoldError                             a reservation that cannot be committed/released
     ├── LedgerError                           the ledger failed (corrupt, schema, SQL)
     │    └── LedgerUnavailableError           the ledger cannot be reached (fail-closed deny)
     ├── KeyAuthError (PermissionError)        a virtual key secret or id was refused
     │    ├── UnknownKeyError (+LookupError)   ... no such key (or not a costwarden key)
     │    ├── RevokedKeyError                  ... revoked
     │    └── ExpiredKeyError                  ... past its expiry or rotation grace period
     ├── NoModelFitsError                      CostOptimizer: nothing meets quality and cost
     ├── ProviderError                         an upstream LLM API failed
     │    └── ProviderResponseError            ... answered with something we cannot read
     └── AlertDeliveryError                    an alert channel failed (never raised to callers
                                               of tracked calls; seen in delivery history)

Messages say what happened and what to do about it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class CostwardenError(Exception):
    """Base class of all costwarden errors."""


class InvalidInputError(CostwardenError, ValueError):
    """An argument is invalid; nothing was changed."""


class ConfigurationError(CostwardenError, ValueError):
    """A configuration value, file or URL is invalid."""


class UnknownModelError(CostwardenError, KeyError):
    """No price is known for a model. Unknown models are never silently free.

    A ``KeyError`` (hence a ``LookupError``) so that code written for tokencost, which raises
    ``KeyError`` for an unknown model, keeps catching it; ``str()`` is the message itself, not
    KeyError's quoted repr.
    """

    def __init__(
        self, model: str, provider: str | None = None, suggestions: list[str] | None = None
    ):
        self.model = model
        self.provider = provider
        self.suggestions = suggestions or []
        where = f" (provider {provider!r})" if provider else ""
        hint = f" Did you mean: {', '.join(self.suggestions)}?" if self.suggestions else ""
        super().__init__(
            f"No price is known for model {model!r}{where}.{hint} Add one under [prices] in "
            f"costwarden.toml ([prices.{_toml_key(model)}] input = <USD per 1M>, output = "
            f"<USD per 1M>), or in code with PriceCatalog(custom={{{model!r}: {{'input': "
            "<USD per 1M>, 'output': <USD per 1M>}}) (see docs/pricing.md)."
        )

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _toml_key(name: str) -> str:
    """A TOML table key for a model name: bare when it can be, quoted otherwise."""
    bare = name.replace("-", "").replace("_", "").isalnum() and name.isascii()
    return name if bare else '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


class NoTierPriceError(InvalidInputError):
    """A custom price was asked for batch or a service tier it has no rates for.

    An error rather than the standard price: a batch or flex price cannot be derived from the
    standard one, and a guess would misprice every such call silently.
    """

    def __init__(self, model: str, what: str, tiers: Iterable[str] = ()) -> None:
        self.model = model
        self.what = what
        known = ", ".join(sorted(tiers)) or "none"
        key = "batch" if what == "batch" else "service_tiers"
        super().__init__(
            f"the custom price for model {model!r} has no {what} rates (service tiers it "
            f"prices: {known}); add a {key!r} table to its entry (see docs/pricing.md), or "
            "price the call at the standard rates"
        )


class TokenCountError(CostwardenError, ValueError):
    """Text or messages could not be counted (malformed message list, wrong types)."""


class BudgetExceededError(CostwardenError):
    """A request was denied because it does not fit a budget.

    ``scope`` is e.g. ``"global"`` or ``"user:alice"``; ``period`` is ``"daily"``, ``"weekly"``,
    ``"monthly"``, a rolling window such as ``"rolling:3600s"`` or ``"per_request"``. Amounts are
    float USD. The message prints its figures with :func:`costwarden.money.format_compared`, so
    the comparison it states (``spent + reserved + requested > limit``) reads true.
    """

    def __init__(
        self,
        message: str,
        *,
        scope: str = "global",
        period: str = "daily",
        limit: float = 0.0,
        spent: float = 0.0,
        attempted: float = 0.0,
        reserved: float = 0.0,
    ):
        super().__init__(message)
        self.scope = scope
        self.period = period
        self.limit = limit
        self.spent = spent
        self.attempted = attempted
        self.reserved = reserved

    def to_dict(self) -> dict[str, Any]:
        """The refusal as JSON-ready values (scope, period, limit, spent, reserved and attempted
        dollars), for an HTTP error body or a log line.
        """
        return {
            "error": "budget_exceeded",
            "message": str(self),
            "scope": self.scope,
            "period": self.period,
            "limit_usd": self.limit,
            "spent_usd": self.spent,
            "reserved_usd": self.reserved,
            "attempted_usd": self.attempted,
        }


class HoldError(CostwardenError):
    """A reservation could not be committed or released (unknown or already settled)."""


class LedgerError(CostwardenError):
    """The ledger failed: schema mismatch, corruption or a database error."""


class LedgerUnavailableError(LedgerError):
    """The ledger could not be reached in time; by default spending is denied (fail closed)."""


class NoModelFitsError(CostwardenError, LookupError):
    """No model meets the requested quality, capabilities and cost bound."""


class ProviderError(CostwardenError):
    """An upstream LLM API call failed."""


class ProviderResponseError(ProviderError):
    """An upstream LLM API answered with a body costwarden cannot read."""


class AlertDeliveryError(CostwardenError):
    """An alert channel failed to deliver; recorded in delivery history, retried."""


class KeyAuthError(CostwardenError, PermissionError):
    """A virtual key was refused. ``key_id`` is set when the key is known."""

    def __init__(self, message: str, *, key_id: str | None = None) -> None:
        super().__init__(message)
        self.key_id = key_id


class UnknownKeyError(KeyAuthError, LookupError):
    """No key has this secret (or id); a typo, a key of another ledger, or not a key at all."""


class RevokedKeyError(KeyAuthError):
    """The key was revoked; revocation is final (create a new key)."""


class ExpiredKeyError(KeyAuthError):
    """The key passed its expiry, or this secret was rotated out and its grace period ended."""
