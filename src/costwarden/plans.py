"""Which budgets and windows apply to a request: the budget registry and the plan.

The :class:`BudgetRegistry` is where a manager's budgets live: the global budget, budgets of
named scopes (``user:alice``, ``team:eng``, ...) and default budgets per scope kind (every user
without a budget of its own). It has a ``version`` that moves on every change, so whatever is
derived from the budgets (the plans below) is rebuilt when, and only when, it moves. A registry
backed by a shared store can bump ``version`` when the store changes, and every derived cache
follows without further wiring.

A :class:`Plan` is what one request needs, worked out once for one set of scope arguments and
one stretch of time: the scopes it belongs to, the per-request caps of their budgets, the limit
checks and watched buckets handed to ``Ledger.reserve``/``check``/``append``, the buckets a
record adds to, and the time range ``[valid_from, valid_until)`` in which those windows hold.
Plans are immutable and hashable; a :class:`Planner` caches the latest one per arguments and
replaces it whole at a period boundary or a budget change, so concurrent readers never see a
range paired with another window's checks.

The checks and buckets are :class:`~costwarden.ledger.base.HashedTuple`: equal plans hand
equal (and equally hashing) sequences, and a ledger that remembers work per *value* of them, as
the Ledger Protocol allows, pays one dict hit per call. Nothing here relies on identity.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, TypedDict, TypeVar

from costwarden import forksafe
from costwarden.bounds import check_name, check_names
from costwarden.budget import GLOBAL, Budget, Scope, WindowCache, scopes_for
from costwarden.caching import BoundedCache
from costwarden.errors import InvalidInputError
from costwarden.ledger.base import MINUTE, Bucket, HashedTuple, LimitCheck
from costwarden.money import Nanos
from costwarden.records import StoredRecord, UsageRecord

CALENDAR_PERIODS: Final = ("daily", "weekly", "monthly")
"""The periods every scope keeps totals for (status and resets read them)."""
DEFAULT_KINDS: Final = ("user", "team", "key", "tag", "model")
_KINDS: Final = frozenset(DEFAULT_KINDS)
_NAME_FIELDS: Final = ("user", "team", "key", "model", "endpoint")  # then tags
_MAX_PLANS: Final = 10_000
_T = TypeVar("_T")


def check_budget(budget: object) -> Budget:
    """Refuse anything but a Budget where one is set (the registry, the manager, the ledger's
    budgets): a clear error before anything changes."""
    if not isinstance(budget, Budget):
        raise InvalidInputError(f"budget must be a Budget, got {type(budget).__name__}")
    return budget


def check_kind(kind: object) -> str:
    """Refuse a scope kind that cannot have a default budget (``global`` has none)."""
    if kind not in DEFAULT_KINDS:
        raise InvalidInputError(f"default budgets are per user/team/key/tag/model, not {kind!r}")
    assert isinstance(kind, str)
    return kind


NO_LIMITS: Final = Budget(None, None, None)
"""The global budget when neither the ledger nor the process has one: nothing is limited."""


class BudgetRegistry:
    """The budgets of one manager: global, per scope, and defaults per scope kind.

    Reads take no lock: every change replaces a whole mapping, then moves ``version``, so a
    reader sees either the old budgets or the new ones, and a plan built from the old ones
    is dropped when its planner next sees the version.
    """

    def __init__(self, global_budget: Budget) -> None:
        self._budgets: dict[Scope, Budget] = {GLOBAL: check_budget(global_budget)}
        self._defaults: dict[str, Budget] = {}
        self._lock = forksafe.fresh_after_fork(threading.Lock())
        self.version = 0
        """Moves on every change (read on every plan lookup: a plain attribute)."""

    @property
    def global_budget(self) -> Budget:
        """The budget of the global scope (always present)."""
        return self._budgets[GLOBAL]

    def get(self, scope: Scope) -> Budget | None:
        """The budget of ``scope`` itself (not a default)."""
        return self._budgets.get(scope)

    def budget_for(self, scope: Scope) -> Budget | None:
        """The budget that applies to ``scope``: its own, else its kind's default."""
        return self._budgets.get(scope) or self._defaults.get(scope.kind)

    def set(self, scope: Scope, budget: Budget) -> None:
        """Give ``scope`` its own budget (``GLOBAL``: replace the global budget)."""
        self._change(scope, check_budget(budget))

    def remove(self, scope: Scope) -> Budget | None:
        """Drop the budget of ``scope``; the one dropped, if any. The global budget stays
        (set an unlimited ``Budget()`` to lift it)."""
        if scope == GLOBAL:
            raise InvalidInputError("the global budget cannot be removed; set Budget() instead")
        return self._change(scope, None)

    def set_default(self, kind: str, budget: Budget) -> None:
        """The budget of every scope of ``kind`` that has none of its own."""
        self._change(check_kind(kind), check_budget(budget))

    def remove_default(self, kind: str) -> Budget | None:
        """Drop the default budget of ``kind``; the one dropped, if any."""
        return self._change(check_kind(kind), None)

    def _change(self, target: Scope | str, budget: Budget | None) -> Budget | None:
        """Set (or, with None, drop) the budget of a scope or, for a kind, the default one:
        a new mapping replaces the old whole, then the version moves."""
        with self._lock:
            if isinstance(target, Scope):
                budgets = dict(self._budgets)
                old = budgets.pop(target, None)
                if budget is not None:
                    budgets[target] = budget
                self._budgets = budgets
            else:
                defaults = dict(self._defaults)
                old = defaults.pop(target, None)
                if budget is not None:
                    defaults[target] = budget
                self._defaults = defaults
            self.version += 1
        return old

    def load(self, budgets: Mapping[Scope, Budget], defaults: Mapping[str, Budget]) -> None:
        """Replace every budget at once (the ledger's, read by costwarden.shared_budgets):
        both mappings are swapped, then the version moves."""
        own = {GLOBAL: NO_LIMITS, **budgets}
        with self._lock:
            self._budgets, self._defaults = own, dict(defaults)
            self.version += 1

    def defaults(self) -> Mapping[str, Budget]:
        """Default budgets by scope kind (a read-only view of this version)."""
        return MappingProxyType(self._defaults)

    def all(self) -> Mapping[Scope, Budget]:
        """Every scope's own budget, the global one first (a read-only view of this version)."""
        return MappingProxyType(self._budgets)


