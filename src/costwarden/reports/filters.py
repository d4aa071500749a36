"""Which records a report or export covers: one optional name per scope kind.

Filters combine (``user`` and ``model`` must both match). ``tag`` matches a record that carries
the tag or was made on that endpoint, as budgets' ``tag:`` scopes do.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields

from costwarden.records import StoredRecord


@dataclass(frozen=True, slots=True)
class RecordFilter:
    """Which records a report or export includes (user, team, model, ...); None fields match
    everything.
    """

    user: str | None = None
    team: str | None = None
    key: str | None = None
    model: str | None = None
    tag: str | None = None

    @property
    def empty(self) -> bool:
        """Whether no field is set, so every record matches."""
        return all(getattr(self, f.name) is None for f in fields(self))

    def matches(self, r: StoredRecord) -> bool:
        """Whether record ``r`` passes every field that is set."""
        return (
            (self.user is None or r.user_id == self.user)
            and (self.team is None or r.team == self.team)
            and (self.key is None or r.key == self.key)
            and (self.model is None or r.model == self.model)
            and (self.tag is None or self.tag in r.tags or r.endpoint == self.tag)
        )

    def apply(self, records: Iterable[StoredRecord]) -> Iterator[StoredRecord]:
        """The records that match, all of them when the filter is empty."""
        if self.empty:
            yield from records
            return
        matches = self.matches
        for r in records:
            if matches(r):
                yield r

    def describe(self) -> str:
        """``user=alice, model=gpt-4o``, or ``all records``."""
        given = [f"{f.name}={getattr(self, f.name)}" for f in fields(self)]
        named = [g for g, f in zip(given, fields(self), strict=True) if getattr(self, f.name)]
        return ", ".join(named) or "all records"
