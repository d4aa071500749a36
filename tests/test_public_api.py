"""The curated public API: every name in ``__all__`` resolves, and the brief's names exist."""

from __future__ import annotations

import inspect

import costwarden


def test_all_names_resolve() -> None:
    for name in costwarden.__all__:
        assert getattr(costwarden, name) is not None, name


def test_all_names_are_unique() -> None:
    assert len(set(costwarden.__all__)) == len(costwarden.__all__)


def test_brief_signatures() -> None:
    p = inspect.signature(costwarden.UsageRecord).parameters
    assert list(p)[:8] == [
        "model",
        "input_tokens",
        "output_tokens",
        "cost_usd",
        "timestamp",
        "user_id",
        "endpoint",
        "request_id",
    ]
    assert all(v.kind is inspect.Parameter.KEYWORD_ONLY for v in list(p.values())[8:])
    b = costwarden.Budget()
    assert (b.daily_limit, b.monthly_limit, b.per_request_limit, b.alert_threshold) == (
        10.0,
        200.0,
        0.50,
        0.8,
    )
    assert list(inspect.signature(costwarden.Budget).parameters)[:4] == [
        "daily_limit",
        "monthly_limit",
        "per_request_limit",
        "alert_threshold",
    ]
    assert list(inspect.signature(costwarden.BudgetManager).parameters)[:2] == [
        "budget",
        "alert_handler",
    ]
    assert [(m.name, m.value) for m in costwarden.AlertLevel] == [
        ("INFO", "info"),
        ("WARNING", "warning"),
        ("CRITICAL", "critical"),
    ]
    for method in ("can_spend", "record_spend", "get_status", "reset_daily"):
        assert callable(getattr(costwarden.BudgetManager, method))
