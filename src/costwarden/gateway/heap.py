"""The gateway process's heap after startup: frozen out of the cyclic garbage collector.

Why: a worker's heap after startup is mostly objects that live as long as the process (the
tokenizer's rank tables, the price catalogue, imported modules), and CPython's collector
walks all of them on every full (generation 2) collection. Measured for issue #15 on a
``costwarden serve --workers 2`` worker at 200-300 RPS: a full collection about every
10-20 s, each 59-76 ms of CPU with the event loop stopped, so every request in flight waited
for it (a p99 of tens of ms on its own). The gateway's startup loads the price catalogue
first (``Gateway._warm_prices``), so that it is frozen too.

:func:`freeze_startup_heap` collects once and then moves every surviving object to the
collector's permanent generation (:func:`gc.freeze`): later collections walk only what was
allocated since, and nothing frozen is ever freed by the collector (it still is by reference
counting), which is what a long-lived server wants.

Only the process that runs the server calls it (``costwarden serve``); a library user's or a
test's process embedding a :class:`~costwarden.gateway.app.Gateway` keeps its collector as
it is.
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> int:
    """Collect, then freeze what survives; returns how many objects are now frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


__all__ = ["freeze_startup_heap"]
