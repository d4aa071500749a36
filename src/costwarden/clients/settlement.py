"""One call's books: estimate, hold, and exactly one settlement.

Every tracked call — through :class:`~costwarden.clients.TrackedLLMClient`, a wrapped SDK
client or a stream — goes through a :class:`CallAccount`: the estimate is held *before* the
provider is called (so a call that does not fit raises ``BudgetExceededError`` and never reaches
the provider), and the hold is then replaced by exactly one record:

* success: the provider's reported usage, priced by the manager's catalogue;
* success without usage: the prompt estimate plus the counted output, flagged ``estimated``;
* a stream cut or abandoned: what was produced (reported usage if any, else counted text) —
  never $0, since the provider bills what it generated;
* failure before any output: the hold is released and a zero-cost failure record is kept, so
  failed calls show up in the history without costing budget.

Async callers use the ``*_async`` twins, which keep a remote ledger's round trips off the event
loop and survive the caller's cancellation without losing or leaking a hold (see
:mod:`costwarden.clients.offload`).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any, Final, Required, TypedDict, Unpack

from costwarden.clients.apis import (
    Api,
    StreamDecoder,
    response_id,
    response_model,
    response_service_tier,
    response_text,
)
from costwarden.clients.apis import response_usage as read_usage
from costwarden.clients.attribution import Attribution, usage_record
from costwarden.clients.estimation import Estimate, count_text
from costwarden.clients.failures import failure_status
from costwarden.clients.offload import is_remote, run_offloaded
from costwarden.errors import ProviderResponseError
from costwarden.ledger.leases import admit_inline
from costwarden.records import StoredRecord, Usage, UsageRecord

if TYPE_CHECKING:
    from costwarden.manager import BudgetManager, Hold

log = logging.getLogger("costwarden")


_PLAIN_VALUES: frozenset[type] = frozenset({str, int})


def _plain_metadata(meta: object) -> bool:
    """True for metadata that ``records.check_metadata`` is sure to accept: a dict of str keys
    and str or int values, which is what tracked calls attach (counts, hashes, the task).

    The record's check proves it is JSON by serialising it, which costs 5-15 µs per call with
    the caches as a provider call leaves them; this type test gives the same answer for the
    metadata we build, and anything else still goes through the record's check.
    """
    if type(meta) is not dict:
        return False
    for key, value in meta.items():
        if type(key) is not str or type(value) not in _PLAIN_VALUES:
            return False
    return True


def _reserve(
    manager: BudgetManager, estimate: Estimate, attribution: Attribution, ttl: float | None
) -> Hold:
    a = attribution
    return manager.reserve_nanos(
        estimate.cost_nanos,
        user=a.user,
        team=a.team,
        key=a.key,
        tags=a.budget_tags,
        model=estimate.model,
        ttl=ttl,
    )


class AccountTerms(TypedDict, total=False):
    """The keyword terms of a :class:`CallAccount` as one value (``**terms``, still checked by
    the type checker), for callers that open accounts both ways (sync and async)."""

    api: Required[Api]
    provider: Required[str | None]
    free: bool
    ttl: float | None
    offload: bool | None


_STREAM_STATUS: Final = {"complete": "ok", "error": "partial", "aborted": "aborted"}


class CallAccount:
    """The hold and the single settlement of one provider call (see module doc).

    The ledger side has async twins (:meth:`open_async`, :meth:`commit_async`,
    :meth:`fail_async`, :meth:`settle_stream_async`). When the manager's ledger is remote
    (PostgreSQL) they run the ledger calls on a worker thread (see
    :mod:`costwarden.clients.offload`); on a local ledger they call inline, exactly as the
    synchronous methods do. The record is always built on the caller's side, so both forms
    record the same thing.
    """

    __slots__ = (
        "_settling",
        "api",
        "attribution",
        "estimate",
        "free",
        "hold",
        "manager",
        "model",
        "offload",
        "provider",
        "record",
        "started",
    )

    def __init__(
        self,
        manager: BudgetManager,
        estimate: Estimate,
        attribution: Attribution,
        *,
        api: Api,
        provider: str | None,
        free: bool = False,
        ttl: float | None = None,
        hold: Hold | None = None,
        offload: bool | None = None,
    ) -> None:
        """Reserve the estimate (or take ``hold``, already reserved for it by open_async).

        ``offload``: whether the async twins run ledger calls on a worker thread; by default
        whether the manager's ledger is remote (clients pass the flag they read once).
        """
        self.manager = manager
        self.estimate = estimate
        self.attribution = attribution
        self.api = api
        self.provider = provider
        self.free = free
        self.model = estimate.model
        self.record: StoredRecord | None = None
        self.offload = is_remote(manager) if offload is None else offload
        self._settling = False
        self.hold: Hold = _reserve(manager, estimate, attribution, ttl) if hold is None else hold
        self.started = time.perf_counter()

    @classmethod
    async def open_async(
        cls,
        manager: BudgetManager,
        estimate: Estimate,
        attribution: Attribution,
        **terms: Unpack[AccountTerms],
    ) -> CallAccount:
        """The constructor for async callers: the same checks and errors, raised before any
        provider call. If the caller is cancelled while a remote reservation runs, the hold it
        then obtains is released on the worker thread (it never leaks). On a ledger admitting
        from budget leases, an admission the lease covers is made on the loop, with no hop."""
        offload = terms.get("offload")
        if offload is None:
            offload = terms["offload"] = is_remote(manager)
        hold = None
        if offload:
            # A ledger admitting from budget leases may answer without the server: try that on
            # the loop (microseconds), and hop to a worker only if it would have to ask.
            hold = admit_inline(
                manager.ledger, partial(_reserve, manager, estimate, attribution, terms.get("ttl"))
            )
        if offload and hold is None:
            hold = await run_offloaded(
                partial(_reserve, manager, estimate, attribution, terms.get("ttl")),
                undo=manager.release,
                what="reservation",
            )
        return cls(manager, estimate, attribution, hold=hold, **terms)

    @property
    def settled(self) -> bool:
        """True once the hold is settled, or while a settlement of it runs on a worker."""
        return self._settling or self.hold.settled

    def restart_clock(self) -> None:
        """Latency counts from the attempt that succeeded (retries are not latency)."""
        self.started = time.perf_counter()

    # -- the records (built on the caller's side, shared by both forms) ---------------------
    def _record(
        self,
        usage: Usage,
        *,
        status: str,
        estimated: bool,
        model: str | None,
        request_id: str | None,
        zero: bool = False,
        service_tier: str | None = None,
    ) -> UsageRecord:
        a = self.attribution
        meta = self.estimate.metadata
        plain = _plain_metadata(meta)
        record = usage_record(
            usage,
            a,
            model=model or self.model,
            provider=self.provider,
            request_id=a.request_id or request_id or uuid.uuid4().hex,
            cost_usd=0.0 if (zero or self.free) else None,
            service_tier=service_tier,
            latency_ms=round((time.perf_counter() - self.started) * 1000.0, 3),
            status=status,
            estimated=estimated,
            metadata=None if plain else meta,
        )
        if plain:  # what the record's check would pass unchanged; see _plain_metadata
            record.metadata = meta
        return record

    def _unreported_record(
        self,
        text: str,
        *,
        reported: Usage | None,
        status: str,
        model: str | None,
        request_id: str | None,
        service_tier: str | None = None,
    ) -> UsageRecord:
        """Bill what the provider did not report: the prompt, plus the counted ``text``.

        Reported figures win where present (Anthropic's ``message_start`` knows the real input
        and cache counts); output is the larger of the reported and the counted count, because
        a stream cut before its final usage has only a placeholder output figure.
        """
        counted = count_text(text, self.model)
        if reported is not None and reported.input_tokens:
            usage = replace(reported, output_tokens=max(reported.output_tokens, counted))
        else:
            out = max(counted, reported.output_tokens if reported else 0)
            reasoning = reported.reasoning_tokens if reported else 0
            usage = Usage(
                input_tokens=self.estimate.input_tokens,
                output_tokens=out,
                reasoning_tokens=min(reasoning, out),
            )
        return self._record(
            usage,
            status=status,
            estimated=True,
            model=model,
            request_id=request_id,
            service_tier=service_tier,
        )

    def response_record(
        self, response: Any, text: str | None = None
    ) -> tuple[UsageRecord, Usage | None]:
        """The record settling a call answered by ``response`` (not streamed), for
        :meth:`commit`, and the usage the provider reported.

        The model the provider reports (a dated snapshot, say) is what it billed. When the
        usage is missing or garbled (``None`` is returned for it), the call still succeeded and
        was billed: the prompt estimate plus the counted answer ``text`` (read from the
        response when not given) is charged, flagged ``estimated``.
        """
        model = response_model(response, self.model)
        rid = response_id(response)
        tier = response_service_tier(self.api, response)
        try:
            usage = read_usage(self.api, response)
        except ProviderResponseError:
            if text is None:
                text = response_text(self.api, response)
            record = self._unreported_record(
                text, reported=None, status="ok", model=model, request_id=rid, service_tier=tier
            )
            return record, None
        record = self._record(
            usage, status="ok", estimated=False, model=model, request_id=rid, service_tier=tier
        )
        return record, usage

    def _stream_record(self, decoder: StreamDecoder, outcome: str) -> UsageRecord:
        """What :meth:`settle_stream` records (see there)."""
        status = _STREAM_STATUS[outcome]
        usage = decoder.usage
        if usage is not None and decoder.complete_usage:
            # The bill arrived (for a break: before it, e.g. a reset after the usage chunk).
            return self._record(
                usage,
                status=status,
                estimated=False,
                model=decoder.model,
                request_id=decoder.id,
                service_tier=decoder.service_tier,
            )
        return self._unreported_record(
            "".join(decoder.produced),
            reported=usage,
            status=status,
            model=decoder.model,
            request_id=decoder.id,
            service_tier=decoder.service_tier,
        )

    def _failure_record(self, status: str) -> tuple[UsageRecord, bool]:
        """What :meth:`fail` records, and whether it is charged (else the hold is released)."""
        if status == "error:bad_response":
            record = self._unreported_record(
                "", reported=None, status=status, model=None, request_id=None
            )
            return record, True
        zero = self._record(
            Usage(), status=status, estimated=False, model=None, request_id=None, zero=True
        )
        return zero, False

    # -- the ledger side (on a worker thread in the async twins, for a remote ledger) -------
    def commit(self, record: UsageRecord) -> StoredRecord:
        """Replace the hold by ``record`` (one of this account's records), priced by the
        manager."""
        self.record = self.manager.commit(self.hold, record)
        return self.record

    def _settle_failure(self, record: UsageRecord, charged: bool) -> StoredRecord:
        if charged:
            return self.commit(record)
        self.manager.release(self.hold)
        self.record = self.manager.record_spend(record)
        return self.record

    async def _settle(self, settle: Callable[[], StoredRecord]) -> StoredRecord:
        """``settle()`` inline for a local ledger, else on a worker thread; either way it runs
        to the end even if the caller is cancelled meanwhile, and :attr:`settled` is true
        from now on (unless it fails), so nothing settles the hold twice."""
        if not self.offload:
            return settle()
        self._settling = True
        return await run_offloaded(partial(self._settle_on_worker, settle), what="settlement")

    def _settle_on_worker(self, settle: Callable[[], StoredRecord]) -> StoredRecord:
        try:
            return settle()
        finally:
            self._settling = False  # the hold's own flag says the rest

    async def commit_async(self, record: UsageRecord) -> StoredRecord:
        """The async twin of :meth:`commit`."""
        return await self._settle(partial(self.commit, record))

    # -- settlements ------------------------------------------------------------------------
    def succeed(
        self,
        usage: Usage,
        *,
        model: str | None = None,
        request_id: str | None = None,
        estimated: bool = False,
        status: str = "ok",
    ) -> StoredRecord:
        """Replace the hold by the call's actual usage, priced by the manager."""
        # The model the provider reports (a dated snapshot, say) is what it billed.
        return self.commit(
            self._record(
                usage, status=status, estimated=estimated, model=model, request_id=request_id
            )
        )

    def fail(self, error: BaseException) -> StoredRecord | None:
        """Settle a call that raised before any output reached the caller.

        Errors, timeouts and resets bill nothing: the hold is released and a zero-cost failure
        record is kept. An unreadable *successful* body is different: the provider did the
        work, so the prompt estimate is charged (flagged ``estimated``), never $0.

        This runs while the provider's error is being raised, so a ledger failure here is
        logged rather than raised: the caller must see the provider's error, not ours (an
        unsettled hold still expires by its TTL).
        """
        status = failure_status(error)
        try:
            return self._settle_failure(*self._failure_record(status))
        except Exception:
            log.exception("costwarden: could not settle a failed call (%s)", status)
            return None

    async def fail_async(self, error: BaseException) -> StoredRecord | None:
        """The async twin of :meth:`fail` (release and failure record in one worker hop)."""
        status = failure_status(error)
        try:
            record, charged = self._failure_record(status)
            return await self._settle(partial(self._settle_failure, record, charged))
        except Exception:
            log.exception("costwarden: could not settle a failed call (%s)", status)
            return None

    def settle_stream(self, decoder: StreamDecoder, outcome: str) -> StoredRecord:
        """Settle a stream that ended (``"complete"``), broke (``"error"``) or was abandoned."""
        return self.commit(self._stream_record(decoder, outcome))

    async def settle_stream_async(self, decoder: StreamDecoder, outcome: str) -> StoredRecord:
        """The async twin of :meth:`settle_stream`."""
        return await self.commit_async(self._stream_record(decoder, outcome))
