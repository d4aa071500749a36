"""The control plane's data: stored budgets, virtual keys and audit events.

Budgets, default budgets and virtual keys are ledger data (DESIGN.md: "Budgets and keys are
ledger data"), so every process, the CLI, the gateway and the dashboard enforce and show the
same ones. This module is the plain data the ledgers store and return, and the one way a
:class:`~costwarden.budget.Budget` becomes JSON and back; the ledgers' side is
:mod:`costwarden.ledger.control`, the key lifecycle :mod:`costwarden.keys`.

A budget is stored under a *scope string*: a scope (``global``, ``user:alice``,
``team:research``, ``key:<key_id>``, ``tag:x``, ``model:y``) or a default for every scope of a
kind (``default:user``, ``default:team``, ...). Its limits are stored as exact integer
nano-USD, so what is enforced after a round trip is exactly what was set.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final, cast

from costwarden.bounds import check_name
from costwarden.budget import SCOPE_KINDS, Budget, Scope
from costwarden.errors import InvalidInputError
from costwarden.money import nanos_to_usd

DEFAULT_PREFIX: Final = "default:"
DEFAULT_KINDS: Final = tuple(k for k in SCOPE_KINDS if k != "global")
"""Kinds a default budget can be set for: it applies to every scope of that kind that has no
budget of its own (``global`` is a single scope, so it has no default)."""

_CALENDAR: Final = ("daily", "weekly", "monthly")
BUDGET_FORMAT: Final = 1
"""Version of the budget JSON below; bumped (and read both ways) if a field is ever added."""


def budget_scope(text: object) -> str:
    """``text`` if it names something a budget can be stored under, else a typed error.

    Scope strings are canonical (``Scope.parse(text)`` prints back as ``text``), so one
    budget cannot hide under two spellings of its scope.
    """
    if not isinstance(text, str):
        raise InvalidInputError(f"a budget scope must be a string, got {type(text).__name__}")
    if text.startswith(DEFAULT_PREFIX):
        kind = text[len(DEFAULT_PREFIX) :]
        if kind not in DEFAULT_KINDS:
            raise InvalidInputError(
                f"a default budget is for one of {DEFAULT_KINDS} (e.g. 'default:user'), "
                f"got {text!r}"
            )
        return text
    scope = Scope.parse(text)
    if str(scope) != text:
        raise InvalidInputError(f"scope {text!r} is not canonical; write it as {str(scope)!r}")
    if scope.name:  # a name no request can carry would be a budget nothing ever meets
        check_name(scope.name, scope.kind)
    return text


# -- Budget <-> JSON --------------------------------------------------------------------------
def budget_to_dict(budget: Budget) -> dict[str, Any]:
    """A stable, JSON-ready dict of every field of ``budget``; limits as exact nano-USD."""
    if not isinstance(budget, Budget):
        raise InvalidInputError(f"expected a Budget, got {type(budget).__name__}")
    out: dict[str, Any] = {"format": BUDGET_FORMAT}
    for name in _CALENDAR:
        out[f"{name}_limit_nanos"] = budget.limit_nanos(name)
    out["per_request_limit_nanos"] = budget.per_request_nanos
    out["rolling_limits_nanos"] = {
        str(secs): budget.limit_nanos(f"rolling:{secs}s")
        for secs in sorted(budget.rolling_limits or {})
    }
    out["timezone"] = budget.timezone
    out["alert_threshold"] = float(budget.alert_threshold)
    out["alert_thresholds"] = (
        None if budget.alert_thresholds is None else [float(t) for t in budget.alert_thresholds]
    )
    return out


def _usd(nanos: object, name: str) -> float | None:
    """The float USD a caller would have typed for ``nanos``; a Decimal where a float cannot
    carry every nano (limits above about $9M), so the enforced limit is still exact."""
    if nanos is None:
        return None
    if isinstance(nanos, bool) or not isinstance(nanos, int) or nanos < 0:
        raise InvalidInputError(f"stored budget field {name} must be whole nano-USD >= 0")
    usd = nanos_to_usd(nanos)
    if round(Decimal(repr(usd)).scaleb(9)) == nanos:
        return usd
    return cast(float, Decimal(nanos).scaleb(-9))


def budget_from_dict(data: Mapping[str, Any]) -> Budget:
    """The :class:`Budget` :func:`budget_to_dict` wrote (a typed error for anything else)."""
    if not isinstance(data, Mapping) or data.get("format") != BUDGET_FORMAT:
        raise InvalidInputError(f"not a stored budget (format {BUDGET_FORMAT}): {data!r}")
    try:
        rolling_raw = data.get("rolling_limits_nanos") or {}
        rolling = {int(s): _usd(n, f"rolling_limits_nanos[{s}]") for s, n in rolling_raw.items()}
        thresholds = data.get("alert_thresholds")
        budget = Budget(
            daily_limit=_usd(data.get("daily_limit_nanos"), "daily_limit_nanos"),
            monthly_limit=_usd(data.get("monthly_limit_nanos"), "monthly_limit_nanos"),
            per_request_limit=_usd(data.get("per_request_limit_nanos"), "per_request_limit"),
            alert_threshold=float(data["alert_threshold"]),
            weekly_limit=_usd(data.get("weekly_limit_nanos"), "weekly_limit_nanos"),
            rolling_limits=cast(dict[int, float], rolling) if rolling else None,
            timezone=str(data["timezone"]),
            alert_thresholds=None if thresholds is None else tuple(float(t) for t in thresholds),
        )
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        if isinstance(exc, InvalidInputError):
            raise
        raise InvalidInputError(f"stored budget {data!r} cannot be read: {exc!r}") from None
    return budget


def budget_to_json(budget: Budget) -> str:
    """The budget as compact, key-sorted JSON, the form the control plane stores."""
    return json.dumps(budget_to_dict(budget), sort_keys=True, separators=(",", ":"))


def budget_from_json(text: str) -> Budget:
    """Rebuild a Budget from ``budget_to_json``'s text."""
    return budget_from_dict(json.loads(text))


