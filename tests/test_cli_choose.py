"""``costwarden estimate``, ``select`` and the ``prices`` listing, through the real CLI.

Expected figures are worked out by hand from the catalogue's rates (USD per 1M tokens) and
cross-checked with ``PriceCatalog().cost_nanos``; the optimizer's pick is cross-checked with
``CostOptimizer().select`` so the CLI is seen to print the library's answer, not its own.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from costwarden.cli.app import app
from costwarden.clients.providers import credentialed_providers
from costwarden.optimizer import CostOptimizer
from costwarden.pricing import PriceCatalog
from costwarden.records import Usage

HELLO = "Hello, world! How are you today?"  # 9 tokens in o200k_base (tests/test_cli.py)
CONFIG = """
ledger = "sqlite:///ledger.db"
[prices]
"my-llm" = { input = 0.2, output = 0.6 }
"""
CREDENTIALS = (
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "GROQ_API_KEY",
    "TOGETHER_API_KEY",
    "OPENROUTER_API_KEY",
    "VLLM_API_KEY",
)


def cli(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(app, list(args), input=input)


def as_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder with a costwarden.toml (one custom price) and no provider credentials set."""
    monkeypatch.chdir(tmp_path)
    for name in ("COSTWARDEN_CONFIG", "COSTWARDEN_LEDGER", *CREDENTIALS):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    (tmp_path / "costwarden.toml").write_text(CONFIG)
    yield tmp_path
    # None of these commands writes anything: no ledger appears, whatever was asked.
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "t.txt") == ["costwarden.toml"]


def nanos(model: str, n_in: int, n_out: int, provider: str | None = None) -> int:
    return PriceCatalog().cost_nanos(
        model, Usage(input_tokens=n_in, output_tokens=n_out), provider=provider
    )


# -- estimate ------------------------------------------------------------------------------------
def test_estimate_prices_named_models_exactly_cheapest_first(workdir: Path) -> None:
    doc = as_json(
        cli(
            "estimate",
            "-m",
            "gpt-4o",
            "-m",
            "claude-3-haiku",
            "--max-tokens",
            "100",
            HELLO,
            "--json",
        )
    )
    assert (doc["max_tokens"], doc["characters"]) == (100, len(HELLO))
    first, second = doc["estimates"]
    # claude-3-haiku: $0.25 / $1.25 per 1M; no offline tokenizer, so an estimate (11 tokens).
    assert (first["model"], first["provider"], first["tokens_exact"]) == (
        "claude-3-haiku",
        "anthropic",
        False,
    )
    assert first["input_tokens"] == 11 and first["token_method"].startswith("estimate:")
    assert first["cost_nanos"] == 11 * 250 + 100 * 1250 == nanos("claude-3-haiku", 11, 100)
    assert first["cost_usd"] == "0.000127750"
    # gpt-4o: $2.50 / $10 per 1M, 9 tokens exact: 9 x 2.5 + 100 x 10 = $0.0010225 per 1M calls.
    assert (second["model"], second["input_tokens"], second["tokens_exact"]) == ("gpt-4o", 9, True)
    assert second["token_method"] == "tiktoken:o200k_base"
    assert second["cost_nanos"] == 9 * 2500 + 100 * 10_000 == nanos("gpt-4o", 9, 100)
    assert second["cost_usd"] == "0.001022500"
    assert second["output_tokens"] == 100

    table = cli("estimate", "-m", "gpt-4o", "-m", "claude-3-haiku", "--max-tokens", "100", HELLO)
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    haiku = next(i for i, line in enumerate(lines) if "claude-3-haiku" in line)
    gpt = next(i for i, line in enumerate(lines) if "gpt-4o" in line)
    assert haiku < gpt  # cheapest first
    assert "estimate (estimate:" in lines[haiku] and "exact (tiktoken:o200k_base)" in lines[gpt]
    assert "$0.00013" in lines[haiku] and "$0.00102" in lines[gpt]
    assert "Candidates: the models named." in table.stdout


