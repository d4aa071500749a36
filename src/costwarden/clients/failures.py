"""How a failed provider call is named on its record, and which error its caller sees."""

from __future__ import annotations

import json
from typing import NoReturn

from costwarden.errors import ProviderResponseError


def failure_status(error: BaseException) -> str:
    """A short status for a failed call's record: ``error:429``, ``error:timeout``..."""
    code = getattr(error, "status_code", None)
    if isinstance(code, int):
        return f"error:{code}"
    name = type(error).__name__
    if "Timeout" in name:
        return "error:timeout"
    if "Connection" in name:
        return "error:connection"
    if isinstance(error, (json.JSONDecodeError, ProviderResponseError)) or "Validation" in name:
        return "error:bad_response"
    return f"error:{name}"


def readable_error(error: BaseException) -> BaseException:
    """The error to give the caller: the provider's own, or a typed one for garbage JSON.

    The SDKs let a ``json.JSONDecodeError`` escape on a malformed body; a caller cannot be
    expected to catch that, so it becomes :class:`ProviderResponseError` (chained).
    """
    if isinstance(error, json.JSONDecodeError):
        converted = ProviderResponseError(
            f"the provider answered with malformed JSON ({error.msg} at char {error.pos}); "
            "check the upstream or any proxy in between, then retry"
        )
        converted.__cause__ = error
        return converted
    return error


def raise_readable(error: BaseException) -> NoReturn:
    """Raise :func:`readable_error` of ``error``: ``error`` itself, or the typed one from it."""
    err = readable_error(error)
    if err is error:
        raise error
    raise err from error
