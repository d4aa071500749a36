"""Property tests of the admission invariants over random sequences of operations.

A reference model (plain integers) says what must be admitted; the BudgetManager on a real
ledger must agree at every step, and committed + reserved never exceeds a limit.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from costwarden.budget import Budget
from costwarden.errors import BudgetExceededError
from costwarden.manager import BudgetManager, Hold
from costwarden.money import usd_to_nanos
from costwarden.records import UsageRecord
from tests.helpers import FakeClock

T0 = datetime(2026, 11, 28, 10, tzinfo=UTC).timestamp()
GLOBAL_LIMIT = 1.00
USER_LIMIT = 0.40
USERS = ("ann", "bob", "cy")
cents = st.integers(min_value=0, max_value=60).map(lambda c: c / 100)


class Admission(RuleBasedStateMachine):
    backend = "memory"

    @initialize()
    def setup(self) -> None:
        self.clock = FakeClock(T0)
        if self.backend == "sqlite":
            self._dir = tempfile.TemporaryDirectory()
            url = f"sqlite:///{Path(self._dir.name) / 'p.db'}"
        else:
            url = "memory://"
        self.m = BudgetManager(
            Budget(daily_limit=GLOBAL_LIMIT, monthly_limit=None, per_request_limit=0.5),
            ledger=url,
            clock=self.clock,
        )
        self.m.set_default_budget(
            "user", Budget(daily_limit=USER_LIMIT, monthly_limit=None, per_request_limit=None)
        )
        self.spent = {u: 0 for u in USERS}
        self.holds: list[tuple[Hold, str, int, float]] = []  # hold, user, amount, expires
        # A hold committed after its TTL records the truth even if that overshoots (the TTL
        # exists so that crashed callers cannot pin a budget); the no-overspend invariant is
        # then no longer promised, so it is checked only while every commit was on time.
        self.late_commit = False

    def teardown(self) -> None:
        if hasattr(self, "m"):
            self.m.close()
        if hasattr(self, "_dir"):
            self._dir.cleanup()

    def _live(self, user: str | None = None) -> int:
        now = self.clock.now
        return sum(a for _h, u, a, exp in self.holds if exp > now and (user is None or u == user))

    def _fits(self, user: str, amount: int) -> bool:
        if amount == 0:
            return True
        if amount > usd_to_nanos(0.5):
            return False
        total = sum(self.spent.values())
        return total + self._live() + amount <= usd_to_nanos(GLOBAL_LIMIT) and self.spent[
            user
        ] + self._live(user) + amount <= usd_to_nanos(USER_LIMIT)

    @rule(user=st.sampled_from(USERS), amount=cents, ttl=st.sampled_from([5, 60, 600]))
    def reserve(self, user: str, amount: float, ttl: int) -> None:
        nanos = usd_to_nanos(amount)
        expected = self._fits(user, nanos)
        assert self.m.can_spend(amount, user=user) == expected
        try:
            hold = self.m.reserve(amount, user=user, ttl=ttl)
        except BudgetExceededError:
            assert not expected
            return
        assert expected
        if nanos:
            self.holds.append((hold, user, nanos, self.clock.now + ttl))

    @precondition(lambda self: self.holds)
    @rule(index=st.integers(min_value=0), fraction=st.sampled_from([0.0, 0.5, 1.0]))
    def commit(self, index: int, fraction: float) -> None:
        hold, user, amount, expires = self.holds.pop(index % len(self.holds))
        self.late_commit |= expires <= self.clock.now
        actual = int(amount * fraction)
        record = UsageRecord(
            "gpt-4o",
            10,
            10,
            cost_usd=actual / 1e9,
            timestamp=datetime.fromtimestamp(self.clock.now, UTC),
            user_id=user,
        )
        self.m.commit(hold, record)
        self.spent[user] += usd_to_nanos(actual / 1e9)

    @precondition(lambda self: self.holds)
    @rule(index=st.integers(min_value=0))
    def release(self, index: int) -> None:
        hold, *_ = self.holds.pop(index % len(self.holds))
        self.m.release(hold)

    @rule(seconds=st.sampled_from([1, 10, 100]))
    def tick(self, seconds: int) -> None:
        self.clock.advance(seconds)

    @invariant()
    def matches_model_and_never_over(self) -> None:
        if not hasattr(self, "m"):
            return
        s = self.m.get_status()
        assert usd_to_nanos(s["daily_spent"]) == sum(self.spent.values())
        assert usd_to_nanos(s["daily_reserved"]) == self._live()
        if not self.late_commit:
            assert sum(self.spent.values()) + self._live() <= usd_to_nanos(GLOBAL_LIMIT)
        for u in USERS:
            us = self.m.get_status(user=u)
            assert usd_to_nanos(us["daily_spent"]) == self.spent[u]
            assert usd_to_nanos(us["daily_reserved"]) == self._live(u)
            if not self.late_commit:
                assert self.spent[u] + self._live(u) <= usd_to_nanos(USER_LIMIT)


class AdmissionSQLite(Admission):
    backend = "sqlite"


TestAdmissionMemory = Admission.TestCase
TestAdmissionMemory.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
TestAdmissionSQLite = AdmissionSQLite.TestCase
TestAdmissionSQLite.settings = settings(max_examples=25, stateful_step_count=30, deadline=None)
