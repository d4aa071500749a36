"""Prometheus metrics in the text exposition format, written by hand.

Why not ``prometheus-client``: the gateway needs a handful of counters, one gauge and one
histogram, updated on every request; plain dict updates cost well under a microsecond and
add no dependency. The format written is the standard one (``# HELP``/``# TYPE``, ``_bucket``
with ``le``, ``_sum``, ``_count``), so any Prometheus scrapes it.

Each worker process has its own figures (labelled ``pid``); with ``--workers N`` a scrape of
the shared port reaches one worker, so scrape each worker (or sum over ``pid``) for a complete
view. Spend and denials are also in the ledger, which is the source of truth for money.
"""

from __future__ import annotations

import os
from collections import defaultdict
from typing import Final

LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def _labels(pairs: tuple[tuple[str, str], ...]) -> str:
    def esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return ",".join(f'{k}="{esc(v)}"' for k, v in pairs)


class Metrics:
    """The gateway's counters; :meth:`render` gives the text a scrape returns."""

    def __init__(self) -> None:
        self.pid = str(os.getpid())
        self.requests: defaultdict[tuple[tuple[str, str], ...], int] = defaultdict(int)
        self.denials: defaultdict[tuple[tuple[str, str], ...], int] = defaultdict(int)
        self.spend_nanos: defaultdict[tuple[tuple[str, str], ...], int] = defaultdict(int)
        self.holds_in_flight = 0
        self._latency: dict[str, list[float]] = {}

    def request(self, route: str, status: int) -> None:
        """Count a finished request by route and status."""
        self.requests[(("route", route), ("status", str(status)))] += 1

    def denial(self, reason: str) -> None:
        """Count a request refused with 429 (budget or rate limit) by its reason."""
        self.denials[(("reason", reason),)] += 1

    def spend(self, model: str, nanos: int) -> None:
        """Add a settled call's cost (nano-USD) to its model's spend counter."""
        if nanos:
            self.spend_nanos[(("model", model),)] += nanos

    def upstream_latency(self, upstream: str, seconds: float) -> None:
        """Add one upstream call's latency to that upstream's histogram."""
        row = self._latency.get(upstream)
        if row is None:
            row = self._latency[upstream] = [0.0] * (len(LATENCY_BUCKETS) + 2)
        for i, bound in enumerate(LATENCY_BUCKETS):
            if seconds <= bound:
                row[i] += 1
                break
        else:
            row[len(LATENCY_BUCKETS)] += 1  # only in +Inf
        row[-1] += seconds

    def render(self) -> bytes:
        """The counters in Prometheus text exposition format, labelled with this worker's pid."""
        pid = (("pid", self.pid),)
        out: list[str] = []

        def counter(
            name: str, help_: str, values: dict[tuple[tuple[str, str], ...], float]
        ) -> None:
            out.append(f"# HELP {name} {help_}")
            out.append(f"# TYPE {name} counter")
            for labels, value in sorted(values.items()):
                out.append(f"{name}{{{_labels(pid + labels)}}} {value:g}")

        counter(
            "costwarden_gateway_requests_total",
            "Requests answered, by route and status.",
            dict(self.requests),
        )
        counter(
            "costwarden_gateway_denials_total", "Requests denied, by reason.", dict(self.denials)
        )
        counter(
            "costwarden_gateway_spend_usd_total",
            "Spend recorded by this worker, in USD.",
            {k: v / 1e9 for k, v in self.spend_nanos.items()},
        )
        out.append("# HELP costwarden_gateway_holds_in_flight Budget holds not yet settled.")
        out.append("# TYPE costwarden_gateway_holds_in_flight gauge")
        out.append(f"costwarden_gateway_holds_in_flight{{{_labels(pid)}}} {self.holds_in_flight}")
        name = "costwarden_gateway_upstream_latency_seconds"
        out.append(f"# HELP {name} Time to the upstream's response headers.")
        out.append(f"# TYPE {name} histogram")
        for upstream, row in sorted(self._latency.items()):
            base = (*pid, ("upstream", upstream))
            total = 0.0
            for i, bound in enumerate(LATENCY_BUCKETS):
                total += row[i]
                out.append(f"{name}_bucket{{{_labels((*base, ('le', f'{bound:g}')))}}} {total:g}")
            total += row[len(LATENCY_BUCKETS)]
            out.append(f"{name}_bucket{{{_labels((*base, ('le', '+Inf')))}}} {total:g}")
            out.append(f"{name}_sum{{{_labels(base)}}} {row[-1]:g}")
            out.append(f"{name}_count{{{_labels(base)}}} {total:g}")
        return ("\n".join(out) + "\n").encode()


__all__ = ["Metrics"]
