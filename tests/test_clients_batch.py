"""Batch API results are recorded at batch rates (catalogue batch variants, or a custom
entry's batch table); unbilled lines are skipped; garbage is refused before any record."""

from __future__ import annotations

import json

import openai
import pytest

from costwarden.budget import Budget
from costwarden.clients import Attribution, record_batch_results, wrap
from costwarden.errors import ProviderResponseError
from costwarden.manager import BudgetManager
from costwarden.pricing import PriceCatalog
from costwarden.testing.fake_upstream import FakeUpstream, anthropic_usage, openai_usage
from tests.helpers import close_after_test

# The anthropic SDK warns when a request names a model it lists as deprecated; these tests
# use such models on purpose (their prices are what is under test), so its warning is ignored.
pytestmark = pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning")


def manager(**kw: object) -> BudgetManager:
    budget = Budget(daily_limit=10.0, monthly_limit=None, per_request_limit=None)
    return BudgetManager(budget, **kw)  # type: ignore[arg-type]


OPENAI_LINES = [
    json.dumps(
        {
            "id": "batch_req_1",
            "custom_id": "q-1",
            "response": {
                "status_code": 200,
                "request_id": "r1",
                "body": {
                    "id": "chatcmpl-1",
                    "object": "chat.completion",
                    "model": "gpt-4o-2024-08-06",
                    "choices": [],
                    "usage": openai_usage(1_000, 100),
                    "service_tier": "default",
                },
            },
            "error": None,
        }
    ),
    json.dumps(
        {
            "id": "batch_req_2",
            "custom_id": "q-2",
            "response": {"status_code": 500, "request_id": "r2", "body": {"error": "x"}},
            "error": None,
        }
    ),
    json.dumps(
        {"id": "batch_req_3", "custom_id": "q-3", "response": None, "error": {"code": "expired"}}
    ),
    "",
]

ANTHROPIC_LINES = [
    {
        "custom_id": "a-1",
        "result": {
            "type": "succeeded",
            "message": {
                "id": "msg_1",
                "type": "message",
                "model": "claude-sonnet-4-5",
                "content": [],
                "usage": anthropic_usage(1_000, 100, service_tier="batch"),
            },
        },
    },
    {"custom_id": "a-2", "result": {"type": "errored", "error": {"type": "api_error"}}},
]


def test_openai_batch_output_is_recorded_at_batch_rates() -> None:
    m = manager()
    who = Attribution(user="alice", endpoint="nightly")
    (rec,) = record_batch_results(m, OPENAI_LINES, provider="openai", attribution=who)
    # 1000 x 1.25 + 100 x 5 (gpt-4o batch); the standard price would be 3_500_000
    assert rec.cost_nanos == 1_750_000
    assert (rec.model, rec.user_id, rec.endpoint) == ("gpt-4o-2024-08-06", "alice", "nightly")
    assert rec.request_id == "chatcmpl-1" and rec.metadata == {"custom_id": "q-1", "batch": True}


def test_anthropic_batch_results_are_recorded_at_batch_rates() -> None:
    m = manager()
    (rec,) = record_batch_results(m, ANTHROPIC_LINES, provider="anthropic")
    assert rec.cost_nanos == 1_500_000 + 750_000  # 1000 x 1.5 + 100 x 7.5


def test_wrapped_client_records_batch_results_with_its_attribution(up: FakeUpstream) -> None:
    m = manager()
    sdk = close_after_test(openai.OpenAI(base_url=up.openai_base_url, api_key="test"))
    client = wrap(sdk, manager=m, user="bob")
    (rec,) = client.record_batch_results([line.encode() for line in OPENAI_LINES])
    assert rec.user_id == "bob" and rec.cost_nanos == 1_750_000


def test_custom_entry_batch_table_and_its_absence() -> None:
    line = json.loads(OPENAI_LINES[0])
    line["response"]["body"]["model"] = "mine"
    with_batch = manager(
        pricing=PriceCatalog(
            {"mine": {"input": 2, "output": 8, "batch": {"input": 1, "output": 4}}}
        )
    )
    assert record_batch_results(with_batch, [line])[0].cost_nanos == 1_000_000 + 400_000
    without = manager(pricing=PriceCatalog({"mine": {"input": 2, "output": 8}}))
    (rec,) = record_batch_results(without, [line])
    assert rec.cost_nanos == 2_000_000 + 800_000 and "no batch price" in rec.price_source


def test_garbage_is_refused_before_anything_is_recorded() -> None:
    m = manager()
    with pytest.raises(ProviderResponseError, match="line 2 is not JSON"):
        record_batch_results(m, [OPENAI_LINES[0], "{oops"])
    with pytest.raises(ProviderResponseError, match="line 1 is neither"):
        record_batch_results(m, [{"custom_id": "x"}])
    assert m.records() == []
