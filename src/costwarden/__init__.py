"""costwarden: cost tracking and hard budget enforcement for LLM APIs.

The brief's API (``Budget``, ``BudgetManager``, ``UsageRecord``, ``AlertLevel``,
``CostOptimizer``, ``TrackedLLMClient``, ``PRICING``) plus reservations, scopes, ledgers,
pricing, token counting, SDK wrappers and alerts. Heavy parts (the price catalogue, tokenizers,
SDK integrations) are imported on first use, so ``import costwarden`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from costwarden.budget import Budget, Scope
from costwarden.errors import (
    BudgetExceededError,
    ConfigurationError,
    CostwardenError,
    HoldError,
    InvalidInputError,
    LedgerError,
    LedgerUnavailableError,
    NoModelFitsError,
    ProviderError,
    TokenCountError,
    UnknownModelError,
)
from costwarden.ledger import Ledger, open_ledger
from costwarden.manager import BudgetManager, Hold
from costwarden.records import Alert, AlertLevel, StoredRecord, Usage, UsageRecord

if TYPE_CHECKING:
    from costwarden.alerts import (
        AlertChannel,
        AlertDispatcher,
        CallableChannel,
        EmailChannel,
        LoggingChannel,
        SlackChannel,
        WebhookChannel,
    )
    from costwarden.clients import AsyncTrackedLLMClient, TrackedLLMClient, wrap
    from costwarden.forecast import Forecast
    from costwarden.optimizer import CostEstimate, CostOptimizer, Recommendation
    from costwarden.pricing import PRICING, PriceCatalog
    from costwarden.tokens import TokenCount, count_message_tokens, count_tokens

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    "AlertChannel": "costwarden.alerts",
    "AlertDispatcher": "costwarden.alerts",
    "CallableChannel": "costwarden.alerts",
    "LoggingChannel": "costwarden.alerts",
    "CostEstimate": "costwarden.optimizer",
    "Recommendation": "costwarden.optimizer",
    "EmailChannel": "costwarden.alerts",
    "SlackChannel": "costwarden.alerts",
    "WebhookChannel": "costwarden.alerts",
    "AsyncTrackedLLMClient": "costwarden.clients",
    "TrackedLLMClient": "costwarden.clients",
    "wrap": "costwarden.clients",
    "Forecast": "costwarden.forecast",
    "CostOptimizer": "costwarden.optimizer",
    "PRICING": "costwarden.pricing",
    "PriceCatalog": "costwarden.pricing",
    "TokenCount": "costwarden.tokens",
    "count_message_tokens": "costwarden.tokens",
    "count_tokens": "costwarden.tokens",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'costwarden' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "PRICING",
    "Alert",
    "AlertChannel",
    "AlertDispatcher",
    "AlertLevel",
    "AsyncTrackedLLMClient",
    "Budget",
    "BudgetExceededError",
    "BudgetManager",
    "CallableChannel",
    "ConfigurationError",
    "CostEstimate",
    "CostOptimizer",
    "CostwardenError",
    "EmailChannel",
    "Forecast",
    "Hold",
    "HoldError",
    "InvalidInputError",
    "Ledger",
    "LedgerError",
    "LedgerUnavailableError",
    "LoggingChannel",
    "NoModelFitsError",
    "PriceCatalog",
    "ProviderError",
    "Recommendation",
    "Scope",
    "SlackChannel",
    "StoredRecord",
    "TokenCount",
    "TokenCountError",
    "TrackedLLMClient",
    "UnknownModelError",
    "Usage",
    "UsageRecord",
    "WebhookChannel",
    "__version__",
    "count_message_tokens",
    "count_tokens",
    "open_ledger",
    "wrap",
]
