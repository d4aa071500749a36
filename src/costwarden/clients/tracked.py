"""``TrackedLLMClient``: a chat call that cannot overspend.

``chat(messages, model=None, max_cost=None) -> str`` (the brief's signature) does, in order:

1. pick the model (the optimizer's choice when none is given, or a cheaper one when the given
   model's estimate exceeds ``max_cost`` and downgrades are allowed);
2. estimate the cost: counted prompt + ``max_tokens`` as the output bound (``max_tokens`` is
   always sent, so the estimate is a real upper bound and holds make limits hard);
3. reserve the estimate on every applicable budget — ``BudgetExceededError`` here means the
   provider was never called;
4. call the provider (retrying transient failures inside the same hold if asked to);
5. record the provider's reported usage (priced by the manager) in place of the hold.

``chat_stream`` yields text and settles the hold when the stream ends, breaks or is abandoned.
:class:`AsyncTrackedLLMClient` is the same over the SDKs' async clients. Its budget bookkeeping
runs inline on a memory or SQLite ledger (which answers in microseconds, less than a hop to a
thread would cost) and on a worker thread for a remote (PostgreSQL) ledger, so that a slow
database never blocks the event loop (see :mod:`costwarden.clients.offload`).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from costwarden.clients.apis import StreamDecoder, response_model, response_text
from costwarden.clients.attribution import Attribution
from costwarden.clients.estimation import Estimate, estimate_call
from costwarden.clients.failures import raise_readable
from costwarden.clients.offload import is_remote
from costwarden.clients.providers import ProviderRegistry, credentialed_providers
from costwarden.clients.requests import ChatRequest, Provider, normalise_messages
from costwarden.clients.settlement import AccountTerms, CallAccount
from costwarden.clients.streams import AsyncTrackedStream, TrackedStream
from costwarden.errors import (
    BudgetExceededError,
    InvalidInputError,
    NoModelFitsError,
)
from costwarden.money import format_compared, nanos_to_usd, usd_to_nanos
from costwarden.records import StoredRecord, Usage, UsageRecord

if TYPE_CHECKING:
    from costwarden.manager import BudgetManager

_ATTRIBUTION = ("user", "team", "key", "endpoint", "request_id")
RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504, 529})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retries of transient failures (429, 5xx, timeouts, resets) inside one budget hold.

    A retry is only made if its backoff ends before the hold expires, so a retried call can
    never run on a budget hold that has lapsed. Nothing is billed for a failed attempt.
    """

    attempts: int = 0
    backoff: float = 0.5
    max_backoff: float = 8.0

    def __post_init__(self) -> None:
        if isinstance(self.attempts, bool) or not isinstance(self.attempts, int):
            raise InvalidInputError(f"retries must be an int >= 0, got {self.attempts!r}")
        if self.attempts < 0 or self.backoff < 0 or self.max_backoff < 0:
            raise InvalidInputError("retries and backoff must not be negative")

    def delay(self, attempt: int) -> float:
        """Exponential backoff with full jitter for the ``attempt``-th retry (1-based)."""
        return random.uniform(0, min(self.max_backoff, self.backoff * 2 ** (attempt - 1)))

    @staticmethod
    def retryable(error: BaseException) -> bool:
        """Whether ``error`` is worth retrying: a retryable HTTP status (rate limit, overload,
        server error), or else a timeout or connection failure judged by the exception's name.
        """
        code = getattr(error, "status_code", None)
        if isinstance(code, int):
            return code in RETRYABLE_STATUS
        name = type(error).__name__
        return "Timeout" in name or "Connection" in name


@dataclass(frozen=True, slots=True)
class ChatResult:
    """A completed tracked call: the text and its books."""

    text: str
    model: str
    provider: str
    usage: Usage
    record: StoredRecord
    estimate: Estimate
    response: Any

    @property
    def cost_usd(self) -> float:
        """What the call cost in US dollars, as recorded in the ledger."""
        return self.record.cost_usd


