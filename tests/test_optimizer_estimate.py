"""estimate_cost: real offline token counts, the output bound, current prices, cache discounts."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costwarden.errors import InvalidInputError, UnknownModelError
from costwarden.optimizer import CostOptimizer
from costwarden.tokens import count_message_tokens, get_encoding

OPT = CostOptimizer()
HELLO = "Hello, world! How are you today?"  # 9 tokens in o200k_base


def test_gpt4o_estimate_is_exact() -> None:
    est = OPT.estimate("gpt-4o", HELLO, 100)
    assert (est.input_tokens, est.output_tokens, est.tokens_exact) == (9, 100, True)
    # 9 x $2.50/M + 100 x $10.00/M = $0.0010225
    assert est.cost_nanos == 1_022_500
    assert OPT.estimate_cost("gpt-4o", HELLO, 100) == 0.0010225


def test_token_count_matches_raw_tiktoken_on_long_text() -> None:
    text = "The quarterly report shows revenue grew 12% while costs fell. " * 200
    est = OPT.estimate("gpt-4o-mini", text, 0)
    assert est.input_tokens == len(get_encoding("o200k_base").encode(text))
    assert est.cost_nanos == est.input_tokens * 150  # $0.15 per 1M tokens = 150 nano-USD/token


def test_message_lists_are_counted_with_their_overhead() -> None:
    messages = [
        {"role": "system", "content": "You summarise."},
        {"role": "user", "content": HELLO},
    ]
    est = OPT.estimate("gpt-4o", messages, 50)
    assert est.input_tokens == count_message_tokens(messages, "gpt-4o").tokens
    assert est.input_tokens > 9


def test_cached_prefix_uses_the_cache_read_rate() -> None:
    full = OPT.estimate("gpt-4o", HELLO, 0)
    cached = OPT.estimate("gpt-4o", HELLO, 0, cached_tokens=True)
    assert cached.cached_tokens == 9
    assert cached.cost_nanos == 9 * 1250  # $1.25/M cached input
    assert full.cost_nanos == 9 * 2500
    partly = OPT.estimate("gpt-4o", HELLO, 0, cached_tokens=4)
    assert partly.cost_nanos == 4 * 1250 + 5 * 2500


def test_claude_counts_are_labelled_estimates_and_aliases_resolve() -> None:
    est = OPT.estimate("claude-3-haiku-20240307", HELLO, 100)
    assert not est.tokens_exact and "estimate" in est.token_method
    assert est.provider == "anthropic" and str(est.input_rate) == "0.25"


def test_models_priced_at_a_host_via_the_catalogue() -> None:
    # Meta models have no first-party API price: a host's price is used, never $0.
    est = OPT.estimate("llama-3.3-70b", HELLO, 100)
    assert est.provider is not None and est.provider != "meta" and est.cost_nanos > 0


def test_batch_price_where_the_provider_has_one() -> None:
    std = OPT.estimate("gpt-4o", HELLO, 100)
    batch = OPT.estimate("gpt-4o", HELLO, 100, batch=True)
    assert batch.cost_nanos * 2 == std.cost_nanos


def test_brief_table_prices_apply() -> None:
    opt = CostOptimizer({"gpt-4o-mini": {"input": 0.15, "output": 0.60}})
    est = opt.estimate("gpt-4o-mini", HELLO, 500)
    assert est.cost_nanos == 9 * 150 + 500 * 600
    assert est.price_source == "custom"


def test_unknown_model_is_an_error_never_free() -> None:
    with pytest.raises(UnknownModelError):
        OPT.estimate_cost("no-such-model-xyz", HELLO)
    with pytest.raises(UnknownModelError):
        CostOptimizer({"gpt-4o": {"input": 2.5, "output": 10}}).estimate_cost("gpt-4o-mini", HELLO)


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("gpt-4o", HELLO, -1), {}),
        (("gpt-4o", HELLO, 1.5), {}),
        (("gpt-4o", 42), {}),
        (("gpt-4o", HELLO), {"cached_tokens": -3}),
        (("gpt-4o", None), {}),
    ],
)
def test_bad_input_is_a_typed_error(args: tuple[object, ...], kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidInputError):
        OPT.estimate(*args, **kwargs)  # type: ignore[arg-type]


@settings(max_examples=50, deadline=None)
@given(
    text=st.text(min_size=0, max_size=400),
    out=st.integers(min_value=0, max_value=10_000),
    more=st.integers(min_value=1, max_value=1000),
    cached=st.integers(min_value=0, max_value=500),
    model=st.sampled_from(["gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet", "gemini-2.5-flash"]),
)
def test_cost_is_monotone_and_caching_never_costs_more(
    text: str, out: int, more: int, cached: int, model: str
) -> None:
    base = OPT.estimate(model, text, out)
    assert base.cost_nanos >= 0
    assert OPT.estimate(model, text, out + more).cost_nanos >= base.cost_nanos
    with_cache = OPT.estimate(model, text, out, cached_tokens=cached)
    assert with_cache.cached_tokens == min(cached, base.input_tokens)
    assert with_cache.cost_nanos <= base.cost_nanos


@settings(max_examples=60, deadline=None)
@given(
    text=st.text(min_size=0, max_size=300),
    out=st.integers(min_value=0, max_value=100_000),
    cached=st.integers(min_value=0, max_value=400),
    model=st.sampled_from(
        [
            "gpt-4o",
            "gpt-4o-mini",
            "gpt-4o-2024-08-06",
            "claude-3-haiku-20240307",
            "claude-sonnet-4-5",
            "gemini-2.5-pro",
            "gpt-5.4",
            "o3",
            "llama-3.3-70b",
        ]
    ),
)
def test_fast_estimate_cost_equals_the_detailed_estimate(
    text: str, out: int, cached: int, model: str
) -> None:
    fresh = CostOptimizer()
    assert fresh.estimate_cost(model, text, out, cached_tokens=cached) == (
        fresh.estimate(model, text, out, cached_tokens=cached).cost_usd
    )


def test_fast_path_hands_long_context_requests_to_the_tiered_price() -> None:
    opt = CostOptimizer()
    text = "hello " * 210_000  # above gemini-2.5-pro's 200k long-context threshold
    est = opt.estimate("gemini-2.5-pro", text, 100)
    assert est.input_tokens > 200_000
    assert opt.estimate_cost("gemini-2.5-pro", text, 100) == est.cost_usd
    # the whole request pays the higher tier: more than the base rate would give
    assert est.cost_nanos > est.input_tokens * 1250 + 100 * 10_000


def test_estimate_cost_refuses_an_output_bound_beyond_int64_as_estimate_does() -> None:
    opt = CostOptimizer()
    too_many = 2**63
    with pytest.raises(InvalidInputError, match="expected_output_tokens") as detailed:
        opt.estimate("gpt-4o", "hello", too_many)
    with pytest.raises(InvalidInputError, match="expected_output_tokens") as fast:
        opt.estimate_cost("gpt-4o", "hello", too_many)
    assert str(fast.value) == str(detailed.value)
