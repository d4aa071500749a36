"""The model catalogue: sourced and dated data, a price for every model, lookups, overrides."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costwarden.errors import ConfigurationError, InvalidInputError
from costwarden.optimizer import TASKS, ModelCatalogue, normalize_task
from costwarden.pricing import default_catalog

CAT = ModelCatalogue.default()
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def test_catalogue_covers_the_families_the_issue_names() -> None:
    providers = {m.provider for m in CAT}
    assert {"openai", "anthropic", "google", "mistral", "deepseek", "meta"} <= providers
    for old in ("gpt-4o", "gpt-4o-mini", "claude-3-haiku", "gpt-4-turbo", "claude-3-opus"):
        assert old in CAT


@pytest.mark.parametrize("info", list(CAT), ids=lambda m: m.id)
def test_every_catalogue_model_has_a_price(info: object) -> None:
    from costwarden.optimizer import ModelInfo

    assert isinstance(info, ModelInfo)
    provider, name = info.price_ref if info.price_ref else (None, info.id)
    price = default_catalog().resolve(name, provider)
    assert price.input > 0 and price.output > 0


def test_every_figure_is_sourced_and_dated() -> None:
    assert len(CAT.sources) >= 20
    for src in CAT.sources.values():
        assert src.url.startswith("https://"), src
        assert ISO.match(src.published) and ISO.match(src.retrieved), src
        assert date.fromisoformat(src.published) <= date.fromisoformat(src.retrieved)
    for info in CAT:
        assert info.figures, f"{info.id} has no benchmark figure"
        for fig in info.figures:
            assert 0 <= fig.value <= 100
            assert fig.source.id in CAT.sources, (info.id, fig)


def test_every_model_scores_every_task_within_0_100() -> None:
    for info in CAT:
        assert set(info.quality) == set(TASKS)
        assert all(0 <= s <= 100 for s in info.quality.values()), info.id
        assert info.interpolated <= set(TASKS)
        assert info.context_window and info.context_window >= 16_000
        assert info.capabilities <= {"vision", "tools", "json_mode", "reasoning"}


def test_scores_follow_the_published_figures() -> None:
    # Figures say gpt-4o beats gpt-4o-mini at reasoning (GPQA 53.6 vs 40.2, MATH 76.6 vs 70.2)
    # and claude-3-haiku trails both; the derived scores must keep that order.
    q = {m: CAT[m].quality for m in ("gpt-4o", "gpt-4o-mini", "claude-3-haiku")}
    assert (
        q["gpt-4o"]["reasoning"] > q["gpt-4o-mini"]["reasoning"] > q["claude-3-haiku"]["reasoning"]
    )
    assert q["gpt-4o"]["summarization"] > q["claude-3-haiku"]["summarization"]
    # A task with no figure of its own is marked interpolated; measured ones are not.
    assert "reasoning" not in CAT["gpt-4o"].interpolated
    assert "summarization" in CAT["gpt-5-mini"].interpolated


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("claude-3-haiku-20240307", "claude-3-haiku"),
        ("anthropic/claude-3-5-sonnet-20241022", "claude-3-5-sonnet"),
        ("openai/gpt-4o-mini", "gpt-4o-mini"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("GPT-4O", "gpt-4o"),
        ("models/gemini-2.5-flash", "gemini-2.5-flash"),
        ("claude-3-haiku@20240307", "claude-3-haiku"),
        ("groq/llama-3.3-70b-versatile", "llama-3.3-70b"),
        ("mistral-large-2407", "mistral-large"),
    ],
)
def test_aliases_dated_ids_and_prefixes_resolve(name: str, expected: str) -> None:
    info = CAT.get(name)
    assert info is not None and info.id == expected


def test_unknown_model_is_not_guessed() -> None:
    assert CAT.get("totally-new-model") is None
    with pytest.raises(InvalidInputError, match="not in the model catalogue"):
        CAT["totally-new-model"]


def test_task_names_and_synonyms() -> None:
    assert normalize_task("Summarization") == "summarization"
    assert normalize_task("reasoning/math") == "reasoning"
    assert normalize_task("creative writing") == "creative_writing"
    assert normalize_task("long-context") == "long_context"
    with pytest.raises(InvalidInputError) as err:
        normalize_task("poetry-slam")
    for task in TASKS:
        assert task in str(err.value)


def test_levels_and_numeric_quality() -> None:
    assert CAT.threshold("low") < CAT.threshold("medium") < CAT.threshold("high")  # type: ignore[operator]
    assert CAT.threshold("best") is None
    assert CAT.threshold(72.5) == 73
    for bad in ("great", -1, 101, float("nan"), True, None):
        with pytest.raises(InvalidInputError):
            CAT.threshold(bad)


def test_user_entries_add_and_override() -> None:
    cat = CAT.with_entries(
        {
            "my-model": {"provider": "acme", "context_window": 32000, "quality": {"code": 90}},
            "gpt-4o-mini": {"context_window": 64000},
            "claude-3-haiku-20240307": {"quality": {"summarization": 99}},
        }
    )
    mine = cat["my-model"]
    assert mine.quality["code"] == 90 and mine.provider == "acme"
    assert mine.interpolated == frozenset(TASKS) - {"code"}  # filled in, and flagged
    assert cat["gpt-4o-mini"].context_window == 64000
    assert cat["gpt-4o-mini"].quality["reasoning"] == CAT["gpt-4o-mini"].quality["reasoning"]
    assert cat["claude-3-haiku"].quality["summarization"] == 99
    assert CAT["gpt-4o-mini"].context_window == 128000  # the default is untouched


def test_user_entries_from_a_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "models.toml"
    path.write_text(
        '[models."house-llm"]\nprovider = "self"\ncontext_window = 8192\n'
        'figures = [["mmlu", 70.0, "https://example.org/card"]]\n'
    )
    info = CAT.with_entries(path)["house-llm"]
    assert info.figures[0].source.url == "https://example.org/card"
    assert info.quality["classification"] > 0


@pytest.mark.parametrize(
    "entry",
    [
        {"context_window": 1000},  # neither figures nor quality
        {"quality": {"poetry": 50}},
        {"quality": {"code": 150}},
        {"figures": [["mmlu", 70, "nowhere"]]},
        {"figures": [["vibes", 70, "https://x.org"]]},
        {"quality": {"code": 50}, "capabilities": ["telepathy"]},
        {"quality": {"code": 50}, "context_window": -5},
    ],
)
def test_bad_user_entries_are_configuration_errors(entry: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        CAT.with_entries({"new-model": entry})


def test_missing_or_broken_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        CAT.with_entries(tmp_path / "absent.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[models\n")
    with pytest.raises(ConfigurationError):
        CAT.with_entries(broken)


@settings(max_examples=60, deadline=None)
@given(
    low=st.floats(min_value=0, max_value=100, allow_nan=False),
    delta=st.floats(min_value=0, max_value=100, allow_nan=False),
    bench=st.sampled_from(["mmlu", "gpqa", "humaneval", "drop", "ifeval", "mgsm", "aime"]),
)
def test_a_better_figure_never_lowers_any_score(low: float, delta: float, bench: str) -> None:
    high = min(100.0, low + delta)
    src = "https://example.org/eval"
    base = [["mmlu", 70.0, src], ["gpqa", 40.0, src]]
    cat = CAT.with_entries(
        {
            "a": {"context_window": 100_000, "figures": [*base, [bench, low, src]]},
            "b": {"context_window": 100_000, "figures": [*base, [bench, high, src]]},
        }
    )
    for task in TASKS:
        assert cat["b"].quality[task] >= cat["a"].quality[task]