@dataclass(frozen=True, slots=True)
class _Plan:
    provider: Provider
    kwargs: dict[str, Any]
    estimate: Estimate
    attribution: Attribution


def _simulates(provider: Provider) -> bool:
    """Whether ``provider`` answers any model name (the built-in simulator)."""
    from costwarden.clients.simulated import SimulatedProvider

    return isinstance(provider, SimulatedProvider)


def _model_name(choice: Any) -> str:
    """``select_model`` may return a name or an object carrying one."""
    if isinstance(choice, str):
        return choice
    for attr in ("model", "name", "id"):
        value = getattr(choice, attr, None)
        if isinstance(value, str):
            return value
    raise InvalidInputError(f"the optimizer returned {choice!r}, not a model name")


class _TrackedBase:
    """Configuration and planning shared by the sync and async clients."""

    def __init__(
        self,
        budget_manager: BudgetManager,
        optimizer: Any = None,
        *,
        provider: str | Provider | None = None,
        providers: Iterable[Provider] | Mapping[str, Provider] = (),
        user: str | None = None,
        team: str | None = None,
        key: str | None = None,
        endpoint: str | None = None,
        tags: Iterable[str] = (),
        default_max_tokens: int = 1024,
        allow_downgrade: bool = False,
        task_type: str = "chat",
        quality: str = "medium",
        retries: int = 0,
        backoff: float = 0.5,
        hold_ttl: float | None = None,
    ) -> None:
        if isinstance(default_max_tokens, bool) or not isinstance(default_max_tokens, int):
            raise InvalidInputError("default_max_tokens must be a positive int")
        if default_max_tokens < 1:
            raise InvalidInputError("default_max_tokens must be a positive int")
        self.manager = budget_manager
        self.optimizer = optimizer
        self.providers = ProviderRegistry(
            providers, default=provider, pricing=budget_manager.pricing
        )
        # What the caller configured (built-ins the registry creates on demand come later).
        self._configured = frozenset(name.lower() for name in self.providers.names)
        self.attribution = Attribution(user, team, key, endpoint, tuple(tags))
        self.default_max_tokens = default_max_tokens
        self.allow_downgrade = allow_downgrade
        self.task_type = task_type
        self.quality = quality
        self.retry = RetryPolicy(retries, backoff)
        self.hold_ttl = hold_ttl
        self._offload = is_remote(budget_manager)  # read once: async bookkeeping off the loop

    async def aclose(self) -> None:
        """Close the SDK clients (sync and async) that this client's providers built; call it
        on the event loop the calls ran on, since async connections belong to it.

        Only what the providers built is closed: an SDK client passed to a provider
        (``OpenAIProvider(client=...)``) belongs to the caller, who closes it. The manager is
        not closed either. Closing is not final: a later call opens new connections.
        """
        await self.providers.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _select(
        self,
        task_type: str,
        max_cost: float | None,
        messages: list[dict[str, Any]],
        out: int,
        provider: str | None = None,
    ) -> tuple[str, str | None]:
        """The optimizer's pick for this prompt and output bound, among servable models, and
        the provider to send it to (None: the registry's usual route).

        The optimizer knows every priced model; only those a provider this client can call
        serves are eligible (:meth:`_callable`), so the cheapest adequate *reachable* model
        is chosen, never a Groq model without a Groq key or a Gemini model sent to OpenAI.
        """
        if self.optimizer is None:
            raise InvalidInputError(
                "no model given and no optimizer to choose one: pass model=... or "
                "TrackedLLMClient(manager, CostOptimizer(...))"
            )
        allowed = self._callable(provider)
        if allowed is not None and not allowed:
            raise NoModelFitsError(
                "no model given and no provider to call: none is registered and no provider "
                "credentials are set (OPENAI_API_KEY, ANTHROPIC_API_KEY, GROQ_API_KEY, ...); "
                "set one, pass provider=... or providers=[...], or pass model=..."
            )
        select = getattr(self.optimizer, "select", None)
        if select is None:  # any object with the brief's select_model() will do
            choice = self.optimizer.select_model(task_type, max_cost=max_cost, quality=self.quality)
            return _model_name(choice), provider
        selection = select(
            task_type,
            max_cost,
            self.quality,
            input_text=messages,
            output_tokens=out,
            providers=allowed,
        )
        name = str(selection.model)
        via = selection.provider
        if via is not None and name.split("/", 1)[0].lower() == via:
            via = None  # "groq/llama-...": the prefix routes it (and is stripped on the way)
        return name, via

    def _callable(self, provider: str | None) -> frozenset[str] | None:
        """Names of the providers this client can call for a call with ``provider=``; None
        when any model will do (the simulator answers every model name).

        A per-call provider or a default provider is what the caller configured; registered
        providers are the only ones used when there are some; otherwise a built-in counts
        only if its credentials are set (a local preset without a key, such as ollama, must
        be registered: nothing says a server is running).
        """
        registry = self.providers
        if provider is not None:
            return None if _simulates(registry.get(provider)) else frozenset({provider.lower()})
        if registry.default is not None and _simulates(registry.get(registry.default)):
            return None
        if self._configured:
            return self._configured
        return frozenset(credentialed_providers())

    def _estimate(
        self,
        model: str,
        messages: list[dict[str, Any]],
        max_tokens: int,
        provider: str | None,
        options: Mapping[str, Any],
        stream: bool,
    ) -> tuple[Provider, dict[str, Any], Estimate]:
        prov, send_model = self.providers.resolve(model, provider)
        kwargs = prov.build(ChatRequest(send_model, messages, max_tokens, options), stream=stream)
        est = estimate_call(
            self.manager.pricing,
            prov.api,
            kwargs,
            send_model,
            provider=prov.name,
            default_output_tokens=max_tokens,
            free=prov.free,
        )
        return prov, kwargs, est

    def _plan(
        self,
        messages: object,
        model: str | None,
        max_cost: float | None,
        kw: dict[str, Any],
        *,
        stream: bool,
    ) -> _Plan:
        """Validate, choose the model and provider, estimate; raise before any spend."""
        max_tokens = kw.pop("max_tokens", None)
        provider = kw.pop("provider", None)
        task = kw.pop("task_type", None) or self.task_type
        allow_downgrade = kw.pop("allow_downgrade", None)
        tags = kw.pop("tags", None)
        changes = {name: kw.pop(name) for name in _ATTRIBUTION if name in kw}
        if tags is not None:
            changes["tags"] = tuple(tags)
        who = self.attribution.override(**changes) if changes else self.attribution
        options = kw  # everything else goes to the provider unchanged
        msgs = normalise_messages(messages)
        cap = None if max_cost is None else usd_to_nanos(max_cost, field="max_cost")
        if max_tokens is None:
            max_tokens = self.default_max_tokens
        elif isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise InvalidInputError(f"max_tokens must be a positive int, got {max_tokens!r}")
        route = provider
        if model is None:
            chosen, route = self._select(task, max_cost, msgs, max_tokens, provider)
        else:
            chosen = model
        prov, kwargs, est = self._estimate(chosen, msgs, max_tokens, route, options, stream)
        if cap is not None and est.cost_nanos > cap:
            downgrade = self.allow_downgrade if allow_downgrade is None else allow_downgrade
            if downgrade and self.optimizer is not None:
                alternative, route = self._select(task, max_cost, msgs, max_tokens, provider)
                if alternative != chosen:
                    chosen = alternative
                    prov, kwargs, est = self._estimate(
                        chosen, msgs, max_tokens, route, options, stream
                    )
            if est.cost_nanos > cap:
                estimated, most = format_compared(est.cost_nanos, cap)
                raise BudgetExceededError(
                    f"The call to {chosen} is estimated at {estimated} "
                    f"({est.input_tokens} prompt + up to {est.output_tokens} output tokens), "
                    f"over max_cost {most}; lower max_tokens, shorten the prompt, "
                    "or allow_downgrade=True to use a cheaper model.",
                    scope="request",
                    period="max_cost",
                    limit=nanos_to_usd(cap),
                    attempted=est.cost_usd,
                )
        if est.metadata is None:
            est = replace(est, metadata={"task": task})
        else:  # a dict estimate_call made for this call alone: add to it, no copy
            est.metadata["task"] = task
        return _Plan(prov, kwargs, est, who)

    def _open(self, plan: _Plan) -> CallAccount:
        return CallAccount(self.manager, plan.estimate, plan.attribution, **self._terms(plan))

    async def _open_async(self, plan: _Plan) -> CallAccount:
        return await CallAccount.open_async(
            self.manager, plan.estimate, plan.attribution, **self._terms(plan)
        )

    def _terms(self, plan: _Plan) -> AccountTerms:
        p = plan.provider
        return AccountTerms(
            api=p.api, provider=p.name, free=p.free, ttl=self.hold_ttl, offload=self._offload
        )

    def _can_retry(self, error: BaseException, attempt: int, account: CallAccount) -> float | None:
        """The backoff before retry number ``attempt``, or None to give up."""
        if attempt > self.retry.attempts or not self.retry.retryable(error):
            return None
        wait = self.retry.delay(attempt)
        if time.time() + wait >= account.hold.expires_at:
            return None
        return wait

    @staticmethod
    def _settlement(
        plan: _Plan, account: CallAccount, response: Any
    ) -> tuple[UsageRecord, Usage | None, str]:
        """The record to commit for ``response``, its reported usage (None when missing or
        garbled: the prompt estimate plus the counted answer is charged) and the answer."""
        text = response_text(plan.provider.api, response)
        record, usage = account.response_record(response, text)
        return record, usage, text

    @staticmethod
    def _result(
        plan: _Plan, response: Any, text: str, usage: Usage | None, record: StoredRecord
    ) -> ChatResult:
        if usage is None:  # charged from the estimate: say what was charged
            usage = Usage(input_tokens=record.input_tokens, output_tokens=record.output_tokens)
        model = response_model(response, plan.estimate.model)
        return ChatResult(text, model, plan.provider.name, usage, record, plan.estimate, response)


