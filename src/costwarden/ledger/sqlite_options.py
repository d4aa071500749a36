"""The options of a SQLite ledger URL, read strictly.

``sqlite:///spend.db?timeout=5&synchronous=full`` names a file and how to use it. An option
that is misspelt or out of range must not be dropped in silence: ``?synchronus=full`` would
quietly lose the durability asked for, and ``?timeout=-5`` would make no sense at all. So an
unknown option, a repeated one or a bad value is a :class:`~costwarden.errors.ConfigurationError`
that names it, says what is accepted and, for a typo, suggests the near name.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote

from costwarden.errors import ConfigurationError
from costwarden.ledger.sqlite_holds import DEFAULT_CAPACITY

DEFAULT_TIMEOUT: Final = 10.0
MIN_HOLDS: Final = 16
MAX_HOLDS: Final = 1 << 24  # 512 MiB of board; far past any real number of live holds
SYNCHRONOUS: Final = ("off", "normal", "full", "extra")
CHECKPOINT: Final = ("background", "auto")
OPTIONS: Final = {
    "timeout": "seconds (0 or more) that a call may wait for the ledger's locks, in all",
    "synchronous": "off, normal (default) or full/extra (survives power loss)",
    "checkpoint": "background (default) or auto",
    "holds": f"entries on a new hold board, a whole number from {MIN_HOLDS} to {MAX_HOLDS}",
}


@dataclass(frozen=True, slots=True)
class SQLiteOptions:
    """The options a SQLite ledger URL's query may set: busy timeout, PRAGMA synchronous, background
    checkpoints, and the hold board's capacity.
    """

    timeout: float = DEFAULT_TIMEOUT
    synchronous: str = "NORMAL"
    background_checkpoints: bool = True
    holds: int = DEFAULT_CAPACITY


def parse_options(url: str, *, timeout: float | None = None) -> SQLiteOptions:
    """The options in ``url``'s query; ``timeout`` is the keyword default, which the URL's
    own ``timeout`` overrides."""
    raw = _query(url)
    unknown = sorted(set(raw) - set(OPTIONS))
    if unknown:
        name = unknown[0]
        near = difflib.get_close_matches(name, OPTIONS, n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        accepted = "; ".join(f"{k}: {v}" for k, v in OPTIONS.items())
        raise ConfigurationError(
            f"unknown SQLite ledger option {name!r} in {url!r}{hint}. Accepted: {accepted}"
        )
    if "timeout" in raw:
        wait = _seconds(raw["timeout"], f"timeout in {url!r}")
    elif timeout is not None:
        wait = _seconds(timeout, "timeout")
    else:
        wait = DEFAULT_TIMEOUT
    synchronous = raw.get("synchronous", "normal").lower()
    if synchronous not in SYNCHRONOUS:
        raise ConfigurationError(
            f"synchronous in {url!r} must be one of {', '.join(SYNCHRONOUS)}, "
            f"got {raw['synchronous']!r}"
        )
    checkpoint = raw.get("checkpoint", "background").lower()
    if checkpoint not in CHECKPOINT:
        raise ConfigurationError(
            f"checkpoint in {url!r} must be background or auto, got {raw['checkpoint']!r}"
        )
    holds = DEFAULT_CAPACITY
    if "holds" in raw:
        text = raw["holds"]
        if not text.isdigit() or not MIN_HOLDS <= int(text) <= MAX_HOLDS:
            raise ConfigurationError(
                f"holds in {url!r} must be a whole number from {MIN_HOLDS} to {MAX_HOLDS}, "
                f"got {text!r}"
            )
        holds = int(text)
    return SQLiteOptions(wait, synchronous.upper(), checkpoint == "background", holds)


def _query(url: str) -> dict[str, str]:
    if "?" not in url:
        return {}
    out: dict[str, str] = {}
    for part in url.split("?", 1)[1].split("&"):
        if not part:
            continue
        key, sep, value = part.partition("=")
        key = unquote(key)
        if not sep:
            raise ConfigurationError(f"SQLite ledger option {key!r} in {url!r} needs a value")
        if key in out:
            raise ConfigurationError(f"SQLite ledger option {key!r} is given twice in {url!r}")
        out[key] = unquote(value)
    return out


def _seconds(value: object, what: str) -> float:
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigurationError(f"{what} must be a number of seconds, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(seconds) or seconds < 0:
        raise ConfigurationError(f"{what} must be 0 or more seconds (finite), got {value!r}")
    return seconds


__all__ = ["OPTIONS", "SQLiteOptions", "parse_options"]
