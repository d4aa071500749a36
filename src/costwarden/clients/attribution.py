"""Attribution: who and what a tracked call is for.

Copied onto every record of the call, and used to pick the budgets it must fit (user, team,
virtual key, tags; the endpoint counts as a tag scope).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from costwarden.errors import InvalidInputError


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
