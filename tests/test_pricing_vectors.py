"""Peers' public cost test cases and hand-worked ones, table-driven (tests/data/cost_vectors.json).

The peers are LiteLLM (its cost-calculation tests), genai-prices (its Python tests and README)
and tokencost; each vector names the repository, file and test it was transcribed from. Each
is checked up to four ways, all to the nano-dollar against the peer's expected figure:

* our catalogue, unless the peer's price data differs from the genai-prices snapshot (the
  vector then says why, in ``catalogue_reason``);
* genai-prices' own ``calc_price`` on the same usage, for the same catalogue vectors;
* the same price written as a costwarden custom entry (so the peer's own price table is
  checked against our arithmetic even where the catalogue prices the model differently);
* that custom table handed to genai-prices' ``ModelPrice.calc_price``, for the vectors priced
  at the standard rates (no batch, service tier or dated change).
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from genai_prices import Usage as GenaiUsage
from genai_prices import calc_price
from genai_prices.types import ModelPrice, Tier, TieredPrices

from costwarden.clients.usage import anthropic_usage, openai_chat_usage, openai_responses_usage
from costwarden.money import decimal_to_nanos
from costwarden.pricing import PriceCatalog
from costwarden.pricing.custom import TieredRate, parse_entry
from costwarden.records import Usage

VECTORS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "data" / "cost_vectors.json").read_text()
)["vectors"]
PARSERS = {
    "anthropic": anthropic_usage,
    "openai_chat": openai_chat_usage,
    "openai_responses": openai_responses_usage,
}
_GENAI_NAMES = {"reasoning_tokens": "output_reasoning_tokens"}
_ON_CATALOGUE = [v for v in VECTORS if v.get("catalogue", True) is not False]
_STANDARD_CONTEXT = [
    v
    for v in VECTORS
    if not v.get("batch") and not v.get("service_tier") and "changes" not in v["custom"]
]


def _usage(vector: dict[str, Any]) -> Usage:
    if "parser" in vector:
        return PARSERS[vector["parser"]](vector["body"])
    return Usage(**vector["usage"])


def _genai_usage(vector: dict[str, Any]) -> GenaiUsage:
    usage = _usage(vector)
    counts = {
        _GENAI_NAMES.get(name, name): getattr(usage, name)
        for name in usage.__dataclass_fields__
        if getattr(usage, name)
    }
    return GenaiUsage(**counts)


def _when(vector: dict[str, Any]) -> datetime | None:
    return datetime.fromisoformat(vector["when"]) if "when" in vector else None


def _expected_nanos(vector: dict[str, Any]) -> int:
    return decimal_to_nanos(Decimal(vector["expected_usd"]))


def _cost(catalog: PriceCatalog, vector: dict[str, Any]) -> int:
    return catalog.cost_nanos(
        vector["model"],
        _usage(vector),
        when=_when(vector),
        batch=vector.get("batch", False),
        service_tier=vector.get("service_tier"),
    )


def _counts(usage: Usage) -> dict[str, int]:
    return {name: getattr(usage, name) for name in usage.__dataclass_fields__}


def _ids(vectors: list[dict[str, Any]]) -> list[str]:
    return [v["id"] for v in vectors]


def test_the_vectors_cover_every_rate() -> None:
    used = {k for v in VECTORS for k in _usage(v).__dataclass_fields__ if getattr(_usage(v), k)}
    assert used >= {
        "cache_read_tokens",
        "cache_write_tokens",
        "cache_write_1h_tokens",
        "reasoning_tokens",
        "input_audio_tokens",
        "cache_audio_read_tokens",
        "output_audio_tokens",
        "web_searches",
    }
    assert any(v.get("batch") for v in VECTORS)
    assert {v.get("service_tier") for v in VECTORS} >= {"flex", "priority"}
    assert {v["source"]["package"] for v in VECTORS} >= {"genai-prices", "litellm", "tokencost"}


def test_the_peers_own_cases_cover_cache_tiers_reasoning_and_audio() -> None:
    """Issue #13: the peers' repository tests, not only hand-worked cases, cover each area."""
    peers = [v for v in VECTORS if v["source"]["package"] in {"litellm", "genai-prices"}]
    for package in ("litellm", "genai-prices"):
        mine = [v for v in peers if v["source"]["package"] == package]
        used = {k for v in mine for k, n in _counts(_usage(v)).items() if n}
        assert used >= {
            "cache_read_tokens",
            "cache_write_tokens",
            "cache_write_1h_tokens",
            "reasoning_tokens",
            "input_audio_tokens",
            "output_audio_tokens",
        }, package
        above_a_tier = [
            v
            for v in mine
            if any(
                _usage(v).input_tokens > tier["above"]
                for tier in v["custom"].get("long_context", [])
            )
        ]
        assert len(above_a_tier) >= 5, package
    assert Counter(v["source"]["package"] for v in peers)["litellm"] >= 25


