"""Error bodies in the client's own API format, and the budget denial as HTTP 429.

A client of the OpenAI API reads ``{"error": {"message", "type", "code", "param"}}``; one of
the Anthropic API reads ``{"type": "error", "error": {"type", "message"}}``. The SDKs map the
status to their exception classes (429 -> ``RateLimitError``), so a denial reaches the
caller's code as the error it already handles. A budget denial adds a ``budget`` object (which
budget, what is left, when it resets) beside the standard fields, which clients ignore.

Headers: ``Retry-After`` (seconds until the budget's window resets) and, because retrying
cannot help before then, ``x-should-retry: false``, which both official SDKs honour instead of
retrying a 429 with their backoff. A rate-limit denial (rpm/tpm) does not send it: retrying
after ``Retry-After`` is exactly right there.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

Dialect = Literal["openai", "anthropic"]

_ANTHROPIC_TYPES: Final = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "api_error",
}
_OPENAI_TYPES: Final = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "invalid_request_error",
    404: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """An HTTP error to send: status, the message, a machine code, headers and extras."""

    status: int
    message: str
    code: str
    headers: tuple[tuple[bytes, bytes], ...] = ()
    extra: dict[str, Any] | None = None

    def body(self, dialect: Dialect) -> bytes:
        """The error as the client's dialect expects it (OpenAI's or Anthropic's error JSON)."""
        if dialect == "anthropic":
            inner: dict[str, Any] = {
                "type": _ANTHROPIC_TYPES.get(self.status, "api_error"),
                "message": self.message,
                "code": self.code,
            }
            if self.extra:
                inner.update(self.extra)
            payload: dict[str, Any] = {"type": "error", "error": inner}
        else:
            inner = {
                "message": self.message,
                "type": _OPENAI_TYPES.get(self.status, "server_error"),
                "param": None,
                "code": self.code,
            }
            if self.extra:
                inner.update(self.extra)
            payload = {"error": inner}
        return json.dumps(payload, separators=(",", ":")).encode()


def budget_denial(
    message: str,
    *,
    scope: str,
    period: str,
    limit_usd: float,
    spent_usd: float,
    reserved_usd: float,
    attempted_usd: float,
    resets_at: float | None,
    now: float,
) -> ErrorReply:
    """The 429 for a request a budget does not admit (``resets_at`` epoch s, None: never)."""
    remaining = max(0.0, round(limit_usd - spent_usd - reserved_usd, 9))
    budget: dict[str, Any] = {
        "scope": scope,
        "period": period,
        "limit_usd": limit_usd,
        "spent_usd": spent_usd,
        "reserved_usd": reserved_usd,
        "requested_usd": attempted_usd,
        "remaining_usd": remaining,
        "resets_at": None
        if resets_at is None
        else datetime.fromtimestamp(resets_at, UTC).isoformat(),
    }
    headers = [(b"x-should-retry", b"false")]
    if resets_at is not None:
        wait = max(1, math.ceil(resets_at - now))
        headers.append((b"retry-after", str(wait).encode()))
    return ErrorReply(429, message, "budget_exceeded", tuple(headers), {"budget": budget})


def rate_denial(message: str, *, limit: str, retry_after: float) -> ErrorReply:
    """The 429 for a request over its key's requests- or tokens-per-minute limit."""
    wait = max(1, math.ceil(retry_after))
    return ErrorReply(
        429,
        message,
        "rate_limit_exceeded",
        ((b"retry-after", str(wait).encode()),),
        {"rate_limit": {"limit": limit, "retry_after_seconds": wait}},
    )


__all__ = ["Dialect", "ErrorReply", "budget_denial", "rate_denial"]
