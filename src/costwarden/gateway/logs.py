"""Structured logs: one JSON object per line, with no secrets and no prompt bodies.

What a request's line holds is chosen field by field (:func:`request_line`): the route, the
status, the key's id (never its secret), the model, the upstream, the duration, the cost and
the outcome. Headers and bodies are never logged, so neither a virtual key, a provider key nor
a prompt can reach a log file through the gateway.

Every proxied request writes one line, so the line is on the hot path: through
:mod:`logging` it costs a ``LogRecord``, the handler's lock, the formatter and its dict
(measured for issue #15: the logging calls were ~4% of a worker's event-loop time at 300 RPS).
When the loggers are exactly as :func:`configure` left them (one JSON handler, no filters),
:func:`request_line` writes the same line straight to that handler's stream; any other set-up
(a test's capture handler, a filter, a different formatter) takes the plain ``logging`` path.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import time
from typing import Any, Final

log: Final = logging.getLogger("costwarden.gateway")
_ENCODE: Final = json.JSONEncoder(separators=(",", ":"), default=str).encode
"""``json.dumps(..., default=str, separators=(",", ":"))`` without building an encoder per line."""


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "msg", ...extra}``; exceptions as their type and message."""

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", None)
        error = None
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            error = f"{type(exc).__name__}: {exc}"
        return json_line(
            round(record.created, 3),
            record.levelname.lower(),
            record.name,
            record.getMessage(),
            fields if isinstance(fields, dict) else None,
            error,
        )


def json_line(
    ts: float,
    level: str,
    logger: str,
    msg: str,
    fields: dict[str, Any] | None = None,
    error: str | None = None,
) -> str:
    """One log line as JSON: the one shape both :class:`JsonFormatter` and the direct request
    line write."""
    out: dict[str, Any] = {"ts": ts, "level": level, "logger": logger, "msg": msg}
    if fields:
        out.update(fields)
    if error is not None:
        out["error"] = error
    return _ENCODE(out)


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


def _direct_stream(logger: logging.Logger) -> logging.StreamHandler[Any] | None:
    """The JSON handler a request line can be written to directly: the one :func:`configure`
    installed on the ``costwarden`` logger, when ``logger`` adds nothing of its own and nothing
    filters (else None: use :mod:`logging`)."""
    parent = logger.parent
    if logger.handlers or logger.filters or not logger.propagate or parent is None:
        return None
    if parent.name != "costwarden" or parent.propagate or parent.filters:
        return None
    handlers = parent.handlers
    if len(handlers) != 1:
        return None
    handler = handlers[0]
    if (
        not getattr(handler, "_costwarden_json", False)
        or handler.filters
        or handler.level > logging.INFO
        or type(handler.formatter) is not JsonFormatter
        or not isinstance(handler, logging.StreamHandler)
    ):
        return None
    return handler


def request_line(**fields: Any) -> None:
    """Log one finished request with exactly the given (safe) fields."""
    if not log.isEnabledFor(logging.INFO):
        return
    handler = _direct_stream(log)
    if handler is not None:  # fast shape: the line JsonFormatter would write, written directly
        at = round(time.time(), 3)
        line = json_line(at, "info", log.name, "request", {"at": at, **fields})
        line += handler.terminator
        try:
            with handler.lock or _NO_LOCK:
                handler.stream.write(line)
                handler.stream.flush()
            return
        except Exception:  # a closed or broken stream: logging reports it its own way
            pass
    log.info("request", extra={"fields": {"at": round(time.time(), 3), **fields}})


_NO_LOCK: Final = contextlib.nullcontext()


__all__ = ["JsonFormatter", "configure", "request_line"]
