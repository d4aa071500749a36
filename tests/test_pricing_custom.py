"""Custom price tables: dict and files, overrides, normalised names, validation."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from costwarden.errors import ConfigurationError, InvalidInputError, UnknownModelError
from costwarden.pricing import PriceCatalog
from costwarden.records import Usage

USAGE = Usage(input_tokens=10_000, output_tokens=2_000)


def test_dict_overrides_the_catalogue() -> None:
    catalog = PriceCatalog({"gpt-4o": {"input": 1.0, "output": "2", "cache_read": Decimal("0.5")}})
    price = catalog.resolve("gpt-4o")
    assert price.source == "custom"
    assert (price.input, price.output, price.cache_read) == (
        Decimal("1.0"),
        Decimal("2"),
        Decimal("0.5"),
    )
    # 10,000 in at $1/M + 2,000 out at $2/M = $0.01 + $0.004
    assert catalog.cost_nanos("gpt-4o", USAGE) == 14_000_000
    # the override also applies to a dated or prefixed spelling of the same name
    assert catalog.resolve("openai/gpt-4o").source == "custom"
    assert catalog.resolve("gpt-4o-2024-08-06").source == "custom"
    # other models still come from genai-prices
    assert catalog.resolve("gpt-4o-mini").source == "genai-prices"


def test_brief_style_float_prices_are_exact() -> None:
    catalog = PriceCatalog({"x": {"input": 0.15, "output": 0.6}}, include_defaults=False)
    assert catalog.cost_nanos("x", Usage(1_000_000, 1_000_000)) == 750_000_000
    assert catalog.cost_usd("x", Usage(1, 1)) == 0.00000075


def test_cache_rates_of_custom_entries() -> None:
    table = {"m": {"input": 4, "output": 8, "cache_read": 1, "cache_write": 5}}
    catalog = PriceCatalog(table, include_defaults=False)
    usage = Usage(1_000_000, 0, cache_read_tokens=500_000, cache_write_tokens=100_000)
    # 400k uncached at $4 + 500k reads at $1 + 100k writes at $5 = 1.6 + 0.5 + 0.5
    assert catalog.cost_nanos("m", usage) == 2_600_000_000
    # without a cache-read rate, cached tokens pay the input rate (never zero)
    plain = PriceCatalog({"m": {"input": 4, "output": 8}}, include_defaults=False)
    assert plain.cost_nanos("m", usage) == 4_000_000_000


def test_include_defaults_false_uses_only_custom() -> None:
    catalog = PriceCatalog({"local-llm": {"input": 0, "output": 0}}, include_defaults=False)
    assert catalog.cost_nanos("local-llm", USAGE) == 0  # explicitly free is fine
    with pytest.raises(UnknownModelError) as info:
        catalog.resolve("gpt-4o")
    assert info.value.suggestions == []
    assert catalog.models() == ["local-llm"]
    with pytest.raises(UnknownModelError) as info:
        catalog.resolve("local-lm")
    assert info.value.suggestions == ["local-llm"]


def test_custom_names_are_normalised() -> None:
    catalog = PriceCatalog({"My-Model": {"input": 1, "output": 1}}, include_defaults=False)
    for spelling in ("My-Model", "my-model", "acme/My-Model", "my-model-20250101", "MY-MODEL"):
        assert catalog.resolve(spelling).model == "My-Model", spelling


def test_provider_specific_custom_entry() -> None:
    catalog = PriceCatalog({"gpt-4o": {"input": 1, "output": 1, "provider": "Azure"}})
    assert catalog.resolve("gpt-4o", "azure").source == "custom"
    assert catalog.resolve("gpt-4o", "azure").provider == "azure"
    assert catalog.resolve("gpt-4o").source == "custom"
    assert catalog.resolve("gpt-4o", "openai").source == "genai-prices"


@pytest.mark.parametrize(
    ("table", "fragment"),
    [
        ({"m": {"input": -1, "output": 1}}, "'input' must not be negative"),
        ({"m": {"input": math.nan, "output": 1}}, "must be finite"),
        ({"m": {"input": 1, "output": math.inf}}, "must be finite"),
        ({"m": {"input": 1, "output": "Infinity"}}, "must be finite"),
        ({"m": {"input": 1}}, "missing key 'output'"),
        ({"m": {"output": 1}}, "missing key 'input'"),
        ({"m": {"input": 1, "ouput": 1}}, "unknown key(s) ouput"),
        ({"m": {"input": True, "output": 1}}, "'input' must be a number"),
        ({"m": {"input": "cheap", "output": 1}}, "'input' is not a number"),
        ({"m": {"input": [1], "output": 1}}, "'input' must be a number"),
        ({"m": 2.5}, "must be a table"),
        ({"m": {"input": 1, "output": 1, "provider": 3}}, "'provider' must be"),
        ({"": {"input": 1, "output": 1}}, "keys must be model names"),
        ([("m", {"input": 1})], "must be a mapping"),
    ],
)
def test_invalid_tables_are_rejected(table: Any, fragment: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        PriceCatalog(table)
    assert fragment in str(info.value)
    if isinstance(table, dict) and "m" in table:
        assert "'m'" in str(info.value)  # names the model


def test_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "prices.toml"
    path.write_text(
        '[models."gpt-4.1"]\ninput = 1.5\noutput = 6\n\n'
        '[models.my-llm]\ninput = "0.1"\noutput = 0.2\nprovider = "vllm"\n'
    )
    catalog = PriceCatalog(path)
    assert catalog.resolve("gpt-4.1").input == Decimal("1.5")
    assert catalog.resolve("my-llm").provider == "vllm"
    assert catalog.cost_nanos("my-llm", USAGE) == 1_000_000 + 400_000
    assert {"gpt-4.1", "my-llm", "gpt-4o"} <= set(catalog.models())


def test_json_and_yaml_files_top_level(tmp_path: Path) -> None:
    table = {"a-model": {"input": 2, "output": 3}}
    json_path = tmp_path / "prices.json"
    json_path.write_text(json.dumps(table))
    yaml_path = tmp_path / "prices.yml"
    yaml_path.write_text("models:\n  a-model:\n    input: 2\n    output: 3\n")
    for path in (json_path, str(yaml_path)):
        catalog = PriceCatalog(path, include_defaults=False)
        assert catalog.cost_nanos("a-model", USAGE) == 26_000_000


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("p.toml", "[models.m]\ninput = -2\noutput = 1\n", "must not be negative"),
        ("p.toml", "[models.m\ninput = 1", "not valid toml"),
        ("p.json", "{", "not valid json"),
        ("p.yaml", "m: [unclosed", "not valid YAML"),
        ("p.yaml", "- just\n- a list\n", "must be a mapping"),
        ("p.ini", "[m]", "must end in .toml"),
        ("p.json", '{"m": {"input": 1}}', "missing key 'output'"),
    ],
)
def test_invalid_files_name_the_file(
    tmp_path: Path, name: str, content: str, fragment: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ConfigurationError) as info:
        PriceCatalog(path)
    assert fragment in str(info.value)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read price file"):
        PriceCatalog(tmp_path / "nope.toml")
