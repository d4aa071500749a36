"""A model's prices compiled into a few Decimal coefficients, so a cost takes microseconds.

Why compile: genai-prices re-matches the model and re-decomposes the usage on every
``calc_price`` call (~90 µs). For the token usage costwarden records (input, output, cache
read, cache write, reasoning, 1-hour cache write, audio in/out, cached audio, web searches)
the price of a call is *linear* in those counts within one long-context tier, so it can be
reduced once to ``fixed + Σ coefficient × count`` per tier.

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

from bisect import bisect_left
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal
from functools import lru_cache
from typing import Final, Protocol

from costwarden.money import MAX_NANOS, Nanos, decimal_to_nanos, round_half_even
from costwarden.records import Usage

FIELDS: Final = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "cache_write_1h_tokens",
    "input_audio_tokens",
    "cache_audio_read_tokens",
    "output_audio_tokens",
    "web_searches",
)
"""The :class:`~costwarden.records.Usage` counts a price can depend on, in coefficient order."""


@dataclass(frozen=True, slots=True)
class _Unit:
    field: str | None  # the Usage field counted, None for the per-request unit
    per: int
    dims: frozenset[tuple[str, str]]


# genai-prices' registered units that a costwarden Usage can carry (units.py / data_units.py),
# with genai-prices' own dimensions. All other units (images, video, other tools...) have a
# zero count for our usage, and a unit with zero count contributes nothing, neither to its own
# price nor to its ancestors' leaves (docs/pricing.md lists which provider fields fold where).
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
    "cache_write_1h_mtok": _Unit(
        "cache_write_1h_tokens",
        1_000_000,
        frozenset(
            {
                ("family", "tokens"),
                ("direction", "input"),
                ("token_type", "cache_write"),
                ("cache_ttl", "1h"),
            }
        ),
    ),
    "input_audio_mtok": _Unit(
        "input_audio_tokens",
        1_000_000,
        frozenset({("family", "tokens"), ("direction", "input"), ("modality", "audio")}),
    ),
    "cache_audio_read_mtok": _Unit(
        "cache_audio_read_tokens",
        1_000_000,
        frozenset(
            {
                ("family", "tokens"),
                ("direction", "input"),
                ("modality", "audio"),
                ("token_type", "cache_read"),
            }
        ),
    ),
    "output_audio_mtok": _Unit(
        "output_audio_tokens",
        1_000_000,
        frozenset({("family", "tokens"), ("direction", "output"), ("modality", "audio")}),
    ),
    "web_searches_kcount": _Unit(
        "web_searches",
        1_000,
        frozenset({("family", "tool_calls"), ("tool_type", "web_search")}),
    ),
    "requests_kcount": _Unit(None, 1_000, frozenset({("family", "requests")})),
}
PRICE_KEYS: Final = frozenset(_UNITS)
_MILLION: Final = Decimal(1_000_000)
_ZERO: Final = Decimal(0)


class Tiered(Protocol):
    """Structural type of genai-prices' ``TieredPrices`` (``base`` plus ``tiers``)."""

    @property
    def base(self) -> Decimal:
        """The rate below the first tier's threshold."""
        ...

    @property
    def tiers(self) -> Sequence[_TierLike]:
        """The higher rates, each with the input-token count above which it applies."""
        ...


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
    # The same price as integers (see _IntegerForm), or None when a rate cannot be scaled.
    _integer: _IntegerForm | None = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_integer", _IntegerForm.of(self))

    def total_per_million(self, usage: Usage) -> Decimal:
        """The exact cost of ``usage`` in dollars per million tokens (before the one rounding to
        nanos).
        """
        total = self.fixed
        for name, coefficient in self.terms:
            count = getattr(usage, name)
            if count:
                total += coefficient * count
        return total

    def cost_nanos(self, usage: Usage) -> Nanos:
        """Exact cost in nano-USD, rounded once half-even (integer arithmetic when it can)."""
        exact = self._integer
        if exact is not None:
            nanos = exact.cost_nanos(usage)
            if nanos is not None:
                return nanos
        return decimal_to_nanos(self.total_per_million(usage).scaleb(-6))

    def coefficient(self, name: str) -> Decimal:
        """The per-million rate of the usage field ``name`` (zero if it is not priced)."""
        for field_name, coefficient in self.terms:
            if field_name == name:
                return coefficient
        return _ZERO


def _times_power_of_ten(rate: Decimal, power: int) -> int:
    """``rate × 10**power`` as an int, exactly: ``scaleb`` only moves the exponent, in a
    context wide enough to round nothing; the caller picks ``power`` so that the result is
    whole (every rate's exponent + ``power`` >= 0)."""
    return int(rate.scaleb(power, _EXACT))


_EXACT: Final = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)
"""A Decimal context that rounds nothing (``scaleb`` above)."""


_DECIMAL_DIGITS: Final = 10**27
"""Sums below this stay exact in the default Decimal context (28 significant digits)."""


