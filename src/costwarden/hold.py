"""Hold: a reservation of budget for one call, settled once by ``commit`` or ``release``.

Made by :meth:`BudgetManager.reserve <costwarden.manager.BudgetManager.reserve>`, which has
already checked and filed it in the ledger; the hold only remembers what its manager needs to
settle it (``costwarden.manager.Hold`` is this class).
"""

from __future__ import annotations

from typing import Protocol

from costwarden.budget import Scope
from costwarden.errors import HoldError
from costwarden.money import Nanos, format_usd, nanos_to_usd
from costwarden.records import StoredRecord, UsageRecord


class Settler(Protocol):
    """What settles a hold: the ``BudgetManager`` that made it (named here by what it does,
    so this module needs nothing from the manager's)."""

    def commit(self, hold: Hold, record: UsageRecord) -> StoredRecord:
        """Store ``record`` as the settlement of ``hold`` and drop its reservation."""
        ...

    def release(self, hold: Hold) -> None:
        """Drop ``hold``'s reservation without recording any spend."""
        ...


class Hold:
    """A reservation of budget for one call; settle it with ``commit`` or ``release``.

    Usable as a context manager: leaving the block without ``commit`` releases the hold.
    Once committed, ``record`` is the stored record, and committing the same usage record
    again returns it instead of storing the spend twice.
    """

    __slots__ = (
        "_committed",
        "_manager",
        "amount_nanos",
        "expires_at",
        "id",
        "record",
        "scopes",
        "settled",
        "unchecked",
    )

    def __init__(
        self,
        manager: Settler,
        hold_id: str,
        amount_nanos: Nanos,
        expires_at: float,
        scopes: tuple[Scope, ...],
        *,
        unchecked: bool = False,
    ) -> None:
        self._manager = manager
        self.id = hold_id
        self.amount_nanos = amount_nanos
        self.expires_at = expires_at
        self.scopes = scopes
        self.settled = False
        self.unchecked = unchecked
        self.record: StoredRecord | None = None
        self._committed: UsageRecord | None = None

    @property
    def amount_usd(self) -> float:
        """The amount held, in US dollars."""
        return nanos_to_usd(self.amount_nanos)

    def recommitted(self, record: UsageRecord) -> StoredRecord:
        """For a settled hold: the stored record if it was committed with ``record`` (a
        commit repeated), else a HoldError saying why nothing more can be stored."""
        if self.record is None:
            raise HoldError(f"hold {self.id} was released; reserve() again to record another call")
        if record is self._committed or record == self._committed:
            return self.record
        raise HoldError(
            f"hold {self.id} was already committed (record #{self.record.id}); a hold is "
            "committed once, and this different record was not stored"
        )

    def commit(self, record: UsageRecord) -> StoredRecord:
        """Settle the hold with the call's real usage: store ``record`` and release the reservation
        (see BudgetManager.commit).
        """
        return self._manager.commit(self, record)

    def release(self) -> None:
        """Give the reservation back unspent (the call was not made or failed before any usage); see
        BudgetManager.release.
        """
        self._manager.release(self)

    def __enter__(self) -> Hold:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if not self.settled:
            self._manager.release(self)

    def __repr__(self) -> str:
        state = "settled" if self.settled else "open"
        return f"<Hold {self.id} {format_usd(self.amount_nanos)} {state}>"
