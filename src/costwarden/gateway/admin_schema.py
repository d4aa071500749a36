"""The admin API's OpenAPI 3.1 description, served at ``/openapi.json`` inside the app.

Written by hand, beside the routes (``gateway/admin.py``), and held to them by the tests:
schemathesis generates requests from this document against a live server and checks that no
answer is a 5xx and that every answer is one the document declares. Paths are relative to
where the app is mounted (``/admin`` in the gateway), which ``servers`` says.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any, Final

from costwarden.budget import SCOPE_KINDS

VERSION: Final = "1"

_NULLABLE_USD: Final = {
    "type": ["number", "string", "null"],
    "description": "USD (a number or an exact decimal string); null: no limit",
}

_BUDGET: Final = {
    "type": "object",
    "additionalProperties": False,
    "description": (
        "A whole budget: a field left out means no limit (not the library's default). "
        "At least one limit must be set."
    ),
    "properties": {
        "daily_limit": _NULLABLE_USD,
        "weekly_limit": _NULLABLE_USD,
        "monthly_limit": _NULLABLE_USD,
        "per_request_limit": _NULLABLE_USD,
        "rolling_limits": {
            "type": ["object", "null"],
            "description": "window seconds (a multiple of 60) to USD",
            "additionalProperties": {"type": ["number", "string"]},
        },
        "timezone": {"type": "string", "description": "IANA zone of the periods (default UTC)"},
        "alert_threshold": {"type": "number", "description": "the WARNING fraction, (0, 1]"},
        "alert_thresholds": {"type": ["array", "null"], "items": {"type": "number"}},
    },
    "examples": [{"daily_limit": 10.0, "monthly_limit": 200.0, "timezone": "UTC"}],
}

_STORED_BUDGET: Final = {
    "type": "object",
    "required": ["scope", "budget", "version", "updated_at", "actor"],
    "properties": {
        "scope": {"type": "string"},
        "budget": {"$ref": "#/components/schemas/Budget"},
        "version": {"type": "integer"},
        "updated_at": {"type": "string", "format": "date-time"},
        "actor": {"type": "string"},
    },
}

_TIME: Final = {"type": ["string", "null"], "format": "date-time"}

_KEY: Final = {
    "type": "object",
    "description": "A virtual key, never with its secret or hashes.",
    "required": ["key_id", "scope", "prefix", "created_at"],
    "properties": {
        "key_id": {"type": "string"},
        "scope": {"type": "string"},
        "prefix": {"type": "string"},
        "user": {"type": ["string", "null"]},
        "team": {"type": ["string", "null"]},
        "budget": {"oneOf": [{"$ref": "#/components/schemas/Budget"}, {"type": "null"}]},
        "models": {"type": ["array", "null"], "items": {"type": "string"}},
        "rpm": {"type": ["integer", "null"]},
        "tpm": {"type": ["integer", "null"]},
        "expires_at": _TIME,
        "metadata": {"type": "object"},
        "created_at": {"type": "string", "format": "date-time"},
        "revoked_at": _TIME,
        "previous_prefix": {"type": ["string", "null"]},
        "grace_until": _TIME,
    },
}

_NEW_KEY: Final = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "user": {"type": ["string", "null"], "minLength": 1, "maxLength": 200},
        "team": {"type": ["string", "null"], "minLength": 1, "maxLength": 200},
        "budget": {"oneOf": [{"$ref": "#/components/schemas/Budget"}, {"type": "null"}]},
        "models": {"type": ["array", "null"], "items": {"type": "string", "minLength": 1}},
        "rpm": {"type": ["integer", "null"], "minimum": 1},
        "tpm": {"type": ["integer", "null"], "minimum": 1},
        "expires_at": {
            "type": ["string", "null"],
            "description": "ISO 8601 time in the future (naive means UTC)",
        },
        "metadata": {"type": ["object", "null"]},
    },
    "examples": [{"user": "alice", "team": "eng", "budget": {"daily_limit": 5.0}}],
}

_ERROR: Final = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["type", "message"],
            "properties": {"type": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}

_MONEY_ROW: Final = {
    "type": "object",
    "properties": {
        "group": {"type": "string"},
        "requests": {"type": "integer"},
        "input_tokens": {"type": "integer"},
        "output_tokens": {"type": "integer"},
        "cache_read_tokens": {"type": "integer"},
        "cache_write_tokens": {"type": "integer"},
        "reasoning_tokens": {"type": "integer"},
        "cost_usd": {"type": "string"},
        "cost_nanos": {"type": "integer"},
    },
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    words = {
        400: "bad input (nothing changed)",
        401: "no valid key",
        404: "no such thing",
        405: "method not allowed",
        409: "the key's state forbids it",
        413: "body too large",
        503: "the ledger is unreachable",
    }
    return {str(c): _json(_ref("Error"), words[c]) for c in (*codes, 401, 405, 413, 503)}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


_SINCE: Final = _query("since", {"type": "string"}, "start, ISO 8601 (naive: in timezone)")
_UNTIL: Final = _query("until", {"type": "string"}, "end (exclusive), ISO 8601")
_ZONE: Final = _query("timezone", {"type": "string"}, "IANA zone for naive times and days")
_LIMIT: Final = _query("limit", {"type": "integer", "minimum": 1, "maximum": 10000}, "most rows")
_SCOPE_PATH: Final = {
    "name": "scope",
    "in": "path",
    "required": True,
    "schema": {
        "type": "string",
        "pattern": (
            "^(global|default:(user|team|key|tag|model)|(user|team|key|tag|model):[^\\x00]{1,512})$"
        ),
    },
    "description": "global, user:alice, team:eng, key:<key_id>, tag:x, model:y, default:user",
}
_KEY_ID: Final = {"name": "key_id", "in": "path", "required": True, "schema": {"type": "string"}}
_MASTER: Final[list[dict[str, list[str]]]] = [{"masterKey": []}]


def _list(field: str, item: str) -> dict[str, Any]:
    """``{field: [item, ...]}``: the shape of every listing."""
    return {"type": "object", "properties": {field: {"type": "array", "items": _ref(item)}}}


def _op(summary: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"summary": summary, "security": _MASTER, "responses": responses, **extra}


@cache
def _schema() -> dict[str, Any]:
    budget_body = {"required": True, "content": {"application/json": {"schema": _ref("Budget")}}}
    rotate_body = {
        "required": False,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"grace_seconds": {"type": "number", "minimum": 0}},
                }
            }
        },
    }
    key_and_secret = {
        "type": "object",
        "required": ["key", "secret"],
        "properties": {
            "key": _ref("Key"),
            "secret": {"type": "string", "description": "shown this once, never stored"},
        },
    }
    paths: dict[str, Any] = {
        "/budgets": {
            "get": _op(
                "Every stored budget (defaults included)",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {"budgets": {"type": "array", "items": _ref("Stored")}},
                        },
                        "budgets by scope",
                    ),
                    **_errors(400),
                },
                parameters=[
                    _query(
                        "kind",
                        {"type": "string", "enum": ["all", "default", *SCOPE_KINDS]},
                        "only budgets of this scope kind (default: the kind's defaults)",
                    )
                ],
            )
        },
        "/budgets/{scope}": {
            "parameters": [_SCOPE_PATH],
            "get": _op(
                "One scope's stored budget",
                {"200": _json(_ref("Stored"), "the budget"), **_errors(400, 404)},
            ),
            "put": _op(
                "Set (replace) a scope's budget",
                {"200": _json(_ref("Stored"), "the budget as stored"), **_errors(400)},
                requestBody=budget_body,
            ),
            "delete": _op(
                "Remove a scope's budget",
                {
                    "200": _json(
                        {"type": "object", "properties": {"removed": _ref("Stored")}}, "removed"
                    ),
                    **_errors(400, 404),
                },
            ),
        },
        "/keys": {
            "get": _op(
                "Every virtual key, oldest first (never a secret)",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {"keys": {"type": "array", "items": _ref("Key")}},
                        },
                        "keys",
                    ),
                    **_errors(400),
                },
                parameters=[_query("include_revoked", {"type": "boolean"}, "default true")],
            ),
            "post": _op(
                "Create a key; its secret is in this answer only",
                {"201": _json(key_and_secret, "the key and its secret"), **_errors(400)},
                requestBody={
                    "required": False,
                    "content": {"application/json": {"schema": _ref("NewKey")}},
                },
            ),
        },
        "/keys/{key_id}": {
            "parameters": [_KEY_ID],
            "get": _op("One key", {"200": _json(_ref("Key"), "the key"), **_errors(400, 404)}),
        },
        "/keys/{key_id}/rotate": {
            "parameters": [_KEY_ID],
            "post": _op(
                "A new secret; the old one stays valid for grace_seconds (default 24 h)",
                {
                    "200": _json(key_and_secret, "the key and its new secret"),
                    **_errors(400, 404, 409),
                },
                requestBody=rotate_body,
            ),
        },
        "/keys/{key_id}/revoke": {
            "parameters": [_KEY_ID],
            "post": _op(
                "Revoke a key from now on (final, idempotent)",
                {
                    "200": _json({"type": "object", "properties": {"key": _ref("Key")}}, "revoked"),
                    **_errors(400, 404),
                },
            ),
        },
        "/spend": {
            "get": _op(
                "Spend grouped by key, user, team, model, day, tag, endpoint or provider",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "by": {"type": "string"},
                                "rows": {"type": "array", "items": _ref("SpendRow")},
                                "total": _ref("SpendRow"),
                            },
                        },
                        "exact totals from the records of [since, until)",
                    ),
                    **_errors(400),
                },
                parameters=[
                    _query(
                        "by",
                        {
                            "type": "string",
                            "enum": [
                                "key",
                                "user",
                                "team",
                                "model",
                                "day",
                                "tag",
                                "endpoint",
                                "provider",
                            ],
                        },
                        "group by (default model)",
                    ),
                    _SINCE,
                    _UNTIL,
                    _ZONE,
                ],
            )
        },
        "/spend/series": {
            "get": _op(
                "One scope's spend per day, week or month, from the ledger's totals",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "points": {"type": "array"},
                                "total_usd": {"type": "string"},
                                "total_nanos": {"type": "integer"},
                            },
                        },
                        "per-period spend",
                    ),
                    **_errors(400),
                },
                parameters=[
                    {
                        "name": "scope",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "string"},
                        "description": "global, key:<id>, user:alice, team:eng, model:x, tag:y",
                    },
                    _query(
                        "period", {"type": "string", "enum": ["daily", "weekly", "monthly"]}, ""
                    ),
                    _SINCE,
                    _UNTIL,
                    _ZONE,
                ],
            )
        },
        "/alerts": {
            "get": _op(
                "Alert delivery history, newest first",
                {
                    "200": _json(
                        {"type": "object", "properties": {"deliveries": {"type": "array"}}},
                        "deliveries",
                    ),
                    **_errors(400),
                },
                parameters=[_SINCE, _LIMIT],
            )
        },
        "/audit": {
            "get": _op(
                "Changes to budgets and keys, newest first",
                {
                    "200": _json(
                        {"type": "object", "properties": {"events": {"type": "array"}}}, "events"
                    ),
                    **_errors(400),
                },
                parameters=[
                    _SINCE,
                    _UNTIL,
                    _query("target", {"type": "string"}, "a scope or key:<id>"),
                    _LIMIT,
                ],
            )
        },
        "/key/info": {
            "get": {
                "summary": "The calling virtual key's own budget and spend (its secret as bearer)",
                "security": [{"virtualKey": []}],
                "responses": {
                    "200": _json({"type": "object"}, "the key, its budget and spend per period"),
                    **_errors(400),
                },
            }
        },
    }
    for item in paths.values():  # a string schema must be storable text: no NUL
        for op in item.values():
            for param in op.get("parameters", []) if isinstance(op, dict) else []:
                if param["schema"].get("type") == "string":
                    param["schema"].setdefault("pattern", "^[^\\x00]*$")
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "costwarden gateway admin API",
            "version": VERSION,
            "description": (
                "Budgets, virtual keys, spend, alert history and the audit log of a costwarden "
                "ledger. Every route but /openapi.json and /key/info needs the master key as "
                "a bearer token; /key/info takes a virtual key's own secret."
            ),
        },
        "servers": [{"url": "/admin", "description": "where costwarden serve mounts it"}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "masterKey": {"type": "http", "scheme": "bearer"},
                "virtualKey": {"type": "http", "scheme": "bearer"},
            },
            "schemas": {
                "Budget": _BUDGET,
                "Stored": _STORED_BUDGET,
                "Key": _KEY,
                "NewKey": _NEW_KEY,
                "SpendRow": _MONEY_ROW,
                "Error": _ERROR,
            },
        },
    }


def openapi_schema() -> dict[str, Any]:
    """A fresh copy of the document (callers may change theirs)."""
    return copy.deepcopy(_schema())


__all__ = ["openapi_schema"]
