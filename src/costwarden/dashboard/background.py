"""Work kept off the request path: folding new records into the rollup, and the optimizer's
recommendations (which read records, so they are computed in a thread and cached).

A request folds at most :data:`REQUEST_FOLD` new records itself (a few milliseconds), so a
page shows what was recorded a moment ago; a larger backlog (a ledger that had no rollup yet,
a burst of traffic) is folded by the background thread in chunks, and the page says how many
records are not in its figures yet.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from costwarden.errors import CostwardenError
from costwarden.ledger.rollup import Rollups
from costwarden.optimizer.recommend import Recommendation

log = logging.getLogger("costwarden.dashboard")

REQUEST_FOLD: Final = 5_000
CHUNK: Final = 20_000
ADVICE_TTL: Final = 600.0


class Refresher:
    """Keeps the rollup caught up (one folder at a time in this process)."""

    def __init__(self, ledger: Rollups, *, interval: float = 2.0) -> None:
        self.ledger = ledger
        self.interval = interval
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._starting = threading.Lock()

    def catch_up(self, limit: int = REQUEST_FOLD, *, background: bool = False) -> int:
        """Fold up to ``limit`` records unless another fold is running; the backlog left.
        ``background``: start the folding thread if it is not running (an app mounted by
        another one, such as the gateway, may never see its own lifespan events)."""
        if background and self._thread is None and not self._stop.is_set():
            self.start()
        if self._lock.acquire(blocking=False):
            try:
                self.ledger.refresh_rollups(limit)
            finally:
                self._lock.release()
        left = self.ledger.rollup_backlog()
        if left:
            self._wake.set()
        return left

    def start(self) -> None:
        """Start the folding thread (once; later calls do nothing)."""
        with self._starting:
            if self._thread is not None:
                return
            self._thread = threading.Thread(
                target=self._run, name="costwarden-dashboard-rollup", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        """Stop the folding thread and wait for it (the app's shutdown)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with self._lock:
                    folded = self.ledger.refresh_rollups(CHUNK)
            except CostwardenError as exc:
                log.warning("costwarden dashboard: could not fold records: %s", exc)
                folded = 0
            except Exception as exc:  # the ledger was closed under us (its owner shut down)
                log.info("costwarden dashboard: folding stopped: %s", exc)
                with self._starting:
                    self._thread = None  # the next page starts it again if it can
                return
            if folded and not self._stop.is_set():
                time.sleep(0.01)  # let writers in between chunks
                continue
            self._wake.wait(self.interval)
            self._wake.clear()


@dataclass(frozen=True, slots=True)
class Advice:
    """The recommendations of one computation, over how many records, and when."""

    items: list[Recommendation]
    records: int
    computed_at: float
    error: str | None = None


class AdviceCache:
    """The latest recommendations, recomputed in a thread when older than ``ttl``."""

    def __init__(self, compute: Callable[[], Advice], *, ttl: float = ADVICE_TTL) -> None:
        self._compute = compute
        self.ttl = ttl
        self._value: Advice | None = None
        self._lock = threading.Lock()
        self._running = False

    def get(self) -> Advice | None:
        """The cached advice (None until the first computation ends); starts one if stale."""
        with self._lock:
            value = self._value
            stale = value is None or time.time() - value.computed_at > self.ttl
            if stale and not self._running:
                self._running = True
                threading.Thread(
                    target=self._run, name="costwarden-dashboard-advice", daemon=True
                ).start()
        return value

    def _run(self) -> None:
        try:
            value = self._compute()
        except Exception as exc:  # shown on the page; never kills the server
            log.exception("costwarden dashboard: recommendations failed")
            value = Advice([], 0, time.time(), error=str(exc))
        with self._lock:
            self._value = value
            self._running = False


__all__ = ["Advice", "AdviceCache", "Refresher"]
