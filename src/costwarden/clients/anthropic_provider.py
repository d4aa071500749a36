"""Anthropic Messages via the ``anthropic`` SDK.

OpenAI-style messages are mapped to the Messages API: ``system`` messages become the top-level
``system`` string (Anthropic rejects a system role inside ``messages``); ``max_tokens`` is
always sent (the API requires it, and it is what bounds the hold). Credentials come from
``ANTHROPIC_API_KEY`` (read by the SDK); the SDK's retries are off, the tracked client retries.
"""

from __future__ import annotations

from typing import Any

from costwarden.clients.apis import Api
from costwarden.clients.requests import ChatRequest, split_system
from costwarden.clients.sdk_connection import SDKConnection


class AnthropicProvider(SDKConnection):
    """Calls ``messages.create``."""

    api: Api = "messages"

    def __init__(
        self,
        *,
        name: str = "anthropic",
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float | None = None,
        client: Any = None,
        async_client: Any = None,
        client_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(base_url, api_key, timeout, (client, async_client), client_options)
        self.name = name
        self.free = False

    def _sdk_client(self, *, asynchronous: bool) -> Any:
        """A new ``anthropic.Anthropic`` or ``anthropic.AsyncAnthropic`` (imported only when
        needed)."""
        import anthropic

        kind = anthropic.AsyncAnthropic if asynchronous else anthropic.Anthropic
        return kind(**self.client_kwargs(self._api_key))

    def build(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        """Turn a ChatRequest into Messages API keyword arguments: system and developer messages
        become the ``system`` field, the rest stay messages.
        """
        kw: dict[str, Any] = dict(request.options)
        system, kw["messages"] = split_system(request.messages)
        if system is not None:
            kw["system"] = system
        kw["model"] = request.model
        kw["max_tokens"] = request.max_tokens
        if stream:
            kw["stream"] = True
        return kw

    def call(self, kwargs: dict[str, Any]) -> Any:
        """Send the prepared Messages request through the sync Anthropic client."""
        return self.client.messages.create(**kwargs)

    async def acall(self, kwargs: dict[str, Any]) -> Any:
        """Send the prepared Messages request through the async Anthropic client."""
        return await self.async_client.messages.create(**kwargs)
