"""What a virtual key allows beyond its budget: end users, the downgrade, its models.

These live in the key's ``metadata`` (ledger data, so every gateway worker and host reads the
same), under plain names an operator writes with ``create_key(metadata=...)`` or the admin API:

``end_users`` (bool, default false)
    whether callers may name an end user (the OpenAI ``user`` field or the
    ``x-costwarden-end-user`` header). See :func:`end_user_tag` for what that does.
``downgrade_at`` (0 < float <= 1) and ``downgrade_to`` (a model name)
    past that fraction of the key's own budget (the most-used of its periods), requests for
    any other model are answered by ``downgrade_to``, and the response says so in
    ``x-costwarden-downgraded``.

:func:`key_policy` checks them; a key whose policy is malformed is refused with a clear
message rather than served under a policy nobody wrote.
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass
from typing import Final

from costwarden.bounds import MAX_NAME_LENGTH
from costwarden.control import VirtualKey
from costwarden.errors import InvalidInputError

END_USER_TAG: Final = "end_user"
END_USER_HEADER: Final = b"x-costwarden-end-user"
MAX_END_USER: Final = 256


@dataclass(frozen=True, slots=True)
class KeyPolicy:
    """What a key's metadata asks of the gateway: per-end-user budgets, and the spent fraction at
    which to downgrade the model.
    """

    end_users: bool = False
    downgrade_at: float | None = None
    downgrade_to: str | None = None


def key_policy(key: VirtualKey) -> KeyPolicy:
    """The key's gateway policy from its metadata (InvalidInputError when malformed)."""
    meta = key.metadata
    end_users = meta.get("end_users", False)
    if not isinstance(end_users, bool):
        raise InvalidInputError(f"key metadata end_users must be true or false, got {end_users!r}")
    at = meta.get("downgrade_at")
    to = meta.get("downgrade_to")
    if (at is None) != (to is None):
        raise InvalidInputError("key metadata needs both downgrade_at and downgrade_to, or neither")
    if at is not None:
        if (
            isinstance(at, bool)
            or not isinstance(at, (int, float))
            or not math.isfinite(at)
            or not 0 < at <= 1
        ):
            raise InvalidInputError(f"downgrade_at must be a fraction in (0, 1], got {at!r}")
        if not isinstance(to, str) or not to:
            raise InvalidInputError(f"downgrade_to must be a model name, got {to!r}")
    return KeyPolicy(end_users, None if at is None else float(at), to)


def model_allowed(key: VirtualKey, model: str) -> bool:
    """Whether the key's allow-list admits ``model`` (entries may be globs; None: any)."""
    if key.models is None:
        return True
    return any(m == model or fnmatch.fnmatchcase(model, m) for m in key.models)


def end_user_tag(key: VirtualKey, end_user: str) -> str:
    """The tag scope an end user's spend counts in: ``end_user:<key_id>:<name>``.

    The rule (docs/gateway.md, "End users"): naming an end user only ever *adds* a budget.
    The key's own scopes (global, ``key:<id>``, the key's user and team) apply to every
    request whatever the caller names, so an end user cannot be used to escape them (the
    LiteLLM #11083 failure, where the ``user`` field replaced the key's user budget). The end
    user is namespaced by the key, so a caller can neither spend from nor exhaust an end-user
    budget that belongs to another key, nor a real user's budget by naming that user.
    """
    if not end_user or len(end_user) > MAX_END_USER:
        raise InvalidInputError(
            f"an end user name is 1 to {MAX_END_USER} characters, got {len(end_user)}"
        )
    tag = f"{END_USER_TAG}:{key.key_id}:{end_user}"
    assert len(tag) <= MAX_NAME_LENGTH
    return tag


__all__ = [
    "END_USER_HEADER",
    "KeyPolicy",
    "end_user_tag",
    "key_policy",
    "model_allowed",
]
