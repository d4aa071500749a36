"""The model catalogue: what each model can do, and how well, per task type.

Why a data file and a derivation rule rather than hand-written scores: a score is only as
credible as the benchmark figure behind it. ``data/models.toml`` keeps the public figures
(each with its source URL and dates) and the rule that turns them into a 0-100 score per task
(benchmark anchors and task weights); this module applies the rule. Nothing here is guessed at
run time: a task with no figure of its own is *interpolated* from the model's other figures and
marked so (``ModelInfo.interpolated``), and callers can see exactly which figures were used.

Users add or override entries with a mapping or a TOML/JSON file of the same shape; an entry
may give ``quality = {task = score}`` directly instead of figures.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Final

from costwarden.errors import ConfigurationError, InvalidInputError

TASKS: Final[tuple[str, ...]] = (
    "summarization",
    "classification",
    "extraction",
    "translation",
    "chat",
    "code",
    "reasoning",
    "creative_writing",
    "long_context",
)
"""Task types, in the order of the issue; ``reasoning`` covers reasoning and math."""

CAPABILITIES: Final[frozenset[str]] = frozenset({"vision", "tools", "json_mode", "reasoning"})

_TASK_ALIASES: Final[dict[str, str]] = {
    "summarize": "summarization",
    "summary": "summarization",
    "classify": "classification",
    "extract": "extraction",
    "translate": "translation",
    "conversation": "chat",
    "coding": "code",
    "codegen": "code",
    "math": "reasoning",
    "reasoning/math": "reasoning",
    "reasoning_math": "reasoning",
    "creative": "creative_writing",
    "writing": "creative_writing",
    "creative writing": "creative_writing",
    "long-context": "long_context",
    "long context": "long_context",
    "longcontext": "long_context",
}

# Context window contribution to long_context: log-scaled from 8k (0) to 1M tokens (100).
_CTX_FLOOR: Final = 8192
_CTX_CEILING: Final = 1_048_576

_DATE_SUFFIX = re.compile(r"(?:[-@](?:\d{4}-\d{2}-\d{2}|\d{8}|\d{4})|-latest|-preview)$")


def normalize_task(task: object) -> str:
    """Map a task name (or a common synonym) to one of :data:`TASKS`; InvalidInputError if none."""
    if not isinstance(task, str) or not task.strip():
        raise InvalidInputError(
            f"task_type must be a non-empty string, one of: {', '.join(TASKS)}; got {task!r}"
        )
    key = task.strip().lower()
    if key in TASKS:
        return key
    key2 = key.replace("-", "_").replace(" ", "_")
    if key2 in TASKS:
        return key2
    found = _TASK_ALIASES.get(key) or _TASK_ALIASES.get(key2)
    if found is None:
        raise InvalidInputError(
            f"unknown task_type {task!r}; valid task types: {', '.join(TASKS)} "
            "(synonyms such as 'math', 'coding', 'summarize' are accepted too)"
        )
    return found


def task_or_none(name: str | None) -> str | None:
    """Like :func:`normalize_task` but returns None for names that are not tasks (endpoints)."""
    if not name:
        return None
    try:
        return normalize_task(name.strip("/").rsplit("/", 1)[-1])
    except InvalidInputError:
        return None


@dataclass(frozen=True, slots=True)
class Source:
    """Where a figure comes from and when it was published/transcribed."""

    id: str
    url: str
    published: str
    retrieved: str
    checked: bool


@dataclass(frozen=True, slots=True)
class Figure:
    """One public benchmark result (percent) for one model."""

    benchmark: str
    value: float
    source: Source


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """One catalogue entry: capabilities, context window and 0-100 quality per task."""

    id: str
    provider: str
    context_window: int | None
    max_output_tokens: int | None
    capabilities: frozenset[str]
    quality: Mapping[str, int]
    interpolated: frozenset[str] = frozenset()
    aliases: tuple[str, ...] = ()
    price_ref: tuple[str | None, str] | None = None
    figures: tuple[Figure, ...] = ()
    released: str | None = None

    def score(self, task: str) -> int:
        """Quality for ``task`` (any accepted spelling)."""
        return self.quality[normalize_task(task)]


@dataclass(frozen=True, slots=True)
class _Rules:
    anchors: Mapping[str, tuple[float, float]]
    weights: Mapping[str, Mapping[str, float]]
    levels: Mapping[str, int]
    best_tolerance: int
    sources: Mapping[str, Source]
    interpolation_penalty: int = 10


def _norm_name(name: str) -> str:
    return name.strip().lower()


def _strip_prefix(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def _strip_dates(name: str) -> str:
    prev = None
    while prev != name:
        prev = name
        name = _DATE_SUFFIX.sub("", name)
    return name


@dataclass(slots=True)
class ModelCatalogue:
    """Model entries plus the level thresholds; looks models up by id, alias or dated id."""

    _models: dict[str, ModelInfo]
    _rules: _Rules
    _index: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        index: dict[str, str] = {}
        for info in self._models.values():
            for name in (info.id, *info.aliases):
                index.setdefault(_norm_name(name), info.id)
        for info in self._models.values():  # ids win over other entries' aliases
            index[_norm_name(info.id)] = info.id
        self._index = index

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def default(cls) -> ModelCatalogue:
        """The catalogue shipped in the package (parsed once per process)."""
        return _default_catalogue()

    def with_entries(self, entries: Mapping[str, Any] | str | Path) -> ModelCatalogue:
        """A new catalogue with ``entries`` added or merged over existing ones.

        ``entries`` maps model id -> fields (``provider``, ``context_window``,
        ``capabilities``, ``figures``, ``quality``, ``aliases``, ...), or is a TOML/JSON file
        holding such a mapping (top level or under ``[models]``). Fields given for an existing
        id replace that field only; explicit ``quality`` scores override derived ones.
        """
        raw = _read_entries(entries)
        models = dict(self._models)
        for model_id, fields in raw.items():
            if not isinstance(model_id, str) or not model_id.strip():
                raise ConfigurationError(f"model ids must be non-empty strings, got {model_id!r}")
            if not isinstance(fields, Mapping):
                raise ConfigurationError(
                    f"catalogue entry for {model_id!r} must be a table of fields, got {fields!r}"
                )
            existing = self.get(model_id)
            base = _info_to_raw(existing) if existing is not None else {}
            merged = {**base, **fields}
            if "quality" in fields and existing is not None:
                merged["quality"] = {**existing.quality, **dict(fields["quality"])}
            model_key = existing.id if existing is not None else model_id
            models[model_key] = _build_model(model_key, merged, self._rules, user=True)
        return ModelCatalogue(models, self._rules)

    # -- lookup --------------------------------------------------------------------------------
    def get(self, model: str) -> ModelInfo | None:
        """Entry for ``model``: exact id/alias, then without provider prefix and date suffix."""
        if not isinstance(model, str):
            return None
        key = _norm_name(model)
        for candidate in (
            key,
            _strip_prefix(key),
            _strip_dates(key),
            _strip_dates(_strip_prefix(key)),
        ):
            found = self._index.get(candidate)
            if found is not None:
                return self._models[found]
        return None

    def __getitem__(self, model: str) -> ModelInfo:
        info = self.get(model)
        if info is None:
            raise InvalidInputError(
                f"model {model!r} is not in the model catalogue; add it with "
                "CostOptimizer(..., models={name: {'context_window': ..., 'quality': {...}}})"
            )
        return info

    def __contains__(self, model: object) -> bool:
        return isinstance(model, str) and self.get(model) is not None

    def __iter__(self) -> Iterator[ModelInfo]:
        return iter(self._models.values())

    def __len__(self) -> int:
        return len(self._models)

    # -- levels --------------------------------------------------------------------------------
    @property
    def levels(self) -> Mapping[str, int]:
        """The named quality levels ('high', 'medium', ...) and the least score of each."""
        return dict(self._rules.levels)

    @property
    def best_tolerance(self) -> int:
        """How many quality points below the best model a model may score and still count as 'best'
        for a task.
        """
        return self._rules.best_tolerance

    @property
    def sources(self) -> Mapping[str, Source]:
        """Where each model's quality scores came from (benchmark and date), by model name."""
        return dict(self._rules.sources)

    def threshold(self, quality: object) -> int | None:
        """Minimum score for a quality level; None means ``"best"`` (decided among candidates)."""
        if isinstance(quality, bool):
            raise InvalidInputError(f"quality must be a level name or a number, got {quality!r}")
        if isinstance(quality, (int, float)):
            if not math.isfinite(quality) or not 0 <= quality <= 100:
                raise InvalidInputError(
                    f"quality as a number must be within 0..100, got {quality!r}"
                )
            return math.ceil(quality)
        if isinstance(quality, str):
            level = quality.strip().lower()
            if level == "best":
                return None
            if level in self._rules.levels:
                return self._rules.levels[level]
        names = ", ".join([*self._rules.levels, "best"])
        raise InvalidInputError(
            f"quality must be one of {names} or a number 0..100, got {quality!r}"
        )


