"""Send one test alert through channels, now and in this thread: ``costwarden alerts test``.

Why not through the dispatcher: a test must answer *whether this channel works, and if not
why*, before its command returns. So each channel's ``send`` is called directly (no ledger
claim, no outbox, no retry, every channel whatever its level or scopes), and its error is
reported as the dispatcher would store it: redacted, so a webhook URL never reaches the
terminal or a CI log.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from costwarden.alerts.channel import AlertChannel
from costwarden.alerts.dispatcher import error_text
from costwarden.records import Alert, AlertLevel


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One channel's answer to the test alert: ``error`` is the redacted reason, or None."""

    channel: str
    error: str | None

    @property
    def ok(self) -> bool:
        """True when the test alert was delivered without an error."""
        return self.error is None


def probe_alert(channel: str) -> Alert:
    """The alert a test sends: INFO, kind ``test``, clearly not about a real budget."""
    return Alert(
        level=AlertLevel.INFO,
        message=(
            f"costwarden test alert for channel {channel!r}: if you can read this, the channel "
            "works (sent by `costwarden alerts test`; no budget was crossed)."
        ),
        scope="global",
        period="test",
        kind="test",
        dedup_key=f"test|{channel}|{uuid.uuid4().hex}",
        created_at=datetime.now(UTC),
    )


def probe_channels(channels: Sequence[AlertChannel]) -> list[ProbeResult]:
    """Send :func:`probe_alert` through each channel in turn; never raises for a channel."""
    results = []
    for channel in channels:
        try:
            channel.send([probe_alert(channel.name)])
        except Exception as exc:
            results.append(ProbeResult(channel.name, error_text(channel, exc)))
        else:
            results.append(ProbeResult(channel.name, None))
    return results
