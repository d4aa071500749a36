"""The costwarden CLI over real SQLite ledgers: through typer's CliRunner, and as a real
process (``python -m costwarden.cli`` and the console script) to prove the entry point."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from costwarden.alerts import LoggingChannel
from costwarden.budget import Budget
from costwarden.cli.app import app
from costwarden.config import load_config
from costwarden.manager import BudgetManager
from costwarden.records import AlertLevel, UsageRecord

SRC = Path(__file__).resolve().parents[1] / "src"
HELLO = "Hello, world! How are you today?"
CONFIG = """
ledger = "sqlite:///ledger.db"
[budget]
daily_limit = 5
[budgets.user.alice]
daily_limit = 1.0
[prices]
"my-llm" = { input = 0.2, output = 0.6 }
"""


def cli(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(app, list(args), input=input)


def as_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder with costwarden.toml and a SQLite ledger of four records (one 3 days old)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COSTWARDEN_CONFIG", raising=False)
    monkeypatch.delenv("COSTWARDEN_LEDGER", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    (tmp_path / "costwarden.toml").write_text(CONFIG)
    now = datetime.now(UTC)
    with load_config(tmp_path / "costwarden.toml").build_manager(alerts=False) as m:
        m.record_spend(
            UsageRecord(
                "gpt-4o",
                100,
                50,
                0.25,
                now,
                user_id="alice",
                endpoint="/chat",
                team="eng",
                tags=("prod",),
            )
        )
        m.record_spend(UsageRecord("gpt-4o", 200, 80, 0.50, now, user_id="alice", team="eng"))
        m.record_spend(UsageRecord("my-llm", 1_000_000, 0, None, now, user_id="bob", team="ops"))
        m.record_spend(
            UsageRecord(
                "gpt-4o-mini", 10, 10, 1.0, now - timedelta(days=3), user_id="carol", team="ops"
            )
        )
    yield tmp_path


def test_status_json_and_table(workdir: Path) -> None:
    alice = as_json(cli("status", "--user", "alice", "--json"))
    assert alice["scope"] == "user:alice"
    assert (alice["daily_spent"], alice["daily_limit"], alice["daily_remaining"]) == (
        0.75,
        1.0,
        0.25,
    )
    assert alice["daily_requests"] == 2 and alice["percent_used"] == 75.0
    everyone = as_json(cli("status", "--json"))
    assert everyone["daily_spent"] == 0.95 and everyone["daily_limit"] == 5.0
    table = cli("status", "--user", "alice")
    assert table.exit_code == 0
    assert "user:alice" in table.stdout and "$0.75" in table.stdout and "75.0%" in table.stdout
    nobody = cli("status", "--team", "eng")
    assert "no budget applies to team:eng" in nobody.stdout


def test_records_filters_limit_and_exact_json(workdir: Path) -> None:
    everything = as_json(cli("records", "--json"))
    assert [r["user"] for r in everything] == ["carol", "alice", "alice", "bob"]  # oldest first
    assert everything[-1]["cost_usd"] == "0.200000000"  # priced from [prices]
    assert everything[-1]["price_source"] == "catalogue"
    assert len(as_json(cli("records", "--user", "alice", "--json"))) == 2
    assert len(as_json(cli("records", "--since", "1d", "--json"))) == 3
    assert len(as_json(cli("records", "--until", "2d", "--json"))) == 1
    assert [r["user"] for r in as_json(cli("records", "-n", "1", "--json"))] == ["bob"]
    assert [r["endpoint"] for r in as_json(cli("records", "--tag", "prod", "--json"))] == ["/chat"]
    assert [r["user"] for r in as_json(cli("records", "--tag", "/chat", "--json"))] == ["alice"]
    assert len(as_json(cli("records", "--model", "my-llm", "--json"))) == 1
    assert len(as_json(cli("records", "--team", "ops", "--user", "bob", "--json"))) == 1
    table = cli("records", "--user", "bob")
    assert "my-llm" in table.stdout and "1 of 1 matching" in table.stdout


def test_report_csv_json_table(workdir: Path) -> None:
    result = cli("report", "--by", "user", "--format", "csv")
    assert result.exit_code == 0
    rows = {r[0]: r for r in csv.reader(io.StringIO(result.stdout))}
    assert rows["alice"][7] == "0.750000000" and rows["alice"][1] == "2"
    assert rows["TOTAL"][7] == "1.950000000" and rows["TOTAL"][8] == "1950000000"
    doc = as_json(cli("report", "--by", "team", "--since", "today", "--json"))
    assert {r["group"]: r["cost_usd"] for r in doc["rows"]} == {
        "eng": "0.750000000",
        "ops": "0.200000000",
    }
    assert doc["total"]["cost_usd"] == "0.950000000" and doc["since"] is not None
    tags = as_json(cli("report", "--by", "tag", "--format", "json"))
    assert tags["rows_overlap"] is True
    table = cli("report", "--by", "model")
    assert table.exit_code == 0
    assert "TOTAL" in table.stdout and "$1.95" in table.stdout and "gpt-4o-mini" in table.stdout


def test_report_files(workdir: Path) -> None:
    out = workdir / "r.csv"
    result = cli("report", "--by", "day", "--format", "csv", "--output", str(out))
    assert result.exit_code == 0 and "wrote" in result.stdout
    assert out.read_text().splitlines()[-1].startswith("TOTAL,4,")
    xlsx = workdir / "r.xlsx"
    assert cli("report", "--format", "xlsx", "-o", str(xlsx)).exit_code == 0
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.load_workbook(xlsx)
    assert book.sheetnames[:2] == ["Summary", "By model"]  # the --by grouping first
    rows = list(book["By model"].iter_rows(values_only=True))
    total = next(r for r in rows if r[0] == "TOTAL")
    assert total[9] == 1_950_000_000  # Cost (nano-USD), exact
    assert cli("report", "--format", "xlsx").exit_code == 2  # needs --output
    assert cli("report", "--output", str(workdir / "t.txt")).exit_code == 2  # table to a file


def test_report_total_of_ten_thousand_tiny_records_is_exact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COSTWARDEN_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'tiny.db'}"
    with BudgetManager(Budget(None, None, None), ledger=url) as m:
        for i in range(10_000):
            m.record_spend(UsageRecord("gpt-4o", 1, 1, 0.0001, user_id=f"u{i % 7}"))
    result = cli("--ledger", url, "report", "--by", "user", "--format", "csv")
    assert result.exit_code == 0
    total = result.stdout.splitlines()[-1].split(",")
    assert total[0] == "TOTAL" and total[1] == "10000"
    assert total[7] == "1.000000000" and total[8] == "1000000000"


def test_forecast(workdir: Path) -> None:
    doc = as_json(cli("forecast", "--json"))
    assert doc["scope"] == "global"
    assert {"day", "week", "month", "summary", "daily_rate_usd"} <= set(doc)
    assert doc["day"]["spent_usd"] == 0.95 and doc["day"]["limit_usd"] == 5.0
    alice = as_json(cli("forecast", "--scope", "user:alice", "--json"))
    assert alice["scope"] == "user:alice" and alice["day"]["limit_usd"] == 1.0
    assert cli("forecast", "--scope", "alice").exit_code == 2
    table = cli("forecast")
    assert table.exit_code == 0 and "Forecast for global" in table.stdout


def test_forecast_of_a_scope_without_a_budget_states_no_limit(workdir: Path) -> None:
    """team:ops has no budget: the global $5/day is not its limit to forecast against."""
    doc = as_json(cli("forecast", "--scope", "team:ops", "--json"))
    assert all(doc[p]["limit_usd"] is None for p in ("day", "week", "month"))
    assert doc["day"]["spent_usd"] == 0.2  # bob's my-llm call: 1M input tokens at $0.20
    assert "limit of" not in doc["summary"]
    assert doc["has_budget"] is False
    table = cli("forecast", "--scope", "team:ops")
    assert table.exit_code == 0 and "No budget applies to team:ops" in table.stdout
    assert "$5.00" not in table.stdout


def test_alert_delivery_history(workdir: Path) -> None:
    seen: list[str] = []
    url = f"sqlite:///{workdir / 'ledger.db'}"
    with BudgetManager(
        Budget(None, None, None),
        alert_handler=lambda level, message: seen.append(level.value),
        ledger=url,
        alert_channels=[LoggingChannel("costwarden.test-cli")],  # the handler has no history
    ) as m:
        m.set_budget(Budget(0.10, None, None), user="dave")
        m.record_spend(UsageRecord("gpt-4o", 1, 1, 0.09, user_id="dave"))
        assert m.flush_alerts(10)
    assert AlertLevel.WARNING.value in seen
    rows = as_json(cli("alerts", "--json"))
    assert rows and {r["status"] for r in rows} == {"delivered"}
    assert {r["level"] for r in rows} == {"info", "warning"}
    assert {r["scope"] for r in rows} == {"user:dave"}
    assert all(r["channel"] == rows[0]["channel"] and r["attempts"] == 1 for r in rows)
    assert len(as_json(cli("alerts", "-n", "1", "--json"))) == 1
    assert as_json(cli("alerts", "--since", "2099-01-01", "--json")) == []
    table = cli("alerts")
    assert table.exit_code == 0 and "user:dave" in table.stdout


def test_recommend(workdir: Path) -> None:
    doc = as_json(cli("recommend", "--json"))
    assert doc["records"] == 4
    assert Decimal(doc["monthly_saving_usd"]) >= 0
    for r in doc["recommendations"]:
        assert {"kind", "message", "monthly_saving_usd"} <= set(r)
    assert cli("recommend").exit_code == 0


def test_prices(workdir: Path) -> None:
    doc = as_json(cli("prices", "gpt-4o", "my-llm", "--json"))
    by_model = {p["model"]: p for p in doc["prices"]}
    assert Decimal(by_model["gpt-4o"]["input_per_1m"]) == Decimal("2.5")
    assert Decimal(by_model["gpt-4o"]["output_per_1m"]) == Decimal("10")
    assert by_model["gpt-4o"]["source"] == "genai-prices"
    assert by_model["my-llm"]["source"] == "custom"
    assert Decimal(by_model["my-llm"]["output_per_1m"]) == Decimal("0.6")
    table = cli("prices", "gpt-4o", "no-such-model-xyz")
    assert table.exit_code == 1
    assert "$2.50" in table.stdout and "$10.00" in table.stdout  # the known one still shown
    assert "no-such-model-xyz" in table.stderr and "Traceback" not in table.output


def test_tokens(workdir: Path) -> None:
    exact = as_json(cli("tokens", "gpt-4o", HELLO, "--json"))
    assert (exact["tokens"], exact["exact"]) == (9, True)
    assert exact["method"] == "tiktoken:o200k_base"
    assert Decimal(exact["input_cost_usd"]) == Decimal("0.0000225")  # 9 x $2.50 / 1M
    estimate = as_json(cli("tokens", "claude-3-haiku", HELLO, "--json"))
    assert estimate["exact"] is False and estimate["method"].startswith("estimate:")
    (workdir / "t.txt").write_text(HELLO)
    assert as_json(cli("tokens", "gpt-4", "--file", "t.txt", "--json"))["tokens"] == 9
    assert as_json(cli("tokens", "gpt-4o", "-f", "-", "--json", input=HELLO))["tokens"] == 9
    unpriced = cli("tokens", "some-local-llm", HELLO, "--json")  # unknown: an error, not $0
    assert unpriced.exit_code == 1 and "No price is known" in unpriced.stderr
    configured = as_json(cli("tokens", "my-llm", HELLO, "--json"))  # priced under [prices]
    assert configured["input_cost_usd"] is not None and configured["exact"] is False
    assert "9 tokens (exact" in cli("tokens", "gpt-4o", HELLO).stdout
    assert cli("tokens", "gpt-4o").exit_code == 2
    assert cli("tokens", "gpt-4o", HELLO, "--file", "t.txt").exit_code == 2
    missing = cli("tokens", "gpt-4o", "--file", "nope.txt")
    assert missing.exit_code == 1 and "nope.txt" in missing.stderr


def test_reset_keeps_history(workdir: Path) -> None:
    before = as_json(cli("records", "--json"))
    out = as_json(cli("reset", "daily", "--user", "alice", "--json"))
    assert out == {
        "period": "daily",
        "scope": "user:alice",
        "baseline_usd": 0.75,
        "scopes": {"user:alice": 0.75},
    }
    status = as_json(cli("status", "--user", "alice", "--json"))
    assert status["daily_spent"] == 0.0 and status["monthly_spent"] == 0.75
    assert as_json(cli("records", "--json")) == before
    text = cli("reset", "monthly", "--user", "alice")
    assert text.exit_code == 0 and "monthly count of user:alice" in text.stdout
    assert cli("reset", "hourly").exit_code == 2
    assert cli("reset", "daily", "--all", "--user", "alice").exit_code == 2


DEFAULT_BUDGET_CONFIG = """
ledger = "sqlite:///ledger.db"
[budget]
daily_limit = 50
[budgets.team.eng]
daily_limit = 20
[default_budgets.user]
daily_limit = 1.0
"""


def _default_budget_ledger(tmp_path: Path) -> Path:
    """bob and carol are at the default user budget; dave spent under it; eve spent
    nothing today; one record has no user."""
    config = tmp_path / "costwarden.toml"
    config.write_text(DEFAULT_BUDGET_CONFIG)
    now = datetime.now(UTC)
    with load_config(config).build_manager(alerts=False) as m:
        m.record_spend(UsageRecord("gpt-4o", 1, 1, 1.0, now, user_id="bob", team="eng"))
        m.record_spend(UsageRecord("gpt-4o", 1, 1, 1.0, now, user_id="carol"))
        m.record_spend(UsageRecord("gpt-4o", 1, 1, 0.25, now, user_id="dave", tags=("x",)))
        m.record_spend(UsageRecord("gpt-4o", 1, 1, 0.5, now - timedelta(days=40), user_id="eve"))
        m.record_spend(UsageRecord("gpt-4o", 1, 1, 0.5, now))
        assert not m.can_spend(0.01, user="bob") and not m.can_spend(0.01, user="carol")
    return config


def _admitted(config: Path, user: str) -> bool:
    with load_config(config).build_manager(alerts=False) as m:
        return m.can_spend(0.01, user=user)


def test_reset_default_covers_default_budget_scopes_and_says_what(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``costwarden reset daily`` admits a user the default user budget had denied."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COSTWARDEN_CONFIG", raising=False)
    monkeypatch.delenv("COSTWARDEN_LEDGER", raising=False)
    config = _default_budget_ledger(tmp_path)
    out = as_json(cli("reset", "daily", "--json"))
    assert _admitted(config, "bob") and _admitted(config, "carol")
    assert out["scope"] == "every scope a budget covers"
    assert out["scopes"] == {
        "global": 2.75,
        "team:eng": 1.0,
        "user:bob": 1.0,
        "user:carol": 1.0,
        "user:dave": 0.25,
    }
    assert out["baseline_usd"] == 6.0
    with load_config(config).build_manager(alerts=False) as m:
        assert m.get_status(user="bob")["daily_spent"] == 0.0
        assert m.get_status(tag="x")["daily_spent"] == 0.25  # no budget covers tags: kept
        assert len(m.records()) == 5


def test_reset_text_names_each_scope_and_all_covers_unbudgeted_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COSTWARDEN_CONFIG", raising=False)
    monkeypatch.delenv("COSTWARDEN_LEDGER", raising=False)
    config = _default_budget_ledger(tmp_path)
    text = cli("reset", "daily")
    assert text.exit_code == 0, text.output
    lines = text.stdout.splitlines()
    assert lines[0].startswith("Reset the daily count of 5 scopes: $6.00")
    assert [line.split()[0] for line in lines[1:]] == [
        "global",
        "team:eng",
        "user:bob",
        "user:carol",
        "user:dave",
    ]
    assert lines[3].split()[1] == "$1.00"
    everything = as_json(cli("reset", "daily", "--all", "--json"))
    assert everything["scope"] == "every scope with spend"
    assert everything["scopes"]["tag:x"] == 0.25 and everything["scopes"]["model:gpt-4o"] == 2.75
    assert "user:bob" not in everything["scopes"]  # reset already: no spend left to reset
    assert "user:eve" not in everything["scopes"]  # no spend this period
    assert everything["scopes"]["global"] == 0.0  # a budgeted scope is always reset
    named = as_json(cli("reset", "monthly", "--user", "eve", "--json"))
    assert named["scopes"] == {"user:eve": 0.0}  # last month's record does not count now
    assert _admitted(config, "carol")


def test_config_command(workdir: Path) -> None:
    doc = as_json(cli("config", "--json"))
    assert doc["path"] == str(workdir / "costwarden.toml")
    assert doc["ledger"] == f"sqlite:///{(workdir / 'ledger.db').resolve()}"
    assert doc["budgets"]["user:alice"]["daily_limit"] == 1.0
    assert doc["prices"] == "1 custom models"
    assert cli("config", "--check-alerts").exit_code == 0


def test_demo_then_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COSTWARDEN_CONFIG", raising=False)
    result = cli("demo", "--path", "out/spend.db")
    assert result.exit_code == 0, result.output
    assert "admitted" in result.stdout
    doc = as_json(cli("--ledger", "sqlite:///out/spend.db", "report", "--by", "user", "--json"))
    assert {r["group"] for r in doc["rows"]} == {"alice", "bob", "carol"}
    assert doc["total"]["requests"] > 0


def test_demo_writes_no_record_after_now_and_report_until_now_shows_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever the clock says, the demo's day is over by now: nothing dated later today."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COSTWARDEN_CONFIG", raising=False)
    monkeypatch.delenv("COSTWARDEN_LEDGER", raising=False)
    assert cli("demo", "--path", "spend.db").exit_code == 0
    now = datetime.now(UTC)
    url = "sqlite:///spend.db"
    rows = as_json(cli("--ledger", url, "records", "--json", "--limit", "100000"))
    assert rows and max(datetime.fromisoformat(r["timestamp"]) for r in rows) <= now
    total = sum(int(r["cost_nanos"]) for r in rows)
    doc = as_json(cli("--ledger", url, "report", "--until", "now", "--json"))
    assert doc["total"]["requests"] == len(rows) and int(doc["total"]["cost_nanos"]) == total
    assert total > 0


@pytest.mark.parametrize(
    "now",
    [
        datetime(2026, 12, 1, 0, 5, tzinfo=UTC),  # just after midnight, first of a month
        datetime(2026, 12, 3, 7, 59, tzinfo=UTC),  # early morning
        datetime(2026, 12, 3, 9, 30, tzinfo=UTC),  # the working day has just begun
        datetime(2026, 12, 3, 15, 0, tzinfo=UTC),  # afternoon
        datetime(2026, 12, 3, 23, 0, tzinfo=UTC),  # evening
    ],
    ids=["midnight", "early", "morning", "afternoon", "evening"],
)
def test_demo_day_ends_by_now_within_one_day_and_still_enforces(
    tmp_path: Path, now: datetime
) -> None:
    from costwarden.demo import DAY_HOURS, run, working_day

    start, end = working_day(now)
    assert end <= now and end - start == timedelta(hours=DAY_HOURS)
    assert start.date() == (end - timedelta(microseconds=1)).date()  # one day's budgets
    counts = run(tmp_path / "demo.db", quiet=True, now=now)
    assert counts["denied"] > 0 and counts["alerts"] > 0
    with BudgetManager(ledger=f"sqlite:///{tmp_path / 'demo.db'}") as m:
        stamps = [r.timestamp for r in m.records()]
    assert len(stamps) == counts["admitted"]
    assert start <= min(stamps) and max(stamps) < end <= now


def test_errors_and_exit_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COSTWARDEN_CONFIG", raising=False)
    monkeypatch.delenv("COSTWARDEN_LEDGER", raising=False)
    missing = cli("status")
    assert missing.exit_code == 1 and "no ledger at costwarden.db" in missing.stderr
    assert not (tmp_path / "costwarden.db").exists()  # nothing created by accident
    (tmp_path / "bad.toml").write_text("[budgets.user.alice]\ndaily_limit = -3\n")
    bad = cli("--config", "bad.toml", "status")
    assert bad.exit_code == 1
    assert "budgets.user.alice.daily_limit must not be negative" in bad.stderr
    assert "Traceback" not in bad.output
    (tmp_path / "ok.toml").write_text('ledger = "memory://"\n')
    assert cli("--config", "ok.toml", "status", "--user", "a", "--team", "b").exit_code == 2
    assert cli("--config", "ok.toml", "records", "--since", "last tuesday").exit_code == 2
    assert cli("--config", "ok.toml", "records", "--limit", "0").exit_code == 2
    assert cli("--config", "ok.toml", "status", "--json").exit_code == 0
    assert cli("nonsense").exit_code == 2
    version = cli("--version")
    assert version.exit_code == 0 and version.stdout.startswith("costwarden ")


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(SRC), "COLUMNS": "200"}
    env.pop("COSTWARDEN_CONFIG", None)
    env.pop("COSTWARDEN_LEDGER", None)
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def test_real_process_entry_points(workdir: Path) -> None:
    module = _run([sys.executable, "-m", "costwarden.cli", "report", "--format", "csv"], workdir)
    assert module.returncode == 0, module.stderr
    assert module.stdout.splitlines()[-1].split(",")[7] == "1.950000000"
    script = Path(sys.executable).with_name("costwarden")
    if not script.exists():
        pytest.skip("console script not installed (pip install -e .)")
    status = _run([str(script), "status", "--user", "alice", "--json"], workdir)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["daily_spent"] == 0.75
    failed = _run([str(script), "--ledger", "sqlite:///absent.db", "status"], workdir)
    assert failed.returncode == 1
    assert failed.stderr.startswith("error: no ledger at absent.db") and "Traceback" not in (
        failed.stderr
    )
    usage = _run([str(script), "report", "--by", "planet"], workdir)
    assert usage.returncode == 2 and "planet" in usage.stderr


def _env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(SRC), "COLUMNS": "200"}
    env.pop("COSTWARDEN_CONFIG", None)
    env.pop("COSTWARDEN_LEDGER", None)
    return env


@pytest.mark.parametrize(
    "argv",
    [["status"], ["status", "--json"], ["records"], ["report", "--format", "csv"]],
    ids=["rich-table", "json", "records", "csv"],
)
def test_output_into_a_closed_pipe_exits_quietly(workdir: Path, argv: list[str]) -> None:
    """``costwarden status | head -1`` once head has gone: no "error: Broken pipe", no
    traceback, no complaint from the interpreter's last flush; 141 as if SIGPIPE ended it."""
    read_end, write_end = os.pipe()
    head = subprocess.Popen(["head", "-1"], stdin=read_end, stdout=subprocess.PIPE)
    os.close(read_end)
    os.write(write_end, b"a line for head\n")
    assert head.communicate(timeout=30)[0] == b"a line for head\n"  # head read it and left
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "costwarden.cli", *argv],
            cwd=workdir,
            env=_env(),
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
        )
    finally:
        os.close(write_end)
    _, err = proc.communicate(timeout=60)
    assert err == ""
    assert proc.returncode == 141
