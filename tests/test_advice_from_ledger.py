"""End to end: calls made through the tracked client land in a SQLite ledger with the
metadata the optimizer needs, and its advice, read back from that ledger, finds what the
usage pattern really has (a long repeated system prefix, repeated identical prompts, outputs
far below max_tokens)."""

from __future__ import annotations

from pathlib import Path

from costwarden import Budget, BudgetManager, CostOptimizer
from costwarden.clients import TrackedLLMClient

SYSTEM = "You are a careful support agent for ACME. Policies follow. " + "Rule. " * 1500


def test_advice_from_tracked_calls(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'spend.db'}"
    manager = BudgetManager(Budget(daily_limit=50.0, per_request_limit=None), ledger=url)
    client = TrackedLLMClient(manager, provider="simulated", user="ann", task_type="chat")
    for i in range(30):
        question = "Where is my order?" if i % 3 == 0 else f"Question number {i}?"
        client.chat(
            [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}],
            model="gpt-4o",
            max_tokens=4000,
        )
    manager.close()

    reopened = BudgetManager(ledger=url)
    records = reopened.records()
    assert len(records) == 30
    meta = records[0].metadata
    assert meta is not None
    assert meta["max_tokens"] == 4000 and meta["task"] == "chat"
    assert meta["prefix_tokens"] > 1000 and meta["prefix_hash"] and meta["prompt_hash"]
    assert len({r.metadata["prefix_hash"] for r in records if r.metadata}) == 1

    kinds = {r.kind for r in CostOptimizer(reopened.pricing).recommendations(records)}
    assert "prompt_caching" in kinds  # 30 calls share a >1,000-token prefix, none cached
    assert "duplicates" in kinds  # "Where is my order?" asked ten times
    assert "cap_max_tokens" in kinds  # simulated replies are far below 4,000 tokens
    reopened.close()
