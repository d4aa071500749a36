"""How the dashboard shows money: one rule for every figure, applied per column.

Why per column: a table that prints ``$0.02`` beside ``$0.008000`` (each figure rounded on its
own) hides which is larger and cannot be read down a column. Every figure of a column (or
of a group shown together, such as a gauge's spent and limit) gets the same number of decimal
places: two, or more when the column's smallest non-zero figure needs them to show two
significant digits (``$0.0200`` above ``$0.0080``), and at most nine (nano-USD: exact).
Rounding is half-even, as everywhere in costwarden; no non-zero figure prints as zero.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from costwarden.money import Nanos, round_half_even

MIN_PLACES: Final = 2
MAX_PLACES: Final = 9


def places_for(amounts: Iterable[Nanos | None]) -> int:
    """The decimal places a column of ``amounts`` (nano-USD; None: no figure) is shown with."""
    smallest = min((abs(n) for n in amounts if n), default=0)
    if not smallest:
        return MIN_PLACES
    # n nano-USD with d digits: its first significant digit is at decimal place 10 - d
    return min(MAX_PLACES, max(MIN_PLACES, 11 - len(str(smallest))))


def usd(nanos: Nanos | None, places: int | None = None) -> str:
    """``$1,234.50``: ``nanos`` with ``places`` decimals (default: the rule applied to this
    one figure); an em dash for no figure."""
    if nanos is None:
        return "—"
    if places is None:
        places = places_for([nanos])
    step = 10 ** (MAX_PLACES - places)
    units = round_half_even(abs(nanos), step)  # ``places`` decimals, the one rule
    whole, frac = divmod(units, 10**places)
    sign = "-" if nanos < 0 and units else ""
    return f"{sign}${whole:,}.{frac:0{places}d}"


__all__ = ["MAX_PLACES", "MIN_PLACES", "places_for", "usd"]