def test_estimate_reads_a_file_or_stdin_and_custom_prices(workdir: Path) -> None:
    (workdir / "t.txt").write_text(HELLO)
    from_file = as_json(cli("estimate", "-m", "gpt-4o", "--file", "t.txt", "--json"))
    assert from_file["estimates"][0]["input_tokens"] == 9
    # The default output bound is the tracked client's default max_tokens, 1024.
    assert from_file["max_tokens"] == 1024
    assert from_file["estimates"][0]["cost_nanos"] == nanos("gpt-4o", 9, 1024)
    piped = as_json(cli("estimate", "-m", "gpt-4o", "-f", "-", "--json", input=HELLO))
    assert piped["estimates"] == from_file["estimates"]
    custom = as_json(cli("estimate", "-m", "my-llm", "--max-tokens", "0", HELLO, "--json"))
    row = custom["estimates"][0]
    assert row["price_source"] == "custom"
    assert row["cost_nanos"] == row["input_tokens"] * 200  # $0.20 per 1M input tokens


def test_estimate_bad_input_exits_non_zero_and_prints_nothing(workdir: Path) -> None:
    unknown = cli("estimate", "-m", "gpt-4o", "-m", "gpt-4oo", HELLO)
    assert unknown.exit_code == 1 and unknown.stdout == ""  # no partial comparison
    assert "'gpt-4oo'" in unknown.stderr and "Did you mean: gpt-4o" in unknown.stderr
    assert "Traceback" not in unknown.output
    two = cli("estimate", "-m", "gpt-4oo", "-m", "claude-3-haikoo", HELLO)
    assert two.exit_code == 1 and "gpt-4oo" in two.stderr and "claude-3-haikoo" in two.stderr
    assert cli("estimate", "-m", "gpt-4o").exit_code == 2  # neither TEXT nor --file
    (workdir / "t.txt").write_text(HELLO)
    assert cli("estimate", "-m", "gpt-4o", HELLO, "--file", "t.txt").exit_code == 2
    assert cli("estimate", "-m", "gpt-4o", "--max-tokens", "-1", HELLO).exit_code == 2
    missing = cli("estimate", "-m", "gpt-4o", "--file", "nope.txt")
    assert missing.exit_code == 1 and "nope.txt" in missing.stderr


