"""PriceCatalog against genai-prices' own calc_price, plus unknown models and the tables."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from genai_prices import Usage as GenaiUsage
from genai_prices import calc_price
from hypothesis import given, settings
from hypothesis import strategies as st

from costwarden.errors import ConfigurationError, InvalidInputError, UnknownModelError
from costwarden.money import decimal_to_nanos
from costwarden.pricing import (
    POPULAR_PRICING,
    PRICING,
    PriceCatalog,
    ResolvedPrice,
    default_catalog,
)
from costwarden.pricing.defaults import CLASSIC_MODELS
from costwarden.records import Usage

WHEN = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def genai_nanos(
    model: str,
    usage: Usage,
    *,
    batch: bool = False,
    when: datetime = WHEN,
    provider: str | None = None,
) -> int:
    values = {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_read_tokens": usage.cache_read_tokens,
        "cache_write_tokens": usage.cache_write_tokens,
    }
    if usage.reasoning_tokens:
        values["output_reasoning_tokens"] = usage.reasoning_tokens
    result = calc_price(
        GenaiUsage(**values),
        model,
        provider_id=provider,
        genai_request_timestamp=when,
        price_context={"processing": "batch"} if batch else None,
    )
    return decimal_to_nanos(result.total_price)


CACHED = Usage(
    input_tokens=12_000,
    output_tokens=3_000,
    cache_read_tokens=8_000,
    cache_write_tokens=1_000,
    reasoning_tokens=2_000,
)
LONG = Usage(
    input_tokens=250_000, output_tokens=4_000, cache_read_tokens=100_000, cache_write_tokens=20_000
)
PLAIN = Usage(input_tokens=1_000, output_tokens=500)

CASES = [
    ("gpt-4o", PLAIN, False),
    ("gpt-4o", CACHED, False),
    ("gpt-4o", CACHED, True),
    ("gpt-4o-mini", CACHED, False),
    ("claude-3-haiku", CACHED, False),
    ("claude-3-haiku-20240307", CACHED, False),
    ("gpt-5-mini", CACHED, False),
    ("gpt-5", CACHED, True),
    ("claude-sonnet-4-5", CACHED, False),
    ("claude-sonnet-4-5", LONG, False),  # long-context tier: whole request at tier rates
    ("claude-sonnet-4-5", LONG, True),
    ("gemini-2.5-pro", CACHED, False),
    ("gemini-2.5-pro", LONG, False),
    ("gemini-2.5-pro", LONG, True),
    ("gemini-2.5-flash", CACHED, False),
    ("o3", CACHED, False),
]


def test_reasoning_priced_separately_when_the_model_does() -> None:
    catalog = PriceCatalog()
    ours = catalog.cost_nanos("sonar-deep-research", CACHED, provider="perplexity")
    assert ours == genai_nanos("sonar-deep-research", CACHED, provider="perplexity")
    # found without a provider too (only Perplexity lists this exact id)
    assert catalog.cost_nanos("sonar-deep-research", CACHED) == ours
    cheaper = Usage(12_000, 3_000, 8_000, 1_000, reasoning_tokens=3_000)
    assert catalog.cost_nanos("sonar-deep-research", cheaper) < ours  # $3/M vs $8/M


@pytest.mark.parametrize(("model", "usage", "batch"), CASES)
def test_cost_matches_genai_prices(model: str, usage: Usage, batch: bool) -> None:
    catalog = PriceCatalog()
    ours = catalog.cost_nanos(model, usage, when=WHEN, batch=batch)
    assert isinstance(ours, int)
    assert ours == genai_nanos(model, usage, batch=batch)
    assert ours > 0


def test_cost_usd_is_cost_nanos_in_usd_with_the_same_parameters() -> None:
    """Both ``cost_usd`` twins (catalogue and resolved price) pass every argument on to their
    ``cost_nanos`` and only convert the result: keywords reach it, a wrong one is refused, and
    ``help()`` shows ``cost_nanos``'s parameters."""
    import inspect

    from costwarden.money import nanos_to_usd

    catalog = PriceCatalog()
    usage = Usage(2_000, 700, cache_read_tokens=500)
    price = catalog.resolve("gpt-4o")
    for twin, nanos, args in (
        (catalog.cost_usd, catalog.cost_nanos, ("gpt-4o", usage)),
        (price.cost_usd, price.cost_nanos, (usage,)),
    ):
        for batch in (False, True):
            usd = twin(*args, when=WHEN, batch=batch)
            assert usd == nanos_to_usd(nanos(*args, when=WHEN, batch=batch))
        assert twin(*args, batch=True) < twin(*args)
        with pytest.raises(TypeError):
            twin(*args, bogus=1)  # type: ignore[call-arg]
        ours, theirs = inspect.signature(twin), inspect.signature(nanos)
        assert ours.parameters == theirs.parameters
        assert ours.return_annotation == "float"
        assert twin.__name__ == "cost_usd" and twin.__doc__


