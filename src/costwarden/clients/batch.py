"""Batch API results, recorded at batch rates.

A batch job is not a live call, so nothing is held before it: its results arrive later as a
JSONL file, and this module records each billed result with ``service_tier="batch"`` (the
catalogue's batch rates, or a custom entry's ``batch`` table). Both providers' result lines are
understood, as text, bytes or parsed objects:

* OpenAI (``/v1/batches`` output file): ``{"custom_id", "response": {"status_code", "body"}}``
  with a Chat Completions or Responses body (whose ``service_tier`` says ``"default"``: the
  batch is what makes it a batch price);
* Anthropic (Message Batches results): ``{"custom_id", "result": {"type": "succeeded",
  "message": {...}}}``.

Lines for failed, errored, expired or cancelled requests are not billed by either provider and
are skipped. A line that is not a result at all is a :class:`ProviderResponseError` naming its
line number, raised before anything is recorded.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from costwarden.clients.apis import Api, response_id, response_model, response_usage
from costwarden.clients.attribution import Attribution, usage_record
from costwarden.clients.usage import field
from costwarden.errors import ProviderResponseError
from costwarden.records import StoredRecord, Usage, UsageRecord

if TYPE_CHECKING:
    from costwarden.manager import BudgetManager


def _parsed(line: Any, number: int) -> Any:
    if isinstance(line, (bytes, bytearray)):
        line = line.decode("utf-8")
    if isinstance(line, str):
        if not line.strip():
            return None
        try:
            return json.loads(line)
        except ValueError:
            raise ProviderResponseError(f"batch result line {number} is not JSON") from None
    return line


def _billed(item: Any, number: int) -> tuple[Api, Any, str | None] | None:
    """(api, response body, custom_id) of a billed result line; None for unbilled ones."""
    custom_id = field(item, "custom_id")
    custom = custom_id if isinstance(custom_id, str) else None
    result = field(item, "result")
    if result is not None:  # Anthropic
        if field(result, "type") != "succeeded":
            return None
        return "messages", field(result, "message"), custom
    response = field(item, "response")
    if response is not None or field(item, "error") is not None:  # OpenAI
        status = field(response, "status_code")
        body = field(response, "body")
        if response is None or (isinstance(status, int) and status >= 400) or body is None:
            return None
        kind = field(body, "object")
        return ("responses" if kind == "response" else "chat"), body, custom
    raise ProviderResponseError(
        f"batch result line {number} is neither an OpenAI batch output line (no 'response') "
        "nor an Anthropic Message Batches result (no 'result')"
    )


def record_batch_results(
    manager: BudgetManager,
    results: Iterable[Any],
    *,
    model: str | None = None,
    provider: str | None = None,
    attribution: Attribution | None = None,
) -> list[StoredRecord]:
    """Record every billed line of a batch results file at batch rates; return the records.

    ``model`` is used when a body names none; ``attribution`` (user, team, key, endpoint,
    tags) goes on every record, with each line's ``custom_id`` in its metadata.
    """
    who = attribution or Attribution()
    pending: list[UsageRecord] = []
    for number, line in enumerate(results, start=1):
        item = _parsed(line, number)
        if item is None:
            continue
        billed = _billed(item, number)
        if billed is None:
            continue
        api, body, custom_id = billed
        usage: Usage = response_usage(api, body)
        name = response_model(body, model or "")
        if not name:
            raise ProviderResponseError(
                f"batch result line {number} names no model; pass record_batch_results(model=...)"
            )
        pending.append(
            usage_record(
                usage,
                who,
                model=name,
                provider=provider,
                request_id=response_id(body) or custom_id,
                service_tier="batch",
                metadata={"custom_id": custom_id, "batch": True} if custom_id else {"batch": True},
                cost_usd=None,  # priced at the catalogue's batch rates
                latency_ms=None,  # not a live call
                status="ok",
                estimated=False,
            )
        )
    return [manager.record_spend(record) for record in pending]
