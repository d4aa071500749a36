"""``costwarden.wrap(client, manager=...)``: put existing SDK code under a budget in one line.

::

    client = costwarden.wrap(openai.OpenAI(), manager=manager, user="alice")
    client.chat.completions.create(model="gpt-4o-mini", messages=[...])   # checked + recorded

The wrapper returns a thin proxy of the SDK client. ``chat.completions.create``,
``responses.create`` and ``messages.create`` (sync and async, with and without ``stream=True``)
are tracked: estimated, reserved before the request is sent, and settled from the usage in the
response or stream. Everything else is the SDK client's own attribute, untouched. The SDK's
return values and errors are passed through unchanged (a malformed body becomes
:class:`~costwarden.errors.ProviderResponseError`, as the SDK would leak a bare JSON error).

For Chat Completions streams the wrapper asks for ``stream_options.include_usage`` (else the
stream carries no usage at all); when the caller had not asked for it, the extra usage-only chunk
(with no ``choices``) is kept out of the caller's iteration so that ``chunk.choices[0]`` code keeps
working. ``wrapped.with_attribution(user=..., endpoint=...)`` gives per-request attribution.

Async clients do their bookkeeping inline on a memory or SQLite ledger and on a worker thread
for a remote (PostgreSQL) one (see :mod:`costwarden.clients.offload`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from costwarden.clients.apis import Api, StreamDecoder
from costwarden.clients.attribution import Attribution
from costwarden.clients.estimation import DEFAULT_OUTPUT_TOKENS, Estimate, estimate_call
from costwarden.clients.failures import raise_readable
from costwarden.clients.offload import is_remote
from costwarden.clients.settlement import AccountTerms, CallAccount
from costwarden.clients.streams import AsyncTrackedStream, TrackedStream
from costwarden.clients.usage import field
from costwarden.errors import InvalidInputError

if TYPE_CHECKING:
    from costwarden.manager import BudgetManager
    from costwarden.records import StoredRecord

_HOSTS = {
    "api.openai.com": "openai",
    "api.anthropic.com": "anthropic",
    "openrouter.ai": "openrouter",
    "api.groq.com": "groq",
    "api.together.xyz": "together",
}


@dataclass(frozen=True, slots=True)
class _Settings:
    manager: BudgetManager
    attribution: Attribution
    provider: str | None
    free: bool
    default_output_tokens: int
    inject_stream_usage: bool
    offload: bool
    """Whether async calls run the ledger calls on a worker thread (the ledger is remote)."""


def _provider_name(client: Any, family: str) -> str:
    """``openai``/``anthropic`` for the first-party API, else a name from the base URL host."""
    host = urlparse(str(getattr(client, "base_url", "") or "")).hostname or ""
    return _HOSTS.get(host, host or family)


def _hide_usage_chunk(event: Any, text: str) -> Any:
    """Keep the injected usage-only chunk out of the caller's view (see module doc)."""
    if not field(event, "choices") and field(event, "usage") is not None:
        return None
    return event


def _pass(event: Any, text: str) -> Any:
    return event


