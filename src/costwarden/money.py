"""Exact money: integer nano-USD inside, float USD only at the public boundary.

Why integers: float sums drift (10,000 x $0.0001 is not $1.00 in binary floating point) and
SQL ``SUM`` over REAL columns drifts the same way. One nano-USD (1e-9 USD) is fine enough for
the cheapest per-token prices (a few cents per million tokens is 1e-8 USD per token) and an
int64 still holds $9.2 billion.

The single rounding rule: a USD amount is rounded once, half-even, to a whole nano-USD. Prices
are kept as :class:`~decimal.Decimal` until that point.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Final

from costwarden.errors import InvalidInputError

NANOS_PER_USD: Final = 1_000_000_000
_NANO: Final = Decimal("1e-9")
MAX_NANOS: Final = 2**63 - 1
_FAST_FLOAT_MAX: Final = 1e6

Nanos = int
"""An amount of money in nano-USD (1e-9 USD). Always an ``int``."""


_MAX_USD_DIGITS: Final = 12
"""Amounts of 10**13 USD or more are refused before they are scaled: far above
``MAX_NANOS`` (about 9.2e9 USD), and ``Decimal('1e999999999').scaleb(9)`` would raise
``decimal.Overflow`` instead of the typed error."""


def decimal_to_nanos(amount: Decimal) -> Nanos:
    """Round a Decimal USD amount half-even to whole nano-USD (the one rounding rule)."""
    if not amount.is_finite():
        raise InvalidInputError(f"amount must be a finite number of USD, got {amount!r}")
    if amount.adjusted() > _MAX_USD_DIGITS:  # before scaleb, which overflows the context
        raise InvalidInputError(f"amount {amount} USD is too large to account for")
    nanos = int(amount.scaleb(9).to_integral_value(rounding=ROUND_HALF_EVEN))
    if abs(nanos) > MAX_NANOS:
        raise InvalidInputError(f"amount {amount} USD is too large to account for")
    return nanos


def round_half_even(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded half-even to an int, exactly: the one rounding rule
    (as :func:`decimal_to_nanos` applies it to a Decimal) for amounts held as an integer
    ratio, such as a price's integer form (nano-USD scaled by ``denominator > 0``)."""
    quotient, rest = divmod(numerator, denominator)  # floor division, 0 <= rest < denominator
    twice = 2 * rest
    if twice > denominator or (twice == denominator and quotient % 2):
        quotient += 1
    return quotient


def usd_to_nanos(value: object, *, field: str = "amount", allow_negative: bool = False) -> Nanos:
    """Convert a USD amount given by a caller (float, int, str or Decimal) to nano-USD.

    Floats go through ``repr`` so that ``0.05`` means five cents exactly, not the binary
    approximation 0.05000000000000000277. Booleans, NaN, infinities and (unless allowed)
    negative amounts are rejected with :class:`InvalidInputError` naming ``field``.
    """
    if type(value) is float and 0.0 <= value < _FAST_FLOAT_MAX:
        # Fast path, same answer as the Decimal(repr(x)) route: for 0 <= x < 1e6 the float
        # product x * 1e9 is within 0.13 of the exact decimal value (repr round-trips to
        # within half an ulp of x, plus one rounding of the product), so when it lies within
        # 0.3 of a whole number that number is the half-even rounding of the decimal amount.
        scaled = value * 1e9
        nanos = round(scaled)
        if abs(scaled - nanos) < 0.3:
            return nanos
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise InvalidInputError(
            f"{field} must be a number of USD (int, float, str or Decimal), "
            f"got {type(value).__name__}: {value!r}"
        )
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInputError(f"{field} must be a finite number of USD, got {value!r}")
        dec = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            dec = Decimal(value.strip().removeprefix("$"))
        except InvalidOperation:
            raise InvalidInputError(f"{field} is not a number of USD: {value!r}") from None
    else:
        dec = Decimal(value)
    if not dec.is_finite():
        raise InvalidInputError(f"{field} must be a finite number of USD, got {value!r}")
    nanos = decimal_to_nanos(dec)
    if nanos < 0 and not allow_negative:
        raise InvalidInputError(f"{field} must not be negative, got {value!r}")
    return nanos


