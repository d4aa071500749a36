"""Custom prices as rich as the catalogue: long context, reasoning, 1-hour cache writes, audio,
web searches, per-request fees, batch, service tiers and dated changes, from a dict, TOML,
JSON, YAML or the config file's [prices]. Figures worked by hand (USD per 1M tokens)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from costwarden.budget import Budget
from costwarden.errors import ConfigurationError, InvalidInputError, NoTierPriceError
from costwarden.manager import BudgetManager
from costwarden.pricing import PriceCatalog
from costwarden.records import Usage, UsageRecord

RICH: dict[str, Any] = {
    "input": 3,
    "output": 15,
    "cache_read": 0.3,
    "cache_write": 3.75,
    "cache_write_1h": 6,
    "reasoning": 20,
    "input_audio": 10,
    "cache_audio_read": 1,
    "output_audio": 40,
    "web_searches_per_1k": 10,
    "long_context": [{"above": 200_000, "input": 6, "output": 22.5}],
    "batch": {"input": 1.5, "output": 7.5},
    "service_tiers": {"flex": {"input": 1.5}, "priority": {"input": 6, "output": 30}},
    "changes": [{"from": "2027-01-01", "input": 2}],
}
WHEN = datetime(2026, 11, 28, 12, tzinfo=UTC)


def catalog(entry: dict[str, Any] = RICH) -> PriceCatalog:
    return PriceCatalog({"mine": entry}, include_defaults=False)


def test_every_rate_is_its_own() -> None:
    c = catalog({**RICH, "requests_per_1k": 5})
    usage = Usage(
        10_000,
        2_000,
        cache_read_tokens=3_000,
        cache_write_tokens=1_000,
        reasoning_tokens=500,
        cache_write_1h_tokens=400,
        input_audio_tokens=2_000,
        cache_audio_read_tokens=1_000,
        output_audio_tokens=300,
        web_searches=2,
    )
    # text in 10000-3000-1000-2000+1000 = 5000 x 3; cached text 2000 x 0.3; cached audio
    # 1000 x 1; audio in 1000 x 10; 5m writes 600 x 3.75; 1h writes 400 x 6; text out
    # 2000-500-300 = 1200 x 15; reasoning 500 x 20; audio out 300 x 40; 2 searches x $10/1k;
    # one request x $5/1k.
    expected = (
        (15_000 + 600 + 1_000 + 10_000 + 2_250 + 2_400 + 18_000 + 10_000 + 12_000) * 1_000
        + 20_000_000
        + 5_000_000
    )
    assert c.cost_nanos("mine", usage, when=WHEN) == expected


def test_long_context_applies_to_the_whole_request() -> None:
    c = catalog()
    at = c.cost_nanos("mine", Usage(200_000, 1_000), when=WHEN)
    above = c.cost_nanos("mine", Usage(200_001, 1_000), when=WHEN)
    assert at == 200_000 * 3_000 + 1_000 * 15_000
    assert above == 200_001 * 6_000 + 1_000 * 22_500
    assert c.resolve("mine").long_context_threshold == 200_000


def test_batch_and_service_tiers_override_what_they_name() -> None:
    c = catalog()
    usage = Usage(1_000, 1_000)
    assert c.cost_nanos("mine", usage, when=WHEN, batch=True) == 1_500_000 + 7_500_000
    assert c.cost_nanos("mine", usage, when=WHEN, service_tier="flex") == 1_500_000 + 15_000_000
    assert c.cost_nanos("mine", usage, when=WHEN, service_tier="PRIORITY") == 36_000_000
    assert c.cost_nanos("mine", usage, when=WHEN, service_tier="batch") == 9_000_000
    for standard in ("default", "auto", "standard"):
        assert c.cost_nanos("mine", usage, when=WHEN, service_tier=standard) == 18_000_000


def test_batch_without_a_batch_rate_is_an_error() -> None:
    c = PriceCatalog({"plain": {"input": 1, "output": 2}}, include_defaults=False)
    with pytest.raises(NoTierPriceError, match="no batch rates"):
        c.cost_nanos("plain", Usage(10, 10), batch=True)
    with pytest.raises(NoTierPriceError, match="service tier 'flex'"):
        c.cost_nanos("plain", Usage(10, 10), service_tier="flex")
    with pytest.raises(NoTierPriceError, match="prices: flex, priority"):
        catalog().cost_nanos("mine", Usage(10, 10), service_tier="scale")


def test_prices_change_on_their_date() -> None:
    c = catalog()
    usage = Usage(1_000, 0)
    assert c.cost_nanos("mine", usage, when=datetime(2026, 12, 31, 23, 59, tzinfo=UTC)) == 3_000_000
    assert c.cost_nanos("mine", usage, when=datetime(2027, 1, 1, tzinfo=UTC)) == 2_000_000
    # the batch table applies on top of the dated rates
    assert c.cost_nanos("mine", usage, when=datetime(2027, 1, 1, tzinfo=UTC), batch=True) == (
        1_500_000
    )


def test_a_variant_may_tier_a_rate_it_does_not_restate() -> None:
    """A service tier, batch or dated change that gives only long-context tiers keeps the
    standard rate below the threshold (this used to raise KeyError at pricing time)."""
    c = catalog(
        {
            "input": 2,
            "output": 12,
            "cache_read": 0.2,
            "long_context": [{"above": 200_000, "input": 4, "output": 18, "cache_read": 0.4}],
            "batch": {"output": 6, "long_context": [{"above": 200_000, "input": 2}]},
            "service_tiers": {
                "priority": {
                    "long_context": [
                        {"above": 200_000, "input": 7.2, "output": 32.4, "cache_read": 0.72}
                    ]
                }
            },
            "changes": [{"from": "2027-01-01", "long_context": [{"above": 200_000, "input": 5}]}],
        }
    )
    long, short = Usage(250_000, 1_000, cache_read_tokens=200_000), Usage(1_000, 1_000)
    assert c.cost_nanos("mine", long, when=WHEN, service_tier="priority") == (
        50_000 * 7_200 + 200_000 * 720 + 1_000 * 32_400
    )
    assert c.cost_nanos("mine", short, when=WHEN, service_tier="priority") == 14_000_000
    # batch: input tiered over the standard $2 (its own tier $2), output flat $6, cache read
    # keeps the standard tiers
    assert c.cost_nanos("mine", long, when=WHEN, batch=True) == (
        50_000 * 2_000 + 200_000 * 400 + 1_000 * 6_000
    )
    after = datetime(2027, 1, 1, tzinfo=UTC)
    assert c.cost_nanos("mine", long, when=after) == (
        50_000 * 5_000 + 200_000 * 400 + 1_000 * 18_000
    )
    assert c.cost_nanos("mine", short, when=after) == 2_000_000 + 12_000_000


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"batch": {"input_audio": 2}},
        {"service_tiers": {"flex": {"input_audio": 2}}},
        {"changes": [{"from": "2027-01-01", "input_audio": 2}]},
    ],
)
def test_cache_reads_and_audio_need_a_cached_audio_rate(change: dict[str, Any]) -> None:
    """Without a cache_audio_read rate, cached audio would pay cache_read + input_audio -
    input: here $1 + $2 - $10 = -$7 per 1M tokens. genai-prices refuses such a price; so does
    costwarden, when the entry is loaded."""
    entry = {"input": 10, "output": 0, "cache_read": 1, **change}
    if not change:
        entry["input_audio"] = 2
    with pytest.raises(InvalidInputError, match="but not 'cache_audio_read'"):
        PriceCatalog({"m": entry})
    fixed = PriceCatalog({"m": {**entry, "cache_audio_read": 0.5}}, include_defaults=False)
    cached_audio = Usage(
        1_000, 0, cache_read_tokens=1_000, input_audio_tokens=1_000, cache_audio_read_tokens=1_000
    )
    assert fixed.cost_nanos("m", cached_audio) == 500_000


def test_brief_style_still_works() -> None:
    c = PriceCatalog({"gpt-4o": {"input": 2.50, "output": 10.00}})
    assert c.cost_nanos("gpt-4o", Usage(1_000, 1_000)) == 12_500_000
    assert c.resolve("gpt-4o").source == "custom"


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"long_context": {"above": 1}}, "must be a list of tiers"),
        ({"long_context": [{"input": 1}]}, "needs 'above'"),
        ({"long_context": [{"above": 10, "input": 1}, {"above": 5, "input": 2}]}, "ascending"),
        ({"long_context": [{"above": 10}]}, "names no rate"),
        ({"long_context": [{"above": 10, "cache_read": 1}]}, "does not price"),
        ({"long_context": [{"above": 10, "ouput": 1}]}, "unknown key(s) ouput"),
        ({"batch": {"inptu": 1}}, "unknown key(s) inptu"),
        ({"batch": {}}, "names no rate"),
        ({"batch": {"input": -1}}, "must not be negative"),
        ({"service_tiers": {"default": {"input": 1}}}, "non-standard tier"),
        ({"service_tiers": {"batch": {"input": 1}}}, "batch has its own key"),
        ({"service_tiers": [1]}, "must be a table"),
        ({"changes": [{"input": 1}]}, "needs 'from'"),
        ({"changes": [{"from": "soon", "input": 1}]}, "needs 'from'"),
        ({"changes": {"from": "2027-01-01"}}, "must be a list"),
        (
            {"changes": [{"from": "2027-02-01", "input": 1}, {"from": "2027-01-01", "input": 2}]},
            "ascending",
        ),
        ({"web_searches_per_1k": "ten"}, "not a number"),
    ],
)
def test_invalid_rich_entries_are_refused(change: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InvalidInputError) as err:
        PriceCatalog({"m": {"input": 1, "output": 2, **change}})
    assert fragment in str(err.value)


TOML = """
[models.mine]
input = 3
output = 15
cache_write_1h = 6
cache_write = 3.75

