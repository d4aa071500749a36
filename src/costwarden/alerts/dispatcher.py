"""AlertDispatcher: each alert claimed once in the ledger, delivered off the caller's path.

How an alert travels:

1. ``emit`` (caller's thread) picks the channels that want it and calls
   ``ledger.claim_alert(dedup_key, payload, channels)``: one atomic insert that fails if any
   process or host claimed the key before. Only the winner gets ``True`` and writes one
   pending delivery row per network channel (the *outbox*). Then it drops a wake-up into a
   bounded queue, calls the *synchronous* channels (the brief's ``alert_handler``) right there,
   in the caller's thread, and returns; it never raises and never waits for a network channel.
2. The worker thread (none if every channel is synchronous) leases due outbox rows
   (``lease_deliveries``, so two processes do not send the same row), groups them per channel
   into one digest, calls ``channel.send`` and records the outcome with ``finish_delivery``:
   delivered, or retried later with exponential backoff and jitter, or failed after
   ``max_attempts`` (or at once for a permanent error such as a revoked webhook).

Because the outbox is the source of truth, a full queue loses nothing (the worker polls the
outbox every ``poll_interval`` anyway), and rows left by a crash are sent after a restart by
whichever process's worker leases them first. A delivery whose channel this process does not
have is left to expire its lease for a process that has it.

If the ledger itself cannot be reached, the alert is still sent once from memory (no dedup
across processes, no retry) rather than lost: a ledger outage is when people need to know.

Every error text that is logged or stored goes through the channel's own ``redact`` (if it has
one) and :func:`costwarden.alerts.redact.redact`, so a webhook URL never reaches either.

In a forked child (see :mod:`costwarden.forksafe`) the parent's worker thread does not exist
and its queue and condition may have been locked by it at the fork: the child gets new ones,
empty (the parent sends what it queued), and starts its own worker at its first emit or
flush. A child that never emits does not start one, so its exit does not wait for channels.
"""

from __future__ import annotations

import atexit
import heapq
import logging
import math
import queue
import random
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from costwarden import forksafe
from costwarden.alerts.channel import AlertChannel, accepts
from costwarden.alerts.http import ChannelHTTPError
from costwarden.alerts.payload import alert_from_json, alert_to_json
from costwarden.alerts.redact import redact
from costwarden.errors import ConfigurationError
from costwarden.ledger.base import AlertOutbox, Delivery
from costwarden.records import Alert

log = logging.getLogger("costwarden.alerts")
_WAKE: Final = object()

_COUNTS: Final = ("queue_size", "max_attempts", "digest_max")
_SECONDS: Final = ("base_delay", "max_delay", "lease_seconds", "poll_interval")
OPTIONS: Final = (*_COUNTS, *_SECONDS, "digest_window")
"""The dispatcher settings a BudgetManager's ``alert_options`` or ``[alerts]`` table may set."""


def check_options(options: Mapping[str, object]) -> dict[str, Any]:
    """Validated dispatcher settings (see ``AlertDispatcher``); ConfigurationError naming the
    first bad one. Used at construction and config load, so a bad value is found before any
    alert fires."""
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ConfigurationError(f"unknown alert option(s) {unknown}; allowed: {sorted(OPTIONS)}")
    out: dict[str, Any] = {}
    for label, v in options.items():
        if label in _COUNTS:
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigurationError(f"{label} must be a positive integer, got {v!r}")
            out[label] = v
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ConfigurationError(f"{label} must be a number of seconds, got {v!r}")
        if label == "digest_window" and v < 0:
            raise ConfigurationError(f"digest_window must be 0 or more seconds, got {v!r}")
        if label != "digest_window" and not v > 0:
            raise ConfigurationError(f"{label} must be a positive number of seconds, got {v!r}")
        out[label] = float(v)
    return out


