"""The option groups of the CLI (``cli/options.py``): declared once, shown by every command that
takes them in their place, with the rules of the group: one scope at a time, record filters that
combine, no empty names, ``--default-for`` alone, ``--since``/``--until`` read as times."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import pytest
import typer
from typer.testing import CliRunner, Result

from costwarden.cli.app import app
from costwarden.cli.options import OptionGroup, ScopeNames, option_groups

SCOPE_FLAGS = ["--user", "--team", "--key", "--tag", "--model"]


def cli(*args: str) -> Result:
    return CliRunner().invoke(app, ["--config", "costwarden.toml", *args])


@pytest.fixture(autouse=True)
def memory_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COSTWARDEN_CONFIG", raising=False)
    monkeypatch.delenv("COSTWARDEN_LEDGER", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    (tmp_path / "costwarden.toml").write_text('ledger = "memory://"\n')
    yield


def flags(*command: str) -> list[str]:
    """The long options a command's help lists, in order."""
    result = cli(*command, "--help")
    assert result.exit_code == 0, result.output
    return re.findall(r"^\s+(?:-\w, )?(--[\w-]+)", result.stdout, re.MULTILINE)


@pytest.mark.parametrize(
    ("command", "before", "after"),
    [
        (["status"], [], ["--json"]),
        (["reset"], [], ["--all"]),
        (["records"], ["--since", "--until"], ["--limit"]),
        (["report"], ["--since", "--until", "--by", "--format", "--output"], ["--tz"]),
        (["budgets", "set"], [], ["--default-for", "--daily"]),
        (["budgets", "rm"], [], ["--default-for", "--json"]),
    ],
)
def test_a_group_is_listed_in_its_parameters_place(
    command: list[str], before: list[str], after: list[str]
) -> None:
    listed = flags(*command)
    at = listed.index("--user")
    assert listed[:at] == before
    assert listed[at : at + len(SCOPE_FLAGS) + len(after)] == [*SCOPE_FLAGS, *after]


def test_the_limit_options_are_one_group_in_both_commands() -> None:
    limits = ["--daily", "--weekly", "--monthly", "--per-request", "--rolling", "--timezone"]
    for command in (["budgets", "set"], ["keys", "create"]):
        listed = flags(*command)
        at = listed.index("--daily")
        assert listed[at : at + 7] == [*limits, "--thresholds"], command
    assert flags("audit")[:3] == ["--since", "--until", "--target"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["status", "--user", "a", "--team", "b"], "name one scope at a time, got --user, --team"),
        (["reset", "daily", "--key", "k", "--model", "m"], "name one scope at a time"),
        (["status", "--tag", ""], "--tag needs a non-empty name"),
        (["records", "--team", "eng", "--model", ""], "--model needs a non-empty name"),
        (["report", "--user", ""], "--user needs a non-empty name"),
        (["budgets", "rm", "--default-for", "user", "--user", "bob"], "name no scope with it"),
        (["budgets", "set", "--default-for", "planet", "--daily", "1"], "a default budget is for"),
        (["records", "--since", "last tuesday"], "'last tuesday' is not a date"),
        (["audit", "--until", "soon"], "'soon' is not a date"),
    ],
)
def test_a_groups_rules_are_usage_errors(argv: list[str], message: str) -> None:
    result = cli(*argv)
    assert result.exit_code == 2, result.output
    assert message in result.stderr


def test_record_filters_combine_and_budgets_take_a_default_scope() -> None:
    assert json.loads(cli("records", "--user", "a", "--team", "b", "--json").stdout) == []
    report = cli("report", "--user", "a", "--tag", "t", "--since", "7d", "--json")
    assert report.exit_code == 0, report.output
    assert json.loads(cli("status", "--team", "eng", "--json").stdout)["scope"] == "team:eng"


@dataclasses.dataclass(frozen=True)
class _Pair(OptionGroup):
    left: Annotated[int, typer.Option("--left", help="The left one.")] = 1
    right: Annotated[int, typer.Option("--right", help="The right one.")] = 2


def test_a_command_gets_its_groups_built_from_the_parsed_options() -> None:
    seen: list[object] = []
    toy = typer.Typer()

    @toy.command()
    @option_groups
    def pick(first: str, pair: _Pair, names: ScopeNames, last: bool = False) -> None:
        seen.append((first, pair, names, last))

    result = CliRunner().invoke(toy, ["x", "--right", "5", "--key", "k1", "--last"])
    assert result.exit_code == 0, result.output
    assert seen == [("x", _Pair(1, 5), ScopeNames(key="k1"), True)]
    help_text = CliRunner().invoke(toy, ["--help"], env={"COLUMNS": "200"}).stdout
    assert re.findall(r"(--[\w-]+)", help_text)[:8] == [
        "--left",
        "--right",
        *SCOPE_FLAGS,
        "--last",
    ]
