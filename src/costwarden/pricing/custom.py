"""User price tables: the brief's dict style, or a TOML / JSON / YAML file of the same shape.

Shape (USD per 1M tokens)::

    {"gpt-4o": {"input": 2.50, "output": 10.00, "cache_read": 1.25},
     "my-local-llm": {"input": 0, "output": 0, "provider": "vllm"}}

In a file the table may sit under a ``[models]`` table or at the top level. TOML keys with
dots need quotes: ``[models."gpt-4.1"]``.

Why strict: a typo such as ``ouput`` or a negative rate would silently misprice every call,
so every entry is checked and the first problem is reported naming the model and the key.
Errors are :class:`InvalidInputError` for a table passed in code and
:class:`ConfigurationError` for a file (with its path).
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final

from costwarden.errors import ConfigurationError, InvalidInputError

RATE_KEYS: Final = ("input", "output", "cache_read", "cache_write")
ALLOWED_KEYS: Final = frozenset({*RATE_KEYS, "provider"})
_PRICE_KEY_OF: Final = {
    "input": "input_mtok",
    "output": "output_mtok",
    "cache_read": "cache_read_mtok",
    "cache_write": "cache_write_mtok",
}
_DATE_SUFFIX: Final = re.compile(r"-(?:20\d{6}|20\d{2}-\d{2}-\d{2})$")

CustomTable = Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class CustomPrice:
    """One validated custom entry; rates in USD per 1M tokens."""

    model: str
    input: Decimal
    output: Decimal
    cache_read: Decimal | None = None
    cache_write: Decimal | None = None
    provider: str | None = None

    def price_keys(self) -> dict[str, Decimal]:
        """genai-prices style price keys, so one compiler serves both catalogues."""
        keys = {"input_mtok": self.input, "output_mtok": self.output}
        if self.cache_read is not None:
            keys["cache_read_mtok"] = self.cache_read
        if self.cache_write is not None:
            keys["cache_write_mtok"] = self.cache_write
        return keys


def _fail(message: str, origin: str | None) -> Exception:
    if origin is None:
        return InvalidInputError(message)
    return ConfigurationError(f"{origin}: {message}")


def _rate(model: str, key: str, value: object, origin: str | None) -> Decimal:
    where = f"custom price for model {model!r}, key {key!r}"
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise _fail(
            f"{where} must be a number of USD per 1M tokens, got {type(value).__name__} {value!r}",
            origin,
        )
    try:
        if isinstance(value, float):
            rate = Decimal(repr(value))
        elif isinstance(value, str):
            rate = Decimal(value.strip().removeprefix("$"))
        else:
            rate = Decimal(value)
    except InvalidOperation:
        raise _fail(f"{where} is not a number: {value!r}", origin) from None
    if not rate.is_finite():
        raise _fail(f"{where} must be finite, got {value!r}", origin)
    if rate < 0:
        raise _fail(f"{where} must not be negative, got {value!r}", origin)
    return rate


def parse_entry(model: object, entry: object, origin: str | None = None) -> CustomPrice:
    """Validate one ``model -> {input, output, ...}`` entry."""
    if not isinstance(model, str) or not model.strip():
        raise _fail(f"custom price table keys must be model names, got {model!r}", origin)
    if not isinstance(entry, Mapping):
        raise _fail(
            f"custom price for model {model!r} must be a table like "
            f"{{'input': 2.5, 'output': 10.0}} (USD per 1M tokens), got {entry!r}",
            origin,
        )
    unknown = sorted(str(k) for k in entry if k not in ALLOWED_KEYS)
    if unknown:
        raise _fail(
            f"custom price for model {model!r} has unknown key(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(sorted(ALLOWED_KEYS))}",
            origin,
        )
    for required in ("input", "output"):
        if required not in entry:
            raise _fail(
                f"custom price for model {model!r} is missing key {required!r} (USD per 1M "
                "tokens; use 0 for a free direction, e.g. output of an embedding model)",
                origin,
            )
    provider = entry.get("provider")
    if provider is not None and (not isinstance(provider, str) or not provider.strip()):
        raise _fail(
            f"custom price for model {model!r}, key 'provider' must be a non-empty string, "
            f"got {provider!r}",
            origin,
        )
    rates = {
        key: _rate(model, key, entry[key], origin)
        for key in RATE_KEYS
        if key in entry and entry[key] is not None
    }
    return CustomPrice(
        model=model,
        input=rates["input"],
        output=rates["output"],
        cache_read=rates.get("cache_read"),
        cache_write=rates.get("cache_write"),
        provider=provider.strip().lower() if isinstance(provider, str) else None,
    )


def parse_table(table: object, origin: str | None = None) -> dict[str, CustomPrice]:
    """Validate a whole table; ``origin`` (a file path) switches errors to ConfigurationError."""
    if not isinstance(table, Mapping):
        raise _fail(
            "custom prices must be a mapping of model name to {'input': ..., 'output': ...} "
            f"(USD per 1M tokens), or a path to a .toml/.json/.yaml file; got "
            f"{type(table).__name__}",
            origin,
        )
    models = table.get("models") if isinstance(table.get("models"), Mapping) else table
    assert isinstance(models, Mapping)
    return {str(name): parse_entry(name, entry, origin) for name, entry in models.items()}


def load_file(path: str | Path) -> dict[str, CustomPrice]:
    """Read and validate a .toml, .json, .yaml or .yml price file."""
    file = Path(path)
    origin = str(file)
    suffix = file.suffix.lower()
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read price file {origin}: {exc.strerror}") from None
    try:
        if suffix == ".toml":
            data: object = tomllib.loads(raw.decode("utf-8"))
        elif suffix == ".json":
            data = json.loads(raw)
        elif suffix in (".yaml", ".yml"):
            data = _load_yaml(raw, origin)
        else:
            raise ConfigurationError(f"price file {origin} must end in .toml, .json, .yaml or .yml")
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"price file {origin} is not valid {suffix[1:]}: {exc}") from None
    return parse_table(data, origin)


def _load_yaml(raw: bytes, origin: str) -> object:
    try:
        import yaml
    except ImportError:
        raise ConfigurationError(
            f"reading the YAML price file {origin} needs PyYAML: "
            "pip install 'costwarden[yaml]' (or use a .toml or .json file)"
        ) from None
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"price file {origin} is not valid YAML: {exc}") from None


def name_candidates(model: str) -> list[str]:
    """Spellings to try for a custom entry, after the exact name: lower case, without a
    ``provider/`` prefix, without a date suffix (``-20240307`` or ``-2024-03-07``)."""
    out: list[str] = []
    name = model.strip().lower()
    for candidate in (name, name.rsplit("/", 1)[-1]):
        for spelled in (candidate, _DATE_SUFFIX.sub("", candidate)):
            if spelled not in out and spelled != model:
                out.append(spelled)
    return out
