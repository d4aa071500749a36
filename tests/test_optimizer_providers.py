"""Automatic model choice only among models a provider the caller can reach serves.

The optimizer's ``providers=`` filter, and the tracked clients passing the providers they can
call: the configured or registered ones, else the built-ins whose credentials are set. The
calls go to the fake provider on loopback (real wire format); nothing leaves the machine.
"""

from __future__ import annotations

import pytest

from costwarden.budget import Budget
from costwarden.clients import OpenAIProvider, TrackedLLMClient
from costwarden.clients.openai_provider import COMPATIBLE
from costwarden.errors import InvalidInputError, NoModelFitsError
from costwarden.manager import BudgetManager
from costwarden.optimizer import CostOptimizer
from costwarden.testing.fake_upstream import FakeUpstream
from tests.helpers import close_after_test

HELLO = [{"role": "user", "content": "Hello, how are you today?"}]
_KEYS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "OPENAI_BASE_URL")


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No provider credentials in the environment (the test sets the ones it means)."""
    for name in (*_KEYS, *(env for _, env, _ in COMPATIBLE.values() if env)):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def manager() -> BudgetManager:
    return BudgetManager(Budget(daily_limit=10.0, monthly_limit=None))


def catalogue_provider(opt: CostOptimizer, model: str) -> str:
    return opt.model_info(model).provider


# -- the optimizer's filter ------------------------------------------------------------------
@pytest.mark.parametrize("provider", ["openai", "anthropic", "google", "groq"])
def test_select_with_providers_picks_only_their_models(provider: str) -> None:
    opt = CostOptimizer(manager().pricing)
    sel = opt.select("chat", max_cost=0.05, quality="low", providers=[provider])
    assert sel.provider == provider
    assert all(provider in o.providers for o in sel.options)
    if provider != "groq":  # groq serves Meta's models
        assert catalogue_provider(opt, sel.model) == provider


def test_the_unfiltered_choice_is_unchanged_and_the_filter_can_change_it() -> None:
    opt = CostOptimizer(manager().pricing)
    anywhere = opt.select("chat", max_cost=0.01)
    assert opt.select("chat", max_cost=0.01, providers=None) == anywhere
    assert anywhere.provider is None
    only_openai = opt.select_model("chat", max_cost=0.01, providers="openai")
    assert catalogue_provider(opt, only_openai) == "openai"
    assert catalogue_provider(opt, anywhere.model) != "openai"  # else this test proves little


def test_a_provider_serving_nothing_is_a_clear_error() -> None:
    opt = CostOptimizer(manager().pricing)
    with pytest.raises(NoModelFitsError, match="served by ollama"):
        opt.select("chat", providers=["ollama"])
    with pytest.raises(NoModelFitsError, match="none was given"):
        opt.select("chat", providers=[])


@pytest.mark.parametrize("bad", [[""], [3], 7])
def test_bad_providers_are_a_typed_error(bad: object) -> None:
    with pytest.raises(InvalidInputError, match="providers"):
        CostOptimizer(manager().pricing).select("chat", providers=bad)  # type: ignore[arg-type]


# -- the tracked client passes what it can call ----------------------------------------------
def test_configured_openai_provider_gets_an_openai_model(up: FakeUpstream) -> None:
    m = manager()
    opt = CostOptimizer(m.pricing)
    openai = OpenAIProvider(base_url=up.openai_base_url, api_key="test")
    client = close_after_test(TrackedLLMClient(m, opt, provider=openai))
    result = client.complete(HELLO, max_cost=0.01)
    sent = up.requests[-1].json()["model"]
    assert catalogue_provider(opt, sent) == "openai"
    assert result.provider == "openai" and m.records()[0].model == sent


def test_credentials_decide_which_builtin_is_eligible(
    up: FakeUpstream, no_credentials: pytest.MonkeyPatch
) -> None:
    no_credentials.setenv("OPENAI_API_KEY", "test")
    no_credentials.setenv("OPENAI_BASE_URL", up.openai_base_url)
    m = manager()
    opt = CostOptimizer(m.pricing)
    result = close_after_test(TrackedLLMClient(m, opt)).complete(HELLO, max_cost=0.01)
    assert result.provider == "openai"
    assert catalogue_provider(opt, up.requests[-1].json()["model"]) == "openai"


def test_no_credentials_and_no_provider_is_a_clear_error_before_any_call(
    up: FakeUpstream, no_credentials: pytest.MonkeyPatch
) -> None:
    m = manager()
    client = TrackedLLMClient(m, CostOptimizer(m.pricing))
    with pytest.raises(NoModelFitsError, match="OPENAI_API_KEY"):
        client.complete(HELLO, max_cost=0.01)
    assert up.requests == [] and m.records() == []


@pytest.mark.parametrize(
    ("service", "sent"),
    [
        ("groq", None),  # priced as "groq/<model>": sent without the prefix
        ("together", "meta-llama/Meta-Llama-3.1-405B-Instruct-Turbo"),
    ],
)
def test_a_registered_compatible_service_gets_its_own_model_routed_to_it(
    up: FakeUpstream, service: str, sent: str | None
) -> None:
    m = manager()
    opt = CostOptimizer(m.pricing)
    prov = OpenAIProvider.compatible(service, base_url=up.openai_base_url, api_key="test")
    client = close_after_test(TrackedLLMClient(m, opt, providers=[prov], quality="low"))
    result = client.complete(HELLO)
    model = up.requests[-1].json()["model"]
    assert not model.startswith(f"{service}/")
    if sent is not None:
        assert model == sent
    assert result.provider == service and m.records()[0].provider == service


def test_per_call_provider_limits_the_choice(up: FakeUpstream) -> None:
    m = manager()
    opt = CostOptimizer(m.pricing)
    openai = OpenAIProvider(base_url=up.openai_base_url, api_key="test")
    groq = OpenAIProvider.compatible("groq", base_url=up.openai_base_url, api_key="test")
    client = close_after_test(TrackedLLMClient(m, opt, providers=[openai, groq]))
    client.complete(HELLO, provider="openai")
    assert catalogue_provider(opt, up.requests[-1].json()["model"]) == "openai"


def test_the_simulator_still_chooses_among_every_model() -> None:
    m = manager()
    opt = CostOptimizer(m.pricing)
    result = TrackedLLMClient(m, opt, provider="simulated").complete(HELLO, max_tokens=100)
    assert result.model == opt.select_model("chat", input_text=HELLO, output_tokens=100)
