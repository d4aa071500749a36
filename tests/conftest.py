"""Shared fixtures. Tests use real SQLite files in a temporary folder and, where marked, the
PostgreSQL server named by COSTWARDEN_TEST_POSTGRES_URL (see tests/pg.py)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from costwarden.budget import Budget
from costwarden.manager import BudgetManager
from costwarden.testing.fake_upstream import FakeUpstream
from tests.helpers import close_what_tests_left

# Hermetic prices: never a snapshot some earlier `costwarden prices update` left in ~/.cache.
os.environ["COSTWARDEN_PRICES_SNAPSHOT"] = str(
    Path(tempfile.gettempdir()) / f"costwarden-tests-no-snapshot-{os.getpid()}.json"
)


@pytest.fixture(autouse=True)
def _close_after_test() -> Iterator[None]:
    """Close the clients a test's helpers registered with ``tests.helpers.close_after_test``."""
    yield
    close_what_tests_left()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture(params=["memory", "sqlite"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return "memory://"
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture
def make_manager(ledger_url: str) -> Iterator[object]:
    made: list[BudgetManager] = []

    def make(budget: Budget | None = None, **kwargs: object) -> BudgetManager:
        m = BudgetManager(budget, ledger=kwargs.pop("ledger", ledger_url), **kwargs)  # type: ignore[arg-type]
        made.append(m)
        return m

    yield make
    for m in made:
        m.close()


# The fake provider on 127.0.0.1 (real wire formats): one server per test module (a module may
# override ``upstream``), and ``up`` resets it for each test (no queued replies or requests).


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as up:
        yield up


@pytest.fixture
def up(upstream: FakeUpstream) -> FakeUpstream:
    upstream.reset()
    return upstream
