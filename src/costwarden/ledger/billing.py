"""Imported provider bills, and a streaming read of the records: two small ledger extensions.

Why bills live in the ledger: tracked spend is only trusted once it has been compared with what
the provider charged (LiteLLM users reconcile by hand, and find proxies off by orders of
magnitude). ``costwarden import`` stores the lines of a provider's cost export here, and the
``report --vs-billed`` command and the dashboard's "tracked vs billed" view read them back, from
any process, on every backend.

A :class:`BillLine` is one amount the provider billed for one window (an OpenAI cost bucket, an
Anthropic cost-report result): its identity is ``(provider, start_us, account, model, item)``, so
importing the same export twice replaces the lines instead of counting them twice.

Why a streaming iterator: a report or export of a million records must not hold them all.
``iter_records`` reads in batches by ``(ts_us, id)`` key ranges (no cursor or transaction stays
open between batches, so writers are never blocked by a slow reader) in the order of
:meth:`Ledger.records`.

Both are separate Protocols so a third-party ledger without them still is a :class:`Ledger`;
:func:`stream_records` falls back to ``records()`` for such a ledger.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Final, Protocol, runtime_checkable

from costwarden.bounds import MAX_NAME_LENGTH
from costwarden.errors import InvalidInputError
from costwarden.money import Nanos
from costwarden.records import StoredRecord

BATCH: Final = 5_000
"""Records read per query by ``iter_records`` (measured: larger batches gain nothing)."""
_INT64: Final = 2**63


@dataclass(frozen=True, slots=True)
class BillLine:
    """One billed amount: ``cost_nanos`` charged for ``[start_us, end_us)`` (UTC microseconds).

    ``model`` is None for a charge not tied to a model (a tool, a storage fee); ``item`` is the
    provider's line-item text (``"gpt-4o-2024-08-06, input"``, ``"cache_read_input_tokens"``);
    ``account`` a project or workspace id ("" for the whole organization). ``source`` names
    the export format it came from, ``imported_at`` when (epoch seconds). A credit is a
    negative ``cost_nanos``.
    """

    provider: str
    start_us: int
    end_us: int
    model: str | None
    item: str
    cost_nanos: Nanos
    account: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    requests: int = 0
    source: str = ""
    imported_at: float = 0.0

    def __post_init__(self) -> None:
        for name in ("provider", "item", "account", "source"):
            value = getattr(self, name)
            if not isinstance(value, str) or len(value) > MAX_NAME_LENGTH:
                raise InvalidInputError(
                    f"bill line {name} must be a string of at most {MAX_NAME_LENGTH} "
                    f"characters, got {value!r}"
                )
        if not self.provider:
            raise InvalidInputError("a bill line needs a provider name")
        if self.model is not None and (
            not isinstance(self.model, str) or not self.model or len(self.model) > MAX_NAME_LENGTH
        ):
            raise InvalidInputError(f"bill line model must be a name or None, got {self.model!r}")
        for name in ("start_us", "end_us", "cost_nanos", "input_tokens", "output_tokens"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or abs(value) >= _INT64:
                raise InvalidInputError(f"bill line {name} must be an int64, got {value!r}")
        for name in ("input_tokens", "output_tokens", "requests"):
            if getattr(self, name) < 0:
                raise InvalidInputError(f"bill line {name} must be >= 0, got {getattr(self, name)}")
        if self.end_us <= self.start_us:
            raise InvalidInputError(
                f"a bill line's window must end after it starts ({self.start_us} .. {self.end_us})"
            )

    @property
    def key(self) -> tuple[str, int, str, str, str]:
        """The identity a re-import replaces: provider, window start, account, model, item."""
        return (self.provider, self.start_us, self.account, self.model or "", self.item)


@runtime_checkable
class BillingLedger(Protocol):
    """A ledger that keeps imported bill lines (memory, SQLite and PostgreSQL do)."""

    def put_bill_lines(self, lines: Sequence[BillLine]) -> int:
        """Store ``lines`` in one transaction, replacing any with the same :attr:`~BillLine.key`;
        return how many were written."""
        ...

    def bill_lines(
        self,
        since_us: int | None = None,
        until_us: int | None = None,
        provider: str | None = None,
    ) -> list[BillLine]:
        """Lines whose window starts in ``[since_us, until_us)``, oldest first."""
        ...


@runtime_checkable
class StreamingLedger(Protocol):
    """A ledger that can hand its records over in batches (every built-in one)."""

    def iter_records(
        self, since_us: int | None = None, until_us: int | None = None, batch: int = BATCH
    ) -> Iterator[StoredRecord]:
        """The records of ``[since_us, until_us)`` in ``(ts_us, id)`` order, ``batch`` at a
        time: memory stays bounded whatever the ledger's size."""
        ...


def stream_records(
    ledger: object, since_us: int | None = None, until_us: int | None = None, batch: int = BATCH
) -> Iterator[StoredRecord]:
    """``ledger.iter_records(...)`` where it has it, else its ``records(...)`` list."""
    if isinstance(ledger, StreamingLedger):
        return ledger.iter_records(since_us, until_us, batch)
    records = ledger.records(since_us, until_us)  # type: ignore[attr-defined]
    return iter(records)


def check_batch(batch: int) -> int:
    """Check a batch size is a positive int (not a bool) before it reaches SQL."""
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise InvalidInputError(f"batch must be a positive int, got {batch!r}")
    return batch


LOW_US: Final = -(2**62)
HIGH_US: Final = 2**62


def after_key(rows: Sequence[StoredRecord]) -> tuple[int, int]:
    """The ``(ts_us, id)`` the next batch starts after."""
    last = rows[-1]
    return last.ts_us, last.id


__all__ = [
    "BATCH",
    "BillLine",
    "BillingLedger",
    "StreamingLedger",
    "stream_records",
]
