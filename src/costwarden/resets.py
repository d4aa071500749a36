"""Which scopes a reset moves: one named, every scope with spend, or every budgeted one.

``BudgetManager.reset(period, scope)`` starts a period's count afresh by moving the ledger's
baseline of each target scope's current window (an event is recorded; history stays). This
module finds the targets and moves them.
"""

from __future__ import annotations

from costwarden.budget import Scope
from costwarden.errors import InvalidInputError
from costwarden.ledger.base import Ledger
from costwarden.money import Nanos
from costwarden.plans import CALENDAR_PERIODS, DEFAULT_KINDS, Planner, one_scope


def reset_period(
    planner: Planner,
    ledger: Ledger,
    period: str,
    scope: str | None,
    named: dict[str, str],
    now: float,
) -> dict[str, Nanos]:
    """Move ``period``'s baseline of each target scope (see ``BudgetManager.reset``) to its
    spent, recording an event per scope (the history stays); ``{scope: nano-USD moved}``."""
    if period not in CALENDAR_PERIODS:
        raise InvalidInputError(
            f"period must be one of {', '.join(CALENDAR_PERIODS)}, got {period!r}"
        )
    if scope is not None and named:
        raise InvalidInputError(f"name one scope at a time, got {scope!r} and {named}")
    unknown = sorted(set(named) - set(DEFAULT_KINDS))
    if unknown:
        raise InvalidInputError(
            f"reset_{period}() takes one of {', '.join(DEFAULT_KINDS)}, not {', '.join(unknown)}"
        )
    if named:
        targets = [one_scope(**named)]
    elif scope is None or scope == "all":
        targets = _covered(planner, ledger, period, now, every=scope == "all")
    elif isinstance(scope, str):
        parsed = Scope.parse(scope)
        targets = [one_scope(**{parsed.kind: parsed.name}) if parsed.name else parsed]
    else:
        raise InvalidInputError(f"scope must be a string such as 'user:alice', got {scope!r}")
    moved: dict[str, Nanos] = {}
    for one in targets:
        bucket = planner.bucket(period, one, now)
        moved[str(one)] = ledger.reset(bucket, now, detail=f"reset_{period}()")
    return moved


def _covered(
    planner: Planner, ledger: Ledger, period: str, now: float, *, every: bool
) -> list[Scope]:
    """The scopes with a budget of their own, then those with spend in their current
    ``period`` that a default budget covers (``every``: any with spend).

    Scopes with spend are found from the records since the earliest window start (which
    scopes a record counted in follows from its attribution, as when it was written), then
    kept only if the ledger's total for their window is above zero.
    """
    own, defaults = planner.registry.all(), planner.registry.defaults()
    scopes = list(own)
    if not every and not defaults:
        return scopes
    zones = {b.timezone for b in (*own.values(), *defaults.values())}
    since = min(planner.windows.window(period, zone, now).start for zone in zones)
    seen = set(scopes)
    found: list[Scope] = []
    for r in ledger.records(since * 1_000_000):
        plan = planner.for_record(r, now)
        for one in plan.scopes:
            if one not in seen and (every or one.kind in defaults):
                seen.add(one)
                found.append(one)
    found.sort()
    usages = ledger.usage([planner.bucket(period, one, now) for one in found], now)
    return scopes + [one for one, u in zip(found, usages, strict=True) if u.spent > 0]