def test_reference_figures() -> None:
    catalog = PriceCatalog()
    # gpt-4o: 1,000 in at $2.50/M + 500 out at $10/M = $0.0025 + $0.005
    assert catalog.cost_nanos("gpt-4o", PLAIN) == 7_500_000
    assert catalog.cost_usd("gpt-4o", PLAIN) == 0.0075
    # cached reads pay their own rate: 1,000 cached of 2,000 in -> 1000*2.5 + 1000*1.25 per M
    assert catalog.cost_nanos("gpt-4o", Usage(2_000, 0, cache_read_tokens=1_000)) == 3_750_000
    haiku = catalog.resolve("claude-3-haiku-20240307")
    assert (haiku.model, haiku.provider, haiku.source) == (
        "claude-3-haiku",
        "anthropic",
        "genai-prices",
    )
    assert (haiku.input, haiku.output) == (Decimal("0.25"), Decimal("1.25"))
    assert (haiku.cache_read, haiku.cache_write) == (Decimal("0.03"), Decimal("0.3"))


def test_long_context_prices_whole_request_at_tier_rate() -> None:
    catalog = PriceCatalog()
    price = catalog.resolve("gemini-2.5-pro")
    assert price.long_context_threshold == 200_000
    at = catalog.cost_nanos("gemini-2.5-pro", Usage(200_000, 1_000))
    above = catalog.cost_nanos("gemini-2.5-pro", Usage(200_001, 1_000))
    assert at == 200_000 * 1_250 + 1_000 * 10_000  # $1.25/M in, $10/M out, in nanos/token*1000
    assert above == 200_001 * 2_500 + 1_000 * 15_000  # every token at the >200k rates


def test_time_dependent_prices_follow_the_request_time() -> None:
    catalog = PriceCatalog()
    before = datetime(2025, 6, 1, tzinfo=UTC)
    after = datetime(2025, 7, 1, tzinfo=UTC)
    o3_old = catalog.cost_nanos("o3", PLAIN, when=before)
    o3_new = catalog.cost_nanos("o3", PLAIN, when=after)
    assert o3_old == genai_nanos("o3", PLAIN, when=before)
    assert o3_new == genai_nanos("o3", PLAIN, when=after)
    assert o3_old > o3_new
    # DeepSeek's off-peak hours
    for hour in (1, 12, 17, 23):
        when = datetime(2026, 11, 28, hour, 0, tzinfo=UTC)
        ours = catalog.cost_nanos("deepseek-chat", CACHED, when=when)
        assert ours == genai_nanos("deepseek-chat", CACHED, when=when)


def test_batch_before_its_start_date_is_the_standard_price() -> None:
    catalog = PriceCatalog()
    early = datetime(2026, 1, 1, tzinfo=UTC)
    assert catalog.cost_nanos("gpt-4o", PLAIN, batch=True, when=early) == catalog.cost_nanos(
        "gpt-4o", PLAIN
    )
    assert catalog.cost_nanos("gpt-4o", PLAIN, batch=True, when=WHEN) == 3_750_000


SWEEP_CONTEXTS = [
    (False, None, None),
    (True, None, {"processing": "batch"}),
    (False, "flex", {"service_tier": "flex"}),
    (False, "priority", {"service_tier": "priority"}),
    (True, "flex", {"processing": "batch", "service_tier": "flex"}),
]


