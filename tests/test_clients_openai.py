"""OpenAI Chat Completions and Responses through the real ``openai`` SDK and a fake upstream:
usage conventions, every stream edge case, partial streams, and every failure mode."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import openai
import pytest

from costwarden.budget import Budget
from costwarden.clients import OpenAIProvider, TrackedLLMClient
from costwarden.errors import ProviderResponseError
from costwarden.manager import BudgetManager
from costwarden.records import StoredRecord, Usage
from costwarden.testing.fake_upstream import (
    KEEPALIVE,
    FakeUpstream,
    RecordedRequest,
    Reply,
    auto_reply,
    openai_usage,
    responses_usage,
)
from costwarden.tokens import count_tokens
from tests.helpers import close_after_test

HELLO = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Say hello to the budget."},
]
PIECES = ["Hello", ", budget", "! All", " is well", "."]
TEXT = "".join(PIECES)


@pytest.fixture
def m() -> BudgetManager:
    return BudgetManager(Budget(daily_limit=5.0, monthly_limit=None, per_request_limit=None))


def client(m: BudgetManager, up: FakeUpstream, api: str = "chat", **kw: object) -> TrackedLLMClient:
    timeout = kw.pop("timeout", 5.0)
    provider = OpenAIProvider(
        base_url=up.openai_base_url,
        api_key="test",
        api=api,  # type: ignore[arg-type]
        timeout=timeout,  # type: ignore[arg-type]
    )
    return close_after_test(TrackedLLMClient(m, providers=[provider], **kw))  # type: ignore[arg-type]


def only(m: BudgetManager) -> StoredRecord:
    (rec,) = m.records()
    assert m.get_status()["daily_reserved"] == 0, "every hold must be settled"
    return rec


# -- non-streaming ------------------------------------------------------------------------------


def test_cached_and_reasoning_tokens_are_priced_at_their_rates(
    up: FakeUpstream, m: BudgetManager
) -> None:
    usage = openai_usage(2000, 300, cached=1500, reasoning=200)
    up.enqueue(Reply.openai_chat("ok", usage=usage, model="gpt-4o-2024-08-06"))
    result = client(m, up).complete(HELLO, model="gpt-4o", max_tokens=400)
    rec = only(m)
    assert rec.model == "gpt-4o-2024-08-06", "the model the provider reports is recorded"
    assert (rec.input_tokens, rec.cache_read_tokens, rec.reasoning_tokens) == (2000, 1500, 200)
    expected = m.pricing.cost_nanos("gpt-4o", Usage(2000, 300, 1500, 0, 200))
    assert rec.cost_nanos == expected == result.record.cost_nanos
    # 500 uncached x $2.50 + 1500 cached x $1.25 + 300 x $10 per 1M tokens:
    assert expected == 1_250_000 + 1_875_000 + 3_000_000


def test_responses_api_non_streaming(up: FakeUpstream, m: BudgetManager) -> None:
    up.enqueue(Reply.responses(TEXT, usage=responses_usage(100, 200, reasoning=120), model="gpt-5"))
    text = client(m, up, api="responses").chat(HELLO, model="gpt-5", max_tokens=300)
    assert text == TEXT
    rec = only(m)
    assert (rec.input_tokens, rec.output_tokens, rec.reasoning_tokens) == (100, 200, 120)
    assert rec.cost_nanos == 2_125_000  # $0.002125 at gpt-5 rates (genai-prices test vector)
    sent = up.requests[-1]
    assert sent.path == "/v1/responses"
    body = sent.json()
    assert body["instructions"] == "You are terse." and body["max_output_tokens"] == 300


def test_missing_usage_is_charged_from_the_estimate_and_flagged(
    up: FakeUpstream, m: BudgetManager
) -> None:
    up.enqueue(Reply.openai_chat(TEXT, usage=None))
    result = client(m, up).complete(HELLO, model="gpt-4o-mini", max_tokens=50)
    rec = only(m)
    assert rec.estimated and rec.status == "ok"
    assert rec.input_tokens == result.estimate.input_tokens
    assert rec.output_tokens == count_tokens(TEXT, "gpt-4o-mini").tokens
    assert rec.cost_nanos > 0


# -- streaming ----------------------------------------------------------------------------------

EDGE_CASES = {
    "plain": {},
    "usage_before_content": {"usage_first": {"prompt_tokens": 30, "completion_tokens": 0}},
    "choices_null": {"usage_choices": "null"},
    "choices_absent": {"usage_choices": "absent"},
    "no_done": {"done": False},
    "keepalives": {"keepalives": True},
    "split_usage": {"split_usage": True},
}


@pytest.mark.parametrize("case", sorted(EDGE_CASES))
def test_chat_stream_usage_edge_cases(up: FakeUpstream, m: BudgetManager, case: str) -> None:
    usage = openai_usage(30, 9, cached=10)
    up.enqueue(Reply.openai_chat_stream(PIECES, usage=usage, **EDGE_CASES[case]))  # type: ignore[arg-type]
    stream = client(m, up).chat_stream(HELLO, model="gpt-4o-mini", max_tokens=64)
    assert "".join(stream) == TEXT
    rec = only(m)
    assert (rec.input_tokens, rec.output_tokens, rec.cache_read_tokens) == (30, 9, 10)
    assert rec.status == "ok" and not rec.estimated
    assert rec.cost_nanos == m.pricing.cost_nanos("gpt-4o-mini", Usage(30, 9, 10))
    assert stream.record == rec
    sent = up.requests[-1].json()
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}


def test_stream_keepalive_comments_are_ignored(up: FakeUpstream, m: BudgetManager) -> None:
    frames = [KEEPALIVE, *(Reply.openai_chat_stream(["a"], usage=openai_usage(3, 1)).chunks or [])]
    up.enqueue(Reply.stream(frames))
    assert list(client(m, up).chat_stream(HELLO, model="gpt-4o-mini", max_tokens=8)) == ["a"]
    assert only(m).output_tokens == 1


def test_stream_without_usage_is_charged_by_counting_the_text(
    up: FakeUpstream, m: BudgetManager
) -> None:
    # An OpenAI-compatible server that ignores stream_options.include_usage.
    up.enqueue(Reply.openai_chat_stream(PIECES, usage=None))
    stream = client(m, up).chat_stream(HELLO, model="gpt-4o-mini", max_tokens=64)
    assert "".join(stream) == TEXT
    rec = only(m)
    assert rec.estimated and rec.status == "ok"
    assert rec.output_tokens == count_tokens(TEXT, "gpt-4o-mini").tokens
    assert rec.cost_nanos > 0


def test_stream_cut_mid_way_is_charged_for_what_was_produced(
    up: FakeUpstream, m: BudgetManager
) -> None:
    # role chunk + 2 content chunks, then a TCP reset.
    up.enqueue(Reply.openai_chat_stream(PIECES, usage=openai_usage(30, 9), reset_after=3))
    stream = client(m, up).chat_stream(HELLO, model="gpt-4o-mini", max_tokens=64)
    got = []
    with pytest.raises(openai.APIConnectionError):
        for piece in stream:
            got.append(piece)
    assert got == PIECES[:2]
    rec = only(m)
    assert rec.status == "partial" and rec.estimated
    assert rec.output_tokens == count_tokens("".join(PIECES[:2]), "gpt-4o-mini").tokens
    assert rec.input_tokens > 0 and rec.cost_nanos > 0


def test_stream_cut_before_any_content_still_charges_the_prompt(
    up: FakeUpstream, m: BudgetManager
) -> None:
    up.enqueue(Reply.openai_chat_stream(PIECES, usage=openai_usage(30, 9), reset_after=1))
    stream = client(m, up).chat_stream(HELLO, model="gpt-4o-mini", max_tokens=64)
    with pytest.raises(openai.APIConnectionError):
        list(stream)
    rec = only(m)
    assert rec.status == "partial" and rec.output_tokens == 0 and rec.cost_nanos > 0


def test_abandoned_stream_is_charged_and_its_hold_settled(
    up: FakeUpstream, m: BudgetManager
) -> None:
    up.enqueue(Reply.openai_chat_stream(PIECES, usage=openai_usage(30, 9), chunk_delay=0.01))
    with client(m, up).chat_stream(HELLO, model="gpt-4o-mini", max_tokens=64) as stream:
        first = next(iter(stream))
    assert first == PIECES[0]
    rec = only(m)
    assert rec.status == "aborted" and rec.estimated
    assert rec.output_tokens == count_tokens(PIECES[0], "gpt-4o-mini").tokens
    assert rec.cost_nanos > 0


def test_stream_dropped_without_close_is_settled_on_collection(
    up: FakeUpstream, m: BudgetManager
) -> None:
    up.enqueue(Reply.openai_chat_stream(PIECES, usage=openai_usage(30, 9)))
    for _piece in client(m, up).chat_stream(HELLO, model="gpt-4o-mini", max_tokens=64):
        break
    rec = only(m)
    assert rec.status == "aborted" and rec.cost_nanos > 0


def test_responses_stream_usage_from_the_completed_event(
    up: FakeUpstream, m: BudgetManager
) -> None:
    up.enqueue(Reply.responses_stream(PIECES, usage=responses_usage(37, 11, cached=0)))
    stream = client(m, up, api="responses").chat_stream(HELLO, model="gpt-4o-mini")
    assert "".join(stream) == TEXT
    rec = only(m)
    assert (rec.input_tokens, rec.output_tokens, rec.status) == (37, 11, "ok")


def test_responses_stream_incomplete_without_usage_is_estimated(
    up: FakeUpstream, m: BudgetManager
) -> None:
    up.enqueue(Reply.responses_stream(PIECES, usage=None, terminal="response.incomplete"))
    stream = client(m, up, api="responses").chat_stream(HELLO, model="gpt-4o-mini")
    assert "".join(stream) == TEXT
    rec = only(m)
    assert rec.estimated and rec.output_tokens == count_tokens(TEXT, "gpt-4o-mini").tokens


# -- failures -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, openai.BadRequestError),
        (401, openai.AuthenticationError),
        (429, openai.RateLimitError),
        (500, openai.InternalServerError),
        (503, openai.InternalServerError),
    ],
)
def test_upstream_errors_release_the_hold_and_keep_a_zero_cost_record(
    up: FakeUpstream, m: BudgetManager, status: int, error: type[Exception]
) -> None:
    up.enqueue(Reply.error(status, "nope"))
    with pytest.raises(error) as info:
        client(m, up).chat(HELLO, model="gpt-4o-mini", max_tokens=10)
    assert getattr(info.value, "status_code", None) == status
    rec = only(m)
    assert rec.status == f"error:{status}" and rec.cost_nanos == 0
    assert m.get_status()["daily_spent"] == 0


def test_timeout_releases_the_hold(up: FakeUpstream, m: BudgetManager) -> None:
    up.enqueue(Reply.openai_chat("late", usage=openai_usage(1, 1), delay=1.0))
    with pytest.raises(openai.APITimeoutError):
        client(m, up, timeout=0.2).chat(HELLO, model="gpt-4o-mini", max_tokens=10)
    rec = only(m)
    assert rec.status == "error:timeout" and rec.cost_nanos == 0


def test_connection_reset_releases_the_hold(up: FakeUpstream, m: BudgetManager) -> None:
    up.enqueue(Reply.reset())
    with pytest.raises(openai.APIConnectionError):
        client(m, up).chat(HELLO, model="gpt-4o-mini", max_tokens=10)
    rec = only(m)
    assert rec.status == "error:connection" and rec.cost_nanos == 0


def test_stream_request_failing_before_any_event_bills_nothing(
    up: FakeUpstream, m: BudgetManager
) -> None:
    up.enqueue(Reply.error(429, "slow down"))
    with pytest.raises(openai.RateLimitError):
        client(m, up).chat_stream(HELLO, model="gpt-4o-mini", max_tokens=10)
    assert only(m).cost_nanos == 0


def test_malformed_json_is_a_typed_error_and_charges_the_prompt(
    up: FakeUpstream, m: BudgetManager
) -> None:
    up.enqueue(Reply.malformed_json())
    with pytest.raises(ProviderResponseError, match="malformed JSON"):
        client(m, up).chat(HELLO, model="gpt-4o-mini", max_tokens=10)
    rec = only(m)
    assert rec.status == "error:bad_response" and rec.estimated
    assert rec.output_tokens == 0 and rec.input_tokens > 0 and rec.cost_nanos > 0


def test_malformed_stream_event_is_a_typed_error_and_charges_what_arrived(
    up: FakeUpstream, m: BudgetManager
) -> None:
    good = Reply.openai_chat_stream(["Hi"], usage=None).chunks or []
    up.enqueue(Reply.stream([*good[:2], b'data: {"choices": [\n\n']))
    stream = client(m, up).chat_stream(HELLO, model="gpt-4o-mini", max_tokens=10)
    with pytest.raises(ProviderResponseError):
        list(stream)
    rec = only(m)
    assert rec.status == "partial" and rec.output_tokens == 1


def test_retries_respect_the_hold_and_bill_only_the_success(
    up: FakeUpstream, m: BudgetManager
) -> None:
    up.enqueue(Reply.error(503), Reply.reset(), Reply.openai_chat("ok", usage=openai_usage(5, 1)))
    c = client(m, up, retries=3, backoff=0.01)
    assert c.chat(HELLO, model="gpt-4o-mini", max_tokens=10) == "ok"
    assert len(up.requests) == 3
    rec = only(m)
    assert rec.status == "ok" and (rec.input_tokens, rec.output_tokens) == (5, 1)


def test_non_retryable_errors_are_not_retried(up: FakeUpstream, m: BudgetManager) -> None:
    up.enqueue(Reply.error(400), Reply.openai_chat("never", usage=openai_usage(5, 1)))
    with pytest.raises(openai.BadRequestError):
        client(m, up, retries=3, backoff=0.01).chat(HELLO, model="gpt-4o-mini", max_tokens=10)
    assert len(up.requests) == 1
    assert only(m).status == "error:400"


def test_retries_give_up_after_the_configured_attempts(up: FakeUpstream, m: BudgetManager) -> None:
    up.enqueue(*[Reply.error(500)] * 3)
    with pytest.raises(openai.InternalServerError):
        client(m, up, retries=2, backoff=0.01).chat(HELLO, model="gpt-4o-mini", max_tokens=10)
    assert len(up.requests) == 3
    assert only(m).status == "error:500"


def test_a_ledger_failure_while_settling_never_hides_the_provider_error(
    upstream: FakeUpstream, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The ledger is locked by another connection while the provider fails: the caller
    still gets the provider's error, and the settlement failure is logged."""
    path = tmp_path / "locked.db"
    m = BudgetManager(Budget(daily_limit=5.0), ledger=f"sqlite:///{path}?timeout=0.2")
    blocker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)

    def lock_then_fail(request: RecordedRequest) -> Reply:
        blocker.execute("BEGIN EXCLUSIVE")
        return Reply.error(500, "upstream broke")

    upstream.reset()
    upstream.handler = lock_then_fail
    try:
        with pytest.raises(openai.InternalServerError):
            client(m, upstream).chat(HELLO, model="gpt-4o-mini", max_tokens=10)
    finally:
        upstream.handler = auto_reply
        blocker.execute("ROLLBACK")
        blocker.close()
    assert "could not settle a failed call" in caplog.text
    assert m.records() == []  # nothing could be written; the hold lapses by its TTL
