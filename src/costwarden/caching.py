"""``BoundedCache``: a memo whose size has a ceiling, with a plain dict lookup on a hit.

Why a bound: the keys of costwarden's memos come from callers (prompts, model names, scope
tuples), and a library inside a long-running server or the gateway sees an unbounded stream of
distinct ones. A memo without a ceiling is a memory leak that grows with traffic; one with a
ceiling costs, at worst, recomputing what it would have remembered.

Why clear-when-full rather than LRU: a hit must cost what a ``dict.get`` costs, because the
memos sit on the per-call path where the work they save is a few microseconds. LRU has to
reorder on every hit (``OrderedDict.move_to_end``: about 5x a bare ``get`` when measured on
the clients' path), while emptying the cache when it fills costs nothing on a hit and, for the
working sets these memos see (a handful of system prompts, models, budgets, far below the
bound), one recomputation per live key after a rare clear.

Thread safety: every operation is one or a few dict operations under the GIL. Two threads that
fill the cache at once may both clear it or miscount its weight by one entry; a cache may
forget early, never answer wrongly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from costwarden.errors import InvalidInputError

K = TypeVar("K")
V = TypeVar("V")


class BoundedCache(Generic[K, V]):
    """At most ``max_entries`` entries (and, if given, ``max_weight`` total weight).

    ``get(key)`` is the underlying dict's own ``get`` (``None`` on a miss); ``put`` stores,
    emptying the cache first when the entry would go over a bound. ``weight`` lets a cache of
    large keys or values (long prompts, say) bound their total size rather than their number;
    an entry heavier than ``max_weight`` on its own is not kept at all.
    """

    __slots__ = ("_data", "_weight", "get", "max_entries", "max_weight", "replace")

    get: Callable[[K], V | None]
    """The value stored for a key, or None: the dict's bound ``get`` (no Python frame)."""
    replace: Callable[[K, V], None]
    """Store a new value for a key ``get`` has just found: the dict's bound ``__setitem__``
    (no Python frame; measured on the SQLite ledger's totals, which move on every record).
    The key is there already, so no bound is crossed and no weight is added; a key that may
    be absent goes through :meth:`put`. Should another thread empty the cache in between,
    the key is stored again: one entry over the bound at worst, never a wrong answer."""

    def __init__(self, max_entries: int, *, max_weight: int | None = None) -> None:
        _check_bound("max_entries", max_entries)
        if max_weight is not None:
            _check_bound("max_weight", max_weight)
        self.max_entries = max_entries
        self.max_weight = max_weight
        self._data: dict[K, V] = {}
        self._weight = 0
        self.get = self._data.get  # the dict is cleared in place, so this stays its get
        self.replace = self._data.__setitem__

    def put(self, key: K, value: V, *, weight: int = 0) -> None:
        """Store ``value`` for ``key``; a cache that would go over a bound is emptied first.

        Weights add up per ``put`` (storing a key again counts it again), which can only make
        the cache clear early.
        """
        limit = self.max_weight
        if limit is not None and weight > limit:
            return
        if len(self._data) >= self.max_entries or (
            limit is not None and self._weight + weight > limit
        ):
            self.clear()
        self._data[key] = value
        self._weight += weight

    def pop(self, key: K) -> V | None:
        """Remove and return ``key``'s value (None if absent); its weight stays counted."""
        return self._data.pop(key, None)

    def clear(self) -> None:
        """Forget everything."""
        self._data.clear()
        self._weight = 0

    @property
    def weight(self) -> int:
        """The total weight of what is stored."""
        return self._weight

    def __len__(self) -> int:
        return len(self._data)

    def __iter__(self) -> Iterator[K]:
        """The keys stored now (a copy: another thread's ``put`` cannot break the loop)."""
        return iter(list(self._data))

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __repr__(self) -> str:
        return (
            f"<BoundedCache {len(self._data)}/{self.max_entries} entries, "
            f"weight {self._weight}/{self.max_weight}>"
        )


def remember(cache: BoundedCache[K, V], key: K, build: Callable[[K], V]) -> V:
    """``cache``'s value for ``key``, else ``build(key)``, kept in ``cache``.

    For memos keyed by what a caller hands in (the manager's HashedTuples of checks and
    buckets): an unhashable key (a list) has nothing to be remembered by, so it is built every
    time rather than refused. Two threads may both build a missing value; the later one wins.
    """
    try:
        hit = cache.get(key)
    except TypeError:
        return build(key)
    if hit is None:
        hit = build(key)
        cache.put(key, hit)
    return hit


def _check_bound(name: str, bound: object) -> None:
    if isinstance(bound, bool) or not isinstance(bound, int) or bound < 1:
        raise InvalidInputError(f"{name} must be a positive int, got {bound!r}")
