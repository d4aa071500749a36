"""``make demo``: a simulated working day of LLM calls under budgets, offline, on SQLite.

The day is the latest :data:`DAY_HOURS` hours (08:00-20:00 when it can be) that lie within
one calendar day (UTC, the demo budgets' zone) and end no later than now: today's 08:00-20:00
in the evening, the 12 hours up to now in the afternoon, and the previous day's 08:00-20:00
before noon. So every record is in the past (``costwarden report --until now`` shows all of
it and a forecast extrapolates from what has happened), and the day's budgets see the whole
day, whatever the clock says. A day pinned to today's 08:00-20:00 would put records after
"now"; the 12 hours up to now at 06:00 would cross midnight, where the daily budgets start
afresh and the demo would show no denial.

Three people on two teams call real model names with realistic prompts; each call is
estimated (offline token count + catalogue price, ``max_tokens`` as the output bound),
reserved against every budget that applies, and committed with its "actual" usage. Alerts are
printed as they fire, and calls are denied once a budget is reached. Nothing leaves the
machine: the provider is simulated; prices come from the genai-prices snapshot in its wheel.
"""

from __future__ import annotations

import argparse
import random
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from costwarden.budget import Budget
from costwarden.errors import BudgetExceededError
from costwarden.manager import BudgetManager
from costwarden.money import format_usd, usd_to_nanos
from costwarden.optimizer import CostOptimizer
from costwarden.pricing import default_catalog
from costwarden.records import AlertLevel, Usage, UsageRecord
from costwarden.tokens import count_message_tokens


@dataclass(frozen=True)
class Persona:
    """A simulated user of the demo: who they are, which model they call, for which feature, with
    which prompts.
    """

    user: str
    team: str
    model: str
    feature: str
    prompts: tuple[str, ...]
    max_tokens: int
    calls_per_hour: int
    task: str


PEOPLE = (
    Persona(
        "alice",
        "research",
        "gpt-4o",
        "report-drafting",
        (
            "Summarise the attached quarterly research notes into a two-page brief for the "
            "board, keeping every figure and its source. " * 6,
            "Compare the three vendor proposals below on price, risk and delivery time. " * 8,
        ),
        max_tokens=1200,
        calls_per_hour=9,
        task="summarization",
    ),
    Persona(
        "bob",
        "support",
        "gpt-4o-mini",
        "ticket-triage",
        (
            "Classify this support ticket as billing, bug, feature request or other, and "
            "draft a one-line reply: 'My invoice shows two charges for November.'",
            "Extract the order number and the product name from: 'Order 4471-B, the blue "
            "kettle, arrived broken.'",
        ),
        max_tokens=150,
        calls_per_hour=40,
        task="classification",
    ),
    Persona(
        "carol",
        "research",
        "claude-3-5-sonnet",
        "code-review",
        (
            "Review this pull request for correctness and style, and list concrete fixes:\n"
            + "def total(xs):\n    s = 0\n    for x in xs: s += x\n    return s\n" * 30,
        ),
        max_tokens=900,
        calls_per_hour=7,
        task="code",
    ),
)

LEVEL_MARK = {AlertLevel.INFO: "i", AlertLevel.WARNING: "!", AlertLevel.CRITICAL: "X"}
DAY_HOURS = 12
"""Length of the simulated working day (see the module doc for where it lies)."""


