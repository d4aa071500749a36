"""AlertDispatcher: each alert claimed once in the ledger, delivered off the caller's path.

How an alert travels:

1. ``emit`` (caller's thread) picks the channels that want it and calls
   ``ledger.claim_alert(dedup_key, payload, channels)``: one atomic insert that fails if any
   process or host claimed the key before. Only the winner gets ``True`` and writes one
   pending delivery row per channel (the *outbox*). Then it drops a wake-up into a bounded
   queue and returns; it never raises and never waits for a channel.
2. The worker thread leases due outbox rows (``lease_deliveries``, so two processes do not
   send the same row), groups them per channel into one digest, calls ``channel.send`` and
   records the outcome with ``finish_delivery``: delivered, or retried later with exponential
   backoff and jitter, or failed after ``max_attempts`` (or at once for a permanent error
   such as a revoked webhook).

Because the outbox is the source of truth, a full queue loses nothing (the worker polls the
outbox every ``poll_interval`` anyway), and rows left by a crash are sent after a restart by
whichever process's worker leases them first. A delivery whose channel this process does not
have is left to expire its lease for a process that has it.

If the ledger itself cannot be reached, the alert is still sent once from memory (no dedup
across processes, no retry) rather than lost: a ledger outage is when people need to know.
"""

from __future__ import annotations

import atexit
import logging
import queue
import random
import re
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Sequence
from typing import Final

from costwarden.alerts.channel import AlertChannel, accepts
from costwarden.alerts.http import ChannelHTTPError
from costwarden.alerts.payload import alert_from_json, alert_to_json
from costwarden.errors import ConfigurationError
from costwarden.ledger.base import AlertOutbox, Delivery
from costwarden.records import Alert

log = logging.getLogger("costwarden.alerts")
_WAKE: Final = object()
_URL = re.compile(r"(https?://[^/\s'\"]+)[^\s'\"]*")


def redact(text: str) -> str:
    """Keep scheme and host of any URL in an error, drop path and query (tokens live there)."""
    return _URL.sub(lambda m: m.group(1) + "/…", text)[:500]


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
        names = [getattr(c, "name", None) for c in channels]
        for c, n in zip(channels, names, strict=True):
            if not isinstance(c, AlertChannel) or not isinstance(n, str) or not n:
                raise ConfigurationError(
                    f"{c!r} is not an alert channel (needs name, min_level, scopes, send())"
                )
        dupes = sorted({n for n in names if names.count(n) > 1 and n})
        if dupes:
            raise ConfigurationError(f"alert channel names must be unique; repeated: {dupes}")
        for label, v in (
            ("queue_size", queue_size),
            ("max_attempts", max_attempts),
            ("digest_max", digest_max),
        ):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigurationError(f"{label} must be a positive integer, got {v!r}")
        for label, f in (
            ("base_delay", base_delay),
            ("max_delay", max_delay),
            ("lease_seconds", lease_seconds),
            ("poll_interval", poll_interval),
        ):
            if not isinstance(f, (int, float)) or isinstance(f, bool) or not f > 0:
                raise ConfigurationError(f"{label} must be a positive number of seconds, got {f!r}")
        self.ledger = ledger
        self.channels: dict[str, AlertChannel] = {c.name: c for c in channels}
        self.max_attempts = max_attempts
        self.base_delay, self.max_delay = float(base_delay), float(max_delay)
        self.lease_seconds, self.poll_interval = float(lease_seconds), float(poll_interval)
        self.digest_window = max(0.0, float(digest_window))
        self.digest_max = digest_max
        self._clock = clock
        self._queue: queue.Queue[object] = queue.Queue(maxsize=queue_size)
        self._cond = threading.Condition()
        self._requested = 0  # flush generations asked for
        self._done = 0  # ... and completed by the worker
        self._last_cycle_ok = True
        self._next_retry = float("inf")
        self._closing = False
        self._closed = False
        self.dropped_to_outbox = 0  # emits whose wake-up found the queue full
        self._worker = threading.Thread(target=self._run, name="costwarden-alerts", daemon=True)
        self._worker.start()
        ref = weakref.ref(self)

        def _at_exit() -> None:  # a short script must not exit with its alerts unsent
            dispatcher = ref()
            if dispatcher is not None:
                dispatcher.close(timeout=2.0)

        self._atexit = _at_exit
        atexit.register(_at_exit)

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
            names = [c.name for c in self.channels.values() if accepts(c, alert)]
            key = alert.dedup_key or f"{alert.kind}|{alert.scope}|{alert.period}|{uuid.uuid4().hex}"
            try:
                claimed = self.ledger.claim_alert(key, alert_to_json(alert), names, self._clock())
            except Exception as exc:
                log.error(
                    "alert outbox unavailable (%s); sending once from memory", redact(str(exc))
                )
                self._wake(("direct", alert, names))
                return True
            if claimed and names:
                self._wake(_WAKE)
            return bool(claimed)
        except Exception:  # emit must never fail a tracked call
            log.exception("could not emit an alert")
            return False

    def _wake(self, item: object) -> None:
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.dropped_to_outbox += 1  # the rows are in the outbox; the worker polls it

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every delivery due now has been attempted; True if all succeeded."""
        if self._closed or not self._worker.is_alive():
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
            return self._last_cycle_ok

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is due (up to ``timeout``), then stop the worker. Idempotent."""
        if self._closed:
            return
        self.flush(timeout)
        self._closing = True
        self._wake(_WAKE)
        self._worker.join(timeout=max(0.1, timeout))
        self._closed = True
        atexit.unregister(self._atexit)

    # -- worker side ------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._closing:
            wait = min(self.poll_interval, max(0.0, self._next_retry - self._clock()))
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
                try:
                    self.channels[name].send([alert])
                except Exception as exc:
                    ok = False
                    log.warning(
                        "alert channel %r failed (no outbox, not retried): %s",
                        name,
                        redact(str(exc)),
                    )
        return ok

    def _deliver_due(self) -> bool:
        ok = True
        if self._next_retry <= self._clock():
            self._next_retry = float("inf")  # due now: leased below
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
            error = redact(f"{type(exc).__name__}: {exc}")
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
                    self._next_retry = min(self._next_retry, next_at)
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
