from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from costwarden.errors import InvalidInputError
from costwarden.money import (
    MAX_NANOS,
    NANOS_PER_USD,
    decimal_to_nanos,
    format_usd,
    nanos_to_decimal,
    nanos_to_usd,
    round_half_even,
    usd_to_nanos,
)


def test_float_boundary_is_exact_for_decimal_amounts() -> None:
    assert usd_to_nanos(0.05) == 50_000_000
    assert nanos_to_usd(usd_to_nanos(0.05)) == 0.05
    assert nanos_to_usd(5_000_000_000 - 50_000_000) == 4.95


def test_ten_thousand_hundredths_of_a_cent_sum_to_one_dollar() -> None:
    total = sum(usd_to_nanos(0.0001) for _ in range(10_000))
    assert total == NANOS_PER_USD
    assert nanos_to_usd(total) == 1.0
    assert sum(0.0001 for _ in range(10_000)) != 1.0  # why floats are not used inside


def test_one_rounding_rule_half_even() -> None:
    assert decimal_to_nanos(Decimal("0.0000000005")) == 0
    assert decimal_to_nanos(Decimal("0.0000000015")) == 2
    assert decimal_to_nanos(Decimal("0.0000000025")) == 2


@given(st.integers(min_value=-(10**15), max_value=10**15), st.integers(1, 10**6))
def test_integer_ratios_round_by_the_same_rule(numerator: int, denominator: int) -> None:
    # the integer form (prices' integer route) and the Decimal form round identically
    exact = Decimal(numerator).scaleb(-9) / Decimal(denominator)  # in USD
    assert round_half_even(numerator, denominator) == decimal_to_nanos(exact)


def test_integer_ties_go_to_even() -> None:
    assert [round_half_even(n, 2) for n in (-3, -1, 1, 3, 5)] == [-2, 0, 0, 2, 2]
    assert round_half_even(7, 3) == 2 and round_half_even(-7, 3) == -2


@pytest.mark.parametrize(
    "bad", [-0.01, math.nan, math.inf, -math.inf, True, None, "abc", [1], Decimal("NaN")]
)
def test_bad_amounts_rejected(bad: object) -> None:
    with pytest.raises(InvalidInputError):
        usd_to_nanos(bad)


@pytest.mark.parametrize(
    "huge", ["1e999999999", "-1e999999999", Decimal("9E+999999"), "1e13", 10**13, 1e300]
)
def test_amounts_beyond_any_account_are_a_typed_error(huge: object) -> None:
    """Past the int64 of nanos, however far: never decimal.Overflow from scaling it."""
    with pytest.raises(InvalidInputError, match="too large"):
        usd_to_nanos(huge, allow_negative=True)
    with pytest.raises(InvalidInputError, match="too large"):
        decimal_to_nanos(Decimal(str(huge)))


def test_the_largest_amount_still_accounted() -> None:
    assert usd_to_nanos("9223372036.854775807") == MAX_NANOS
    with pytest.raises(InvalidInputError, match="too large"):
        usd_to_nanos("9223372036.854775808")


def test_strings_and_decimals() -> None:
    assert usd_to_nanos("$1.25") == 1_250_000_000
    assert usd_to_nanos(Decimal("0.000000001")) == 1
    assert usd_to_nanos(3) == 3 * NANOS_PER_USD
    assert usd_to_nanos(-1, allow_negative=True) == -NANOS_PER_USD


def test_format() -> None:
    assert format_usd(4_010_000_000) == "$4.01"
    assert format_usd(150_000) == "$0.000150"
    assert format_usd(0) == "$0.00"
    assert format_usd(1_234_567_000_000) == "$1,234.57"


@given(st.lists(st.decimals(min_value=0, max_value=1000, places=9), max_size=200))
def test_integer_sums_are_exact(amounts: list[Decimal]) -> None:
    nanos = [decimal_to_nanos(a) for a in amounts]
    assert nanos_to_decimal(sum(nanos)) == sum(amounts, Decimal(0))


@given(st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False))
def test_float_round_trip_within_a_nano(x: float) -> None:
    n = usd_to_nanos(x)
    assert isinstance(n, int)
    assert abs(nanos_to_usd(n) - x) <= 0.5e-9 + abs(x) * 1e-15


@given(st.floats(min_value=0, max_value=2e6, allow_nan=False, allow_infinity=False))
def test_fast_float_path_agrees_with_decimal_route(x: float) -> None:
    assert usd_to_nanos(x) == decimal_to_nanos(Decimal(repr(x)))


@given(st.integers(min_value=0, max_value=10**15), st.sampled_from([0, 1, 2, 3]))
def test_fast_float_path_on_decimal_amounts_and_ties(n: int, extra_digits: int) -> None:
    # amounts with up to 9 + extra decimal places, including exact half-nano ties
    x = float(Decimal(n).scaleb(-9 - extra_digits))
    assert usd_to_nanos(x) == decimal_to_nanos(Decimal(repr(x)))
