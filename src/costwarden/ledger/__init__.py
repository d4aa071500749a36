"""Ledgers: where usage, totals, holds and alert claims live. Chosen by URL.

``memory://`` (one process, nothing kept), ``sqlite:///spend.db`` (the embedded default for
the CLI and tools; many threads and processes on one host) and ``postgresql://...`` (many
hosts sharing one budget; needs the ``[postgres]`` extra).
"""

from __future__ import annotations

from costwarden.errors import ConfigurationError
from costwarden.ledger.base import (
    Bucket,
    BucketUsage,
    Delivery,
    Denial,
    Ledger,
    LedgerEvent,
    LimitCheck,
)
from costwarden.ledger.billing import BillingLedger, BillLine, StreamingLedger, stream_records
from costwarden.ledger.inspect import InspectableLedger
from costwarden.ledger.memory import MemoryLedger
from costwarden.ledger.sqlite import SQLiteLedger
from costwarden.records import NewRecord


def open_ledger(url: str) -> Ledger:
    """Open the ledger a URL names."""
    if not isinstance(url, str):
        raise ConfigurationError(f"ledger URL must be a string, got {type(url).__name__}")
    if url == "memory://" or url.startswith("memory://"):
        return MemoryLedger(url)
    if url.startswith("sqlite://"):
        return SQLiteLedger(url)
    if url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        try:
            from costwarden.ledger.postgres import PostgresLedger
        except ImportError as exc:  # psycopg missing
            raise ConfigurationError(
                "a PostgreSQL ledger needs the postgres extra: "
                f"pip install 'costwarden[postgres]' ({exc})"
            ) from exc
        ledger: Ledger = PostgresLedger(url)
        return ledger
    raise ConfigurationError(
        f"unknown ledger URL {url!r}: use memory://, sqlite:///path.db or postgresql://..."
    )


__all__ = [
    "BillLine",
    "BillingLedger",
    "Bucket",
    "BucketUsage",
    "Delivery",
    "Denial",
    "InspectableLedger",
    "Ledger",
    "LedgerEvent",
    "LimitCheck",
    "MemoryLedger",
    "NewRecord",
    "SQLiteLedger",
    "StreamingLedger",
    "open_ledger",
    "stream_records",
]
