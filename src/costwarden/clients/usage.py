"""Provider usage reports -> costwarden :class:`~costwarden.records.Usage`.

Each provider reports tokens in its own shape (see ``docs/clients.md`` and the normalisation
table in the design references). The canonical convention is OpenAI's: ``input_tokens`` counts
*all* prompt tokens (cache reads and writes included) and ``output_tokens`` counts all completion
tokens (reasoning included). Anthropic reports cache tokens *beside* ``input_tokens``, so they
are added in here; getting that wrong bills cached tokens twice or not at all.

Every function accepts either the raw JSON (``dict``) or the SDK's pydantic object, because the
same code serves the tracked client (SDK objects) and the gateway (raw bodies). Missing or
``null`` detail fields count as 0; a count that is not a non-negative integer is a
:class:`~costwarden.errors.ProviderResponseError`, since pricing a garbled figure would be worse
than saying the response was unreadable.

Streams report usage piecemeal, so each API has an accumulator: feed it every event and read
``usage`` at the end (``None`` when the provider sent no usage at all).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from costwarden.errors import InvalidInputError, ProviderResponseError
from costwarden.records import Usage

_ZERO = 0
"""The int zero (one object in CPython): ``x is _ZERO`` is the cheapest exact test for it."""

_IS_MAPPING: dict[type, bool] = {}
"""Whether instances of a type are mappings, per type: ``isinstance(x, Mapping)`` is an ABC
check that costs far more than the attribute read it guards, and a call reads ~20 fields."""


def field(obj: Any, name: str) -> Any:
    """``obj[name]`` for mappings, ``obj.name`` for SDK objects; ``None`` when absent."""
    if obj is None:
        return None
    cls = type(obj)
    if cls is dict:  # the common JSON case, without an ABC isinstance check
        return obj.get(name)
    is_mapping = _IS_MAPPING.get(cls)
    if is_mapping is None:
        is_mapping = isinstance(obj, Mapping)
        # Only types whose instances all answer alike (not mocks with a __class__ of their own).
        if obj.__class__ is cls and len(_IS_MAPPING) < 512:
            _IS_MAPPING[cls] = is_mapping
    if is_mapping:
        return obj.get(name)
    return getattr(obj, name, None)


def _count(value: Any, name: str) -> int:
    if type(value) is int and value >= 0:  # the usual case, before the checks below
        return value
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        if isinstance(value, float) and value.is_integer() and value >= 0:
            return int(value)
        raise ProviderResponseError(
            f"provider reported {name}={value!r}, which is not a token count; "
            "the response cannot be priced (check the upstream or proxy in between)"
        )
    return value


def _usage(*counts: int, **extras: int) -> Usage:
    """``Usage(*counts, **extras)``, its error said as the provider's: inconsistent subsets
    would make pricing wrong, and a provider that says it cached more tokens than it read is
    reporting garbage, which we say instead of guessing."""
    try:
        return Usage(*counts, **extras)
    except InvalidInputError as err:
        raise ProviderResponseError(f"provider usage is inconsistent: {err}") from None


def _openai_usage(usage: Any, input_name: str, output_name: str) -> Usage:
    """OpenAI's shape under either API's names: totals ``<input_name>`` and
    ``<output_name>``, with ``<name>_details`` holding the cached, cache-write and reasoning
    subsets."""
    if usage is None:
        raise ProviderResponseError("the response has no usage object")
    details_in = field(usage, _DETAILS[input_name])
    details_out = field(usage, _DETAILS[output_name])
    if details_in is None and input_name == "input_tokens":
        details_in = field(usage, "input_token_details")  # Realtime / transcription naming
    if details_out is None and output_name == "output_tokens":
        details_out = field(usage, "output_token_details")
    input_audio = field(details_in, "audio_tokens")
    output_audio = field(details_out, "audio_tokens")
    text = (
        _count(field(usage, input_name), input_name),
        _count(field(usage, output_name), output_name),
        _count(field(details_in, "cached_tokens"), "cached_tokens"),
        _count(field(details_in, "cache_write_tokens"), "cache_write_tokens"),
        _count(field(details_out, "reasoning_tokens"), "reasoning_tokens"),
    )
    if (input_audio is None or input_audio is _ZERO) and (
        output_audio is None or output_audio is _ZERO
    ):  # the usual text-only call: no audio counts, or OpenAI's explicit zeros (cached audio
        # is a subset of input audio, so there is none to read)
        return _usage(*text)
    cached_audio = field(field(details_in, "cached_tokens_details"), "audio_tokens")
    return _usage(
        *text,
        input_audio_tokens=_count(input_audio, "audio_tokens"),
        cache_audio_read_tokens=_count(cached_audio, "cached_tokens_details.audio_tokens"),
        output_audio_tokens=_count(output_audio, "audio_tokens"),
    )


_DETAILS = {
    name: f"{name}_details"
    for name in ("prompt_tokens", "completion_tokens", "input_tokens", "output_tokens")
}


def openai_chat_usage(usage: Any) -> Usage:
    """Chat Completions ``usage`` (``prompt_tokens``, ``prompt_tokens_details``, ...)."""
    return _openai_usage(usage, "prompt_tokens", "completion_tokens")


def openai_responses_usage(usage: Any) -> Usage:
    """Responses API ``usage`` (``input_tokens``, ``input_tokens_details``, ...)."""
    return _openai_usage(usage, "input_tokens", "output_tokens")


def anthropic_usage(usage: Any) -> Usage:
    """Anthropic Messages ``usage``; cache reads and writes are ADDED into ``input_tokens``."""
    if usage is None:
        raise ProviderResponseError("the response has no usage object")
    uncached = _count(field(usage, "input_tokens"), "input_tokens")
    write = _count(field(usage, "cache_creation_input_tokens"), "cache_creation_input_tokens")
    read = _count(field(usage, "cache_read_input_tokens"), "cache_read_input_tokens")
    output = _count(field(usage, "output_tokens"), "output_tokens")
    thinking = _count(
        field(field(usage, "output_tokens_details"), "thinking_tokens"), "thinking_tokens"
    )
    write_1h = _count(
        field(field(usage, "cache_creation"), "ephemeral_1h_input_tokens"),
        "cache_creation.ephemeral_1h_input_tokens",
    )
    searches = _count(
        field(field(usage, "server_tool_use"), "web_search_requests"),
        "server_tool_use.web_search_requests",
    )
    return _usage(
        uncached + write + read,
        output,
        read,
        write,
        min(thinking, output),
        # A breakdown larger than its total (a stream whose message_delta raised the total
        # after message_start's breakdown) bills what the breakdown says, never more than it.
        cache_write_1h_tokens=min(write_1h, write),
        web_searches=searches,
    )


# -- streams ----------------------------------------------------------------------------------


class _FieldMerge:
    """Later non-null values overwrite earlier ones, field by field.

    Both OpenAI-compatible gateways (partial usage on a content chunk, then the rest) and
    Anthropic (``message_delta`` counts are cumulative) need overwrite-per-field, never sums.
    """

    __slots__ = ("seen", "values")

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.seen = False

    def put(self, name: str, value: Any) -> None:
        if value is not None:
            self.values[name] = value
            self.seen = True

    def get(self, name: str) -> Any:
        return self.values.get(name)


class OpenAIChatStreamUsage:
    """Usage of a Chat Completions stream.

    With ``stream_options.include_usage`` the last chunk (``choices`` empty, ``null`` or absent)
    carries the usage. Some gateways also send a preview usage chunk before the content or split
    the figures over two chunks, so every chunk's usage is merged and the last value wins.
    """

    def __init__(self) -> None:
        self._merge = _FieldMerge()

    def feed(self, chunk: Any) -> None:
        """Take the usage from a Chat Completions chunk (only the final one carries it, with
        stream_options include_usage).
        """
        usage = field(chunk, "usage")
        if usage is None:
            return
        m = self._merge
        m.put("prompt", field(usage, "prompt_tokens"))
        m.put("completion", field(usage, "completion_tokens"))
        prompt = field(usage, "prompt_tokens_details")
        m.put("cached", field(prompt, "cached_tokens"))
        m.put("cache_write", field(prompt, "cache_write_tokens"))
        m.put("input_audio", field(prompt, "audio_tokens"))
        completion = field(usage, "completion_tokens_details")
        m.put("reasoning", field(completion, "reasoning_tokens"))
        m.put("output_audio", field(completion, "audio_tokens"))

    @property
    def usage(self) -> Usage | None:
        """The usage the stream reported, or None if it reported none."""
        m = self._merge
        if not m.seen:
            return None
        return _usage(
            _count(m.get("prompt"), "prompt_tokens"),
            _count(m.get("completion"), "completion_tokens"),
            _count(m.get("cached"), "cached_tokens"),
            _count(m.get("cache_write"), "cache_write_tokens"),
            _count(m.get("reasoning"), "reasoning_tokens"),
            input_audio_tokens=_count(m.get("input_audio"), "audio_tokens"),
            output_audio_tokens=_count(m.get("output_audio"), "audio_tokens"),
        )

    @property
    def has_output_count(self) -> bool:
        """True once the provider reported a completion count (the stream's final figure)."""
        return self._merge.get("completion") is not None


class OpenAIResponsesStreamUsage:
    """Usage of a Responses API stream: only the terminal event carries it.

    ``response.completed``, ``response.incomplete`` and ``response.failed`` all end a stream; the
    spec's examples for the last two show ``"usage": null``, which leaves ``usage`` as ``None``.
    """

    TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})

    def __init__(self) -> None:
        self._usage: Usage | None = None
        self.terminal: str | None = None

    def feed(self, event: Any) -> None:
        """Take the usage from a Responses stream event; only terminal events (completed,
        incomplete, failed) carry it.
        """
        kind = field(event, "type")
        if kind in self.TERMINAL:
            self.terminal = kind
            usage = field(field(event, "response"), "usage")
            if usage is not None:
                self._usage = openai_responses_usage(usage)

    @property
    def usage(self) -> Usage | None:
        """The usage from the terminal event, or None if the stream ended without one."""
        return self._usage

    @property
    def has_output_count(self) -> bool:
        """Whether a terminal event reported usage, so output tokens need not be estimated."""
        return self._usage is not None