@pytest.mark.parametrize("rich", [False, True], ids=["classic-counts", "every-count"])
def test_every_catalogue_model_matches_genai_prices(rich: bool) -> None:
    """Sweep the whole snapshot: the compiled schedules equal ModelInfo.calc_price, for the
    standard price, batch and service tiers, with every count a Usage carries."""
    from genai_prices import data_snapshot

    from costwarden.pricing.genai import GenaiPricer
    from costwarden.pricing.tiers import context_of

    counts = {
        "input_tokens": 300_000,
        "output_tokens": 9_000,
        "cache_read_tokens": 50_000,
        "cache_write_tokens": 7_000,
    }
    extra = {
        "reasoning_tokens": 1_000,
        "cache_write_1h_tokens": 2_000,
        "input_audio_tokens": 20_000,
        "cache_audio_read_tokens": 5_000,
        "output_audio_tokens": 3_000,
        "web_searches": 3,
    }
    usage = Usage(**counts, **(extra if rich else {}))
    genai_names = {"reasoning_tokens": "output_reasoning_tokens"}
    raw = GenaiUsage(
        **counts, **({genai_names.get(k, k): v for k, v in extra.items()} if rich else {})
    )
    checked = 0
    for provider in data_snapshot.get_snapshot().providers:
        for model in provider.models:
            pricer = GenaiPricer(provider, model)
            for batch, tier, price_context in SWEEP_CONTEXTS:
                try:
                    expected = model.calc_price(
                        raw, provider, genai_request_timestamp=WHEN, price_context=price_context
                    ).total_price
                except ValueError:
                    continue  # e.g. per-second audio models: not token priced
                ours = pricer.schedule(WHEN, context_of(batch, tier)).cost_nanos(usage)
                assert ours == decimal_to_nanos(expected), (provider.id, model.id, batch, tier)
                checked += 1
    assert checked > 10_000


def test_unknown_model_is_an_error_never_zero() -> None:
    catalog = PriceCatalog()
    with pytest.raises(UnknownModelError) as info:
        catalog.cost_nanos("gpt-4oo", PLAIN)
    assert info.value.model == "gpt-4oo"
    assert "gpt-4o" in info.value.suggestions
    assert "gpt-4oo" in str(info.value)
    assert not catalog.knows("gpt-4oo")
    with pytest.raises(UnknownModelError) as again:  # the cached miss raises again
        catalog.resolve("gpt-4oo")
    assert again.value is not info.value
    assert again.value.suggestions == info.value.suggestions
    with pytest.raises(UnknownModelError) as info:
        catalog.resolve("totally-made-up-model-xyz", "openai")
    assert info.value.provider == "openai"


def test_bad_arguments() -> None:
    catalog = PriceCatalog()
    with pytest.raises(InvalidInputError):
        catalog.resolve("")
    with pytest.raises(InvalidInputError):
        catalog.resolve(42)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        catalog.cost_nanos("gpt-4o", {"input_tokens": 3})  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        catalog.cost_nanos("gpt-4o", PLAIN, batch=True, when="yesterday")  # type: ignore[arg-type]


def test_names_resolve_as_genai_prices_does() -> None:
    catalog = PriceCatalog()
    assert catalog.resolve("openai/gpt-4o").model == "gpt-4o"
    assert catalog.resolve("GPT-4o").model == "gpt-4o"
    assert catalog.resolve("gpt-4o-2024-08-06").model == "gpt-4o"
    assert catalog.resolve("anthropic/claude-3-haiku-20240307").model == "claude-3-haiku"
    assert catalog.resolve("gpt-4o", "azure").provider == "azure"
    # a provider genai-prices does not know is a hint only
    assert catalog.resolve("gpt-4o", "my-gateway").model == "gpt-4o"
    assert catalog.knows("groq/llama-3.3-70b-versatile")


