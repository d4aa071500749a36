"""Every usage field the providers send is priced at its own rate or named as folded.

Walks the usage objects of the providers' documented wire shapes (a copy of the design
reference, tests/data/provider-usage-wire-shapes.md) and fails on a field that
``costwarden.clients.usage_fields`` does not name; checks that docs/pricing.md's table lists
every named field, and that each field said to be priced really moves its Usage count.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from costwarden.clients.usage import anthropic_usage, openai_chat_usage, openai_responses_usage
from costwarden.clients.usage_fields import FOLDED, RESPONSE_FIELDS, USAGE_FIELDS
from costwarden.records import Usage

ROOT = Path(__file__).resolve().parent.parent
SHAPES = Path(__file__).parent / "data" / "provider-usage-wire-shapes.md"
SECTION_API = {"1": "openai_chat", "2": "anthropic", "3": "openai_responses"}
PARSERS = {
    "openai_chat": openai_chat_usage,
    "openai_responses": openai_responses_usage,
    "anthropic": anthropic_usage,
}
BASE = {
    "openai_chat": {"prompt_tokens": 1000, "completion_tokens": 1000},
    "openai_responses": {
        "input_tokens": 1000,
        "output_tokens": 1000,
        "input_token_details": {"cached_tokens": 200, "audio_tokens": 200},
    },
    "anthropic": {"input_tokens": 1000, "output_tokens": 1000, "cache_creation_input_tokens": 500},
}


def _documents() -> Iterator[tuple[str, Any]]:
    """(api, JSON object) for every JSON block and ``data:`` line of the shapes document."""
    api = None
    block: list[str] | None = None
    for line in SHAPES.read_text().splitlines():
        heading = re.match(r"## (\d)\. ", line)
        if heading:
            api = SECTION_API.get(heading.group(1))
            continue
        if api is None:
            continue
        if line.strip().startswith("```"):
            if block is None:
                block = [] if line.strip() == "```json" else None
                if block is None and line.strip() == "```":
                    block = ["<stream>"]
            else:
                if block[:1] != ["<stream>"]:
                    yield api, json.loads("\n".join(block))
                block = None
            continue
        if block is not None and block[:1] != ["<stream>"]:
            block.append(line)
        elif line.startswith("data: {"):
            yield api, json.loads(line.removeprefix("data: "))
        elif line.startswith("{") and line.rstrip().endswith("}"):
            yield api, json.loads(line)


def _leaves(obj: Any, prefix: str = "") -> Iterator[str]:
    for key, value in obj.items():
        path = prefix + key
        if isinstance(value, dict):
            yield from _leaves(value, path + ".")
        else:
            yield path


def _usage_objects(obj: Any) -> Iterator[dict[str, Any]]:
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key == "usage" and isinstance(value, dict):
                yield value
            else:
                yield from _usage_objects(value)
    elif isinstance(obj, list):
        for item in obj:
            yield from _usage_objects(item)


def _response_levels(obj: Any) -> Iterator[dict[str, Any]]:
    """Objects that carry a usage (a response body, a chunk, an event's response)."""
    if isinstance(obj, dict):
        if "usage" in obj:
            yield obj
        for value in obj.values():
            yield from _response_levels(value)


def _walked() -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    usage_paths: set[tuple[str, str]] = set()
    response_paths: set[tuple[str, str]] = set()
    for api, doc in _documents():
        for usage in _usage_objects(doc):
            usage_paths.update((api, path) for path in _leaves(usage))
        for level in _response_levels(doc):
            if "service_tier" in level:
                response_paths.add((api, "service_tier"))
    return usage_paths, response_paths


def test_the_walk_finds_the_shapes() -> None:
    usage_paths, response_paths = _walked()
    apis = {api for api, _ in usage_paths}
    assert apis == set(SECTION_API.values())
    assert ("anthropic", "cache_creation.ephemeral_1h_input_tokens") in usage_paths
    assert ("openai_chat", "prompt_tokens_details.audio_tokens") in usage_paths
    assert ("openai_chat", "service_tier") in response_paths
    assert len(usage_paths) >= 25


def test_every_provider_usage_field_is_priced_or_folded() -> None:
    usage_paths, response_paths = _walked()
    unnamed = sorted(p for p in usage_paths if p[1] not in USAGE_FIELDS[p[0]])
    assert not unnamed, f"usage fields neither priced nor folded: {unnamed}"
    unnamed = sorted(p for p in response_paths if p[1] not in RESPONSE_FIELDS.get(p[0], {}))
    assert not unnamed, f"response fields neither priced nor folded: {unnamed}"


def test_every_named_field_has_a_reason_and_a_real_target() -> None:
    counts = set(Usage.__dataclass_fields__)
    for table in (*USAGE_FIELDS.values(), *RESPONSE_FIELDS.values()):
        for path, (target, why) in table.items():
            assert why.strip(), path
            assert target in counts | {FOLDED, "service_tier"}, (path, target)


def test_docs_table_lists_every_field() -> None:
    docs = (ROOT / "docs" / "pricing.md").read_text()
    rows = {
        (m.group(1), m.group(2), m.group(3))
        for m in re.finditer(r"^\| (\w+) \| `([\w.]+)` \| (`\w+`|folded) \|", docs, re.M)
    }
    for api, table in {**USAGE_FIELDS}.items():
        for path, (target, _) in {**table, **RESPONSE_FIELDS.get(api, {})}.items():
            shown = "folded" if target == FOLDED else f"`{target}`"
            assert (api, path, shown) in rows, f"docs/pricing.md lacks the row {api} {path}"


def _set(body: dict[str, Any], path: str, value: int) -> dict[str, Any]:
    out = copy.deepcopy(body)
    node = out
    *parents, leaf = path.split(".")
    for name in parents:
        node = node.setdefault(name, {})
    node[leaf] = value
    return out


PRICED = [
    (api, path, target)
    for api, table in USAGE_FIELDS.items()
    for path, (target, _) in table.items()
    if target not in (FOLDED, "service_tier")
]


@pytest.mark.parametrize(("api", "path", "target"), PRICED)
def test_each_priced_field_moves_its_count(api: str, path: str, target: str) -> None:
    parse = PARSERS[api]
    low = 1000 if "." not in path else 100  # totals stay above the base's breakdowns
    with_more = parse(_set(BASE[api], path, low + 7))
    with_less = parse(_set(BASE[api], path, low))
    assert getattr(with_more, target) - getattr(with_less, target) == 7
