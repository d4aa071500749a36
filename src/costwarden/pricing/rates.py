"""A model's prices compiled into a few Decimal coefficients, so a cost takes microseconds.

Why compile: genai-prices re-matches the model and re-decomposes the usage on every
``calc_price`` call (~90 µs). For the token usage costwarden records (input, output, cache
read, cache write, reasoning) the price of a call is *linear* in those five counts within one
long-context tier, so it can be reduced once to ``fixed + Σ coefficient × count`` per tier.

The decomposition follows genai-prices' rule exactly: every priced unit is billed on its
*leaf* count, the count not already billed by a more specific priced unit. Input tokens are
billed ``input - cache_read - cache_write`` at the input rate when the cache rates exist; if a
model has no cache-read rate, cached tokens stay inside input and pay the input rate (never
zero). Output is billed ``output - reasoning`` only if the model prices reasoning separately.

Long-context tiers are "cliffs": once the request's input tokens exceed a tier's start, the
WHOLE request (every unit with tiered prices) pays that tier's rate. Each band of input
counts therefore gets its own coefficient set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Final, Protocol

from costwarden.money import Nanos, decimal_to_nanos
from costwarden.records import Usage

FIELDS: Final = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
)
"""The :class:`~costwarden.records.Usage` counts a price can depend on, in coefficient order."""


@dataclass(frozen=True, slots=True)
class _Unit:
    field: str | None  # the Usage field counted, None for the per-request unit
    per: int
    dims: frozenset[tuple[str, str]]


# genai-prices' registered units that a costwarden Usage can carry (units.py / data_units.py).
# All other units (audio, image, web searches...) have a zero count for our usage, and a unit
# with zero count contributes nothing, neither to its own price nor to its ancestors' leaves.
_UNITS: Final[dict[str, _Unit]] = {
    "input_mtok": _Unit(
        "input_tokens", 1_000_000, frozenset({("family", "tokens"), ("direction", "input")})
    ),
    "output_mtok": _Unit(
        "output_tokens", 1_000_000, frozenset({("family", "tokens"), ("direction", "output")})
    ),
    "cache_read_mtok": _Unit(
        "cache_read_tokens",
        1_000_000,
        frozenset({("family", "tokens"), ("direction", "input"), ("token_type", "cache_read")}),
    ),
    "cache_write_mtok": _Unit(
        "cache_write_tokens",
        1_000_000,
        frozenset({("family", "tokens"), ("direction", "input"), ("token_type", "cache_write")}),
    ),
    "output_reasoning_mtok": _Unit(
        "reasoning_tokens",
        1_000_000,
        frozenset({("family", "tokens"), ("direction", "output"), ("token_type", "reasoning")}),
    ),
    "requests_kcount": _Unit(None, 1_000, frozenset({("family", "requests")})),
}
PRICE_KEYS: Final = frozenset(_UNITS)
_MILLION: Final = Decimal(1_000_000)
_ZERO: Final = Decimal(0)


class Tiered(Protocol):
    """Structural type of genai-prices' ``TieredPrices`` (``base`` plus ``tiers``)."""

    @property
    def base(self) -> Decimal: ...

    @property
    def tiers(self) -> list[_TierLike]: ...


class _TierLike(Protocol):
    @property
    def start(self) -> int: ...

    @property
    def price(self) -> Decimal: ...


PriceValue = Decimal | Tiered


@dataclass(frozen=True, slots=True)
class Linear:
    """USD per 1M tokens for each Usage field, plus a fixed per-request part (also ×1M)."""

    terms: tuple[tuple[str, Decimal], ...]  # (Usage field, coefficient), zero ones left out
    fixed: Decimal

    def total_per_million(self, usage: Usage) -> Decimal:
        total = self.fixed
        for name, coefficient in self.terms:
            count = getattr(usage, name)
            if count:
                total += coefficient * count
        return total

    def coefficient(self, name: str) -> Decimal:
        for field_name, coefficient in self.terms:
            if field_name == name:
                return coefficient
        return _ZERO


@dataclass(frozen=True, slots=True)
class Schedule:
    """Coefficients per long-context band. ``bands[i] = (start, linear)``, ascending starts.

    A band applies when ``input_tokens > start`` (the first band has start -1, so it always
    applies); the last applicable band wins, as in genai-prices.
    """

    bands: tuple[tuple[int, Linear], ...]

    def linear_for(self, input_tokens: int) -> Linear:
        bands = self.bands
        chosen = bands[0][1]
        for start, linear in bands[1:]:
            if input_tokens > start:
                chosen = linear
            else:
                break
        return chosen

    def cost_nanos(self, usage: Usage) -> Nanos:
        """Exact cost in nano-USD: Decimal all the way, one half-even rounding at the end."""
        bands = self.bands
        linear = bands[0][1] if len(bands) == 1 else self.linear_for(usage.input_tokens)
        return decimal_to_nanos(linear.total_per_million(usage).scaleb(-6))

    @property
    def thresholds(self) -> tuple[int, ...]:
        return tuple(start for start, _ in self.bands[1:])


def _rate_at(value: PriceValue, band_start: int) -> Decimal:
    """The rate of one price value in the band of requests whose input exceeds ``band_start``.

    A tier applies when ``input > tier.start``; band starts are the union of all tier starts,
    so inside the band that is exactly ``tier.start <= band_start``.
    """
    if isinstance(value, Decimal):
        return value
    rate = value.base
    for tier in sorted(value.tiers, key=lambda t: t.start):
        if tier.start <= band_start:
            rate = tier.price
    return rate


def _leaf_vectors(keys: list[str]) -> dict[str, dict[str | None, int]]:
    """Each priced unit's leaf count as an integer combination of Usage fields.

    Most specific units first (genai-prices' ``compute_leaf_values`` order); a unit's leaf is
    its own count minus the leaves of every priced unit whose dimensions include its own.
    """
    ordered = sorted(keys, key=lambda k: (-len(_UNITS[k].dims), k))
    leaves: dict[str, dict[str | None, int]] = {}
    for key in ordered:
        unit = _UNITS[key]
        vector: dict[str | None, int] = {unit.field: 1}
        for other in ordered:
            if other != key and other in leaves and unit.dims <= _UNITS[other].dims:
                for name, weight in leaves[other].items():
                    vector[name] = vector.get(name, 0) - weight
        leaves[key] = vector
    return leaves


def compile_schedule(prices: Mapping[str, PriceValue]) -> Schedule:
    """Compile ``{price_key: Decimal | TieredPrices}`` (genai-prices keys) into a Schedule.

    Keys outside :data:`PRICE_KEYS` are ignored: their usage is always zero for a costwarden
    :class:`Usage` (see the module docstring).
    """
    priced = {k: v for k, v in prices.items() if k in _UNITS and v is not None}
    leaves = _leaf_vectors(list(priced))
    starts = sorted(
        {tier.start for v in priced.values() if not isinstance(v, Decimal) for tier in v.tiers}
    )
    bands: list[tuple[int, Linear]] = []
    for band_start in [-1, *starts]:
        coefficients: dict[str | None, Decimal] = {}
        for key, value in priced.items():
            # per-unit rate scaled to "USD per 1M of this unit's count"
            rate = _rate_at(value, band_start) * _MILLION / _UNITS[key].per
            for name, weight in leaves[key].items():
                coefficients[name] = coefficients.get(name, _ZERO) + rate * weight
        fixed = coefficients.pop(None, _ZERO)
        terms = tuple((name, coefficients[name]) for name in FIELDS if coefficients.get(name))
        bands.append((band_start, Linear(terms=terms, fixed=fixed)))
    return Schedule(bands=tuple(bands))