def test_every_vector_says_where_it_came_from() -> None:
    assert len(set(_ids(VECTORS))) == len(VECTORS)
    for vector in VECTORS:
        source = vector["source"]
        assert source["file"] and source["test"], vector["id"]
        if source["package"] in {"litellm", "genai-prices"} and "repo" in source:
            assert source["version"].startswith("git "), vector["id"]
        if vector.get("catalogue", True) is False:
            assert vector.get("catalogue_reason"), vector["id"]
        assert set(vector) <= {
            *("id", "source", "model", "catalogue", "catalogue_reason", "usage", "parser"),
            *("body", "when", "batch", "service_tier", "expected_usd", "hand", "custom"),
            "model_price_refuses",
        }, vector["id"]


@pytest.mark.parametrize("vector", _ON_CATALOGUE, ids=_ids(_ON_CATALOGUE))
def test_catalogue_matches_the_vector(vector: dict[str, Any]) -> None:
    assert _cost(PriceCatalog(), vector) == _expected_nanos(vector)


@pytest.mark.parametrize("vector", _ON_CATALOGUE, ids=_ids(_ON_CATALOGUE))
def test_genai_prices_agrees(vector: dict[str, Any]) -> None:
    """Cross-check of the expected figures against genai-prices' own calc_price, for the model
    our catalogue resolved the name to (genai-prices does not read LiteLLM-style names such as
    ``bedrock_mantle/openai.gpt-5.5``)."""
    price = PriceCatalog().resolve(vector["model"])
    context: dict[str, str] = {}
    if vector.get("batch"):
        context["processing"] = "batch"
    if vector.get("service_tier"):
        context["service_tier"] = vector["service_tier"]
    result = calc_price(
        _genai_usage(vector),
        price.model,
        provider_id=price.provider,
        genai_request_timestamp=_when(vector),
        price_context=context or None,
    )
    assert decimal_to_nanos(result.total_price) == _expected_nanos(vector)


@pytest.mark.parametrize("vector", VECTORS, ids=_ids(VECTORS))
def test_custom_price_expresses_the_vector(vector: dict[str, Any]) -> None:
    catalog = PriceCatalog({vector["model"]: vector["custom"]}, include_defaults=False)
    assert _cost(catalog, vector) == _expected_nanos(vector)


@pytest.mark.parametrize("vector", _STANDARD_CONTEXT, ids=_ids(_STANDARD_CONTEXT))
def test_genai_prices_agrees_on_the_custom_table(vector: dict[str, Any]) -> None:
    """The peer's price table, as genai-prices' ModelPrice, gives the peer's figure too."""
    if "model_price_refuses" in vector:
        pytest.skip(vector["model_price_refuses"])
    keys = parse_entry(vector["model"], vector["custom"]).standard.price_keys()
    model_price = ModelPrice(
        **{
            key: (
                TieredPrices(
                    base=value.base, tiers=[Tier(start=t.start, price=t.price) for t in value.tiers]
                )
                if isinstance(value, TieredRate)
                else value
            )
            for key, value in keys.items()
        }
    )
    result = model_price.calc_price(_genai_usage(vector))
    assert decimal_to_nanos(result["total_price"]) == _expected_nanos(vector)


def test_docs_state_the_counts() -> None:
    """docs/pricing.md says how many vectors come from where; keep it true."""
    text = " ".join((Path(__file__).parents[1] / "docs" / "pricing.md").read_text().split())
    per = Counter(v["source"]["package"] for v in VECTORS)
    assert f"holds {len(VECTORS)} cost vectors" in text
    assert f"{per['litellm']} from LiteLLM's" in text
    assert f"{per['genai-prices']} from genai-prices" in text
    assert f"{per['tokencost']} from tokencost and {per['costwarden']} worked by hand" in text
    assert f"the snapshot's ({len(_ON_CATALOGUE)};" in text
