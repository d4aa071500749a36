"""select_model: the cheapest candidate that meets the quality level and the cost bound."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costwarden.errors import ConfigurationError, InvalidInputError, NoModelFitsError
from costwarden.optimizer import TASK_PROFILES, TASKS, CostOptimizer
from costwarden.pricing import PRICING

USER_TABLE = {
    "gpt-4o": {"input": 2.50, "output": 10.00},
    "gpt-4o-mini": {"input": 0.15, "output": 0.60},
    "claude-3-haiku": {"input": 0.25, "output": 1.25},
    "claude-3-5-sonnet": {"input": 3.0, "output": 15.0},
}


@pytest.mark.parametrize("table", [PRICING, USER_TABLE], ids=["PRICING", "user-table"])
def test_brief_acceptance_summarization_under_a_cent(table: dict[str, dict[str, float]]) -> None:
    assert CostOptimizer(table).select_model("summarization", max_cost=0.01) in [
        "gpt-4o-mini",
        "claude-3-haiku",
    ]


def test_candidates_are_exactly_the_dicts_models() -> None:
    opt = CostOptimizer(USER_TABLE)
    assert sorted(c.name for c in opt.candidates) == sorted(USER_TABLE)
    sel = opt.select("summarization")
    assert {o.name for o in sel.options} == set(USER_TABLE)


def test_selection_reports_its_evidence() -> None:
    sel = CostOptimizer(USER_TABLE).select("summarization", max_cost=0.01)
    profile = TASK_PROFILES["summarization"]
    assert (sel.input_tokens, sel.output_tokens) == (profile.input_tokens, profile.output_tokens)
    # gpt-4o-mini: 3000 x $0.15/M + 300 x $0.60/M = $0.00063, exactly
    assert sel.model == "gpt-4o-mini" and sel.cost_nanos == 630_000
    assert sel.score >= sel.required_score == 65
    costs = [o.cost_nanos for o in sel.options]
    assert costs == sorted(costs)


def test_higher_quality_levels_pick_better_models() -> None:
    opt = CostOptimizer(USER_TABLE)
    low = opt.select("reasoning", quality="low")
    best = opt.select("reasoning", quality="best")
    assert best.score >= low.score
    assert best.score >= max(o.score for o in best.options) - opt.catalogue.best_tolerance


def test_numeric_quality_and_caller_token_counts() -> None:
    opt = CostOptimizer(USER_TABLE)
    sel = opt.select("code", quality=10, input_tokens=10_000, output_tokens=100)
    assert (sel.input_tokens, sel.output_tokens) == (10_000, 100)
    assert sel.required_score == 10


def test_capabilities_and_context_window_are_respected() -> None:
    table = {**USER_TABLE, "claude-3-5-haiku": {"input": 0.8, "output": 4.0}}
    opt = CostOptimizer(table)
    # claude-3-5-haiku has no vision: never chosen when vision is required
    sel = opt.select("chat", quality="low", requires=["vision"])
    assert "vision" in opt.model_info(sel.model).capabilities
    excluded = {o.name: o.excluded for o in sel.options}
    assert excluded["claude-3-5-haiku"] and "vision" in excluded["claude-3-5-haiku"]
    # 150k-token request: the 128k-window gpt-4o family cannot hold it
    big = opt.select("summarization", quality="low", input_tokens=150_000)
    assert big.model in ("claude-3-haiku", "claude-3-5-sonnet", "claude-3-5-haiku")
    with pytest.raises(NoModelFitsError, match="context window"):
        opt.select("summarization", quality="low", input_tokens=300_000)


def test_nothing_fits_says_what_would() -> None:
    opt = CostOptimizer(USER_TABLE)
    cheapest_good = opt.select("summarization", quality="high")  # what would fit, unbounded
    with pytest.raises(NoModelFitsError) as err:
        opt.select_model("summarization", max_cost=0.0001, quality="high")
    text = str(err.value)
    assert f"Cheapest model meeting the quality: {cheapest_good.model}" in text
    assert "max_cost $0.00010 " in text
    assert "costs $0.00063." in text  # gpt-4o-mini, the cheapest candidate of all


def test_nothing_fits_names_the_best_affordable_model() -> None:
    opt = CostOptimizer(USER_TABLE)
    with pytest.raises(NoModelFitsError) as err:
        opt.select_model("reasoning", max_cost=0.005, quality=99)
    text = str(err.value)
    assert "No candidate reaches that score" in text
    assert "Best model within the cost" in text


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"task_type": "poetry"}, "valid task types"),
        ({"task_type": "chat", "max_cost": -0.01}, "max_cost"),
        ({"task_type": "chat", "max_cost": math.nan}, "max_cost"),
        ({"task_type": "chat", "max_cost": "lots"}, "max_cost"),
        ({"task_type": "chat", "quality": "excellent"}, "quality"),
        ({"task_type": "chat", "input_tokens": -1}, "input_tokens"),
        ({"task_type": "chat", "requires": ["telepathy"]}, "capabilities"),
        ({"task_type": "chat", "min_context": -5}, "min_context"),
    ],
)
def test_bad_input_is_a_typed_error(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        CostOptimizer(USER_TABLE).select_model(**kwargs)  # type: ignore[arg-type]


def test_bad_pricing_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        CostOptimizer({})
    with pytest.raises(ConfigurationError):
        CostOptimizer(["gpt-4o"])  # type: ignore[arg-type]


def test_priced_models_without_catalogue_data_are_not_candidates() -> None:
    opt = CostOptimizer({"my-finetune": {"input": 0.01, "output": 0.01}, **USER_TABLE})
    assert "my-finetune" not in {c.name for c in opt.candidates}
    opt2 = CostOptimizer(
        {"my-finetune": {"input": 0.01, "output": 0.01}, **USER_TABLE},
        models={"my-finetune": {"context_window": 128_000, "quality": {"summarization": 95}}},
    )
    assert opt2.select_model("summarization") == "my-finetune"


def test_default_catalogue_spans_families() -> None:
    opt = CostOptimizer()
    providers = {c.info.provider for c in opt.candidates}
    assert {"openai", "anthropic", "google", "mistral", "deepseek", "meta"} <= providers
    for task in TASKS:
        assert opt.select_model(task, quality="low")


prices = st.fixed_dictionaries(
    {
        name: st.fixed_dictionaries(
            {
                "input": st.decimals(min_value="0.01", max_value="50", places=2).map(float),
                "output": st.decimals(min_value="0.01", max_value="100", places=2).map(float),
            }
        )
        for name in ("gpt-4o", "gpt-4o-mini", "claude-3-haiku", "claude-3-5-sonnet", "gpt-4.1")
    }
)


@settings(max_examples=40, deadline=None)
@given(
    table=prices,
    task=st.sampled_from(TASKS),
    level=st.sampled_from(["low", "medium", "high", "best"]),
    max_cost=st.one_of(st.none(), st.decimals(min_value="0", max_value="2", places=4).map(float)),
)
def test_selection_is_the_cheapest_qualifying_option(
    table: dict[str, dict[str, float]], task: str, level: str, max_cost: float | None
) -> None:
    opt = CostOptimizer(table)
    try:
        sel = opt.select(task, max_cost=max_cost, quality=level)
    except NoModelFitsError:
        try:
            probe = opt.select(task, quality=level)
        except NoModelFitsError:
            return  # no candidate reaches the level at any price
        # the level is reachable, so the bound must be what excluded it
        assert max_cost is not None and probe.cost_nanos > round(max_cost * 1e9)
        return
    bound = None if max_cost is None else round(max_cost * 1e9)
    eligible = [
        o
        for o in sel.options
        if o.excluded is None
        and o.score >= sel.required_score
        and (bound is None or o.cost_nanos <= bound)
    ]
    assert sel.model == eligible[0].name
    assert sel.cost_nanos == min(o.cost_nanos for o in eligible)
