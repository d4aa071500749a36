"""How an SDK-backed provider adapter reaches its service: the settings both adapters take.

The OpenAI and Anthropic adapters are configured the same way (a base URL, an API key, a
timeout, extra client options, or ready SDK clients) and build their SDK clients lazily from
the same keyword arguments, with the SDK's own retries off (the tracked client retries, so that
each attempt is held and charged).

Who closes what: an SDK client the adapter built is the adapter's, and :meth:`SDKConnection.close`
/ :meth:`SDKConnection.aclose` close it (its pooled sockets would otherwise be left to the
garbage collector, and an async one's transports outlive their event loop). A client the caller
passed in (``client=``, ``async_client=``) is the caller's: it is never closed here. Closing is
not final: a later call builds a new client, so an adapter shared by several tracked clients
keeps working after one of them is closed.
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
        # Which of the two clients this adapter built (and so must close); the caller's are not.
        self._built_sync = False
        self._built_async = False
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
            self._built_sync = True
        return self._client

    @property
    def async_client(self) -> Any:
        """The SDK's async client (``openai.AsyncOpenAI``, ``anthropic.AsyncAnthropic``), created
        on first use so that the SDK is imported only when needed."""
        if self._async_client is None:
            self._async_client = self._sdk_client(asynchronous=True)
            self._built_async = True
        return self._async_client

    def close(self) -> None:
        """Close the sync SDK client this adapter built, if any (safe to call twice).

        An async client it built is left open: its connections belong to the event loop that
        made them and can only be closed there, by :meth:`aclose`.
        """
        if self._built_sync and self._client is not None:
            client, self._client, self._built_sync = self._client, None, False
            client.close()

    async def aclose(self) -> None:
        """Close both SDK clients this adapter built (call it on the loop the async one ran on)."""
        self.close()
        if self._built_async and self._async_client is not None:
            client, self._async_client, self._built_async = self._async_client, None, False
            await client.close()

    def _sdk_client(self, *, asynchronous: bool) -> Any:
        """A new SDK client, sync or async: each adapter imports its SDK here."""
        raise NotImplementedError


__all__ = ["SDKConnection"]
