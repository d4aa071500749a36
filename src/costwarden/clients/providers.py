"""Provider adapters: how a tracked chat request becomes one SDK call.

A provider is a small object with a ``name`` (recorded on every record and used as the pricing
hint), the wire ``api`` its responses follow (so :mod:`costwarden.clients.apis` can read them),
whether it is ``free`` (a local model: admitted at $0, never blocked by an exhausted budget),
and three methods: build the request, call it, and call it asynchronously. The call returns
the SDK's own response object, or its stream object when ``stream=True``.

Which provider serves a model is decided by :class:`ProviderRegistry`: an explicit name first,
then a ``name/model`` prefix of a registered provider, then the model family (``claude*`` is
Anthropic, ``gpt-*``/``o1``/``o3``/``o4`` OpenAI), then the price catalogue's provider for the
model, then the registry's default.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from costwarden.clients.apis import Api
from costwarden.errors import ConfigurationError, InvalidInputError, UnknownModelError

if TYPE_CHECKING:
    from costwarden.pricing import PriceCatalog

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
    # type() tests first: the ABC checks cost more than copying a short conversation.
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


def model_family(model: str) -> str | None:
    """The first-party provider a model name belongs to, by its family prefix."""
    name = model.rsplit("/", 1)[-1].lower()
    if name.startswith("claude"):
        return "anthropic"
    prefixes = ("gpt-", "gpt4", "chatgpt", "o1", "o3", "o4", "text-", "davinci", "babbage")
    if name.startswith(prefixes):
        return "openai"
    return None


class ProviderRegistry:
    """Named providers, created on demand for ``openai``, ``anthropic`` and ``simulated``."""

    def __init__(
        self,
        providers: Iterable[Provider] | Mapping[str, Provider] = (),
        *,
        default: str | Provider | None = None,
        pricing: PriceCatalog | None = None,
    ) -> None:
        self._providers: dict[str, Provider] = {}
        self._routes: dict[tuple[str, str | None, bool, str | None], tuple[Provider, str]] = {}
        items = providers.values() if isinstance(providers, Mapping) else providers
        for p in items:
            self.add(p)
        if default is None:
            self.default = None
        elif isinstance(default, str):
            self.default = default
            self.get(default)  # fail now on a misspelt name, not at the first call
        else:
            self.add(default)
            self.default = default.name
        self._pricing = pricing

    def add(self, provider: Provider) -> None:
        if not isinstance(provider, Provider):
            raise InvalidInputError(
                f"{provider!r} is not a provider (needs name, api, free, build, call, acall)"
            )
        self._providers[provider.name] = provider
        self._routes.clear()

    def get(self, name: str, *, create: bool = True) -> Provider:
        found = self._providers.get(name)
        if found is None:
            if not create:
                raise ConfigurationError(f"no provider named {name!r} is registered")
            found = builtin_provider(name)
            self._providers[name] = found
            self._routes.clear()
        return found

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._providers)

    def can_serve(self, model: str) -> bool:
        """Whether ``model`` routes to a registered provider (any built-in when none is)."""
        try:
            self.resolve(model, create=not self._providers)
        except ConfigurationError:
            return False
        return True

    def resolve(
        self, model: str, provider: str | None = None, *, create: bool = True
    ) -> tuple[Provider, str]:
        """(provider, model name to send) for ``model``; see the module doc for the order.

        ``create=False`` only answers with registered providers (no built-in is made).
        Answers are remembered until a provider is added (every call resolves its model).
        """
        plain = (provider is None or type(provider) is str) and (
            self.default is None or type(self.default) is str
        )
        if type(model) is not str or not plain:
            return self._resolve(model, provider, create)[0]
        key = (model, provider, create, self.default)
        route = self._routes.get(key)
        if route is None:
            route, by_name = self._resolve(model, provider, create)
            if by_name:  # not from the price catalogue, which may learn of models later
                if len(self._routes) >= 1024:
                    self._routes.clear()
                self._routes[key] = route
        return route

    def _resolve(
        self, model: str, provider: str | None, create: bool
    ) -> tuple[tuple[Provider, str], bool]:
        """The route, and whether it follows from names alone (so it can be remembered)."""
        if not isinstance(model, str) or not model.strip():
            raise InvalidInputError(f"model must be a non-empty string, got {model!r}")
        if provider is not None:
            return (self.get(provider, create=create), model), True
        if "/" in model:
            prefix, rest = model.split("/", 1)
            if prefix in self._providers or prefix in BUILTIN or prefix in _compatible():
                return (self.get(prefix, create=create), rest), True
        family = model_family(model)
        if family is not None and family in self._providers:
            return (self._providers[family], model), True
        if self.default is not None:
            return (self.get(self.default, create=create), model), True
        if family is not None:
            return (self.get(family, create=create), model), True
        if self._pricing is not None:
            try:
                owner = self._pricing.resolve(model).provider
            except UnknownModelError:
                owner = None
            if owner is not None and (owner in self._providers or owner in BUILTIN):
                return (self.get(owner, create=create), model), False
        raise ConfigurationError(
            f"cannot tell which provider serves model {model!r}; pass provider='openai' "
            "(or 'anthropic', 'simulated', or a registered provider's name), or write the "
            "model as '<provider>/<model>'"
        )


BUILTIN = ("openai", "anthropic", "simulated")


def _compatible() -> Mapping[str, Any]:
    from costwarden.clients.openai_provider import COMPATIBLE

    return COMPATIBLE


def builtin_provider(name: str) -> Provider:
    """A default-configured built-in provider (credentials from the environment)."""
    if name == "openai":
        from costwarden.clients.openai_provider import OpenAIProvider

        return OpenAIProvider()
    if name == "anthropic":
        from costwarden.clients.anthropic_provider import AnthropicProvider

        return AnthropicProvider()
    if name == "simulated":
        from costwarden.clients.simulated import SimulatedProvider

        return SimulatedProvider()
    from costwarden.clients.openai_provider import OpenAIProvider

    if name in _compatible():
        return OpenAIProvider.compatible(name)
    raise ConfigurationError(
        f"no provider named {name!r}; built in: {', '.join(BUILTIN + tuple(_compatible()))}; "
        "or register one with providers=[OpenAIProvider(name=..., base_url=...)]"
    )
