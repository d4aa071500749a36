"""What costwarden needs to know about each wire API, independent of transport.

Three APIs are understood: OpenAI Chat Completions (``"chat"``), OpenAI Responses
(``"responses"``) and Anthropic Messages (``"messages"``). For each: how to read the prompt out
of a request (to count it before the call), which field bounds the output (the estimate's output
side, and what makes a hold an upper bound), and how to read text, usage and an id out of a
response or a stream. Everything here works on SDK objects *and* plain JSON, so the tracked
client, the SDK wrappers and the gateway share one reading of each format.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal

from costwarden.clients.usage import (
    AnthropicStreamUsage,
    OpenAIChatStreamUsage,
    OpenAIResponsesStreamUsage,
    anthropic_usage,
    field,
    openai_chat_usage,
    openai_responses_usage,
)
from costwarden.errors import InvalidInputError
from costwarden.records import Usage

Api = Literal["chat", "responses", "messages"]
APIS: Final[tuple[Api, ...]] = ("chat", "responses", "messages")

Message = dict[str, str]


def content_text(content: Any) -> str:
    """The text of a message ``content``: a string, or a list of parts (text parts joined).

    Non-text parts (images, audio, files) are not counted; their cost is billed from the
    provider's usage after the call, so a pre-call estimate with images is a lower bound.
    """
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        out = []
        for part in content:
            if isinstance(part, str):
                out.append(part)
                continue
            text = field(part, "text")
            if isinstance(text, str):
                out.append(text)
            elif field(part, "type") in ("tool_result", "tool_use"):
                inner = field(part, "content") or field(part, "input")
                out.append(content_text(inner) if not isinstance(inner, Mapping) else str(inner))
        return "\n".join(out)
    return str(content)


def prompt_messages(api: Api, request: Mapping[str, Any]) -> list[Message]:
    """The request's prompt as plain ``{"role", "content"}`` messages for token counting."""
    out: list[Message] = []
    if api == "messages":
        system = request.get("system")
        if system:
            out.append({"role": "system", "content": content_text(system)})
    if api == "responses":
        instructions = request.get("instructions")
        if instructions:
            out.append({"role": "system", "content": str(instructions)})
        items = request.get("input")
        if isinstance(items, str):
            return [*out, {"role": "user", "content": items}]
    else:
        items = request.get("messages")
    if items is None:
        raise InvalidInputError(
            f"the request has no {'input' if api == 'responses' else 'messages'}; "
            "pass the prompt as the API expects"
        )
    # type() tests first: an ABC isinstance check costs ~0.5 us, more than reading a message.
    if type(items) is not list and (
        not isinstance(items, Sequence) or isinstance(items, (str, bytes))
    ):
        raise InvalidInputError(f"messages must be a list of messages, got {type(items).__name__}")
    for item in items:
        if type(item) is not dict and not isinstance(item, Mapping):
            raise InvalidInputError(f"each message must be a mapping, got {item!r}")
        role = str(item.get("role") or item.get("type") or "user")
        text = content_text(item.get("content"))
        if "output" in item and not text:  # responses function_call_output items
            text = content_text(item.get("output"))
        out.append({"role": role, "content": text})
    return out


_BOUND_NAMES: Final[dict[str, tuple[str, ...]]] = {
    "chat": ("max_completion_tokens", "max_tokens"),
    "responses": ("max_output_tokens",),
    "messages": ("max_tokens",),
}


def output_bound(api: Api, request: Mapping[str, Any]) -> int | None:
    """The request's own cap on output tokens, if it sets one."""
    for name in _BOUND_NAMES[api]:
        value = request.get(name)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInputError(f"{name} must be a positive integer, got {value!r}")
            return value
    return None


def response_usage(api: Api, response: Any) -> Usage:
    """Usage of a complete (non-streamed) response; raises ProviderResponseError if absent."""
    usage = field(response, "usage")
    if api == "chat":
        return openai_chat_usage(usage)
    if api == "responses":
        return openai_responses_usage(usage)
    return anthropic_usage(usage)


def response_text(api: Api, response: Any) -> str:
    """The assistant text of a complete response ('' when it only called tools)."""
    if api == "chat":
        choices = field(response, "choices")
        if type(choices) is list:  # SDK objects and JSON alike: the first choice's text
            first = choices[0] if choices else None
            return content_text(field(field(first, "message"), "content")) if first else ""
        return "".join(
            content_text(field(field(c, "message"), "content")) for c in (choices or [])[:1] if c
        )
    if api == "responses":
        parts = []
        for item in field(response, "output") or []:
            if field(item, "type") == "message":
                for c in field(item, "content") or []:
                    if field(c, "type") == "output_text" and isinstance(field(c, "text"), str):
                        parts.append(field(c, "text"))
        return "".join(parts)
    return "".join(
        field(b, "text") or ""
        for b in field(response, "content") or []
        if field(b, "type") == "text"
    )


