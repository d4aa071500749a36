"""BudgetManager: admission, reservations, status and alert triggering over a ledger.

Admission (DESIGN.md): a request with estimate ``e`` is admitted iff for every budget that
applies to it (global, user, team, key, tag, model) and every limited period,
``spent + reserved + e <= limit``, and ``e <= per_request_limit``. Exactly the limit is
allowed; a zero estimate is always admitted. ``reserve`` checks and holds in one atomic ledger
step, so concurrent callers cannot overshoot; ``commit`` replaces the hold with the actual
record; ``release`` drops it. Holds expire after a TTL so a crashed caller cannot pin a budget.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any

from costwarden import forksafe
from costwarden.bounds import check_name, check_names
from costwarden.budget import GLOBAL, Budget, Scope, Window, WindowCache, scopes_for
from costwarden.errors import (
    BudgetExceededError,
    ConfigurationError,
    HoldError,
    InvalidInputError,
    LedgerUnavailableError,
    NoTierPriceError,
    UnknownModelError,
)
from costwarden.ledger import Bucket, Ledger, LimitCheck, NewRecord, open_ledger
from costwarden.ledger.base import MINUTE, BucketUsage, Denial, HashedTuple, missing_members
from costwarden.money import Nanos, format_compared, format_usd, nanos_to_usd, usd_to_nanos
from costwarden.records import Alert, AlertLevel, StoredRecord, UsageRecord, check_timestamp

if TYPE_CHECKING:
    from costwarden.alerts import AlertChannel, AlertDispatcher
    from costwarden.forecast import Forecast
    from costwarden.pricing import PriceCatalog

log = logging.getLogger("costwarden")

AlertHandler = Callable[[AlertLevel, str], object]
_PERIOD_WORD = {"daily": "Daily", "weekly": "Weekly", "monthly": "Monthly"}
_PURGE_EVERY_S = 30.0
_STATUS_PERIODS = ("daily", "weekly", "monthly")
_NAME_FIELDS = ("user", "team", "key", "model", "endpoint")  # then tags: bounds.check_names


def _period_word(period: str) -> str:
    if period.startswith("rolling:"):
        return f"Rolling {int(period[8:-1]) // 60}-minute"
    return _PERIOD_WORD.get(period, period)


@dataclass(frozen=True, slots=True, eq=False)
class BudgetCheck(LimitCheck):
    """A limit check that remembers the budget it came from (for its alert thresholds)."""

    budget: Budget
    # Spend below the lowest alert threshold fires nothing (most commits): checked first.
    first_alert: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        thresholds = self.budget.thresholds()
        first = self.limit * thresholds[0] if thresholds else math.inf
        object.__setattr__(self, "first_alert", first)


class _Plan:
    """What the hot path needs for one set of scope arguments (user, team, key, tags, model
    and a record's endpoint), worked out once per budget change: the scopes, the smallest
    per-request cap among their budgets, and the limit checks and record buckets of the
    period windows last used, each with the time range ``[lo, hi)`` in which they hold.

    Budgets change only through ``set_budget``/``set_default_budget``, which drop every plan;
    windows change at period boundaries, where a timestamp outside ``[lo, hi)`` recomputes.
    Each cached entry is one tuple, replaced whole, so concurrent readers never see a range
    paired with another window's checks.

    The checks and buckets are handed to the ledger as :class:`HashedTuple`: immutable, and
    hashed once here, so a ledger that remembers work per value of them (as the Ledger
    Protocol allows) pays one dict hit per call.
    """

    __slots__ = ("buckets", "checks", "min_cap", "scopes")

    def __init__(self, scopes: tuple[Scope, ...], min_cap: Nanos | None) -> None:
        self.scopes = scopes
        self.min_cap = min_cap
        # (lo, hi, checks, their buckets) and (lo, hi, record buckets); empty ranges at first.
        self.checks: tuple[float, float, HashedTuple[BudgetCheck], HashedTuple[Bucket]] = (
            0.0,
            0.0,
            _NO_CHECKS,
            _NO_BUCKETS,
        )
        self.buckets: tuple[float, float, HashedTuple[Bucket]] = (0.0, 0.0, _NO_BUCKETS)


_NO_CHECKS: HashedTuple[BudgetCheck] = HashedTuple()
_NO_BUCKETS: HashedTuple[Bucket] = HashedTuple()


class Hold:
    """A reservation of budget for one call; settle it with ``commit`` or ``release``.

    Usable as a context manager: leaving the block without ``commit`` releases the hold.
    Once committed, ``record`` is the stored record, and committing the same usage record
    again returns it instead of storing the spend twice.
    """

    __slots__ = (
        "_committed",
        "_manager",
        "amount_nanos",
        "expires_at",
        "id",
        "record",
        "scopes",
        "settled",
        "unchecked",
    )

    def __init__(
        self,
        manager: BudgetManager,
        hold_id: str,
        amount_nanos: Nanos,
        expires_at: float,
        scopes: tuple[Scope, ...],
        *,
        unchecked: bool = False,
    ) -> None:
        self._manager = manager
        self.id = hold_id
        self.amount_nanos = amount_nanos
        self.expires_at = expires_at
        self.scopes = scopes
        self.settled = False
        self.unchecked = unchecked
        self.record: StoredRecord | None = None
        self._committed: UsageRecord | None = None

    @property
    def amount_usd(self) -> float:
        return nanos_to_usd(self.amount_nanos)

    def commit(self, record: UsageRecord) -> StoredRecord:
        return self._manager.commit(self, record)

    def release(self) -> None:
        self._manager.release(self)

    def __enter__(self) -> Hold:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self.settled:
            self._manager.release(self)

    def __repr__(self) -> str:
        state = "settled" if self.settled else "open"
        return f"<Hold {self.id} {format_usd(self.amount_nanos)} {state}>"


class BudgetManager:
    """Tracks spend against budgets and enforces them (the brief's API plus scopes and holds)."""

    def __init__(
        self,
        budget: Budget | None = None,
        alert_handler: AlertHandler | None = None,
        *,
        ledger: str | Ledger = "memory://",
        pricing: PriceCatalog | None = None,
        alert_channels: Sequence[AlertChannel] = (),
        alert_options: Mapping[str, Any] | None = None,
        hold_ttl: float = 600.0,
        fail_open: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if budget is not None and not isinstance(budget, Budget):
            raise InvalidInputError(f"budget must be a Budget, got {type(budget).__name__}")
        if alert_handler is not None and not callable(alert_handler):
            raise InvalidInputError("alert_handler must be callable as handler(level, message)")
        if not (isinstance(hold_ttl, (int, float)) and math.isfinite(hold_ttl) and hold_ttl > 0):
            raise InvalidInputError(
                f"hold_ttl must be a positive number of seconds, got {hold_ttl!r}"
            )
        if not isinstance(ledger, str) and (missing := missing_members(ledger)):
            raise ConfigurationError(
                "ledger must be a ledger URL or a costwarden.ledger.Ledger; "
                f"{type(ledger).__name__} lacks {', '.join(missing)}"
            )
        alerts = _alert_settings(alert_handler, alert_channels, alert_options)  # before opening
        self.budget = budget if budget is not None else Budget()
        self.ledger: Ledger = open_ledger(ledger) if isinstance(ledger, str) else ledger
        if isinstance(ledger, str) and ledger.startswith("memory://"):
            log.info(
                "costwarden: using an in-memory ledger; spend is not kept after this process "
                "ends (pass ledger='sqlite:///spend.db' to persist)"
            )
        self._pricing = pricing
        self.hold_ttl = float(hold_ttl)
        self.fail_open = fail_open
        self._clock = clock
        self._budgets: dict[Scope, Budget] = {GLOBAL: self.budget}
        self._defaults: dict[str, Budget] = {}
        self._windows = WindowCache()
        self._plans: dict[tuple[object, ...], _Plan] = {}
        self._claimed: set[str] = set()
        self._last_purge = 0.0
        self._lock = forksafe.fresh_after_fork(threading.Lock())
        self._dispatcher = _alert_dispatcher(self.ledger, alerts)

    # -- configuration --------------------------------------------------------------------------
    @property
    def pricing(self) -> PriceCatalog:
        if self._pricing is None:
            from costwarden.pricing import default_catalog

            self._pricing = default_catalog()
        return self._pricing

    def set_budget(
        self,
        budget: Budget,
        *,
        user: str | None = None,
        team: str | None = None,
        key: str | None = None,
        tag: str | None = None,
        model: str | None = None,
    ) -> None:
        """Give one scope its own budget (none named: replace the global budget)."""
        if not isinstance(budget, Budget):
            raise InvalidInputError(f"budget must be a Budget, got {type(budget).__name__}")
        scope = _one_scope(user=user, team=team, key=key, tag=tag, model=model)
        with self._lock:
            self._budgets[scope] = budget
            if scope == GLOBAL:
                self.budget = budget
            self._plans = {}  # a new dict: a plan being built from the old budgets is dropped

    def set_default_budget(self, kind: str, budget: Budget) -> None:
        """The budget for every ``user`` (or team, key, ...) that has none of its own."""
        if kind not in ("user", "team", "key", "tag", "model"):
            raise InvalidInputError(
                f"default budgets are per user/team/key/tag/model, not {kind!r}"
            )
        if not isinstance(budget, Budget):
            raise InvalidInputError(f"budget must be a Budget, got {type(budget).__name__}")
        with self._lock:
            self._defaults[kind] = budget
            self._plans = {}

    def budget_for(self, scope: Scope) -> Budget | None:
        return self._budgets.get(scope) or self._defaults.get(scope.kind)

    # -- windows and checks ---------------------------------------------------------------------
    def _plan(
        self,
        user: str | None,
        team: str | None,
        key: str | None,
        tags: Iterable[str],
        model: str | None,
        endpoint: str | None = None,
    ) -> _Plan:
        """The cached plan for these scope arguments (``endpoint``: a record's, which counts
        as one more tag); bad arguments raise as ``scopes_for`` does."""
        if type(tags) is not tuple:
            with contextlib.suppress(TypeError):  # not iterable: scopes_for below says so
                tags = (tags,) if isinstance(tags, str) else tuple(tags)
        plans = self._plans
        args = (user, team, key, tags, model, endpoint)
        try:
            return plans[args]
        except (KeyError, TypeError):  # new, or unhashable (scopes_for below raises)
            pass
        scopes = scopes_for(user=user, team=team, key=key, tags=tags, model=model)
        names = (user, team, key, model, endpoint, *tags)
        check_names(names, _NAME_FIELDS + ("tag",) * (len(names) - len(_NAME_FIELDS)))
        if endpoint and endpoint not in tags:
            scopes = (*scopes, Scope("tag", endpoint))
        caps = [
            b.per_request_nanos
            for b in map(self.budget_for, scopes)
            if b is not None and b.per_request_nanos is not None
        ]
        plan = _Plan(scopes, min(caps, default=None))
        if len(plans) > 10_000:
            plans.clear()
        plans[args] = plan  # hashable: scopes_for hashed every argument
        return plan

    def _limit_checks(
        self, plan: _Plan, at: float
    ) -> tuple[HashedTuple[BudgetCheck], HashedTuple[Bucket]]:
        """The limits that apply to the plan's scopes at ``at``, and their buckets."""
        lo, hi, checks, watch = plan.checks
        if lo <= at < hi:
            return checks, watch
        checks = HashedTuple(self._compute_limit_checks(plan.scopes, at))
        lo = max((c.bucket.start for c in checks if not c.bucket.is_rolling), default=-math.inf)
        hi = min((c.bucket.end for c in checks if not c.bucket.is_rolling), default=math.inf)
        if any(c.bucket.is_rolling for c in checks):
            lo, hi = max(lo, int(at) // 60 * 60), min(hi, int(at) // 60 * 60 + 60)
        watch = HashedTuple(c.bucket for c in checks)
        plan.checks = (lo, hi, checks, watch)
        return checks, watch

    def _compute_limit_checks(self, scopes: Iterable[Scope], at: float) -> list[BudgetCheck]:
        checks: list[BudgetCheck] = []
        for scope in scopes:
            budget = self.budget_for(scope)
            if budget is None:
                continue
            for period in budget.periods():
                limit = budget.limit_nanos(period)
                assert limit is not None
                w = self._windows.window(period, budget.timezone, at)
                bucket = Bucket(str(scope), period, w.start, w.end)
                checks.append(BudgetCheck(bucket, limit, budget))
        return checks

    def _record_buckets(self, plan: _Plan, at: float) -> HashedTuple[Bucket]:
        """Every bucket a record at ``at`` adds to: each scope's day, week and month (in its
        budget's time zone, else the global one's) and minute slots for rolling budgets."""
        lo, hi, out = plan.buckets
        if lo <= at < hi:
            return out
        out = HashedTuple(self._compute_record_buckets(plan.scopes, at))
        plan.buckets = (max(b.start for b in out), min(b.end for b in out), out)
        return out

    def _compute_record_buckets(self, scopes: Iterable[Scope], at: float) -> list[Bucket]:
        out = []
        for scope in scopes:
            budget = self.budget_for(scope)
            zone = (budget or self.budget).timezone
            name = str(scope)
            for period in _STATUS_PERIODS:
                w = self._windows.window(period, zone, at)
                out.append(Bucket(name, period, w.start, w.end))
            if budget is not None and budget.rolling_limits:
                slot = int(at) // 60 * 60
                out.append(Bucket(name, MINUTE, slot, slot + 60))
        return out

    def _over_cap(self, plan: _Plan, amount: Nanos) -> BudgetExceededError | None:
        """The per-request denial, if ``amount`` is above the smallest cap of the plan."""
        if plan.min_cap is None or amount <= plan.min_cap:
            return None
        return self._per_request_denial(plan.scopes, amount)

    def _per_request_denial(
        self, scopes: Iterable[Scope], amount: Nanos
    ) -> BudgetExceededError | None:
        for scope in scopes:
            budget = self.budget_for(scope)
            if budget is None:
                continue
            cap = budget.per_request_nanos
            if cap is not None and amount > cap:
                asked, most = format_compared(amount, cap)
                return BudgetExceededError(
                    f"Request estimated at {asked} exceeds the per-request limit of "
                    f"{most} ({scope}). Lower max_tokens, pick a cheaper model, "
                    "or raise per_request_limit.",
                    scope=str(scope),
                    period="per_request",
                    limit=nanos_to_usd(cap),
                    spent=0.0,
                    attempted=nanos_to_usd(amount),
                )
        return None

    def _denied(self, denial: Denial, now: float) -> BudgetExceededError:
        b = denial.check.bucket
        word = _period_word(b.period)
        left = max(0, denial.check.limit - denial.spent - denial.reserved)
        spent, reserved, asked, limit, rest = format_compared(
            denial.spent,
            denial.reserved,
            denial.attempted,
            denial.check.limit,
            left,
            holds=lambda s, r, a, lim, rest: s + r + a > lim and rest == max(0, lim - s - r),
        )
        err = BudgetExceededError(
            f"{word} budget for {b.scope} would be exceeded: {spent} spent "
            f"+ {reserved} reserved + {asked} requested "
            f"> {limit} limit ({rest} left). "
            f"It resets {_fmt_epoch(b.end) if not b.is_rolling else 'as the window rolls on'}.",
            scope=b.scope,
            period=b.period,
            limit=nanos_to_usd(denial.check.limit),
            spent=nanos_to_usd(denial.spent),
            attempted=nanos_to_usd(denial.attempted),
            reserved=nanos_to_usd(denial.reserved),
        )
        self._emit(
            Alert(
                level=AlertLevel.CRITICAL,
                message=f"Request denied: {err}",
                scope=b.scope,
                period=b.period,
                kind="denied",
                spent_nanos=denial.spent,
                limit_nanos=denial.check.limit,
                period_start=datetime.fromtimestamp(b.start, UTC),
                dedup_key=f"denied|{b.scope}|{b.period}|{b.start}",
            )
        )
        return err

    # -- the brief's API ------------------------------------------------------------------------
    def can_spend(
        self,
        amount: float,
        *,
        user: str | None = None,
        team: str | None = None,
        key: str | None = None,
        tags: Iterable[str] = (),
        model: str | None = None,
    ) -> bool:
        """Would a request costing ``amount`` USD be admitted now? Reserves nothing.

        Advisory only: between this answer and the ``record_spend`` that follows, other threads,
        processes or hosts can spend the same headroom, so ``can_spend`` + ``record_spend``
        under concurrency overshoots the limit (measured: 3.6x). For a limit that holds, use
        :meth:`reserve`, which checks and holds the estimate in one atomic ledger step.
        """
        nanos = usd_to_nanos(amount, field="amount")
        if nanos == 0:
            return True
        plan = self._plan(user, team, key, tags, model)
        if self._over_cap(plan, nanos) is not None:
            return False
        now = self._clock()
        try:
            return self.ledger.check(nanos, self._limit_checks(plan, now)[0], now) is None
        except LedgerUnavailableError:
            if self.fail_open:
                log.warning("costwarden: ledger unavailable, admitting (fail_open=True)")
                return True
            raise

    def record_spend(self, record: UsageRecord) -> StoredRecord:
        """Record a call's actual usage (priced from its tokens when ``cost_usd`` is None).

        The record is never refused, even over a limit: it is what was spent. Checking first
        with :meth:`can_spend` is advisory (concurrent callers can pass the same check); to
        enforce a limit, ``reserve()`` before the call and ``hold.commit(record)`` after it.
        """
        return self._append(record, hold=None)

    def get_status(
        self,
        *,
        user: str | None = None,
        team: str | None = None,
        key: str | None = None,
        tag: str | None = None,
        model: str | None = None,
    ) -> dict[str, Any]:
        """Spend, limits and what is left for one scope (default: global), in float USD.

        Keys: the brief's ``daily_spent``, ``daily_remaining``, ``monthly_spent``,
        ``monthly_remaining``, ``percent_used`` (percent of the most-used limit), plus
        ``weekly_*``, ``*_limit``, ``*_reserved``, ``*_resets_at``, ``scope``, ``rolling``.
        Remaining is ``limit - spent`` floored at 0 (``None`` without a limit).
        """
        scope = _one_scope(user=user, team=team, key=key, tag=tag, model=model)
        budget = self.budget_for(scope)
        zone = (budget or self.budget).timezone
        now = self._clock()
        buckets = []
        for period in _STATUS_PERIODS:
            w = self._windows.window(period, zone, now)
            buckets.append(Bucket(str(scope), period, w.start, w.end))
        rolling = [
            Bucket(str(scope), p, w.start, w.end)
            for p in (budget.periods() if budget else ())
            if p.startswith("rolling:")
            for w in [self._windows.window(p, zone, now)]
        ]
        usages = self.ledger.usage(buckets + rolling, now)
        status: dict[str, Any] = {"scope": str(scope), "has_budget": budget is not None}
        percent = 0.0
        for b, u in zip(buckets + rolling, usages, strict=True):
            name = b.period if not b.is_rolling else b.period.replace(":", "_")
            limit = budget.limit_nanos(b.period) if budget else None
            status[f"{name}_spent"] = nanos_to_usd(u.spent)
            status[f"{name}_reserved"] = nanos_to_usd(u.reserved)
            status[f"{name}_limit"] = None if limit is None else nanos_to_usd(limit)
            status[f"{name}_remaining"] = (
                None if limit is None else nanos_to_usd(max(0, limit - u.spent))
            )
            if not b.is_rolling:
                status[f"{name}_requests"] = u.count
                status[f"{name}_resets_at"] = datetime.fromtimestamp(b.end, UTC).isoformat()
            if limit is not None:
                pct = (
                    100.0
                    if limit == 0 and u.spent > 0
                    else (0.0 if limit == 0 else u.spent * 100 / limit)
                )
                percent = max(percent, pct)
        status["percent_used"] = percent
        status["per_request_limit"] = budget.per_request_limit if budget else None
        status["timezone"] = zone
        return status

    def reset_daily(self, scope: str | None = None, **named: str) -> float:
        """Start the day's count afresh; USD moved (see :meth:`reset` for which scopes)."""
        return nanos_to_usd(sum(self._reset("daily", scope, named).values()))

    def reset_monthly(self, scope: str | None = None, **named: str) -> float:
        """Start the month's count afresh; USD moved (see :meth:`reset` for which scopes)."""
        return nanos_to_usd(sum(self._reset("monthly", scope, named).values()))

    def reset_weekly(self, scope: str | None = None, **named: str) -> float:
        """Start the week's count afresh; USD moved (see :meth:`reset` for which scopes)."""
        return nanos_to_usd(sum(self._reset("weekly", scope, named).values()))

    def reset(self, period: str, scope: str | None = None, **named: str) -> dict[str, float]:
        """Start ``period``'s count afresh; ``{scope: USD moved}`` for each scope reset.

        One scope: ``user="alice"`` or ``scope="user:alice"`` (``"global"`` too). ``"all"``:
        every scope with spend in its current period, budgeted or not. Default: every scope a
        budget covers, which is each scope with a budget of its own and each scope of a kind
        with a default budget (``set_default_budget("user", ...)``) that has spend in the
        period, so a user denied by the default budget is admitted again.
        """
        return {k: nanos_to_usd(v) for k, v in self._reset(period, scope, named).items()}

    def _reset(self, period: str, scope: str | None, named: dict[str, str]) -> dict[str, Nanos]:
        """Move the period's baseline forward (recorded as an event; history stays)."""
        if period not in _STATUS_PERIODS:
            raise InvalidInputError(
                f"period must be one of {', '.join(_STATUS_PERIODS)}, got {period!r}"
            )
        if scope is not None and named:
            raise InvalidInputError(f"name one scope at a time, got {scope!r} and {named}")
        now = self._clock()
        if named:
            scopes = [_one_scope(**named)]
        elif scope is None or scope == "all":
            scopes = self._scopes_to_reset(period, now, every=scope == "all")
        elif isinstance(scope, str):
            parsed = Scope.parse(scope)
            scopes = [_one_scope(**{parsed.kind: parsed.name}) if parsed.name else parsed]
        else:
            raise InvalidInputError(f"scope must be a string such as 'user:alice', got {scope!r}")
        moved: dict[str, Nanos] = {}
        for one in scopes:
            w = self._window(period, one, now)
            moved[str(one)] = self.ledger.reset(
                Bucket(str(one), period, w.start, w.end), now, detail=f"reset_{period}()"
            )
        return moved

    def _window(self, period: str, scope: Scope, now: float) -> Window:
        """The scope's current ``period`` window, in its budget's zone (else the global's)."""
        return self._windows.window(period, (self.budget_for(scope) or self.budget).timezone, now)

    def _scopes_to_reset(self, period: str, now: float, *, every: bool) -> list[Scope]:
        """The scopes with a budget of their own, then those with spend in their current
        ``period`` that a default budget covers (``every``: any with spend).

        Scopes with spend are found from the records since the earliest window start (which
        scopes a record counted in follows from its attribution, as when it was written),
        then kept only if the ledger's total for their window is above zero.
        """
        scopes = list(self._budgets)
        if not every and not self._defaults:
            return scopes
        zones = {
            b.timezone for b in (self.budget, *self._budgets.values(), *self._defaults.values())
        }
        since = min(self._windows.window(period, zone, now).start for zone in zones)
        seen = set(scopes)
        found: list[Scope] = []
        for r in self.ledger.records(since * 1_000_000):
            plan = self._plan(r.user_id, r.team, r.key, r.tags, r.model, r.endpoint)
            for one in plan.scopes:
                if one not in seen and (every or one.kind in self._defaults):
                    seen.add(one)
                    found.append(one)
        found.sort()
        buckets = []
        for one in found:
            w = self._window(period, one, now)
            buckets.append(Bucket(str(one), period, w.start, w.end))
        usages = self.ledger.usage(buckets, now)
        return scopes + [one for one, u in zip(found, usages, strict=True) if u.spent > 0]

    # -- reservations ---------------------------------------------------------------------------
    def reserve(
        self,
        estimate: float,
        *,
        user: str | None = None,
        team: str | None = None,
        key: str | None = None,
        tags: Iterable[str] = (),
        model: str | None = None,
        ttl: float | None = None,
    ) -> Hold:
        """Check and hold ``estimate`` USD against every applicable budget, atomically.

        Raises BudgetExceededError when it does not fit (nothing is held then), or
        LedgerUnavailableError when the ledger cannot be reached and ``fail_open`` is off.
        """
        nanos = usd_to_nanos(estimate, field="estimate")
        return self.reserve_nanos(
            nanos, user=user, team=team, key=key, tags=tags, model=model, ttl=ttl
        )

    def reserve_nanos(
        self,
        nanos: Nanos,
        *,
        user: str | None = None,
        team: str | None = None,
        key: str | None = None,
        tags: Iterable[str] = (),
        model: str | None = None,
        ttl: float | None = None,
    ) -> Hold:
        """:meth:`reserve` for an estimate in nano-USD: the library's own callers (the tracked
        clients) hold exact integer estimates, which must not pass through a float."""
        if isinstance(nanos, bool) or not isinstance(nanos, int) or nanos < 0:
            raise InvalidInputError(
                f"estimate must be a non-negative int of nano-USD, got {nanos!r}"
            )
        ttl = self.hold_ttl if ttl is None else ttl
        if not (isinstance(ttl, (int, float)) and math.isfinite(ttl) and ttl > 0):
            raise InvalidInputError(f"ttl must be a positive number of seconds, got {ttl!r}")
        plan = self._plan(user, team, key, tags, model)
        scopes = plan.scopes
        now = self._clock()
        hold_id = os.urandom(16).hex()
        expires_at = now + ttl
        if nanos == 0:
            return Hold(self, hold_id, 0, expires_at, scopes)
        per_request = self._over_cap(plan, nanos)
        if per_request is not None:
            raise per_request
        if now - self._last_purge >= _PURGE_EVERY_S:
            self._purge(now)
        try:
            denial = self.ledger.reserve(
                hold_id, nanos, self._limit_checks(plan, now)[0], expires_at, now
            )
        except LedgerUnavailableError:
            if self.fail_open:
                log.warning("costwarden: ledger unavailable, admitting unchecked (fail_open=True)")
                return Hold(self, hold_id, nanos, expires_at, scopes, unchecked=True)
            raise
        if denial is not None:
            raise self._denied(denial, now)
        return Hold(self, hold_id, nanos, expires_at, scopes)

    def commit(self, hold: Hold, record: UsageRecord) -> StoredRecord:
        """Replace a hold by the call's actual record (the truth, even above the hold).

        Idempotent: committing a committed hold again with the same record returns the stored
        record and stores nothing; a *different* record, or a released hold, is a HoldError.
        Once the record is stored the hold is settled, whatever an alert does afterwards."""
        if not isinstance(hold, Hold) or hold._manager is not self:
            raise HoldError("commit() needs a Hold made by this BudgetManager's reserve()")
        if hold.settled:
            if hold.record is None:
                raise HoldError(
                    f"hold {hold.id} was released; reserve() again to record another call"
                )
            if record is hold._committed or record == hold._committed:
                return hold.record
            raise HoldError(
                f"hold {hold.id} was already committed (record #{hold.record.id}); a hold is "
                "committed once, and this different record was not stored"
            )
        stored = self._append(record, hold=hold)
        if stored.cost_nanos > hold.amount_nanos and hold.amount_nanos > 0:
            cost, held = format_compared(stored.cost_nanos, hold.amount_nanos)
            self._emit(
                Alert(
                    level=AlertLevel.WARNING,
                    message=(
                        f"A call cost {cost}, more than the "
                        f"{held} reserved for it (model {stored.model}); "
                        "estimates are low: raise max_tokens bounds or check the price table."
                    ),
                    scope=str(hold.scopes[-1] if len(hold.scopes) > 1 else GLOBAL),
                    period="per_request",
                    kind="hold_exceeded",
                    spent_nanos=stored.cost_nanos,
                    limit_nanos=hold.amount_nanos,
                    dedup_key=f"hold_exceeded|{hold.id}",
                )
            )
        if self._clock() > hold.expires_at:
            log.warning("costwarden: hold %s was committed after its TTL expired", hold.id)
        return stored

    def release(self, hold: Hold) -> None:
        """Drop a hold (the call failed and nothing was billed). Idempotent."""
        if not isinstance(hold, Hold) or hold._manager is not self:
            raise HoldError("release() needs a Hold made by this BudgetManager's reserve()")
        if hold.settled:
            return
        hold.settled = True
        if hold.amount_nanos and not hold.unchecked:
            self.ledger.release(hold.id)

    def _purge(self, now: float) -> None:
        """Drop expired holds (reserve calls it every _PURGE_EVERY_S seconds)."""
        self._last_purge = now
        with contextlib.suppress(LedgerUnavailableError):
            self.ledger.purge_expired_holds(now)

    # -- recording ------------------------------------------------------------------------------
    def price(self, record: UsageRecord) -> tuple[Nanos, str]:
        """The record's cost in nano-USD and where it came from."""
        cost = record.cost_nanos
        if cost is not None:
            return cost, "caller"
        try:
            return (
                self.pricing.cost_nanos(
                    record.model,
                    record.usage,
                    provider=record.provider,
                    when=record.timestamp,
                    service_tier=record.service_tier,
                ),
                "catalogue",
            )
        except NoTierPriceError as exc:
            # The call happened and must be recorded: at the standard rates, said loudly.
            log.warning("costwarden: %s; recorded at the standard rates", exc)
            nanos = self.pricing.cost_nanos(
                record.model, record.usage, provider=record.provider, when=record.timestamp
            )
            return nanos, f"catalogue:standard rates, no {exc.what} price"
        except UnknownModelError as exc:
            nanos, desc = self.pricing.fallback_cost_nanos(record.usage)
            log.warning(
                "costwarden: no price for model %r; recorded at the fallback price (%s): %s. %s",
                record.model,
                desc,
                format_usd(nanos),
                exc,
            )
            self._emit(
                Alert(
                    level=AlertLevel.WARNING,
                    message=(
                        f"Model {record.model!r} has no known price; its usage was recorded at the "
                        f"fallback price ({desc}). Add a price for it."
                    ),
                    scope="model:" + record.model,
                    period="daily",
                    kind="unknown_price",
                    spent_nanos=nanos,
                    dedup_key=f"unknown_price|{record.model}",
                )
            )
            return nanos, f"fallback:{desc}"

    def _append(self, record: UsageRecord, hold: Hold | None) -> StoredRecord:
        if not isinstance(record, UsageRecord):
            raise InvalidInputError(f"expected a UsageRecord, got {type(record).__name__}")
        cost, source = self.price(record)
        ts = check_timestamp(record.timestamp)
        ts_epoch = ts.timestamp()
        new = NewRecord.from_usage(
            record, ts_us=round(ts_epoch * 1_000_000), cost_nanos=cost, price_source=source
        )
        plan = self._plan(
            record.user_id, record.team, record.key, record.tags, record.model, record.endpoint
        )
        checks, watch = self._limit_checks(plan, ts_epoch) if cost else (_NO_CHECKS, _NO_BUCKETS)
        settle = hold is not None and hold.amount_nanos > 0 and not hold.unchecked
        stored, usages = self.ledger.append(
            new,
            self._record_buckets(plan, ts_epoch),
            hold_id=hold.id if settle and hold is not None else None,
            watch=watch,
        )
        if hold is not None:  # stored: the hold is settled before any alert can run
            hold.settled, hold.record, hold._committed = True, stored, record
        if checks:
            try:
                self._check_thresholds(checks, usages)
            except Exception:  # the record is stored: an alert bug must not look like a failure
                log.exception("costwarden: could not check alert thresholds")
        return stored

    # -- alerts ---------------------------------------------------------------------------------
    def _check_thresholds(self, checks: Sequence[BudgetCheck], usages: list[BucketUsage]) -> None:
        """Fire each threshold a bucket has reached, once per scope, window and baseline."""
        for chk, u in zip(checks, usages, strict=True):
            if u.spent < chk.first_alert and not (chk.limit == 0 and u.spent > 0):
                continue  # below the lowest threshold (the loop below would stop at once)
            b = chk.bucket
            budget = chk.budget
            for t in budget.thresholds():
                if u.spent < chk.limit * t and not (chk.limit == 0 and u.spent > 0):
                    break
                key = f"threshold|{b.scope}|{b.period}|{b.start}|{t:g}|{u.baseline}"
                if key in self._claimed:
                    continue
                self._claimed.add(key)
                if len(self._claimed) > 100_000:
                    self._claimed.clear()
                level = (
                    AlertLevel.CRITICAL
                    if t >= 1.0
                    else AlertLevel.WARNING
                    if t >= budget.alert_threshold
                    else AlertLevel.INFO
                )
                pct = u.spent * 100 / chk.limit if chk.limit else 100.0
                when = "as the window rolls on" if b.is_rolling else _fmt_epoch(b.end)
                spent, limit = format_compared(
                    u.spent, chk.limit, holds=lambda s, lim, t=t: s >= t * lim
                )
                self._emit(
                    Alert(
                        level=level,
                        message=(
                            f"{_period_word(b.period)} budget {t * 100:g}% used: "
                            f"{spent} of {limit} ({b.scope}, "
                            f"{pct:.0f}% now); it resets {when}."
                        ),
                        scope=b.scope,
                        period=b.period,
                        kind="threshold",
                        threshold=t,
                        spent_nanos=u.spent,
                        limit_nanos=chk.limit,
                        period_start=datetime.fromtimestamp(b.start, UTC),
                        dedup_key=key,
                    )
                )

    @property
    def alerts(self) -> AlertDispatcher | None:
        """The alert dispatcher (None when no handler or channel is configured)."""
        return self._dispatcher

    def _emit(self, alert: Alert) -> None:
        """Hand ``alert`` to the dispatcher (the alert_handler runs now, in this thread);
        without one, log it. Never raises: callers have stored their record already."""
        try:
            dispatcher = self._dispatcher
            if dispatcher is not None:
                dispatcher.emit(alert)
                return
            if alert.dedup_key:
                if alert.dedup_key in self._claimed:
                    return
                self._claimed.add(alert.dedup_key)
            log.log(
                logging.WARNING if alert.level.rank >= 1 else logging.INFO,
                "costwarden alert (%s): %s",
                alert.level.value,
                alert.message,
            )
        except Exception:
            log.exception("costwarden: could not emit an alert")

    def flush_alerts(self, timeout: float = 5.0) -> bool:
        """Wait until queued alerts have been delivered (or tried); True if all were."""
        dispatcher = self._dispatcher
        return True if dispatcher is None else dispatcher.flush(timeout)

    # -- history and forecasts ------------------------------------------------------------------
    def records(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> list[StoredRecord]:
        since_us = (
            None if since is None else round(check_timestamp(since, "since").timestamp() * 1e6)
        )
        until_us = (
            None if until is None else round(check_timestamp(until, "until").timestamp() * 1e6)
        )
        return self.ledger.records(since_us, until_us)

    def forecast(self, scope: str = "global", *, now: datetime | None = None) -> Forecast:
        """Projected spend to the end of the week and month, and when each limit runs out.

        A scope with no budget of its own (nor a default one for its kind) is forecast
        without limits, and raises no forecast alert: the global limit is not its own."""
        from costwarden.forecast import forecast_alerts, forecast_scope

        parsed = Scope.parse(scope)
        budget = self.budget_for(parsed)
        at = datetime.fromtimestamp(self._clock(), UTC) if now is None else check_timestamp(now)
        result = forecast_scope(self.ledger, str(parsed), budget, at, timezone=self.budget.timezone)
        for alert in forecast_alerts(result, budget, str(parsed)):
            self._emit(alert)
        return result

    def close(self) -> None:
        """Deliver pending alerts and close the ledger."""
        if self._dispatcher is not None:
            self._dispatcher.close()
        self.ledger.close()

    def __enter__(self) -> BudgetManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _one_scope(
    *,
    user: str | None = None,
    team: str | None = None,
    key: str | None = None,
    tag: str | None = None,
    model: str | None = None,
) -> Scope:
    named = [
        (k, v)
        for k, v in (("user", user), ("team", team), ("key", key), ("tag", tag), ("model", model))
        if v is not None
    ]
    if len(named) > 1:
        raise InvalidInputError(f"name one scope at a time, got {dict(named)}")
    if not named:
        return GLOBAL
    kind, name = named[0]
    if not isinstance(name, str) or not name:
        raise InvalidInputError(f"{kind} must be a non-empty string, got {name!r}")
    return Scope(kind, check_name(name, kind))


def _alert_settings(
    handler: AlertHandler | None,
    channels: Sequence[AlertChannel],
    options: Mapping[str, Any] | None,
) -> tuple[list[AlertChannel], dict[str, Any]] | None:
    """A manager's alert channels (the handler first) and dispatcher options, validated when
    the manager is built: a bad option or channel is a ConfigurationError now, not at the
    first alert inside a commit. None without a handler or channel (alerts are then logged)."""
    from costwarden.alerts.dispatcher import check_channels, check_options
    from costwarden.errors import ConfigurationError

    if isinstance(channels, (str, bytes)) or not isinstance(channels, Iterable):
        raise ConfigurationError(
            f"alert_channels must be a list of alert channels, got {type(channels).__name__}"
        )
    if options is not None and not isinstance(options, Mapping):
        raise ConfigurationError(
            f"alert_options must be a mapping of dispatcher settings, got {type(options).__name__}"
        )
    listed = check_channels(list(channels))
    opts = check_options(options or {})
    if handler is None and not listed:
        return None
    if handler is not None:
        from costwarden.alerts import CallableChannel

        listed = check_channels([CallableChannel(handler), *listed])
    return listed, opts


def _alert_dispatcher(
    ledger: Ledger, settings: tuple[list[AlertChannel], dict[str, Any]] | None
) -> AlertDispatcher | None:
    if settings is None:
        return None
    from costwarden.alerts import AlertDispatcher

    channels, options = settings
    return AlertDispatcher(ledger, channels, **options)


def _fmt_epoch(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC")