def _text_only(event: Any, text: str) -> str | None:
    return text or None


class TrackedLLMClient(_TrackedBase):
    """Budget-enforced chat over OpenAI, Anthropic, compatible services or the simulator.

    ``TrackedLLMClient(manager, optimizer)`` is the brief's form; keyword options set the
    default provider (``provider="simulated"`` for offline demos), attribution copied onto every
    record (``user``, ``team``, ``key``, ``endpoint``, ``tags``), the output bound
    (``default_max_tokens``), downgrades and retries.

    Per-call keywords of :meth:`chat`, :meth:`complete` and :meth:`chat_stream`: ``max_tokens``,
    ``provider``, ``task_type``, ``allow_downgrade``, ``user``, ``team``, ``key``,
    ``endpoint``, ``tags``, ``request_id``; any other keyword (``temperature``...) is passed to
    the provider unchanged.

    The SDK clients (and their pooled connections) that the providers create on first use are
    this client's: :meth:`close`, or leaving ``with TrackedLLMClient(...) as client:``, closes
    them, rather than leaving their sockets to the garbage collector. An SDK client you passed
    in (``OpenAIProvider(client=openai.OpenAI(...))``) stays yours and open; so does the manager.
    """

    def close(self) -> None:
        """Close the SDK clients this client's providers built (see the class doc); safe to call
        twice, and a later call opens new connections."""
        self.providers.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def chat(
        self, messages: object, model: str | None = None, max_cost: float | None = None, **kw: Any
    ) -> str:
        """Run one tracked call and return the assistant's text."""
        return self.complete(messages, model, max_cost, **kw).text

    def complete(
        self, messages: object, model: str | None = None, max_cost: float | None = None, **kw: Any
    ) -> ChatResult:
        """Run one tracked call; return the text with its usage, cost and stored record."""
        plan = self._plan(messages, model, max_cost, kw, stream=False)
        account = self._open(plan)
        response = self._send(plan, account)
        pending, usage, text = self._settlement(plan, account, response)
        return self._result(plan, response, text, usage, account.commit(pending))

    def chat_stream(
        self, messages: object, model: str | None = None, max_cost: float | None = None, **kw: Any
    ) -> TrackedStream[str]:
        """Start a tracked streaming call; iterate the result for text pieces.

        The budget is checked and the request sent before this returns. The stream settles
        the hold when it ends, breaks or is closed; ``stream.record`` is then the record.
        """
        plan = self._plan(messages, model, max_cost, kw, stream=True)
        account = self._open(plan)
        source = self._send(plan, account)
        return TrackedStream(source, account, StreamDecoder(plan.provider.api), _text_only)

    def _send(self, plan: _Plan, account: CallAccount) -> Any:
        attempt = 0
        while True:
            try:
                return plan.provider.call(dict(plan.kwargs))
            except BaseException as exc:
                attempt += 1
                wait = self._can_retry(exc, attempt, account)
                if wait is None:
                    account.fail(exc)
                    raise_readable(exc)
            time.sleep(wait)
            account.restart_clock()


