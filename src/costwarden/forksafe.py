"""Staying usable across ``os.fork()``.

Users fork a process that already uses costwarden: ``gunicorn --preload``, multiprocessing's
default ``fork`` start method on Linux (before Python 3.14), a worker pool made after start-up.
The child of a fork has one thread, the one that forked. Every other thread is gone, and a
lock one of them held at that instant stays held in the child for ever; files and sockets are
shared with the parent, and so are the locks the kernel keeps on them.

So every costwarden object that owns a lock guarding state, a background thread or a
connection registers here (:func:`register`), and around each fork, in the forking thread:

- *before* it, the object takes the locks whose state the child must find consistent (waiting
  a bounded time: an object busy past it is forked as it is and the child sets it aside), and
  closes what a child must not inherit (the SQLite ledger's connections, whose per-file lock
  bookkeeping inside SQLite would otherwise be copied into the child and trusted there);
- *after* it, the parent releases those locks and reopens what it closed when next needed;
- the child makes every such lock new, forgets the parent's threads (each is started again
  when first needed) and never uses an inherited connection or pool: it opens its own on first
  use and keeps the inherited one referenced (:func:`set_aside`) rather than letting the
  garbage collector close it, which would act on the parent's sockets or file locks.

Locks that only guard a lazily built cache need no more than to be new in the child
(:func:`fresh_after_fork`).
"""

from __future__ import annotations

import itertools
import os
import threading
import weakref
from typing import Protocol, TypeVar


class ForkAware(Protocol):
    """What a registered object does around a fork (see the module doc)."""

    def _before_fork(self) -> None: ...

    def _after_fork_in_parent(self) -> None: ...

    def _after_fork_in_child(self) -> None: ...


class _Reinitialisable(Protocol):
    def _at_fork_reinit(self) -> None: ...


class _Lock(Protocol):
    def acquire(self, blocking: bool = ..., timeout: float = ...) -> bool: ...

    def release(self) -> None: ...


class HeldOverFork:
    """The lock an object takes before a fork and its parent releases after it.

    Why a class: every object whose lock guards a connection (the SQLite ledger, its WAL
    checkpointer) takes that lock in ``_before_fork`` waiting a bounded time, closes the
    connection only if it got the lock (no thread is using it then), and releases it in
    ``_after_fork_in_parent`` only if it got it; in the child the lock is a new one, so there
    is nothing to release. One object remembers which lock was taken, for all of them.
    """

    __slots__ = ("_held",)

    def __init__(self) -> None:
        self._held: _Lock | None = None

    def take(self, lock: _Lock, timeout: float) -> bool:
        """Before the fork: take ``lock``, waiting at most ``timeout`` seconds; whether it was
        taken (False: a thread is still inside past the wait, and the child sets aside what the
        lock guards instead of using it)."""
        self._held = lock if lock.acquire(timeout=timeout) else None
        return self._held is not None

    def release(self) -> None:
        """After the fork, in the parent: release the lock :meth:`take` got, if it got one."""
        lock, self._held = self._held, None
        if lock is not None:
            lock.release()

    def forget(self) -> None:
        """After the fork, in the child, which makes its own new lock: release nothing."""
        self._held = None


_L = TypeVar("_L")

_registry_lock = threading.Lock()
_order = itertools.count()
_objects: weakref.WeakValueDictionary[int, ForkAware] = weakref.WeakValueDictionary()
_locks: weakref.WeakSet[_Reinitialisable] = weakref.WeakSet()
_prepared: list[ForkAware] = []
_set_aside: list[object] = []


def register(obj: ForkAware) -> None:
    """Call ``obj``'s fork hooks around every fork while ``obj`` lives."""
    with _registry_lock:
        _objects[next(_order)] = obj


def fresh_after_fork(lock: _L) -> _L:
    """``lock`` (a ``threading.Lock`` or ``RLock``), made new and free in a forked child."""
    with _registry_lock:
        _locks.add(lock)  # type: ignore[arg-type]
    return lock


def set_aside(resource: object) -> None:
    """Keep an inherited connection or pool referenced for the life of this process, so that
    it is never used and never closed here (closing acts on what the parent still uses)."""
    _set_aside.append(resource)


def _before() -> None:
    _registry_lock.acquire()
    _prepared.clear()
    for obj in list(_objects.values()):
        try:
            obj._before_fork()
        except Exception:  # pragma: no cover - a hook must never stop a fork
            continue
        _prepared.append(obj)


def _after_in_parent() -> None:
    try:
        for obj in reversed(_prepared):
            try:
                obj._after_fork_in_parent()
            except Exception:  # pragma: no cover
                continue
    finally:
        _prepared.clear()
        _registry_lock.release()


def _after_in_child() -> None:
    global _registry_lock
    _registry_lock = threading.Lock()
    for lock in list(_locks):
        lock._at_fork_reinit()
    for obj in list(_objects.values()):
        try:
            obj._after_fork_in_child()
        except Exception:  # pragma: no cover
            continue
    _prepared.clear()


if hasattr(os, "register_at_fork"):  # not on Windows, which does not fork
    os.register_at_fork(
        before=_before, after_in_parent=_after_in_parent, after_in_child=_after_in_child
    )

__all__ = ["ForkAware", "HeldOverFork", "fresh_after_fork", "register", "set_aside"]
