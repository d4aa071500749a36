"""Alerts that reach people once: channels, and a dispatcher with ledger dedup and retries.

See docs/alerts.md. ``AlertDispatcher`` is what ``BudgetManager`` emits into; channels are
the brief's ``alert_handler`` (:class:`CallableChannel`), Python logging, Slack, email and
signed JSON webhooks, built in code or from a config file (:mod:`costwarden.alerts.config`).
"""

from __future__ import annotations

from costwarden.alerts.channel import AlertChannel, CallableChannel, LoggingChannel, accepts
from costwarden.alerts.config import channels_from_config, dispatcher_options, load_alert_config
from costwarden.alerts.dispatcher import AlertDispatcher
from costwarden.alerts.email import EmailChannel
from costwarden.alerts.payload import alert_from_json, alert_to_dict, alert_to_json
from costwarden.alerts.slack import SlackChannel
from costwarden.alerts.webhook import WebhookChannel, generate_secret, verify_signature

__all__ = [
    "AlertChannel",
    "AlertDispatcher",
    "CallableChannel",
    "EmailChannel",
    "LoggingChannel",
    "SlackChannel",
    "WebhookChannel",
    "accepts",
    "alert_from_json",
    "alert_to_dict",
    "alert_to_json",
    "channels_from_config",
    "dispatcher_options",
    "generate_secret",
    "load_alert_config",
    "verify_signature",
]