def nanos_to_usd(nanos: Nanos) -> float:
    """Nano-USD to float USD for the public API.

    ``int / int`` is correctly rounded in Python, so amounts that are exact in decimal come
    back as the float a person would type: ``nanos_to_usd(50_000_000) == 0.05``.
    """
    return nanos / NANOS_PER_USD


def nanos_to_decimal(nanos: Nanos) -> Decimal:
    """Nano-USD to an exact Decimal USD amount (for reports)."""
    return Decimal(nanos).scaleb(-9)


def format_usd(nanos: Nanos, *, places: int = 2) -> str:
    """Human format: ``$4.01``; amounts under a cent get more places (``$0.000150``)."""
    dec = nanos_to_decimal(nanos)
    sign = "-" if dec < 0 else ""
    dec = abs(dec)
    if dec != 0 and dec < Decimal("0.01") and places <= 2:
        places = 6
    quantum = Decimal(1).scaleb(-places)
    return f"{sign}${dec.quantize(quantum, rounding=ROUND_HALF_EVEN):,}"


def format_compared(*amounts: Nanos, holds: Callable[..., bool] | None = None) -> list[str]:
    """Format the figures of one message that compares them, so the comparison reads true.

    ``format_usd`` rounds each figure alone, and rounding can turn a true statement false:
    ``$0.09 spent + $0.00 reserved + $0.005245 requested > $0.10 limit``, or a model "over
    max_cost $0.01" shown at "$0.01". Here all figures share one number of decimal places: the
    fewest, from 2 (or enough for two significant digits of the smallest non-zero figure) up
    to 9 (nano-USD, where every figure is exact), at which the printed figures, read back,

    * keep every order and equality between any two of them and with zero (figures that
      differ never print alike, a non-zero figure never prints as ``$0.00``), and
    * satisfy ``holds(*read_back_nanos)`` when given: the arithmetic the message states, such as
      ``lambda spent, reserved, asked, limit: spent + reserved + asked > limit``.

    At 9 places the figures are exact, so a statement that is true of the amounts is always
    true of what is printed. Rounding is half-even, as everywhere in costwarden.
    """
    figures = [*amounts, 0]
    # At least two significant digits of every non-zero figure ($0.00063, not $0.0006).
    fewest = max([2, *(11 - len(str(abs(n))) for n in amounts if n)])
    for places in range(min(fewest, 9), 10):
        step = 10 ** (9 - places)
        shown = [round_half_even(n, step) * step for n in figures]
        ordered = all(
            (x < y) == (sx < sy) and (x == y) == (sx == sy)
            for i, (x, sx) in enumerate(zip(figures, shown, strict=True))
            for y, sy in zip(figures[i + 1 :], shown[i + 1 :], strict=True)
        )
        if ordered and (places == 9 or holds is None or holds(*shown[:-1])):
            return [_format_places(n, places) for n in shown[:-1]]
    raise AssertionError("unreachable: at 9 places every figure is exact")  # pragma: no cover


def _format_places(nanos: Nanos, places: int) -> str:
    dec = nanos_to_decimal(abs(nanos))
    return f"{'-' if nanos < 0 else ''}${dec:,.{places}f}"


class SpentAndLimitUsd:
    """Mixin for a result that carries ``spent_nanos`` and ``limit_nanos``: their float-USD
    views for the public boundary, written once for alerts and forecasts alike."""

    __slots__ = ()
    spent_nanos: Nanos
    limit_nanos: Nanos | None

    @property
    def spent_usd(self) -> float:
        """What was spent (so far, or when the event fired), in US dollars."""
        return nanos_to_usd(self.spent_nanos)

    @property
    def limit_usd(self) -> float | None:
        """The budget limit in US dollars, or None where there is none."""
        return None if self.limit_nanos is None else nanos_to_usd(self.limit_nanos)