class AnthropicStreamUsage:
    """Usage of an Anthropic Messages stream.

    ``message_start`` carries input and cache counts (and ``output_tokens`` of 1 or so);
    ``message_delta`` carries *cumulative* counts that overwrite, never add. A stream cut after
    ``message_start`` still knows its input tokens, which is most of the bill for long prompts.
    """

    def __init__(self) -> None:
        self._merge = _FieldMerge()
        self._final_output = False

    def _take(self, usage: Any) -> None:
        m = self._merge
        for name in (
            "input_tokens",
            "cache_creation_input_tokens",
            "cache_read_input_tokens",
            "output_tokens",
        ):
            m.put(name, field(usage, name))
        m.put("thinking_tokens", field(field(usage, "output_tokens_details"), "thinking_tokens"))
        m.put("write_1h", field(field(usage, "cache_creation"), "ephemeral_1h_input_tokens"))
        m.put("web_searches", field(field(usage, "server_tool_use"), "web_search_requests"))
        m.put("service_tier", field(usage, "service_tier"))

    def feed(self, event: Any) -> None:
        """Take the usage from a Messages stream event (``message_start`` and ``message_delta``
        carry it).
        """
        kind = field(event, "type")
        if kind == "message_start":
            usage = field(field(event, "message"), "usage")
            if usage is not None:
                self._take(usage)
        elif kind == "message_delta":
            usage = field(event, "usage")
            if usage is not None:
                self._take(usage)
                if field(usage, "output_tokens") is not None:
                    self._final_output = True

    @property
    def usage(self) -> Usage | None:
        """The usage merged from the events seen so far, or None if none carried any."""
        m = self._merge
        if not m.seen:
            return None
        merged = dict(m.values)
        merged["output_tokens_details"] = {"thinking_tokens": m.get("thinking_tokens")}
        merged["cache_creation"] = {"ephemeral_1h_input_tokens": m.get("write_1h")}
        merged["server_tool_use"] = {"web_search_requests": m.get("web_searches")}
        return anthropic_usage(merged)

    @property
    def service_tier(self) -> str | None:
        """The ``usage.service_tier`` message_start reported ("standard", "priority", "batch")."""
        tier = self._merge.get("service_tier")
        return tier if isinstance(tier, str) else None

    @property
    def has_output_count(self) -> bool:
        """True once a ``message_delta`` reported the output count (not just message_start's)."""
        return self._final_output
