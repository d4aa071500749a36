"""Prompt fingerprints: the hashes a call's record keeps for the optimizer's advice.

A record must not hold the prompt, but the optimizer wants to see retries and duplicates (the
same whole prompt) and cacheable prefixes (the same leading system/developer messages): so a
record keeps ``prompt_hash`` and, when the prompt starts with such messages, ``prefix_hash``
and ``prefix_tokens``. A hash is the 12-byte BLAKE2b of ``json.dumps(messages,
sort_keys=True, default=str, separators=(",", ":"))`` (of the prefix's messages for
``prefix_hash``).

System prompts repeat from call to call (that is what the caching advice is about), and they
are often long, so the work on a prefix is remembered: its hash state (so it is neither
escaped nor hashed again) and its token count (so it is not tokenized again).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from costwarden.caching import BoundedCache

if TYPE_CHECKING:
    from costwarden.tokens import TokenCount

_JSON = json.JSONEncoder(sort_keys=True, default=str, separators=(",", ":"))
"""The encoding the hashes are taken of (``json.dumps`` with the arguments above)."""

_PREFIX_ROLES = ("system", "developer")
_quote = json.encoder.encode_basestring_ascii  # how that encoder writes every str (ASCII-safe)

PlainPairs = tuple[tuple[str, str], ...]
"""A prompt of plain str messages as (role, content) pairs: hashable, so it can key a memo."""


@dataclass(frozen=True, slots=True)
class Prefix:
    """A prompt's leading system/developer messages: how many, their hash, their count."""

    length: int
    hash: str
    count: TokenCount


PREFIX_STATES: Final[BoundedCache[PlainPairs, tuple[str, Any]]] = BoundedCache(
    4096, max_weight=4_000_000
)
"""A prefix's (role, content) pairs -> (its hash, the BLAKE2b state after ``[`` and its
messages' JSON), so that each call copies the state and hashes only what follows. Weighed in
characters: at most 4 M characters of prompts are kept as keys. Python caches a str's hash on
the object, so looking up the same system prompt costs next to nothing whatever its length."""

PREFIX_COUNTS: Final[BoundedCache[tuple[str, str], TokenCount]] = BoundedCache(4096)
"""``count_message_tokens(prefix, model)`` by (prefix hash, model): each system prompt is
counted once per model."""


def _message_json(message: Any) -> str:
    """``_JSON.encode(message)``: one message's JSON."""
    # Fast shape: the plain {"role", "content"} str messages that prompt_messages makes,
    # written directly (sorted keys, no spaces, the encoder's quoting), 4x the encoder's speed.
    if type(message) is dict and len(message) == 2:
        content, role = message.get("content"), message.get("role")
        if type(content) is str and type(role) is str:
            return f'{{"content":{_quote(content)},"role":{_quote(role)}}}'
    return _JSON.encode(message)


def _plain_pairs(messages: list[Any]) -> PlainPairs | None:
    """The messages as (role, content) pairs when they are plain str messages, else None."""
    pairs = []
    for m in messages:
        if type(m) is not dict or len(m) != 2:
            return None
        role, content = m.get("role"), m.get("content")
        if type(role) is not str or type(content) is not str:
            return None
        pairs.append((role, content))
    return tuple(pairs)


def _digest() -> Any:
    return hashlib.blake2b(digest_size=12)


def _prefix_state(prefix: list[Any]) -> tuple[str, Any]:
    """(hash of the prefix's JSON, BLAKE2b state after ``[`` + its items): see PREFIX_STATES."""
    key = _plain_pairs(prefix)
    if key is not None:
        hit = PREFIX_STATES.get(key)
        if hit is not None:
            return hit
    state = _digest()
    state.update(f"[{','.join(map(_message_json, prefix))}".encode())
    head = state.copy()
    head.update(b"]")
    found = (head.hexdigest(), state)
    if key is not None:
        PREFIX_STATES.put(key, found, weight=sum(len(r) + len(c) for r, c in key))
    return found


def _prefix_count(prefix: list[Any], prefix_hash: str, model: str) -> TokenCount:
    """``count_message_tokens(prefix, model)``, remembered in PREFIX_COUNTS."""
    count = PREFIX_COUNTS.get((prefix_hash, model))
    if count is None:
        from costwarden.tokens import count_message_tokens

        count = count_message_tokens(prefix, model)
        PREFIX_COUNTS.put((prefix_hash, model), count)
    return count


def prompt_fingerprint(messages: list[Any], model: str) -> tuple[str, Prefix | None]:
    """The prompt's hash, and its system prefix (length, hash, count) if it has one.

    Each message is encoded once: the JSON of a list is its items' JSON joined by ``,``
    inside ``[...]``, so the prompt's and the prefix's texts (and hashes) share the work.
    """
    k = 0
    for m in messages:
        if m.get("role") not in _PREFIX_ROLES:
            break
        k += 1
    if not k:
        whole = _digest()
        whole.update(f"[{','.join(map(_message_json, messages))}]".encode())
        return whole.hexdigest(), None
    prefix_hash, state = _prefix_state(messages[:k])
    whole = state.copy()  # the remembered state itself is never updated
    rest = messages[k:]
    whole.update(f"{',' if rest else ''}{','.join(map(_message_json, rest))}]".encode())
    count = _prefix_count(messages[:k], prefix_hash, model)
    return whole.hexdigest(), Prefix(k, prefix_hash, count)


def fingerprint_metadata(
    output_bound: int, prompt_hash: str, prefix: Prefix | None
) -> dict[str, Any]:
    """The record metadata for a fingerprint and the output bound sent (see call_metadata)."""
    meta: dict[str, Any] = {"max_tokens": output_bound, "prompt_hash": prompt_hash}
    if prefix is not None:
        meta["prefix_hash"] = prefix.hash
        meta["prefix_tokens"] = prefix.count.tokens
    return meta


def call_metadata(messages: list[Any], model: str, output_bound: int) -> dict[str, Any]:
    """What the optimizer reads back from a call's record: ``max_tokens`` (the bound sent),
    ``prompt_hash`` (the whole prompt: retries and duplicates) and, when the prompt starts
    with system or developer messages, ``prefix_hash`` / ``prefix_tokens`` (a cacheable
    prefix). Hashes, never the text: records must not hold prompts (see the module doc)."""
    return fingerprint_metadata(output_bound, *prompt_fingerprint(messages, model))
