"""Keeping alert secrets out of logs, exception messages and the delivery history.

A Slack incoming-webhook URL *is* a credential (the token is its path), and so may be a
generic webhook's path or query. Two tools, used on every path that turns an error into text:

* :func:`redact` cuts every ``http(s)://`` URL in a text to scheme and host
  (``https://hooks.slack.com/…redacted``), whatever the text came from;
* :func:`scrub` also removes the pieces of one known secret URL that appear *without* a scheme
  (an error that quotes only the path, a server that echoes the request path in its answer),
  raw or percent-encoded, then redacts and truncates.
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import quote, unquote, urlsplit

MARK: Final = "…redacted"
MAX_TEXT: Final = 500
_URL = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://[^/\s'\"?#]+)([^\s'\"]*)")
_SHORTEST_SECRET = 6  # path segments shorter than this ("hooks", "api") are not secrets


def redact(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` with every URL cut to scheme and host, at most ``limit`` characters."""
    out = _URL.sub(lambda m: f"{m.group(1)}/{MARK}" if m.group(2) else m.group(1), text)
    return out if len(out) <= limit else out[: limit - 1] + "…"


def secret_fragments(url: str) -> list[str]:
    """The pieces of ``url`` that may carry its secret, longest first: everything after the
    host, the path, the query, each path segment and query value of some length, each as
    given, percent-encoded and decoded."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return [url]
    tail = url.split(parts.netloc, 1)[1] if parts.netloc and parts.netloc in url else url
    pieces = {tail, parts.path, parts.query, parts.fragment}
    pieces.update(s for s in parts.path.split("/") if len(s) >= _SHORTEST_SECRET)
    for pair in parts.query.split("&"):
        value = pair.partition("=")[2]
        if len(value) >= _SHORTEST_SECRET:
            pieces.add(value)
    if parts.password:
        pieces.add(parts.password)
    variants = set()
    for p in pieces:
        if p and p != "/":
            variants.update({p, quote(p, safe="/"), unquote(p)})
    return sorted((v for v in variants if len(v) > 1), key=len, reverse=True)


def scrub(text: str, secret_urls: tuple[str, ...] | list[str], limit: int = MAX_TEXT) -> str:
    """``text`` without any fragment of ``secret_urls`` (see :func:`secret_fragments`), URLs
    redacted, at most ``limit`` characters."""
    for url in secret_urls:
        for fragment in secret_fragments(url):
            text = text.replace(fragment, MARK)
    return redact(text, limit)
