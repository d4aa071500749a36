"""Cost advice from real usage records: what to change, what it saves a month, and why.

Each rule looks for one pattern whose saving can be computed from the records themselves and
the price catalogue, never from a guess about the workload:

- ``switch_model``   a task's calls could run on a cheaper model of adequate quality;
- ``prompt_caching`` the same long prefix is sent again and again without cache reads;
- ``cap_max_tokens`` outputs stay far below ``max_tokens`` (billing is unchanged: the saving is
  budget held by pre-call reservations, reported as evidence, and the bound on runaways);
- ``batch_api``      calls marked as not latency-bound could use the provider's batch price;
- ``trim_prompt``    prompts dominate an endpoint's cost (saving shown for a stated trim);
- ``retries`` / ``duplicates`` the same request id recorded twice, or the same prompt sent
  again (a response cache would answer it).

Savings are per month: the history's cost difference scaled by (average month / history span,
at least one day). Savings of different rules can overlap and are not additive.
The metadata keys read are listed in docs/optimizer.md.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from costwarden.errors import NoTierPriceError, UnknownModelError
from costwarden.money import Nanos, format_compared, format_usd, nanos_to_usd
from costwarden.optimizer.catalogue import TASKS, ModelCatalogue, task_or_none
from costwarden.optimizer.select import Candidate
from costwarden.pricing import PriceCatalog
from costwarden.records import Usage

MONTH_SECONDS: Final = 2_629_746  # 365.2425 / 12 days
MIN_SPAN_SECONDS: Final = 86_400
CACHE_TTL_SECONDS: Final = 300  # Anthropic's default ephemeral cache; OpenAI keeps 5-10 min
MIN_CACHEABLE_TOKENS: Final = 1024
_BATCH_WORDS: Final = ("batch", "offline", "nightly", "backfill", "cron", "eval")
_OK_STATUSES: Final = frozenset({"ok", "success", "succeeded"})


@dataclass(frozen=True, slots=True)
class Recommendation:
    """One piece of advice, with the monthly saving and the evidence behind it."""

    kind: str
    message: str
    monthly_saving_nanos: Nanos
    evidence: Mapping[str, Any] = field(default_factory=dict)
    model: str | None = None
    task: str | None = None

    @property
    def monthly_saving_usd(self) -> float:
        """The estimated saving per month in US dollars."""
        return nanos_to_usd(self.monthly_saving_nanos)

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly form for the CLI and dashboard."""
        return {
            "kind": self.kind,
            "message": self.message,
            "monthly_saving_usd": self.monthly_saving_usd,
            "model": self.model,
            "task": self.task,
            "evidence": dict(self.evidence),
        }


@dataclass(slots=True)
class _Row:
    model: str
    provider: str | None
    usage: Usage
    cost: Nanos | None
    ts: datetime
    endpoint: str | None
    task: str | None
    request_id: str | None
    status: str
    tags: tuple[str, ...]
    meta: Mapping[str, Any]

    @property
    def group(self) -> str:
        return self.task or self.endpoint or "(unlabelled)"


