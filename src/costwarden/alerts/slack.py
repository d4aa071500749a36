"""Slack incoming webhooks: one readable Block Kit message per alert or digest.

Limits respected (Slack's Block Kit reference): header text <= 150 characters, section text
<= 3000, at most 50 blocks; ``text`` is the notification fallback. Slack answers ``ok`` with
200; 4xx answers (``invalid_payload``, ``no_service``...) are not retried, 429 honours
``Retry-After``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from costwarden.alerts.channel import (
    NamedChannel,
    digest_title,
    highest_level,
)
from costwarden.alerts.http import check_url, host_of, post
from costwarden.alerts.redact import scrub
from costwarden.money import format_compared
from costwarden.records import Alert, AlertLevel

_EMOJI = {
    AlertLevel.INFO: ":information_source:",
    AlertLevel.WARNING: ":warning:",
    AlertLevel.CRITICAL: ":rotating_light:",
}
MAX_LISTED = 45
"""Alerts shown one by one in a digest; the rest are counted in a closing line."""


def _escape(text: str) -> str:
    """Slack mrkdwn control characters (&, <, >) must be escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _facts(alert: Alert) -> str:
    parts = [
        f"scope `{_escape(alert.scope)}`",
        f"period {alert.period}",
        alert.kind.replace("_", " "),
    ]
    if alert.limit_nanos is not None:
        spent, limit = format_compared(alert.spent_nanos, alert.limit_nanos)
        parts.append(f"{spent} of {limit}")
    return " · ".join(parts)


def slack_message(alerts: Sequence[Alert]) -> dict[str, Any]:
    """The webhook body: ``text`` fallback plus header, one section per alert, context."""
    top = highest_level(alerts)
    title = f"costwarden {digest_title(alerts)}"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(title, 150), "emoji": True}}
    ]
    if len(alerts) == 1:
        alert = alerts[0]
        line = f"{_EMOJI[alert.level]} *{alert.level.value.upper()}*  {_escape(alert.message)}"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _cut(line, 3000)}})
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _facts(alert)}]})
    for alert in alerts[:MAX_LISTED] if len(alerts) > 1 else ():
        # one block per alert in a digest, so 45 alerts + header + closing line fit in 50
        line = (
            f"{_EMOJI[alert.level]} *{alert.level.value.upper()}*  {_escape(alert.message)}\n"
            f"_{_facts(alert)}_"
        )
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _cut(line, 3000)}})
    if len(alerts) > MAX_LISTED:
        blocks.append(
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": f"…and {len(alerts) - MAX_LISTED} more (see `costwarden alerts`)",
                    }
                ],
            }
        )
    if len(alerts) == 1:
        text = f"{_EMOJI[top]} {alerts[0].message}"
    else:
        text = f"{_EMOJI[top]} {digest_title(alerts)}"
    return {"text": _cut(text, 3000), "blocks": blocks[:50]}


class SlackChannel(NamedChannel):
    """Posts to a Slack incoming-webhook URL (a secret: never logged or shown in errors)."""

    def __init__(
        self,
        webhook_url: str,
        *,
        name: str = "slack",
        min_level: AlertLevel | str = AlertLevel.INFO,
        scopes: Iterable[str] | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._url = check_url(webhook_url, "Slack webhook_url")
        super().__init__(name, min_level, scopes)
        self.timeout = float(timeout)

    def send(self, alerts: Sequence[Alert]) -> None:
        """Post ``alerts`` as one Slack message to the incoming webhook; an HTTP failure raises
        AlertDeliveryError.
        """
        body = json.dumps(slack_message(alerts)).encode()
        post(self._url, body, {"Content-Type": "application/json; charset=utf-8"}, self.timeout)

    def redact(self, text: str) -> str:
        """``text`` without this channel's URL path and query (the dispatcher calls it on
        every error before logging or storing it)."""
        return scrub(text, [self._url])

    def __repr__(self) -> str:
        return f"SlackChannel(name={self.name!r}, webhook={host_of(self._url)}/***)"
