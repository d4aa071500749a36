"""The original brief's acceptance snippet, run unchanged, with costwarden.PRICING and with a
user dict in the brief's style; and the offline demo behind ``make run``."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from costwarden import (
    PRICING,
    AlertLevel,
    Budget,
    BudgetExceededError,
    BudgetManager,
    CostOptimizer,
    TrackedLLMClient,
    UsageRecord,
)

USER_PRICING = {
    "gpt-4o": {"input": 2.50, "output": 10.00},
    "gpt-4o-mini": {"input": 0.15, "output": 0.60},
    "claude-3-haiku": {"input": 0.25, "output": 1.25},
    "claude-3-5-sonnet": {"input": 3.00, "output": 15.00},
}


@pytest.mark.parametrize("pricing", [PRICING, USER_PRICING], ids=["package", "user-dict"])
def test_brief_snippet(pricing: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    budget = Budget(daily_limit=5.0, monthly_limit=50.0)
    manager = BudgetManager(budget, alert_handler=print)
    optimizer = CostOptimizer(pricing)
    assert manager.can_spend(0.01) == True  # noqa: E712 - the brief's own spelling
    assert manager.can_spend(100.0) == False  # noqa: E712
    manager.record_spend(
        UsageRecord(
            model="gpt-4o",
            input_tokens=1000,
            output_tokens=500,
            cost_usd=0.05,
            timestamp=datetime.now(),
        )
    )
    status = manager.get_status()
    assert status["daily_spent"] == 0.05
    assert status["daily_remaining"] == 4.95
    model = optimizer.select_model("summarization", max_cost=0.01)
    assert model in ["gpt-4o-mini", "claude-3-haiku"]
    client = TrackedLLMClient(manager, optimizer)  # raises BudgetExceededError when over budget
    assert client is not None
    manager.close()


def test_alert_handler_gets_level_and_actionable_message() -> None:
    got: list[tuple[AlertLevel, str]] = []
    manager = BudgetManager(
        Budget(daily_limit=5.0, monthly_limit=None),
        alert_handler=lambda level, message: got.append((level, message)),
    )
    manager.record_spend(UsageRecord("gpt-4o", 1000, 500, 4.01, datetime.now()))
    manager.record_spend(UsageRecord("gpt-4o", 1000, 500, 0.99, datetime.now()))
    assert manager.flush_alerts(5.0)
    levels = [lvl for lvl, _ in got]
    assert levels == [AlertLevel.INFO, AlertLevel.WARNING, AlertLevel.CRITICAL]
    assert any("Daily budget 80% used: $4.01 of $5.00" in msg for _, msg in got)
    # each threshold fires once per period
    manager.record_spend(UsageRecord("gpt-4o", 10, 5, 0.01, datetime.now()))
    manager.flush_alerts(5.0)
    assert len(got) == 3
    with pytest.raises(BudgetExceededError):
        manager.reserve(0.02)
    manager.flush_alerts(5.0)
    assert got[-1][0] is AlertLevel.CRITICAL and "denied" in got[-1][1]
    manager.close()


def test_tokens_priced_when_cost_omitted() -> None:
    manager = BudgetManager(Budget(daily_limit=5.0))
    stored = manager.record_spend(UsageRecord("gpt-4o", 1000, 500))
    assert stored.cost_usd == 0.0075  # 1000 x $2.50/M + 500 x $10/M
    assert stored.price_source == "catalogue"
    manager.close()


def test_unknown_model_after_a_call_is_never_free() -> None:
    manager = BudgetManager(Budget(daily_limit=5.0))
    stored = manager.record_spend(UsageRecord("my-private-model-x", 1000, 500))
    assert stored.cost_nanos > 0
    assert stored.price_source.startswith("fallback")
    manager.close()


def test_demo_runs_offline_and_enforces(tmp_path: Path) -> None:
    from costwarden.demo import run

    counts = run(tmp_path / "demo.db", quiet=True)
    assert counts["admitted"] > 0 and counts["denied"] > 0 and counts["alerts"] > 0
    m = BudgetManager(ledger=f"sqlite:///{tmp_path / 'demo.db'}")
    assert m.ledger.count_records() == counts["admitted"]
    m.close()
