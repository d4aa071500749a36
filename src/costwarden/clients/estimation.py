"""A call's estimate before it is made: the counted prompt plus the output bound, priced.

The estimate is what is held on the budgets before the provider is called, so it must be an
upper bound (``max_tokens``, or ``default_output_tokens`` when the request sets none) and an
unknown model is an error here, never silently $0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from costwarden.clients.apis import Api, output_bound, prompt_messages
from costwarden.clients.fingerprints import Prefix, fingerprint_metadata, prompt_fingerprint
from costwarden.errors import NoTierPriceError
from costwarden.money import Nanos, nanos_to_usd
from costwarden.records import Usage

if TYPE_CHECKING:
    from costwarden.pricing import PriceCatalog

DEFAULT_OUTPUT_TOKENS = 1024
"""Output bound assumed when a request sets none (the estimate's output side)."""


@dataclass(frozen=True, slots=True)
class Estimate:
    """A call's pre-call bound: counted prompt, output cap, and their price."""

    model: str
    input_tokens: int
    output_tokens: int
    cost_nanos: Nanos
    exact_input: bool
    metadata: dict[str, Any] | None = None
    """Kept on the call's record for the optimizer's advice (docs/optimizer.md): the output
    bound, a hash of the whole prompt (duplicates) and of its system prefix (caching)."""

    @property
    def cost_usd(self) -> float:
        """The estimated worst-case cost in US dollars (float, for display and the brief's API)."""
        return nanos_to_usd(self.cost_nanos)


def _count_prompt(
    messages: list[Any], model: str, tools: Any, prefix: Prefix | None
) -> tuple[int, bool]:
    """``count_message_tokens(messages, model, tools=tools)`` as (tokens, exact), counting a
    known system prefix from its remembered count instead of tokenizing it again.

    OpenAI's recipe is a sum over messages plus ``REPLY_PRIMING`` once, so the prompt is the
    prefix's count plus the rest's, less one priming. That holds only for counts that are
    sums (``tiktoken:`` methods); scaled estimates (``estimate:``, rounded up after scaling)
    are counted whole.
    """
    from costwarden.tokens import REPLY_PRIMING, count_message_tokens

    # Fast shape: a tiktoken-counted prefix, whose count is remembered (see fingerprints).
    if prefix is not None and prefix.count.method.startswith("tiktoken:"):
        rest = count_message_tokens(messages[prefix.length :], model, tools=tools)
        if rest.method.startswith("tiktoken:"):
            tokens = prefix.count.tokens + rest.tokens - REPLY_PRIMING
            return tokens, prefix.count.exact and rest.exact
    counted = count_message_tokens(messages, model, tools=tools)
    return counted.tokens, counted.exact


def count_text(text: str, model: str) -> int:
    """Tokens in generated text (used to charge output the provider did not report)."""
    if not text:
        return 0
    from costwarden.tokens import count_tokens

    return count_tokens(text, model).tokens


def estimate_call(
    pricing: PriceCatalog,
    api: Api,
    request: Mapping[str, Any],
    model: str,
    *,
    provider: str | None = None,
    default_output_tokens: int = DEFAULT_OUTPUT_TOKENS,
    free: bool = False,
) -> Estimate:
    """Price the request's prompt plus its output bound (``max_tokens`` or the default).

    Raises UnknownModelError for an unpriced model (unless ``free``): an unknown model is an
    error before a call, never silently $0.
    """
    messages = prompt_messages(api, request)
    tools = request.get("tools") or None
    # Counting (which checks the model and tools) comes before the output bound is read, so
    # a request with several faults reports the same one first as before.
    prompt_hash, prefix = prompt_fingerprint(messages, model)
    tokens, exact = _count_prompt(messages, model, tools, prefix)
    out = output_bound(api, request) or default_output_tokens
    meta = fingerprint_metadata(out, prompt_hash, prefix)
    if free:
        return Estimate(model, tokens, out, 0, exact, meta)
    usage = Usage(tokens, out)  # input, output: positional binds cheapest (every call)
    tier = request.get("service_tier")
    if isinstance(tier, str):  # the tier asked for ("auto" and the like: standard)
        try:
            cost = pricing.cost_nanos(model, usage, provider=provider, service_tier=tier)
        except NoTierPriceError:  # a custom price without that tier: the response settles it
            cost = pricing.cost_nanos(model, usage, provider=provider)
    else:
        cost = pricing.cost_nanos(model, usage, provider=provider)
    return Estimate(model, tokens, out, cost, exact, meta)
