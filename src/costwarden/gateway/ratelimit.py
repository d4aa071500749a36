"""Per-key request and token rate limits (``rpm``, ``tpm``), shared by every worker and host.

The counts live beside the ledger, in one small table ``gateway_rate(key_id, slot, requests,
tokens)`` of the ledger's own database (the ledger's side tables,
:mod:`costwarden.ledger.side_tables`), so every gateway process on a SQLite file or a
PostgreSQL schema sees the same counts (the in-memory ledger, which has no side tables,
keeps them in the process).

Precision: a sliding window of the last 60 seconds in 1-second slots. A request is admitted
iff the requests counted in the slots of the last 60 s are fewer than ``rpm`` and the tokens
counted there plus this request's estimate (prompt + output bound) are within ``tpm``; the
check and the count are one side transaction per key (SQLite ``BEGIN IMMEDIATE``; PostgreSQL a
transaction-scoped advisory lock per key), so concurrent workers cannot both take the last
slot. When the call ends the estimate is replaced by the tokens actually used (in the slot
the request was counted in). ``Retry-After`` is the time until the oldest counted slot leaves
the window. Slots older than two minutes are deleted as the gateway goes.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeVar

from costwarden.ledger.side_tables import SideExecute, SideTables

T = TypeVar("T")

WINDOW: Final = 60
_PURGE_EVERY: Final = 500

_CREATE: Final = (
    "CREATE TABLE IF NOT EXISTS gateway_rate (key_id TEXT NOT NULL, slot BIGINT NOT NULL, "
    "requests BIGINT NOT NULL, tokens BIGINT NOT NULL, PRIMARY KEY (key_id, slot))"
)


@dataclass(frozen=True, slots=True)
class RateDenial:
    """A refusal by a key's requests- or tokens-per-minute limit, with what was used and when to
    retry.
    """

    limit: str  # "rpm" or "tpm"
    used: int
    allowed: int
    retry_after: float

    @property
    def message(self) -> str:
        """The refusal in words for the error body (which limit, how much used, when to retry)."""
        what = "requests" if self.limit == "rpm" else "tokens"
        return (
            f"this key's {self.limit} limit is {self.allowed} {what} per minute and "
            f"{self.used} were counted in the last 60 s; retry in {self.retry_after:.0f} s"
        )


def _decide(
    rows: list[tuple[int, int, int]], rpm: int | None, tpm: int | None, tokens: int, now: float
) -> RateDenial | None:
    """``rows``: (slot, requests, tokens) within the window, any order."""
    requests = sum(r[1] for r in rows)
    used = sum(r[2] for r in rows)
    oldest = min((r[0] for r in rows), default=int(now))
    retry = max(1.0, oldest + WINDOW - now)
    if rpm is not None and requests + 1 > rpm:
        return RateDenial("rpm", requests, rpm, retry)
    if tpm is not None and used + tokens > tpm:
        return RateDenial("tpm", used, tpm, retry)
    return None


class RateLimiter:
    """Admits against a key's rpm/tpm and counts; see the module doc for the rule."""

    def __init__(self, ledger: object) -> None:
        self.ledger = ledger
        self._shared: SideTables | None = ledger if isinstance(ledger, SideTables) else None
        self._lock = threading.Lock()
        self._memory: defaultdict[str, dict[int, list[int]]] = defaultdict(dict)
        self._created = False
        self._calls = 0

    def _sql(self, shared: SideTables, work: Callable[[SideExecute], T], key_id: str) -> T:
        """``work`` in the ledger's side transaction of this key (the table made on first use).

        The table is made under a lock of its own, not the key's: PostgreSQL's ``CREATE TABLE
        IF NOT EXISTS`` is not safe against itself, and two workers' first requests for two
        different keys at once made one of them fail ("duplicate key value violates unique
        constraint pg_type_typname_nsp_index") when both ran it under their own key's lock."""
        if not self._created:
            shared.side_transaction("rate|create", lambda execute: execute(_CREATE))
            self._created = True
        return shared.side_transaction("rate|" + key_id, work)

    # -- the API ----------------------------------------------------------------------------------
    def admit(
        self, key_id: str, rpm: int | None, tpm: int | None, tokens: int, now: float
    ) -> tuple[RateDenial | None, int]:
        """Check and count one request; (the denial or None, the slot it was counted in)."""
        slot = int(now)
        shared = self._shared
        if shared is None:
            with self._lock:
                slots = self._memory[key_id]
                for old in [s for s in slots if s <= slot - WINDOW]:
                    del slots[old]
                rows = [(s, v[0], v[1]) for s, v in slots.items()]
                denial = _decide(rows, rpm, tpm, tokens, now)
                if denial is None:
                    counts = slots.setdefault(slot, [0, 0])
                    counts[0] += 1
                    counts[1] += tokens
                return denial, slot

        self._calls += 1
        purge = self._calls % _PURGE_EVERY == 1

        def txn(execute: SideExecute) -> RateDenial | None:
            if purge:
                execute("DELETE FROM gateway_rate WHERE slot < ?", (slot - 2 * WINDOW,))
            rows = execute(
                "SELECT slot, requests, tokens FROM gateway_rate WHERE key_id = ? AND slot > ?",
                (key_id, slot - WINDOW),
            ).fetchall()
            denial = _decide([tuple(r) for r in rows], rpm, tpm, tokens, now)
            if denial is None:
                execute(
                    "INSERT INTO gateway_rate (key_id, slot, requests, tokens) VALUES (?,?,1,?) "
                    "ON CONFLICT (key_id, slot) DO UPDATE SET requests = gateway_rate.requests "
                    "+ 1, tokens = gateway_rate.tokens + excluded.tokens",
                    (key_id, slot, tokens),
                )
            return denial

        return self._sql(shared, txn, key_id), slot

    def adjust(self, key_id: str, slot: int, delta: int) -> None:
        """Replace a request's estimated tokens by its actual ones (``delta`` = actual - est)."""
        if not delta:
            return
        shared = self._shared
        if shared is None:
            with self._lock:
                counts = self._memory[key_id].get(slot)
                if counts is not None:
                    counts[1] = max(0, counts[1] + delta)
            return

        def txn(execute: SideExecute) -> None:
            execute(
                "UPDATE gateway_rate SET tokens = CASE WHEN tokens + ? < 0 THEN 0 "
                "ELSE tokens + ? END WHERE key_id = ? AND slot = ?",
                (delta, delta, key_id, slot),
            )

        self._sql(shared, txn, key_id)


__all__ = ["WINDOW", "RateDenial", "RateLimiter"]
