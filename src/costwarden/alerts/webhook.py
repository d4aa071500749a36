"""Generic JSON webhooks signed the Standard Webhooks way (HMAC-SHA256, timestamped).

Each POST carries ``webhook-id`` (stable across retries of one delivery, so receivers can
drop duplicates), ``webhook-timestamp`` (Unix seconds) and ``webhook-signature``
(``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``). A receiver verifies the
signature and rejects timestamps more than 5 minutes off, which stops replays; any Standard
Webhooks library does this, or :func:`verify_signature` here. Secrets are ``whsec_<base64>``
(see :func:`generate_secret`) or any string of at least 16 bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence

from costwarden.alerts.channel import NamedChannel
from costwarden.alerts.http import check_url, host_of, post
from costwarden.alerts.payload import alert_to_dict
from costwarden.alerts.redact import scrub
from costwarden.errors import ConfigurationError
from costwarden.records import Alert, AlertLevel

TOLERANCE_SECONDS = 300
EVENT_TYPE = "costwarden.alerts"


def secret_key(secret: str | bytes) -> bytes:
    """The HMAC key: ``whsec_`` secrets are base64, other strings are used as UTF-8 bytes."""
    if isinstance(secret, bytes):
        key = secret
    elif isinstance(secret, str) and secret.startswith("whsec_"):
        try:
            key = base64.b64decode(secret[len("whsec_") :], validate=True)
        except binascii.Error:
            raise ConfigurationError(
                "a whsec_ webhook secret must be base64 after the prefix"
            ) from None
    elif isinstance(secret, str):
        key = secret.encode()
    else:
        raise ConfigurationError("the webhook secret must be a string")
    if len(key) < 16:
        raise ConfigurationError(
            "the webhook secret is too short (16 bytes at least); make one with python -c "
            "'from costwarden.alerts import generate_secret; print(generate_secret())'"
        )
    return key


def generate_secret() -> str:
    """A fresh random signing secret in the Standard Webhooks form (``whsec_`` + base64 of 32
    bytes).
    """
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secret: str | bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The Standard Webhooks ``v1,`` HMAC-SHA256 signature over id, timestamp and body, which a
    receiver recomputes to trust the body.
    """
    mac = hmac.new(secret_key(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def verify_signature(
    secret: str | bytes,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance: float = TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """True iff ``body`` was signed with ``secret`` within ``tolerance`` seconds of ``now``.

    ``headers`` keys are matched case-insensitively; any of several space-separated ``v1,``
    signatures may match (secret rotation)."""
    lower = {k.lower(): v for k, v in headers.items()}
    msg_id, ts, sigs = (
        lower.get("webhook-id"),
        lower.get("webhook-timestamp"),
        lower.get("webhook-signature"),
    )
    if not msg_id or not ts or not sigs:
        return False
    try:
        stamp = int(ts)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - stamp) > tolerance:
        return False
    expected = sign(secret, msg_id, stamp, body)
    return any(hmac.compare_digest(expected, s) for s in sigs.split())


def webhook_body(alerts: Sequence[Alert]) -> bytes:
    """The JSON bytes a webhook receives for ``alerts``: event type, count and each alert's dict."""
    return json.dumps(
        {"type": EVENT_TYPE, "count": len(alerts), "alerts": [alert_to_dict(a) for a in alerts]},
        sort_keys=True,
        separators=(",", ":"),
    ).encode()


def message_id(alerts: Sequence[Alert]) -> str:
    """Stable for the same alerts, so a retried delivery has the same id."""
    joined = "\n".join(sorted(a.dedup_key or a.created_at.isoformat() for a in alerts))
    return "msg_" + hashlib.sha256(joined.encode()).hexdigest()[:32]


class WebhookChannel(NamedChannel):
    """POSTs a signed JSON body: ``{"type": "costwarden.alerts", "count": n, "alerts": [...]}``."""

    def __init__(
        self,
        url: str,
        secret: str | bytes,
        *,
        name: str = "webhook",
        min_level: AlertLevel | str = AlertLevel.INFO,
        scopes: Iterable[str] | None = None,
        timeout: float = 10.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self._url = check_url(url, "webhook url")
        self._secret = secret_key(secret)
        super().__init__(name, min_level, scopes)
        self.timeout = float(timeout)
        self.headers = dict(headers or {})

    def send(self, alerts: Sequence[Alert]) -> None:
        """POST ``alerts`` as one signed JSON body (Standard Webhooks headers: id, timestamp,
        signature); an HTTP failure raises AlertDeliveryError.
        """
        body = webhook_body(alerts)
        msg_id = message_id(alerts)
        stamp = int(time.time())
        headers = {
            **self.headers,
            "Content-Type": "application/json",
            "User-Agent": "costwarden-alerts",
            "webhook-id": msg_id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": sign(self._secret, msg_id, stamp, body),
        }
        post(self._url, body, headers, self.timeout)

    def redact(self, text: str) -> str:
        """``text`` without this channel's URL path and query (the dispatcher calls it on
        every error before logging or storing it)."""
        return scrub(text, [self._url])

    def __repr__(self) -> str:
        return f"WebhookChannel(name={self.name!r}, url={host_of(self._url)}/…, secret=***)"
