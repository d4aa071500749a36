"""Builds tests/data/ledger_v3.db: a SQLite ledger written by costwarden 0.1.0 (schema 3,
before the control plane), for tests/test_control_migration.py. Run it with that release's
code first on the path, e.g. from a checkout of it:

    PYTHONPATH=<checkout>/src python tests/data/make_ledger_v3.py tests/data/ledger_v3.db
"""

import sys
from datetime import UTC, datetime

from costwarden import Budget, BudgetManager, UsageRecord

path = sys.argv[1]
manager = BudgetManager(
    Budget(daily_limit=5.0, monthly_limit=50.0, rolling_limits={3600: 2.0}),
    ledger=f"sqlite:///{path}?checkpoint=auto",
    alert_handler=lambda level, message: None,
)
at = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
for i in range(12):
    manager.record_spend(
        UsageRecord(
            "gpt-4o-mini",
            100 + i,
            20 + i,
            cost_usd=0.25 + i / 100,
            timestamp=at.replace(minute=i),
            user_id="alice" if i % 2 else "bob",
            request_id=f"req-{i}",
            team="research",
            key="legacy-key",
            tags=("batch",),
            metadata={"task": "summarise", "n": i},
        )
    )
manager.reset_daily()
manager.close()
