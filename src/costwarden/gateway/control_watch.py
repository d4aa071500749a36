"""The ledger's control version as the event loop reads it: never a blocking round trip.

Every request asks whether the control plane (keys, budgets) moved, so that the key cache
drops its answers at once when it did (:mod:`costwarden.gateway.auth`). On SQLite and memory
``control_version()`` is a memory read and is called as it is. On PostgreSQL it answers from
memory for ``control_poll_seconds`` (250 ms) and then asks the server: a round trip that must
not run on the event loop, yet a hop to a worker thread on every request only to read a
number in memory costs more than the read (measured for issue #15: one thread round trip,
~65 µs of CPU, per request).

So :class:`ControlWatch` keeps the version it last fetched and, for ``control_poll_seconds``
after, answers with it in the loop. Past that the next request fetches it on a worker thread,
and every request arriving meanwhile waits for that same fetch (one hop per poll interval per
worker, not one per request). What the fetch returns may itself be up to one poll interval
old (the ledger's own cache), so a change made by another process is seen within two poll
intervals plus a round trip (0.5 s by default); the key cache's own ``key_cache_seconds``
(1 s) bounds it in every case.
"""

from __future__ import annotations

import asyncio
import time

from costwarden.clients.offload import run_offloaded
from costwarden.ledger.control import ControlPlane

DEFAULT_POLL_SECONDS = 0.25


class ControlWatch:
    """The control version for async code (see module doc)."""

    def __init__(self, ledger: ControlPlane, *, remote: bool) -> None:
        self._ledger = ledger
        self.remote = remote
        """Whether reading the version may be a round trip (fetched on a worker thread)."""
        poll = getattr(ledger, "control_poll_seconds", DEFAULT_POLL_SECONDS)
        self.poll_seconds = float(poll) if isinstance(poll, (int, float)) else DEFAULT_POLL_SECONDS
        self._seen = -1
        self._fresh_until = 0.0
        self._fetching: asyncio.Future[int] | None = None

    async def version(self) -> int:
        """The control version, at most ``poll_seconds`` older than the ledger's answer (raises
        :class:`~costwarden.errors.LedgerUnavailableError` if a fetch cannot reach it)."""
        if not self.remote:
            return self._ledger.control_version()
        if time.monotonic() < self._fresh_until:
            return self._seen
        fetching = self._fetching
        if fetching is None:
            fetching = self._fetching = asyncio.ensure_future(self._fetch())
            fetching.add_done_callback(_retrieved)
        return await asyncio.shield(fetching)

    async def _fetch(self) -> int:
        try:
            version = await run_offloaded(self._ledger.control_version, what="control version")
        finally:
            self._fetching = None
        self._seen = version
        self._fresh_until = time.monotonic() + self.poll_seconds
        return version


def _retrieved(future: asyncio.Future[int]) -> None:
    """A fetch whose every waiter left still has its error read (each waiter sees it too)."""
    if not future.cancelled():
        future.exception()


__all__ = ["ControlWatch"]
