"""Every usage field the providers send, and what it is billed as.

One table per API (the keys of :data:`USAGE_FIELDS`), from field path (dots for nesting, as
the provider spells it) to either the :class:`~costwarden.records.Usage` count it is read into
(and so billed at that count's own rate, where the model has one) or :data:`FOLDED` with the
reason it needs no count of its own. docs/pricing.md shows the same table, and a test walks
the providers' documented usage shapes and fails on a field this table does not name, so a new
provider field cannot be silently billed at a cheaper rate.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

FOLDED: Final = "folded"


def _table(rows: dict[str, tuple[str, str]]) -> Mapping[str, tuple[str, str]]:
    return MappingProxyType(rows)


def _openai(
    input_name: str, output_name: str, own: dict[str, tuple[str, str]]
) -> Mapping[str, tuple[str, str]]:
    """One OpenAI API's table: the fields both APIs send under their own names for the input
    and output sides (``prompt_tokens``/``completion_tokens`` in Chat Completions,
    ``input_tokens``/``output_tokens`` in Responses), then ``own``, those only this API sends.

    Why built: :func:`costwarden.clients.usage._openai_usage` reads both APIs with one rule
    under the two sets of names, so the rows it reads are written once too."""
    details_in, details_out = f"{input_name}_details", f"{output_name}_details"
    side_in, side_out = input_name.removesuffix("_tokens"), output_name.removesuffix("_tokens")
    return _table(
        {
            input_name: ("input_tokens", f"all {side_in} tokens"),
            output_name: ("output_tokens", f"all {side_out} tokens"),
            "total_tokens": (FOLDED, "the sum of the two; billing it again would count twice"),
            f"{details_in}.cached_tokens": ("cache_read_tokens", "cache-read rate"),
            f"{details_in}.cache_write_tokens": ("cache_write_tokens", "cache-write rate"),
            f"{details_in}.audio_tokens": ("input_audio_tokens", "audio input rate"),
            f"{details_out}.reasoning_tokens": (
                "reasoning_tokens",
                "output rate, or a reasoning rate where the model has one",
            ),
            f"{details_out}.audio_tokens": ("output_audio_tokens", "audio output rate"),
            **own,
        }
    )


USAGE_FIELDS: Final[Mapping[str, Mapping[str, tuple[str, str]]]] = MappingProxyType(
    {
        "openai_chat": _openai(
            "prompt_tokens",
            "completion_tokens",
            {
                "prompt_tokens_details.text_tokens": (
                    FOLDED,
                    "the text part of prompt_tokens, which pays the input rate already",
                ),
                "prompt_tokens_details.image_tokens": (
                    FOLDED,
                    "chat models bill image input as input tokens at the input rate; the "
                    "catalogue's separate image rates are for image-generation and Realtime "
                    "models, APIs the clients do not wrap",
                ),
                "completion_tokens_details.text_tokens": (
                    FOLDED,
                    "the text part of completion_tokens, which pays the output rate already",
                ),
                "completion_tokens_details.accepted_prediction_tokens": (
                    FOLDED,
                    "inside completion_tokens, billed at the output rate",
                ),
                "completion_tokens_details.rejected_prediction_tokens": (
                    FOLDED,
                    "billed as completion tokens, and already inside completion_tokens",
                ),
            },
        ),
        "openai_responses": _openai(
            "input_tokens",
            "output_tokens",
            {
                "input_token_details.audio_tokens": (
                    "input_audio_tokens",
                    "audio input rate (transcription and Realtime spelling)",
                ),
                "input_token_details.cached_tokens": (
                    "cache_read_tokens",
                    "cache-read rate (transcription and Realtime spelling)",
                ),
                "input_token_details.text_tokens": (
                    FOLDED,
                    "the text part of input_tokens, which pays the input rate already",
                ),
                "input_token_details.cached_tokens_details.audio_tokens": (
                    "cache_audio_read_tokens",
                    "cached audio rate",
                ),
            },
        ),
        "anthropic": _table(
            {
                "input_tokens": ("input_tokens", "uncached input; cache counts are added in"),
                "cache_creation_input_tokens": (
                    "cache_write_tokens",
                    "added into input_tokens; the 5-minute cache-write rate",
                ),
                "cache_read_input_tokens": (
                    "cache_read_tokens",
                    "added into input_tokens; the cache-read rate",
                ),
                "cache_creation.ephemeral_5m_input_tokens": (
                    FOLDED,
                    "cache_creation_input_tokens minus the 1-hour writes: the cache-write rate",
                ),
                "cache_creation.ephemeral_1h_input_tokens": (
                    "cache_write_1h_tokens",
                    "1-hour cache-write rate",
                ),
                "output_tokens": ("output_tokens", "all output tokens, thinking included"),
                "output_tokens_details.thinking_tokens": (
                    "reasoning_tokens",
                    "inside output_tokens; output rate",
                ),
                "server_tool_use.web_search_requests": ("web_searches", "per-search rate"),
                "server_tool_use.web_fetch_requests": (
                    FOLDED,
                    "web fetch has no per-request fee; fetched content is billed as input",
                ),
                "service_tier": (
                    "service_tier",
                    "prices the call at that tier ('batch' = batch rates)",
                ),
                "inference_geo": (
                    FOLDED,
                    "the catalogue has no data-residency rates; priced at the standard rate",
                ),
            }
        ),
    }
)
"""API -> field path -> (Usage count it is read into, or FOLDED; how it is billed / why)."""

RESPONSE_FIELDS: Final[Mapping[str, Mapping[str, tuple[str, str]]]] = MappingProxyType(
    {
        "openai_chat": _table(
            {"service_tier": ("service_tier", "prices the call at that tier (flex, priority)")}
        ),
        "openai_responses": _table(
            {"service_tier": ("service_tier", "prices the call at that tier (flex, priority)")}
        ),
    }
)
"""Fields beside ``usage`` in a response body that change the price."""