[[models.mine.long_context]]
above = 200000
input = 6
output = 22.5

[models.mine.batch]
input = 1.5
output = 7.5

[models.mine.service_tiers.flex]
input = 1.5

[[models.mine.changes]]
from = 2027-01-01
input = 2
"""


def _same_as_dict(c: PriceCatalog) -> None:
    usage = Usage(250_000, 1_000, cache_write_tokens=1_000, cache_write_1h_tokens=500)
    assert c.cost_nanos("mine", usage, when=WHEN) == (
        # long context: only input and output are tiered; the writes keep their rates
        249_000 * 6_000 + 500 * 3_750 + 500 * 6_000 + 1_000 * 22_500
    )
    assert c.cost_nanos("mine", Usage(1_000, 1_000), when=WHEN, batch=True) == 9_000_000
    assert c.cost_nanos("mine", Usage(1_000, 0), when=WHEN, service_tier="flex") == 1_500_000
    assert c.cost_nanos("mine", Usage(1_000, 0), when=datetime(2027, 3, 1, tzinfo=UTC)) == (
        2_000_000
    )


def test_toml_json_yaml_files_carry_everything(tmp_path: Path) -> None:
    import tomllib

    import yaml

    toml_file = tmp_path / "prices.toml"
    toml_file.write_text(TOML)
    _same_as_dict(PriceCatalog(toml_file, include_defaults=False))
    data = tomllib.loads(TOML)
    data["models"]["mine"]["changes"][0]["from"] = "2027-01-01"
    json_file = tmp_path / "prices.json"
    json_file.write_text(json.dumps(data))
    _same_as_dict(PriceCatalog(json_file, include_defaults=False))
    data["models"]["mine"]["changes"][0]["from"] = date(2027, 1, 1)
    yaml_file = tmp_path / "prices.yaml"
    yaml_file.write_text(yaml.safe_dump(data))
    _same_as_dict(PriceCatalog(yaml_file, include_defaults=False))


def test_bad_rich_file_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "prices.toml"
    bad.write_text(TOML.replace("[models.mine.batch]\ninput = 1.5", "[models.mine.batch]\nin = 1"))
    with pytest.raises(ConfigurationError, match=r"prices\.toml.*batch.*unknown key\(s\) in"):
        PriceCatalog(bad)


def test_config_prices_section_takes_rich_entries(tmp_path: Path) -> None:
    from costwarden.config import load_config

    body = TOML.replace("[models.", "[prices.").replace("[[models.", "[[prices.")
    path = tmp_path / "costwarden.toml"
    path.write_text('ledger = "memory://"\n' + body)
    _same_as_dict(load_config(path).build_catalog())


def test_a_reported_tier_a_custom_price_lacks_is_recorded_at_standard_rates(
    caplog: pytest.LogCaptureFixture,
) -> None:
    m = BudgetManager(
        Budget(daily_limit=10.0, monthly_limit=None, per_request_limit=None),
        pricing=PriceCatalog({"plain": {"input": 1, "output": 2}}, include_defaults=False),
    )
    with caplog.at_level(logging.WARNING, logger="costwarden"):
        stored = m.record_spend(UsageRecord("plain", 1_000, 1_000, service_tier="priority"))
    assert stored.cost_nanos == 3_000_000
    assert "no service tier 'priority' rates" in caplog.text
    assert stored.price_source.startswith("catalogue:standard rates")
