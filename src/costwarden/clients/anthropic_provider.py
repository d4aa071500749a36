"""Anthropic Messages via the ``anthropic`` SDK.

OpenAI-style messages are mapped to the Messages API: ``system`` messages become the top-level
``system`` string (Anthropic rejects a system role inside ``messages``); ``max_tokens`` is
always sent (the API requires it, and it is what bounds the hold). Credentials come from
``ANTHROPIC_API_KEY`` (read by the SDK); the SDK's retries are off, the tracked client retries.
"""

from __future__ import annotations

from typing import Any

from costwarden.clients.apis import Api
from costwarden.clients.requests import ChatRequest


class AnthropicProvider:
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
        self.name = name
        self.free = False
        self.base_url = base_url
        self._api_key = api_key
        self._timeout = timeout
        self._client = client
        self._async_client = async_client
        self._options = dict(client_options or {})

    def _client_kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {"max_retries": 0, **self._options}
        if self.base_url is not None:
            kw["base_url"] = self.base_url
        if self._api_key is not None:
            kw["api_key"] = self._api_key
        if self._timeout is not None:
            kw["timeout"] = self._timeout
        return kw

    @property
    def client(self) -> Any:
        """The ``anthropic.Anthropic`` client, created on first use so the SDK is imported only when
        needed.
        """
        if self._client is None:
            import anthropic

            self._client = anthropic.Anthropic(**self._client_kwargs())
        return self._client

    @property
    def async_client(self) -> Any:
        """The ``anthropic.AsyncAnthropic`` client, created on first use so the SDK is imported only
        when needed.
        """
        if self._async_client is None:
            import anthropic

            self._async_client = anthropic.AsyncAnthropic(**self._client_kwargs())
        return self._async_client

    def build(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        """Turn a ChatRequest into Messages API keyword arguments: system and developer messages
        become the ``system`` field, the rest stay messages.
        """
        kw: dict[str, Any] = dict(request.options)
        system = [m for m in request.messages if m.get("role") in ("system", "developer")]
        if system:
            kw["system"] = "\n\n".join(str(m.get("content") or "") for m in system)
        kw["messages"] = [m for m in request.messages if m not in system]
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
