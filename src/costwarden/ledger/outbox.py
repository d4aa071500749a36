"""What a delivery attempt's outcome does to its outbox row, one rule for the three ledgers, and
the outbox SQL the two SQL ledgers share.

:meth:`~costwarden.ledger.base.AlertOutbox.finish_delivery` is :class:`DeliveryOutcomes`'
here: a delivered row is done (no next attempt, no error, its delivery time); a failed one is
pending again at its retry time, or failed for good when there is none, keeping its error.
Either way the attempt counts; an unknown id is a LedgerError and changes nothing. Each
ledger stores the :class:`Outcome` in one step of its own
(:meth:`DeliveryOutcomes._store_outcome`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from costwarden.errors import LedgerError

DELIVERY_COLUMNS: Final = (
    "id, dedup_key, channel, payload, status, attempts, created_at, next_attempt_at, "
    "last_error, delivered_at"
)
"""The ``deliveries`` columns in the order of :class:`~costwarden.ledger.base.Delivery`'s
fields, so a row read with them is ``Delivery(*row)``."""

STORE_OUTCOME_SQL: Final = (
    "UPDATE deliveries SET status = ?, attempts = attempts + 1, next_attempt_at = ?, "
    "last_error = ?, delivered_at = COALESCE(?, delivered_at) WHERE id = ?"
)
"""An :class:`Outcome` stored on its row, with :meth:`Outcome.params` (``?`` placeholders:
PostgreSQL's ledger writes ``%s``)."""

HISTORY_SQL: Final = (
    f"SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE created_at >= ? ORDER BY id DESC LIMIT ?"
)
"""The deliveries created since a time, newest first, up to a limit (``?`` placeholders)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """The columns one attempt sets on a delivery row (besides counting the attempt);
    ``delivered_at`` None leaves the row's as it was."""

    status: str
    next_attempt_at: float | None
    last_error: str | None
    delivered_at: float | None

    def params(self, delivery_id: int) -> tuple[object, ...]:
        """The parameters of :data:`STORE_OUTCOME_SQL` for the row ``delivery_id``."""
        return (self.status, self.next_attempt_at, self.last_error, self.delivered_at, delivery_id)


class DeliveryOutcomes:
    """:meth:`~costwarden.ledger.base.AlertOutbox.finish_delivery` for a ledger that stores an
    :class:`Outcome` with :meth:`_store_outcome`."""

    def finish_delivery(
        self,
        delivery_id: int,
        *,
        delivered: bool,
        error: str | None,
        next_attempt_at: float | None,
        now: float,
    ) -> None:
        """The Protocol's, by the rule of the module doc."""
        if delivered:
            outcome = Outcome("delivered", None, None, now)
        else:
            status = "pending" if next_attempt_at is not None else "failed"
            outcome = Outcome(status, next_attempt_at, error, None)
        if not self._store_outcome(delivery_id, outcome):
            raise LedgerError(f"no alert delivery with id {delivery_id}")

    def _store_outcome(self, delivery_id: int, outcome: Outcome) -> bool:
        """Set ``outcome`` on the row ``delivery_id`` and count the attempt, in one step; False
        (nothing changed) when there is no such row."""
        raise NotImplementedError


__all__ = ["DELIVERY_COLUMNS", "HISTORY_SQL", "STORE_OUTCOME_SQL", "DeliveryOutcomes", "Outcome"]
