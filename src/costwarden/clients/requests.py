"""What a provider adapter is given and must be: ``ChatRequest`` and the ``Provider`` Protocol.

Provider adapters (:mod:`~costwarden.clients.openai_provider`,
:mod:`~costwarden.clients.anthropic_provider`, :mod:`~costwarden.clients.simulated`, or a
user's own) import this module; the registry (:mod:`costwarden.clients.providers`) imports
them, never the other way round.

A provider is a small object with a ``name`` (recorded on every record and used as the pricing
hint), the wire ``api`` its responses follow (so :mod:`costwarden.clients.apis` can read them),
whether it is ``free`` (a local model: admitted at $0, never blocked by an exhausted budget),
and three methods: build the request, call it, and call it asynchronously. The call returns
the SDK's own response object, or its stream object when ``stream=True``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from costwarden.clients.apis import Api
from costwarden.errors import InvalidInputError

Messages = list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A provider-neutral chat request: OpenAI-style messages, a model and an output cap."""

    model: str
    messages: Messages
    max_tokens: int
    options: Mapping[str, Any] = field(default_factory=dict)


def normalise_messages(messages: object) -> Messages:
    """Accept a string (one user message) or a list of ``{"role", "content"}`` mappings."""
    if isinstance(messages, str):
        if not messages:
            raise InvalidInputError("messages must not be empty")
        return [{"role": "user", "content": messages}]
    # type() tests first: an ABC isinstance check costs ~0.5 us, more than copying a message.
    if (
        type(messages) is not list
        and (not isinstance(messages, Sequence) or isinstance(messages, bytes))
    ) or not messages:
        raise InvalidInputError(
            "messages must be a non-empty list of {'role': ..., 'content': ...} dicts or a string"
        )
    out: Messages = []
    for i, m in enumerate(messages):
        if (type(m) is not dict and not isinstance(m, Mapping)) or not isinstance(
            m.get("role"), str
        ):
            raise InvalidInputError(f"messages[{i}] must be a dict with a 'role', got {m!r}")
        out.append(dict(m))
    return out


def split_system(messages: Messages) -> tuple[str | None, Messages]:
    """The system (and developer) messages joined into one instruction text, and the rest:
    for APIs that take the instructions beside the messages (Anthropic's ``system``, the
    Responses API's ``instructions``)."""
    system = [m for m in messages if m.get("role") in ("system", "developer")]
    rest = [m for m in messages if m not in system]
    if not system:
        return None, rest
    return "\n\n".join(str(m.get("content") or "") for m in system), rest


@runtime_checkable
class Provider(Protocol):
    """What the tracked client needs from a provider adapter (see module doc)."""

    name: str
    api: Api
    free: bool

    def build(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        """The SDK keyword arguments for ``request``."""
        ...

    def call(self, kwargs: dict[str, Any]) -> Any:
        """Make the call; return the SDK response, or its stream when ``kwargs["stream"]``."""
        ...

    async def acall(self, kwargs: dict[str, Any]) -> Any:
        """The same, asynchronously (an async stream when streaming)."""
        ...