def working_day(now: datetime) -> tuple[datetime, datetime]:
    """``(start, end)`` of the day to simulate for ``now`` (module doc): ``end <= now``."""
    now = now.astimezone(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if now - midnight >= timedelta(hours=DAY_HOURS):
        end = min(now, midnight + timedelta(hours=8 + DAY_HOURS))
    else:  # before noon: the previous day's working hours
        end = midnight - timedelta(hours=24 - 8 - DAY_HOURS)
    return end - timedelta(hours=DAY_HOURS), end


class SimulatedDay:
    """A clock that the demo moves forward call by call."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now.timestamp()


def run(
    ledger_path: Path, *, seed: int = 7, quiet: bool = False, now: datetime | None = None
) -> dict[str, int]:
    """Simulate the working day before ``now`` (default: the current time; see
    :func:`working_day`); return counts (calls, admitted, denied, alerts) for tests."""
    start, end = working_day(datetime.now(UTC) if now is None else now)
    if ledger_path.exists():
        for suffix in ("", "-wal", "-shm", "-holds"):
            Path(str(ledger_path) + suffix).unlink(missing_ok=True)
    ledger_path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    day = SimulatedDay(start)
    alerts: list[str] = []
    out = (lambda *a: None) if quiet else print

    def on_alert(level: AlertLevel, message: str) -> None:
        line = f"  [{LEVEL_MARK[level]} {level.value.upper():8}] {message}"
        alerts.append(line)
        out(line)

    catalog = default_catalog()
    manager = BudgetManager(
        alert_handler=on_alert,
        ledger=f"sqlite:///{ledger_path}",
        pricing=catalog,
        alert_options={"digest_window": 0.0},  # print each alert at once, beside its call
        clock=day,
    )
    # Stored in the ledger, so `costwarden status --user alice` (any process) shows them.
    manager.set_budget(
        Budget(daily_limit=1.50, monthly_limit=30.00, per_request_limit=0.10), actor="demo"
    )
    manager.set_budget(
        Budget(daily_limit=1.00, monthly_limit=20.0, per_request_limit=None),
        team="research",
        actor="demo",
    )
    manager.set_default_budget(
        "user", Budget(daily_limit=0.50, monthly_limit=None, per_request_limit=None), actor="demo"
    )
    out(
        f"costwarden demo: a simulated working day, {start:%Y-%m-%d} {start:%H:%M}-{end:%H:%M} "
        f"UTC, ledger {ledger_path}"
    )
    out(
        "budgets: global $1.50/day (max $0.10 a request), team research $1.00/day, "
        "each user $0.50/day\n"
    )

    span = (end - start).total_seconds()
    schedule = sorted(
        # start + [0, span): before the end, which is no later than now
        (start + timedelta(seconds=rng.random() * span), p)
        for p in PEOPLE
        for _ in range(p.calls_per_hour * DAY_HOURS)
    )
    counts = {"calls": 0, "admitted": 0, "denied": 0}
    denied_once: set[tuple[str, str]] = set()
    last_hour = -1
    for at, person in schedule:
        day.now = at
        if at.hour != last_hour:
            last_hour = at.hour
            s = manager.get_status()
            out(
                f"{at:%H:%M}  spent today {format_usd(usd_to_nanos(s['daily_spent']))} "
                f"({s['percent_used']:.0f}% of the tightest limit)"
            )
        counts["calls"] += 1
        messages = [{"role": "user", "content": rng.choice(person.prompts)}]
        prompt_tokens = count_message_tokens(messages, person.model).tokens
        estimate = catalog.cost_usd(
            person.model, Usage(input_tokens=prompt_tokens, output_tokens=person.max_tokens)
        )
        try:
            hold = manager.reserve(
                estimate,
                user=person.user,
                team=person.team,
                tags=(person.feature,),
                model=person.model,
            )
        except BudgetExceededError as exc:
            counts["denied"] += 1
            first = (person.user, exc.scope) not in denied_once
            denied_once.add((person.user, exc.scope))
            if first:
                out(
                    f"{at:%H:%M}  DENIED {person.user}'s {person.model} call (est. "
                    f"{format_usd(usd_to_nanos(estimate))}): {exc}"
                )
                out(
                    f"       (further denials of {person.user} by {exc.scope} are counted, "
                    "not printed)"
                )
            manager.flush_alerts()
            continue
        output_tokens = int(person.max_tokens * rng.uniform(0.25, 0.9))
        cached = (
            prompt_tokens // 2 if person.model.startswith("claude") and rng.random() < 0.6 else 0
        )
        hold.commit(
            UsageRecord(
                person.model,
                prompt_tokens,
                output_tokens,
                None,
                at,
                user_id=person.user,
                endpoint=person.feature,
                team=person.team,
                cache_read_tokens=cached,
                latency_ms=rng.uniform(300, 4000),
                provider="openai" if person.model.startswith("gpt") else "anthropic",
                metadata={"task": person.task, "max_tokens": person.max_tokens},
            )
        )
        counts["admitted"] += 1
        manager.flush_alerts()

    out(f"\nend of the day ({end:%Y-%m-%d %H:%M} UTC)")
    for scope in (
        {},
        {"team": "research"},
        {"team": "support"},
        {"user": "alice"},
        {"user": "bob"},
        {"user": "carol"},
    ):
        s = manager.get_status(**scope)
        limit = s["daily_limit"]
        out(
            f"  {s['scope']:15} spent {format_usd(usd_to_nanos(s['daily_spent'])):>8}"
            f"  limit {format_usd(usd_to_nanos(limit)) if limit is not None else '-':>7}"
            f"  requests {s['daily_requests']:4}"
        )
    by_model: dict[str, int] = {}
    for r in manager.records():
        by_model[r.model] = by_model.get(r.model, 0) + r.cost_nanos
    out("  by model: " + ", ".join(f"{m} {format_usd(n)}" for m, n in sorted(by_model.items())))
    advice = CostOptimizer(catalog).recommend_optimizations(manager.records())
    if advice:
        out("\nthe optimizer's advice from the day's records:")
        for line in advice[:3]:
            out(f"  - {line}")
    out(
        f"\n{counts['calls']} calls, {counts['admitted']} admitted, {counts['denied']} denied, "
        f"{len(alerts)} alerts. The ledger is a SQLite file: reopen it with "
        f"BudgetManager(ledger='sqlite:///{ledger_path}')."
    )
    manager.close()
    return {**counts, "alerts": len(alerts)}


def main(argv: list[str] | None = None) -> int:
    """Run the offline demo from the command line (``python -m costwarden.demo``); returns the exit
    code.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--ledger", type=Path, default=Path("demo-output/spend.db"))
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    run(args.ledger, seed=args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
