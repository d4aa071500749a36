"""A small, fixed ledger for the dashboard's tests (HTTP and browser): known records at
known times, two virtual keys, budgets, and the figures the pages must show."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from costwarden import Budget, BudgetManager, UsageRecord
from costwarden.keys import create_key

NOW = datetime(2025, 6, 18, 15, 30, tzinfo=UTC)  # a Wednesday afternoon
USERS = ("alice", "bob", "carol")
MODELS = ("gpt-4o", "gpt-4o-mini", "claude-haiku-4-5")


@dataclass
class Fixture:
    manager: BudgetManager
    key_id: str
    key_secret: str
    other_key_id: str


def build(ledger_url: str) -> Fixture:
    m = BudgetManager(
        Budget(daily_limit=20.0, monthly_limit=300.0),
        ledger=ledger_url,
        clock=lambda: NOW.timestamp(),
    )
    m.set_budget(Budget(daily_limit=2.0), team="research")
    at = NOW.timestamp()
    key, secret = create_key(m.ledger, user="alice", budget=Budget(daily_limit=1.0), now=at)  # type: ignore[arg-type]
    other, _ = create_key(m.ledger, user="bob", now=NOW.timestamp())  # type: ignore[arg-type]
    i = 0
    for day in range(40):  # 40 days back from NOW, three records per hour-ish of the day
        for h in (1, 9, 14, 22):
            ts = NOW - timedelta(days=day, hours=h)
            user = USERS[i % 3]
            m.record_spend(
                UsageRecord(
                    model=MODELS[i % 3],
                    input_tokens=1000 + 10 * i,
                    output_tokens=100 + i % 50,
                    cost_usd=round(0.001 * (1 + i % 17), 6),
                    user_id=user,
                    team="research" if user != "carol" else "sales",
                    key=(key.key_id if i % 4 == 0 else other.key_id if i % 4 == 1 else None),
                    endpoint="/v1/chat" if i % 2 else "/v1/embed",
                    tags=("prod",) if i % 5 else ("eval",),
                    timestamp=ts,
                )
            )
            i += 1
    return Fixture(m, key.key_id, secret, other.key_id)


__all__ = ["MODELS", "NOW", "USERS", "Fixture", "build"]
