"""Small test helpers shared by several test modules."""

from __future__ import annotations

from typing import Protocol, TypeVar


class FakeClock:
    """A settable clock for the manager (epoch seconds), so period edges are testable."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class _Closable(Protocol):
    def close(self) -> None: ...


_C = TypeVar("_C", bound=_Closable)
_to_close: list[_Closable] = []


def close_after_test(thing: _C) -> _C:
    """Return ``thing`` (a sync SDK or tracked client: anything with ``close()``), to be closed
    when the running test ends (conftest's autouse ``_close_after_test`` fixture does it).

    For helpers that hand a test a client it uses inline (``client(m, up).chat(...)``): a client
    left to the garbage collector is collected in a cycle, where finalisers run in no fixed
    order, so a socket's "unclosed" warning can come before the SDK's own ``__del__`` closes it.
    """
    _to_close.append(thing)
    return thing


def close_what_tests_left() -> None:
    """Close what :func:`close_after_test` was given, newest first (called between tests)."""
    while _to_close:
        _to_close.pop().close()
