"""What the admin API accepts: JSON bodies and query strings, checked into typed values.

Every check here runs before anything is written, and every refusal is an
:class:`~costwarden.errors.InvalidInputError` whose message names the field and says what to
send instead (the API turns it into a 400). Two rules are stricter than the library's:

- A budget sent with ``PUT`` is the whole budget. A field left out means "no limit", not the
  library's positional default (``Budget()`` has a $10 daily limit, which no one sending
  ``{"monthly_limit": 100}`` means); unknown fields are refused, so a typo such as
  ``montly_limit`` cannot silently drop a limit.
- Strings from the network must be storable by every ledger: valid Unicode (a JSON escape can
  carry a lone surrogate) without NUL characters (PostgreSQL text refuses them), so a bad
  name is a 400 here, not a database error later.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final, cast

from costwarden.bounds import MAX_NAME_LENGTH, check_name
from costwarden.budget import Budget, Scope, get_zone
from costwarden.control import budget_scope
from costwarden.errors import InvalidInputError
from costwarden.money import Nanos, nanos_to_usd, usd_to_nanos

MAX_BODY_BYTES: Final = 65_536
"""The largest request body the admin API reads (a key's metadata is at most 16 KiB)."""
MAX_LIMIT: Final = 10_000
"""The most rows one listing returns (``limit``)."""
INT64_MAX: Final = 2**63 - 1

BUDGET_FIELDS: Final = (
    "daily_limit",
    "weekly_limit",
    "monthly_limit",
    "per_request_limit",
    "rolling_limits",
    "timezone",
    "alert_threshold",
    "alert_thresholds",
)
KEY_FIELDS: Final = ("user", "team", "budget", "models", "rpm", "tpm", "expires_at", "metadata")
ROTATE_FIELDS: Final = ("grace_seconds",)


# -- strings and bodies ----------------------------------------------------------------------
def check_text(value: str, what: str) -> str:
    """``value`` if every ledger can store it (valid Unicode, no NUL), else a typed error."""
    if "\x00" in value:
        raise InvalidInputError(f"{what} contains a NUL character; send text without it")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInputError(
            f"{what} is not valid Unicode text (a lone surrogate escape?); send UTF-8 text"
        ) from None
    return value


def _check_strings(value: object, where: str) -> None:
    """Every string in a decoded JSON document (keys included) is storable text."""
    if isinstance(value, str):
        check_text(value, where)
    elif isinstance(value, dict):
        for k, v in value.items():
            check_text(k, f"a field name in {where}")
            _check_strings(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_strings(v, f"{where}[{i}]")


def parse_body(raw: bytes, *, allowed: tuple[str, ...], required: bool) -> dict[str, Any]:
    """A JSON object body with only ``allowed`` fields (an empty body is ``{}`` unless
    ``required``)."""
    if not raw.strip():
        if required:
            raise InvalidInputError("send a JSON object body (Content-Type: application/json)")
        return {}
    try:
        data = json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, InvalidInputError):
            raise
        raise InvalidInputError(f"the body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidInputError(f"the body must be a JSON object, got {type(data).__name__}")
    _check_strings(data, "body")
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise InvalidInputError(
            f"unknown field(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(allowed)}"
        )
    return data


def _refuse_constant(name: str) -> object:
    raise InvalidInputError(f"the body holds {name}, which is not a JSON number")


# -- scopes ----------------------------------------------------------------------------------
def scope_text(text: str) -> str:
    """A canonical budget scope (``global``, ``user:alice``, ``default:user``) from a path."""
    check_text(text, "the scope")
    scope = budget_scope(text)
    if not scope.startswith("default:") and scope != "global":
        check_name(Scope.parse(scope).name, "the scope's name")
    return scope


# -- budgets ---------------------------------------------------------------------------------
def _usd(value: object, field: str) -> float | None:
    """A USD amount (JSON number or decimal string) as the exact float/Decimal a Budget keeps."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InvalidInputError(
            f"{field} must be a USD amount (a number or a decimal string) or null, got {value!r}"
        )
    try:
        nanos = usd_to_nanos(value, field=field)
    except InvalidInputError as exc:
        if field in str(exc):
            raise
        raise InvalidInputError(f"{field}: {exc}") from None
    if nanos > INT64_MAX:
        raise InvalidInputError(f"{field} is above the largest limit a ledger stores ($9.2B)")
    return exact_usd(nanos)


def exact_usd(nanos: Nanos) -> float:
    """Float USD for ``nanos`` when a float carries every nano, else an exact Decimal (limits
    above about $9M); either way the limit enforced is exactly the one sent."""
    usd = nanos_to_usd(nanos)
    if round(Decimal(repr(usd)).scaleb(9)) == nanos:
        return usd
    return cast(float, Decimal(nanos).scaleb(-9))


def _fraction(value: object, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidInputError(f"{field} must be a number, got {value!r}")
    return float(value)


def parse_budget(data: object, where: str = "budget") -> Budget:
    """A whole :class:`Budget` from its JSON form (see the module doc for the rules)."""
    if not isinstance(data, Mapping):
        raise InvalidInputError(f"{where} must be a JSON object of limits, got {data!r}")
    unknown = sorted(set(data) - set(BUDGET_FIELDS))
    if unknown:
        raise InvalidInputError(
            f"unknown field(s) {', '.join(map(repr, unknown))} in {where}; "
            f"allowed: {', '.join(BUDGET_FIELDS)}"
        )
    limits = {
        name: _usd(data.get(name), name)
        for name in ("daily_limit", "weekly_limit", "monthly_limit", "per_request_limit")
    }
    rolling_raw = data.get("rolling_limits")
    rolling: dict[int, float] | None = None
    if rolling_raw is not None:
        if not isinstance(rolling_raw, Mapping) or not rolling_raw:
            raise InvalidInputError(
                'rolling_limits must be an object of window seconds to USD, e.g. {"3600": 2.0}'
            )
        rolling = {}
        for secs, usd in rolling_raw.items():
            if not (isinstance(secs, str) and secs.isascii() and secs.isdigit()) or len(secs) > 9:
                raise InvalidInputError(
                    f"rolling_limits keys are window lengths in whole seconds, got {secs!r}"
                )
            amount = _usd(usd, f"rolling_limits[{secs}]")
            if amount is None:
                raise InvalidInputError(f"rolling_limits[{secs}] needs a USD amount, not null")
            rolling[int(secs)] = amount
    if all(v is None for v in limits.values()) and rolling is None:
        raise InvalidInputError(
            f"{where} sets no limit; give at least one of daily_limit, weekly_limit, "
            "monthly_limit, per_request_limit, rolling_limits (DELETE removes a budget)"
        )
    zone = data.get("timezone", "UTC")
    if not isinstance(zone, str) or not zone or len(zone) > 64:
        raise InvalidInputError(f"timezone must be an IANA zone name, got {zone!r}")
    thresholds_raw = data.get("alert_thresholds")
    thresholds: tuple[float, ...] | None = None
    if thresholds_raw is not None:
        if not isinstance(thresholds_raw, list) or not thresholds_raw or len(thresholds_raw) > 20:
            raise InvalidInputError("alert_thresholds must be a list of 1-20 fractions or null")
        thresholds = tuple(_fraction(t, "alert_thresholds[]") for t in thresholds_raw)
    return Budget(
        limits["daily_limit"],
        limits["monthly_limit"],
        limits["per_request_limit"],
        _fraction(data.get("alert_threshold", 0.8), "alert_threshold"),
        weekly_limit=limits["weekly_limit"],
        rolling_limits=rolling,
        timezone=zone,
        alert_thresholds=thresholds,
    )


# -- keys ------------------------------------------------------------------------------------
def _count(value: object, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= INT64_MAX:
        raise InvalidInputError(f"{field} must be a positive whole number or null, got {value!r}")
    return value


def _name(value: object, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > 200:
        raise InvalidInputError(f"{field} must be a non-empty string (<= 200 chars) or null")
    return value


@dataclass(frozen=True, slots=True)
class NewKey:
    """The arguments of :func:`costwarden.keys.create_key` from a ``POST /keys`` body."""

    user: str | None
    team: str | None
    budget: Budget | None
    models: tuple[str, ...] | None
    rpm: int | None
    tpm: int | None
    expires_at: float | None
    metadata: dict[str, Any] | None


def parse_new_key(data: Mapping[str, Any], now: float) -> NewKey:
    """Check a create-key request body (models, limits, expiry, metadata, budget) before any write;
    bad input is an InvalidInputError.
    """
    models = data.get("models")
    if models is not None:
        if not isinstance(models, list) or not models or len(models) > 1000:
            raise InvalidInputError("models must be a list of 1-1000 model names or null")
        for m in models:
            if not isinstance(m, str) or not m or len(m) > MAX_NAME_LENGTH:
                raise InvalidInputError(f"models must hold non-empty model names, got {m!r}")
    metadata = data.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise InvalidInputError("metadata must be a JSON object or null")
    expires = data.get("expires_at")
    expires_at = None if expires is None else parse_time(expires, "expires_at", "UTC")
    if expires_at is not None and expires_at <= now:
        raise InvalidInputError(f"expires_at must be in the future, got {expires!r}")
    budget = data.get("budget")
    return NewKey(
        user=_name(data.get("user"), "user"),
        team=_name(data.get("team"), "team"),
        budget=None if budget is None else parse_budget(budget, "budget"),
        models=None if models is None else tuple(models),
        rpm=_count(data.get("rpm"), "rpm"),
        tpm=_count(data.get("tpm"), "tpm"),
        expires_at=expires_at,
        metadata=metadata,
    )


def parse_grace(data: Mapping[str, Any]) -> float | None:
    """``grace_seconds`` of a rotation (None: the library's default, 24 hours)."""
    grace = data.get("grace_seconds")
    if grace is None:
        return None
    if (
        isinstance(grace, bool)
        or not isinstance(grace, (int, float))
        or not math.isfinite(grace)
        or not 0 <= grace <= 366 * 86400
    ):
        raise InvalidInputError(
            f"grace_seconds must be a number of seconds from 0 to a year, got {grace!r}"
        )
    return float(grace)


# -- query strings ---------------------------------------------------------------------------
def parse_time(value: object, field: str, zone: str) -> float:
    """Epoch seconds from an ISO 8601 timestamp or date (naive: local to ``zone``)."""
    if not isinstance(value, str) or not value or len(value) > 64:
        raise InvalidInputError(
            f"{field} must be an ISO 8601 timestamp such as 2026-11-01T09:30:00Z or a date "
            f"such as 2026-11-01, got {value!r}"
        )
    try:
        at = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInputError(
            f"{field} {value!r} is not an ISO 8601 timestamp; write 2026-11-01T09:30:00Z, "
            "2026-11-01T09:30+01:00 or 2026-11-01"
        ) from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=get_zone(zone))
    try:
        return at.astimezone(UTC).timestamp()
    except (OverflowError, ValueError):
        raise InvalidInputError(f"{field} {value!r} is out of range") from None


@dataclass(frozen=True, slots=True)
class Span:
    """A query's ``[since, until)`` in epoch seconds (None: open) and its time zone."""

    since: float | None
    until: float | None
    timezone: str


def parse_span(query: Mapping[str, str], *, default_zone: str = "UTC") -> Span:
    """Read the ``since``/``until``/``timezone`` query parameters into a time span, checking the
    zone exists.
    """
    zone = query.get("timezone", default_zone)
    check_text(zone, "timezone")
    get_zone(zone)
    since = query.get("since")
    until = query.get("until")
    start = None if since is None else parse_time(since, "since", zone)
    end = None if until is None else parse_time(until, "until", zone)
    if start is not None and end is not None and end < start:
        raise InvalidInputError(f"until ({until}) is before since ({since})")
    return Span(start, end, zone)


def parse_limit(query: Mapping[str, str], default: int = 100) -> int:
    """Read the ``limit`` query parameter as a positive whole number within the API's cap."""
    text = query.get("limit")
    if text is None:
        return default
    if not (text.isascii() and text.isdigit()) or not 0 < int(text[:6]) <= MAX_LIMIT:
        raise InvalidInputError(f"limit must be a whole number from 1 to {MAX_LIMIT}, got {text!r}")
    return int(text)


def parse_choice(
    query: Mapping[str, str], name: str, choices: tuple[str, ...], default: str
) -> str:
    """Read the query parameter ``name``, which must be one of ``choices`` (else a 400
    InvalidInputError).
    """
    value = query.get(name, default)
    if value not in choices:
        raise InvalidInputError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def parse_flag(query: Mapping[str, str], name: str, default: bool) -> bool:
    """Read a true/false query parameter (true/1/yes, false/0/no); absent gives ``default``,
    anything else is an InvalidInputError."""
    value = query.get(name)
    if value is None:
        return default
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise InvalidInputError(f"{name} must be true or false, got {value!r}")


def check_query(query: Mapping[str, str], allowed: tuple[str, ...]) -> None:
    """Unknown query parameters are refused (a misspelt filter must not return everything)."""
    for name, value in query.items():
        check_text(name, "a query parameter name")
        check_text(value, f"query parameter {name}")
    unknown = sorted(set(query) - set(allowed))
    if unknown:
        raise InvalidInputError(
            f"unknown query parameter(s) {', '.join(map(repr, unknown))}; "
            f"allowed: {', '.join(allowed) or 'none'}"
        )


__all__ = [
    "BUDGET_FIELDS",
    "KEY_FIELDS",
    "MAX_BODY_BYTES",
    "MAX_LIMIT",
    "ROTATE_FIELDS",
    "NewKey",
    "Span",
    "check_query",
    "check_text",
    "exact_usd",
    "parse_body",
    "parse_budget",
    "parse_choice",
    "parse_flag",
    "parse_grace",
    "parse_limit",
    "parse_new_key",
    "parse_span",
    "parse_time",
    "scope_text",
]
