"""OpenAI (Chat Completions or Responses) and OpenAI-compatible services, via the ``openai`` SDK.

The SDK clients are created lazily, so that constructing a tracked client never needs
credentials: ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL`` (or the preset's variable) are read by the
SDK at the first call. The SDK's own retries are turned off (``max_retries=0``) because the
tracked client retries itself, inside one budget hold.

Streams always ask for ``stream_options.include_usage`` so the bill comes from the provider; an
OpenAI-compatible server that ignores it is charged by counting the streamed text instead.
"""

from __future__ import annotations

import os
from typing import Any, Final

from costwarden.clients.apis import Api
from costwarden.clients.requests import ChatRequest, split_system
from costwarden.clients.sdk_connection import SDKConnection
from costwarden.errors import ConfigurationError, InvalidInputError

COMPATIBLE: Final[dict[str, tuple[str, str | None, bool]]] = {
    # name: (base URL, API-key environment variable, free)
    "openrouter": ("https://openrouter.ai/api/v1", "OPENROUTER_API_KEY", False),
    "groq": ("https://api.groq.com/openai/v1", "GROQ_API_KEY", False),
    "together": ("https://api.together.xyz/v1", "TOGETHER_API_KEY", False),
    "vllm": ("http://localhost:8000/v1", "VLLM_API_KEY", True),
    "ollama": ("http://localhost:11434/v1", None, True),
}
"""OpenAI-compatible presets. Local servers are ``free``: admitted at $0, never budget-blocked."""


class OpenAIProvider(SDKConnection):
    """Calls ``chat.completions.create`` (``api="chat"``) or ``responses.create``."""

    def __init__(
        self,
        *,
        name: str = "openai",
        api: Api = "chat",
        base_url: str | None = None,
        api_key: str | None = None,
        api_key_env: str | None = None,
        free: bool = False,
        timeout: float | None = None,
        client: Any = None,
        async_client: Any = None,
        client_options: dict[str, Any] | None = None,
    ) -> None:
        if api not in ("chat", "responses"):
            raise InvalidInputError(
                f"OpenAIProvider api must be 'chat' or 'responses', not {api!r}"
            )
        if not isinstance(name, str) or not name:
            raise InvalidInputError(f"provider name must be a non-empty string, got {name!r}")
        super().__init__(base_url, api_key, timeout, (client, async_client), client_options)
        self.name = name
        self.api: Api = api
        self.free = free
        self._api_key_env = api_key_env

    @classmethod
    def compatible(cls, service: str, **kw: Any) -> OpenAIProvider:
        """A preset for an OpenAI-compatible service (``openrouter``, ``groq``, ``ollama``...)."""
        try:
            base_url, env, free = COMPATIBLE[service]
        except KeyError:
            raise ConfigurationError(
                f"no OpenAI-compatible preset {service!r}; known: {', '.join(COMPATIBLE)}; "
                "or use OpenAIProvider(name=..., base_url=..., api_key_env=...)"
            ) from None
        kw.setdefault("name", service)
        kw.setdefault("base_url", base_url)
        kw.setdefault("api_key_env", env)
        kw.setdefault("free", free)
        return cls(**kw)

    def _client_kwargs(self) -> dict[str, Any]:
        key = self._api_key
        if key is None and self._api_key_env is not None:
            key = os.environ.get(self._api_key_env)
            if key is None and not self.free:
                raise ConfigurationError(
                    f"provider {self.name!r} needs an API key: set {self._api_key_env}"
                )
        if key is None and self.free:
            key = "unused"  # local servers ignore it, the SDK insists on one
        return self.client_kwargs(key)

    def _sdk_client(self, *, asynchronous: bool) -> Any:
        """A new ``openai.OpenAI`` or ``openai.AsyncOpenAI`` (imported only when needed)."""
        import openai

        kind = openai.AsyncOpenAI if asynchronous else openai.OpenAI
        try:
            return kind(**self._client_kwargs())
        except openai.OpenAIError as exc:
            raise ConfigurationError(f"cannot create the OpenAI client: {exc}") from exc

    def build(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        """Turn a ChatRequest into keyword arguments for this API (Chat Completions or Responses),
        asking for usage in streams.
        """
        kw: dict[str, Any] = dict(request.options)
        kw["model"] = request.model
        if self.api == "chat":
            kw["messages"] = request.messages
            kw["max_tokens"] = request.max_tokens
            if stream:
                kw["stream"] = True
                kw["stream_options"] = {**kw.get("stream_options", {}), "include_usage": True}
            return kw
        system, kw["input"] = split_system(request.messages)
        if system is not None:
            kw["instructions"] = system
        kw["max_output_tokens"] = request.max_tokens
        if stream:
            kw["stream"] = True
        return kw

    def _method(self, client: Any) -> Any:
        return client.chat.completions.create if self.api == "chat" else client.responses.create

    def call(self, kwargs: dict[str, Any]) -> Any:
        """Send the prepared request through the sync OpenAI client's method for this API (chat or
        responses).
        """
        return self._method(self.client)(**kwargs)

    async def acall(self, kwargs: dict[str, Any]) -> Any:
        """Send the prepared request through the async OpenAI client's method for this API (chat or
        responses).
        """
        return await self._method(self.async_client)(**kwargs)
