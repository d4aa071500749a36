"""Tracked LLM calls: ``TrackedLLMClient`` (+ async), provider adapters, and SDK wrappers.

See ``docs/clients.md``. The SDKs (``openai``, ``anthropic``) are optional and imported only
when a provider or wrapper that needs them is used.
"""

from __future__ import annotations

from costwarden.clients.accounting import Attribution, CallAccount, Estimate, estimate_call
from costwarden.clients.anthropic_provider import AnthropicProvider
from costwarden.clients.batch import record_batch_results
from costwarden.clients.openai_provider import OpenAIProvider
from costwarden.clients.providers import ChatRequest, Provider, ProviderRegistry
from costwarden.clients.simulated import SimulatedProvider
from costwarden.clients.streams import AsyncTrackedStream, TrackedStream
from costwarden.clients.tracked import (
    AsyncTrackedLLMClient,
    ChatResult,
    RetryPolicy,
    TrackedLLMClient,
)
from costwarden.clients.wrappers import WrappedClient, wrap

__all__ = [
    "AnthropicProvider",
    "AsyncTrackedLLMClient",
    "AsyncTrackedStream",
    "Attribution",
    "CallAccount",
    "ChatRequest",
    "ChatResult",
    "Estimate",
    "OpenAIProvider",
    "Provider",
    "ProviderRegistry",
    "RetryPolicy",
    "SimulatedProvider",
    "TrackedLLMClient",
    "TrackedStream",
    "WrappedClient",
    "estimate_call",
    "record_batch_results",
    "wrap",
]