class ScopeKeywords(TypedDict, total=False):
    """The keywords that name one scope (``user="alice"``; none: the global scope), as one type
    for the methods that take them (``status``, ``get_status``, ``set_budget``,
    ``remove_budget``), so the five are written once: the type checker checks each call's names
    and types, and :func:`one_scope` the rest at run time (an unknown kind, two names at once).
    """

    user: str | None
    team: str | None
    key: str | None
    tag: str | None
    model: str | None


def one_scope(**named: str | None) -> Scope:
    """The one scope named as ``kind=name`` (``user="alice"``; none: ``GLOBAL``); naming two,
    or a kind that is not a scope's, is an error."""
    given = [(k, v) for k, v in named.items() if v is not None]
    if not named.keys() <= _KINDS:
        unknown = sorted(named.keys() - _KINDS)
        raise InvalidInputError(f"a scope is a user, team, key, tag or model, not {unknown}")
    if not given:
        return GLOBAL
    if len(given) > 1:
        raise InvalidInputError(f"name one scope at a time, got {dict(given)}")
    kind, name = given[0]
    if not isinstance(name, str) or not name:
        raise InvalidInputError(f"{kind} must be a non-empty string, got {name!r}")
    return Scope(kind, check_name(name, kind))


@dataclass(frozen=True, slots=True, eq=False)
class BudgetCheck(LimitCheck):
    """A limit check that remembers the budget it came from (for its alert thresholds).

    Compared and hashed by bucket and limit only (as ``LimitCheck``), never by budget: two
    checks of one window and limit are equal whichever budget object they came from."""

    budget: Budget
    # Spend below the lowest alert threshold fires nothing (most commits): checked first.
    first_alert: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        thresholds = self.budget.thresholds()
        first = self.limit * thresholds[0] if thresholds else math.inf
        object.__setattr__(self, "first_alert", first)

    def may_alert(self, spent: Nanos) -> bool:
        """Whether ``spent`` reaches any alert threshold (see ``alerts.triggers.reached``)."""
        return spent >= self.first_alert


@dataclass(frozen=True, slots=True)
class Plan:
    """The budgets and windows that apply to one request, valid in ``[valid_from, valid_until)``.

    ``checks`` (and their buckets, ``watch``) are the limits admission must fit; ``buckets``
    are the totals a record adds to: each scope's day, week and month (in its budget's time
    zone, else the global one's) and a minute slot for a scope with rolling limits.
    """

    scopes: tuple[Scope, ...]
    caps: tuple[tuple[Scope, Nanos], ...]
    min_cap: Nanos | None
    checks: HashedTuple[BudgetCheck]
    watch: HashedTuple[Bucket]
    buckets: HashedTuple[Bucket]
    valid_from: float
    valid_until: float

    def covers(self, at: float) -> bool:
        """Whether the plan is still valid at ``at`` (its windows have not rolled over)."""
        return self.valid_from <= at < self.valid_until

    def over_cap(self, amount: Nanos) -> tuple[Scope, Nanos] | None:
        """The first scope whose per-request cap ``amount`` exceeds, and that cap."""
        if self.min_cap is None or amount <= self.min_cap:
            return None
        return next(((s, cap) for s, cap in self.caps if amount > cap), None)


