"""``costwarden budgets``, ``keys`` and ``audit`` through the real CLI on SQLite and PostgreSQL:
what they store is what the library reads back, every change is audited under the CLI's
actor, secrets are printed once and never listed, and bad input exits non-zero having changed
nothing."""

from __future__ import annotations

import getpass
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from costwarden.budget import Budget
from costwarden.cli.app import app
from costwarden.errors import RevokedKeyError
from costwarden.keys import authenticate
from costwarden.ledger import open_ledger
from costwarden.money import usd_to_nanos
from tests import pg

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COSTWARDEN_CONFIG", raising=False)
    monkeypatch.delenv("COSTWARDEN_LEDGER", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    if request.param == "postgres":
        with pg.temp_schema_url() as pg_url:
            yield pg_url
        return
    yield f"sqlite:///{tmp_path / 'ledger.db'}"


def cli(url: str, *args: str) -> Result:
    return CliRunner().invoke(app, ["--ledger", url, *args])


def ok_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def control_state(url: str) -> tuple[Any, ...]:
    ledger = open_ledger(url)
    try:
        return (
            ledger.control_version(),
            [b.as_dict() for b in ledger.budgets()],
            [k.as_dict() for k in ledger.list_keys()],
            len(ledger.audit(limit=10_000)),
        )
    finally:
        ledger.close()


ACTOR = f"cli:{getpass.getuser()}@{socket.gethostname()}"


def test_budgets_set_list_rm_round_trip_exactly(url: str) -> None:
    team = ok_json(
        cli(
            url,
            "budgets",
            "set",
            "--team",
            "research",
            "--daily",
            "1.10",
            "--monthly",
            "20",
            "--rolling",
            "3600=0.30",
            "--rolling",
            "5m=0.05",
            "--timezone",
            "Europe/Paris",
            "--thresholds",
            "0.5,0.9,1.0",
            "--json",
        )
    )
    assert team["scope"] == "team:research" and team["old"] is None
    assert team["actor"] == ACTOR
    default = ok_json(
        cli(url, "budgets", "set", "--default-for", "user", "--daily", "0.5", "--json")
    )
    assert default["version"] > team["version"]
    glob = cli(url, "budgets", "set", "--per-request", "$0.10", "--weekly", "7")
    assert glob.exit_code == 0 and "Set the budget of global" in glob.stdout
    assert "per request $0.10" in glob.stdout

    ledger = open_ledger(url)
    try:
        snap = ledger.control_snapshot()
        research = snap.get("team:research")
        assert research is not None and research.actor == ACTOR
        assert research.budget == Budget(
            1.10,
            20.0,
            None,
            rolling_limits={3600: 0.30, 300: 0.05},
            timezone="Europe/Paris",
            alert_thresholds=(0.5, 0.9, 1.0),
        )
        assert research.budget.limit_nanos("daily") == usd_to_nanos("1.10")
        assert snap.get("default:user") is not None and snap.get("global") is not None
    finally:
        ledger.close()

    listed = ok_json(cli(url, "budgets", "list", "--json"))
    assert [b["scope"] for b in listed] == ["default:user", "global", "team:research"]
    assert {b["source"] for b in listed} == {"ledger"}
    assert listed[2]["budget"]["daily_limit_nanos"] == 1_100_000_000
    table = cli(url, "budgets", "list")
    assert table.exit_code == 0 and "team:research" in table.stdout and ACTOR in table.stdout

    replaced = cli(url, "budgets", "set", "--team", "research", "--daily", "0.01")
    assert replaced.exit_code == 0 and "it replaces daily $1.10" in replaced.stdout
    removed = ok_json(cli(url, "budgets", "rm", "--team", "research", "--json"))
    assert removed["removed"]["daily_limit_nanos"] == 10_000_000
    assert removed["now_in_force"] is None
    gone = cli(url, "budgets", "rm", "--team", "research")
    assert gone.exit_code == 1 and "the ledger has no budget for team:research" in gone.stderr
    user_rm = ok_json(cli(url, "budgets", "rm", "--default-for", "user", "--json"))
    assert user_rm["scope"] == "default:user"
    assert [b["scope"] for b in ok_json(cli(url, "budgets", "list", "--json"))] == ["global"]

    events = ok_json(cli(url, "audit", "--json"))
    assert [e["action"] for e in events] == [
        "budget.remove",
        "budget.remove",
        "budget.put",
        "budget.put",
        "budget.put",
        "budget.put",
    ]
    assert {e["actor"] for e in events} == {ACTOR}
    assert events[2]["old"]["budget"]["daily_limit_nanos"] == 1_100_000_000  # the replace


BAD_INPUT = [
    ("budgets", "set", "--user", "bob"),  # no limit
    ("budgets", "set", "--user", "bob", "--daily", "abc"),
    ("budgets", "set", "--user", "bob", "--daily", "-1"),
    ("budgets", "set", "--user", "bob", "--daily", "1", "--timezone", "Mars/Olympus"),
    ("budgets", "set", "--user", "bob", "--daily", "1", "--thresholds", "half"),
    ("budgets", "set", "--user", "bob", "--daily", "1", "--thresholds", "0.5,0"),
    ("budgets", "set", "--user", "bob", "--rolling", "90=1"),  # not whole minutes
    ("budgets", "set", "--user", "bob", "--rolling", "an-hour"),
    ("budgets", "set", "--user", "bob", "--rolling", "60=1", "--rolling", "1m=2"),
    ("budgets", "set", "--user", "bob", "--team", "t", "--daily", "1"),
    ("budgets", "set", "--default-for", "global", "--daily", "1"),
    ("budgets", "set", "--default-for", "user", "--user", "bob", "--daily", "1"),
    ("budgets", "set", "--unlimited", "--daily", "1"),
    ("budgets", "set", "--user", "", "--daily", "1"),
    ("budgets", "set", "--user", "x" * 600, "--daily", "1"),
    ("budgets", "rm", "--user", "nobody"),
    ("keys", "create", "--expires", "2000-01-01"),
    ("keys", "create", "--expires", "someday"),
    ("keys", "create", "--metadata", "no-equals-sign"),
    ("keys", "create", "--rpm", "0"),
    ("keys", "create", "--models", "a,,b"),
    ("keys", "create", "--daily", "-5"),
    ("keys", "create", "--user", "u" * 300),
    ("keys", "rotate", "no-such-key"),
    ("keys", "rotate", "no-such-key", "--grace", "soon"),
    ("keys", "revoke", "no-such-key"),
    ("audit", "--limit", "0"),
    ("audit", "--since", "last tuesday"),
]


def test_bad_input_exits_non_zero_and_changes_nothing(url: str) -> None:
    ok_json(cli(url, "budgets", "set", "--user", "alice", "--daily", "1", "--json"))
    before = control_state(url)
    for argv in BAD_INPUT:
        result = cli(url, *argv)
        assert result.exit_code in (1, 2), (argv, result.output)
        assert "Traceback" not in result.output and result.stderr.strip(), argv
        assert control_state(url) == before, argv


def test_keys_lifecycle_secret_shown_once(url: str) -> None:
    created = cli(
        url,
        "keys",
        "create",
        "--user",
        "alice",
        "--team",
        "research",
        "--daily",
        "0.25",
        "--models",
        "gpt-4o-mini,gpt-4o",
        "--models",
        "claude-3-haiku",
        "--rpm",
        "60",
        "--tpm",
        "10000",
        "--expires",
        "90d",
        "--metadata",
        "app=bot",
        "--metadata",
        "env=prod",
    )
    assert created.exit_code == 0, created.output
    secret = next(
        line.split(": ", 1)[1] for line in created.stdout.splitlines() if line.startswith("secret")
    )
    assert secret.startswith("cw-") and "shown this once" in created.stderr
    ledger = open_ledger(url)
    try:
        key = authenticate(ledger, secret)
        assert key.user == "alice" and key.team == "research" and key.rpm == 60
        assert key.models == ("gpt-4o-mini", "gpt-4o", "claude-3-haiku")
        assert key.metadata == {"app": "bot", "env": "prod"}
        assert key.expires_at is not None and key.expires_at > time.time() + 89 * 86400
        assert key.budget == Budget(0.25, None, None)
        assert ledger.control_snapshot().get(key.scope) is not None

        listed = cli(url, "keys", "list")
        assert listed.exit_code == 0 and key.key_id in listed.stdout
        listed_json = ok_json(cli(url, "keys", "list", "--json"))
        assert listed_json[0]["status"] == "active" and listed_json[0]["prefix"] == key.prefix
        for text in (listed.output, json.dumps(listed_json)):
            assert secret not in text and secret[11:27] not in text and key.hash not in text

        rotated = ok_json(cli(url, "keys", "rotate", key.key_id, "--grace", "1h", "--json"))
        new_secret = rotated["secret"]
        assert new_secret != secret and "shown this once" in rotated["warning"]
        assert authenticate(ledger, secret).key_id == authenticate(ledger, new_secret).key_id
        assert rotated["key"]["status"] == "active (old secret in grace)"

        revoked = cli(url, "keys", "revoke", key.key_id)
        assert revoked.exit_code == 0 and "revocation is final" in revoked.stdout
        for s in (secret, new_secret):
            with pytest.raises(RevokedKeyError):
                authenticate(ledger, s)
        assert ok_json(cli(url, "keys", "list", "--json"))[0]["status"] == "revoked"
        assert ok_json(cli(url, "keys", "list", "--active", "--json")) == []
        again = cli(url, "keys", "rotate", key.key_id)
        assert again.exit_code == 1 and "revoked" in again.stderr

        events = ledger.audit()
        assert [e.action for e in events] == ["key.update", "key.update", "key.create"]
        assert {e.actor for e in events} == {ACTOR}
    finally:
        ledger.close()


def test_audit_filters(url: str) -> None:
    for name in ("a", "b", "c"):
        assert cli(url, "budgets", "set", "--team", name, "--daily", "1").exit_code == 0
    assert cli(url, "budgets", "set", "--team", "a", "--daily", "2").exit_code == 0
    on_a = ok_json(cli(url, "audit", "--target", "team:a", "--json"))
    assert [e["target"] for e in on_a] == ["team:a", "team:a"]
    assert on_a[0]["new"]["budget"]["daily_limit_nanos"] == 2_000_000_000
    assert len(ok_json(cli(url, "audit", "--limit", "2", "--json"))) == 2
    assert len(ok_json(cli(url, "audit", "--since", "1h", "--json"))) == 4
    assert ok_json(cli(url, "audit", "--until", "2000-01-01", "--json")) == []
    table = cli(url, "audit", "--target", "team:a")
    assert table.exit_code == 0 and "daily $1.00 (UTC) -> daily $2.00 (UTC)" in table.stdout


CONFIG = """
[budget]
daily_limit = 5
[budgets.user.alice]
daily_limit = 1.0
[budgets.team.ops]
daily_limit = 3.0
[default_budgets.user]
daily_limit = 0.5
"""


def test_config_budgets_apply_where_the_ledger_has_none_and_show_their_source(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # the file's path in one table cell
    cfg = tmp_path / "costwarden.toml"
    cfg.write_text(CONFIG)
    source = f"config:{cfg}"
    assert cli(url, "budgets", "set", "--user", "alice", "--daily", "2").exit_code == 0
    listed = {b["scope"]: b for b in ok_json(cli(url, "budgets", "list", "--json"))}
    assert {s: (b["source"], b["hides"]) for s, b in listed.items()} == {
        "default:user": (source, None),
        "global": (source, None),
        "team:ops": (source, None),
        "user:alice": ("ledger", source),
    }
    assert listed["user:alice"]["budget"]["daily_limit_nanos"] == 2_000_000_000
    table = cli(url, "budgets", "list")
    assert f"ledger (over {source})" in table.stdout

    not_ledger = cli(url, "budgets", "rm", "--team", "ops")
    assert not_ledger.exit_code == 1 and f"comes from {source}: edit that file" in (
        not_ledger.stderr
    )
    back = ok_json(cli(url, "budgets", "rm", "--user", "alice", "--json"))
    assert back["now_in_force"]["source"] == source
    assert back["now_in_force"]["budget"]["daily_limit_nanos"] == 1_000_000_000


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(SRC), "COLUMNS": "200"}
    env.pop("COSTWARDEN_CONFIG", None)
    env.pop("COSTWARDEN_LEDGER", None)
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def test_real_process_prints_the_secret_on_stdout_and_the_warning_on_stderr(
    tmp_path: Path,
) -> None:
    base = [sys.executable, "-m", "costwarden.cli"]
    created = _run([*base, "keys", "create", "--user", "bob", "--json"], tmp_path)
    assert created.returncode == 0, created.stderr
    out = json.loads(created.stdout)  # --json: one document on stdout, notes on stderr
    assert out["secret"].startswith("cw-") and "created a new ledger" in created.stderr
    listed = _run([*base, "keys", "list", "--json"], tmp_path)
    assert listed.returncode == 0 and out["secret"] not in listed.stdout
    assert json.loads(listed.stdout)[0]["key_id"] == out["key"]["key_id"]
    bad = _run([*base, "budgets", "set", "--daily", "lots"], tmp_path)
    assert bad.returncode == 2 and "--daily" in bad.stderr


def test_status_after_the_demo_shows_the_budgets_it_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COSTWARDEN_CONFIG", raising=False)
    monkeypatch.delenv("COSTWARDEN_LEDGER", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    assert CliRunner().invoke(app, ["demo", "--path", "demo.db"]).exit_code == 0
    url = "sqlite:///demo.db"
    alice = ok_json(cli(url, "status", "--user", "alice", "--json"))
    assert alice["has_budget"] and alice["daily_limit"] == 0.5
    assert (alice["budget_scope"], alice["budget_source"]) == ("default:user", "ledger")
    text = cli(url, "status", "--user", "alice")
    assert "no budget applies" not in text.stdout
    assert "budget default:user from ledger" in text.stdout
    glob = ok_json(cli(url, "status", "--json"))
    assert glob["daily_limit"] == 1.5 and glob["budget_source"] == "ledger"
    team = ok_json(cli(url, "status", "--team", "research", "--json"))
    assert team["daily_limit"] == 1.0
    listed = {b["scope"]: b for b in ok_json(cli(url, "budgets", "list", "--json"))}
    assert set(listed) == {"global", "team:research", "default:user"}
    assert {b["actor"] for b in listed.values()} == {"demo"}
    nobody = ok_json(cli(url, "status", "--tag", "nothing", "--json"))
    assert nobody["budget_source"] is None and not nobody["has_budget"]
