"""Provider bill exports read into :class:`~costwarden.ledger.billing.BillLine` s.

Accepted formats (``costwarden import --format``; ``auto`` tells them apart by their shape):

``openai-costs``
    The JSON page of OpenAI's ``GET /v1/organization/costs``: ``{"object": "page", "data":
    [bucket...]}``, each bucket ``{"start_time", "end_time"`` (Unix seconds) ``, "results":
    [{"amount": {"value": 0.06, "currency": "usd"}, "line_item", "project_id"}]}``. Several
    pages may be given as a JSON list of pages or one page per line (JSONL). The model is the
    part of ``line_item`` before its comma (``"gpt-4o-2024-08-06, input"``); a line item
    without one (``"Image models"``) has no model.
``openai-usage``
    The JSON page of OpenAI's ``GET /v1/organization/usage/completions`` (results
    ``organization.usage.completions.result`` with ``input_tokens``, ``input_cached_tokens``,
    ``output_tokens``, ``num_model_requests``, ``model``, ``project_id``): token counts, priced
    here at the catalogue's list rates (item ``"usage at list price"``), for when the costs
    endpoint is not available.
``openai-costs-csv``
    A CSV of costs: one row per amount, with the costs API's fields flattened. Columns (names
    matched case-insensitively): ``start_time`` or ``date`` (Unix seconds, ISO date or time;
    required), ``end_time`` (default: one day later), ``amount_value`` or ``amount`` or
    ``cost`` (USD; required), ``amount_currency`` or ``currency`` (default ``usd``),
    ``line_item``, ``project_id``, ``model`` (else taken from ``line_item``).
``anthropic-cost``
    The JSON of Anthropic's ``GET /v1/organizations/cost_report``: ``{"data": [{"starting_at",
    "ending_at"`` (RFC 3339) ``, "results": [{"amount": "123.45"`` (a decimal string in cents:
    $1.2345) ``, "currency": "USD", "model", "description", "cost_type", "token_type",
    "workspace_id", "service_tier", "context_window"}]}], "has_more", "next_page"}``.
``anthropic-usage``
    The JSON of Anthropic's ``GET /v1/organizations/usage_report/messages`` (results with
    ``uncached_input_tokens``, ``cache_read_input_tokens``, ``cache_creation:
    {ephemeral_5m_input_tokens, ephemeral_1h_input_tokens}``, ``output_tokens``,
    ``server_tool_use: {web_search_requests}``, ``model``, ``workspace_id``), priced at the
    catalogue's list rates.

Money is read exactly (``Decimal`` of the text, or of a JSON number's own digits) and rounded
once, half-even, to nano-USD. Anything but USD is refused: a bill in another currency cannot be
compared with tracked USD without a rate nobody here knows.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from costwarden.errors import InvalidInputError, UnknownModelError
from costwarden.ledger.billing import BillLine
from costwarden.money import Nanos, decimal_to_nanos
from costwarden.pricing import PriceCatalog
from costwarden.records import Usage

BILL_FORMATS: Final = (
    "openai-costs",
    "openai-usage",
    "openai-costs-csv",
    "anthropic-cost",
    "anthropic-usage",
)
_DAY_US: Final = 86_400_000_000


def _decimal(value: object, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise InvalidInputError(f"{where}: an amount must be a number, got {value!r}")
    try:
        out = Decimal(str(value).strip()) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        raise InvalidInputError(f"{where}: {value!r} is not a number") from None
    if not out.is_finite():
        raise InvalidInputError(f"{where}: {value!r} is not a finite amount")
    return out


def _usd(currency: object, where: str) -> None:
    if str(currency or "usd").strip().lower() != "usd":
        raise InvalidInputError(
            f"{where}: the amount is in {currency!r}; only USD bills can be compared with "
            "tracked spend"
        )


def _epoch_us(value: object, where: str) -> int:
    """Unix seconds (int, float or digits), an ISO date (midnight UTC) or an RFC 3339 time."""
    if isinstance(value, bool):
        raise InvalidInputError(f"{where}: {value!r} is not a time")
    if isinstance(value, (int, float)):
        return round(value * 1_000_000)
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit():
            return int(text) * 1_000_000
        try:
            if len(text) == 10:
                d = date.fromisoformat(text)
                return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()) * 1_000_000
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            return round(when.timestamp() * 1_000_000)
    raise InvalidInputError(
        f"{where}: {value!r} is not a time (Unix seconds, 2026-11-01 or 2026-11-01T00:00:00Z)"
    )


def _model_of_line_item(item: str) -> str | None:
    head = item.split(",", 1)[0].strip()
    return head if head and " " not in head and "," in item else None


def _pages(text: str, where: str) -> list[Any]:
    """One JSON document, a JSON list of pages, or JSONL (one page per line)."""
    try:
        doc = json.loads(text, parse_float=Decimal)
    except ValueError:
        docs = []
        for n, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    docs.append(json.loads(line, parse_float=Decimal))
                except ValueError as exc:
                    raise InvalidInputError(f"{where}:{n}: not JSON ({exc})") from None
        return docs
    return doc if isinstance(doc, list) else [doc]


def _buckets(pages: list[Any], where: str) -> Iterator[tuple[Mapping[str, Any], str]]:
    for p, page in enumerate(pages, start=1):
        data = page.get("data") if isinstance(page, Mapping) else None
        if not isinstance(data, list):
            raise InvalidInputError(f"{where}: page {p} has no 'data' list of buckets")
        for b, bucket in enumerate(data, start=1):
            if not isinstance(bucket, Mapping) or not isinstance(bucket.get("results"), list):
                raise InvalidInputError(f"{where}: page {p} bucket {b} has no 'results' list")
            yield bucket, f"{where}: page {p} bucket {b}"


def _window(bucket: Mapping[str, Any], start: str, end: str, where: str) -> tuple[int, int]:
    if start not in bucket:
        raise InvalidInputError(f"{where} has no {start!r}")
    lo = _epoch_us(bucket[start], where)
    hi = _epoch_us(bucket[end], where) if bucket.get(end) is not None else lo + _DAY_US
    return lo, hi


def _results(text: str, where: str, start: str, end: str) -> Iterator[tuple[Any, int, int, str]]:
    """Every result of a cost or usage report's pages, with its bucket's window ``[lo, hi)`` and
    where it stands (for errors): the walk all four Admin API readers share."""
    for bucket, at in _buckets(_pages(text, where), where):
        lo, hi = _window(bucket, start, end, at)
        for r, result in enumerate(bucket["results"], start=1):
            yield result, lo, hi, f"{at} result {r}"


def openai_costs(text: str, where: str, **_: Any) -> list[BillLine]:
    """Read an OpenAI costs report (Admin API JSON pages) into bill lines; malformed input is an
    InvalidInputError naming ``where``.
    """
    lines = []
    for result, lo, hi, here in _results(text, where, "start_time", "end_time"):
        amount = result.get("amount") if isinstance(result, Mapping) else None
        if not isinstance(amount, Mapping) or "value" not in amount:
            raise InvalidInputError(f"{here}: no amount.value")
        _usd(amount.get("currency"), here)
        item = str(result.get("line_item") or "")
        lines.append(
            BillLine(
                provider="openai",
                start_us=lo,
                end_us=hi,
                model=_model_of_line_item(item),
                item=item,
                cost_nanos=decimal_to_nanos(_decimal(amount["value"], here)),
                account=str(result.get("project_id") or ""),
                source="openai-costs",
            )
        )
    return lines


def _priced(catalog: PriceCatalog, model: str, usage: Usage, lo: int, where: str) -> Nanos:
    try:
        return catalog.resolve(model).cost_nanos(usage, when=datetime.fromtimestamp(lo / 1e6, UTC))
    except UnknownModelError as exc:
        raise InvalidInputError(f"{where}: cannot price {model!r} at list rates: {exc}") from None


def _count(result: Mapping[str, Any], name: str, where: str) -> int:
    value = result.get(name) or 0
    if isinstance(value, Mapping):
        value = sum(int(v or 0) for v in value.values())
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInputError(f"{where}: {name} must be a count, got {value!r}")
    return value


def _usage_line(
    source: str,
    catalog: PriceCatalog,
    model: str,
    usage: Usage,
    lo: int,
    hi: int,
    here: str,
    result: Mapping[str, Any],
    account: str,
    *,
    requests: str | None = None,
) -> BillLine:
    """One usage-report result as a bill line priced at ``catalog``'s list rates: the usage
    readers differ only in how they count tokens, so the line itself is built here. ``source``
    is ``<provider>-usage``; ``account`` and ``requests`` name the result's fields (the request
    count is read after pricing, so a bad model is reported first, as it always was)."""
    return BillLine(
        provider=source.removesuffix("-usage"),
        start_us=lo,
        end_us=hi,
        model=model,
        item="usage at list price",
        cost_nanos=_priced(catalog, model, usage, lo, here),
        account=str(result.get(account) or ""),
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        requests=0 if requests is None else _count(result, requests, here),
        source=source,
    )


def openai_usage(text: str, where: str, *, catalog: PriceCatalog, **_: Any) -> list[BillLine]:
    """Read an OpenAI usage report into bill lines, pricing its token counts with ``catalog`` (the
    report has no cost).
    """
    lines = []
    for result, lo, hi, here in _results(text, where, "start_time", "end_time"):
        model = result.get("model")
        if not isinstance(model, str) or not model:
            raise InvalidInputError(f"{here}: no model (ask the usage API with group_by=model)")
        n_in, cached = (
            _count(result, "input_tokens", here),
            _count(result, "input_cached_tokens", here),
        )
        n_out = _count(result, "output_tokens", here)
        usage = Usage(input_tokens=n_in, output_tokens=n_out, cache_read_tokens=min(cached, n_in))
        lines.append(
            _usage_line(
                "openai-usage",
                catalog,
                model,
                usage,
                lo,
                hi,
                here,
                result,
                "project_id",
                requests="num_model_requests",
            )
        )
    return lines


def _csv_value(row: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        value = row.get(name)
        if value not in (None, ""):
            return value
    return None


def openai_costs_csv(text: str, where: str, **_: Any) -> list[BillLine]:
    """Read an OpenAI costs CSV export (from the billing page) into bill lines."""
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None:
        raise InvalidInputError(f"{where}: empty CSV")
    lines = []
    for n, raw in enumerate(reader, start=2):
        row = {str(k).strip().lower(): (v or "").strip() for k, v in raw.items() if k}
        here = f"{where}:{n}"
        start = _csv_value(row, "start_time", "date", "start_date", "day")
        amount = _csv_value(row, "amount_value", "amount", "cost", "cost_usd")
        if start is None or amount is None:
            raise InvalidInputError(
                f"{here}: a cost row needs start_time (or date) and amount_value (or amount, "
                f"cost); the columns are {reader.fieldnames}"
            )
        _usd(_csv_value(row, "amount_currency", "currency"), here)
        lo = _epoch_us(start, here)
        end = _csv_value(row, "end_time", "end_date")
        hi = _epoch_us(end, here) if end is not None else lo + _DAY_US
        item = _csv_value(row, "line_item", "description") or ""
        lines.append(
            BillLine(
                provider="openai",
                start_us=lo,
                end_us=hi,
                model=_csv_value(row, "model") or _model_of_line_item(item),
                item=item,
                cost_nanos=decimal_to_nanos(_decimal(amount, here)),
                account=_csv_value(row, "project_id", "project") or "",
                source="openai-costs-csv",
            )
        )
    return lines


def anthropic_cost(text: str, where: str, **_: Any) -> list[BillLine]:
    """Read an Anthropic cost report (Admin API JSON pages) into bill lines; malformed input is an
    InvalidInputError naming ``where``.
    """
    lines = []
    for result, lo, hi, here in _results(text, where, "starting_at", "ending_at"):
        if not isinstance(result, Mapping) or "amount" not in result:
            raise InvalidInputError(f"{here}: no amount")
        _usd(result.get("currency"), here)
        cents = _decimal(result["amount"], here)
        parts = [
            str(result[k])
            for k in (
                "description",
                "cost_type",
                "token_type",
                "service_tier",
                "context_window",
            )
            if result.get(k)
        ]
        lines.append(
            BillLine(
                provider="anthropic",
                start_us=lo,
                end_us=hi,
                model=str(result["model"]) if result.get("model") else None,
                item=", ".join(parts),
                cost_nanos=decimal_to_nanos(cents / 100),
                account=str(result.get("workspace_id") or ""),
                source="anthropic-cost",
            )
        )
    return lines


def anthropic_usage(text: str, where: str, *, catalog: PriceCatalog, **_: Any) -> list[BillLine]:
    """Read an Anthropic usage report into bill lines, pricing its token counts with ``catalog``
    (the report has no cost).
    """
    lines = []
    for result, lo, hi, here in _results(text, where, "starting_at", "ending_at"):
        model = result.get("model")
        if not isinstance(model, str) or not model:
            raise InvalidInputError(f"{here}: no model (ask the usage report with group_by=model)")
        uncached = _count(result, "uncached_input_tokens", here)
        read = _count(result, "cache_read_input_tokens", here)
        creation = result.get("cache_creation") or {}
        if not isinstance(creation, Mapping):
            raise InvalidInputError(f"{here}: cache_creation must be an object")
        write_5m = _count(creation, "ephemeral_5m_input_tokens", here)
        write_1h = _count(creation, "ephemeral_1h_input_tokens", here)
        n_out = _count(result, "output_tokens", here)
        tools = result.get("server_tool_use") or {}
        searches = _count(tools, "web_search_requests", here) if isinstance(tools, Mapping) else 0
        n_in = uncached + read + write_5m + write_1h
        usage = Usage(
            input_tokens=n_in,
            output_tokens=n_out,
            cache_read_tokens=read,
            cache_write_tokens=write_5m,
            cache_write_1h_tokens=write_1h,
            web_searches=searches,
        )
        lines.append(
            _usage_line(
                "anthropic-usage", catalog, model, usage, lo, hi, here, result, "workspace_id"
            )
        )
    return lines


PARSERS: Final[dict[str, Callable[..., list[BillLine]]]] = {
    "openai-costs": openai_costs,
    "openai-usage": openai_usage,
    "openai-costs-csv": openai_costs_csv,
    "anthropic-cost": anthropic_cost,
    "anthropic-usage": anthropic_usage,
}


def sniff_json(pages: Iterable[Any]) -> str | None:
    """Which JSON bill format ``pages`` are, from their first result's fields."""
    for page in pages:
        for bucket in page.get("data") or () if isinstance(page, Mapping) else ():
            if not isinstance(bucket, Mapping):
                return None
            results = bucket.get("results") or []
            first = results[0] if results and isinstance(results[0], Mapping) else {}
            if "starting_at" in bucket:
                if "uncached_input_tokens" in first or "cache_creation" in first:
                    return "anthropic-usage"
                return "anthropic-cost" if "amount" in first or not first else None
            if "start_time" in bucket:
                if isinstance(first.get("amount"), Mapping) or not first:
                    return "openai-costs"
                if "input_tokens" in first:
                    return "openai-usage"
            return None
    return None


__all__ = ["BILL_FORMATS", "PARSERS", "sniff_json"]
