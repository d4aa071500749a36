"""Alert channels from configuration: the ``[alerts]`` table of the TOML file the CLI and
gateway read, with every secret taken from an environment variable.

.. code-block:: toml

    [alerts]
    max_attempts = 8            # optional dispatcher settings (see AlertDispatcher)

    [[alerts.channels]]
    type = "slack"              # slack | email | webhook | log
    name = "ops-slack"          # optional, defaults to the type
    min_level = "warning"       # info | warning | critical
    scopes = ["global", "team:*"]
    webhook_url_env = "COSTWARDEN_SLACK_WEBHOOK"

    [[alerts.channels]]
    type = "email"
    host = "smtp.example.com"
    port = 587
    security = "starttls"       # starttls | ssl | none
    username = "alerts@example.com"
    password_env = "COSTWARDEN_SMTP_PASSWORD"
    sender = "alerts@example.com"
    recipients = ["finops@example.com"]

    [[alerts.channels]]
    type = "webhook"
    url = "https://hooks.example.com/costwarden"
    secret_env = "COSTWARDEN_WEBHOOK_SECRET"

Why environment variables only: config files get committed and pasted into tickets. A
literal secret (``password``, ``secret``, ``webhook_url``) is rejected with a message saying
which ``*_env`` key to use; a missing variable is named (never its value).

Two stages: :func:`check_alerts_section` (run when the file is loaded, needs no secret) finds a
misspelt type or key and a bad dispatcher setting, so ``costwarden config`` fails on them;
:func:`channels_from_config` then builds the channels, reading their secrets.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from costwarden.alerts.channel import AlertChannel, LoggingChannel
from costwarden.alerts.dispatcher import OPTIONS, check_options
from costwarden.alerts.email import EmailChannel
from costwarden.alerts.slack import SlackChannel
from costwarden.alerts.webhook import WebhookChannel
from costwarden.errors import ConfigurationError

_COMMON = {"type", "name", "min_level", "scopes", "timeout"}
_KEYS = {
    "slack": _COMMON | {"webhook_url_env"},
    "webhook": _COMMON | {"url", "url_env", "secret_env", "headers"},
    "email": _COMMON
    | {
        "host",
        "port",
        "security",
        "username",
        "username_env",
        "password_env",
        "sender",
        "recipients",
        "subject_prefix",
        "allow_plaintext_auth",
    },
    "log": _COMMON | {"logger"},
}
_LITERAL_SECRETS = {
    "webhook_url": "webhook_url_env",
    "secret": "secret_env",
    "password": "password_env",
}


def _env(spec: Mapping[str, Any], key: str, environ: Mapping[str, str], where: str) -> str:
    var = spec.get(key)
    if not isinstance(var, str) or not var:
        raise ConfigurationError(f"{where}: {key} must name an environment variable")
    value = environ.get(var)
    if not value:
        raise ConfigurationError(f"{where}: environment variable {var} (from {key}) is not set")
    return value


def _suggest(word: object, choices: list[str]) -> str:
    close = difflib.get_close_matches(str(word), choices, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _check_spec(spec: object, index: int) -> str:
    """The channel type of one ``[[alerts.channels]]`` table, after checking its shape (type,
    keys, no literal secret); reads no environment variable."""
    if not isinstance(spec, Mapping):
        raise ConfigurationError(f"alerts.channels[{index}] must be a table")
    kind = spec.get("type")
    if kind not in _KEYS:
        hint = _suggest(kind, list(_KEYS))
        raise ConfigurationError(
            f"alerts.channels[{index}]: type {kind!r} is not a channel type{hint} "
            f"(one of {', '.join(sorted(_KEYS))})"
        )
    where = f"alerts.channels[{index}] ({kind})"
    for literal, env_key in _LITERAL_SECRETS.items():
        if literal in spec:
            raise ConfigurationError(
                f"{where}: secrets are not read from the config file; put the value in an "
                f'environment variable and name it with {env_key} = "..."'
            )
    unknown = sorted(set(spec) - _KEYS[kind])
    if unknown:
        hint = _suggest(unknown[0], sorted(_KEYS[kind]))
        raise ConfigurationError(
            f"{where}: unknown keys {unknown}{hint} (allowed: {sorted(_KEYS[kind])})"
        )
    return str(kind)


def check_alerts_section(section: object) -> dict[str, Any]:
    """Check an ``[alerts]`` table without reading any secret (channel types and keys,
    dispatcher settings); return the validated dispatcher options."""
    if not isinstance(section, Mapping):
        raise ConfigurationError("the alerts configuration must be a table")
    specs = section.get("channels", [])
    if not isinstance(specs, list):
        raise ConfigurationError("alerts.channels must be an array of tables ([[alerts.channels]])")
    for i, spec in enumerate(specs):
        _check_spec(spec, i)
    return dispatcher_options(section)


def _channel(spec: Mapping[str, Any], index: int, environ: Mapping[str, str]) -> AlertChannel:
    kind = _check_spec(spec, index)
    where = f"alerts.channels[{index}] ({kind})"
    common: dict[str, Any] = {"name": spec.get("name", kind)}
    for key in ("min_level", "scopes"):
        if key in spec:
            common[key] = spec[key]
    if "timeout" in spec and kind != "log":
        common["timeout"] = float(spec["timeout"])
    try:
        if kind == "slack":
            return SlackChannel(_env(spec, "webhook_url_env", environ, where), **common)
        if kind == "webhook":
            url = _env(spec, "url_env", environ, where) if "url_env" in spec else spec.get("url")
            if not isinstance(url, str):
                raise ConfigurationError(f"{where}: give url or url_env")
            return WebhookChannel(
                url, _env(spec, "secret_env", environ, where), headers=spec.get("headers"), **common
            )
        if kind == "email":
            user = (
                _env(spec, "username_env", environ, where)
                if "username_env" in spec
                else spec.get("username")
            )
            password = (
                _env(spec, "password_env", environ, where) if "password_env" in spec else None
            )
            return EmailChannel(
                spec.get("host", ""),
                spec.get("port"),
                sender=spec.get("sender", ""),
                recipients=spec.get("recipients", ()),
                username=user,
                password=password,
                security=spec.get("security", "starttls"),
                subject_prefix=spec.get("subject_prefix", "[costwarden]"),
                allow_plaintext_auth=bool(spec.get("allow_plaintext_auth", False)),
                **common,
            )
        return LoggingChannel(spec.get("logger", "costwarden.alerts"), **common)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigurationError):
            raise
        raise ConfigurationError(f"{where}: {exc}") from None


def channels_from_config(
    section: Mapping[str, Any], *, environ: Mapping[str, str] | None = None
) -> list[AlertChannel]:
    """Channels from an ``[alerts]`` table (already parsed); secrets from ``environ``."""
    if not isinstance(section, Mapping):
        raise ConfigurationError("the alerts configuration must be a table")
    env = os.environ if environ is None else environ
    specs = section.get("channels", [])
    if not isinstance(specs, list):
        raise ConfigurationError("alerts.channels must be an array of tables ([[alerts.channels]])")
    channels = [_channel(spec, i, env) for i, spec in enumerate(specs)]
    names = [c.name for c in channels]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigurationError(f"alert channel names must be unique; set name = ... for {dupes}")
    return channels


def dispatcher_options(section: Mapping[str, Any]) -> dict[str, Any]:
    """The dispatcher keyword arguments in an ``[alerts]`` table, checked as the dispatcher
    checks them (``max_attempts = -1`` fails here, at load, not at the first alert)."""
    options = {k: v for k, v in section.items() if k != "channels"}
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        hint = _suggest(unknown[0], sorted(OPTIONS))
        raise ConfigurationError(
            f"alerts: unknown keys {unknown}{hint} (allowed: {sorted(OPTIONS)})"
        )
    try:
        return check_options(options)
    except ConfigurationError as exc:
        raise ConfigurationError(f"alerts.{exc}") from None


def load_alert_config(
    path: str | Path, *, environ: Mapping[str, str] | None = None
) -> tuple[list[AlertChannel], dict[str, Any]]:
    """(channels, dispatcher options) from the ``[alerts]`` table of a TOML file."""
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigurationError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"config file {path} is not valid TOML: {exc}") from None
    section = data.get("alerts", {})
    return channels_from_config(section, environ=environ), dispatcher_options(section)