class _Call:
    """Tracking around one SDK ``create`` method (shared by the sync and async forms)."""

    def __init__(self, settings: _Settings, api: Api, create: Any) -> None:
        self._s = settings
        self._api = api
        self._create = create

    def _terms(self) -> AccountTerms:
        s = self._s
        return AccountTerms(api=self._api, provider=s.provider, free=s.free, offload=s.offload)

    def _begin(self, kwargs: dict[str, Any]) -> tuple[Estimate, dict[str, Any], bool]:
        """The estimate, the request to send and whether to hide the usage chunk."""
        s = self._s
        model = kwargs.get("model")
        if not isinstance(model, str) or not model:
            raise InvalidInputError("model= is required (a non-empty string)")
        estimate = estimate_call(
            s.manager.pricing,
            self._api,
            kwargs,
            model,
            provider=s.provider,
            default_output_tokens=s.default_output_tokens,
            free=s.free,
        )
        hide = False
        if kwargs.get("stream") and self._api == "chat" and s.inject_stream_usage:
            options = dict(kwargs.get("stream_options") or {})
            if not options.get("include_usage"):
                hide = True
                options["include_usage"] = True
                kwargs = {**kwargs, "stream_options": options}
        return estimate, kwargs, hide

    def sync(self, *args: Any, **kwargs: Any) -> Any:
        if args:
            raise InvalidInputError("SDK create() takes keyword arguments only")
        s = self._s
        estimate, kwargs, hide = self._begin(kwargs)
        account = CallAccount(s.manager, estimate, s.attribution, **self._terms())
        try:
            result = self._create(**kwargs)
        except BaseException as exc:
            account.fail(exc)
            raise_readable(exc)
        if kwargs.get("stream"):
            project = _hide_usage_chunk if hide else _pass
            return TrackedStream(result, account, StreamDecoder(self._api), project)
        account.commit(account.response_record(result)[0])
        return result

    async def async_(self, *args: Any, **kwargs: Any) -> Any:
        if args:
            raise InvalidInputError("SDK create() takes keyword arguments only")
        s = self._s
        estimate, kwargs, hide = self._begin(kwargs)
        account = await CallAccount.open_async(s.manager, estimate, s.attribution, **self._terms())
        try:
            result = await self._create(**kwargs)
        except BaseException as exc:
            await account.fail_async(exc)  # runs to the end even if cancelled again
            raise_readable(exc)
        if kwargs.get("stream"):
            project = _hide_usage_chunk if hide else _pass
            return AsyncTrackedStream(result, account, StreamDecoder(self._api), project)
        await account.commit_async(account.response_record(result)[0])
        return result


class _Proxy:
    """Attributes of ``target``, except the ones overridden.

    The overrides live in the proxy's own ``__dict__``, so ``client.chat.completions.create``
    is three plain attribute reads; ``__getattr__`` (which Python reaches only after a failed
    lookup has raised and caught an AttributeError) serves the rest from the target.
    """

    def __init__(self, target: Any, overrides: dict[str, Any]) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_overrides", overrides)
        for name, value in overrides.items():
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:
        overrides = object.__getattribute__(self, "_overrides")
        if name in overrides:
            return overrides[name]
        return getattr(object.__getattribute__(self, "_target"), name)

    def __repr__(self) -> str:
        return f"<costwarden tracked {object.__getattribute__(self, '_target')!r}>"