def test_estimate_default_candidates_follow_the_credentials(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    handful = as_json(cli("estimate", HELLO, "--json"))
    assert "no provider credentials set" in handful["candidates"]
    providers = {e["provider"] for e in handful["estimates"]}
    assert {"openai", "anthropic", "google"} <= providers
    # A handful: at most two a provider (its cheapest and its best for chat).
    assert len(handful["estimates"]) <= 2 * len(providers)
    costs = [e["cost_nanos"] for e in handful["estimates"]]
    assert costs == sorted(costs)

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-used")
    served = as_json(cli("estimate", HELLO, "--json"))
    expected = {c.name for c in CostOptimizer().candidates if "openai" in c.served_by}
    assert {e["model"] for e in served["estimates"]} == expected
    assert {e["provider"] for e in served["estimates"]} == {"openai"}
    assert "served by openai (credentials set)" in served["candidates"]


def test_estimate_table_never_cuts_a_model_name(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    long = "groq/meta-llama/llama-4-maverick-17b-128e-instruct"
    result = cli("estimate", "-m", long, HELLO)
    assert result.exit_code == 0, result.output
    assert "…" not in result.stdout
    cells = "".join(
        line.split("│")[1].strip() for line in result.stdout.splitlines() if "│" in line
    )
    assert long in cells


# -- select --------------------------------------------------------------------------------------
def test_select_prints_the_optimizer_choice_with_exact_cost(workdir: Path) -> None:
    doc = as_json(cli("select", "classification", "--max-cost", "0.01", "-p", "openai", "--json"))
    library = CostOptimizer().select("classification", 0.01, providers=["openai"])
    assert (doc["model"], doc["provider"], doc["score"]) == (
        library.model,
        "openai",
        library.score,
    )
    # gpt-5-nano at $0.05 / $0.40 per 1M, for classification's 500 in + 10 out tokens.
    assert doc["model"] == "gpt-5-nano"
    assert doc["cost_nanos"] == 500 * 50 + 10 * 400 == nanos("gpt-5-nano", 500, 10)
    assert doc["cost_usd"] == "0.000029000"
    assert (doc["input_tokens"], doc["output_tokens"]) == (500, 10)
    assert doc["required_score"] == library.required_score and doc["max_cost_usd"] == "0.010000000"
    runners = doc["runners_up"]
    assert 0 < len(runners) <= 5 and doc["model"] not in {r["model"] for r in runners}
    assert [r["cost_nanos"] for r in runners] == sorted(r["cost_nanos"] for r in runners)
    for r in runners:
        assert "openai" in r["providers"] and r["score"] >= doc["required_score"]
        assert doc["cost_nanos"] <= r["cost_nanos"] <= 10_000_000

    text = cli("select", "classification", "--max-cost", "0.01", "-p", "openai", "-n", "2")
    assert text.exit_code == 0, text.output
    assert "Choice:    gpt-5-nano (openai) for classification" in text.stdout
    assert "$0.000029 per request" in text.stdout and "500 input + 10 output tokens" in text.stdout
    assert f"Quality:   {library.score} for classification" in text.stdout
    assert runners[0]["model"] in text.stdout and runners[2]["model"] not in text.stdout


def test_select_with_given_token_counts(workdir: Path) -> None:
    args = ("select", "summarization", "--max-cost", "1", "-p", "anthropic", "--json")
    doc = as_json(cli(*args, "--input-tokens", "1000", "--max-tokens", "200"))
    # claude-3-haiku: 1000 x $0.25 + 200 x $1.25 per 1M = $0.0005.
    assert (doc["model"], doc["provider"]) == ("claude-3-haiku", "anthropic")
    assert doc["cost_nanos"] == 1000 * 250 + 200 * 1250 == nanos("claude-3-haiku", 1000, 200)
    assert (doc["input_tokens"], doc["output_tokens"]) == (1000, 200)
    higher = as_json(cli(*args, "--quality", "90"))
    assert higher["score"] >= 90 and higher["required_score"] == 90


def test_select_defaults_to_the_providers_with_credentials(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    none = cli("select", "chat", "--max-cost", "0.01")
    assert none.exit_code == 1 and none.stdout == ""
    assert "no provider credentials are set" in none.stderr and "--provider" in none.stderr
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-not-used")
    doc = as_json(cli("select", "chat", "--max-cost", "0.01", "--json"))
    assert doc["provider"] == "anthropic" and doc["providers"] == ["anthropic"]
    assert doc["providers_from"] == "credentials set: anthropic (ANTHROPIC_API_KEY)"
    assert doc["model"] == CostOptimizer().select("chat", 0.01, providers=["anthropic"]).model


def test_select_failures_exit_1_with_the_optimizer_message(workdir: Path) -> None:
    nothing = cli("select", "code", "--max-cost", "0.0001", "-p", "anthropic", "--quality", "high")
    assert nothing.exit_code == 1 and nothing.stdout == ""
    assert "No model meets quality 'high'" in nothing.stderr
    assert "Cheapest model meeting the quality:" in nothing.stderr
    assert "providers: anthropic" in nothing.stderr
    misspelt = cli("select", "chat", "--max-cost", "0.01", "-p", "opnai")
    assert misspelt.exit_code == 1 and "Did you mean: openai?" in misspelt.stderr
    task = cli("select", "nosuchtask", "--max-cost", "0.01", "-p", "openai")
    assert task.exit_code == 1 and "unknown task_type 'nosuchtask'" in task.stderr
    negative = cli("select", "chat", "--max-cost", "-1", "-p", "openai")
    assert negative.exit_code == 1 and "max_cost must not be negative" in negative.stderr
    assert cli("select", "chat", "-p", "openai").exit_code == 2  # --max-cost is required
    for result in (nothing, misspelt, task, negative):
        assert "Traceback" not in result.output


def test_credentialed_providers_reads_the_given_environment() -> None:
    assert credentialed_providers({}) == {}
    env = {"OPENAI_API_KEY": "x", "GROQ_API_KEY": "y", "ANTHROPIC_AUTH_TOKEN": "z"}
    assert credentialed_providers(env) == {
        "openai": "OPENAI_API_KEY",
        "groq": "GROQ_API_KEY",
        "anthropic": "ANTHROPIC_AUTH_TOKEN",
    }
    assert credentialed_providers({"OPENAI_API_KEY": ""}) == {}  # set but empty: not a key


# -- prices listing ------------------------------------------------------------------------------
def test_prices_search_by_provider_with_rates(workdir: Path) -> None:
    doc = as_json(cli("prices", "--search", "gpt-4o", "--provider", "openai", "-n", "3", "--json"))
    rows = doc["prices"]
    assert len(rows) == 3 and doc["matched"] > 3 and doc["near_names"] is False
    first = rows[0]  # the exact id first
    assert (first["model"], first["provider"], first["source"]) == (
        "gpt-4o",
        "openai",
        "genai-prices",
    )
    assert (first["input_per_1m"], first["output_per_1m"], first["cache_read_per_1m"]) == (
        "2.5",
        "10",
        "1.25",
    )
    assert all("gpt-4o" in r["model"] and r["provider"] == "openai" for r in rows)
    loose = as_json(cli("prices", "-s", "Haiku Claude", "-p", "anthropic", "--json"))
    haiku = {r["model"]: r for r in loose["prices"]}["claude-3-haiku"]
    assert (haiku["input_per_1m"], haiku["output_per_1m"]) == ("0.25", "1.25")
    price = PriceCatalog().resolve("claude-3-haiku", "anthropic")
    assert (str(price.input), str(price.output)) == ("0.25", "1.25")

    table = cli("prices", "--search", "gpt-4o", "--provider", "openai", "--limit", "3")
    assert table.exit_code == 0, table.output
    assert "Cache rd" in table.stdout and "$2.50" in table.stdout and "$1.25" in table.stdout
    assert f"{doc['matched'] - 3} more: raise --limit" in table.stdout


def test_prices_listing_custom_fuzzy_and_limit(workdir: Path) -> None:
    custom = as_json(cli("prices", "--search", "my-llm", "--json"))
    assert [(r["model"], r["source"], r["input_per_1m"]) for r in custom["prices"]] == [
        ("my-llm", "custom", "0.2")
    ]
    near = as_json(cli("prices", "-s", "gpt4oo", "--json"))
    assert near["near_names"] is True and "gpt-4o" in {r["model"] for r in near["prices"]}
    assert "No model id contains 'gpt4oo'" in cli("prices", "-s", "gpt4oo").stdout
    listed = as_json(cli("prices", "--limit", "2", "--json"))
    assert len(listed["prices"]) == 2 and listed["matched"] > 1000
    by_provider = as_json(cli("prices", "--provider", "anthropic", "-n", "500", "--json"))
    assert by_provider["prices"] and {r["provider"] for r in by_provider["prices"]} == {"anthropic"}


def test_prices_listing_bad_input(workdir: Path) -> None:
    none = cli("prices", "--search", "zzzzqqqxx")
    assert none.exit_code == 1 and none.stdout == ""
    assert "no priced model matching 'zzzzqqqxx'" in none.stderr
    assert cli("prices", "gpt-4o", "--search", "gpt").exit_code == 2
    assert cli("prices", "--limit", "0").exit_code == 2
    assert cli("prices", "-p", "no-such-provider").exit_code == 1
    # Named models still work as before, alongside the listing.
    assert as_json(cli("prices", "gpt-4o", "--json"))["prices"][0]["input_per_1m"] == "2.5"
