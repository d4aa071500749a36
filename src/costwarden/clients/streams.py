"""Tracked streams: pass a provider stream through, settle its hold exactly once at the end.

A stream can end in three ways and each is billed honestly (see
:meth:`~costwarden.clients.settlement.CallAccount.settle_stream`):

* it completes: the provider's final usage (or, if it sent none, the counted text);
* it breaks (reset, timeout, bad event): what was produced so far, then the error is re-raised;
* the caller abandons it (``break``, ``close()``, leaving a ``with`` block, garbage collection):
  what was produced so far, and the underlying HTTP response is closed so generation stops.

``project(event, text)`` decides what the caller sees for each event: the text (tracked client)
or the SDK event itself (wrapped SDK clients); ``None`` hides the event.

An async stream settles with the account's async twins, so on a remote ledger the settlement
runs on a worker thread and the event loop goes on (see :mod:`costwarden.clients.offload`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any, Generic, TypeVar

from costwarden.clients.apis import StreamDecoder
from costwarden.clients.failures import raise_readable
from costwarden.clients.offload import detach
from costwarden.clients.settlement import CallAccount
from costwarden.records import StoredRecord

T = TypeVar("T")
Projection = Callable[[Any, str], T | None]
log = logging.getLogger("costwarden")


class _Books:
    """Settlement shared by the sync and async streams; never raises from a finaliser."""

    __slots__ = ("account", "decoder")

    def __init__(self, account: CallAccount, decoder: StreamDecoder) -> None:
        self.account = account
        self.decoder = decoder

    def settle(self, outcome: str) -> None:
        if self.account.settled:
            return
        try:
            self.account.settle_stream(self.decoder, outcome)
        except Exception as exc:
            self._unsettled(outcome, exc)

    async def settle_async(self, outcome: str) -> None:
        if self.account.settled:
            return
        try:
            await self.account.settle_stream_async(self.decoder, outcome)
        except Exception as exc:
            self._unsettled(outcome, exc)

    def settle_detached(self, outcome: str) -> None:
        """Settle from a finaliser of an async stream, which cannot await: on a worker
        thread for a remote ledger (the collector may be running on the event loop's thread,
        which must not wait for the database), inline for a local one."""
        if self.account.offload:
            detach(partial(self.settle, outcome))
        else:
            self.settle(outcome)

    @staticmethod
    def _unsettled(outcome: str, exc: Exception) -> None:
        # "aborted" runs in close()/__del__ and "error" while the provider's error is
        # raised: neither may raise ours instead. A completed stream's books failing is
        # the caller's business (its spend went unrecorded), so that one propagates.
        if outcome == "complete":
            raise exc
        log.exception("costwarden: could not settle a %s stream's hold", outcome)


class _PassThrough(Generic[T]):
    """What the sync and async streams share: the source, its books, the projection."""

    def __init__(
        self,
        source: Any,
        it: Any,
        account: CallAccount,
        decoder: StreamDecoder,
        project: Projection[T],
    ) -> None:
        self._source = source
        self._it = it
        self._books = _Books(account, decoder)
        self._project = project

    @property
    def record(self) -> StoredRecord | None:
        """The settled record (``None`` until the stream has ended or been closed)."""
        return self._books.account.record

    @property
    def decoder(self) -> StreamDecoder:
        """The decoder collecting the stream's text and usage."""
        return self._books.decoder

    def __getattr__(self, name: str) -> Any:
        # SDK stream attributes (``response``, ``_request_id``...) stay reachable.
        if name.startswith("__") or name in ("_source", "_books", "_it", "_project"):
            raise AttributeError(name)
        return getattr(self._source, name)


class TrackedStream(_PassThrough[T]):
    """A synchronous tracked stream (iterator and context manager, like the SDK's ``Stream``)."""

    def __init__(
        self, source: Any, account: CallAccount, decoder: StreamDecoder, project: Projection[T]
    ) -> None:
        super().__init__(source, iter(source), account, decoder, project)

    def __iter__(self) -> TrackedStream[T]:
        return self

    def __next__(self) -> T:
        decoder = self._books.decoder
        while True:
            if self._books.account.settled:
                raise StopIteration
            try:
                event = next(self._it)
            except StopIteration:
                self._books.settle("complete")
                raise
            except BaseException as exc:
                self._books.settle("error")
                raise_readable(exc)
            out = self._project(event, decoder.feed(event))
            if out is not None:
                return out

    def close(self) -> None:
        """Stop reading: charge what was produced, release the connection."""
        self._books.settle("aborted")
        close = getattr(self._source, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> TrackedStream[T]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        books = getattr(self, "_books", None)
        if books is not None and not books.account.settled:
            books.settle("aborted")


class AsyncTrackedStream(_PassThrough[T]):
    """The asynchronous twin (async iterator and async context manager)."""

    def __init__(
        self, source: Any, account: CallAccount, decoder: StreamDecoder, project: Projection[T]
    ) -> None:
        super().__init__(source, source.__aiter__(), account, decoder, project)

    def __aiter__(self) -> AsyncTrackedStream[T]:
        return self

    async def __anext__(self) -> T:
        decoder = self._books.decoder
        while True:
            if self._books.account.settled:
                raise StopAsyncIteration
            try:
                event = await self._it.__anext__()
            except StopAsyncIteration:
                await self._books.settle_async("complete")
                raise
            except BaseException as exc:
                await self._books.settle_async("error")
                raise_readable(exc)
            out = self._project(event, decoder.feed(event))
            if out is not None:
                return out

    async def close(self) -> None:
        """Stop reading: settle the call as aborted (billing what was reported or estimated) and
        close the provider's stream.
        """
        try:
            await self._books.settle_async("aborted")
        finally:  # even if cancelled meanwhile (the settlement itself runs to the end)
            close = getattr(self._source, "close", None)
            if close is not None:
                await close()

    aclose = close

    async def __aenter__(self) -> AsyncTrackedStream[T]:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __del__(self) -> None:
        # A finaliser cannot await; settle_detached keeps a remote ledger off the loop.
        books = getattr(self, "_books", None)
        if books is not None and not books.account.settled:
            books.settle_detached("aborted")
