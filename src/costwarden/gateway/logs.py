"""Structured logs: one JSON object per line, with no secrets and no prompt bodies.

What a request's line holds is chosen field by field (:func:`request_line`): the route, the
status, the key's id (never its secret), the model, the upstream, the duration, the cost and
the outcome. Headers and bodies are never logged, so neither a virtual key, a provider key nor
a prompt can reach a log file through the gateway.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, Final

log: Final = logging.getLogger("costwarden.gateway")


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "msg", ...extra}``; exceptions as their type and message."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            out["error"] = f"{type(exc).__name__}: {exc}"
        return json.dumps(out, default=str, separators=(",", ":"))


def configure(level: str = "info") -> None:
    """JSON lines on stderr for the costwarden loggers (idempotent)."""
    root = logging.getLogger("costwarden")
    for handler in root.handlers:
        if getattr(handler, "_costwarden_json", False):
            break
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        handler._costwarden_json = True  # type: ignore[attr-defined]
        root.addHandler(handler)
        root.propagate = False
    root.setLevel(level.upper())


def request_line(**fields: Any) -> None:
    """Log one finished request with exactly the given (safe) fields."""
    if log.isEnabledFor(logging.INFO):
        log.info("request", extra={"fields": {"at": round(time.time(), 3), **fields}})


__all__ = ["JsonFormatter", "configure", "request_line"]
