"""The ``costwarden.toml`` file the CLI (and gateway, dashboard) read.

.. code-block:: toml

    ledger = "sqlite:///costwarden.db"   # or ledger_env = "COSTWARDEN_PG_URL"
    hold_ttl = 600
    fail_open = false
    prices_file = "prices.toml"          # or a [prices] table, not both

    [budget]                             # the global budget
    daily_limit = 10.0
    monthly_limit = 200.0
    per_request_limit = 0.5
    weekly_limit = 60.0
    timezone = "Europe/Paris"
    alert_threshold = 0.8                # or alert_thresholds = [0.5, 0.8, 1.0]
    rolling = { "1h" = 2.0 }             # window ("90m", "1h", "3600s") -> USD

    [budgets.user.alice]                 # also budgets.team / key / tag / model
    daily_limit = 2.0

    [default_budgets.user]               # every user without a budget of their own
    daily_limit = 1.0

    [prices]                             # USD per 1M tokens (see docs/pricing.md)
    "my-llm" = { input = 0.2, output = 0.6 }

    [alerts]                             # costwarden.alerts.config's format
    [[alerts.channels]]
    type = "slack"
    webhook_url_env = "COSTWARDEN_SLACK_WEBHOOK"

Decisions (docs/configuration.md says why at more length):

* A limit the file does not write is **not enforced**. ``Budget()`` in code keeps the brief's
  defaults ($10/day, $200/month, $0.50/request), but a file states exactly what it enforces; a
  file without ``[budget]`` tracks spend globally without limits.
* Every bad value is a :class:`ConfigurationError` naming the key (``budgets.user.alice.
  daily_limit``) and what is expected; unknown keys are errors, so a typo never silently
  disables a limit. ``[gateway]`` and ``[dashboard]`` tables are kept, unread, for those parts.
* Secrets only from the environment: a database URL with a password is refused in the file
  (use ``ledger_env`` or ``$COSTWARDEN_LEDGER``); alert secrets use ``*_env`` keys.
* Relative paths in the file (``sqlite:///x.db``, ``prices_file``) are relative to the file's
  folder, so the CLI run from elsewhere with ``--config`` sees the gateway's ledger. The
  default ledger, with no file, is ``costwarden.db`` in the current folder.
* Alert channels are built (and their environment variables read) only when a manager is
  built with alerts on, so read-only CLI commands work without the alert secrets.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from costwarden.budget import SCOPE_KINDS, Budget, Scope
from costwarden.errors import ConfigurationError, CostwardenError
from costwarden.money import nanos_to_usd, usd_to_nanos

if TYPE_CHECKING:
    from costwarden.alerts import AlertChannel
    from costwarden.ledger import Ledger
    from costwarden.manager import BudgetManager
    from costwarden.pricing import PriceCatalog

DEFAULT_LEDGER: Final = "sqlite:///costwarden.db"
DEFAULT_FILE_NAME: Final = "costwarden.toml"
CONFIG_ENV: Final = "COSTWARDEN_CONFIG"
LEDGER_ENV: Final = "COSTWARDEN_LEDGER"

_TOP_KEYS: Final = frozenset(
    {
        "ledger",
        "ledger_env",
        "hold_ttl",
        "fail_open",
        "prices_file",
        "prices",
        "budget",
        "budgets",
        "default_budgets",
        "alerts",
    }
)
_LEDGER_SCHEMES: Final = (
    "memory://",
    "sqlite://",
    "postgresql://",
    "postgres://",
    "postgresql+psycopg://",
)
_PASSTHROUGH: Final = frozenset({"gateway", "dashboard"})
_LIMIT_KEYS: Final = ("daily_limit", "weekly_limit", "monthly_limit", "per_request_limit")
_BUDGET_KEYS: Final = frozenset(
    {*_LIMIT_KEYS, "timezone", "alert_threshold", "alert_thresholds", "rolling"}
)
_SCOPED_KINDS: Final = tuple(k for k in SCOPE_KINDS if k != "global")
_DURATION: Final = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_UNIT_SECONDS: Final = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_DEPTH: Final = 32
"""The deepest nesting of tables and arrays a file may have: real files need a handful of
levels, and deeper values would make every reader of them (repr, JSON, the gateway's section)
recurse without bound."""
NO_LIMITS: Final = Budget(None, None, None)
"""The global budget of a file without ``[budget]``: spend is tracked, nothing is limited."""


@dataclass(frozen=True)
class Config:
    """A validated configuration. Build one with :func:`load_config` or :func:`discover_config`.

    ``budgets`` maps each named scope to its budget; ``default_budgets`` maps a scope kind
    (``"user"``...) to the budget of every such scope without its own. ``prices`` is the raw
    (validated) custom price table, ``prices_file`` a validated price file.
    """

    path: Path | None = None
    ledger: str = DEFAULT_LEDGER
    ledger_source: str = "default"
    budget: Budget = NO_LIMITS
    budgets: Mapping[Scope, Budget] = field(default_factory=lambda: MappingProxyType({}))
    default_budgets: Mapping[str, Budget] = field(default_factory=lambda: MappingProxyType({}))
    prices: Mapping[str, Mapping[str, Any]] | None = None
    prices_file: Path | None = None
    alerts: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    alert_options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    hold_ttl: float = 600.0
    fail_open: bool = False
    sections: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    """Tables kept for other parts (``gateway``, ``dashboard``), not read here."""

    def with_ledger(self, url: str, source: str) -> Config:
        """A copy that uses another ledger URL (a ``--ledger`` option, say)."""
        _check_ledger_url(url, source)
        return replace(self, ledger=url, ledger_source=source)

    def build_catalog(self) -> PriceCatalog:
        """The price catalogue: custom prices over genai-prices, or the shared default."""
        from costwarden.pricing import PriceCatalog, default_catalog

        if self.prices_file is not None:
            return PriceCatalog(custom=self.prices_file)
        if self.prices:
            return PriceCatalog(custom=self.prices)
        return default_catalog()

    def alert_channels(self, environ: Mapping[str, str] | None = None) -> list[AlertChannel]:
        """The ``[alerts]`` channels, reading their secrets from ``environ`` now."""
        from costwarden.alerts.config import channels_from_config

        return channels_from_config(self.alerts, environ=environ)

    def build_manager(
        self,
        *,
        alerts: bool = True,
        environ: Mapping[str, str] | None = None,
        ledger: Ledger | None = None,
    ) -> BudgetManager:
        """A BudgetManager with this file's ledger, budgets, prices and alert channels.

        The file's budgets are local to the manager: they apply where the ledger has no
        budget of the same scope, and are never written to the ledger (docs/budgets.md).

        ``alerts=False`` builds no channel (alerts are logged): for read-only tools, which
        should neither need the alert secrets nor send anything. ``ledger``: an already open
        ledger on this file's URL (the gateway's, wrapped in budget leases) instead of the URL.
        """
        from costwarden.manager import BudgetManager

        channels = self.alert_channels(environ) if alerts else []
        return BudgetManager(
            ledger=self.ledger if ledger is None else ledger,
            pricing=self.build_catalog() if (self.prices or self.prices_file) else None,
            alert_channels=channels,
            alert_options=dict(self.alert_options) if alerts else None,
            hold_ttl=self.hold_ttl,
            fail_open=self.fail_open,
            local_budgets=self.budget_table(),
            budget_source=self.budget_source,
        )

    @property
    def budget_source(self) -> str:
        """How ``costwarden budgets list`` and ``status`` name this file's budgets."""
        return f"config:{self.path}" if self.path is not None else "config"

    def budget_table(self) -> dict[str, Budget]:
        """This file's budgets by scope string (``global`` only if ``[budget]`` is written):
        what applies where the ledger has no budget of the same scope (docs/budgets.md)."""
        from costwarden.budget_sources import local_table

        given = None if self.budget is NO_LIMITS else self.budget
        return local_table(given, self.budgets, self.default_budgets)

    @property
    def timezone(self) -> str:
        """The global budget's time zone: what reports use to cut days."""
        return self.budget.timezone