class Planner:
    """Plans for a registry's budgets: cached per scope arguments, rebuilt at a period
    boundary (a time outside the plan's range) or when the registry's version moves."""

    __slots__ = ("_plans", "_shared", "_version", "registry", "windows")

    def __init__(self, registry: BudgetRegistry) -> None:
        self.registry = registry
        self.windows = WindowCache()
        self._version = registry.version
        self._plans: BoundedCache[tuple[object, ...], Plan] = BoundedCache(_MAX_PLANS)
        # One object per distinct tuple of checks or buckets, shared by every plan that has it
        # (a reservation's plan and its record's plan usually do): a ledger's memo keyed by
        # their value then finds the very key it stored, and compares no Bucket at all.
        self._shared: BoundedCache[HashedTuple[Any], HashedTuple[Any]] = BoundedCache(_MAX_PLANS)

    def plan(
        self,
        user: str | None,
        team: str | None,
        key: str | None,
        tags: Iterable[str],
        model: str | None,
        at: float,
        endpoint: str | None = None,
    ) -> Plan:
        """The plan for these scope arguments at ``at`` (``endpoint``: a record's, which
        counts as one more tag); bad arguments raise as ``scopes_for`` does."""
        if type(tags) is not tuple:
            with contextlib.suppress(TypeError):  # not iterable: scopes_for below says so
                tags = (tags,) if isinstance(tags, str) else tuple(tags)
        version = self.registry.version
        if version != self._version:
            # A new cache: a plan being built from the old budgets is dropped with the old one.
            self._plans = BoundedCache(_MAX_PLANS)
            self._version = version
        plans = self._plans
        args = (user, team, key, tags, model, endpoint)
        try:
            plan = plans.get(args)
        except TypeError:  # unhashable: _scopes below raises the typed error
            plan = None
        if plan is None:
            scopes, caps = self._scopes(args)
        elif plan.valid_from <= at < plan.valid_until:
            return plan
        else:
            scopes, caps = plan.scopes, plan.caps
        plan = self._build(scopes, caps, at)
        plans.put(args, plan)  # hashable: scopes_for hashed every argument
        return plan

    def for_record(self, record: UsageRecord | StoredRecord, at: float) -> Plan:
        """The plan of a record's attribution (its endpoint counts as a tag) at ``at``."""
        r = record
        return self.plan(r.user_id, r.team, r.key, r.tags, r.model, at, r.endpoint)

    def bucket(self, period: str, scope: Scope, at: float) -> Bucket:
        """The scope's ``period`` bucket at ``at``, in its budget's zone (else the global's)."""
        registry = self.registry
        zone = (registry.budget_for(scope) or registry.global_budget).timezone
        w = self.windows.window(period, zone, at)
        return Bucket(str(scope), period, w.start, w.end)

    def _scopes(
        self, args: tuple[Any, ...]
    ) -> tuple[tuple[Scope, ...], tuple[tuple[Scope, Nanos], ...]]:
        """The scopes of ``(user, team, key, tags, model, endpoint)`` and their budgets' caps."""
        user, team, key, tags, model, endpoint = args
        scopes = scopes_for(user=user, team=team, key=key, tags=tags, model=model)
        names = (user, team, key, model, endpoint, *tags)
        check_names(names, _NAME_FIELDS + ("tag",) * (len(names) - len(_NAME_FIELDS)))
        if endpoint and endpoint not in tags:
            scopes = (*scopes, Scope("tag", endpoint))
        caps = []
        for scope in scopes:
            budget = self.registry.budget_for(scope)
            if budget is not None and budget.per_request_nanos is not None:
                caps.append((scope, budget.per_request_nanos))
        return scopes, tuple(caps)

    def _build(
        self, scopes: tuple[Scope, ...], caps: tuple[tuple[Scope, Nanos], ...], at: float
    ) -> Plan:
        registry, windows = self.registry, self.windows
        checks: list[BudgetCheck] = []
        buckets: list[Bucket] = []
        rolling = False
        for scope in scopes:
            budget = registry.budget_for(scope)
            zone = (budget or registry.global_budget).timezone
            name = str(scope)
            for period in CALENDAR_PERIODS:
                w = windows.window(period, zone, at)
                buckets.append(Bucket(name, period, w.start, w.end))
            if budget is None:
                continue
            if budget.rolling_limits:
                rolling = True
                slot = int(at) // 60 * 60
                buckets.append(Bucket(name, MINUTE, slot, slot + 60))
            for period in budget.periods():
                limit = budget.limit_nanos(period)
                assert limit is not None
                w = windows.window(period, budget.timezone, at)
                checks.append(BudgetCheck(Bucket(name, period, w.start, w.end), limit, budget))
        calendar = [b for b in buckets if b.period != MINUTE]
        lo: float = max(b.start for b in calendar)
        hi: float = min(b.end for b in calendar)
        if rolling:  # rolling windows and minute slots move every minute
            slot = int(at) // 60 * 60
            lo, hi = max(lo, slot), min(hi, slot + 60)
        return Plan(
            scopes=scopes,
            caps=caps,
            min_cap=min((cap for _, cap in caps), default=None),
            checks=self._one_of(HashedTuple(checks)),
            watch=self._one_of(HashedTuple(c.bucket for c in checks)),
            buckets=self._one_of(HashedTuple(buckets)),
            valid_from=lo,
            valid_until=hi,
        )

    def _one_of(self, items: HashedTuple[_T]) -> HashedTuple[_T]:
        """The shared object equal to ``items`` (``items`` itself the first time)."""
        shared = self._shared.get(items)
        if shared is None:
            self._shared.put(items, items)
            return items
        return shared
