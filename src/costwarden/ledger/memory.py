"""In-memory ledger: the default for a bare ``BudgetManager(budget)``; one process only.

Same semantics as the SQLite and PostgreSQL ledgers (the conformance suite runs on all
three); a lock makes each operation atomic across threads. Nothing survives the process.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Final

from costwarden import forksafe
from costwarden.errors import LedgerError
from costwarden.ledger.base import (
    MINUTE,
    Bucket,
    BucketUsage,
    Delivery,
    Denial,
    LedgerEvent,
    LimitCheck,
)
from costwarden.ledger.billing import BATCH, HIGH_US, LOW_US, BillLine, check_batch
from costwarden.ledger.memory_control import MemoryControl, MemoryControlState
from costwarden.ledger.outbox import DeliveryOutcomes, Outcome
from costwarden.ledger.rollup_memory import MemoryRollups
from costwarden.money import Nanos
from costwarden.records import NewRecord, StoredRecord

_Key = tuple[str, str, int]  # (scope, period, start)


class MemoryLedger(MemoryRollups, MemoryControl, DeliveryOutcomes):
    """A ledger held in this process's memory."""

    remote: Final = False
    """Calls take microseconds and never wait on I/O: async callers run them inline."""

    def __init__(self, url: str = "memory://") -> None:
        self.url = url
        self._lock = forksafe.fresh_after_fork(threading.RLock())
        self._records: list[StoredRecord] = []
        self._spent: dict[_Key, int] = defaultdict(int)
        self._count: dict[_Key, int] = defaultdict(int)
        self._baseline: dict[_Key, int] = defaultdict(int)
        # hold_id -> list of (bucket key, amount, expires_at)
        self._holds: dict[str, list[tuple[_Key, int, float]]] = {}
        self._reserved: dict[_Key, dict[str, tuple[int, float]]] = defaultdict(dict)
        self._events: list[LedgerEvent] = []
        self._claims: set[str] = set()
        self._deliveries: list[Delivery] = []
        self._closed = False
        self._control = MemoryControlState()  # budgets, keys, audit: memory_control

    # -- helpers ------------------------------------------------------------------------------
    def _alive(self) -> None:
        if self._closed:
            raise LedgerError("this ledger is closed; open a new one")

    def _spent_net(self, bucket: Bucket) -> int:
        if bucket.is_rolling:
            return sum(
                v
                for (scope, period, start), v in self._spent.items()
                if scope == bucket.scope and period == MINUTE and bucket.start <= start < bucket.end
            )
        key = bucket.key
        return self._spent.get(key, 0) - self._baseline.get(key, 0)

    def _reserved_live(self, bucket: Bucket, now: float) -> int:
        holds = self._reserved.get(bucket.hold_key)
        if not holds:
            return 0
        return sum(amount for amount, expires in holds.values() if expires > now)

    def _first_denial(
        self, amount: Nanos, checks: Sequence[LimitCheck], now: float
    ) -> Denial | None:
        # _spent_net and _reserved_live written out for calendar buckets, which every admission
        # checks (a fifth of the memory ledger's reserve, bench_vs_litellm); rolling ones call.
        spent_by_key, baseline, reserved_by_key = self._spent, self._baseline, self._reserved
        for chk in checks:
            bucket = chk.bucket
            if bucket.is_rolling:
                spent = self._spent_net(bucket)
            else:
                key = bucket.key
                spent = spent_by_key.get(key, 0) - baseline.get(key, 0)
            holds = reserved_by_key.get(bucket.hold_key)
            reserved = sum(a for a, expires in holds.values() if expires > now) if holds else 0
            if spent + reserved + amount > chk.limit:
                return Denial(chk, spent, reserved, amount)
        return None

    # -- admission ----------------------------------------------------------------------------
    def reserve(
        self,
        hold_id: str,
        amount: Nanos,
        checks: Sequence[LimitCheck],
        expires_at: float,
        now: float,
    ) -> Denial | None:
        with self._lock:
            self._alive()
            denial = self._first_denial(amount, checks, now)
            if denial is not None:
                return denial
            if hold_id in self._holds:
                raise LedgerError(f"hold {hold_id!r} already exists")
            if not checks:
                return None  # nothing to hold against (as the SQL ledgers: no rows)
            entries = []
            for chk in checks:
                key = chk.bucket.hold_key
                self._reserved[key][hold_id] = (amount, expires_at)
                entries.append((key, amount, expires_at))
            self._holds[hold_id] = entries
            return None

    def check(self, amount: Nanos, checks: Sequence[LimitCheck], now: float) -> Denial | None:
        with self._lock:
            self._alive()
            return self._first_denial(amount, checks, now)

    def _drop_hold(self, hold_id: str) -> bool:
        entries = self._holds.pop(hold_id, None)
        if entries is None:
            return False
        for key, _amount, _exp in entries:
            self._reserved[key].pop(hold_id, None)
        return True

    def append(
        self,
        record: NewRecord,
        buckets: Sequence[Bucket],
        hold_id: str | None = None,
        *,
        watch: Sequence[Bucket] = (),
    ) -> tuple[StoredRecord, list[BucketUsage]]:
        with self._lock:
            self._alive()
            stored = record.stored(len(self._records) + 1)
            self._records.append(stored)
            cost, spent, count = record.cost_nanos, self._spent, self._count
            for b in buckets:
                spent[b.key] += cost
                count[b.key] += 1
            if hold_id is not None:
                self._drop_hold(hold_id)
            # The watched buckets as usage() reports them, less the reserved amounts (which
            # the caller does not read, so they are not summed).
            baseline = self._baseline
            watched = []
            for b in watch:
                n = count.get(b.key, 0)
                if b.is_rolling:
                    watched.append(BucketUsage(self._spent_net(b), 0, n, 0))
                else:
                    base = baseline.get(b.key, 0)
                    watched.append(BucketUsage(spent.get(b.key, 0) - base, 0, n, base))
            return stored, watched

    def release(self, hold_id: str) -> bool:
        with self._lock:
            self._alive()
            return self._drop_hold(hold_id)

    def hold_exists(self, hold_id: str, now: float) -> bool:
        with self._lock:
            entries = self._holds.get(hold_id)
            return entries is not None and all(exp > now for _k, _a, exp in entries)

    def usage(self, buckets: Sequence[Bucket], now: float) -> list[BucketUsage]:
        with self._lock:
            self._alive()
            out = []
            for b in buckets:
                out.append(
                    BucketUsage(
                        spent=self._spent_net(b),
                        reserved=self._reserved_live(b, now),
                        count=self._count.get(b.key, 0),
                        baseline=0 if b.is_rolling else self._baseline.get(b.key, 0),
                    )
                )
            return out

    def reset(self, bucket: Bucket, now: float, detail: str | None = None) -> Nanos:
        with self._lock:
            self._alive()
            key = bucket.key
            amount = self._spent.get(key, 0) - self._baseline.get(key, 0)
            self._baseline[key] = self._spent.get(key, 0)
            self._events.append(
                LedgerEvent(len(self._events) + 1, now, "reset", *key, amount=amount, detail=detail)
            )
            return amount

    def events(self, limit: int = 100) -> list[LedgerEvent]:
        with self._lock:
            return list(reversed(self._events))[:limit]

    def purge_expired_holds(self, now: float) -> int:
        with self._lock:
            expired = [
                h for h, entries in self._holds.items() if any(e <= now for _k, _a, e in entries)
            ]
            for h in expired:
                self._drop_hold(h)
            return len(expired)

    # -- history ------------------------------------------------------------------------------
    def records(
        self, since_us: int | None = None, until_us: int | None = None, limit: int | None = None
    ) -> list[StoredRecord]:
        with self._lock:
            out = [
                r
                for r in self._records
                if (since_us is None or r.ts_us >= since_us)
                and (until_us is None or r.ts_us < until_us)
            ]
        out.sort(key=lambda r: (r.ts_us, r.id))
        return out if limit is None else out[:limit]

    def count_records(self) -> int:
        with self._lock:
            return len(self._records)

    def series(self, scope: str, period: str, since: int, until: int) -> list[tuple[int, int]]:
        with self._lock:
            return sorted(
                (start, v - self._baseline.get((s, p, start), 0))
                for (s, p, start), v in self._spent.items()
                if s == scope and p == period and since <= start < until
            )

    # -- alert outbox -------------------------------------------------------------------------
    def claim_alert(
        self, dedup_key: str, payload: str, channels: Sequence[str], now: float
    ) -> bool:
        with self._lock:
            self._alive()
            if dedup_key in self._claims:
                return False
            self._claims.add(dedup_key)
            for ch in channels:
                self._deliveries.append(
                    Delivery(
                        len(self._deliveries) + 1,
                        dedup_key,
                        ch,
                        payload,
                        "pending",
                        0,
                        now,
                        now,
                        None,
                        None,
                    )
                )
            return True

    def lease_deliveries(self, now: float, lease_seconds: float, limit: int) -> list[Delivery]:
        with self._lock:
            out: list[Delivery] = []
            for i, d in enumerate(self._deliveries):
                if len(out) >= limit:
                    break
                if (
                    d.status == "pending"
                    and d.next_attempt_at is not None
                    and d.next_attempt_at <= now
                ):
                    leased = replace(d, next_attempt_at=now + lease_seconds)
                    self._deliveries[i] = leased
                    out.append(leased)
            return out

    def _store_outcome(self, delivery_id: int, outcome: Outcome) -> bool:
        with self._lock:
            i = delivery_id - 1
            if not 0 <= i < len(self._deliveries):
                return False
            d = self._deliveries[i]
            self._deliveries[i] = replace(
                d,
                status=outcome.status,
                attempts=d.attempts + 1,
                next_attempt_at=outcome.next_attempt_at,
                last_error=outcome.last_error,
                delivered_at=d.delivered_at
                if outcome.delivered_at is None
                else outcome.delivered_at,
            )
            return True

    def deliveries(self, since: float | None = None, limit: int = 100) -> list[Delivery]:
        with self._lock:
            out = [d for d in self._deliveries if since is None or d.created_at >= since]
        return list(reversed(out))[:limit]

    def close(self) -> None:
        self._closed = True

    # -- streaming reads and imported bills (see ledger/billing.py) ----------------------------
    def iter_records(
        self, since_us: int | None = None, until_us: int | None = None, batch: int = BATCH
    ) -> Iterator[StoredRecord]:
        check_batch(batch)
        return iter(self.records(since_us, until_us))

    def put_bill_lines(self, lines: Sequence[BillLine]) -> int:
        with self._lock:
            self._alive()
            bills = self.__dict__.setdefault("_bills", {})
            for line in lines:
                bills[line.key] = line
        return len(lines)

    def bill_lines(
        self, since_us: int | None = None, until_us: int | None = None, provider: str | None = None
    ) -> list[BillLine]:
        with self._lock:
            lines = list(self.__dict__.get("_bills", {}).values())
        low = LOW_US if since_us is None else since_us
        high = HIGH_US if until_us is None else until_us
        found = [
            x
            for x in lines
            if low <= x.start_us < high and (provider is None or x.provider == provider)
        ]
        return sorted(
            found, key=lambda x: (x.start_us, x.provider, x.account, x.model or "", x.item)
        )
