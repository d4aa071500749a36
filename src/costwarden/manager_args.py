"""What a BudgetManager refuses at its edge, before it opens, holds or reads anything.

Bad input gets a clear error and changes nothing: the constructor's arguments are checked
before the ledger is opened (opening a SQLite URL creates its file), a hold's TTL before the
hold is filed, and the bounds of a record query before the ledger is asked. The admission path
itself checks its estimate inline (see ``BudgetManager.reserve_nanos``): that is per call.
"""

from __future__ import annotations

import contextlib
import math
from datetime import datetime

from costwarden.errors import ConfigurationError, InvalidInputError
from costwarden.ledger.base import missing_members
from costwarden.plans import check_budget
from costwarden.records import check_timestamp

__all__ = ["check_manager_args", "check_ttl", "epoch_us"]


def check_manager_args(
    budget: object, alert_handler: object, hold_ttl: object, fail_open: object, ledger: object
) -> None:
    """The constructor's checks of the arguments it does not hand on: a typed error naming
    the argument, raised before anything is opened."""
    if budget is not None:
        check_budget(budget)
    if alert_handler is not None and not callable(alert_handler):
        raise InvalidInputError("alert_handler must be callable as handler(level, message)")
    check_ttl(hold_ttl, "hold_ttl")
    if not isinstance(fail_open, bool):
        raise InvalidInputError(f"fail_open must be True or False, got {fail_open!r}")
    if not isinstance(ledger, str) and (missing := missing_members(ledger)):
        raise ConfigurationError(
            "ledger must be a ledger URL or a costwarden.ledger.Ledger; "
            f"{type(ledger).__name__} lacks {', '.join(missing)}"
        )


def check_ttl(value: object, name: str) -> float:
    """A hold TTL: a positive, finite number of seconds (a bool is not a number)."""
    seconds = math.inf
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        with contextlib.suppress(OverflowError):  # an int beyond any float
            seconds = float(value)
    if not (math.isfinite(seconds) and seconds > 0):
        raise InvalidInputError(f"{name} must be a positive number of seconds, got {value!r}")
    return seconds


def epoch_us(when: datetime | None, name: str) -> int | None:
    """A query bound (``since``, ``until``) as the ledger's epoch microseconds; None: open."""
    return None if when is None else round(check_timestamp(when, name).timestamp() * 1e6)
