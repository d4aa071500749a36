"""What tests and operators read of a ledger beyond what the library needs of it.

The :class:`~costwarden.ledger.base.Ledger` Protocol lists only what the manager, clients,
alerts and tools call. The three built-in backends also answer these questions about their
state, which the conformance tests ask of every backend alike (and an operator may ask at a
prompt: ``ledger.events()`` lists the budget resets). A third-party ledger need not have
them; its authors may implement them to run the same tests.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from costwarden.ledger.base import Ledger, LedgerEvent


@runtime_checkable
class InspectableLedger(Ledger, Protocol):
    """A :class:`Ledger` whose holds, events and history size can be read directly."""

    def hold_exists(self, hold_id: str, now: float) -> bool:
        """Whether ``hold_id`` is filed and unexpired at ``now``."""
        ...

    def events(self, limit: int = 100) -> list[LedgerEvent]:
        """The latest administrative events (budget resets), newest first."""
        ...

    def count_records(self) -> int:
        """How many usage records the ledger holds."""
        ...


__all__ = ["InspectableLedger"]
