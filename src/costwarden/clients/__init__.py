"""Tracked LLM calls: ``TrackedLLMClient`` (+ async), provider adapters, and SDK wrappers.

See ``docs/clients.md``. The SDKs (``openai``, ``anthropic``) are optional and imported only
when a provider or wrapper that needs them is used.
"""

from __future__ import annotations

from costwarden.clients.anthropic_provider import AnthropicProvider
from costwarden.clients.attribution import Attribution
from costwarden.clients.batch import record_batch_results
from costwarden.clients.estimation import Estimate, estimate_call
from costwarden.clients.openai_provider import OpenAIProvider
from costwarden.clients.providers import ProviderRegistry
from costwarden.clients.requests import ChatRequest, Provider
from costwarden.clients.settlement import CallAccount
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
