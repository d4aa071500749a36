"""Attribution: who and what a tracked call is for.

Copied onto every record of the call (:func:`usage_record` builds a record from a call's usage
and its attribution), and used to pick the budgets it must fit (user, team, virtual key, tags;
the endpoint counts as a tag scope).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from costwarden.errors import InvalidInputError
from costwarden.records import Usage, UsageRecord


@dataclass(frozen=True, slots=True)
class Attribution:
    """Who and what a call is for; copied onto every record (and used to pick budgets)."""

    user: str | None = None
    team: str | None = None
    key: str | None = None
    endpoint: str | None = None
    tags: tuple[str, ...] = ()
    request_id: str | None = None

    def __post_init__(self) -> None:
        for name in ("user", "team", "key", "endpoint", "request_id"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise InvalidInputError(f"{name} must be a non-empty string, got {value!r}")
        tags = (self.tags,) if isinstance(self.tags, str) else tuple(self.tags)
        if not all(isinstance(t, str) and t for t in tags):
            raise InvalidInputError(f"tags must be non-empty strings, got {self.tags!r}")
        object.__setattr__(self, "tags", tags)

    def override(self, **changes: Any) -> Attribution:
        """A copy with the given non-None fields replaced (per-call attribution)."""
        given = {k: v for k, v in changes.items() if v is not None}
        return replace(self, **given) if given else self

    @property
    def budget_tags(self) -> tuple[str, ...]:
        """Tags for admission: the endpoint counts as a tag scope, as it does on records."""
        if self.endpoint and self.endpoint not in self.tags:
            return (*self.tags, self.endpoint)
        return self.tags


def usage_record(
    usage: Usage,
    who: Attribution,
    *,
    model: str,
    provider: str | None,
    request_id: str | None,
    service_tier: str | None,
    metadata: dict[str, Any] | None,
    cost_usd: float | None,
    latency_ms: float | None,
    status: str,
    estimated: bool,
) -> UsageRecord:
    """The record of a call that used ``usage``, for ``who``: every count of the usage and every
    field of the attribution but its request id, which the caller chooses with the rest (all
    named, so no default of :class:`UsageRecord` is written twice)."""
    return UsageRecord(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        reasoning_tokens=usage.reasoning_tokens,
        cache_write_1h_tokens=usage.cache_write_1h_tokens,
        input_audio_tokens=usage.input_audio_tokens,
        cache_audio_read_tokens=usage.cache_audio_read_tokens,
        output_audio_tokens=usage.output_audio_tokens,
        web_searches=usage.web_searches,
        user_id=who.user,
        team=who.team,
        key=who.key,
        endpoint=who.endpoint,
        tags=who.tags,
        model=model,
        provider=provider,
        request_id=request_id,
        service_tier=service_tier,
        metadata=metadata,
        cost_usd=cost_usd,
        latency_ms=latency_ms,
        status=status,
        estimated=estimated,
    )
