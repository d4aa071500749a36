"""Small test helpers shared by several test modules."""

from __future__ import annotations


class FakeClock:
    """A settable clock for the manager (epoch seconds), so period edges are testable."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