# -- finding and reading the file ----------------------------------------------------------------
def discover_config(
    explicit: str | Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Config:
    """The configuration in force: ``explicit`` (``--config``), else ``$COSTWARDEN_CONFIG``,
    else ``./costwarden.toml`` if present, else defaults. ``$COSTWARDEN_LEDGER`` overrides the
    ledger in every case. A file named explicitly or by the variable must exist."""
    env = os.environ if environ is None else environ
    path: Path | None = None
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigurationError(f"config file {path} (from --config) does not exist")
    elif env.get(CONFIG_ENV):
        path = Path(env[CONFIG_ENV])
        if not path.is_file():
            raise ConfigurationError(f"config file {path} (from ${CONFIG_ENV}) does not exist")
    else:
        candidate = (cwd or Path.cwd()) / DEFAULT_FILE_NAME
        if candidate.is_file():
            path = candidate
    return load_config(path, environ=env)


def load_config(path: str | Path | None, *, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate one TOML file (``None``: the defaults); see the module doc."""
    env = os.environ if environ is None else environ
    if path is None:
        data: dict[str, Any] = {}
        file = None
    else:
        file = Path(path)
        try:
            with file.open("rb") as fh:
                data = tomllib.load(fh)
        except OSError as exc:
            raise ConfigurationError(f"cannot read config file {file}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"config file {file} is not valid TOML: {exc}") from None
        except RecursionError:  # tomllib parses nested arrays and inline tables recursively
            raise ConfigurationError(
                f"config file {file} nests arrays or tables too deeply to read "
                f"(more than {MAX_DEPTH} levels are refused)"
            ) from None
        _check_depth(data, file)
    try:
        return _parse(data, file, env)
    except ConfigurationError as exc:
        if file is None:
            raise
        raise ConfigurationError(f"{file}: {exc}") from None


def _check_depth(data: Mapping[str, Any], file: Path) -> None:
    """Refuse a file nested deeper than :data:`MAX_DEPTH` (walked without recursion)."""
    stack: list[tuple[object, int, str]] = [(data, 0, "")]
    while stack:
        value, depth, where = stack.pop()
        if depth > MAX_DEPTH:
            raise ConfigurationError(
                f"config file {file}: {where or 'the file'} nests tables or arrays more than "
                f"{MAX_DEPTH} levels deep; flatten it"
            )
        if isinstance(value, dict):
            stack.extend(
                (v, depth + 1, f"{where}.{k}" if where else str(k)) for k, v in value.items()
            )
        elif isinstance(value, list):
            stack.extend((v, depth + 1, f"{where}[{i}]") for i, v in enumerate(value))


def _parse(data: Mapping[str, Any], file: Path | None, env: Mapping[str, str]) -> Config:
    unknown = sorted(set(data) - _TOP_KEYS - _PASSTHROUGH)
    if unknown:
        raise ConfigurationError(
            f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_TOP_KEYS))} "
            f"(and the {', '.join(sorted(_PASSTHROUGH))} tables)"
        )
    base = file.parent if file is not None else None
    budget = _budget(data["budget"], "budget") if "budget" in data else NO_LIMITS
    zone = budget.timezone
    ledger, source = _ledger(data, base, env)
    prices, prices_file = _prices(data, base)
    alerts = _table(data.get("alerts", {}), "alerts")
    from costwarden.alerts.config import check_alerts_section

    options = check_alerts_section(alerts)  # types, keys, settings; secrets read later
    return Config(
        path=file,
        ledger=ledger,
        ledger_source=source,
        budget=budget,
        budgets=MappingProxyType(_scoped_budgets(data.get("budgets", {}), zone)),
        default_budgets=MappingProxyType(_default_budgets(data.get("default_budgets", {}), zone)),
        prices=prices,
        prices_file=prices_file,
        alerts=MappingProxyType(dict(alerts)),
        alert_options=MappingProxyType(options),
        hold_ttl=_positive(data.get("hold_ttl", 600.0), "hold_ttl"),
        fail_open=_bool(data.get("fail_open", False), "fail_open"),
        sections=MappingProxyType({k: data[k] for k in _PASSTHROUGH if k in data}),
    )


# -- sections ------------------------------------------------------------------------------------
def _table(value: object, key: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{key} must be a table ([{key}]), got {type(value).__name__}")
    return value


def _ledger(data: Mapping[str, Any], base: Path | None, env: Mapping[str, str]) -> tuple[str, str]:
    if "ledger" in data and "ledger_env" in data:
        raise ConfigurationError("give ledger or ledger_env, not both")
    if env.get(LEDGER_ENV):
        url, source = env[LEDGER_ENV], f"${LEDGER_ENV}"
    elif "ledger_env" in data:
        var = data["ledger_env"]
        if not isinstance(var, str) or not var:
            raise ConfigurationError("ledger_env must name an environment variable")
        if not env.get(var):
            raise ConfigurationError(f"environment variable {var} (from ledger_env) is not set")
        url, source = env[var], f"${var}"
    elif "ledger" in data:
        url = data["ledger"]
        if not isinstance(url, str) or not url:
            raise ConfigurationError(f"ledger must be a URL string, got {url!r}")
        if _has_password(url):
            raise ConfigurationError(
                "ledger: a URL with a password does not belong in a config file; put it in an "
                f'environment variable and name it with ledger_env = "..." (or set ${LEDGER_ENV})'
            )
        url, source = _relative_sqlite(url, base), "config file"
    else:
        return DEFAULT_LEDGER, "default"
    _check_ledger_url(url, source)
    return url, source


def _has_password(url: str) -> bool:
    try:
        return urlsplit(url).password is not None
    except ValueError:
        return False


def _relative_sqlite(url: str, base: Path | None) -> str:
    """``sqlite:///x.db`` in a file at ``/etc/cw/`` means ``/etc/cw/x.db``."""
    if base is None or not url.startswith("sqlite:///") or url.startswith("sqlite:////"):
        return url
    rest = url[len("sqlite:///") :]
    path, sep, query = rest.partition("?")
    if not path or path == ":memory:":
        return url
    return f"sqlite:///{(base / path).resolve()}{sep}{query}"


def _check_ledger_url(url: str, source: str) -> None:
    if not url.startswith(_LEDGER_SCHEMES):
        raise ConfigurationError(
            f"ledger URL from {source} must be memory://, sqlite:///path.db or "
            f"postgresql://..., got {url!r}"
        )


def _prices(
    data: Mapping[str, Any], base: Path | None
) -> tuple[Mapping[str, Mapping[str, Any]] | None, Path | None]:
    from costwarden.pricing.custom import load_file, parse_table

    if "prices" in data and "prices_file" in data:
        raise ConfigurationError("give a [prices] table or prices_file, not both")
    if "prices_file" in data:
        raw = data["prices_file"]
        if not isinstance(raw, str) or not raw:
            raise ConfigurationError(f"prices_file must be a path string, got {raw!r}")
        path = Path(raw).expanduser()
        if base is not None and not path.is_absolute():
            path = base / path
        load_file(path)  # validates now: a bad price file fails at start-up, not mid-call
        return None, path
    if "prices" in data:
        table = _table(data["prices"], "prices")
        parse_table(table, origin="[prices]")
        return MappingProxyType({str(k): v for k, v in table.items()}), None
    return None, None


def _by_kind(value: object, key: str) -> Mapping[str, Any]:
    """The table ``key`` whose keys are scope kinds (``user``, ``team``...), checked."""
    section = _table(value, key)
    for kind in section:
        if kind not in _SCOPED_KINDS:
            raise ConfigurationError(
                f"{key}.{kind}: scope kind must be one of {', '.join(_SCOPED_KINDS)}"
            )
    return section


def _scoped_budgets(value: object, zone: str) -> dict[Scope, Budget]:
    out: dict[Scope, Budget] = {}
    for kind, names in _by_kind(value, "budgets").items():
        for name, spec in _table(names, f"budgets.{kind}").items():
            if not str(name).strip():
                raise ConfigurationError(f"budgets.{kind}: a {kind} name must not be empty")
            out[Scope(kind, str(name))] = _budget(spec, f"budgets.{kind}.{name}", zone)
    return out


def _default_budgets(value: object, zone: str) -> dict[str, Budget]:
    return {
        kind: _budget(spec, f"default_budgets.{kind}", zone)
        for kind, spec in _by_kind(value, "default_budgets").items()
    }


def _budget(value: object, key: str, zone: str = "UTC") -> Budget:
    """One budget table; ``zone`` is the time zone when the table names none (scoped budgets
    inherit the global one, so "a day" means the same day everywhere in one file)."""
    spec = _table(value, key)
    unknown = sorted(set(spec) - _BUDGET_KEYS)
    if unknown:
        raise ConfigurationError(
            f"{key}: unknown key(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(sorted(_BUDGET_KEYS))}"
        )
    limits = {
        name: _usd(spec[name], f"{key}.{name}") if name in spec else None for name in _LIMIT_KEYS
    }
    timezone = spec.get("timezone", zone)
    if not isinstance(timezone, str):
        raise ConfigurationError(f"{key}.timezone must be an IANA name such as 'Europe/Paris'")
    threshold = spec.get("alert_threshold", 0.8)
    thresholds = spec.get("alert_thresholds")
    if thresholds is not None and not isinstance(thresholds, list):
        raise ConfigurationError(f"{key}.alert_thresholds must be a list such as [0.5, 0.8, 1.0]")
    rolling = _rolling(spec["rolling"], f"{key}.rolling") if "rolling" in spec else None
    try:
        return Budget(
            limits["daily_limit"],
            limits["monthly_limit"],
            limits["per_request_limit"],
            threshold,
            weekly_limit=limits["weekly_limit"],
            rolling_limits=rolling,
            timezone=timezone,
            alert_thresholds=None if thresholds is None else tuple(thresholds),
        )
    except CostwardenError as exc:
        raise ConfigurationError(f"{key}: {exc}") from None


def _usd(value: object, key: str) -> float:
    """A limit in USD: a number or a decimal string (``"0.10"``); exact through nano-USD."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ConfigurationError(f"{key} must be a number of USD, got {value!r}")
    try:
        return nanos_to_usd(usd_to_nanos(value, field=key))
    except CostwardenError as exc:
        raise ConfigurationError(str(exc)) from None


def _rolling(value: object, key: str) -> dict[int, float]:
    table = _table(value, key)
    out: dict[int, float] = {}
    for window, limit in table.items():
        match = _DURATION.match(str(window))
        if match is None or int(match.group(1)) == 0:
            raise ConfigurationError(
                f"{key}: window {window!r} must be a duration such as '90m', '1h' or '3600s'"
            )
        seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        if seconds in out:
            raise ConfigurationError(f"{key}: window {window!r} is given twice")
        out[seconds] = _usd(limit, f"{key}.{window}")
    return out


def _positive(value: object, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigurationError(f"{key} must be a positive number of seconds, got {value!r}")
    if value == float("inf"):
        raise ConfigurationError(f"{key} must be finite, got {value!r}")
    return float(value)


def _bool(value: object, key: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigurationError(f"{key} must be true or false, got {value!r}")
    return value