def check_channels(channels: Sequence[object]) -> list[AlertChannel]:
    """``channels`` if each is an AlertChannel with a unique non-empty name."""
    out: list[AlertChannel] = []
    for c in channels:
        n = getattr(c, "name", None)
        if not isinstance(c, AlertChannel) or not isinstance(n, str) or not n:
            raise ConfigurationError(
                f"{type(c).__name__} object is not an alert channel "
                "(needs name, min_level, scopes and send(alerts))"
            )
        out.append(c)
    names = [c.name for c in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigurationError(f"alert channel names must be unique; repeated: {dupes}")
    return out


def is_synchronous(channel: AlertChannel) -> bool:
    """Whether the channel asked to run in the caller's thread (``synchronous = True`` exactly),
    bypassing the outbox.
    """
    return getattr(channel, "synchronous", False) is True


def error_text(channel: AlertChannel, exc: BaseException) -> str:
    """``exc`` as text fit for a log line or the delivery history: the channel's own secrets
    removed (its ``redact``), then every URL cut to scheme and host."""
    text = f"{type(exc).__name__}: {exc}"
    own = getattr(channel, "redact", None)
    if callable(own):
        try:
            text = str(own(text))
        except Exception:
            text = f"{type(exc).__name__} (details withheld: the channel could not redact them)"
    return redact(text)


class AlertDispatcher:
    """Deduplicated, retried, off-path delivery of alerts to channels (see module doc)."""

    def __init__(
        self,
        ledger: AlertOutbox,
        channels: Sequence[AlertChannel],
        *,
        queue_size: int = 1000,
        max_attempts: int = 8,
        base_delay: float = 2.0,
        max_delay: float = 900.0,
        lease_seconds: float = 120.0,
        poll_interval: float = 5.0,
        digest_window: float = 0.25,
        digest_max: int = 50,
        clock: Callable[[], float] = time.time,
    ) -> None:
        opts = check_options(
            {
                "queue_size": queue_size,
                "max_attempts": max_attempts,
                "base_delay": base_delay,
                "max_delay": max_delay,
                "lease_seconds": lease_seconds,
                "poll_interval": poll_interval,
                "digest_window": digest_window,
                "digest_max": digest_max,
            }
        )
        checked = check_channels(channels)
        self.ledger = ledger
        self.channels: dict[str, AlertChannel] = {c.name: c for c in checked}
        self.max_attempts: int = opts["max_attempts"]
        self.base_delay, self.max_delay = opts["base_delay"], opts["max_delay"]
        self.lease_seconds, self.poll_interval = opts["lease_seconds"], opts["poll_interval"]
        self.digest_window: float = opts["digest_window"]
        self.digest_max: int = opts["digest_max"]
        self._clock = clock
        self._has_outbox = any(not is_synchronous(c) for c in checked)
        self._queue: queue.Queue[object] = queue.Queue(maxsize=opts["queue_size"])
        self._cond = threading.Condition()
        self._requested = 0  # flush generations asked for
        self._done = 0  # ... and completed by the worker
        self._last_cycle_ok = True
        # When this process's retries fall due (a heap): the worker wakes at the earliest, so
        # a retry waits its backoff, not the poll interval, however many are scheduled.
        self._retries: list[float] = []
        self._closing = False
        self._closed = False
        self.dropped_to_outbox = 0  # emits whose wake-up found the queue full
        self._worker: threading.Thread | None = None
        self._atexit: Callable[[], None] | None = None
        self._start_worker()  # at once: rows a crashed process left are sent without waiting
        forksafe.register(self)

    def _start_worker(self) -> None:
        """Start the worker thread (once); a dispatcher with only synchronous channels never
        has one (nothing of its own is in the outbox, and it must not lease others' rows)."""
        if self._worker is not None or self._closing or not self._has_outbox:
            return
        with self._cond:
            if self._worker is not None:
                return
            worker = threading.Thread(target=self._run, name="costwarden-alerts", daemon=True)
            worker.start()
            self._worker = worker
        ref = weakref.ref(self)

        def _at_exit() -> None:  # a short script must not exit with its alerts unsent
            dispatcher = ref()
            if dispatcher is not None:
                dispatcher.close(timeout=2.0)

        self._atexit = _at_exit
        atexit.register(_at_exit)

    # -- fork hooks (costwarden.forksafe) -----------------------------------------------------
    def _before_fork(self) -> None:
        pass

    def _after_fork_in_parent(self) -> None:
        pass

    def _after_fork_in_child(self) -> None:
        self._queue = queue.Queue(maxsize=self._queue.maxsize)
        self._cond = threading.Condition()
        self._requested = self._done = 0
        self._last_cycle_ok = True
        self._retries = []  # the parent retries what it scheduled
        self._worker = None

    # -- caller side ------------------------------------------------------------------------
    def emit(self, alert: Alert) -> bool:
        """Claim ``alert`` once across processes and queue it; True iff newly claimed here.

        Never raises and never waits on a channel (see module doc)."""
        try:
            if self._closing:
                log.warning("alert dispatcher is closed; alert not sent: %s", alert.message)
                return False
            if not isinstance(alert, Alert):
                log.error("AlertDispatcher.emit needs an Alert, got %r", type(alert).__name__)
                return False
            wanted = [c for c in self.channels.values() if accepts(c, alert)]
            now = [c for c in wanted if is_synchronous(c)]
            names = [c.name for c in wanted if not is_synchronous(c)]
            key = alert.dedup_key or f"{alert.kind}|{alert.scope}|{alert.period}|{uuid.uuid4().hex}"
            try:
                claimed = self.ledger.claim_alert(key, alert_to_json(alert), names, self._clock())
            except Exception as exc:
                log.error(
                    "alert outbox unavailable (%s); sending once from memory", redact(str(exc))
                )
                if names:
                    self._start_worker()
                    self._wake(("direct", alert, names))
                self._call_now(now, alert)
                return True
            if claimed and names:
                self._start_worker()
                self._wake(_WAKE)
            if claimed:
                self._call_now(now, alert)
            return bool(claimed)
        except Exception:  # emit must never fail a tracked call
            log.exception("could not emit an alert")
            return False

    @staticmethod
    def _call_now(channels: Sequence[AlertChannel], alert: Alert) -> None:
        """The synchronous channels, here in the caller's thread; a failure is logged."""
        for channel in channels:
            try:
                channel.send([alert])
            except Exception as exc:
                log.error(
                    "alert channel %r failed (called in the caller's thread, not retried): %s",
                    channel.name,
                    error_text(channel, exc),
                    exc_info=True,
                )

    def _wake(self, item: object) -> None:
        if self._worker is None:
            self._start_worker()  # a forked child's first emit (see the module doc)
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.dropped_to_outbox += 1  # the rows are in the outbox; the worker polls it

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every delivery due now has been attempted; True if all succeeded (False
        while a failed one waits for its retry).

        Synchronous channels were called by ``emit`` itself: with only those there is nothing
        to wait for."""
        if self._closed:
            return False
        if not self._has_outbox:
            return True
        self._start_worker()
        if self._worker is None or not self._worker.is_alive():
            return False
        with self._cond:
            self._requested += 1
            target = self._requested
        self._wake(_WAKE)
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._done < target:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return self._last_cycle_ok and not self._retries  # no failure awaiting a retry

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is due (up to ``timeout``), then stop the worker. Idempotent."""
        if self._closed:
            return
        if self._worker is not None:
            self.flush(timeout)
        self._closing = True
        if self._worker is not None:
            self._wake(_WAKE)
            self._worker.join(timeout=max(0.1, timeout))
        self._closed = True
        if self._atexit is not None:
            atexit.unregister(self._atexit)

    # -- worker side ------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._closing:
            due = self._retries[0] if self._retries else float("inf")
            wait = min(self.poll_interval, max(0.0, due - self._clock()))
            direct: list[tuple[Alert, list[str]]] = []
            try:
                item = self._queue.get(timeout=wait)
                if self.digest_window and item is _WAKE and not self._closing:
                    time.sleep(self.digest_window)  # let a burst land: one digest, not a flood
                self._take(item, direct)
                while True:
                    self._take(self._queue.get_nowait(), direct)
            except queue.Empty:
                pass
            with self._cond:
                generation = self._requested
            try:
                ok = self._deliver_direct(direct) & self._deliver_due()
            except Exception as exc:  # the ledger failed: keep the worker alive, try later
                log.error("alert delivery cycle failed: %s", redact(str(exc)))
                ok = False
            with self._cond:
                self._done = max(self._done, generation)
                self._last_cycle_ok = ok
                self._cond.notify_all()

    @staticmethod
    def _take(item: object, direct: list[tuple[Alert, list[str]]]) -> None:
        if isinstance(item, tuple) and item and item[0] == "direct":
            direct.append((item[1], item[2]))

    def _deliver_direct(self, direct: list[tuple[Alert, list[str]]]) -> bool:
        ok = True
        for alert, names in direct:
            for name in names:
                channel = self.channels[name]
                try:
                    channel.send([alert])
                except Exception as exc:
                    ok = False
                    log.warning(
                        "alert channel %r failed (no outbox, not retried): %s",
                        name,
                        error_text(channel, exc),
                    )
        return ok

    def _deliver_due(self) -> bool:
        ok = True
        now = self._clock()
        while self._retries and self._retries[0] <= now:
            heapq.heappop(self._retries)  # due now: leased below
        limit = self.digest_max * max(1, len(self.channels))
        seen: set[int] = set()
        while not self._closing:
            leased = self.ledger.lease_deliveries(self._clock(), self.lease_seconds, limit)
            fresh = [d for d in leased if d.id not in seen]
            if not fresh:
                break
            seen.update(d.id for d in fresh)
            by_channel: dict[str, list[Delivery]] = {}
            for d in fresh:
                if d.channel in self.channels:
                    by_channel.setdefault(d.channel, []).append(d)
            for name, rows in by_channel.items():
                channel = self.channels[name]
                size = max(
                    1, min(self.digest_max, int(getattr(channel, "max_batch", self.digest_max)))
                )
                for i in range(0, len(rows), size):
                    ok &= self._send(channel, rows[i : i + size])
            if len(leased) < limit:
                break
        return ok

    def _send(self, channel: AlertChannel, rows: list[Delivery]) -> bool:
        alerts, good = [], []
        for d in rows:
            try:
                alerts.append(alert_from_json(d.payload))
                good.append(d)
            except Exception as exc:
                self._finish(d, False, f"unreadable payload: {exc}", None)
        if not good:
            return False
        try:
            channel.send(alerts)
        except Exception as exc:
            error = error_text(channel, exc)
            permanent = isinstance(exc, ChannelHTTPError) and exc.permanent
            retry_after = exc.retry_after if isinstance(exc, ChannelHTTPError) else None
            for d in good:
                attempt = d.attempts + 1
                next_at = None
                if not permanent and attempt < self.max_attempts:
                    delay = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
                    delay *= random.uniform(0.5, 1.0)  # jitter: processes do not retry in step
                    if retry_after is not None:
                        delay = max(delay, min(retry_after, self.max_delay))
                    next_at = self._clock() + delay
                    heapq.heappush(self._retries, next_at)
                self._finish(d, False, error, next_at)
            when = (
                "giving up" if next_at is None else f"retrying in {next_at - self._clock():.1f} s"
            )
            log.warning(
                "alert channel %r failed (attempt %d of %d), %s: %s",
                channel.name,
                good[0].attempts + 1,
                self.max_attempts,
                when,
                error,
            )
            return False
        for d in good:
            self._finish(d, True, None, None)
        return True

    def _finish(
        self, d: Delivery, delivered: bool, error: str | None, next_at: float | None
    ) -> None:
        self.ledger.finish_delivery(
            d.id, delivered=delivered, error=error, next_attempt_at=next_at, now=self._clock()
        )
