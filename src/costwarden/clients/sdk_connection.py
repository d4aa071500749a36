"""How an SDK-backed provider adapter reaches its service: the settings both adapters take.

The OpenAI and Anthropic adapters are configured the same way (a base URL, an API key, a
timeout, extra client options, or ready SDK clients) and build their SDK clients lazily from
the same keyword arguments, with the SDK's own retries off (the tracked client retries, so that
each attempt is held and charged).
"""

from __future__ import annotations

from typing import Any


class SDKConnection:
    """The connection settings of an adapter and its SDK clients, built on first use from
    ``client_kwargs`` by the adapter's ``_sdk_client``."""

    def __init__(
        self,
        base_url: str | None,
        api_key: str | None,
        timeout: float | None,
        clients: tuple[Any, Any],
        client_options: dict[str, Any] | None,
    ) -> None:
        self.base_url = base_url
        self._api_key = api_key
        self._client, self._async_client = clients
        kw: dict[str, Any] = {"max_retries": 0, **(client_options or {})}
        if base_url is not None:
            kw["base_url"] = base_url
        if timeout is not None:
            kw["timeout"] = timeout
        self._sdk_kwargs = kw

    def client_kwargs(self, api_key: str | None) -> dict[str, Any]:
        """The SDK client's keyword arguments, with ``api_key`` (None: the SDK reads its own)."""
        return {**self._sdk_kwargs, **({} if api_key is None else {"api_key": api_key})}

    @property
    def client(self) -> Any:
        """The SDK's client (``openai.OpenAI``, ``anthropic.Anthropic``), created on first use so
        that the SDK is imported only when needed."""
        if self._client is None:
            self._client = self._sdk_client(asynchronous=False)
        return self._client

    @property
    def async_client(self) -> Any:
        """The SDK's async client (``openai.AsyncOpenAI``, ``anthropic.AsyncAnthropic``), created
        on first use so that the SDK is imported only when needed."""
        if self._async_client is None:
            self._async_client = self._sdk_client(asynchronous=True)
        return self._async_client

    def _sdk_client(self, *, asynchronous: bool) -> Any:
        """A new SDK client, sync or async: each adapter imports its SDK here."""
        raise NotImplementedError


__all__ = ["SDKConnection"]
