"""Ledger calls off the event loop, for async callers of a remote ledger.

The budget bookkeeping (``BudgetManager.reserve``, ``commit``, ``release``, ``record_spend``)
is synchronous. On a memory or SQLite ledger it answers in microseconds, and the async clients
call it inline: a hop to a thread (50-100 µs) would cost more than the call. A ledger that says
``remote = True`` (PostgreSQL) makes each call a network round trip that may wait up to its
``statement_timeout`` (a slow server, a contended bucket lock); the async clients run those
calls here, on a worker thread, and await them, so the event loop keeps serving other tasks.
Whether a client offloads is read once, with :func:`is_remote`, when it is made.

Why a dedicated executor rather than ``asyncio.to_thread``:

* The loop's default executor is small (``min(32, cpus + 4)`` threads: 6 on two cores) and
  shared: asyncio's ``getaddrinfo`` (every new HTTP connection to the provider) and the
  application's own ``to_thread`` calls queue on it. A slow ledger would fill it with calls
  waiting on the database, and provider calls would then stall on DNS. Here ledger calls only
  ever wait for each other.
* A call whose caller was cancelled must still finish (a settlement) or be undone (a hold
  obtained after the cancellation). That clean-up runs on these threads and needs no event
  loop, which may be gone by then (``asyncio.run`` returned). Worker threads are joined at
  interpreter exit, so a settlement in flight is not cut off either.
* 32 threads, started on demand and shared by every manager in the process: more than the
  PostgreSQL ledger's default pool (10 connections), so a burst waits in the pool, under its
  ``pool_timeout`` and with the same ``LedgerUnavailableError`` / ``fail_open`` handling as
  many synchronous threads would get, rather than in an unbounded queue here. A forked child
  makes its own executor (the parent's threads do not exist there).

The context (``contextvars``) of the caller is copied to the worker, as ``to_thread`` does.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar

if TYPE_CHECKING:
    from costwarden.manager import BudgetManager

T = TypeVar("T")
log = logging.getLogger("costwarden")

MAX_WORKERS: Final = 32
THREAD_NAME_PREFIX: Final = "costwarden-ledger"

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def is_remote(manager: BudgetManager) -> bool:
    """Whether ``manager``'s ledger calls go over the network (its ``remote``, which the
    Ledger Protocol declares)."""
    return bool(manager.ledger.remote)


def _executor() -> ThreadPoolExecutor:
    global _pool
    pool = _pool
    if pool is None:
        with _pool_lock:
            pool = _pool
            if pool is None:
                pool = _pool = ThreadPoolExecutor(MAX_WORKERS, THREAD_NAME_PREFIX)
    return pool


def _forget_pool_after_fork() -> None:
    global _pool, _pool_lock
    _pool = None
    _pool_lock = threading.Lock()


if hasattr(os, "register_at_fork"):  # not on Windows, which does not fork
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


def _submit(fn: Callable[[], T]) -> Future[T] | None:
    """``fn`` queued on a worker, or None when no thread can be started any more (the
    interpreter is shutting down): the caller then runs it inline."""
    try:
        return _executor().submit(fn)
    except RuntimeError:
        return None


def detach(call: Callable[[], object]) -> None:
    """Run ``call`` on a worker and do not wait for it (inline if no worker can be had).

    For settlements that nobody can await (a stream collected by the garbage collector, which
    may run on the event loop's thread). ``call`` must handle its own errors.
    """
    run = contextvars.copy_context().run
    if _submit(lambda: run(call)) is None:
        call()


class _Job(Generic[T]):
    """One ledger call on a worker, and what becomes of its outcome if its caller leaves.

    ``run`` (on the worker) and ``abandon`` (on the loop, when the awaiting task is
    cancelled) each mark their side under one lock and read the other's mark, so exactly one
    of them sees both and deals with the outcome: the worker if the caller left first, else
    the loop (by handing the finished outcome to a worker).
    """

    __slots__ = ("_abandoned", "_call", "_context", "_finished", "_lock", "_undo", "_what")

    def __init__(self, call: Callable[[], T], undo: Callable[[T], object] | None, what: str):
        self._call = call
        self._undo = undo
        self._what = what
        self._context = contextvars.copy_context()
        self._lock = threading.Lock()
        self._finished = False
        self._abandoned = False

    def run(self) -> T:
        try:
            result = self._context.run(self._call)
        except BaseException as exc:
            if self._finish():
                self._lost(exc)
            raise
        if self._finish():
            self._discard(result)
        return result

    def _finish(self) -> bool:
        """Mark the call finished; True if its caller had already left."""
        with self._lock:
            self._finished = True
            return self._abandoned

    def abandon(self, future: Future[T]) -> None:
        """The awaiting task was cancelled: make sure the call's outcome is not lost."""
        with self._lock:
            self._abandoned = True
            finished = self._finished
        if not finished:
            # run() will see the mark. A call that would be undone and has not started is
            # simply dropped (if it has started, cancel() fails and run() undoes it).
            if self._undo is not None:
                future.cancel()
            return
        # It finished just before the cancellation, and its outcome never reached the task
        # (it may still be on its way into ``future``): settle it on a worker, not the loop.
        if _submit(lambda: self._late(future)) is None:
            self._late(future)

    def _late(self, future: Future[T]) -> None:
        try:
            result = future.result()
        except BaseException as exc:
            self._lost(exc)
        else:
            self._discard(result)

    def _lost(self, exc: BaseException) -> None:
        if self._undo is not None:  # a reservation that failed holds nothing
            log.debug("costwarden: a cancelled caller's %s failed: %r", self._what, exc)
            return
        log.error(
            "costwarden: the %s of a cancelled call failed; its usage is not recorded",
            self._what,
            exc_info=exc,
        )

    def _discard(self, result: T) -> None:
        if self._undo is None:
            return
        try:
            self._undo(result)
        except Exception:
            log.warning(
                "costwarden: could not undo a cancelled caller's %s (a hold expires by its TTL)",
                self._what,
                exc_info=True,
            )


def _consume(waiter: asyncio.Future[Any]) -> None:
    """Mark a result nobody awaits any more as retrieved (the job logs what matters)."""
    if not waiter.cancelled():
        waiter.exception()


async def run_offloaded(
    call: Callable[[], T], *, undo: Callable[[T], object] | None = None, what: str
) -> T:
    """Run ``call`` on a worker thread and await its result (or its error, unchanged).

    Cancelling the awaiting task does not stop the call. It runs to the end (a settlement is
    recorded once, as if the caller had stayed), and then, if ``undo`` is given, its result is
    undone on the worker (``undo=manager.release`` drops a hold obtained for a caller that has
    gone). The task's CancelledError is raised at once, not after the call. ``what`` names the
    call in the log messages of these cases.
    """
    job = _Job(call, undo, what)
    future = _submit(job.run)
    if future is None:
        return call()
    waiter = asyncio.wrap_future(future)
    try:
        # shield: cancelling the task must not cancel ``future`` (a queued settlement would
        # then never run); abandon() decides what a cancellation means for the call.
        return await asyncio.shield(waiter)
    except asyncio.CancelledError:
        waiter.add_done_callback(_consume)
        job.abandon(future)
        raise
