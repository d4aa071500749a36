"""Virtual keys: create (the secret is shown once), list, rotate, revoke, authenticate.

A secret is ``cw-`` followed by ``secrets.token_urlsafe(32)``: 256 bits from the operating
system's CSPRNG. The ledger stores only ``SHA-256(secret)`` (hex), finds a key by that hash
and compares it with :func:`hmac.compare_digest`.

Why a plain SHA-256 and no pepper or slow hash. Slow hashes (bcrypt, scrypt, Argon2) and
peppers exist for *passwords*: people choose them from a space small enough to enumerate, so a
stolen hash table must be made expensive to brute-force. Our secrets are not chosen by people;
each is a uniformly random 256-bit value. Recovering one from its hash is a preimage search
over 2^256 candidates, which no amount of hardware makes feasible, and each stolen hash is
independent of every other (no dictionary, no reuse across sites), so there is nothing for a
slow hash to slow down: it would only add milliseconds to every authenticated request. A
pepper would protect only against someone who can read the table but not the server's
configuration; with 256-bit secrets that reader learns nothing usable anyway, and a pepper
would make the ledger unusable by any process that lacks it (the CLI, a second gateway). This
is the same reasoning as GitHub's and Stripe's API tokens. The hash also never contains the
secret: the stored ``prefix`` is ``cw-`` plus the secret's first 8 characters (48 of its 256
bits), for people to tell keys apart in listings.

Rotation gives the key a new secret and keeps the old one valid for a grace period
(:data:`DEFAULT_GRACE`, 24 hours), so clients can be redeployed without an outage; the key's
id, budget and spend carry over. Rotating again within the grace period ends the older
secret's grace at once (one previous secret at a time). Revocation takes effect in the ledger
at once: :func:`authenticate` reads the ledger on every call.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Final, Protocol

from costwarden.budget import Budget, WindowCache
from costwarden.control import VirtualKey, check_actor, check_label
from costwarden.errors import (
    ExpiredKeyError,
    InvalidInputError,
    LedgerError,
    RevokedKeyError,
    UnknownKeyError,
)
from costwarden.ledger.base import Bucket, Ledger
from costwarden.ledger.control import ControlPlane
from costwarden.money import Nanos

SECRET_PREFIX: Final = "cw-"
PREFIX_CHARS: Final = 8
"""Characters of the secret after ``cw-`` kept as the key's display prefix."""
DEFAULT_GRACE: Final = timedelta(hours=24)
METADATA_MAX_BYTES: Final = 16_384
_CAS_TRIES: Final = 8


class ControlLedger(Ledger, ControlPlane, Protocol):
    """A ledger with its control plane (every costwarden ledger is one)."""


def new_secret() -> str:
    """A fresh secret: ``cw-`` and 256 random bits, URL-safe base64 (43 characters)."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """Hex SHA-256 of the secret: all the ledger ever stores (see the module doc for why)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def display_prefix(secret: str) -> str:
    """The non-secret start of a key (its fixed prefix plus a few characters), safe to show and log
    to tell keys apart.
    """
    return secret[: len(SECRET_PREFIX) + PREFIX_CHARS]


# -- input checks (each raises InvalidInputError before anything is written) -----------------
def _name(value: object, what: str) -> str | None:
    return None if value is None else check_label(value, what)