def response_service_tier(api: Api, response: Any) -> str | None:
    """The service tier the provider says it served the call at (None when it does not say):
    OpenAI's top-level ``service_tier``, Anthropic's ``usage.service_tier``."""
    tier = field(field(response, "usage") if api == "messages" else response, "service_tier")
    return tier if isinstance(tier, str) and tier else None


def response_model(response: Any, default: str) -> str:
    """The model the provider says answered, or ``default`` (the requested model) when it does not
    say.
    """
    model = field(response, "model")
    return model if isinstance(model, str) and model else default


def response_id(response: Any) -> str | None:
    """The provider's response id, if the response has a non-empty one (it becomes the record's
    request id).
    """
    rid = field(response, "id")
    return rid if isinstance(rid, str) and rid else None


class StreamDecoder:
    """Reads one stream's events: the visible text of each, plus usage and everything produced.

    ``produced`` also collects text the caller does not see (Anthropic thinking, tool-call
    arguments) because it was generated and billed: a stream cut short is charged by counting it.
    """

    def __init__(self, api: Api) -> None:
        self.api = api
        self.produced: list[str] = []
        self.model: str | None = None
        self.id: str | None = None
        self.finished = False
        self._tier: str | None = None
        self._usage: OpenAIChatStreamUsage | OpenAIResponsesStreamUsage | AnthropicStreamUsage
        if api == "chat":
            self._usage = OpenAIChatStreamUsage()
        elif api == "responses":
            self._usage = OpenAIResponsesStreamUsage()
        else:
            self._usage = AnthropicStreamUsage()

    @property
    def usage(self) -> Usage | None:
        """The usage seen in the stream so far, or None if the provider has reported none yet."""
        return self._usage.usage

    @property
    def service_tier(self) -> str | None:
        """The service tier the stream reported (chunks, the terminal event, message_start)."""
        if isinstance(self._usage, AnthropicStreamUsage):
            return self._usage.service_tier
        return self._tier

    @property
    def complete_usage(self) -> bool:
        """True when the provider reported the final output count (a trustworthy bill)."""
        return self._usage.has_output_count

    def feed(self, event: Any) -> str:
        """Account for one event; return the text it shows the caller ('' for none)."""
        self._usage.feed(event)
        if self.api == "chat":
            return self._chat(event)
        if self.api == "responses":
            return self._responses(event)
        return self._messages(event)

    def _named_by(self, response: Any) -> None:
        """The response's id and model, from the first event that carries them."""
        self.id = response_id(response)
        model = field(response, "model")
        self.model = model if isinstance(model, str) else None

    def _produce(self, piece: object) -> str:
        """Keep ``piece`` as produced text if the event carried a string there; it, or '' when
        it did not (a missing or malformed field produced nothing)."""
        if isinstance(piece, str):
            self.produced.append(piece)
            return piece
        return ""

    def _chat(self, chunk: Any) -> str:
        tier = field(chunk, "service_tier")
        if isinstance(tier, str) and tier:
            self._tier = tier
        if self.id is None:
            self._named_by(chunk)
        text = ""
        for choice in field(chunk, "choices") or ():
            delta = field(choice, "delta")
            piece = field(delta, "content")
            if isinstance(piece, str):
                text += piece
            for call in field(delta, "tool_calls") or ():
                self._produce(field(field(call, "function"), "arguments"))
            if field(choice, "finish_reason"):
                self.finished = True
        if text:
            self.produced.append(text)
        return text

    def _responses(self, event: Any) -> str:
        kind = field(event, "type")
        if kind == "response.created":
            self._named_by(field(event, "response"))
        elif kind == "response.output_text.delta":
            return self._produce(field(event, "delta"))
        elif kind in ("response.function_call_arguments.delta", "response.reasoning_text.delta"):
            self._produce(field(event, "delta"))
        elif kind in OpenAIResponsesStreamUsage.TERMINAL:
            self.finished = True
            tier = field(field(event, "response"), "service_tier")
            if isinstance(tier, str) and tier:
                self._tier = tier
        return ""

    def _messages(self, event: Any) -> str:
        kind = field(event, "type")
        if kind == "message_start":
            self._named_by(field(event, "message"))
        elif kind == "content_block_delta":
            delta = field(event, "delta")
            if field(delta, "type") == "text_delta":
                return self._produce(field(delta, "text"))
            for name in ("thinking", "partial_json"):
                self._produce(field(delta, name))
        elif kind == "message_stop":
            self.finished = True
        return ""
