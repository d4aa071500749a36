"""Where a request goes: each upstream kind's URLs and credential headers, per route.

Credentials are read from the environment once, when the gateway starts
(:func:`build_upstreams`); a missing variable is a :class:`ConfigurationError` naming the
variable. They are kept out of every ``repr`` and log line and are never sent to a client: the
gateway answers with its own headers, copying only an allow-list of the upstream's.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal
from urllib.parse import quote

from costwarden.errors import ConfigurationError
from costwarden.gateway.settings import GatewaySettings, UpstreamSettings

Route = Literal["chat", "responses", "embeddings", "messages", "count_tokens"]

_OPENAI_PATHS: Final[dict[str, str]] = {
    "chat": "/chat/completions",
    "responses": "/responses",
    "embeddings": "/embeddings",
}
_ANTHROPIC_PATHS: Final[dict[str, str]] = {
    "messages": "/v1/messages",
    "count_tokens": "/v1/messages/count_tokens",
}
ANTHROPIC_VERSION: Final = b"2023-06-01"
SPEAKS: Final[dict[str, frozenset[str]]] = {
    "openai": frozenset(_OPENAI_PATHS),
    "openai-compatible": frozenset(_OPENAI_PATHS),
    "azure": frozenset({"chat", "embeddings"}),
    "anthropic": frozenset(_ANTHROPIC_PATHS),
    "simulated": frozenset({*_OPENAI_PATHS, *_ANTHROPIC_PATHS}),
}


class UnsupportedRoute(Exception):
    """The model's upstream does not speak this API (say which, and what to do)."""


@dataclass(frozen=True, slots=True)
class Upstream:
    """One configured upstream with its credential header resolved (hidden from repr)."""

    settings: UpstreamSettings
    auth: tuple[tuple[bytes, bytes], ...] = field(default=(), repr=False)

    @property
    def name(self) -> str:
        """The upstream's configured name."""
        return self.settings.name

    @property
    def kind(self) -> str:
        """The upstream's API kind ('openai', 'anthropic', ...): it decides the routes served."""
        return self.settings.kind

    @property
    def provider(self) -> str | None:
        """The pricing hint recorded on records: the provider whose price list applies."""
        kind = self.settings.kind
        if kind in ("openai", "azure"):
            return "openai"
        if kind == "anthropic":
            return "anthropic"
        return None

    def speaks(self, route: Route) -> bool:
        """Whether this upstream's API kind serves ``route``."""
        return route in SPEAKS[self.settings.kind]

    def target(self, route: Route, model: str) -> str:
        """The URL of ``route`` for ``model`` on this upstream."""
        s = self.settings
        if not self.speaks(route):
            raise UnsupportedRoute(
                f"model {model!r} is served by upstream {s.name!r} (kind {s.kind}), which does "
                f"not speak the {route} API; route the model to an upstream that does"
            )
        if s.kind == "azure":
            deployment = s.deployments.get(model, model)
            return (
                f"{s.base_url}/openai/deployments/{quote(deployment, safe='')}"
                f"{_OPENAI_PATHS[route]}?api-version={quote(s.api_version or '', safe='')}"
            )
        if s.kind == "anthropic":
            return s.base_url + _ANTHROPIC_PATHS[route]
        return s.base_url + _OPENAI_PATHS[route]


def _auth(s: UpstreamSettings, environ: Mapping[str, str]) -> tuple[tuple[bytes, bytes], ...]:
    if s.kind == "simulated" or s.api_key_env is None:
        return ()
    secret = environ.get(s.api_key_env)
    if not secret:
        if s.kind == "openai-compatible" and s.api_key_env not in environ:
            return ()  # a local server (vLLM, Ollama) usually needs no key
        raise ConfigurationError(
            f"gateway: upstream {s.name!r} needs its API key in ${s.api_key_env}, which is "
            "not set (credentials come only from the environment)"
        )
    value = secret.encode("latin-1")
    if s.kind == "anthropic":
        return ((b"x-api-key", value),)
    if s.kind == "azure":
        return ((b"api-key", value),)
    return ((b"authorization", b"Bearer " + value),)


def build_upstreams(
    settings: GatewaySettings, environ: Mapping[str, str] | None = None
) -> dict[str, Upstream]:
    """Every upstream of ``settings`` with its credentials read from ``environ``."""
    env = os.environ if environ is None else environ
    return {name: Upstream(s, _auth(s, env)) for name, s in settings.upstreams.items()}


__all__ = ["SPEAKS", "Route", "UnsupportedRoute", "Upstream", "build_upstreams"]
