"""The brief's ``alert_handler``: called inside record_spend/commit, in the caller's thread,
after the ledger write, once across processes; its failures never reach the caller."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from costwarden.budget import Budget
from costwarden.manager import BudgetManager
from costwarden.records import AlertLevel, UsageRecord

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    """
    import os, sys, threading
    from costwarden import Budget, BudgetManager, UsageRecord

    main = threading.get_ident()

    def handler(level, message):
        print(level, message, "main-thread" if threading.get_ident() == main else "OTHER-THREAD")

    m = BudgetManager(Budget(daily_limit=1.0, monthly_limit=None, per_request_limit=None),
                      alert_handler=handler, ledger=sys.argv[1])
    m.record_spend(UsageRecord("gpt-4o", 10, 10, 0.85))
    print("after 85%")
    hold = m.reserve(0.15)
    hold.commit(UsageRecord("gpt-4o", 10, 10, 0.15))
    print("END", flush=True)
    os._exit(0)
    """
)


@pytest.mark.parametrize("ledger", ["memory://", "sqlite"])
def test_alert_lines_come_before_the_scripts_end_even_with_os_exit(
    ledger: str, tmp_path: Path
) -> None:
    url = ledger if ledger == "memory://" else f"sqlite:///{tmp_path / 'spend.db'}"
    script = tmp_path / "crossing.py"
    script.write_text(SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), url],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1] == "END"
    assert [line.split()[0] for line in lines] == ["info", "warning", "after", "critical", "END"]
    assert lines[0].startswith("info Daily budget 50% used: $0.85 of $1.00")
    assert lines[1].startswith("warning Daily budget 80% used: $0.85 of $1.00")
    assert lines[3].startswith("critical Daily budget 100% used: $1.00 of $1.00")
    assert all(line.endswith("main-thread") for line in lines if line[0] in "iwc")


def test_print_shows_the_level_as_its_value(capsys: pytest.CaptureFixture[str]) -> None:
    print(AlertLevel.WARNING, "x")
    assert capsys.readouterr().out == "warning x\n"
    assert f"{AlertLevel.CRITICAL}" == "critical" and AlertLevel("info") is AlertLevel.INFO


def test_handler_runs_in_each_callers_thread_after_the_write(make_manager: Any) -> None:
    seen: list[tuple[AlertLevel, int, float]] = []
    holder: dict[str, BudgetManager] = {}

    def handler(level: AlertLevel, message: str) -> None:
        # the record that crossed is already in the ledger when the handler runs
        spent = holder["m"].get_status(user=message.split("(")[1].split(",")[0].split(":")[1])
        seen.append((level, threading.get_ident(), spent["daily_spent"]))

    m = make_manager(Budget(None, None, None), alert_handler=handler)
    holder["m"] = m
    m.set_default_budget("user", Budget(1.0, None, None, alert_thresholds=[1.0]))
    idents: dict[str, int] = {}

    def work(user: str) -> None:
        idents[user] = threading.get_ident()
        m.record_spend(UsageRecord("gpt-4o", 1, 1, 1.0, user_id=user))

    threads = [threading.Thread(target=work, args=(f"u{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(ident for _, ident, _ in seen) == sorted(idents.values())
    assert all(level is AlertLevel.CRITICAL and spent == 1.0 for level, _, spent in seen)


def test_a_raising_handler_is_logged_and_the_record_kept(
    make_manager: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(level: AlertLevel, message: str) -> None:
        raise RuntimeError("handler bug")

    m = make_manager(Budget(1.0, None, None), alert_handler=broken)
    hold = m.reserve(0.5)
    with caplog.at_level("ERROR", logger="costwarden.alerts"):
        stored = hold.commit(UsageRecord("gpt-4o", 1, 1, 0.9))
    assert hold.settled and hold.record == stored
    assert any("handler bug" in r.getMessage() for r in caplog.records)
    assert m.get_status()["daily_spent"] == 0.9 and m.get_status()["daily_reserved"] == 0.0


def test_handler_fires_once_across_managers_sharing_a_ledger(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    got: list[str] = []
    a = BudgetManager(
        Budget(1.0, None, None), alert_handler=lambda lv, m: got.append("a"), ledger=url
    )
    b = BudgetManager(
        Budget(1.0, None, None), alert_handler=lambda lv, m: got.append("b"), ledger=url
    )
    a.record_spend(UsageRecord("gpt-4o", 1, 1, 0.6))  # 50%: a claims and calls its handler
    b.record_spend(UsageRecord("gpt-4o", 1, 1, 0.1))  # still past 50%: claimed already
    assert got == ["a"]
    b.record_spend(UsageRecord("gpt-4o", 1, 1, 0.2))  # 90%: b crosses 80% first
    assert got == ["a", "b"]
    a.close()
    b.close()
