"""The provider registry: which provider adapter serves a model.

Adapters follow the ``Provider`` Protocol of :mod:`costwarden.clients.requests` (the built-in
ones are imported here; they never import this module).

Which provider serves a model is decided by :class:`ProviderRegistry`: an explicit name first,
then a ``name/model`` prefix of a registered provider, then the model family (``claude*`` is
Anthropic, ``gpt-*``/``o1``/``o3``/``o4`` OpenAI), then the price catalogue's provider for the
model, then the registry's default.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from costwarden.clients.anthropic_provider import AnthropicProvider
from costwarden.clients.openai_provider import COMPATIBLE, OpenAIProvider
from costwarden.clients.requests import Provider
from costwarden.clients.sdk_connection import SDKConnection
from costwarden.clients.simulated import SimulatedProvider
from costwarden.errors import ConfigurationError, InvalidInputError, UnknownModelError

if TYPE_CHECKING:
    from costwarden.pricing import PriceCatalog


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
        """Register ``provider`` under its name (replacing one of the same name); an object that is
        not a Provider is an InvalidInputError.
        """
        if not isinstance(provider, Provider):
            raise InvalidInputError(
                f"{provider!r} is not a provider (needs name, api, free, build, call, acall)"
            )
        self._providers[provider.name] = provider

    def get(self, name: str, *, create: bool = True) -> Provider:
        """The provider named ``name``; a built-in one is created on first ask unless ``create`` is
        false, and an unknown name is a ConfigurationError.
        """
        found = self._providers.get(name)
        if found is None:
            if not create:
                raise ConfigurationError(f"no provider named {name!r} is registered")
            found = builtin_provider(name)
            self._providers[name] = found
        return found

    def close(self) -> None:
        """Close the sync SDK clients the registered SDK adapters built (never a client that
        was passed to an adapter, nor anything of another kind of provider: see
        :mod:`costwarden.clients.sdk_connection`)."""
        for provider in self._providers.values():
            if isinstance(provider, SDKConnection):
                provider.close()

    async def aclose(self) -> None:
        """Close the sync and async SDK clients the registered SDK adapters built."""
        for provider in self._providers.values():
            if isinstance(provider, SDKConnection):
                await provider.aclose()

    @property
    def names(self) -> tuple[str, ...]:
        """The names of the providers registered so far, in registration order."""
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
        """
        if not isinstance(model, str) or not model.strip():
            raise InvalidInputError(f"model must be a non-empty string, got {model!r}")
        if provider is not None:
            return self.get(provider, create=create), model
        if "/" in model:
            prefix, rest = model.split("/", 1)
            if prefix in self._providers or prefix in BUILTIN or prefix in COMPATIBLE:
                return self.get(prefix, create=create), rest
        family = model_family(model)
        if family is not None and family in self._providers:
            return self._providers[family], model
        if self.default is not None:
            return self.get(self.default, create=create), model
        if family is not None:
            return self.get(family, create=create), model
        if self._pricing is not None:
            try:
                owner = self._pricing.resolve(model).provider
            except UnknownModelError:
                owner = None
            if owner is not None and (owner in self._providers or owner in BUILTIN):
                return self.get(owner, create=create), model
        raise ConfigurationError(
            f"cannot tell which provider serves model {model!r}; pass provider='openai' "
            "(or 'anthropic', 'simulated', or a registered provider's name), or write the "
            "model as '<provider>/<model>'"
        )


BUILTIN = ("openai", "anthropic", "simulated")


def credentialed_providers(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Built-in providers whose credentials are set, each with the variable that holds them.

    What a caller with no registered provider can reach: the tracked clients choose models
    among these, and so does ``costwarden select``. A local preset without a key (ollama)
    is never listed: nothing says a server is running.
    """
    env = os.environ if environ is None else environ
    found = {
        name: var
        for name, var in (
            ("openai", "OPENAI_API_KEY"),
            ("anthropic", "ANTHROPIC_API_KEY"),
            *((name, preset[1]) for name, preset in COMPATIBLE.items()),
        )
        if var is not None and env.get(var)
    }
    if "anthropic" not in found and env.get("ANTHROPIC_AUTH_TOKEN"):
        found["anthropic"] = "ANTHROPIC_AUTH_TOKEN"
    return found


def builtin_provider(name: str) -> Provider:
    """A default-configured built-in provider (credentials from the environment)."""
    if name == "openai":
        return OpenAIProvider()
    if name == "anthropic":
        return AnthropicProvider()
    if name == "simulated":
        return SimulatedProvider()
    if name in COMPATIBLE:
        return OpenAIProvider.compatible(name)
    raise ConfigurationError(
        f"no provider named {name!r}; built in: {', '.join(BUILTIN + tuple(COMPATIBLE))}; "
        "or register one with providers=[OpenAIProvider(name=..., base_url=...)]"
    )
