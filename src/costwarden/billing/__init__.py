"""Provider bills and usage files brought into the ledger, and tracked spend checked against
the bill (``costwarden import``, ``costwarden report --vs-billed``).

See :mod:`costwarden.billing.formats` for the bill formats accepted (OpenAI's costs and usage
API pages and a costs CSV; Anthropic's cost and usage reports) and
:mod:`costwarden.billing.usage` for usage records in JSONL or CSV.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from costwarden.billing.compare import NO_MODEL, BilledRow, canonical_model, compare
from costwarden.billing.formats import BILL_FORMATS, PARSERS, sniff_json
from costwarden.billing.usage import read_usage
from costwarden.errors import InvalidInputError
from costwarden.ledger.billing import BillLine
from costwarden.pricing import PriceCatalog
from costwarden.records import UsageRecord

USAGE_FORMATS: Final = ("usage-jsonl", "usage-csv")
FORMATS: Final = ("auto", *USAGE_FORMATS, *BILL_FORMATS)


@dataclass
class Imported:
    """What a file held: bill lines or usage records (one kind per file), and its format."""

    format: str
    lines: list[BillLine] = field(default_factory=list)
    records: list[UsageRecord] = field(default_factory=list)


def detect_format(text: str, name: str) -> str:
    """The format of a file, from its content (the name's extension only breaks ties)."""
    stripped = text.lstrip()
    if not stripped:
        raise InvalidInputError(f"{name} is empty")
    if stripped[0] in "[{":
        try:
            doc = json.loads(stripped)
        except ValueError:
            doc = None
            first = stripped.splitlines()[0]
            try:
                head = json.loads(first)
            except ValueError:
                raise InvalidInputError(f"{name}: neither JSON nor JSONL") from None
            if isinstance(head, dict) and "data" in head:
                found = sniff_json([head])
                if found:
                    return found
            return "usage-jsonl"
        pages = doc if isinstance(doc, list) else [doc]
        found = sniff_json(pages)
        if found:
            return found
        if (isinstance(doc, dict) and "model" in doc) or isinstance(doc, list):
            return "usage-jsonl"
        raise InvalidInputError(
            f"{name}: a JSON document that is no known bill format; give --format "
            f"({', '.join(FORMATS[1:])})"
        )
    header = stripped.splitlines()[0].lower()
    columns = {c.strip().strip('"') for c in header.split(",")}
    if "model" in columns and ("timestamp" in columns or "ts" in columns):
        return "usage-csv"
    if columns & {"amount_value", "amount", "cost"} and columns & {"start_time", "date", "day"}:
        return "openai-costs-csv"
    raise InvalidInputError(
        f"{name}: CSV columns {sorted(columns)} are neither usage (model, timestamp, ...) nor "
        "a costs export (start_time, amount_value, ...); give --format"
    )


def read_import(
    path: str | Path, fmt: str = "auto", *, catalog: PriceCatalog, imported_at: float = 0.0
) -> Imported:
    """Parse a usage or bill file completely (a bad row fails the whole file)."""
    if fmt not in FORMATS:
        raise InvalidInputError(f"import format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    p = Path(path)
    text = p.read_text(encoding="utf-8-sig")
    name = p.name
    if fmt == "auto":
        fmt = detect_format(text, name)
    if fmt in USAGE_FORMATS:
        return Imported(fmt, records=read_usage(text, name, fmt))
    lines = PARSERS[fmt](text, name, catalog=catalog)
    if imported_at:
        from dataclasses import replace

        lines = [replace(x, imported_at=imported_at) for x in lines]
    return Imported(fmt, lines=lines)


__all__ = [
    "FORMATS",
    "NO_MODEL",
    "BillLine",
    "BilledRow",
    "Imported",
    "canonical_model",
    "compare",
    "detect_format",
    "read_import",
]