class AsyncTrackedLLMClient(_TrackedBase):
    """The asyncio twin of :class:`TrackedLLMClient` (same options, same bookkeeping).

    Closed with ``await client.aclose()`` or by leaving ``async with AsyncTrackedLLMClient(...)
    as client:`` (on the loop the calls ran on): that closes the async SDK clients its
    providers built, never one you passed in. There is no sync ``close()``: an async client's
    connections can only be closed by awaiting on their event loop.
    """

    async def chat(
        self, messages: object, model: str | None = None, max_cost: float | None = None, **kw: Any
    ) -> str:
        """Like ``complete`` but return only the reply text (the brief's ``chat``)."""
        return (await self.complete(messages, model, max_cost, **kw)).text

    async def complete(
        self, messages: object, model: str | None = None, max_cost: float | None = None, **kw: Any
    ) -> ChatResult:
        """Admit the call against the budgets, send it, and settle its real cost; return the reply
        with its stored record.
        """
        plan = self._plan(messages, model, max_cost, kw, stream=False)
        account = await self._open_async(plan)
        response = await self._send(plan, account)
        pending, usage, text = self._settlement(plan, account, response)
        return self._result(plan, response, text, usage, await account.commit_async(pending))

    async def chat_stream(
        self, messages: object, model: str | None = None, max_cost: float | None = None, **kw: Any
    ) -> AsyncTrackedStream[str]:
        """``stream = await client.chat_stream(...)``, then ``async for text in stream``."""
        plan = self._plan(messages, model, max_cost, kw, stream=True)
        account = await self._open_async(plan)
        source = await self._send(plan, account)
        return AsyncTrackedStream(source, account, StreamDecoder(plan.provider.api), _text_only)

    async def _send(self, plan: _Plan, account: CallAccount) -> Any:
        attempt = 0
        while True:
            try:
                return await plan.provider.acall(dict(plan.kwargs))
            except BaseException as exc:
                attempt += 1
                wait = self._can_retry(exc, attempt, account)
                if wait is None:
                    # A cancellation of the call lands here too: the settlement runs to the
                    # end even if the task is cancelled again meanwhile (see CallAccount).
                    await account.fail_async(exc)
                    raise_readable(exc)
            await asyncio.sleep(wait)
            account.restart_clock()
