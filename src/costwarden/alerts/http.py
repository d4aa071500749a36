"""One HTTP POST for the Slack and webhook channels, on the standard library.

Why urllib: alerts are part of the core, which should not need an HTTP client dependency.
Errors never carry the URL (a Slack webhook URL *is* a credential): they name the host only.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Mapping
from urllib.parse import urlsplit

from costwarden.errors import AlertDeliveryError, ConfigurationError


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
    if not isinstance(url, str):
        raise ConfigurationError(f"{what} must be a string URL")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"{what} must be an http(s) URL with a host")
    return url


def host_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # an alert endpoint that redirects is misconfigured: fail visibly


_OPENER = urllib.request.build_opener(_NoRedirect)


def post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> tuple[int, str]:
    """POST ``body``; return (status, first 1 kB of the answer); raise ChannelHTTPError."""
    req = urllib.request.Request(url, data=body, method="POST", headers=dict(headers))
    where = host_of(url)
    try:
        with _OPENER.open(req, timeout=timeout) as resp:
            return resp.status, resp.read(1024).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        text = exc.read(300).decode("utf-8", "replace") if exc.fp else ""
        retry = exc.headers.get("Retry-After") if exc.headers else None
        retry_after = float(retry) if retry and retry.strip().isdigit() else None
        raise ChannelHTTPError(
            f"{where} answered HTTP {exc.code} {text.strip()[:200]!r}",
            status=exc.code,
            retry_after=retry_after,
        ) from None
    except TimeoutError:
        raise ChannelHTTPError(f"{where} did not answer within {timeout:g} s") from None
    except urllib.error.URLError as exc:
        raise ChannelHTTPError(f"cannot reach {where}: {exc.reason}") from None
    except OSError as exc:
        raise ChannelHTTPError(f"cannot reach {where}: {exc}") from None
