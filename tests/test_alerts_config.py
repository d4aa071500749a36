"""Channels from the [alerts] TOML table, with secrets only from environment variables."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from costwarden.alerts import (
    EmailChannel,
    LoggingChannel,
    SlackChannel,
    WebhookChannel,
    channels_from_config,
    dispatcher_options,
    generate_secret,
    load_alert_config,
)
from costwarden.errors import ConfigurationError
from costwarden.records import AlertLevel

SLACK_URL = "https://hooks.slack.com/services/T0/B0/sl4ck-t0ken"
ENV = {
    "CW_SLACK": SLACK_URL,
    "CW_HOOK_SECRET": generate_secret(),
    "CW_SMTP_PASSWORD": "pa55word-from-env",
}

CONFIG = """
[alerts]
max_attempts = 5
base_delay = 1.5

[[alerts.channels]]
type = "slack"
name = "ops-slack"
min_level = "warning"
scopes = ["global", "team:*"]
webhook_url_env = "CW_SLACK"

[[alerts.channels]]
type = "email"
host = "smtp.example.com"
port = 2525
security = "starttls"
username = "alerts@example.com"
password_env = "CW_SMTP_PASSWORD"
sender = "alerts@example.com"
recipients = ["finops@example.com"]
min_level = "critical"

[[alerts.channels]]
type = "webhook"
url = "https://hooks.example.com/costwarden"
secret_env = "CW_HOOK_SECRET"
timeout = 3

[[alerts.channels]]
type = "log"
logger = "myapp.budget"
"""


def test_load_alert_config(tmp_path: Path) -> None:
    path = tmp_path / "costwarden.toml"
    path.write_text(CONFIG)
    channels, options = load_alert_config(path, environ=ENV)
    slack, mail, hook, log = channels
    assert isinstance(slack, SlackChannel) and slack.name == "ops-slack"
    assert slack.min_level is AlertLevel.WARNING and slack.scopes == frozenset({"global", "team:*"})
    assert (
        isinstance(mail, EmailChannel)
        and mail.port == 2525
        and mail.min_level is AlertLevel.CRITICAL
    )
    assert isinstance(hook, WebhookChannel) and hook.timeout == 3.0 and hook.name == "webhook"
    assert isinstance(log, LoggingChannel) and log.logger is logging.getLogger("myapp.budget")
    assert options == {"max_attempts": 5, "base_delay": 1.5}
    shown = " ".join(repr(c) for c in channels)
    assert "sl4ck-t0ken" not in shown and "pa55word" not in shown
    assert ENV["CW_HOOK_SECRET"] not in shown


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"type": "slack", "webhook_url": SLACK_URL}, "webhook_url_env"),
        ({"type": "webhook", "url": "https://x.example", "secret": "s" * 20}, "secret_env"),
        ({"type": "email", "host": "h", "password": "p"}, "password_env"),
        ({"type": "slack", "webhook_url_env": "CW_MISSING"}, "CW_MISSING"),
        ({"type": "slack", "webhook_url_env": "CW_SLACK", "colour": "red"}, "unknown keys"),
        ({"type": "pager"}, "is not a channel type"),
        ({"type": "log", "min_level": "loud"}, "alert level"),
        ({"type": "webhook", "secret_env": "CW_HOOK_SECRET"}, "url"),
    ],
)
def test_bad_channel_config_is_explained(spec: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as info:
        channels_from_config({"channels": [spec]}, environ=ENV)
    assert "sl4ck-t0ken" not in str(info.value)


def test_duplicate_names_and_bad_options() -> None:
    with pytest.raises(ConfigurationError, match="unique"):
        channels_from_config({"channels": [{"type": "log"}, {"type": "log"}]}, environ=ENV)
    assert (
        len(channels_from_config({"channels": [{"type": "log"}, {"type": "log", "name": "b"}]}))
        == 2
    )
    with pytest.raises(ConfigurationError, match="max_attempts"):
        dispatcher_options({"max_attempts": "many"})
    with pytest.raises(ConfigurationError, match="unknown keys"):
        dispatcher_options({"retries": 3})
    assert channels_from_config({}) == []


def test_missing_or_invalid_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read"):
        load_alert_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[alerts\n")
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        load_alert_config(bad)
