"""Pre-call cost estimates: real (offline) token counts times the model's current price.

Why this shape: ``estimate_cost`` runs before every tracked call, so it must cost little more
than counting the tokens. Prices are resolved once per model by ``PriceCatalog`` and applied
in integer nano-USD; the only per-call work besides tokenising is building one ``Usage``.
The output side is a bound the caller chooses (``max_tokens`` or ``expected_output_tokens``),
because the real output length is unknown until the call returns.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from costwarden.errors import InvalidInputError, UnknownModelError
from costwarden.money import Nanos, nanos_to_usd, round_half_even
from costwarden.pricing import PriceCatalog
from costwarden.records import Usage, check_count
from costwarden.tokens import (
    count_message_tokens,
    count_tokens,
    encoding_name_for,
    get_encoding,
)

Messages = Sequence[Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class CostEstimate:
    """A detailed estimate: the token counts and the price that produced ``cost_usd``.

    ``cached_tokens`` of the input are priced at the cache-read rate (the caller said that
    prefix is cached); ``tokens_exact`` is False when the count is an estimate (e.g. Claude or
    Gemini, which have no offline tokenizer), and ``token_method`` says how it was counted.
    Rates are USD per 1M tokens, as the catalogue resolved them.
    """

    model: str
    provider: str | None
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    cost_nanos: Nanos
    tokens_exact: bool
    token_method: str
    input_rate: Decimal
    output_rate: Decimal
    cache_read_rate: Decimal | None
    price_source: str
    batch: bool = False

    @property
    def cost_usd(self) -> float:
        """The estimated cost in US dollars."""
        return nanos_to_usd(self.cost_nanos)

    @property
    def usage(self) -> Usage:
        """The token counts of the estimate as a Usage, to price or record them."""
        return Usage(
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cache_read_tokens=self.cached_tokens,
        )


def count_input(model: str, input_text: str | Messages) -> tuple[int, bool, str]:
    """Tokens of a prompt string or chat message list, counted offline for ``model``."""
    if isinstance(input_text, str):
        counted = count_tokens(input_text, model)
    elif isinstance(input_text, (list, tuple)):
        counted = count_message_tokens(input_text, model)
    else:
        raise InvalidInputError(
            "input_text must be a string or a list of chat messages "
            f"({{'role': ..., 'content': ...}}), got {type(input_text).__name__}"
        )
    return counted.tokens, counted.exact, counted.method


def estimate(
    catalog: PriceCatalog,
    model: str,
    provider: str | None,
    input_text: str | Messages | None,
    input_tokens: int | None,
    expected_output_tokens: int,
    cached_tokens: int | bool,
    batch: bool,
) -> CostEstimate:
    """Estimate one call: the body of :meth:`~costwarden.optimizer.CostOptimizer.estimate`,
    which documents the parameters. Their defaults are the public method's, written there only:
    this takes every value, so it has none to drift from them.

    Unknown models raise :class:`~costwarden.errors.UnknownModelError` (never $0); bad counts
    raise :class:`~costwarden.errors.InvalidInputError`.
    """
    out = check_count(expected_output_tokens, "expected_output_tokens")
    price = catalog.resolve(model, provider)  # UnknownModelError before any counting work
    if input_tokens is not None:
        if input_text is not None:
            raise InvalidInputError("give input_text or input_tokens, not both")
        n_in, exact, method = check_count(input_tokens, "input_tokens"), True, "given"
    elif input_text is None:
        raise InvalidInputError("input_text (a string or message list) or input_tokens is required")
    else:
        n_in, exact, method = count_input(model, input_text)
    if cached_tokens is True:
        cached = n_in
    elif cached_tokens is False:
        cached = 0
    else:
        cached = min(check_count(cached_tokens, "cached_tokens"), n_in)
    usage = Usage(input_tokens=n_in, output_tokens=out, cache_read_tokens=cached)
    cost = price.cost_nanos(usage, batch=batch)
    return CostEstimate(
        model=model,
        provider=price.provider,
        input_tokens=n_in,
        output_tokens=out,
        cached_tokens=cached,
        cost_nanos=cost,
        tokens_exact=exact,
        token_method=method,
        input_rate=price.input,
        output_rate=price.output,
        cache_read_rate=price.cache_read,
        price_source=str(price.source),
        batch=bool(batch),
    )


_MILLION = 1_000_000


class FastPath:
    """The hot path of ``estimate_cost`` for one model: count, then integer arithmetic.

    Compiled once per model from public APIs: the model's tiktoken encoding when its counts
    are exact (``count_tokens`` otherwise) and its short-context rates as integer nano-USD per
    1M tokens. The cost is ``sum(tokens x rate)`` rounded once to a nano-USD by
    :func:`~costwarden.money.round_half_even`, the catalogue's rule. Why it stays: pricing
    through ``ResolvedPrice.cost_nanos`` instead (a Usage and the price's integer route) costs
    about 0.7 µs more per call, which takes a 9-token estimate past the 1.5x-of-tiktoken
    target (docs/benchmarks.md); the detailed :func:`estimate` costs several µs more. It
    self-checks against ``ResolvedPrice.cost_nanos`` when
    compiled and is not used (``compile`` returns None) for rates that are not whole nano-USD
    per 1M tokens or that disagree; requests above a long-context threshold take the full path.
    """

    __slots__ = ("cache_read", "count", "input", "model", "output", "threshold")

    def __init__(
        self,
        model: str,
        count: Callable[[str], int],
        rates: tuple[int, int, int],
        threshold: int | None,
    ) -> None:
        self.model = model
        self.count = count
        self.input, self.output, self.cache_read = rates
        self.threshold = threshold

    @classmethod
    def compile(cls, catalog: PriceCatalog, model: str) -> FastPath | None:
        """Precompute integer per-token rates for ``model`` if its price is a flat linear one; None
        (use the full pricing path) otherwise.
        """
        try:
            price = catalog.resolve(model)
        except (UnknownModelError, InvalidInputError):
            return None  # the full path raises the typed error
        rates = []
        for rate in (price.input, price.output, price.cache_read or price.input):
            scaled = rate * 1_000_000_000
            if scaled != scaled.to_integral_value():
                return None
            rates.append(int(scaled))
        probe = count_tokens("probe", model)
        encoding = encoding_name_for(model)
        if probe.exact and probe.method == f"tiktoken:{encoding}":
            encode = get_encoding(encoding).encode_ordinary

            def count(text: str) -> int:
                return len(encode(text)) if text else 0

        else:

            def count(text: str) -> int:
                return count_tokens(text, model).tokens

        fast = cls(model, count, (rates[0], rates[1], rates[2]), price.long_context_threshold)
        limit = price.long_context_threshold or 200_000
        for n_in, n_out, cached in ((limit, 12_345, limit // 3), (7, 1, 0), (1, 0, 1)):
            check = Usage(input_tokens=n_in, output_tokens=n_out, cache_read_tokens=cached)
            if fast.cost(n_in, n_out, cached) != price.cost_nanos(check):
                return None
        return fast

    def cost(self, n_in: int, n_out: int, cached: int) -> Nanos:
        """The cost in nano-USD of a call with these token counts, from the precomputed rates with
        the one rounding rule.
        """
        total = (n_in - cached) * self.input + cached * self.cache_read + n_out * self.output
        return round_half_even(total, _MILLION)
