"""One HTTP POST for the Slack and webhook channels, on the standard library.

Why urllib: alerts are part of the core, which should not need an HTTP client dependency.
A channel URL may be a credential (a Slack webhook URL's path *is* its token), so nothing
that leaves here carries it: errors name the host only, and an error answer's body is cut and
scrubbed of the URL's path and query before it is quoted (a server may echo the request path).
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Mapping
from urllib.parse import urlsplit

from costwarden.alerts.redact import scrub
from costwarden.errors import AlertDeliveryError, ConfigurationError

_BODY_QUOTED = 200  # characters of an error answer kept in the error message


class ChannelHTTPError(AlertDeliveryError):
    """A channel's HTTP endpoint refused or failed a delivery.

    ``permanent`` errors (a 4xx other than 408/429: wrong URL, revoked token, bad payload) are
    not retried; ``retry_after`` (seconds) comes from a 429/503 ``Retry-After`` header.
    """

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.permanent = status is not None and 400 <= status < 500 and status not in (408, 429)


def check_url(url: object, what: str) -> str:
    """``url`` if it is an http(s) URL with a host and nothing urllib would refuse later
    (whitespace, control characters, a bad port). The error never quotes the URL."""
    if not isinstance(url, str):
        raise ConfigurationError(f"{what} must be a string URL")
    try:
        parts = urlsplit(url)
        host, _port = parts.hostname, parts.port
    except ValueError:
        raise ConfigurationError(
            f"{what} is not a valid URL (its text is not shown: it may hold a secret)"
        ) from None
    if parts.scheme not in ("http", "https") or not host:
        raise ConfigurationError(
            f"{what} must be an http(s) URL with a host (its text is not shown: it may hold a "
            "secret)"
        )
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise ConfigurationError(
            f"{what} for {parts.scheme}://{host} contains a space or control character; "
            "copy the URL again without it (its path is not shown: it may hold a secret)"
        )
    return url


def host_of(url: str) -> str:
    """The scheme, host and port of ``url`` without path or query, for messages that must not leak a
    secret URL.
    """
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # an alert endpoint that redirects is misconfigured: fail visibly


_OPENER = urllib.request.build_opener(_NoRedirect)


def post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> tuple[int, str]:
    """POST ``body``; return (status, first 1 kB of the answer); raise ChannelHTTPError
    whose message names the host only and quotes a scrubbed, cut error body."""
    where = host_of(url)
    try:
        req = urllib.request.Request(url, data=body, method="POST", headers=dict(headers))
        with _OPENER.open(req, timeout=timeout) as resp:
            return resp.status, resp.read(1024).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        try:
            text = exc.read(1024).decode("utf-8", "replace") if exc.fp else ""
        finally:  # its body holds the socket; it lives on as our error's context
            exc.close()
        retry = exc.headers.get("Retry-After") if exc.headers else None
        retry_after = float(retry) if retry and retry.strip().isdigit() else None
        quoted = scrub(" ".join(text.split()), [url], limit=_BODY_QUOTED)
        raise ChannelHTTPError(
            f"{where} answered HTTP {exc.code} {quoted!r}",
            status=exc.code,
            retry_after=retry_after,
        ) from None
    except TimeoutError:
        raise ChannelHTTPError(f"{where} did not answer within {timeout:g} s") from None
    except urllib.error.URLError as exc:
        reason = scrub(str(exc.reason), [url])
        raise ChannelHTTPError(f"cannot reach {where}: {reason}") from None
    except OSError as exc:
        raise ChannelHTTPError(f"cannot reach {where}: {scrub(str(exc), [url])}") from None
    except Exception as exc:  # http.client.InvalidURL, ValueError...: they quote the URL
        raise ChannelHTTPError(
            f"cannot send to {where}: {type(exc).__name__} (details withheld: they quote the URL)"
        ) from None
