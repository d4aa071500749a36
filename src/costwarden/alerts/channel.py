"""What an alert channel is, and the two that need nothing outside the process.

A channel has a ``name`` (unique per dispatcher; delivery history refers to it), a minimum
level and the scopes it wants (``None`` = all; ``"user:*"`` matches every user). ``send``
gets one alert, or several at once (a digest: write one message, not a flood), and raises on
failure so the dispatcher can retry. An optional ``max_batch`` attribute caps a digest's size
(1 for channels that handle alerts one by one).

Two optional attributes change how the dispatcher treats a channel:

* ``synchronous = True``: called in the emitting (caller's) thread right after the alert is
  claimed in the ledger, once per alert; a failure is logged, never raised or retried, and the
  channel has no outbox rows (no delivery history). The brief's ``alert_handler`` is such a
  channel: its user expects ``print`` to run inside ``record_spend``, before the next line.
* ``redact(text) -> str``: removes the channel's own secrets from an error text before it is
  logged or stored (the Slack and webhook channels scrub their URL's path and query).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol, runtime_checkable

from costwarden.errors import AlertDeliveryError, ConfigurationError
from costwarden.records import Alert, AlertLevel


@runtime_checkable
class AlertChannel(Protocol):
    """Where alerts go: a named destination with a minimum level and the scopes it wants (see the
    module docstring for the optional attributes).
    """

    name: str
    min_level: AlertLevel
    scopes: frozenset[str] | None

    def send(self, alerts: Sequence[Alert]) -> None:
        """Deliver ``alerts`` (more than one = a digest); raise on failure."""
        ...


def parse_level(value: AlertLevel | str) -> AlertLevel:
    """Accept an AlertLevel or its name in any case; anything else is a ConfigurationError naming
    the three levels.
    """
    if isinstance(value, AlertLevel):
        return value
    try:
        return AlertLevel(str(value).lower())
    except ValueError:
        raise ConfigurationError(
            f"unknown alert level {value!r}; use 'info', 'warning' or 'critical'"
        ) from None


def parse_scopes(scopes: Iterable[str] | str | None) -> frozenset[str] | None:
    """Normalise the scopes a channel wants to a frozenset (None = every scope), refusing strings
    that are neither 'global' nor 'kind:value'.
    """
    if scopes is None:
        return None
    if isinstance(scopes, str):
        scopes = [scopes]
    out = frozenset(scopes)
    for s in out:
        if not isinstance(s, str) or not s or (s != "global" and ":" not in s):
            raise ConfigurationError(
                f"alert channel scopes must look like 'global', 'team:eng' or 'user:*', got {s!r}"
            )
    return out


def parse_name(name: object) -> str:
    """Check a channel name is a non-empty string, since delivery history is keyed by it."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigurationError(f"an alert channel needs a non-empty name, got {name!r}")
    return name


class NamedChannel:
    """The attributes of :class:`AlertChannel` that every built-in channel takes the same way
    (``name``, ``min_level``, ``scopes``), checked by :func:`parse_name`, :func:`parse_level`
    and :func:`parse_scopes`; a channel class subclasses it and adds ``send``."""

    def __init__(
        self, name: str, min_level: AlertLevel | str, scopes: Iterable[str] | None
    ) -> None:
        self.name = parse_name(name)
        self.min_level = parse_level(min_level)
        self.scopes = parse_scopes(scopes)


def accepts(channel: AlertChannel, alert: Alert) -> bool:
    """Whether ``channel`` wants ``alert`` (level at least its minimum, scope among its own)."""
    if alert.level.rank < channel.min_level.rank:
        return False
    scopes = channel.scopes
    if scopes is None:
        return True
    return alert.scope in scopes or f"{alert.scope.partition(':')[0]}:*" in scopes


def highest_level(alerts: Sequence[Alert]) -> AlertLevel:
    """The most severe level among ``alerts``: a digest is filed under its worst alert."""
    return max((a.level for a in alerts), key=lambda lv: lv.rank)


def digest_title(alerts: Sequence[Alert]) -> str:
    """``"3 budget alerts (1 critical, 2 warning)"`` or the single alert's level and scope."""
    if len(alerts) == 1:
        a = alerts[0]
        return f"{a.level.value.upper()}: {a.kind.replace('_', ' ')} alert for {a.scope}"
    counts = {lv: sum(a.level is lv for a in alerts) for lv in AlertLevel}
    parts = [f"{n} {lv.value}" for lv, n in sorted(counts.items(), key=lambda x: -x[0].rank) if n]
    return f"{len(alerts)} budget alerts ({', '.join(parts)})"


class CallableChannel(NamedChannel):
    """The brief's ``alert_handler(level, message)``: called once per alert, synchronously in
    the thread that recorded the spend (after the ledger write), never in a worker."""

    max_batch = 1
    synchronous = True

    def __init__(
        self,
        handler: Callable[[AlertLevel, str], object],
        *,
        name: str = "alert_handler",
        min_level: AlertLevel | str = AlertLevel.INFO,
        scopes: Iterable[str] | None = None,
    ) -> None:
        if not callable(handler):
            raise ConfigurationError("alert_handler must be callable as handler(level, message)")
        super().__init__(name, min_level, scopes)
        self.handler = handler

    def send(self, alerts: Sequence[Alert]) -> None:
        """Call the handler once per alert with (level, message), the brief's alert_handler shape; a
        handler's exception becomes an AlertDeliveryError.
        """
        for alert in alerts:
            try:
                self.handler(alert.level, alert.message)
            except Exception as exc:
                raise AlertDeliveryError(
                    f"alert_handler raised {type(exc).__name__}: {exc}"
                ) from exc

    def __repr__(self) -> str:
        return f"CallableChannel(name={self.name!r}, handler={self.handler!r})"


_LOG_LEVELS = {
    AlertLevel.INFO: logging.INFO,
    AlertLevel.WARNING: logging.WARNING,
    AlertLevel.CRITICAL: logging.CRITICAL,
}


class LoggingChannel(NamedChannel):
    """Alerts as log records (``extra={"costwarden_alert": {...}}`` for structured handlers)."""

    max_batch = 1

    def __init__(
        self,
        logger: logging.Logger | str = "costwarden.alerts",
        *,
        name: str = "log",
        min_level: AlertLevel | str = AlertLevel.INFO,
        scopes: Iterable[str] | None = None,
    ) -> None:
        super().__init__(name, min_level, scopes)
        self.logger = logging.getLogger(logger) if isinstance(logger, str) else logger

    def send(self, alerts: Sequence[Alert]) -> None:
        """Log each alert at the matching logging level, with the alert as a dict in the record's
        ``costwarden_alert`` extra for structured handlers.
        """
        from costwarden.alerts.payload import alert_to_dict

        for alert in alerts:
            self.logger.log(
                _LOG_LEVELS[alert.level],
                "costwarden alert (%s): %s",
                alert.level.value,
                alert.message,
                extra={"costwarden_alert": alert_to_dict(alert)},
            )

    def __repr__(self) -> str:
        return f"LoggingChannel(name={self.name!r}, logger={self.logger.name!r})"
