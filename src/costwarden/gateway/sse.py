"""Reading a Server-Sent Events stream beside its bytes, without changing them.

The gateway forwards a stream's bytes as the upstream sent them. :class:`EventSplitter` finds
the complete events in what has arrived so far (an event may span chunks, or a chunk hold
several events) and decodes each ``data:`` payload as JSON for the usage decoders; the bytes
themselves are never re-serialised.

:func:`is_usage_only` recognises the final Chat Completions chunk that carries only usage
(``choices`` empty, null or absent), which the gateway asked for with
``stream_options.include_usage`` and removes again when the client did not ask for it.
"""

from __future__ import annotations

import json
from typing import Any, Final

_SEPARATORS: Final = (b"\r\n\r\n", b"\n\n", b"\r\r")


def _next_boundary(buf: bytes | bytearray, start: int) -> tuple[int, int]:
    """(end of the next event, length of its separator), or (-1, 0) when incomplete."""
    best, width = -1, 0
    for sep in _SEPARATORS:
        at = buf.find(sep, start)
        if at != -1 and (best == -1 or at < best):
            best, width = at, len(sep)
    return best, width


def parse_event(raw: bytes) -> Any:
    """The JSON of an event's ``data:`` lines (None for comments, ``[DONE]`` or bad JSON)."""
    data: list[bytes] = []
    for line in raw.splitlines():
        if line.startswith(b"data:"):
            value = line[5:]
            data.append(value[1:] if value.startswith(b" ") else value)
    if not data:
        return None
    payload = b"\n".join(data)
    if payload.strip() == b"[DONE]":
        return None
    try:
        return json.loads(payload)
    except ValueError:
        return None


class EventSplitter:
    """Accumulates chunks and hands back each complete event's exact bytes."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, chunk: bytes) -> list[bytes]:
        """The events completed by ``chunk`` (their bytes, separators included)."""
        buf = self._buf
        buf += chunk
        events: list[bytes] = []
        start = 0
        while True:
            end, width = _next_boundary(buf, start)
            if end == -1:
                break
            events.append(bytes(buf[start : end + width]))
            start = end + width
        if start:
            del buf[:start]
        return events

    @property
    def pending(self) -> bytes:
        """Bytes of an event not yet complete (sent at the end of the stream as they are)."""
        return bytes(self._buf)


def may_be_usage_only(raw: bytes) -> bool:
    """False for an event that cannot be the usage-only chunk (no usage, or ``"usage":null``,
    as every other chunk of an include_usage stream says), read from its bytes; True means
    "parse it and ask :func:`is_usage_only`"."""
    at = raw.find(b'"usage"')
    while at != -1:
        if not raw.startswith(b":null", at + 7):
            return True
        at = raw.find(b'"usage"', at + 7)
    return False


def is_usage_only(event: Any) -> bool:
    """A Chat Completions chunk carrying usage and no choices (the include_usage chunk)."""
    if not isinstance(event, dict) or event.get("usage") is None:
        return False
    choices = event.get("choices")
    return not choices


__all__ = ["EventSplitter", "is_usage_only", "may_be_usage_only", "parse_event"]