class WrappedClient(_Proxy):
    """An SDK client whose generation calls are budget-checked and recorded."""

    def __init__(self, client: Any, settings: _Settings, is_async: bool, family: str) -> None:
        def tracked(api: Api, create: Any) -> Any:
            call = _Call(settings, api, create)
            return call.async_ if is_async else call.sync

        overrides: dict[str, Any] = {}
        if family == "openai":
            chat = client.chat
            completions = _Proxy(
                chat.completions, {"create": tracked("chat", chat.completions.create)}
            )
            overrides["chat"] = _Proxy(chat, {"completions": completions})
            overrides["responses"] = _Proxy(
                client.responses, {"create": tracked("responses", client.responses.create)}
            )
        else:
            overrides["messages"] = _Proxy(
                client.messages, {"create": tracked("messages", client.messages.create)}
            )
        overrides["unwrapped"] = client
        overrides["costwarden_settings"] = settings
        overrides["with_attribution"] = self._with_attribution
        overrides["with_options"] = self._with_options
        overrides["record_batch_results"] = self._record_batch_results
        super().__init__(client, overrides)
        object.__setattr__(self, "_meta", (settings, is_async, family))

    def _with_attribution(
        self,
        *,
        user: str | None = None,
        team: str | None = None,
        key: str | None = None,
        endpoint: str | None = None,
        tags: Iterable[str] | None = None,
        request_id: str | None = None,
    ) -> WrappedClient:
        """The same client, recording (and budgeting) calls for other attribution."""
        settings, is_async, family = object.__getattribute__(self, "_meta")
        who = settings.attribution.override(
            user=user,
            team=team,
            key=key,
            endpoint=endpoint,
            tags=None if tags is None else tuple(tags),
            request_id=request_id,
        )
        new = replace(settings, attribution=who)
        return WrappedClient(object.__getattribute__(self, "_target"), new, is_async, family)

    def _record_batch_results(
        self, results: Iterable[Any], *, model: str | None = None
    ) -> list[StoredRecord]:
        """Record a batch job's results file at batch rates, with this client's attribution
        and provider (see :func:`costwarden.clients.batch.record_batch_results`)."""
        from costwarden.clients.batch import record_batch_results

        settings = object.__getattribute__(self, "_meta")[0]
        return record_batch_results(
            settings.manager,
            results,
            model=model,
            provider=settings.provider,
            attribution=settings.attribution,
        )

    def _with_options(self, **options: Any) -> WrappedClient:
        """``client.with_options(timeout=...)``, still tracked."""
        settings, is_async, family = object.__getattribute__(self, "_meta")
        inner = object.__getattribute__(self, "_target").with_options(**options)
        return WrappedClient(inner, settings, is_async, family)


def _family(client: Any) -> tuple[str, bool]:
    try:
        import openai
    except ImportError:  # pragma: no cover - optional dependency
        openai = None  # type: ignore[assignment]
    try:
        import anthropic
    except ImportError:  # pragma: no cover - optional dependency
        anthropic = None  # type: ignore[assignment]
    if openai is not None:
        if isinstance(client, openai.AsyncOpenAI):
            return "openai", True
        if isinstance(client, openai.OpenAI):
            return "openai", False
    if anthropic is not None:
        if isinstance(client, anthropic.AsyncAnthropic):
            return "anthropic", True
        if isinstance(client, anthropic.Anthropic):
            return "anthropic", False
    raise InvalidInputError(
        f"wrap() takes an openai.OpenAI, openai.AsyncOpenAI, anthropic.Anthropic or "
        f"anthropic.AsyncAnthropic client, got {type(client).__name__}"
    )


def wrap(
    client: Any,
    *,
    manager: BudgetManager,
    user: str | None = None,
    team: str | None = None,
    key: str | None = None,
    endpoint: str | None = None,
    tags: Iterable[str] = (),
    provider: str | None = None,
    free: bool = False,
    default_output_tokens: int = DEFAULT_OUTPUT_TOKENS,
    inject_stream_usage: bool = True,
) -> Any:
    """Return ``client`` with its generation calls budget-checked and recorded.

    ``provider`` names the service on records and as the pricing hint (default: from the base
    URL). ``free=True`` is for local servers (Ollama, vLLM): calls are recorded at $0 and never
    blocked. ``default_output_tokens`` is the output bound assumed when a request sets no
    ``max_tokens``: set ``max_tokens`` on requests to make the hold a true upper bound.
    """
    from costwarden.manager import BudgetManager

    if not isinstance(manager, BudgetManager):
        raise InvalidInputError(f"manager must be a BudgetManager, got {type(manager).__name__}")
    if isinstance(default_output_tokens, bool) or not isinstance(default_output_tokens, int):
        raise InvalidInputError("default_output_tokens must be a positive int")
    if default_output_tokens < 1:
        raise InvalidInputError("default_output_tokens must be a positive int")
    family, is_async = _family(client)
    settings = _Settings(
        manager,
        Attribution(user, team, key, endpoint, tuple(tags)),
        provider or _provider_name(client, family),
        free,
        default_output_tokens,
        inject_stream_usage,
        is_remote(manager),
    )
    return WrappedClient(client, settings, is_async, family)