def test_tables_are_derived_from_genai_prices() -> None:
    assert tuple(PRICING) == CLASSIC_MODELS
    assert PRICING["gpt-4o"] == {"input": 2.5, "output": 10.0, "cache_read": 1.25}
    assert PRICING["gpt-4o-mini"] == {"input": 0.15, "output": 0.6, "cache_read": 0.075}
    assert PRICING["claude-3-haiku"]["cache_write"] == 0.3
    catalog = default_catalog()
    assert catalog is default_catalog()
    for table in (PRICING, POPULAR_PRICING):
        for name, row in table.items():
            price = catalog.resolve(name)
            assert row["input"] == float(price.input), name
            assert row["output"] == float(price.output), name
    assert len(POPULAR_PRICING) >= 20
    for family in ("gpt-5", "claude-sonnet-4-5", "gemini-2.5-pro", "deepseek-chat", "o3"):
        assert family in POPULAR_PRICING
    assert set(catalog.models()) >= set(PRICING) | set(POPULAR_PRICING)


def test_fallback_is_conservative() -> None:
    catalog = PriceCatalog()
    usage = Usage(10_000, 2_000, cache_read_tokens=5_000)
    nanos, description = catalog.fallback_cost_nanos(usage)
    assert "fallback" in description
    for name in ("gpt-5", "claude-sonnet-4-5", "gemini-2.5-pro", "gpt-4o", "claude-3-opus"):
        if name != "claude-3-opus":  # older flagship; not in the reference set
            assert nanos >= catalog.cost_nanos(name, usage), name
    chosen = PriceCatalog(fallback_model="gpt-4o")
    nanos, description = chosen.fallback_cost_nanos(usage)
    assert nanos == chosen.cost_nanos("gpt-4o", usage)
    assert "gpt-4o" in description
    with pytest.raises(ConfigurationError):
        PriceCatalog(fallback_model="no-such-model-at-all")


def test_resolved_price_built_by_hand_prices_from_its_rates() -> None:
    price = ResolvedPrice(
        model="m",
        provider=None,
        source="custom",
        input=Decimal("2"),
        output=Decimal("8"),
        cache_read=Decimal("0.5"),
        cache_write=None,
    )
    # 1,000 uncached at $2 + 1,000 cached at $0.5 + 1,000 out at $8 (per 1M)
    assert price.cost_nanos(Usage(2_000, 1_000, cache_read_tokens=1_000)) == 10_500_000


def test_resolved_price_is_frozen() -> None:
    price = PriceCatalog().resolve("gpt-4o")
    assert isinstance(price, ResolvedPrice)
    with pytest.raises(AttributeError):
        price.input = Decimal(0)  # type: ignore[misc]
    assert price.cost_nanos(PLAIN) == 7_500_000


MODELS = ["gpt-4o", "claude-sonnet-4-5", "gemini-2.5-pro", "gpt-5", "claude-3-haiku"]


@st.composite
def usages(draw: st.DrawFn) -> Usage:
    input_tokens = draw(st.integers(0, 400_000))
    cache_read = draw(st.integers(0, input_tokens))
    cache_write = draw(st.integers(0, input_tokens - cache_read))
    output = draw(st.integers(0, 100_000))
    reasoning = draw(st.integers(0, output))
    return Usage(input_tokens, output, cache_read, cache_write, reasoning)


@settings(max_examples=150, deadline=None)
@given(
    model=st.sampled_from(MODELS),
    usage=usages(),
    extra=st.integers(1, 300_000),
    kind=st.sampled_from(["input", "output", "cache_read", "cache_write", "reasoning"]),
    batch=st.booleans(),
)
def test_cost_is_exact_and_monotone(
    model: str, usage: Usage, extra: int, kind: str, batch: bool
) -> None:
    """Adding tokens of any kind never lowers the cost.

    Cached and reasoning tokens are subsets of input and output (the Usage convention), so
    adding a cached token adds an input token too.
    """
    catalog = default_catalog()
    before = catalog.cost_nanos(model, usage, batch=batch, when=WHEN)
    grown = {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_read_tokens": usage.cache_read_tokens,
        "cache_write_tokens": usage.cache_write_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
    }
    if kind in ("input", "cache_read", "cache_write"):
        grown["input_tokens"] += extra
    if kind in ("output", "reasoning"):
        grown["output_tokens"] += extra
    if kind != "input" and kind != "output":
        grown[f"{kind}_tokens"] += extra
    after = catalog.cost_nanos(model, Usage(**grown), batch=batch, when=WHEN)
    assert isinstance(before, int) and isinstance(after, int)
    assert after >= before >= 0
    assert before == genai_nanos(model, usage, batch=batch)
