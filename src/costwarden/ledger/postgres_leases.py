"""The server side of budget leases on :class:`~costwarden.ledger.postgres.PostgresLedger`.

Three statements, one round trip each, over the functions of migration 9
(``schema_postgres``): ``cw_lease`` takes, grows or gives back a lease and, when the chunk
does not fit, files an exact hold or reports the server's denial; ``cw_lease_return`` gives
part of a lease back and drops drained leases; ``cw_append_leased`` appends a request admitted
from a lease and lowers the lease by its share. The client side, which decides what to ask,
is :mod:`costwarden.ledger.leases`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar

from costwarden.errors import LedgerError
from costwarden.ledger.base import Bucket, BucketUsage, Denial, LimitCheck
from costwarden.ledger.rows import APPEND_COLUMNS, POSTGRES_RECORDS
from costwarden.money import Nanos
from costwarden.records import NewRecord, StoredRecord

_T = TypeVar("_T")
LeaseOutcome = Literal["lease", "exact", "denied"]

_LEASE: Final = (
    "SELECT r.outcome, r.idx, r.spent, r.reserved "
    "FROM set_config('synchronous_commit', %s, true) AS s, "
    "cw_lease(%s, %s, %s::text[], %s, %s, %s::float8, %s, %s, %s::float8, "
    "%s::text[], %s::text[], %s::bigint[], %s::bigint[], %s::bigint[], %s::float8) AS r"
)
_RETURN: Final = (
    "SELECT FROM set_config('synchronous_commit', %s, true) AS s, "
    "cw_lease_return(%s, %s, %s::text[]) AS r"
)
_APPEND_LEASED: Final = (
    "SELECT record_id, w_spent, w_count, w_baseline FROM cw_append_leased("
    + ", ".join(["%s"] * len(APPEND_COLUMNS))
    + ", %s::text[], %s::text[], %s::bigint[], %s::bigint[]"
    + ", %s::text[], %s::text[], %s::bigint[], %s::bigint[], %s, %s, %s::text[])"
)


class PostgresLeaseCalls:
    """Mixin for PostgresLedger: needs its ``_run``, array memos and hold commit mode."""

    if TYPE_CHECKING:
        _hold_commit: str
        _control_seen: int
        _control_fresh_until: float

        def _run(self, what: str, fn: Callable[[Any], _T]) -> _T: ...

        def _check_arrays(self, checks: Sequence[LimitCheck]) -> tuple[str, ...]: ...

        def _bucket_arrays(self, buckets: Sequence[Bucket]) -> tuple[str, ...]: ...

        def _appended(
            self, record: NewRecord, sql: str, params: Sequence[Any]
        ) -> tuple[StoredRecord, list[BucketUsage]]: ...

    def lease(
        self,
        *,
        ret_id: str | None,
        ret_amount: Nanos,
        drops: Sequence[str],
        lease_id: str,
        grow: Nanos,
        lease_expires: float,
        hold_id: str,
        amount: Nanos,
        hold_expires: float,
        checks: Sequence[LimitCheck],
        now: float,
    ) -> tuple[LeaseOutcome, Denial | None]:
        """One ``cw_lease`` call (see ``schema_postgres``): drop ``drops``, give ``ret_amount``
        of lease ``ret_id`` back, then grow ``lease_id`` by ``grow`` if it fits (``"lease"``),
        else hold ``amount`` for ``hold_id`` exactly (``"exact"``), else ``"denied"`` with the
        server's first denial of ``amount``."""
        params = (
            self._hold_commit,
            ret_id,
            ret_amount,
            list(drops),
            lease_id,
            grow,
            lease_expires,
            hold_id,
            amount,
            hold_expires,
            *self._check_arrays(checks),
            now,
        )

        def run(conn: Any) -> tuple[Any, ...] | None:
            row: tuple[Any, ...] | None = conn.execute(_LEASE, params).fetchone()
            return row

        row = self._run("reserve", run)
        if row is None or row[0] not in ("lease", "exact", "denied"):  # pragma: no cover
            raise LedgerError(f"cw_lease answered {row!r}")
        if row[0] == "denied":
            return "denied", Denial(checks[int(row[1]) - 1], int(row[2]), int(row[3]), amount)
        outcome: LeaseOutcome = row[0]
        return outcome, None

    def lease_return(self, lease_id: str | None, amount: Nanos, drops: Sequence[str]) -> None:
        """Give ``amount`` of lease ``lease_id`` back and drop the leases ``drops``."""
        params = (self._hold_commit, lease_id, amount, list(drops))
        self._run("release", lambda c: c.execute(_RETURN, params))

    def append_leased(
        self,
        record: NewRecord,
        buckets: Sequence[Bucket],
        hold_id: str,
        *,
        watch: Sequence[Bucket],
        lease_id: str,
        shrink: Nanos,
        drops: Sequence[str],
    ) -> tuple[StoredRecord, list[BucketUsage]]:
        """Append ``record`` as the settlement of ``hold_id``, a request admitted from lease
        ``lease_id`` with share ``shrink``, lowering the lease by it, and drop ``drops``: one
        statement, which stores the record once however often it is retried."""
        params = (
            *POSTGRES_RECORDS.params(record, hold_id),
            *self._bucket_arrays(buckets),
            *self._bucket_arrays(watch),
            lease_id,
            shrink,
            list(drops),
        )
        return self._appended(record, _APPEND_LEASED, params)

    def cached_control_version(self, now_monotonic: float) -> int | None:
        """The control version :meth:`control_version` would answer without asking the server,
        or None when it would ask (its answer is older than ``control_poll_seconds``)."""
        if now_monotonic < self._control_fresh_until:
            return self._control_seen
        return None


__all__ = ["LeaseOutcome", "PostgresLeaseCalls"]
