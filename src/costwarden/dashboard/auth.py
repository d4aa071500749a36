"""Who is looking: the dashboard's logins and their signed session cookies.

Three kinds of viewer:

- **open** (no master key and no key logins configured): everyone who may connect sees
  everything, so only this machine may: the app answers a request from any other address
  (its peer, or the client a trusted proxy names in ``X-Forwarded-For``) with a 403 saying to
  set a master key (:class:`LoopbackOnly`), wherever it is served (``costwarden dashboard``,
  which also refuses to start off loopback, or the gateway's ``/dashboard`` without a master
  key).
- **admin**: logged in with the master key; sees everything.
- **key holder**: logged in with a virtual key's secret (checked by
  :func:`costwarden.keys.authenticate`); sees only the scope ``key:<key_id>`` (its spend by
  model, its records, its budget, its alerts) and nothing about any other key or scope.

The session cookie holds no secret: the role, and for a key holder the key's SHA-256 hash
(what the ledger already stores), signed with HMAC-SHA256 and an expiry. The key is looked up
again on every request, so a revoked or expired key's session ends at once. The signing key
derives from the master key (every gateway worker accepts every other's cookie, and a new
master key ends all sessions) or, without one, is random per process.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any, Final

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from costwarden.control import VirtualKey
from costwarden.errors import UnknownKeyError
from costwarden.keys import authenticate, hash_secret
from costwarden.loopback import is_loopback

COOKIE: Final = "cw_dashboard"
SESSION_SECONDS: Final = 12 * 3600


@dataclass(frozen=True, slots=True)
class Viewer:
    """The logged-in viewer (``key`` set: a key holder limited to ``key:<key_id>``)."""

    admin: bool
    key: VirtualKey | None = None
    open: bool = False  # no login configured (loopback only)

    @property
    def scope(self) -> str | None:
        """The one scope this viewer may see, or None for every scope."""
        return None if self.key is None else self.key.scope

    @property
    def label(self) -> str:
        """How the page header names this viewer."""
        if self.key is not None:
            return f"key {self.key.prefix}… ({self.key.key_id})"
        return "open (no login, loopback)" if self.open else "admin"


OPEN: Final = Viewer(admin=True, open=True)
REFUSED: Final = (
    "This costwarden dashboard has no login (no master key is set), so it answers only "
    "requests from this machine, and this one came from {client}. Set a master key "
    "($COSTWARDEN_MASTER_KEY for the gateway, --master-key or --key-login for `costwarden "
    "dashboard`) to log in from elsewhere, or open it on this machine (127.0.0.1).\n"
)


class LoopbackOnly:
    """ASGI middleware of the open dashboard: a request whose client is not on this machine
    (or is unknown: a Unix socket's peer) gets a 403 naming the fix, before any page is read."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            client = scope.get("client")
            host = client[0] if client else None
            if not is_loopback(host):
                text = REFUSED.format(client=host or "an unknown address")
                refusal = PlainTextResponse(text, status_code=403)
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)


class Sessions:
    """Checks logins and signs and reads session cookies (see module doc)."""

    def __init__(self, master_key: str | None, *, key_login: bool, ledger: Any) -> None:
        self.master_key = master_key
        self.key_login = key_login
        self.ledger = ledger
        seed = (
            hmac.new(master_key.encode(), b"costwarden-dashboard-session", hashlib.sha256).digest()
            if master_key
            else secrets.token_bytes(32)
        )
        self._secret = seed

    @property
    def required(self) -> bool:
        """Whether a login is needed at all (False: the open, loopback-only mode)."""
        return bool(self.master_key) or self.key_login

    def login(self, secret: str, now: float | None = None) -> tuple[Viewer, str]:
        """The viewer and the cookie value for a submitted secret; a KeyAuthError (its
        message is shown on the login page) when it is not accepted."""
        at = time.time() if now is None else now
        secret = secret.strip()
        if self.master_key and hmac.compare_digest(
            hashlib.sha256(secret.encode()).digest(),
            hashlib.sha256(self.master_key.encode()).digest(),
        ):
            return Viewer(admin=True), self._sign({"r": "admin", "exp": at + SESSION_SECONDS})
        if not self.key_login:
            raise UnknownKeyError("that is not the master key")
        key = authenticate(self.ledger, secret, now=at)
        cookie = self._sign({"r": "key", "h": hash_secret(secret), "exp": at + SESSION_SECONDS})
        return Viewer(admin=False, key=key), cookie

    def viewer(self, cookie: str | None, now: float | None = None) -> Viewer | None:
        """The viewer of a session cookie, or None (missing, forged, expired, key revoked)."""
        if not self.required:
            return OPEN
        data = self._read(cookie)
        at = time.time() if now is None else now
        if data is None or not isinstance(data.get("exp"), (int, float)) or data["exp"] < at:
            return None
        if data.get("r") == "admin" and self.master_key:
            return Viewer(admin=True)
        if data.get("r") == "key" and self.key_login and isinstance(data.get("h"), str):
            key = self.ledger.key_by_hash(data["h"])
            if key is None:
                return None
            if key.revoked_at is not None and key.revoked_at <= at:
                return None
            if key.expires_at is not None and at >= key.expires_at:
                return None
            if not hmac.compare_digest(key.hash, data["h"]) and not (
                key.previous_hash is not None
                and hmac.compare_digest(key.previous_hash, data["h"])
                and key.grace_until is not None
                and at < key.grace_until
            ):
                return None
            return Viewer(admin=False, key=key)
        return None

    def _sign(self, data: dict[str, Any]) -> str:
        body = base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode())
        mac = hmac.new(self._secret, body, hashlib.sha256).hexdigest()
        return body.decode() + "." + mac

    def _read(self, cookie: str | None) -> dict[str, Any] | None:
        if not cookie or "." not in cookie:
            return None
        body, _, mac = cookie.rpartition(".")
        good = hmac.new(self._secret, body.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(good, mac):
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(body.encode()))
        except ValueError:
            return None
        return data if isinstance(data, dict) else None


__all__ = ["COOKIE", "OPEN", "REFUSED", "LoopbackOnly", "Sessions", "Viewer"]
