"""What every ledger can store, checked once at the public edge, the same for all backends.

Why here and not in each ledger: a value a backend cannot store must be refused *before* a
call is admitted, or the provider is paid and its record is lost (PostgreSQL refuses a btree
key over ~2.7 kB and any integer beyond ``bigint``; SQLite overflows beyond int64; both refuse
strings that do not encode to UTF-8; the in-memory ledger would take anything). So the manager
and :class:`~costwarden.records.UsageRecord` call these checks, and the ledgers may rely on
them (see :class:`~costwarden.ledger.base.Ledger`).

- Names (user, team, key, tag, model, endpoint, request id, provider, status): strings of at
  most :data:`MAX_NAME_LENGTH` characters with no lone surrogate. 512 characters leave room
  under PostgreSQL's btree limit even at 4 UTF-8 bytes each, with the scope prefix and the
  other key columns.
- Integers (token counts, nano-USD): at most :data:`MAX_INT64`, what ``bigint`` and SQLite's
  ``INTEGER`` hold.
"""

from __future__ import annotations

from typing import Final

from costwarden.errors import InvalidInputError

MAX_NAME_LENGTH: Final = 512
"""Longest user, team, key, tag, model, endpoint, request id... a ledger stores."""

MAX_INT64: Final = 2**63 - 1
"""Largest token count or nano-USD amount a ledger stores (``bigint``, SQLite ``INTEGER``)."""


def check_name(value: str, field: str) -> str:
    """Refuse a name no ledger can store: longer than MAX_NAME_LENGTH, or not encodable as
    UTF-8 (a lone surrogate, as ``os.fsdecode`` or a bad JSON escape can produce).

    Only the bounds: whether ``value`` is a string at all, or may be empty, is the caller's
    rule. Returns ``value`` unchanged.
    """
    if len(value) > MAX_NAME_LENGTH:
        raise InvalidInputError(
            f"{field} is {len(value)} characters long; names are at most {MAX_NAME_LENGTH} "
            f"characters (starts {value[:40]!r}); use a shorter id, or a hash of it"
        )
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidInputError(
                f"{field} {value[:80]!r} is not valid Unicode text ({exc.reason} at "
                f"position {exc.start}); decode it properly before passing it"
            ) from None
    return value


def check_names(values: tuple[object, ...], fields: tuple[str, ...]) -> None:
    """:func:`check_name` for each value that is a string (None and non-strings are left to
    the caller's type checks).

    Every record goes through here, so the usual case (short ASCII names) is one join: if all
    the names together are ASCII and within the bound, each one is.
    """
    try:
        joined = "".join(filter(None, values))  # type: ignore[arg-type]
    except TypeError:  # a non-string among them: one by one below
        pass
    else:
        if len(joined) <= MAX_NAME_LENGTH and joined.isascii():
            return
    for value, field in zip(values, fields, strict=True):
        if isinstance(value, str):
            check_name(value, field)


def check_int64(value: int, field: str) -> int:
    """Refuse an integer beyond int64 (``bigint``), naming ``field``; returns ``value``."""
    if not -MAX_INT64 - 1 <= value <= MAX_INT64:
        raise InvalidInputError(
            f"{field} = {value} does not fit a 64-bit integer (at most {MAX_INT64}); "
            "no ledger can store it"
        )
    return value
