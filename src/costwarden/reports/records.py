"""Raw records as report rows: the columns, exact money text and local times, fast.

Why the care with speed: an export of a million records spends its time here, once per
record. The local time is computed from a cached UTC offset (one zoneinfo look-up per hour of
records, not per record) and nano-USD become their exact decimal text by integer arithmetic.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from datetime import timezone as fixed_offset
from decimal import Decimal
from typing import Any, Final
from zoneinfo import ZoneInfo

from costwarden.budget import get_zone
from costwarden.money import Nanos, nanos_to_decimal
from costwarden.records import StoredRecord

TOKEN_FIELDS: Final = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
)
RECORD_COLUMNS: Final = (
    "id",
    "timestamp",
    "model",
    "provider",
    "user",
    "team",
    "key",
    "endpoint",
    "tags",
    "request_id",
    *TOKEN_FIELDS,
    "cost_usd",
    "cost_nanos",
    "latency_ms",
    "status",
    "estimated",
    "price_source",
)
_EPOCH: Final = datetime(1970, 1, 1)


def usd_text(nanos: Nanos) -> str:
    """Exact USD with nine decimals (``0.000001234``), as ``Decimal.quantize`` would print."""
    sign = "-" if nanos < 0 else ""
    whole, frac = divmod(abs(nanos), 1_000_000_000)
    return f"{sign}{whole}.{frac:09d}"


class LocalClock:
    """UTC microseconds to local wall time in one zone, caching the offset per UTC hour.

    An hour whose two ends have different offsets (a change of offset inside it, which modern
    zones never make off the hour) is not cached, so every record in it is converted exactly.
    """

    def __init__(self, zone: str | ZoneInfo) -> None:
        self.zone = get_zone(zone) if isinstance(zone, str) else zone
        self._lo = self._hi = 0
        self._offset_us = 0
        self._suffix = "+00:00"
        self._hour = -(2**63)  # the local hour whose text is in _prefix
        self._prefix = ""

    def _load(self, ts_us: int) -> None:
        hour = ts_us - ts_us % 3_600_000_000
        first = datetime.fromtimestamp(hour / 1e6, self.zone).utcoffset()
        last = datetime.fromtimestamp((hour + 3_599_999_999) / 1e6, self.zone).utcoffset()
        assert first is not None and last is not None
        if first == last:
            self._lo, self._hi = hour, hour + 3_600_000_000
        else:
            self._lo = self._hi = 0
            first = datetime.fromtimestamp(ts_us / 1e6, self.zone).utcoffset()
            assert first is not None
        self._offset_us = (first.days * 86_400 + first.seconds) * 1_000_000
        self._suffix = _offset_text(first)

    def local_us(self, ts_us: int) -> int:
        """Local wall-clock time as microseconds since 1970-01-01 00:00 (local)."""
        if not self._lo <= ts_us < self._hi:
            self._load(ts_us)
        return ts_us + self._offset_us

    def iso(self, ts_us: int) -> str:
        """``2026-11-02T08:30:00.000001+09:00``: ``datetime.isoformat()`` in the zone (the
        ``YYYY-MM-DDTHH:`` of the local hour made once per hour, the rest by arithmetic)."""
        hour, rest = divmod(self.local_us(ts_us), 3_600_000_000)
        if hour != self._hour:
            self._hour = hour
            self._prefix = (_EPOCH + timedelta(hours=hour)).isoformat()[:14]
        minute, rest = divmod(rest, 60_000_000)
        second, micro = divmod(rest, 1_000_000)
        if micro:
            return f"{self._prefix}{minute:02d}:{second:02d}.{micro:06d}{self._suffix}"
        return f"{self._prefix}{minute:02d}:{second:02d}{self._suffix}"

    def excel(self, ts_us: int) -> float:
        """An Excel date serial of the local time (days since 1899-12-30)."""
        return self.local_us(ts_us) / 86_400_000_000 + 25_569


def _offset_text(offset: timedelta) -> str:
    """``+09:00``, ``-03:30``: the suffix ``isoformat()`` gives a time at that offset."""
    return datetime(2000, 1, 1, tzinfo=UTC).astimezone(fixed_offset(offset)).isoformat()[19:]


def record_to_dict(rec: StoredRecord, timezone: str = "UTC") -> dict[str, Any]:
    """One ledger record for JSON output: exact cost as a decimal string and nano-USD."""
    return {
        "id": rec.id,
        "timestamp": datetime.fromtimestamp(rec.ts_us / 1_000_000, get_zone(timezone)).isoformat(),
        "model": rec.model,
        "provider": rec.provider,
        "user": rec.user_id,
        "team": rec.team,
        "key": rec.key,
        "endpoint": rec.endpoint,
        "request_id": rec.request_id,
        "tags": list(rec.tags),
        **{name: getattr(rec, name) for name in TOKEN_FIELDS},
        "cost_usd": f"{nanos_to_decimal(rec.cost_nanos).quantize(Decimal('1e-9')):f}",
        "cost_nanos": rec.cost_nanos,
        "latency_ms": rec.latency_ms,
        "status": rec.status,
        "estimated": rec.estimated,
        "price_source": rec.price_source,
    }
