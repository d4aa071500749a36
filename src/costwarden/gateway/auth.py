"""Virtual-key authentication for the gateway, with a short cache.

The secret comes from ``Authorization: Bearer cw-...`` (what the OpenAI SDK sends) or
``x-api-key: cw-...`` (the Anthropic SDK). :func:`costwarden.keys.authenticate` reads the
ledger; the gateway keeps each answer (the key, or the refusal) for at most
``key_cache_seconds`` (default 1 s) and drops every cached answer as soon as the ledger's
control version changes. So a key revoked, expired or re-scoped in the ledger is refused by
every worker of every host within that bound: at once on SQLite (the control version is in
shared memory), within two PostgreSQL control poll intervals (0.5 s; see
:mod:`costwarden.gateway.control_watch`) and at most ``key_cache_seconds`` everywhere. Expiry
is checked on every request against the cached key.

The cache is keyed by the secret's SHA-256 (never the secret itself) and bounded.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Final

from costwarden.caching import BoundedCache
from costwarden.control import VirtualKey
from costwarden.errors import ExpiredKeyError, KeyAuthError, UnknownKeyError
from costwarden.keys import ControlLedger, authenticate, hash_secret

MAX_ENTRIES: Final = 10_000


@dataclass(frozen=True, slots=True)
class _Entry:
    until: float
    key: VirtualKey | None
    error: KeyAuthError | None


def secret_from_headers(authorization: bytes | None, api_key: bytes | None) -> str | None:
    """The virtual key a client sent: a Bearer token, else ``x-api-key``."""
    if authorization:
        text = authorization.decode("latin-1").strip()
        scheme, _, token = text.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    if api_key:
        return api_key.decode("latin-1").strip() or None
    return None


class KeyCache:
    """Answers of :func:`authenticate`, reused for ``ttl`` seconds or until the ledger's control
    version moves (see module doc). Thread-safe enough for one event loop plus workers: entries
    are replaced whole.

    The async side calls :meth:`sync` with the version it read (without blocking, see
    :mod:`costwarden.gateway.control_watch`), then :meth:`cached`, and on a miss :meth:`load`
    (blocking: on a worker thread for a remote ledger), then :meth:`answer`. :meth:`lookup` is
    all of it for blocking callers."""

    def __init__(self, ledger: ControlLedger, ttl: float) -> None:
        self.ledger = ledger
        self.ttl = ttl
        self._entries: BoundedCache[str, _Entry] = BoundedCache(MAX_ENTRIES)
        self._version: int | None = None

    def sync(self, version: int) -> None:
        """Drop every cached answer if the control version is not the one they were read at."""
        if version != self._version:
            self._entries.clear()
            self._version = version

    def cached(self, secret: str, now: float) -> _Entry | None:
        """The cached answer for ``secret`` if still within its ``ttl`` (call :meth:`sync`
        first)."""
        entry = self._entries.get(hash_secret(secret))
        if entry is None or now >= entry.until:
            return None
        return entry

    def lookup(self, secret: str, now: float | None = None) -> VirtualKey:
        """The key, or the typed refusal (:class:`KeyAuthError`), reading the ledger when the
        cache has no valid answer. Blocking."""
        at = time.time() if now is None else now
        self.sync(self.ledger.control_version())
        entry = self.cached(secret, at) or self.load(secret, at)
        return self.answer(entry, secret, at)

    def answer(self, entry: _Entry, secret: str, now: float) -> VirtualKey:
        """The key of a cached or loaded answer, or its refusal; expiry and a rotated-out
        secret's grace are checked against ``now`` on every request."""
        if entry.error is not None:
            raise entry.error
        key = entry.key
        assert key is not None
        if key.expires_at is not None and now >= key.expires_at:
            raise ExpiredKeyError(f"key {key.prefix}… expired", key_id=key.key_id)
        if (
            key.grace_until is not None
            and now >= key.grace_until
            and (hash_secret(secret) != key.hash)
        ):
            raise ExpiredKeyError(
                f"this secret of key {key.key_id} was rotated out and its grace period ended; "
                f"use the new secret ({key.prefix}…)",
                key_id=key.key_id,
            )
        return key

    def load(self, secret: str, now: float) -> _Entry:
        """Read the answer for ``secret`` from the ledger and cache it (blocking)."""
        try:
            key = authenticate(self.ledger, secret, now=now)
            entry = _Entry(now + self.ttl, key, None)
        except KeyAuthError as exc:
            entry = _Entry(now + self.ttl, None, exc)
        if self.ttl > 0:
            self._entries.put(hash_secret(secret), entry)
        return entry


def refusal_message(exc: KeyAuthError) -> str:
    """What the client is told (never the secret it sent)."""
    if isinstance(exc, UnknownKeyError):
        return (
            "invalid virtual key: send a costwarden key (cw-...) as 'Authorization: Bearer' or "
            "'x-api-key'; `costwarden keys create` makes one"
        )
    return str(exc)


__all__ = ["KeyCache", "refusal_message", "secret_from_headers"]
