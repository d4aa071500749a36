"""The integer pricing route (rates._IntegerForm) gives exactly the Decimal route's nanos."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from costwarden.errors import InvalidInputError
from costwarden.money import decimal_to_nanos
from costwarden.pricing.rates import FIELDS, Linear
from costwarden.records import Usage

_rates = st.decimals(
    min_value=Decimal("-5000"), max_value=Decimal("5000"), places=12, allow_nan=False
) | st.sampled_from([Decimal("0.15"), Decimal("0.6"), Decimal("0.075"), Decimal("0.0005")])


@st.composite
def _usages(draw: st.DrawFn, max_count: int = 10**9) -> Usage:
    counts = st.integers(min_value=0, max_value=max_count)
    i, o = draw(counts), draw(counts)
    cr = draw(st.integers(min_value=0, max_value=i))
    cw = draw(st.integers(min_value=0, max_value=i - cr))
    r = draw(st.integers(min_value=0, max_value=o))
    return Usage(i, o, cr, cw, r)


def _decimal_route(linear: Linear, usage: Usage) -> int | None:
    try:
        return decimal_to_nanos(linear.total_per_million(usage).scaleb(-6))
    except InvalidInputError:
        return None


def _fast_route(linear: Linear, usage: Usage) -> int | None:
    try:
        return linear.cost_nanos(usage)
    except InvalidInputError:
        return None


@settings(max_examples=400)
@given(
    rates=st.lists(_rates, min_size=len(FIELDS), max_size=len(FIELDS)),
    fixed=_rates,
    usage=_usages(),
)
def test_integer_route_matches_decimal_route(
    rates: list[Decimal], fixed: Decimal, usage: Usage
) -> None:
    linear = Linear(terms=tuple(zip(FIELDS, rates, strict=True)), fixed=fixed)
    assert _fast_route(linear, usage) == _decimal_route(linear, usage)


@given(
    rate=st.decimals(min_value=Decimal(-1000), max_value=Decimal(1000), places=26)
    | st.decimals(min_value=Decimal(-(10**12)), max_value=Decimal(10**12), places=12),
    usage=_usages(max_count=2**63 - 1) | _usages(max_count=10**4),  # counts fit int64
)
def test_beyond_decimal_precision_takes_the_decimal_route(rate: Decimal, usage: Usage) -> None:
    """Where the Decimal sums would round (28 digits), the integer route steps aside."""
    linear = Linear(terms=(("input_tokens", rate), ("output_tokens", rate)), fixed=rate)
    assert _fast_route(linear, usage) == _decimal_route(linear, usage)


def test_halves_round_to_even() -> None:
    # 0.0005 USD per 1M tokens is half a nano-USD per token.
    linear = Linear(terms=(("input_tokens", Decimal("0.0005")),), fixed=Decimal(0))
    assert [linear.cost_nanos(Usage(n, 0)) for n in range(1, 6)] == [0, 1, 2, 2, 2]
    negative = Linear(terms=(("input_tokens", Decimal("-0.0005")),), fixed=Decimal(0))
    assert [negative.cost_nanos(Usage(n, 0)) for n in range(1, 6)] == [0, -1, -2, -2, -2]


def test_integer_route_steps_aside_where_decimal_sums_could_round() -> None:
    # 27 significant digits: this rate times a 6-digit count no longer fits in 28 digits.
    rate = Decimal("0.000500000000000000000000001")
    linear = Linear(terms=(("input_tokens", rate),), fixed=Decimal(0))
    exact = linear._integer
    assert exact is not None
    assert exact.cost_nanos(Usage(1, 0)) == 1  # 0.5 + 1e-24 nano-USD: above the half
    assert exact.cost_nanos(Usage(10**5, 0)) is None
    assert linear.cost_nanos(Usage(10**5, 0)) == _decimal_route(linear, Usage(10**5, 0))
