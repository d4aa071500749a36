"""BudgetManager: admission, reservations, recording and status over a ledger.

Admission (DESIGN.md): a request with estimate ``e`` is admitted iff for every budget that
applies to it (global, user, team, key, tag, model) and every limited period,
``spent + reserved + e <= limit``, and ``e <= per_request_limit``. Exactly the limit is
allowed; a zero estimate is always admitted. ``reserve`` checks and holds in one atomic ledger
step, so concurrent callers cannot overshoot; ``commit`` replaces the hold with the actual
record; ``release`` drops it. Holds expire after a TTL so a crashed caller cannot pin a budget.

Which budgets are in force, and the methods that set, remove and reset them, are the
manager's base class's (:mod:`costwarden.budget_book`); which budgets and windows apply is the
plan's (:mod:`costwarden.plans`), what a status says is :mod:`costwarden.status`'s, and the
words of alerts and denials are :mod:`costwarden.alerts.triggers`'; this module asks them and
the ledger, in order.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Unpack

from costwarden.budget import Budget, Scope
from costwarden.budget_book import BudgetBook, own_budgets
from costwarden.errors import (
    BudgetExceededError,
    HoldError,
    InvalidInputError,
    LedgerUnavailableError,
)
from costwarden.hold import Hold
from costwarden.ledger import Ledger, NewRecord, open_ledger
from costwarden.ledger.base import Denial
from costwarden.manager_args import check_manager_args, check_ttl, epoch_us
from costwarden.money import Nanos, usd_to_nanos
from costwarden.plans import ScopeKeywords, one_scope
from costwarden.records import AlertLevel, StoredRecord, UsageRecord, check_timestamp
from costwarden.status import BudgetStatus, build_status

if TYPE_CHECKING:
    from costwarden.alerts import AlertChannel, AlertDispatcher
    from costwarden.forecast import Forecast
    from costwarden.pricing import PriceCatalog

log = logging.getLogger("costwarden")


__all__ = ["AlertHandler", "BudgetManager", "Hold"]

AlertHandler = Callable[[AlertLevel, str], object]
_PURGE_EVERY_S = 30.0
_price_record: Callable[[PriceCatalog, UsageRecord], tuple[Nanos, str, str | None]] | None = None


def _load_price_record() -> Callable[[PriceCatalog, UsageRecord], tuple[Nanos, str, str | None]]:
    """``costwarden.pricing.recording.price_record``, imported on the first record to price
    (importing the pricing package takes ~80 ms, which a manager that never prices does not
    pay) and then kept: an import statement on every record cost more than the pricing's own
    dict lookups (issue 12)."""
    global _price_record
    from costwarden.pricing.recording import price_record

    _price_record = price_record
    return price_record


class BudgetManager(BudgetBook):
    """Tracks spend against budgets and enforces them (the brief's API plus scopes and holds).

    The budget methods (``set_budget``, ``budgets``...) are :class:`BudgetBook`'s."""

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
        local_budgets: Mapping[str, Budget] | None = None,
        budget_source: str = "code",
    ) -> None:
        """``budget`` is the global budget, ``local_budgets`` more by scope string
        (``user:alice``, ``default:user``: a config file's); both are local to this manager and
        apply where the ledger has no budget of the same scope (docs/budgets.md). Without
        either, the global budget is ``Budget()``, the brief's defaults."""
        from costwarden.alerts.emitter import AlertEmitter, alert_settings

        check_manager_args(budget, alert_handler, hold_ttl, fail_open, ledger)
        alerts = alert_settings(alert_handler, alert_channels, alert_options)  # before opening
        local = own_budgets(budget, local_budgets)
        opened = open_ledger(ledger) if isinstance(ledger, str) else ledger
        super().__init__(opened, local, budget_source, clock)  # the budgets in force
        if isinstance(ledger, str) and ledger.startswith("memory://"):
            log.info(
                "costwarden: using an in-memory ledger; spend is not kept after this process "
                "ends (pass ledger='sqlite:///spend.db' to persist)"
            )
        self._pricing = pricing
        self.hold_ttl = float(hold_ttl)
        self.fail_open = fail_open
        self._last_purge = 0.0
        self._alerts = AlertEmitter(self.ledger, alerts)

    # -- configuration --------------------------------------------------------------------------
    @property
    def pricing(self) -> PriceCatalog:
        """The price catalogue used to cost records without a cost; the default one is loaded on
        first use.
        """
        if self._pricing is None:
            from costwarden.pricing import default_catalog

            self._pricing = default_catalog()
        return self._pricing

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
        now = self._clock()
        self._sync_budgets()  # the ledger's budgets, from the next admission on
        plan = self._planner.plan(user, team, key, tags, model, now)
        if plan.over_cap(nanos) is not None:
            return False
        try:
            return self.ledger.check(nanos, plan.checks, now) is None
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

    def status(self, **names: Unpack[ScopeKeywords]) -> BudgetStatus:
        """Spend, limits and what is left for one scope (``user="alice"``, or ``team``, ``key``,
        ``tag``, ``model``; default: global), as typed fields."""
        scope = one_scope(**names)
        budget = self.budget_for(scope)
        zone = (budget or self.budget).timezone
        now = self._clock()
        buckets = self._status_buckets.buckets(str(scope), budget, zone, self._planner.windows, now)
        return build_status(str(scope), budget, zone, buckets, self.ledger.usage(buckets, now))

    def get_status(self, **names: Unpack[ScopeKeywords]) -> dict[str, Any]:
        """Spend, limits and what is left for one scope (named as for :meth:`status`; default:
        global), in float USD.

        Keys: the brief's ``daily_spent``, ``daily_remaining``, ``monthly_spent``,
        ``monthly_remaining``, ``percent_used`` (percent of the most-used limit), plus
        ``weekly_*``, ``*_limit``, ``*_reserved``, ``*_resets_at``, ``scope``, ``rolling``.
        Remaining is ``limit - spent`` floored at 0 (``None`` without a limit).
        """
        return self.status(**names).as_dict()

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
        nanos = usd_to_nanos(estimate, field="estimate")  # a non-negative int, checked
        return self._reserve(nanos, user, team, key, tags, model, ttl)

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
        return self._reserve(nanos, user, team, key, tags, model, ttl)

    def _reserve(
        self,
        nanos: Nanos,
        user: str | None,
        team: str | None,
        key: str | None,
        tags: Iterable[str],
        model: str | None,
        ttl: float | None,
    ) -> Hold:
        ttl = self.hold_ttl if ttl is None else check_ttl(ttl, "ttl")
        now = self._clock()
        self._sync_budgets()  # the ledger's budgets, from the next admission on
        plan = self._planner.plan(user, team, key, tags, model, now)
        scopes = plan.scopes
        hold_id = os.urandom(16).hex()
        expires_at = now + ttl
        if nanos == 0:
            return Hold(self, hold_id, 0, expires_at, scopes)
        over = plan.over_cap(nanos)
        if over is not None:
            from costwarden.alerts import triggers

            raise triggers.per_request_error(*over, nanos)
        if now - self._last_purge >= _PURGE_EVERY_S:
            self._purge(now)
        try:
            denial = self.ledger.reserve(hold_id, nanos, plan.checks, expires_at, now)
        except LedgerUnavailableError:
            if self.fail_open:
                log.warning("costwarden: ledger unavailable, admitting unchecked (fail_open=True)")
                return Hold(self, hold_id, nanos, expires_at, scopes, unchecked=True)
            raise
        if denial is not None:
            raise self._denied(denial)
        return Hold(self, hold_id, nanos, expires_at, scopes)

    def _denied(self, denial: Denial) -> BudgetExceededError:
        from costwarden.alerts import triggers

        err = triggers.denied_error(denial)
        self._alerts.emit(triggers.denied(denial, err))
        return err

    def commit(self, hold: Hold, record: UsageRecord) -> StoredRecord:
        """Replace a hold by the call's actual record (the truth, even above the hold).

        Idempotent: committing a committed hold again with the same record returns the stored
        record and stores nothing; a *different* record, or a released hold, is a HoldError.
        Once the record is stored the hold is settled, whatever an alert does afterwards."""
        self._check_own(hold, "commit")
        if hold.settled:
            return hold.recommitted(record)
        stored = self._append(record, hold=hold)
        if stored.cost_nanos > hold.amount_nanos and hold.amount_nanos > 0:
            from costwarden.alerts import triggers

            scope = str(hold.scopes[-1])  # the narrowest: global is first
            alert = triggers.hold_exceeded(
                stored.cost_nanos, hold.amount_nanos, stored.model, scope, hold.id
            )
            self._alerts.emit(alert)
        if self._clock() > hold.expires_at:
            log.warning("costwarden: hold %s was committed after its TTL expired", hold.id)
        return stored

    def release(self, hold: Hold) -> None:
        """Drop a hold (the call failed and nothing was billed). Idempotent."""
        self._check_own(hold, "release")
        if hold.settled:
            return
        hold.settled = True
        if hold.amount_nanos and not hold.unchecked:
            self.ledger.release(hold.id)

    def _check_own(self, hold: object, what: str) -> None:
        if not isinstance(hold, Hold) or hold._manager is not self:
            raise HoldError(f"{what}() needs a Hold made by this BudgetManager's reserve()")

    def _purge(self, now: float) -> None:
        """Drop expired holds (reserve calls it every _PURGE_EVERY_S seconds)."""
        self._last_purge = now
        with contextlib.suppress(LedgerUnavailableError):
            self.ledger.purge_expired_holds(now)

    # -- recording ------------------------------------------------------------------------------
    def price(self, record: UsageRecord) -> tuple[Nanos, str]:
        """The record's cost in nano-USD and where it came from (``caller``, ``catalogue``...,
        or ``fallback:...`` with an ``unknown_price`` alert: see pricing/recording.py)."""
        cost = record.cost_nanos
        if cost is not None:
            return cost, "caller"
        cost, source, fallback = (_price_record or _load_price_record())(self.pricing, record)
        if fallback is not None:
            from costwarden.alerts import triggers

            self._alerts.emit(triggers.unknown_price(record.model, fallback, cost))
        return cost, source

    def _append(self, record: UsageRecord, hold: Hold | None) -> StoredRecord:
        if not isinstance(record, UsageRecord):
            raise InvalidInputError(f"expected a UsageRecord, got {type(record).__name__}")
        cost, source = self.price(record)
        ts = check_timestamp(record.timestamp)
        ts_epoch = ts.timestamp()
        new = NewRecord.from_usage(
            record, ts_us=round(ts_epoch * 1_000_000), cost_nanos=cost, price_source=source
        )
        self._sync_budgets()
        plan = self._planner.for_record(record, ts_epoch)
        settle = hold is not None and hold.amount_nanos > 0 and not hold.unchecked
        stored, usages = self.ledger.append(
            new,
            plan.buckets,
            hold_id=hold.id if settle and hold is not None else None,
            watch=plan.watch if cost else (),
        )
        if hold is not None:  # stored: the hold is settled before any alert can run
            hold.settled, hold.record, hold._committed = True, stored, record
        if cost and plan.checks:
            try:
                self._alerts.check_thresholds(plan.checks, usages)
            except Exception:  # the record is stored: an alert bug must not look like a failure
                log.exception("costwarden: could not check alert thresholds")
        return stored

    # -- alerts ---------------------------------------------------------------------------------
    @property
    def alerts(self) -> AlertDispatcher | None:
        """The alert dispatcher (None when no handler or channel is configured)."""
        return self._alerts.dispatcher

    def flush_alerts(self, timeout: float = 5.0) -> bool:
        """Wait until queued alerts have been delivered (or tried); True if all were."""
        return self._alerts.flush(timeout)

    # -- history and forecasts ------------------------------------------------------------------
    def records(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> list[StoredRecord]:
        """Stored records with ``since <= timestamp < until`` (either open), oldest first."""
        return self.ledger.records(epoch_us(since, "since"), epoch_us(until, "until"))

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
            self._alerts.emit(alert)
        return result

    def close(self) -> None:
        """Deliver pending alerts and close the ledger."""
        self._alerts.close()
        self.ledger.close()

    def __enter__(self) -> BudgetManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
