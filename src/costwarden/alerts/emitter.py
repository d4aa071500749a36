"""A budget manager's way out for alerts: its dispatcher (if any), or the log.

``BudgetManager`` validates its alert settings before it opens a ledger (a bad option or
channel is a ConfigurationError at construction, not at the first alert inside a commit),
then emits every alert here. With a handler or channels, alerts go to an
:class:`~costwarden.alerts.dispatcher.AlertDispatcher` (deduplicated in the ledger, delivered
off the caller's path); without, each is logged once per dedup key.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

from costwarden import forksafe
from costwarden.alerts import triggers
from costwarden.alerts.channel import AlertChannel, CallableChannel
from costwarden.alerts.dispatcher import AlertDispatcher, check_channels, check_options
from costwarden.caching import BoundedCache
from costwarden.errors import ConfigurationError
from costwarden.ledger.base import AlertOutbox, BucketUsage
from costwarden.plans import BudgetCheck
from costwarden.records import Alert, AlertLevel

log = logging.getLogger("costwarden")

AlertSettings = tuple[list[AlertChannel], dict[str, Any]]
_MAX_CLAIMED: Final = 100_000


def alert_settings(
    handler: Callable[[AlertLevel, str], object] | None,
    channels: Sequence[AlertChannel],
    options: Mapping[str, Any] | None,
) -> AlertSettings | None:
    """A manager's alert channels (the handler first) and dispatcher options, validated;
    None without a handler or channel (alerts are then logged)."""
    if isinstance(channels, (str, bytes)) or not isinstance(channels, Iterable):
        raise ConfigurationError(
            f"alert_channels must be a list of alert channels, got {type(channels).__name__}"
        )
    if options is not None and not isinstance(options, Mapping):
        raise ConfigurationError(
            f"alert_options must be a mapping of dispatcher settings, got {type(options).__name__}"
        )
    listed = check_channels(list(channels))
    opts = check_options(options or {})
    if handler is None and not listed:
        return None
    if handler is not None:
        listed = check_channels([CallableChannel(handler), *listed])
    return listed, opts


class AlertEmitter:
    """Where a manager's alerts go; ``emit`` never raises (the record is stored already)."""

    def __init__(self, ledger: AlertOutbox, settings: AlertSettings | None) -> None:
        self.dispatcher: AlertDispatcher | None = None
        if settings is not None:
            channels, options = settings
            self.dispatcher = AlertDispatcher(ledger, channels, **options)
        self._claimed: BoundedCache[str, bool] = BoundedCache(_MAX_CLAIMED)
        self._lock = forksafe.fresh_after_fork(threading.Lock())

    def claim(self, key: str) -> bool:
        """True the first time this process claims ``key`` (a cheap, bounded in-process dedup
        in front of the dispatcher's ledger claim)."""
        with self._lock:
            if key in self._claimed:
                return False
            self._claimed.put(key, True)
            return True

    def emit(self, alert: Alert, *, claimed: bool = False) -> None:
        """Hand ``alert`` to the dispatcher (the alert_handler runs now, in this thread);
        without one, log it once per dedup key (``claimed``: the caller claimed it)."""
        try:
            dispatcher = self.dispatcher
            if dispatcher is not None:
                dispatcher.emit(alert)
                return
            if alert.dedup_key and not claimed and not self.claim(alert.dedup_key):
                return
            log.log(
                logging.WARNING if alert.level.rank >= 1 else logging.INFO,
                "costwarden alert (%s): %s",
                alert.level.value,
                alert.message,
            )
        except Exception:
            log.exception("costwarden: could not emit an alert")

    def check_thresholds(
        self, checks: Sequence[BudgetCheck], usages: Sequence[BucketUsage]
    ) -> None:
        """After a record: fire each threshold a watched bucket has reached, once per scope,
        window, threshold and reset baseline (``usages``: the ledger's, one per check)."""
        for chk, u in zip(checks, usages, strict=True):
            if u.spent < chk.first_alert:  # chk.may_alert(u.spent), read without a call
                continue  # below the lowest threshold: most commits
            for t in triggers.reached(u.spent, chk.limit, chk.budget.thresholds()):
                key = triggers.threshold_key(chk.bucket, t, u.baseline)
                if key in self._claimed or not self.claim(key):
                    continue
                warning_at = chk.budget.alert_threshold
                alert = triggers.threshold(
                    chk.bucket, chk.limit, u.spent, t, warning_at=warning_at, dedup_key=key
                )
                self.emit(alert, claimed=True)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until queued alerts have been delivered (or tried); True if all were."""
        dispatcher = self.dispatcher
        return True if dispatcher is None else dispatcher.flush(timeout)

    def close(self) -> None:
        """Stop the alert dispatcher (if one was started), flushing what it can before the manager
        closes.
        """
        if self.dispatcher is not None:
            self.dispatcher.close()
