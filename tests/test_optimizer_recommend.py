"""recommend_optimizations on synthetic usage histories whose right answer is known.

The histories use fictional models with explicit prices and quality scores, so every expected
saving below is plain arithmetic: (history cost difference) x (average month / history span).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from costwarden.errors import InvalidInputError
from costwarden.optimizer import TASKS, CostOptimizer, Recommendation
from costwarden.records import StoredRecord, UsageRecord

MONTH = 2_629_746  # seconds in an average month (365.2425 / 12 days)
DAY = 86_400
T0 = datetime(2026, 11, 1, tzinfo=UTC)

PRICES = {
    "big": {"input": 10.0, "output": 30.0},
    "small": {"input": 0.5, "output": 1.5},
    "tiny": {"input": 0.1, "output": 0.1},
    "cachey": {"input": 3.0, "output": 15.0, "cache_read": 0.3, "cache_write": 3.75},
}
MODELS = {
    "big": {"context_window": 200_000, "quality": dict.fromkeys(TASKS, 90)},
    "small": {"context_window": 200_000, "quality": dict.fromkeys(TASKS, 82)},
    "tiny": {"context_window": 200_000, "quality": dict.fromkeys(TASKS, 60)},
    "cachey": {"context_window": 200_000, "quality": dict.fromkeys(TASKS, 85)},
}


def opt() -> CostOptimizer:
    return CostOptimizer(PRICES, models=MODELS)


def spread(n: int, seconds: float = DAY) -> list[datetime]:
    """n timestamps from T0 to T0 + seconds, evenly."""
    step = seconds / (n - 1)
    return [T0 + timedelta(seconds=i * step) for i in range(n)]


def rec(model: str, i: int, o: int, ts: datetime, **kw: Any) -> UsageRecord:
    return UsageRecord(model, i, o, timestamp=ts, **kw)


def monthly(nanos: int, span: int = DAY) -> int:
    return nanos * MONTH // max(span, DAY)


def only(recs: list[Recommendation], kind: str) -> Recommendation:
    found = [r for r in recs if r.kind == kind]
    assert len(found) == 1, [r.message for r in recs]
    return found[0]


def test_switch_task_to_cheaper_model_of_adequate_quality() -> None:
    history = [rec("big", 3000, 300, t, metadata={"task": "summarization"}) for t in spread(100)]
    r = only(opt().recommendations(history), "switch_model")
    # big: 3000 x $10/M + 300 x $30/M = $0.039/call; small: $0.00195/call; 100 calls in a day.
    assert r.evidence["alternative"] == "small"  # tiny (60) is below the required 80
    assert r.monthly_saving_nanos == monthly(100 * (39_000_000 - 1_950_000))
    assert r.task == "summarization" and r.model == "big"
    assert "small" in r.message and "/month" in r.message


def test_no_switch_when_only_worse_models_are_cheaper() -> None:
    history = [rec("small", 3000, 300, t, metadata={"task": "code"}) for t in spread(50)]
    kinds = {r.kind for r in opt().recommendations(history)}
    assert "switch_model" not in kinds  # tiny is cheaper but scores 60 < 80


def test_unknown_task_is_judged_on_every_task() -> None:
    weak_code = {**dict.fromkeys(TASKS, 82), "code": 50}
    models = {**MODELS, "small": {"context_window": 200_000, "quality": weak_code}}
    o = CostOptimizer(PRICES, models=models)
    history = [rec("big", 3000, 300, t, endpoint="/api/v1/things") for t in spread(20)]
    r = only(o.recommendations(history), "switch_model")
    assert r.evidence["alternative"] == "cachey"  # small fails 'code', so it cannot be assumed


def test_switch_respects_required_capabilities() -> None:
    models = {**MODELS, "small": {**MODELS["small"], "capabilities": []}}
    models["cachey"] = {**MODELS["cachey"], "capabilities": ["vision"]}
    history = [
        rec("big", 3000, 300, t, metadata={"task": "chat", "requires": ["vision"]})
        for t in spread(20)
    ]
    r = only(CostOptimizer(PRICES, models=models).recommendations(history), "switch_model")
    assert r.evidence["alternative"] == "cachey"


def test_prompt_caching_for_a_repeated_long_prefix() -> None:
    meta = {"task": "chat", "prefix_hash": "sys-v1", "prefix_tokens": 5000}
    history = [
        rec("cachey", 6000, 100, T0 + timedelta(seconds=60 * k), metadata=meta) for k in range(10)
    ]
    r = only(opt().recommendations(history), "prompt_caching")
    # first call writes 5000 tokens (+$0.75/M), the other 9 read them ($3.00 -> $0.30 per M)
    write_premium = 5000 * 750
    read_saving = 9 * 5000 * 2700
    assert r.monthly_saving_nanos == monthly(read_saving - write_premium)
    assert r.evidence["prefixes"][0]["cache_reads"] == 9


def test_no_caching_advice_when_calls_are_further_apart_than_the_ttl() -> None:
    meta = {"prefix_hash": "sys-v1", "prefix_tokens": 5000}
    history = [
        rec("cachey", 6000, 100, T0 + timedelta(minutes=10 * k), metadata=meta) for k in range(10)
    ]
    assert "prompt_caching" not in {r.kind for r in opt().recommendations(history)}


def test_no_caching_advice_when_already_cached_or_short() -> None:
    short = {"prefix_hash": "p", "prefix_tokens": 500}
    history = [
        rec("cachey", 6000, 100, T0 + timedelta(seconds=k), metadata=short) for k in range(10)
    ]
    history += [
        rec(
            "cachey",
            6000,
            100,
            T0 + timedelta(seconds=k),
            cache_read_tokens=5000,
            metadata={"prefix_hash": "q", "prefix_tokens": 5000},
        )
        for k in range(10)
    ]
    assert "prompt_caching" not in {r.kind for r in opt().recommendations(history)}


def test_cap_max_tokens_when_outputs_are_far_below_it() -> None:
    history = [
        rec("tiny", 200, 100 + 5 * k, t, metadata={"max_tokens": 4000}, endpoint="classify")
        for k, t in enumerate(spread(20))
    ]
    r = only(opt().recommendations(history), "cap_max_tokens")
    assert r.evidence["longest_output_tokens"] == 195
    assert r.evidence["suggested_max_tokens"] == 250  # 195 x 1.25 rounded up to 50
    assert r.monthly_saving_nanos == 0  # billing is per generated token: honest $0
    # reservations shrink by (4000 - 250) output tokens x $0.10/M per call
    expected = monthly(20 * 3750 * 100)
    assert r.evidence["reservation_reduction_usd_per_month"] == expected / 1e9


def test_no_cap_advice_when_outputs_use_the_budget() -> None:
    history = [rec("tiny", 200, 1500, t, metadata={"max_tokens": 4000}) for t in spread(20)]
    assert "cap_max_tokens" not in {r.kind for r in opt().recommendations(history)}


def test_batch_api_for_calls_that_are_not_latency_bound() -> None:
    o = CostOptimizer()
    history = [rec("gpt-4o", 1000, 200, t, metadata={"latency_bound": False}) for t in spread(50)]
    history += [rec("gpt-4o", 1000, 200, t, endpoint="/chat") for t in spread(50)]
    r = only(o.recommendations(history), "batch_api")
    # gpt-4o: 1000 x $2.50/M + 200 x $10/M = $0.0045/call; batch is half price
    assert r.evidence["calls"] == 50
    assert r.monthly_saving_nanos == monthly(50 * 2_250_000)


def test_batch_detected_from_endpoint_words_but_not_where_no_batch_price_exists() -> None:
    history = [rec("big", 1000, 200, t, endpoint="/nightly-report") for t in spread(50)]
    # custom prices carry no batch discount: nothing to claim
    assert "batch_api" not in {r.kind for r in opt().recommendations(history)}


def test_trim_prompts_that_dominate_cost() -> None:
    history = [rec("big", 8000, 50, t, endpoint="/rag") for t in spread(20)]
    recs = opt().recommendations(history)
    r = only(recs, "trim_prompt")
    # 25% of 160,000 input tokens at $10/M = $0.40 over one day
    assert r.monthly_saving_nanos == monthly(40_000 * 10_000)
    assert r.evidence["input_share"] > 0.9


def test_no_trim_advice_for_output_heavy_calls() -> None:
    history = [rec("big", 3000, 2000, t, endpoint="/write") for t in spread(20)]
    assert "trim_prompt" not in {r.kind for r in opt().recommendations(history)}


def test_retries_with_the_same_request_id() -> None:
    history = [
        rec("small", 100, 10, T0, request_id="r1", cost_usd=0.01, status="error"),
        rec(
            "small",
            100,
            10,
            T0 + timedelta(seconds=1),
            request_id="r1",
            cost_usd=0.01,
            status="error",
        ),
        rec("small", 100, 10, T0 + timedelta(seconds=2), request_id="r1", cost_usd=0.01),
        rec("small", 100, 10, T0 + timedelta(seconds=3), request_id="r2", cost_usd=0.01),
    ]
    r = only(opt().recommendations(history), "retries")
    assert r.evidence["extra_rows"] == 2 and r.evidence["failed_rows"] == 2
    assert r.monthly_saving_nanos == monthly(2 * 10_000_000)


def test_duplicate_prompts_by_hash() -> None:
    history = [
        rec(
            "small",
            100,
            10,
            T0 + timedelta(hours=k),
            cost_usd=0.002,
            metadata={"prompt_hash": "h1"},
        )
        for k in range(5)
    ]
    history.append(rec("small", 100, 10, T0, cost_usd=0.002, metadata={"prompt_hash": "h2"}))
    r = only(opt().recommendations(history), "duplicates")
    assert r.evidence["extra_calls"] == 4
    assert r.monthly_saving_nanos == monthly(4 * 2_000_000)


def test_a_lean_history_gets_no_advice() -> None:
    history = [rec("tiny", 300, 100, t, endpoint="classify") for t in spread(30)]
    assert opt().recommend_optimizations(history) == []


def test_advice_is_sorted_by_saving_and_strings_match_structured_form() -> None:
    history = [
        rec("big", 8000, 50, t, endpoint="/rag", request_id=f"id{i % 40}")
        for i, t in enumerate(spread(60))
    ]
    history += [
        rec(
            "cachey",
            6000,
            100,
            T0 + timedelta(seconds=60 * k),
            metadata={"prefix_hash": "s", "prefix_tokens": 5000},
        )
        for k in range(10)
    ]
    o = opt()
    recs = o.recommendations(history)
    assert len({r.kind for r in recs}) >= 3
    savings = [r.monthly_saving_nanos for r in recs]
    assert savings == sorted(savings, reverse=True)
    assert o.recommend_optimizations(history) == [r.message for r in recs]
    for r in recs:
        d = r.to_dict()
        assert d["kind"] == r.kind and d["monthly_saving_usd"] == r.monthly_saving_usd


def test_records_without_cost_are_priced_and_unknown_models_skipped() -> None:
    history = [rec("big", 3000, 300, t, metadata={"task": "summarization"}) for t in spread(10)]
    history += [rec("mystery-model", 3000, 300, t) for t in spread(10)]
    r = only(opt().recommendations(history), "switch_model")
    assert r.model == "big"


def test_ledger_rows_are_accepted() -> None:
    rows = [
        StoredRecord(
            id=k,
            ts_us=int((T0 + timedelta(hours=k)).timestamp() * 1e6),
            model="big",
            provider=None,
            input_tokens=3000,
            output_tokens=300,
            cache_read_tokens=0,
            cache_write_tokens=0,
            reasoning_tokens=0,
            cost_nanos=39_000_000,
            user_id=None,
            team=None,
            key=None,
            endpoint="summarization",
            request_id=None,
            tags=(),
            latency_ms=None,
            status="ok",
            estimated=False,
            price_source="custom",
        )
        for k in range(25)
    ]
    r = only(opt().recommendations(rows), "switch_model")
    assert r.task == "summarization" and r.evidence["alternative"] == "small"


@pytest.mark.parametrize("bad", [None, 42, "records"])
def test_bad_input_is_a_typed_error(bad: object) -> None:
    with pytest.raises(InvalidInputError):
        opt().recommend_optimizations(bad)  # type: ignore[arg-type]


def test_bad_options_are_typed_errors() -> None:
    with pytest.raises(InvalidInputError):
        opt().recommendations([], trim_fraction=1.5)
    with pytest.raises(InvalidInputError):
        opt().recommendations([], min_monthly_saving=-1)
