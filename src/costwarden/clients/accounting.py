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

import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Any, Final

from costwarden.clients.apis import (
    Api,
    StreamDecoder,
    output_bound,
    prompt_messages,
    response_id,
    response_model,
    response_service_tier,
    response_text,
)
from costwarden.clients.apis import response_usage as read_usage
from costwarden.clients.offload import is_remote, run_offloaded
from costwarden.errors import InvalidInputError, NoTierPriceError, ProviderResponseError
from costwarden.money import Nanos, nanos_to_usd
from costwarden.records import StoredRecord, Usage, UsageRecord

if TYPE_CHECKING:
    from costwarden.manager import BudgetManager, Hold
    from costwarden.pricing import PriceCatalog
    from costwarden.tokens import TokenCount

log = logging.getLogger("costwarden")

DEFAULT_OUTPUT_TOKENS = 1024
"""Output bound assumed when a request sets none (the estimate's output side)."""


@dataclass(frozen=True, slots=True)
class Attribution:
    """Who and what a call is for; copied onto every record (and used to pick budgets)."""

    user: str | None = None
    team: str | None = None
    key: str | None = None
    endpoint: str | None = None
    tags: tuple[str, ...] = ()
    request_id: str | None = None

    def __post_init__(self) -> None:
        for name in ("user", "team", "key", "endpoint", "request_id"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise InvalidInputError(f"{name} must be a non-empty string, got {value!r}")
        tags = (self.tags,) if isinstance(self.tags, str) else tuple(self.tags)
        if not all(isinstance(t, str) and t for t in tags):
            raise InvalidInputError(f"tags must be non-empty strings, got {self.tags!r}")
        object.__setattr__(self, "tags", tags)

    def override(self, **changes: Any) -> Attribution:
        """A copy with the given non-None fields replaced (per-call attribution)."""
        given = {k: v for k, v in changes.items() if v is not None}
        return replace(self, **given) if given else self

    @property
    def budget_tags(self) -> tuple[str, ...]:
        """Tags for admission: the endpoint counts as a tag scope, as it does on records."""
        if self.endpoint and self.endpoint not in self.tags:
            return (*self.tags, self.endpoint)
        return self.tags


@dataclass(frozen=True, slots=True)
class Estimate:
    """A call's pre-call bound: counted prompt, output cap, and their price."""

    model: str
    input_tokens: int
    output_tokens: int
    cost_nanos: Nanos
    exact_input: bool
    metadata: dict[str, Any] | None = None
    """Kept on the call's record for the optimizer's advice (docs/optimizer.md): the output
    bound, a hash of the whole prompt (duplicates) and of its system prefix (caching)."""

    @property
    def cost_usd(self) -> float:
        return nanos_to_usd(self.cost_nanos)


_JSON = json.JSONEncoder(sort_keys=True, default=str, separators=(",", ":"))
"""The encoding the prompt hashes are taken of (what ``json.dumps(value, sort_keys=True,
default=str, separators=(",", ":"))`` builds, without making an encoder per call)."""

_PREFIX_ROLES = ("system", "developer")
_BLAKE2B_12 = hashlib.blake2b(digest_size=12)
"""Copied for every hash: the same state as ``blake2b(digest_size=12)``, without parsing the
constructor's dozen keyword arguments each time (half the cost of hashing a short prompt)."""
_quote = json.encoder.encode_basestring_ascii  # how that encoder writes every str (ASCII-safe)


def _message_json(message: Any) -> str:
    """``_JSON.encode(message)``, written directly for the plain ``{"role", "content"}`` str
    messages that :func:`~costwarden.clients.apis.prompt_messages` makes (sorted keys, no
    spaces, the same quoting); anything else goes through the encoder."""
    if type(message) is dict and len(message) == 2:
        content, role = message.get("content"), message.get("role")
        if type(content) is str and type(role) is str:
            return f'{{"content":{_quote(content)},"role":{_quote(role)}}}'
    return _JSON.encode(message)


@dataclass(frozen=True, slots=True)
class _Prefix:
    """A prompt's leading system/developer messages: how many, their hash, their count."""

    length: int
    hash: str
    count: TokenCount


_PREFIX_COUNTS: dict[tuple[str, str], TokenCount] = {}
"""``count_message_tokens(prefix, model)`` by (prefix hash, model). System prompts repeat
(that is what caching advice is about), so each is counted once per process."""

_PREFIX_STATES: dict[tuple[tuple[str, str], ...], tuple[str, Any]] = {}
"""A prefix's (role, content) pairs -> (its hash, the BLAKE2b state after ``[`` and its
messages' JSON), so a repeated system prompt is neither escaped nor hashed again: each call
copies the state and hashes only what follows. Python caches a str's hash on the object, so
looking up the same system prompt costs next to nothing whatever its length."""
_PREFIX_STATE_CHARS = 4_000_000
"""Bound on the characters of prompts kept as keys above (the cache is emptied beyond it)."""
_prefix_state_chars = 0


def _plain_pairs(messages: list[Any]) -> tuple[tuple[str, str], ...] | None:
    """The messages as (role, content) pairs when they are plain str messages, else None."""
    pairs = []
    for m in messages:
        if type(m) is not dict or len(m) != 2:
            return None
        role, content = m.get("role"), m.get("content")
        if type(role) is not str or type(content) is not str:
            return None
        pairs.append((role, content))
    return tuple(pairs)


def _prefix_state(prefix: list[Any]) -> tuple[str, Any]:
    """(hash of the prefix's JSON, BLAKE2b state after ``[`` + its items) - see above."""
    global _prefix_state_chars
    key = _plain_pairs(prefix)
    hit = _PREFIX_STATES.get(key) if key is not None else None
    if hit is not None:
        return hit
    state = _BLAKE2B_12.copy()
    state.update(f"[{','.join(map(_message_json, prefix))}".encode())
    head = state.copy()
    head.update(b"]")
    found = (head.hexdigest(), state)
    if key is not None:
        size = sum(len(role) + len(content) for role, content in key)
        if _prefix_state_chars + size > _PREFIX_STATE_CHARS or len(_PREFIX_STATES) >= 4096:
            _PREFIX_STATES.clear()
            _prefix_state_chars = 0
        _PREFIX_STATES[key] = found
        _prefix_state_chars += size
    return found


def _hashes(messages: list[Any], model: str) -> tuple[str, _Prefix | None]:
    """The prompt's hash, and its system prefix (length, hash, cached count) if it has one.

    Each message is encoded once: the JSON of a list is its items' JSON joined by ``,``
    inside ``[...]``, so the prompt's and the prefix's texts (and hashes) share the work.
    """
    k = 0
    for m in messages:
        if m.get("role") not in _PREFIX_ROLES:
            break
        k += 1
    encode = _message_json
    if not k:
        whole = _BLAKE2B_12.copy()
        whole.update(f"[{','.join(map(encode, messages))}]".encode())
        return whole.hexdigest(), None
    prefix_hash, state = _prefix_state(messages[:k])
    whole = state.copy()  # the cached state itself is never updated
    rest = messages[k:]
    whole.update(f"{',' if rest else ''}{','.join(map(encode, rest))}]".encode())
    count = _PREFIX_COUNTS.get((prefix_hash, model))
    if count is None:
        from costwarden.tokens import count_message_tokens

        count = count_message_tokens(messages[:k], model)
        if len(_PREFIX_COUNTS) >= 4096:
            _PREFIX_COUNTS.clear()
        _PREFIX_COUNTS[(prefix_hash, model)] = count
    return whole.hexdigest(), _Prefix(k, prefix_hash, count)


def _metadata(output_bound: int, prompt_hash: str, prefix: _Prefix | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"max_tokens": output_bound, "prompt_hash": prompt_hash}
    if prefix is not None:
        meta["prefix_hash"] = prefix.hash
        meta["prefix_tokens"] = prefix.count.tokens
    return meta


def call_metadata(messages: list[Any], model: str, output_bound: int) -> dict[str, Any]:
    """What the optimizer reads back from a call's record: ``max_tokens`` (the bound sent),
    ``prompt_hash`` (the whole prompt: retries and duplicates) and, when the prompt starts
    with system or developer messages, ``prefix_hash`` / ``prefix_tokens`` (a cacheable
    prefix). Hashes, never the text: records must not hold prompts.

    A hash is the 12-byte BLAKE2b of ``json.dumps(messages, sort_keys=True, default=str,
    separators=(",", ":"))`` (of the prefix's messages for ``prefix_hash``)."""
    return _metadata(output_bound, *_hashes(messages, model))


def _count_prompt(
    messages: list[Any], model: str, tools: Any, prefix: _Prefix | None
) -> tuple[int, bool]:
    """``count_message_tokens(messages, model, tools=tools)`` as (tokens, exact), counting a
    known system prefix from its cached count instead of tokenizing it again.

    OpenAI's recipe is a sum over messages plus ``REPLY_PRIMING`` once, so the prompt is the
    prefix's count plus the rest's, less one priming. That holds only for counts that are
    sums (``tiktoken:`` methods); scaled estimates (``estimate:``, rounded up after scaling)
    are counted whole.
    """
    from costwarden.tokens import REPLY_PRIMING, count_message_tokens

    if prefix is not None and prefix.count.method.startswith("tiktoken:"):
        rest = count_message_tokens(messages[prefix.length :], model, tools=tools)
        if rest.method.startswith("tiktoken:"):
            tokens = prefix.count.tokens + rest.tokens - REPLY_PRIMING
            return tokens, prefix.count.exact and rest.exact
    counted = count_message_tokens(messages, model, tools=tools)
    return counted.tokens, counted.exact


_PLAIN_VALUES: frozenset[type] = frozenset({str, int})


def _plain_metadata(meta: object) -> bool:
    """True for metadata that ``records.check_metadata`` is sure to accept: a dict of str keys
    and str or int values, which is what tracked calls attach (counts, hashes, the task).

    The record's check proves it is JSON by serialising it, which costs ~15 µs per call with
    the caches as a provider call leaves them; this type test gives the same answer for the
    metadata we build, and anything else still goes through the record's check.
    """
    if type(meta) is not dict:
        return False
    for key, value in meta.items():
        if type(key) is not str or type(value) not in _PLAIN_VALUES:
            return False
    return True


def count_text(text: str, model: str) -> int:
    """Tokens in generated text (used to charge output the provider did not report)."""
    if not text:
        return 0
    from costwarden.tokens import count_tokens

    return count_tokens(text, model).tokens


def estimate_call(
    pricing: PriceCatalog,
    api: Api,
    request: Mapping[str, Any],
    model: str,
    *,
    provider: str | None = None,
    default_output_tokens: int = DEFAULT_OUTPUT_TOKENS,
    free: bool = False,
) -> Estimate:
    """Price the request's prompt plus its output bound (``max_tokens`` or the default).

    Raises UnknownModelError for an unpriced model (unless ``free``): an unknown model is an
    error before a call, never silently $0.
    """
    messages = prompt_messages(api, request)
    tools = request.get("tools") or None
    # Counting (which checks the model and tools) comes before the output bound is read, so
    # a request with several faults reports the same one first as before.
    prompt_hash, prefix = _hashes(messages, model)
    tokens, exact = _count_prompt(messages, model, tools, prefix)
    out = output_bound(api, request) or default_output_tokens
    meta = _metadata(out, prompt_hash, prefix)
    if free:
        return Estimate(model, tokens, out, 0, exact, meta)
    usage = Usage(input_tokens=tokens, output_tokens=out)
    tier = request.get("service_tier")
    if isinstance(tier, str):  # the tier asked for ("auto" and the like: standard)
        try:
            cost = pricing.cost_nanos(model, usage, provider=provider, service_tier=tier)
        except NoTierPriceError:  # a custom price without that tier: the response settles it
            cost = pricing.cost_nanos(model, usage, provider=provider)
    else:
        cost = pricing.cost_nanos(model, usage, provider=provider)
    return Estimate(model, tokens, out, cost, exact, meta)


def failure_status(error: BaseException) -> str:
    """A short status for a failed call's record: ``error:429``, ``error:timeout``..."""
    code = getattr(error, "status_code", None)
    if isinstance(code, int):
        return f"error:{code}"
    name = type(error).__name__
    if "Timeout" in name:
        return "error:timeout"
    if "Connection" in name:
        return "error:connection"
    if isinstance(error, (json.JSONDecodeError, ProviderResponseError)) or "Validation" in name:
        return "error:bad_response"
    return f"error:{name}"


def readable_error(error: BaseException) -> BaseException:
    """The error to give the caller: the provider's own, or a typed one for garbage JSON.

    The SDKs let a ``json.JSONDecodeError`` escape on a malformed body; a caller cannot be
    expected to catch that, so it becomes :class:`ProviderResponseError` (chained).
    """
    if isinstance(error, json.JSONDecodeError):
        converted = ProviderResponseError(
            f"the provider answered with malformed JSON ({error.msg} at char {error.pos}); "
            "check the upstream or any proxy in between, then retry"
        )
        converted.__cause__ = error
        return converted
    return error


def _reserve(
    manager: BudgetManager, estimate: Estimate, attribution: Attribution, ttl: float | None
) -> Hold:
    a = attribution
    return manager.reserve(
        nanos_to_usd(estimate.cost_nanos),
        user=a.user,
        team=a.team,
        key=a.key,
        tags=a.budget_tags,
        model=estimate.model,
        ttl=ttl,
    )


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
        *,
        api: Api,
        provider: str | None,
        free: bool = False,
        ttl: float | None = None,
        offload: bool | None = None,
    ) -> CallAccount:
        """The constructor for async callers: the same checks and errors, raised before any
        provider call. If the caller is cancelled while a remote reservation runs, the hold it
        then obtains is released on the worker thread (it never leaks)."""
        if offload is None:
            offload = is_remote(manager)
        hold = None
        if offload:
            hold = await run_offloaded(
                partial(_reserve, manager, estimate, attribution, ttl),
                undo=manager.release,
                what="reservation",
            )
        return cls(
            manager,
            estimate,
            attribution,
            api=api,
            provider=provider,
            free=free,
            ttl=ttl,
            hold=hold,
            offload=offload,
        )

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
        record = UsageRecord(
            model=model or self.model,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cost_usd=0.0 if (zero or self.free) else None,
            user_id=a.user,
            endpoint=a.endpoint,
            request_id=a.request_id or request_id or uuid.uuid4().hex,
            team=a.team,
            key=a.key,
            provider=self.provider,
            tags=a.tags,
            cache_read_tokens=usage.cache_read_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            cache_write_1h_tokens=usage.cache_write_1h_tokens,
            input_audio_tokens=usage.input_audio_tokens,
            cache_audio_read_tokens=usage.cache_audio_read_tokens,
            output_audio_tokens=usage.output_audio_tokens,
            web_searches=usage.web_searches,
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
        """What :meth:`charge_unreported` bills (see there)."""
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

    def charge_unreported(
        self,
        text: str,
        *,
        reported: Usage | None = None,
        status: str,
        model: str | None = None,
        request_id: str | None = None,
    ) -> StoredRecord:
        """Bill what the provider did not report: the prompt, plus the counted ``text``.

        Reported figures win where present (Anthropic's ``message_start`` knows the real input
        and cache counts); output is the larger of the reported and the counted count, because
        a stream cut before its final usage has only a placeholder output figure.
        """
        return self.commit(
            self._unreported_record(
                text, reported=reported, status=status, model=model, request_id=request_id
            )
        )

    def settle_stream(self, decoder: StreamDecoder, outcome: str) -> StoredRecord:
        """Settle a stream that ended (``"complete"``), broke (``"error"``) or was abandoned."""
        return self.commit(self._stream_record(decoder, outcome))

    async def settle_stream_async(self, decoder: StreamDecoder, outcome: str) -> StoredRecord:
        """The async twin of :meth:`settle_stream`."""
        return await self.commit_async(self._stream_record(decoder, outcome))
