"""User price tables: the brief's dict style, or a TOML / JSON / YAML file of the same shape.

Shape (token rates in USD per 1M tokens)::

    {"gpt-4o": {"input": 2.50, "output": 10.00, "cache_read": 1.25},
     "my-local-llm": {"input": 0, "output": 0, "provider": "vllm"},
     "my-claude": {
         "input": 3, "output": 15, "cache_read": 0.3, "cache_write": 3.75,
         "cache_write_1h": 6, "reasoning": 15, "input_audio": 3, "output_audio": 15,
         "cache_audio_read": 0.3, "web_searches_per_1k": 10, "requests_per_1k": 0,
         "long_context": [{"above": 200_000, "input": 6, "output": 22.5}],
         "batch": {"input": 1.5, "output": 7.5},
         "service_tiers": {"flex": {"input": 1.5}, "priority": {"input": 6, "output": 30}},
         "changes": [{"from": "2027-01-01", "input": 2.5}]}}

Everything the genai-prices catalogue can price for a costwarden :class:`Usage` has a key:

* ``long_context``: tiers; once a request's input tokens exceed ``above``, the WHOLE request
  pays the tier's rates (for the rates the tier names; the others stay).
* ``batch`` and ``service_tiers``: partial tables overriding the rates they name (a rate given
  there replaces the standard one, long-context tiers included: give the variant its own
  ``long_context`` if it has them; a variant's tier for a rate it does not restate keeps the
  standard rate below the threshold). ``batch=True`` or a tier without its table is an error.
* ``changes``: rates that change on a date (UTC), each a partial table applied from ``from``
  on, on top of the earlier ones; batch and tier tables apply on top of the dated rates.

In a file the table may sit under a ``[models]`` table or at the top level. TOML keys with
dots need quotes: ``[models."gpt-4.1"]``.

Why strict: a typo such as ``ouput`` or a negative rate would silently misprice every call,
so every entry is checked and the first problem is reported naming the model and the key. So is
an entry pricing ``cache_read`` and ``input_audio`` but not ``cache_audio_read``: cached audio
would have no rate of its own (see :func:`costwarden.pricing.rates.unpriced_joins`).
Errors are :class:`InvalidInputError` for a table passed in code and
:class:`ConfigurationError` for a file (with its path).
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final

from costwarden.errors import ConfigurationError, InvalidInputError
from costwarden.pricing.rates import PriceValue, unpriced_joins
from costwarden.pricing.tiers import STANDARD_NAMES

PRICE_KEY_OF: Final = {
    "input": "input_mtok",
    "output": "output_mtok",
    "cache_read": "cache_read_mtok",
    "cache_write": "cache_write_mtok",
    "cache_write_1h": "cache_write_1h_mtok",
    "reasoning": "output_reasoning_mtok",
    "input_audio": "input_audio_mtok",
    "cache_audio_read": "cache_audio_read_mtok",
    "output_audio": "output_audio_mtok",
    "web_searches_per_1k": "web_searches_kcount",
    "requests_per_1k": "requests_kcount",
}
"""Custom rate key -> genai-prices price key (same unit: USD per 1M tokens, or per 1,000)."""
RATE_KEYS: Final = tuple(PRICE_KEY_OF)
TABLE_KEYS: Final = frozenset({*RATE_KEYS, "long_context"})
ALLOWED_KEYS: Final = frozenset({*TABLE_KEYS, "provider", "batch", "service_tiers", "changes"})
_DATE_SUFFIX: Final = re.compile(r"-(?:20\d{6}|20\d{2}-\d{2}-\d{2})$")

CustomTable = Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class Tier:
    """One long-context tier of one rate (genai-prices' ``Tier`` shape)."""

    start: int
    price: Decimal


@dataclass(frozen=True, slots=True)
class TieredRate:
    """A rate with long-context tiers (genai-prices' ``TieredPrices`` shape)."""

    base: Decimal
    tiers: tuple[Tier, ...]


@dataclass(frozen=True, slots=True)
class PriceTable:
    """Validated rates (genai-prices price keys) and long-context tiers ``(above, rates)``."""

    rates: Mapping[str, Decimal]
    long_context: tuple[tuple[int, Mapping[str, Decimal]], ...] = ()

    def price_keys(self, under: Mapping[str, PriceValue] | None = None) -> dict[str, PriceValue]:
        """The table in genai-prices' price-key form: flat rates, and tiered ones where long-context
        rates apply above a threshold.

        A partial table (batch, a service tier, a dated change) may tier a rate it does not
        restate; that rate keeps the value of the table it overlays, ``under``, below the
        threshold (its base, if that value is tiered itself).
        """
        keys: dict[str, PriceValue] = dict(self.rates)
        for key in {k for _, rates in self.long_context for k in rates}:
            tiers = tuple(
                Tier(above, rates[key]) for above, rates in self.long_context if key in rates
            )
            keys[key] = TieredRate(_base_of(key, self.rates, under), tiers)
        return keys


def _base_of(
    key: str, rates: Mapping[str, Decimal], under: Mapping[str, PriceValue] | None
) -> Decimal:
    """The short-context rate of ``key``: the table's own, else that of the table beneath."""
    if key in rates:
        return rates[key]
    # parse_entry accepts a tier only for a rate the entry's standard table or this one prices
    assert under is not None and key in under, f"no rate beneath the long-context tier of {key}"
    below = under[key]
    return below if isinstance(below, Decimal) else below.base


@dataclass(frozen=True, slots=True)
class CustomPrice:
    """One validated custom entry: the standard table, plus batch, service-tier and dated
    tables (all partial overrides of the standard one)."""

    model: str
    standard: PriceTable
    provider: str | None = None
    batch: PriceTable | None = None
    service_tiers: Mapping[str, PriceTable] = field(default_factory=dict)
    changes: tuple[tuple[date, PriceTable], ...] = ()

    @staticmethod
    def simple(
        model: str,
        input: Decimal,
        output: Decimal,
        cache_read: Decimal | None = None,
        cache_write: Decimal | None = None,
    ) -> CustomPrice:
        """The brief's four-rate entry."""
        rates = {"input_mtok": input, "output_mtok": output}
        if cache_read is not None:
            rates["cache_read_mtok"] = cache_read
        if cache_write is not None:
            rates["cache_write_mtok"] = cache_write
        return CustomPrice(model, PriceTable(rates))

    def price_keys(self) -> dict[str, PriceValue]:
        """genai-prices style price keys of the standard table (as first resolved)."""
        return self.standard.price_keys()


def _fail(message: str, origin: str | None) -> Exception:
    if origin is None:
        return InvalidInputError(message)
    return ConfigurationError(f"{origin}: {message}")


def _rate(where: str, value: object, origin: str | None) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise _fail(
            f"{where} must be a number of USD (per 1M tokens, or per 1,000 for *_per_1k), "
            f"got {type(value).__name__} {value!r}",
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


def _rates(where: str, table: Mapping[Any, Any], origin: str | None) -> dict[str, Decimal]:
    return {
        PRICE_KEY_OF[key]: _rate(f"{where}, key {key!r}", table[key], origin)
        for key in RATE_KEYS
        if key in table and table[key] is not None
    }


def _check_keys(where: str, table: object, allowed: frozenset[str], origin: str | None) -> None:
    if not isinstance(table, Mapping):
        raise _fail(f"{where} must be a table of rates, got {table!r}", origin)
    unknown = sorted(str(k) for k in table if k not in allowed)
    if unknown:
        raise _fail(
            f"{where} has unknown key(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(sorted(allowed))}",
            origin,
        )


def _long_context(
    where: str, raw: object, base: Mapping[str, Decimal], origin: str | None
) -> tuple[tuple[int, Mapping[str, Decimal]], ...]:
    if raw is None:
        return ()
    if isinstance(raw, Mapping) or not isinstance(raw, (list, tuple)):
        raise _fail(
            f"{where}, key 'long_context' must be a list of tiers like "
            "[{'above': 200000, 'input': 6, 'output': 22.5}], got " + repr(raw),
            origin,
        )
    tiers: list[tuple[int, Mapping[str, Decimal]]] = []
    for index, tier in enumerate(raw):
        here = f"{where}, long_context[{index}]"
        _check_keys(here, tier, frozenset({"above", *RATE_KEYS}), origin)
        assert isinstance(tier, Mapping)
        above = tier.get("above")
        if isinstance(above, bool) or not isinstance(above, int) or above < 0:
            raise _fail(
                f"{here} needs 'above': the input tokens above which the whole request pays "
                f"this tier (a non-negative integer), got {above!r}",
                origin,
            )
        if tiers and above <= tiers[-1][0]:
            raise _fail(f"{here}: tiers must be in ascending order of 'above'", origin)
        rates = _rates(here, tier, origin)
        if not rates:
            raise _fail(f"{here} names no rate", origin)
        missing = sorted(k for k in rates if k not in base)
        if missing:
            names = [k for k, v in PRICE_KEY_OF.items() if v in missing]
            raise _fail(
                f"{here} tiers {', '.join(names)}, which the table itself does not price",
                origin,
            )
        tiers.append((above, rates))
    return tuple(tiers)


def _table(
    where: str,
    raw: object,
    origin: str | None,
    base: Mapping[str, Decimal] | None = None,
) -> PriceTable:
    """A (partial, when ``base`` is given) table of rates and long-context tiers."""
    _check_keys(where, raw, TABLE_KEYS, origin)
    assert isinstance(raw, Mapping)
    rates = _rates(where, raw, origin)
    if base is not None and not rates and not raw.get("long_context"):
        raise _fail(f"{where} names no rate", origin)
    known = {**(base or {}), **rates}
    return PriceTable(rates, _long_context(where, raw.get("long_context"), known, origin))


def _change_date(where: str, value: object, origin: str | None) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise _fail(f"{where} needs 'from': a date like 2027-01-01, got {value!r}", origin)


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
    where = f"custom price for model {model!r}"
    _check_keys(where, entry, ALLOWED_KEYS, origin)
    for required in ("input", "output"):
        if required not in entry:
            raise _fail(
                f"{where} is missing key {required!r} (USD per 1M "
                "tokens; use 0 for a free direction, e.g. output of an embedding model)",
                origin,
            )
    provider = entry.get("provider")
    if provider is not None and (not isinstance(provider, str) or not provider.strip()):
        raise _fail(f"{where}, key 'provider' must be a non-empty string, got {provider!r}", origin)
    standard = _table(where, {k: v for k, v in entry.items() if k in TABLE_KEYS}, origin)
    base = standard.rates
    batch = entry.get("batch")
    tiers_raw = entry.get("service_tiers") or {}
    if not isinstance(tiers_raw, Mapping):
        raise _fail(
            f"{where}, key 'service_tiers' must be a table like "
            f"{{'flex': {{'input': 1.25, 'output': 5}}}}, got {tiers_raw!r}",
            origin,
        )
    service_tiers: dict[str, PriceTable] = {}
    for name, table in tiers_raw.items():
        tier = str(name).strip().lower()
        if not isinstance(name, str) or not tier or tier in STANDARD_NAMES or tier == "batch":
            raise _fail(
                f"{where}, service tier {name!r}: name a non-standard tier such as 'flex' or "
                "'priority' (the standard price is the entry itself; batch has its own key)",
                origin,
            )
        service_tiers[tier] = _table(f"{where}, service tier {tier!r}", table, origin, base)
    changes_raw = entry.get("changes") or ()
    if isinstance(changes_raw, Mapping) or not isinstance(changes_raw, (list, tuple)):
        raise _fail(
            f"{where}, key 'changes' must be a list like "
            f"[{{'from': '2027-01-01', 'input': 2.0}}], got {changes_raw!r}",
            origin,
        )
    changes: list[tuple[date, PriceTable]] = []
    for index, change in enumerate(changes_raw):
        here = f"{where}, changes[{index}]"
        if not isinstance(change, Mapping):
            raise _fail(f"{here} must be a table, got {change!r}", origin)
        when = _change_date(here, change.get("from"), origin)
        if changes and when <= changes[-1][0]:
            raise _fail(f"{here}: changes must be in ascending order of 'from'", origin)
        rest = {k: v for k, v in change.items() if k != "from"}
        changes.append((when, _table(here, rest, origin, base)))
    price = CustomPrice(
        model=model,
        standard=standard,
        provider=provider.strip().lower() if isinstance(provider, str) else None,
        batch=None if batch is None else _table(f"{where}, batch", batch, origin, base),
        service_tiers=service_tiers,
        changes=tuple(changes),
    )
    _check_joins(where, price, origin)
    return price


def _check_joins(where: str, price: CustomPrice, origin: str | None) -> None:
    """Refuse an entry that, in any of its variants, prices two overlapping token kinds but not
    their overlap (``cache_read`` and ``input_audio`` without ``cache_audio_read``): cached audio
    would have no rate of its own (see :func:`costwarden.pricing.rates.unpriced_joins`)."""
    name_of = {key: name for name, key in PRICE_KEY_OF.items()}
    overlays: list[tuple[str, set[str]]] = [("", set())]
    if price.batch is not None:
        overlays.append((" with batch", set(price.batch.rates)))
    for tier, table in price.service_tiers.items():
        overlays.append((f" at service tier {tier!r}", set(table.rates)))
        if price.batch is not None:
            overlays.append((f" at batch and {tier!r}", {*table.rates, *price.batch.rates}))
    keys, since = set(price.standard.rates), ""
    for period in range(len(price.changes) + 1):
        if period:
            when, change = price.changes[period - 1]
            keys, since = keys | set(change.rates), f" from {when.isoformat()}"
        for variant, extra in overlays:
            for a, b, join in unpriced_joins(keys | extra):
                raise _fail(
                    f"{where}{variant}{since} prices {name_of[a]!r} and {name_of[b]!r} but not "
                    f"{name_of[join]!r}, the tokens that are both: give {name_of[join]!r} a "
                    "rate (genai-prices refuses such a price too; without one they would pay "
                    "the two rates less their parent's, possibly below zero)",
                    origin,
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