@dataclass(frozen=True, slots=True)
class _IntegerForm:
    """A :class:`Linear` price in integers: ``nanos = round_half_even(total / divisor)`` with
    ``total = fixed + Σ coefficient × count``, every coefficient an exact multiple of
    ``1 / divisor`` nano-USD per token.

    Why: the Decimal route costs a few microseconds per price (two per tracked call). Both
    routes compute the same exact value and round it once, half-even, so they agree whenever
    the Decimal sums are exact, which ``max_count`` guarantees (a count above it, or a cost
    beyond an int64, takes the Decimal route with its errors).
    """

    terms: tuple[tuple[str, int], ...]
    fixed: int
    divisor: int
    max_count: int

    @staticmethod
    def of(linear: Linear) -> _IntegerForm | None:
        rates = [linear.fixed, *(c for _, c in linear.terms)]
        if not all(r.is_finite() for r in rates):
            return None
        # USD per 1M tokens -> nano-USD per token is ×1000; scale further by 10**places so
        # that every rate (at most `places` decimals past the nano) becomes an integer.
        places = max(0, max(-int(r.as_tuple().exponent) for r in rates) - 3)
        ints = [_times_power_of_ten(r, places + 3) for r in rates]
        weight = sum(abs(n) for n in ints) or 1  # |total| <= weight * the largest count
        if weight > _DECIMAL_DIGITS:
            return None
        return _IntegerForm(
            terms=tuple((name, n) for (name, _), n in zip(linear.terms, ints[1:], strict=True)),
            fixed=ints[0],
            divisor=10**places,
            max_count=_DECIMAL_DIGITS // weight,
        )

    def cost_nanos(self, usage: Usage) -> Nanos | None:
        total = self.fixed
        for name, coefficient in self.terms:
            count = getattr(usage, name)
            if count > self.max_count:
                return None
            total += coefficient * count
        divisor = self.divisor  # 1 for most catalogue prices: whole nanos, nothing to round
        nanos = total if divisor == 1 else round_half_even(total, divisor)
        return nanos if abs(nanos) <= MAX_NANOS else None


@dataclass(frozen=True, slots=True)
class Schedule:
    """Coefficients per long-context band. ``bands[i] = (start, linear)``, ascending starts.

    A band applies when ``input_tokens > start`` (the first band has start -1, so it always
    applies); the last applicable band wins, as in genai-prices.
    """

    bands: tuple[tuple[int, Linear], ...]
    # The starts after the first band's (ascending): the band of a call is the number of them
    # its input exceeds, one bisect.
    _starts: tuple[int, ...] = field(init=False, repr=False, compare=False, default=())
    # Every band's integer form, in band order, when each has one: cost_nanos asks it directly,
    # two calls fewer than through linear_for and Linear.cost_nanos.
    _integers: tuple[_IntegerForm, ...] | None = field(
        init=False, repr=False, compare=False, default=None
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "_starts", tuple(start for start, _ in self.bands[1:]))
        forms = tuple(linear._integer for _, linear in self.bands)
        if all(form is not None for form in forms):
            object.__setattr__(self, "_integers", forms)

    def linear_for(self, input_tokens: int) -> Linear:
        """The linear prices for a call of ``input_tokens``: the band of the highest threshold it
        exceeds.
        """
        return self.bands[bisect_left(self._starts, input_tokens)][1]

    def cost_nanos(self, usage: Usage) -> Nanos:
        """Exact cost in nano-USD, rounded once half-even at the end (``Linear.cost_nanos``)."""
        integers = self._integers
        if integers is not None:  # fast shape: the band's integer form, without Linear's call
            if len(integers) == 1:
                form = integers[0]
            else:
                form = integers[bisect_left(self._starts, usage.input_tokens)]
            nanos = form.cost_nanos(usage)
            if nanos is not None:
                return nanos
        bands = self.bands
        linear = bands[0][1] if len(bands) == 1 else self.linear_for(usage.input_tokens)
        return linear.cost_nanos(usage)

    @property
    def thresholds(self) -> tuple[int, ...]:
        """The input-token counts above which a higher price band applies."""
        return self._starts


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


@lru_cache(maxsize=256)
def _leaf_vectors(keys: frozenset[str]) -> dict[str, dict[str | None, int]]:
    """Each priced unit's leaf count as an integer combination of Usage fields.

    Most specific units first (genai-prices' ``compute_leaf_values`` order); a unit's leaf is
    its own count minus the leaves of every priced unit whose dimensions include its own.
    Remembered per set of keys (models share a handful of them): the result is shared, read
    only.
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


def unpriced_joins(keys: Collection[str]) -> list[tuple[str, str, str]]:
    """``(a, b, join)`` for each two priced units that overlap in a unit the keys leave unpriced.

    Why: ``cache_audio_read_tokens`` are inside both ``cache_read_tokens`` and
    ``input_audio_tokens``. With both of those priced and no cached-audio rate, the leaf
    decomposition would bill cached audio at ``cache_read + input_audio - input`` (negative
    when the input rate is the highest); genai-prices refuses such a price ("Missing join
    price"), and so do custom entries.
    """
    priced = sorted(k for k in keys if k in _UNITS)
    found: list[tuple[str, str, str]] = []
    for i, a in enumerate(priced):
        for b in priced[i + 1 :]:
            dims_a, dims_b = _UNITS[a].dims, _UNITS[b].dims
            if dims_a <= dims_b or dims_b <= dims_a:
                continue  # nested units: the leaf rule handles them
            union = dims_a | dims_b
            for join, unit in _UNITS.items():
                if unit.dims == union and join not in keys:
                    found.append((a, b, join))
    return found


def compile_schedule(prices: Mapping[str, PriceValue]) -> Schedule:
    """Compile ``{price_key: Decimal | TieredPrices}`` (genai-prices keys) into a Schedule.

    Keys outside :data:`PRICE_KEYS` are ignored: their usage is always zero for a costwarden
    :class:`Usage` (see the module docstring).
    """
    priced = {k: v for k, v in prices.items() if k in _UNITS and v is not None}
    leaves = _leaf_vectors(frozenset(priced))
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