def _positive_int(value: object, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidInputError(f"{what} must be a positive whole number or None, got {value!r}")
    return value


def _models(value: object) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise InvalidInputError(f"models must be a list of model names, got {value!r}")
    models = tuple(dict.fromkeys(value))
    if not models or not all(isinstance(m, str) and m for m in models):
        raise InvalidInputError(
            f"models must be a non-empty list of model names (None allows every model), "
            f"got {value!r}"
        )
    return models


def _metadata(value: object) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise InvalidInputError(f"metadata must be a dict with string keys, got {value!r}")
    try:
        text = json.dumps(dict(value), sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"metadata must be JSON-serialisable: {exc}") from None
    if len(text.encode()) > METADATA_MAX_BYTES:
        raise InvalidInputError(f"metadata is larger than {METADATA_MAX_BYTES} bytes of JSON")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def _now(now: float | None) -> float:
    if now is None:
        return time.time()
    if isinstance(now, bool) or not isinstance(now, (int, float)) or not math.isfinite(now):
        raise InvalidInputError(f"now must be epoch seconds, got {now!r}")
    return float(now)


def _expiry(expires: object, now: float) -> float | None:
    """``expires`` as epoch seconds: a datetime (naive means local time), a timedelta from
    now, or epoch seconds; it must lie in the future."""
    if expires is None:
        return None
    if isinstance(expires, timedelta):
        at = now + expires.total_seconds()
    elif isinstance(expires, datetime):
        at = expires.timestamp()
    elif (
        isinstance(expires, (int, float))
        and not isinstance(expires, bool)
        and math.isfinite(expires)
    ):
        at = float(expires)
    else:
        raise InvalidInputError(
            f"expires must be a datetime, a timedelta or epoch seconds, got {expires!r}"
        )
    if at <= now:
        raise InvalidInputError(f"expires must be in the future, got {expires!r}")
    return at


def _grace(grace: object) -> float:
    if isinstance(grace, timedelta):
        seconds = grace.total_seconds()
    elif isinstance(grace, (int, float)) and not isinstance(grace, bool):
        seconds = float(grace)
    else:
        raise InvalidInputError(f"grace must be a timedelta or seconds, got {grace!r}")
    if not math.isfinite(seconds) or seconds < 0:
        raise InvalidInputError(f"grace must be zero or more seconds, got {grace!r}")
    return seconds


def _known(ledger: ControlPlane, key_id: object) -> VirtualKey:
    if not isinstance(key_id, str) or not key_id:
        raise InvalidInputError(f"a key id is a non-empty string, got {key_id!r}")
    key = ledger.key_by_id(key_id)
    if key is None:
        raise UnknownKeyError(
            f"no virtual key with id {key_id!r} in this ledger; `costwarden keys list` shows them"
        )
    return key


# -- lifecycle -------------------------------------------------------------------------------
def create_key(
    ledger: ControlPlane,
    *,
    user: str | None = None,
    team: str | None = None,
    budget: Budget | None = None,
    models: Iterable[str] | None = None,
    rpm: int | None = None,
    tpm: int | None = None,
    expires: datetime | timedelta | float | None = None,
    metadata: Mapping[str, Any] | None = None,
    actor: str = "library",
    now: float | None = None,
) -> tuple[VirtualKey, str]:
    """Store a new key; returns it and its secret, which is shown this once and never stored.

    ``budget`` becomes the budget of scope ``key:<key_id>``; ``models`` an allow-list (None:
    every model); ``rpm``/``tpm`` request and token rate limits; ``expires`` a datetime, a
    timedelta from now or epoch seconds.
    """
    at = _now(now)
    if budget is not None and not isinstance(budget, Budget):
        raise InvalidInputError(f"budget must be a Budget or None, got {type(budget).__name__}")
    secret = new_secret()
    key = VirtualKey(
        key_id=secrets.token_hex(8),
        hash=hash_secret(secret),
        prefix=display_prefix(secret),
        created_at=at,
        user=_name(user, "user"),
        team=_name(team, "team"),
        budget=budget,
        models=_models(models),
        rpm=_positive_int(rpm, "rpm"),
        tpm=_positive_int(tpm, "tpm"),
        expires_at=_expiry(expires, at),
        metadata=_metadata(metadata),
    )
    stored = ledger.put_key(key, actor=check_actor(actor), now=at)
    return stored, secret


def list_keys(ledger: ControlPlane, *, include_revoked: bool = True) -> list[VirtualKey]:
    """Every key, oldest first (never a secret; hashes only inside the objects)."""
    keys = ledger.list_keys()
    return keys if include_revoked else [k for k in keys if k.revoked_at is None]


def _change(
    ledger: ControlPlane,
    key_id: str,
    change: Callable[[VirtualKey], VirtualKey | None],
    actor: str,
    now: float,
) -> VirtualKey:
    """Apply ``change(current) -> new or None`` with compare-and-set, retrying when another
    process changed the key in between; None means there is nothing to write."""
    for _ in range(_CAS_TRIES):
        current = _known(ledger, key_id)
        new = change(current)
        if new is None:
            return current
        if ledger.update_key(new, expected=current, actor=actor, now=now):
            return new
    raise LedgerError(f"key {key_id!r} kept changing under {_CAS_TRIES} tries; retry")


def rotate_key(
    ledger: ControlPlane,
    key_id: str,
    *,
    grace: timedelta | float = DEFAULT_GRACE,
    actor: str = "library",
    now: float | None = None,
) -> tuple[VirtualKey, str]:
    """Give the key a new secret (returned once); the old one stays valid for ``grace``.

    The key keeps its id, budget and spend. A revoked key cannot be rotated.
    """
    at = _now(now)
    seconds = _grace(grace)
    check_actor(actor)
    secret = new_secret()

    def change(key: VirtualKey) -> VirtualKey:
        if key.revoked_at is not None:
            raise RevokedKeyError(
                f"key {key.key_id} was revoked; revocation is final, create a new key",
                key_id=key.key_id,
            )
        keep_old = seconds > 0
        return replace(
            key,
            hash=hash_secret(secret),
            prefix=display_prefix(secret),
            previous_hash=key.hash if keep_old else None,
            previous_prefix=key.prefix if keep_old else None,
            grace_until=at + seconds if keep_old else None,
        )

    return _change(ledger, key_id, change, actor, at), secret


def revoke_key(
    ledger: ControlPlane, key_id: str, *, actor: str = "library", now: float | None = None
) -> VirtualKey:
    """Revoke the key (and any rotated-out secret of it) from now on; final and idempotent."""
    at = _now(now)
    check_actor(actor)

    def change(key: VirtualKey) -> VirtualKey | None:
        if key.revoked_at is not None:
            return None
        return replace(key, revoked_at=at)

    return _change(ledger, key_id, change, actor, at)


def authenticate(ledger: ControlPlane, secret: str, *, now: float | None = None) -> VirtualKey:
    """The key whose secret this is, if it may be used now; else a typed error saying why
    (:class:`UnknownKeyError`, :class:`RevokedKeyError`, :class:`ExpiredKeyError`)."""
    at = _now(now)
    if not isinstance(secret, str) or not secret.startswith(SECRET_PREFIX):
        raise UnknownKeyError("not a costwarden virtual key (they start with 'cw-')")
    digest = hash_secret(secret)
    key = ledger.key_by_hash(digest)
    if key is None:
        raise UnknownKeyError("no virtual key has this secret in this ledger")
    current = hmac.compare_digest(key.hash, digest)
    previous = key.previous_hash is not None and hmac.compare_digest(key.previous_hash, digest)
    if not (current or previous):  # a ledger answered with another key: never trust it
        raise UnknownKeyError("no virtual key has this secret in this ledger")
    if key.revoked_at is not None and key.revoked_at <= at:
        raise RevokedKeyError(f"key {key.prefix}… was revoked", key_id=key.key_id)
    if key.expires_at is not None and at >= key.expires_at:
        raise ExpiredKeyError(f"key {key.prefix}… expired", key_id=key.key_id)
    if not current and (key.grace_until is None or at >= key.grace_until):
        raise ExpiredKeyError(
            f"this secret of key {key.key_id} was rotated out and its grace period ended; "
            f"use the new secret ({key.prefix}…)",
            key_id=key.key_id,
        )
    return key


# -- a key's own figures ---------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class KeyPeriodUsage:
    """One period's spend, reservations and limit for a virtual key, in nano-USD (what ``/key/info``
    reports).
    """

    period: str
    spent: Nanos
    reserved: Nanos
    limit: Nanos | None


@dataclass(frozen=True, slots=True)
class KeyUsage:
    """One key's own budget and spend, and nothing about any other key or scope."""

    key_id: str
    budget: Budget | None
    budget_scope: str | None
    """``key:<id>`` for the key's own budget, ``default:key`` for the default, or None."""
    periods: tuple[KeyPeriodUsage, ...]


def key_usage(ledger: ControlLedger, key: VirtualKey, *, now: float | None = None) -> KeyUsage:
    """The key's budget and its spend per period, read from the ledger.

    There is no argument naming a scope: the only scope read is ``key:<key.key_id>`` (and the
    ``default:key`` budget that applies to it), so a caller holding one key (the gateway's
    ``/key/info`` for its authenticated key) can never be answered about another.
    """
    if not isinstance(key, VirtualKey):
        raise InvalidInputError(f"expected a VirtualKey, got {type(key).__name__}")
    at = _now(now)
    fresh = _known(ledger, key.key_id)
    snapshot = ledger.control_snapshot()
    own = snapshot.get(fresh.scope)
    stored = own if own is not None else snapshot.get("default:key")
    budget = stored.budget if stored is not None else None
    periods = budget.periods() if budget is not None else ("daily", "monthly")
    zone = budget.timezone if budget is not None else "UTC"
    windows = WindowCache()
    buckets = []
    for period in periods:
        w = windows.window(period, zone, at)
        buckets.append(Bucket(fresh.scope, period, w.start, w.end))
    figures = ledger.usage(buckets, at)
    return KeyUsage(
        key_id=fresh.key_id,
        budget=budget,
        budget_scope=None if stored is None else stored.scope,
        periods=tuple(
            KeyPeriodUsage(
                b.period,
                u.spent,
                u.reserved,
                None if budget is None else budget.limit_nanos(b.period),
            )
            for b, u in zip(buckets, figures, strict=True)
        ),
    )


__all__ = [
    "DEFAULT_GRACE",
    "SECRET_PREFIX",
    "ControlLedger",
    "KeyPeriodUsage",
    "KeyUsage",
    "authenticate",
    "create_key",
    "display_prefix",
    "hash_secret",
    "key_usage",
    "list_keys",
    "new_secret",
    "revoke_key",
    "rotate_key",
]