# ---------------------------------------------------------------------------------------------
# loading


def _read_entries(entries: Mapping[str, Any] | str | Path) -> Mapping[str, Any]:
    if isinstance(entries, Mapping):
        data: Mapping[str, Any] = entries
    elif isinstance(entries, (str, Path)):
        path = Path(entries)
        try:
            text = path.read_bytes()
        except OSError as exc:
            raise ConfigurationError(f"cannot read model catalogue file {path}: {exc}") from None
        try:
            if path.suffix.lower() == ".json":
                data = json.loads(text)
            else:
                data = tomllib.loads(text.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ConfigurationError(f"model catalogue file {path} is not valid: {exc}") from None
    else:
        raise ConfigurationError(
            f"models must be a mapping or a path to a TOML/JSON file, got {type(entries).__name__}"
        )
    if isinstance(data, Mapping) and isinstance(data.get("models"), Mapping):
        data = data["models"]
    if not isinstance(data, Mapping):
        raise ConfigurationError("model catalogue entries must be a mapping of model id -> fields")
    return data


def _parse_rules(doc: Mapping[str, Any]) -> _Rules:
    anchors = {
        name: (float(spec["floor"]), float(spec["ceiling"]))
        for name, spec in doc["benchmarks"].items()
    }
    weights = {task: dict(spec) for task, spec in doc["tasks"].items()}
    missing = set(TASKS) - set(weights)
    if missing:
        raise ConfigurationError(f"catalogue [tasks] lacks {sorted(missing)}")
    levels_raw = dict(doc["levels"])
    tolerance = int(levels_raw.pop("best_tolerance", 2))
    levels = {name: int(value) for name, value in levels_raw.items()}
    sources = {
        sid: Source(
            id=sid,
            url=str(spec["url"]),
            published=str(spec["published"]),
            retrieved=str(spec["retrieved"]),
            checked=bool(spec.get("checked", False)),
        )
        for sid, spec in doc["sources"].items()
    }
    penalty = int(doc.get("derivation", {}).get("interpolation_penalty", 10))
    return _Rules(anchors, weights, levels, tolerance, sources, penalty)


def _normalised(benchmark: str, value: float, rules: _Rules) -> float:
    floor, ceiling = rules.anchors[benchmark]
    return min(100.0, max(0.0, (value - floor) / (ceiling - floor) * 100.0))


def _context_score(window: int | None) -> float:
    if not window or window <= _CTX_FLOOR:
        return 0.0
    span = math.log2(_CTX_CEILING / _CTX_FLOOR)
    return min(100.0, math.log2(window / _CTX_FLOOR) / span * 100.0)


def derive_quality(
    figures: tuple[Figure, ...], context_window: int | None, rules: _Rules
) -> tuple[dict[str, int], frozenset[str]]:
    """Apply the catalogue's rule: per-benchmark mean -> anchors -> weighted mean per task.

    Returns the scores and the set of tasks that had no figure of their own (interpolated from
    the model's overall mean, less the interpolation penalty). long_context is half
    context-window score, half MRCR (or that interpolated mean when the model has no MRCR).
    """
    by_bench: dict[str, list[float]] = {}
    for fig in figures:
        by_bench.setdefault(fig.benchmark, []).append(fig.value)
    norm = {b: _normalised(b, sum(v) / len(v), rules) for b, v in by_bench.items()}
    if not norm:
        raise ConfigurationError("a model needs at least one benchmark figure or explicit quality")
    general = sum(norm.values()) / len(norm)
    scores: dict[str, int] = {}
    interpolated: set[str] = set()
    for task in TASKS:
        weights = rules.weights[task]
        total = sum(w for b, w in weights.items() if b in norm)
        if total > 0:
            value = sum(norm[b] * w for b, w in weights.items() if b in norm) / total
        else:
            value = max(0.0, general - rules.interpolation_penalty)
            interpolated.add(task)
        if task == "long_context":
            value = 0.5 * _context_score(context_window) + 0.5 * value
        scores[task] = round(value)
    return scores, frozenset(interpolated)


def _figures(model_id: str, raw: object, rules: _Rules) -> tuple[Figure, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, (list, tuple)):
        raise ConfigurationError(
            f"{model_id}: figures must be a list of [benchmark, value, source]"
        )
    out: list[Figure] = []
    for item in raw:
        if isinstance(item, Figure):
            out.append(item)
            continue
        if not isinstance(item, (list, tuple)) or len(item) != 3:
            raise ConfigurationError(
                f"{model_id}: figure {item!r} must be [benchmark, value, source]"
            )
        bench, value, sid = item
        if bench not in rules.anchors:
            raise ConfigurationError(
                f"{model_id}: unknown benchmark {bench!r}; "
                f"known: {', '.join(sorted(rules.anchors))}"
            )
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 100:
            raise ConfigurationError(
                f"{model_id}: figure {bench} must be a percentage, got {value!r}"
            )
        if isinstance(sid, Source):
            source = sid
        elif sid in rules.sources:
            source = rules.sources[sid]
        elif isinstance(sid, str) and sid.startswith(("http://", "https://")):
            source = Source(
                id=sid, url=sid, published="unknown", retrieved="unknown", checked=False
            )
        else:
            raise ConfigurationError(f"{model_id}: figure {bench} cites unknown source {sid!r}")
        out.append(Figure(str(bench), float(value), source))
    return tuple(out)


def _opt_int(model_id: str, name: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigurationError(f"{model_id}: {name} must be a positive integer, got {value!r}")
    return value


def _build_model(model_id: str, raw: Mapping[str, Any], rules: _Rules, *, user: bool) -> ModelInfo:
    caps = frozenset(str(c) for c in raw.get("capabilities", ()))
    unknown_caps = caps - CAPABILITIES
    if unknown_caps:
        raise ConfigurationError(
            f"{model_id}: unknown capabilities {sorted(unknown_caps)}; "
            f"known: {sorted(CAPABILITIES)}"
        )
    window = _opt_int(model_id, "context_window", raw.get("context_window"))
    figures = _figures(model_id, raw.get("figures"), rules)
    explicit = raw.get("quality") or {}
    if not isinstance(explicit, Mapping):
        raise ConfigurationError(f"{model_id}: quality must be a table of task -> score")
    quality: dict[str, int] = {}
    interpolated: frozenset[str] = frozenset()
    if figures:
        quality, interpolated = derive_quality(figures, window, rules)
    for task_name, score in explicit.items():
        try:
            task = normalize_task(task_name)
        except InvalidInputError as exc:
            raise ConfigurationError(f"{model_id}: {exc}") from None
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not 0 <= score <= 100:
            raise ConfigurationError(
                f"{model_id}: quality.{task} must be within 0..100, got {score!r}"
            )
        quality[task] = round(score)
        interpolated = interpolated - {task}
    missing = [t for t in TASKS if t not in quality]
    if missing:
        if quality and user:
            fill = round(sum(quality.values()) / len(quality))
            quality.update(dict.fromkeys(missing, fill))
            interpolated = interpolated | frozenset(missing)
        else:
            raise ConfigurationError(
                f"{model_id}: give benchmark figures or quality scores (tasks: {', '.join(TASKS)})"
            )
    ref = raw.get("price_ref")
    price_ref: tuple[str | None, str] | None = None
    if isinstance(ref, tuple):
        price_ref = ref
    elif isinstance(ref, str) and ref:
        provider, sep, name = ref.partition(":")
        price_ref = (provider, name) if sep else (None, ref)
    aliases = raw.get("aliases", ())
    if isinstance(aliases, str) or not all(isinstance(a, str) for a in aliases):
        raise ConfigurationError(f"{model_id}: aliases must be a list of strings")
    return ModelInfo(
        id=model_id,
        provider=str(raw.get("provider", "unknown")),
        context_window=window,
        max_output_tokens=_opt_int(model_id, "max_output_tokens", raw.get("max_output_tokens")),
        capabilities=caps,
        quality=dict(quality),
        interpolated=interpolated,
        aliases=tuple(aliases),
        price_ref=price_ref,
        figures=figures,
        released=None if raw.get("released") is None else str(raw["released"]),
    )


def _info_to_raw(info: ModelInfo) -> dict[str, Any]:
    return {
        "provider": info.provider,
        "context_window": info.context_window,
        "max_output_tokens": info.max_output_tokens,
        "capabilities": sorted(info.capabilities),
        "figures": list(info.figures),
        "aliases": list(info.aliases),
        "price_ref": info.price_ref,
        "released": info.released,
        "quality": {t: info.quality[t] for t in TASKS if t not in info.interpolated}
        if not info.figures
        else {},
    }


@cache
def _default_catalogue() -> ModelCatalogue:
    text = resources.files("costwarden.optimizer").joinpath("data/models.toml").read_bytes()
    doc = tomllib.loads(text.decode("utf-8"))
    rules = _parse_rules(doc)
    models = {
        model_id: _build_model(model_id, raw, rules, user=False)
        for model_id, raw in doc["models"].items()
    }
    return ModelCatalogue(models, rules)