# -- the stored things ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class StoredBudget:
    """A budget as the ledger keeps it. ``version`` is the ledger's control version at which
    it was written (so it only grows, across removals too); ``updated_at`` is epoch seconds;
    ``actor`` who wrote it (free text: a user name, ``cli``, ``config``)."""

    scope: str
    budget: Budget
    version: int
    updated_at: float
    actor: str

    @property
    def is_default(self) -> bool:
        """Whether this is a default budget (for every scope of a kind) rather than one scope's."""
        return self.scope.startswith(DEFAULT_PREFIX)

    def as_dict(self) -> dict[str, Any]:
        """The stored budget as JSON-ready values (the admin API and the CLI show this shape)."""
        return {
            "scope": self.scope,
            "budget": budget_to_dict(self.budget),
            "version": self.version,
            "updated_at": self.updated_at,
            "actor": self.actor,
        }


@dataclass(frozen=True, slots=True)
class VirtualKey:
    """A virtual key as the ledger keeps it: never its secret, only ``hash`` (hex SHA-256 of
    the secret, see :mod:`costwarden.keys` for why that is enough) and ``prefix`` (``cw-`` and
    the secret's first 8 characters, for people to tell keys apart).

    ``key_id`` is random and independent of the secret; it names the key's spend scope
    (``key:<key_id>``) and stays the same across rotations, so a rotated key keeps its budget
    and spend. A rotation moves the current hash to ``previous_hash``, valid until
    ``grace_until``. ``budget`` is stored as the budget of scope ``key:<key_id>``.
    ``models`` is an allow-list (None: every model). Times are epoch seconds.
    """

    key_id: str
    hash: str
    prefix: str
    created_at: float
    user: str | None = None
    team: str | None = None
    budget: Budget | None = None
    models: tuple[str, ...] | None = None
    rpm: int | None = None
    tpm: int | None = None
    expires_at: float | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    revoked_at: float | None = None
    previous_hash: str | None = None
    previous_prefix: str | None = None
    grace_until: float | None = None

    @property
    def scope(self) -> str:
        """The scope the key's spend is recorded under (``key:<id>``)."""
        return f"key:{self.key_id}"

    def as_dict(self) -> dict[str, Any]:
        """Everything but the hashes: what listings, ``--json`` and the audit log show."""
        return {
            "key_id": self.key_id,
            "prefix": self.prefix,
            "user": self.user,
            "team": self.team,
            "budget": None if self.budget is None else budget_to_dict(self.budget),
            "models": None if self.models is None else list(self.models),
            "rpm": self.rpm,
            "tpm": self.tpm,
            "expires_at": self.expires_at,
            "metadata": dict(self.metadata),
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
            "previous_prefix": self.previous_prefix,
            "grace_until": self.grace_until,
        }


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One change to a budget or key: when (epoch s), who, what (``budget.put``,
    ``budget.remove``, ``key.create``, ``key.update``), on what (a scope or ``key:<id>``),
    and the JSON of the thing before and after (None where it did not exist)."""

    id: int
    at: float
    actor: str
    action: str
    target: str
    old: dict[str, Any] | None
    new: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class ControlSnapshot:
    """Every stored budget, read in one transaction with the control version it belongs to."""

    version: int
    budgets: tuple[StoredBudget, ...]

    def get(self, scope: str) -> StoredBudget | None:
        """The stored budget of ``scope`` in this snapshot, or None."""
        for stored in self.budgets:
            if stored.scope == scope:
                return stored
        return None


# -- validation shared by every ledger ---------------------------------------------------------
def check_label(value: object, what: str) -> str:
    """Check ``value`` is a non-empty string of at most 200 characters (the actor named in the
    audit log, a virtual key's user or team); the error names it ``what``."""
    if not isinstance(value, str) or not value or len(value) > 200:
        raise InvalidInputError(f"{what} must be a non-empty string (<= 200 chars), got {value!r}")
    return value


def check_actor(actor: object) -> str:
    """Check the actor named in the audit log (:func:`check_label`)."""
    return check_label(actor, "actor")


def check_time(value: object, name: str) -> float:
    """Check ``value`` is finite epoch seconds (not a bool); the error names it ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidInputError(f"{name} must be epoch seconds, got {value!r}")
    return float(value)


def dumps(value: Any) -> str:
    """Stable JSON (sorted keys, no spaces): what the ledgers store."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def loads_or_none(text: str | None) -> Any:
    """Parse a nullable JSON column: None stays None."""
    return None if text is None else json.loads(text)


__all__ = [
    "DEFAULT_KINDS",
    "AuditEvent",
    "ControlSnapshot",
    "StoredBudget",
    "VirtualKey",
    "budget_from_dict",
    "budget_from_json",
    "budget_scope",
    "budget_to_dict",
    "budget_to_json",
]
