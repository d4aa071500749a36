"""The clients' fast paths give exactly what the straightforward code gave.

``estimate_call`` counts a repeated system prefix from a cache and hashes each message once;
``field`` remembers which types are mappings. Each is checked here against the plain
computation it replaced (kept below as the reference), over random prompts.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections import UserDict
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costwarden.clients import estimate_call, fingerprints
from costwarden.clients.apis import Api, output_bound, prompt_messages
from costwarden.clients.fingerprints import call_metadata
from costwarden.clients.usage import field, openai_chat_usage
from costwarden.pricing import default_catalog
from costwarden.tokens import count_message_tokens

MODELS = ("gpt-4o-mini", "gpt-4", "claude-sonnet-4-5")


def reference_metadata(messages: list[Any], model: str, bound: int) -> dict[str, Any]:
    """call_metadata as first written: dumps and hashes, prefix counted every time."""

    def digest(value: object) -> str:
        text = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
        return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()

    meta: dict[str, Any] = {"max_tokens": bound, "prompt_hash": digest(messages)}
    prefix = list(itertools.takewhile(lambda m: m.get("role") in ("system", "developer"), messages))
    if prefix:
        meta["prefix_hash"] = digest(prefix)
        meta["prefix_tokens"] = count_message_tokens(prefix, model).tokens
    return meta


def reference_estimate(api: Api, request: Mapping[str, Any], model: str) -> tuple[Any, ...]:
    messages = prompt_messages(api, request)
    counted = count_message_tokens(messages, model, tools=request.get("tools") or None)
    out = output_bound(api, request) or 1024
    meta = reference_metadata(messages, model, out)
    return counted.tokens, counted.exact, out, meta


text = st.text(alphabet=st.characters(codec="utf-8"), min_size=0, max_size=60)
content = st.one_of(
    text,
    st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": text}), max_size=3),
)
prefix_msg = st.fixed_dictionaries(
    {"role": st.sampled_from(("system", "developer")), "content": content}
)
other_msg = st.fixed_dictionaries(
    {"role": st.sampled_from(("user", "assistant", "system")), "content": content}
)
messages_st = st.tuples(st.lists(prefix_msg, max_size=3), st.lists(other_msg, max_size=3)).map(
    lambda t: t[0] + t[1]
)
tool = {
    "type": "function",
    "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}},
}


@settings(max_examples=150, deadline=None)
@given(
    messages=messages_st,
    model=st.sampled_from(MODELS),
    tools=st.sampled_from((None, [], [tool])),
    max_tokens=st.one_of(st.none(), st.integers(1, 4000)),
    warm=st.booleans(),
)
def test_chat_estimate_matches_the_plain_computation(
    messages: list[dict[str, Any]],
    model: str,
    tools: list[dict[str, Any]] | None,
    max_tokens: int | None,
    warm: bool,
) -> None:
    request: dict[str, Any] = {"model": model, "messages": messages}
    if tools is not None:
        request["tools"] = tools
    if max_tokens is not None:
        request["max_tokens"] = max_tokens
    if not warm:
        fingerprints.PREFIX_COUNTS.clear()
        fingerprints.PREFIX_STATES.clear()
    if not messages:
        return  # prompt_messages accepts it; nothing differs, and estimate_call is the same
    tokens, exact, out, meta = reference_estimate("chat", request, model)
    for _ in range(2):  # cold, then from the prefix cache
        est = estimate_call(default_catalog(), "chat", request, model)
        assert (est.input_tokens, est.exact_input, est.output_tokens) == (tokens, exact, out)
        assert est.metadata is not None and est.metadata == meta
        assert list(est.metadata) == list(meta)  # same key order in the stored JSON


@settings(max_examples=60, deadline=None)
@given(system=st.one_of(st.none(), text), instructions=st.one_of(st.none(), text), body=text)
def test_messages_and_responses_estimates_match(
    system: str | None, instructions: str | None, body: str
) -> None:
    anthropic: dict[str, Any] = {"messages": [{"role": "user", "content": body}], "max_tokens": 9}
    if system is not None:
        anthropic["system"] = [{"type": "text", "text": system}]
    responses: dict[str, Any] = {"input": body, "max_output_tokens": 7}
    if instructions is not None:
        responses["instructions"] = instructions
    for api, request, model in (
        ("messages", anthropic, "claude-sonnet-4-5"),
        ("responses", responses, "gpt-4o-mini"),
    ):
        tokens, exact, out, meta = reference_estimate(api, request, model)  # type: ignore[arg-type]
        est = estimate_call(default_catalog(), api, request, model)  # type: ignore[arg-type]
        assert (est.input_tokens, est.exact_input, est.output_tokens) == (tokens, exact, out)
        assert est.metadata == meta


def test_call_metadata_hashes_are_unchanged() -> None:
    messages = [
        {"role": "system", "content": "Be brief. ünïcödé"},
        {"role": "developer", "content": "JSON only"},
        {"role": "user", "content": "hi"},
    ]
    for prompt in (messages, messages[:2], messages[2:]):
        assert call_metadata(prompt, "gpt-4o", 50) == reference_metadata(prompt, "gpt-4o", 50)


def test_errors_come_in_the_same_order() -> None:
    """A bad model is reported before a bad max_tokens, as the plain computation did."""
    request = {"messages": [{"role": "system", "content": "s"}], "max_tokens": 0}
    with pytest.raises(Exception) as plain:
        reference_estimate("chat", request, "")
    with pytest.raises(Exception) as fast:
        estimate_call(default_catalog(), "chat", request, "")
    assert type(fast.value) is type(plain.value) and str(fast.value) == str(plain.value)


class _Attrs:
    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)


def test_field_reads_dicts_mappings_and_objects_alike() -> None:
    usage = {"prompt_tokens": 5, "completion_tokens": 2, "prompt_tokens_details": None}
    for shape in (usage, UserDict(usage), _Attrs(**usage)):
        for _ in range(2):  # the second read uses the remembered type
            assert field(shape, "prompt_tokens") == 5
            assert field(shape, "missing") is None
            assert openai_chat_usage(shape).input_tokens == 5
    assert field(None, "x") is None


def test_routes_follow_added_providers_and_the_default() -> None:
    from costwarden.clients import ProviderRegistry, SimulatedProvider

    registry = ProviderRegistry()
    first, name = registry.resolve("gpt-4o-mini")
    assert (first.name, name) == ("openai", "gpt-4o-mini")
    assert registry.resolve("gpt-4o-mini")[0] is first  # the one created, not a new one
    replacement = SimulatedProvider(name="openai")
    registry.add(replacement)
    assert registry.resolve("gpt-4o-mini")[0] is replacement
    local = SimulatedProvider(name="local")
    registry.add(local)
    registry.default = "local"
    assert registry.resolve("my-model")[0] is local
    registry.default = None
    with pytest.raises(Exception, match="cannot tell which provider"):
        registry.resolve("my-model")
    assert registry.resolve("local/x") == (local, "x")


def test_records_keep_metadata_and_still_check_metadata_they_cannot_vouch_for() -> None:
    from costwarden.budget import Budget
    from costwarden.clients import Attribution, CallAccount
    from costwarden.errors import InvalidInputError
    from costwarden.manager import BudgetManager
    from costwarden.records import Usage

    manager = BudgetManager(Budget(daily_limit=10.0))
    try:
        request = {
            "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
        }
        est = estimate_call(manager.pricing, "chat", request, "gpt-4o-mini")
        assert est.metadata is not None
        est.metadata["task"] = "chat"
        account = CallAccount(manager, est, Attribution(), api="chat", provider="openai")
        stored = account.succeed(Usage(5, 2))
        assert stored.metadata == est.metadata
        for bad in ({"task": float("nan")}, {"task": object()}, {1: "x"}):
            bad_est = estimate_call(manager.pricing, "chat", request, "gpt-4o-mini")
            object.__setattr__(bad_est, "metadata", bad)
            account = CallAccount(manager, bad_est, Attribution(), api="chat", provider="openai")
            with pytest.raises(InvalidInputError, match="metadata"):
                account.succeed(Usage(5, 2))
            manager.release(account.hold)
    finally:
        manager.close()
