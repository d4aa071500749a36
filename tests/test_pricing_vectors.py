"""Peers' public cost test cases and hand-worked ones, table-driven (tests/data/cost_vectors.json).

Each vector is checked three ways: our catalogue (unless its peer's price data differs from
the genai-prices snapshot), genai-prices' own ``calc_price`` on the same usage where it has the
model, and the same price written as a costwarden custom entry. All three must agree with the
expected figure to the nano-dollar.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from genai_prices import Usage as GenaiUsage
from genai_prices import calc_price

from costwarden.clients.usage import anthropic_usage, openai_chat_usage, openai_responses_usage
from costwarden.money import decimal_to_nanos
from costwarden.pricing import PriceCatalog
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


def _usage(vector: dict[str, Any]) -> Usage:
    if "parser" in vector:
        return PARSERS[vector["parser"]](vector["body"])
    return Usage(**vector["usage"])


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
    assert {v["source"]["package"] for v in VECTORS} >= {"genai-prices", "tokencost"}


@pytest.mark.parametrize("vector", VECTORS, ids=[v["id"] for v in VECTORS])
def test_catalogue_matches_the_vector(vector: dict[str, Any]) -> None:
    if vector.get("catalogue", True) is False:
        pytest.skip("the peer's price data differs from the genai-prices snapshot")
    assert _cost(PriceCatalog(), vector) == _expected_nanos(vector)


@pytest.mark.parametrize("vector", VECTORS, ids=[v["id"] for v in VECTORS])
def test_genai_prices_agrees(vector: dict[str, Any]) -> None:
    """Cross-check of the hand-worked figures against genai-prices' own calc_price."""
    if vector.get("catalogue", True) is False:
        pytest.skip("the peer's price data differs from the genai-prices snapshot")
    usage = _usage(vector)
    counts = {
        _GENAI_NAMES.get(name, name): getattr(usage, name)
        for name in usage.__dataclass_fields__
        if getattr(usage, name)
    }
    context: dict[str, str] = {}
    if vector.get("batch"):
        context["processing"] = "batch"
    if vector.get("service_tier"):
        context["service_tier"] = vector["service_tier"]
    result = calc_price(
        GenaiUsage(**counts),
        vector["model"],
        genai_request_timestamp=_when(vector),
        price_context=context or None,
    )
    assert decimal_to_nanos(result.total_price) == _expected_nanos(vector)


@pytest.mark.parametrize("vector", VECTORS, ids=[v["id"] for v in VECTORS])
def test_custom_price_expresses_the_vector(vector: dict[str, Any]) -> None:
    catalog = PriceCatalog({vector["model"]: vector["custom"]}, include_defaults=False)
    assert _cost(catalog, vector) == _expected_nanos(vector)
