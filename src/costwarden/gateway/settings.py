"""The gateway's settings: the ``[gateway]`` table of ``costwarden.toml``, checked whole.

.. code-block:: toml

    [gateway]
    host = "127.0.0.1"
    port = 4000
    max_body_bytes = 4194304          # larger request bodies get HTTP 413
    key_cache_seconds = 1.0           # how long an authentication result is reused
    shutdown_grace_seconds = 30       # in-flight requests finish within this on SIGTERM
    master_key_env = "COSTWARDEN_MASTER_KEY"   # the admin API's key (unset: no admin API)
    leases = true                     # on a remote ledger: admit from budget leases
    lease_chunk = 16                  # a lease's size, in estimates of the request taking it

    [gateway.upstreams.openai]
    kind = "openai"                   # openai | anthropic | openai-compatible | azure | simulated
    api_key_env = "OPENAI_API_KEY"    # credentials only from the environment
    timeout = 600                     # seconds without a byte from the upstream
    connect_timeout = 10

    [gateway.models]                  # model name (exact, or a glob) -> upstream
    "gpt-4o-mini" = "openai"
    "claude-*" = { upstream = "anthropic", fallback = "claude-3-5-haiku-latest" }

Every bad value is a :class:`~costwarden.errors.ConfigurationError` naming the key, and
unknown keys are errors (a typo must not silently route a model elsewhere). With no
``[gateway]`` table at all, every model goes to the built-in simulated provider, so
``costwarden serve`` works offline with no key.

Secrets never come from the file: ``api_key_env`` names an environment variable, read when
the gateway starts (a missing one is an error then, naming the variable, never its value).
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from costwarden.errors import ConfigurationError

UpstreamKind = Literal["openai", "anthropic", "openai-compatible", "azure", "simulated"]
KINDS: Final[tuple[UpstreamKind, ...]] = (
    "openai",
    "anthropic",
    "openai-compatible",
    "azure",
    "simulated",
)
DEFAULT_BASE_URL: Final[dict[str, str]] = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
}
DEFAULT_KEY_ENV: Final[dict[str, str]] = {
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "azure": "AZURE_OPENAI_API_KEY",
}
DEFAULT_MAX_BODY: Final = 4 * 1024 * 1024
DEFAULT_KEY_CACHE_S: Final = 1.0
DEFAULT_PORT: Final = 4000
DEFAULT_LEASE_CHUNK: Final = 16
MAX_LEASE_CHUNK: Final = 1000

_TOP: Final = frozenset(
    {
        "host",
        "port",
        "workers",
        "max_body_bytes",
        "key_cache_seconds",
        "shutdown_grace_seconds",
        "master_key_env",
        "upstreams",
        "models",
        "log_level",
        "leases",
        "lease_chunk",
    }
)
_UPSTREAM: Final = frozenset(
    {
        "kind",
        "base_url",
        "api_key_env",
        "timeout",
        "connect_timeout",
        "free",
        "api_version",
        "deployments",
        "latency",
        "max_connections",
    }
)
_ROUTE: Final = frozenset({"upstream", "fallback", "free"})


@dataclass(frozen=True, slots=True)
class UpstreamSettings:
    """One upstream: where it is, how to authenticate (an environment variable's name) and
    how long to wait for it. ``free``: its models are local and cost nothing (admitted when a
    budget is exhausted). Azure: ``deployments`` maps model names to deployment names."""

    name: str
    kind: UpstreamKind
    base_url: str = ""
    api_key_env: str | None = None
    timeout: float = 600.0
    connect_timeout: float = 10.0
    free: bool = False
    api_version: str | None = None
    deployments: Mapping[str, str] = field(default_factory=dict)
    latency: float = 0.0
    max_connections: int = 256


@dataclass(frozen=True, slots=True)
class ModelRoute:
    """Requests for models matching ``pattern`` (exact, or a glob with ``*?[``) go to
    ``upstream``; ``fallback`` names a model tried once on a 5xx or a timeout."""

    pattern: str
    upstream: str
    fallback: str | None = None
    free: bool = False

    @property
    def is_glob(self) -> bool:
        """Whether the route's pattern has glob characters (``*``, ``?``, ``[``)."""
        return any(c in self.pattern for c in "*?[")


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    """The whole ``[gateway]`` table, checked (see the module doc for the format)."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    workers: int = 1
    max_body_bytes: int = DEFAULT_MAX_BODY
    key_cache_seconds: float = DEFAULT_KEY_CACHE_S
    shutdown_grace_seconds: float = 30.0
    master_key_env: str | None = "COSTWARDEN_MASTER_KEY"
    log_level: str = "info"
    leases: bool = True
    """On a remote ledger (PostgreSQL), admit from budget leases (costwarden.ledger.leases)."""
    lease_chunk: int = DEFAULT_LEASE_CHUNK
    """A lease's size, in estimates of the request that takes it (1 to 1000)."""
    upstreams: Mapping[str, UpstreamSettings] = field(
        default_factory=lambda: {"simulated": UpstreamSettings("simulated", "simulated")}
    )
    routes: tuple[ModelRoute, ...] = (ModelRoute("*", "simulated"),)

    def route(self, model: str) -> ModelRoute | None:
        """The route of ``model``: an exact pattern first, then the globs in file order."""
        for r in self.routes:
            if not r.is_glob and r.pattern == model:
                return r
        for r in self.routes:
            if r.is_glob and fnmatch.fnmatchcase(model, r.pattern):
                return r
        return None

    def exact_models(self) -> list[str]:
        """The model names routed by an exact (non-glob) pattern."""
        return [r.pattern for r in self.routes if not r.is_glob]


def _number(value: object, key: str, *, minimum: float = 0.0, integer: bool = False) -> float:
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok or not math.isfinite(float(value)):  # type: ignore[arg-type]
        what = "a whole number" if integer else "a number"
        raise ConfigurationError(f"gateway: {key} must be {what}, got {value!r}")
    number = float(value)  # type: ignore[arg-type]
    if number < minimum:
        raise ConfigurationError(f"gateway: {key} must be at least {minimum:g}, got {value!r}")
    return number


def _whole(value: object, key: str, *, minimum: int = 0) -> int:
    """A whole-number setting (``_number`` with ``integer=True``), as an int."""
    return int(_number(value, key, minimum=minimum, integer=True))


def _text(value: object, key: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"gateway: {key} must be a non-empty string, got {value!r}")
    return value


def _unknown(table: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    extra = sorted(set(table) - allowed)
    if extra:
        raise ConfigurationError(
            f"gateway: unknown key(s) {', '.join(map(repr, extra))} in [{where}]; "
            f"known keys: {', '.join(sorted(allowed))}"
        )


def _table(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"gateway: [{where}] must be a table, got {value!r}")
    return value


def _upstream(name: str, spec: Mapping[str, Any]) -> UpstreamSettings:
    where = f"gateway.upstreams.{name}"
    _unknown(spec, _UPSTREAM, where)
    kind = spec.get("kind", name if name in KINDS else None)
    if kind not in KINDS:
        raise ConfigurationError(
            f"gateway: {where}.kind must be one of {', '.join(KINDS)}, got {kind!r}"
        )
    base = spec.get("base_url", DEFAULT_BASE_URL.get(str(kind), ""))
    if kind != "simulated":
        parts = urlsplit(_text(base, f"{where}.base_url"))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigurationError(
                f"gateway: {where}.base_url must be an http(s) URL such as "
                f"'http://127.0.0.1:8000/v1', got {base!r}"
            )
        if parts.username or parts.password:
            raise ConfigurationError(
                f"gateway: {where}.base_url must not carry credentials; put the key in the "
                f"environment and name the variable in api_key_env"
            )
    key_env = spec.get("api_key_env", DEFAULT_KEY_ENV.get(str(kind)))
    if key_env is not None:
        key_env = _text(key_env, f"{where}.api_key_env")
    deployments = _table(spec.get("deployments", {}), f"{where}.deployments")
    for model, dep in deployments.items():
        _text(dep, f"{where}.deployments.{model}")
    api_version = spec.get("api_version")
    if kind == "azure":
        api_version = _text(api_version, f"{where}.api_version")
        if not key_env:
            raise ConfigurationError(f"gateway: {where} (azure) needs api_key_env")
    elif api_version is not None or deployments:
        raise ConfigurationError(
            f"gateway: {where}: api_version and deployments are for kind = 'azure' only"
        )
    free = spec.get("free", False)
    if not isinstance(free, bool):
        raise ConfigurationError(f"gateway: {where}.free must be true or false, got {free!r}")
    return UpstreamSettings(
        name=name,
        kind=kind,
        base_url=str(base).rstrip("/"),
        api_key_env=key_env,
        timeout=_number(spec.get("timeout", 600.0), f"{where}.timeout", minimum=0.001),
        connect_timeout=_number(
            spec.get("connect_timeout", 10.0), f"{where}.connect_timeout", minimum=0.001
        ),
        free=free,
        api_version=api_version,
        deployments=dict(deployments),
        latency=_number(spec.get("latency", 0.0), f"{where}.latency"),
        max_connections=_whole(
            spec.get("max_connections", 256), f"{where}.max_connections", minimum=1
        ),
    )


def _route(pattern: str, spec: object, upstreams: Mapping[str, UpstreamSettings]) -> ModelRoute:
    where = f"gateway.models.{pattern}"
    if isinstance(spec, str):
        spec = {"upstream": spec}
    table = _table(spec, where)
    _unknown(table, _ROUTE, where)
    upstream = _text(table.get("upstream"), f"{where}.upstream")
    if upstream not in upstreams:
        raise ConfigurationError(
            f"gateway: {where} names upstream {upstream!r}, which is not defined; "
            f"defined: {', '.join(sorted(upstreams)) or 'none'} (add [gateway.upstreams."
            f"{upstream}])"
        )
    fallback = table.get("fallback")
    if fallback is not None:
        fallback = _text(fallback, f"{where}.fallback")
    free = table.get("free", False)
    if not isinstance(free, bool):
        raise ConfigurationError(f"gateway: {where}.free must be true or false, got {free!r}")
    return ModelRoute(pattern, upstream, fallback, free)


def parse_gateway(section: Mapping[str, Any] | None) -> GatewaySettings:
    """Check a ``[gateway]`` table (None: the offline defaults) into :class:`GatewaySettings`."""
    if section is None:
        return GatewaySettings()
    data = _table(section, "gateway")
    _unknown(data, _TOP, "gateway")
    upstreams: dict[str, UpstreamSettings] = {
        name: _upstream(name, _table(spec, f"gateway.upstreams.{name}"))
        for name, spec in _table(data.get("upstreams", {}), "gateway.upstreams").items()
    }
    if "models" in data:
        models = _table(data["models"], "gateway.models")
        if not upstreams:
            raise ConfigurationError(
                "gateway: [gateway.models] routes models, but no [gateway.upstreams.NAME] is "
                "defined"
            )
        routes = tuple(_route(str(p), spec, upstreams) for p, spec in models.items())
    elif upstreams:
        if len(upstreams) > 1:
            raise ConfigurationError(
                "gateway: several upstreams are defined but no [gateway.models] says which "
                "models go where"
            )
        routes = (ModelRoute("*", next(iter(upstreams))),)
    else:
        upstreams = {"simulated": UpstreamSettings("simulated", "simulated")}
        routes = (ModelRoute("*", "simulated"),)
    for r in routes:
        if r.fallback is not None and r.fallback == r.pattern:
            raise ConfigurationError(f"gateway: models.{r.pattern}.fallback names itself")
    master = data.get("master_key_env", "COSTWARDEN_MASTER_KEY")
    if master is not None:
        master = _text(master, "gateway.master_key_env")
    level = data.get("log_level", "info")
    if level not in ("debug", "info", "warning", "error"):
        raise ConfigurationError(
            f"gateway: log_level must be debug, info, warning or error, got {level!r}"
        )
    leases = data.get("leases", True)
    if not isinstance(leases, bool):
        raise ConfigurationError(f"gateway: leases must be true or false, got {leases!r}")
    chunk = _whole(data.get("lease_chunk", DEFAULT_LEASE_CHUNK), "gateway.lease_chunk", minimum=1)
    if chunk > MAX_LEASE_CHUNK:
        raise ConfigurationError(
            f"gateway: lease_chunk must be at most {MAX_LEASE_CHUNK} (estimates per lease), "
            f"got {chunk}; a larger lease only denies other processes earlier"
        )
    return GatewaySettings(
        host=_text(data.get("host", "127.0.0.1"), "gateway.host"),
        port=_whole(data.get("port", DEFAULT_PORT), "gateway.port"),
        workers=_whole(data.get("workers", 1), "gateway.workers", minimum=1),
        max_body_bytes=_whole(
            data.get("max_body_bytes", DEFAULT_MAX_BODY), "gateway.max_body_bytes", minimum=1024
        ),
        key_cache_seconds=_number(
            data.get("key_cache_seconds", DEFAULT_KEY_CACHE_S), "gateway.key_cache_seconds"
        ),
        shutdown_grace_seconds=_number(
            data.get("shutdown_grace_seconds", 30.0), "gateway.shutdown_grace_seconds"
        ),
        master_key_env=master,
        log_level=str(level),
        leases=leases,
        lease_chunk=chunk,
        upstreams=upstreams,
        routes=routes,
    )


__all__ = [
    "KINDS",
    "GatewaySettings",
    "ModelRoute",
    "UpstreamKind",
    "UpstreamSettings",
    "parse_gateway",
]