@dataclass(slots=True)
class Advisor:
    """Runs the rules over one usage history (see module doc)."""

    prices: PriceCatalog
    catalogue: ModelCatalogue
    candidates: Sequence[Candidate]
    min_monthly_saving_nanos: Nanos = 10_000_000  # $0.01
    min_calls: int = 10
    trim_fraction: float = 0.25
    rows: list[_Row] = field(default_factory=list)
    unpriced: int = 0
    factor: tuple[int, int] = (1, 1)  # monthly = nanos * num // den

    # -- input -----------------------------------------------------------------------------
    def load(self, records: Iterable[Any]) -> None:
        """Read usage records into the advisor's rows, pricing each, and set the span that scales
        savings to a month.
        """
        for rec in records:
            meta = getattr(rec, "metadata", None) or {}
            usage = Usage(
                input_tokens=rec.input_tokens,
                output_tokens=rec.output_tokens,
                cache_read_tokens=getattr(rec, "cache_read_tokens", 0),
                cache_write_tokens=getattr(rec, "cache_write_tokens", 0),
                reasoning_tokens=getattr(rec, "reasoning_tokens", 0),
            )
            provider = getattr(rec, "provider", None)
            cost = rec.cost_nanos
            if cost is None:
                cost = self._price(rec.model, usage, provider)
            if cost is None:
                self.unpriced += 1
            task = task_or_none(meta.get("task")) if isinstance(meta.get("task"), str) else None
            endpoint = getattr(rec, "endpoint", None)
            self.rows.append(
                _Row(
                    model=rec.model,
                    provider=provider,
                    usage=usage,
                    cost=cost,
                    ts=rec.timestamp,
                    endpoint=endpoint,
                    task=task or task_or_none(endpoint),
                    request_id=getattr(rec, "request_id", None),
                    status=str(getattr(rec, "status", "ok") or "ok"),
                    tags=tuple(getattr(rec, "tags", ()) or ()),
                    meta=meta,
                )
            )
        if self.rows:
            first = min(r.ts for r in self.rows)
            last = max(r.ts for r in self.rows)
            span = max(MIN_SPAN_SECONDS, round((last - first).total_seconds()))
            self.factor = (MONTH_SECONDS, span)

    def _price(
        self, model: str, usage: Usage, provider: str | None = None, **kw: Any
    ) -> Nanos | None:
        try:
            return self.prices.cost_nanos(model, usage, provider=provider, **kw)
        except (UnknownModelError, NoTierPriceError):  # no price (or no batch price): no claim
            return None

    def monthly(self, nanos: Nanos) -> Nanos:
        """Scale an amount spent over the loaded history's span to one month (integer nano-USD)."""
        num, den = self.factor
        return nanos * num // den

    @property
    def span_days(self) -> float:
        """How many days of history the loaded records cover."""
        return self.factor[1] / 86_400

    # -- rules -------------------------------------------------------------------------------
    def run(self) -> list[Recommendation]:
        """Run every rule and return the recommendations, largest monthly saving first; all but the
        max_tokens advice must be worth the minimum monthly saving.
        """
        recs: list[Recommendation] = []
        for rule in (
            self.switch_model,
            self.prompt_caching,
            self.batch_api,
            self.trim_prompt,
            self.duplicates,
        ):
            recs.extend(
                r for r in rule() if r.monthly_saving_nanos >= self.min_monthly_saving_nanos
            )
        recs.extend(self.cap_max_tokens())
        recs.sort(key=lambda r: (-r.monthly_saving_nanos, r.kind, r.model or "", r.task or ""))
        return recs

    def _groups(self, rows: Iterable[_Row]) -> dict[tuple[str, str], list[_Row]]:
        groups: dict[tuple[str, str], list[_Row]] = defaultdict(list)
        for r in rows:
            groups[(r.model, r.group)].append(r)
        return groups

    def switch_model(self) -> list[Recommendation]:
        """Recommend a cheaper candidate model of comparable quality for a task's calls."""
        out: list[Recommendation] = []
        high = self.catalogue.levels.get("high", 80)
        for (model, label), rows in self._groups(
            r for r in self.rows if r.cost is not None
        ).items():
            info = self.catalogue.get(model)
            if info is None:
                continue
            task = rows[0].task
            tasks = [task] if task else list(TASKS)
            required = {t: min(info.quality[t], high) for t in tasks}
            needs = frozenset(
                str(c) for r in rows for c in (r.meta.get("requires") or ()) if isinstance(c, str)
            )
            biggest = max(r.usage.input_tokens + r.usage.output_tokens for r in rows)
            total = _sum_usage(rows)
            # Both sides priced by the same catalogue, so the difference is the model's alone.
            current = self._price(model, total, rows[0].provider)
            if current is None:
                current = sum(r.cost or 0 for r in rows)
            best: tuple[Nanos, Candidate] | None = None
            for cand in self.candidates:
                alt = cand.info
                if alt.id == info.id or not needs <= alt.capabilities:
                    continue
                if (alt.context_window or 0) < biggest:
                    continue
                if any(alt.quality[t] < required[t] for t in tasks):
                    continue
                cost = self._price(cand.name, total, cand.provider)
                if cost is None:
                    continue
                if best is None or cost < best[0]:
                    best = (cost, cand)
            if best is None or current - best[0] < current // 10:
                continue
            alt_cost, cand = best
            saving = self.monthly(current - alt_cost)
            scores = ", ".join(
                f"{t} {cand.info.quality[t]} vs {info.quality[t]}" for t in tasks[:3]
            )
            what = f"'{task}'" if task else f"'{label}' (task unknown: judged on every task)"
            now_cost, then_cost = format_compared(current, alt_cost)
            out.append(
                Recommendation(
                    kind="switch_model",
                    message=(
                        f"Move {what} calls from {model} to {cand.name} (quality {scores}; "
                        f"adequate = at least the current score, capped at {high}): saves "
                        f"~{format_usd(saving)}/month ({len(rows)} calls cost "
                        f"{now_cost}, {then_cost} on {cand.name}, over "
                        f"{self.span_days:.1f} days)."
                    ),
                    monthly_saving_nanos=saving,
                    evidence={
                        "calls": len(rows),
                        "current_cost_usd": nanos_to_usd(current),
                        "alternative_cost_usd": nanos_to_usd(alt_cost),
                        "alternative": cand.name,
                        "required_scores": required,
                        "alternative_scores": {t: cand.info.quality[t] for t in tasks},
                        "span_days": self.span_days,
                    },
                    model=model,
                    task=task,
                )
            )
        return out

    def prompt_caching(self) -> list[Recommendation]:
        """Recommend prompt caching where many calls share a long prompt prefix."""
        by_prefix: dict[tuple[str, str], list[_Row]] = defaultdict(list)
        for r in self.rows:
            h, n = r.meta.get("prefix_hash"), r.meta.get("prefix_tokens")
            if (
                isinstance(h, str)
                and isinstance(n, int)
                and not isinstance(n, bool)
                and n >= MIN_CACHEABLE_TOKENS
                and r.usage.cache_read_tokens == 0
            ):
                by_prefix[(r.model, h)].append(r)
        per_model: dict[str, list[tuple[str, int, int, Nanos]]] = defaultdict(list)
        for (model, h), rows in by_prefix.items():
            if len(rows) < 2:
                continue
            rows.sort(key=lambda r: r.ts)
            saving = 0
            reads = 0
            last: datetime | None = None
            for r in rows:
                prefix = min(int(r.meta["prefix_tokens"]), r.usage.input_tokens)
                plain = Usage(r.usage.input_tokens, r.usage.output_tokens)
                base = self._price(model, plain, r.provider)
                if base is None:
                    break
                if last is None or (r.ts - last).total_seconds() > CACHE_TTL_SECONDS:
                    written = Usage(
                        r.usage.input_tokens, r.usage.output_tokens, cache_write_tokens=prefix
                    )
                    saving -= (self._price(model, written, r.provider) or base) - base
                else:
                    read = Usage(
                        r.usage.input_tokens, r.usage.output_tokens, cache_read_tokens=prefix
                    )
                    saving += base - (self._price(model, read, r.provider) or base)
                    reads += 1
                last = r.ts
            if saving > 0:
                per_model[model].append((h, len(rows), reads, saving))
        out: list[Recommendation] = []
        for model, items in per_model.items():
            total = sum(s for *_, s in items)
            monthly = self.monthly(total)
            calls = sum(n for _, n, _, _ in items)
            reads = sum(k for _, _, k, _ in items)
            out.append(
                Recommendation(
                    kind="prompt_caching",
                    message=(
                        f"Enable prompt caching on {model}: {len(items)} long prefix(es) were "
                        f"sent {calls} times with no cache reads; {reads} calls would read the "
                        f"cache (5-minute TTL, cache writes charged): saves "
                        f"~{format_usd(monthly)}/month."
                    ),
                    monthly_saving_nanos=monthly,
                    evidence={
                        "prefixes": [
                            {
                                "prefix_hash": h,
                                "calls": n,
                                "cache_reads": k,
                                "saving_usd": nanos_to_usd(s),
                            }
                            for h, n, k, s in sorted(items, key=lambda i: -i[3])[:10]
                        ],
                        "span_days": self.span_days,
                    },
                    model=model,
                )
            )
        return out

    def cap_max_tokens(self) -> list[Recommendation]:
        """Recommend a max_tokens cap where calls ask for far more output than they use."""
        out: list[Recommendation] = []
        for (model, label), rows in self._groups(self.rows).items():
            limits = [r.meta.get("max_tokens") for r in rows]
            capped = [
                (r, lim)
                for r, lim in zip(rows, limits, strict=True)
                if isinstance(lim, int) and not isinstance(lim, bool) and lim > 0
            ]
            if len(capped) < self.min_calls:
                continue
            longest = max(r.usage.output_tokens for r, _ in capped)
            median_limit = sorted(lim for _, lim in capped)[len(capped) // 2]
            if longest * 4 > median_limit:
                continue
            cap = max(50, math.ceil(longest * 1.25 / 50) * 50)
            held_before = held_after = 0
            for r, lim in capped:
                before = self._price(model, Usage(r.usage.input_tokens, lim), r.provider)
                after = self._price(model, Usage(r.usage.input_tokens, min(cap, lim)), r.provider)
                if before is None or after is None:
                    break
                held_before += before
                held_after += after
            freed = self.monthly(held_before - held_after)
            out.append(
                Recommendation(
                    kind="cap_max_tokens",
                    message=(
                        f"Cap max_tokens at {cap} for {model} '{label}' calls: the longest of "
                        f"{len(capped)} outputs was {longest} tokens against max_tokens "
                        f"{median_limit}. Billed cost is unchanged ($0.00/month) but pre-call "
                        f"budget reservations shrink by ~{format_usd(freed)}/month and runaway "
                        "outputs are bounded."
                    ),
                    monthly_saving_nanos=0,
                    evidence={
                        "calls": len(capped),
                        "longest_output_tokens": longest,
                        "median_max_tokens": median_limit,
                        "suggested_max_tokens": cap,
                        "reservation_reduction_usd_per_month": nanos_to_usd(freed),
                    },
                    model=model,
                    task=rows[0].task,
                )
            )
        return out

    def _batchable(self, r: _Row) -> bool:
        if r.meta.get("latency_bound") is False or r.meta.get("batchable") is True:
            return True
        if r.meta.get("latency_bound") is True or r.meta.get("batchable") is False:
            return False
        words = [t.lower() for t in r.tags] + ([r.endpoint.lower()] if r.endpoint else [])
        return any(w in text for text in words for w in _BATCH_WORDS)

    def batch_api(self) -> list[Recommendation]:
        """Recommend the Batch API for calls that need no immediate answer (flagged in metadata, or
        tagged or named like batch work).
        """
        out: list[Recommendation] = []
        by_model: dict[tuple[str, str | None], list[_Row]] = defaultdict(list)
        for r in self.rows:
            if self._batchable(r):
                by_model[(r.model, r.provider)].append(r)
        for (model, provider), rows in by_model.items():
            total = _sum_usage(rows)
            standard = self._price(model, total, provider)
            batch = self._price(model, total, provider, batch=True)
            if standard is None or batch is None or batch >= standard:
                continue
            saving = self.monthly(standard - batch)
            out.append(
                Recommendation(
                    kind="batch_api",
                    message=(
                        f"Send the {len(rows)} not-latency-bound {model} calls through the batch "
                        f"API ({' -> '.join(format_compared(standard, batch))} over "
                        f"{self.span_days:.1f} days): saves ~{format_usd(saving)}/month."
                    ),
                    monthly_saving_nanos=saving,
                    evidence={
                        "calls": len(rows),
                        "standard_cost_usd": nanos_to_usd(standard),
                        "batch_cost_usd": nanos_to_usd(batch),
                        "endpoints": sorted({r.endpoint for r in rows if r.endpoint}),
                    },
                    model=model,
                )
            )
        return out

    def trim_prompt(self) -> list[Recommendation]:
        """Recommend trimming prompts where a task's input tokens dominate its cost."""
        out: list[Recommendation] = []
        for (model, label), rows in self._groups(self.rows).items():
            if len(rows) < self.min_calls:
                continue
            total = _sum_usage(rows)
            provider = rows[0].provider
            full = self._price(model, total, provider)
            output_only = self._price(model, Usage(0, total.output_tokens), provider)
            if not full or output_only is None:
                continue
            input_cost = full - output_only
            avg_in = total.input_tokens // len(rows)
            if input_cost * 5 < full * 4 or avg_in < 2000:
                continue
            uncached = total.input_tokens - total.cache_read_tokens - total.cache_write_tokens
            cut = int(uncached * self.trim_fraction)
            trimmed = Usage(
                total.input_tokens - cut,
                total.output_tokens,
                cache_read_tokens=total.cache_read_tokens,
                cache_write_tokens=total.cache_write_tokens,
            )
            after = self._price(model, trimmed, provider)
            if after is None:
                continue
            saving = self.monthly(full - after)
            out.append(
                Recommendation(
                    kind="trim_prompt",
                    message=(
                        f"Trim the prompts of {model} '{label}': input is "
                        f"{input_cost * 100 // full}% of its cost (avg {avg_in} input vs "
                        f"{total.output_tokens // len(rows)} output tokens over {len(rows)} "
                        f"calls); cutting {int(self.trim_fraction * 100)}% of the uncached input "
                        f"saves ~{format_usd(saving)}/month."
                    ),
                    monthly_saving_nanos=saving,
                    evidence={
                        "calls": len(rows),
                        "input_share": input_cost / full,
                        "avg_input_tokens": avg_in,
                        "trim_fraction": self.trim_fraction,
                    },
                    model=model,
                    task=rows[0].task,
                )
            )
        return out

    def duplicates(self) -> list[Recommendation]:
        """Find calls repeated with the same request id or the same prompt hash, which a cache or a
        retry fix would save.
        """
        out: list[Recommendation] = []
        by_id: dict[str, list[_Row]] = defaultdict(list)
        by_prompt: dict[tuple[str, str], list[_Row]] = defaultdict(list)
        for r in self.rows:
            if r.request_id:
                by_id[r.request_id].append(r)
            h = r.meta.get("prompt_hash")
            if isinstance(h, str) and h:
                by_prompt[(r.model, h)].append(r)
        repeated_ids = {k: v for k, v in by_id.items() if len(v) > 1}
        if repeated_ids:
            extra = sum(r.cost or 0 for rows in repeated_ids.values() for r in _after_first(rows))
            failed = sum(
                1 for rows in repeated_ids.values() for r in rows if r.status not in _OK_STATUSES
            )
            saving = self.monthly(extra)
            n_extra = sum(len(v) - 1 for v in repeated_ids.values())
            out.append(
                Recommendation(
                    kind="retries",
                    message=(
                        f"{len(repeated_ids)} request id(s) were recorded {n_extra} extra "
                        f"time(s) ({failed} of those rows failed): retries or double recording "
                        f"cost {format_usd(extra)}; make retries idempotent or record once: saves "
                        f"~{format_usd(saving)}/month."
                    ),
                    monthly_saving_nanos=saving,
                    evidence={
                        "request_ids": sorted(repeated_ids)[:20],
                        "extra_rows": n_extra,
                        "failed_rows": failed,
                        "extra_cost_usd": nanos_to_usd(extra),
                    },
                )
            )
        repeated = {k: v for k, v in by_prompt.items() if len(v) > 1}
        if repeated:
            extra = sum(r.cost or 0 for rows in repeated.values() for r in _after_first(rows))
            saving = self.monthly(extra)
            n_extra = sum(len(v) - 1 for v in repeated.values())
            top = sorted(repeated.items(), key=lambda kv: -len(kv[1]))[:10]
            out.append(
                Recommendation(
                    kind="duplicates",
                    message=(
                        f"{len(repeated)} identical prompt(s) were sent {n_extra} extra time(s) "
                        f"(same model and prompt hash), costing {format_usd(extra)}; a response "
                        f"cache would answer them: saves ~{format_usd(saving)}/month."
                    ),
                    monthly_saving_nanos=saving,
                    evidence={
                        "prompts": [
                            {"model": m, "prompt_hash": h, "calls": len(v)} for (m, h), v in top
                        ],
                        "extra_calls": n_extra,
                        "extra_cost_usd": nanos_to_usd(extra),
                    },
                )
            )
        return out


def _after_first(rows: list[_Row]) -> list[_Row]:
    return sorted(rows, key=lambda r: r.ts)[1:]


def _sum_usage(rows: Iterable[_Row]) -> Usage:
    i = o = cr = cw = rs = 0
    for r in rows:
        u = r.usage
        i += u.input_tokens
        o += u.output_tokens
        cr += u.cache_read_tokens
        cw += u.cache_write_tokens
        rs += u.reasoning_tokens
    return Usage(i, o, cache_read_tokens=cr, cache_write_tokens=cw, reasoning_tokens=rs)
