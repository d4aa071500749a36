"""count_tokens' per-model cache gives what the uncached rule + encoding route gives."""

from __future__ import annotations

import pytest

from costwarden import tokens
from costwarden.errors import TokenCountError

_MODELS = ("gpt-4o-mini", "gpt-4", "claude-3-5-sonnet", "gemini-1.5-pro", "mistral-large", "x-1")
_TEXTS = ("", "hello world", "<|endoftext|> is plain text here", "naïve café " * 40)


@pytest.mark.parametrize("model", _MODELS)
@pytest.mark.parametrize("text", _TEXTS)
def test_cached_counter_matches_rule_and_encoding(model: str, text: str) -> None:
    rule = tokens._rule_for(model)
    n = len(tokens.get_encoding(rule.encoding).encode_ordinary(text))
    expected = tokens._result(rule, n, 0, False)
    assert tokens.count_tokens(text, model) == expected
    assert tokens.count_tokens(text, model) == expected  # second call: from the cache


@pytest.mark.parametrize("model", [None, 3, "", "   ", ["gpt-4o"]])
def test_bad_models_are_still_refused(model: object) -> None:
    with pytest.raises(TokenCountError):
        tokens.count_tokens("hello", model)  # type: ignore[arg-type]
    with pytest.raises(TokenCountError):
        tokens.count_tokens("", model)  # type: ignore[arg-type]


def test_bad_text_is_refused_before_the_model_is_read() -> None:
    with pytest.raises(TokenCountError, match="text must be a str"):
        tokens.count_tokens(b"hello", None)  # type: ignore[arg-type]
