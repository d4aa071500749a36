"""Alert settings are checked when the manager is built (or the file loaded), not at the first
alert inside a commit; a stored record always settles its hold; a hold is committed once, on
every backend (memory, SQLite, PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from costwarden.budget import Budget
from costwarden.config import load_config
from costwarden.errors import ConfigurationError, HoldError
from costwarden.manager import BudgetManager
from costwarden.records import Alert, AlertLevel, UsageRecord
from tests.pg import temp_schema_url

BUDGET = Budget(daily_limit=1.0, monthly_limit=None, per_request_limit=None)


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def any_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "memory":
        yield "memory://"
    elif request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
    else:
        with temp_schema_url() as url:
            yield url


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"alert_options": {"max_attempts": 0}}, "max_attempts must be a positive integer"),
        ({"alert_options": {"base_delay": -1.0}}, "base_delay must be a positive number"),
        ({"alert_options": {"retries": 3}}, r"unknown alert option\(s\) \['retries'\]"),
        ({"alert_options": 5}, "alert_options must be a mapping"),
        ({"alert_channels": [object()]}, "object is not an alert channel"),
        ({"alert_channels": "slack"}, "alert_channels must be a list"),
    ],
)
def test_bad_alert_settings_fail_at_construction_and_touch_nothing(
    kwargs: dict[str, object], expected: str, tmp_path: Path
) -> None:
    db = tmp_path / "never.db"
    with pytest.raises(ConfigurationError, match=expected):
        BudgetManager(BUDGET, alert_handler=print, ledger=f"sqlite:///{db}", **kwargs)  # type: ignore[arg-type]
    assert not db.exists()  # checked before the ledger was opened
    with pytest.raises(ConfigurationError, match=expected):
        BudgetManager(BUDGET, ledger="memory://", **kwargs)  # type: ignore[arg-type]


def test_bad_alert_settings_in_the_file_fail_at_load(tmp_path: Path) -> None:
    path = tmp_path / "costwarden.toml"
    path.write_text("[alerts]\nmax_attempts = -1\n")
    with pytest.raises(ConfigurationError, match=r"alerts\.max_attempts must be a positive int"):
        load_config(path, environ={})
    path.write_text("[alerts]\ndigest_window = -0.5\n")
    with pytest.raises(ConfigurationError, match="digest_window must be 0 or more"):
        load_config(path, environ={})


def test_a_second_commit_of_the_same_record_stores_nothing(any_url: str) -> None:
    with BudgetManager(BUDGET, alert_handler=lambda lv, m: None, ledger=any_url) as m:
        hold = m.reserve(0.6)
        record = UsageRecord("gpt-4o", 10, 10, 0.6)
        first = hold.commit(record)
        again = hold.commit(record)  # a retry: the stored record, not a second one
        assert again == first and hold.record == first
        assert m.ledger.count_records() == 1
        assert m.get_status()["daily_spent"] == 0.6  # not $1.20 against $1.00
        with pytest.raises(HoldError, match=rf"already committed \(record #{first.id}\)"):
            m.commit(hold, UsageRecord("gpt-4o", 10, 10, 0.3))
        assert m.ledger.count_records() == 1
        released = m.reserve(0.1)
        released.release()
        with pytest.raises(HoldError, match="was released"):
            released.commit(UsageRecord("gpt-4o", 1, 1, 0.1))
        assert m.ledger.count_records() == 1
        assert m.get_status()["daily_reserved"] == 0.0


class _Flaky:
    """A channel that breaks after it was accepted (its ``scopes`` start to raise)."""

    name = "flaky"
    min_level = AlertLevel.INFO
    broken = False

    @property
    def scopes(self) -> frozenset[str] | None:
        if self.broken:
            raise RuntimeError("channel exploded")
        return None

    def send(self, alerts: Sequence[Alert]) -> None:
        raise RuntimeError("never reached")


def test_an_alert_failure_after_the_write_settles_the_hold(any_url: str) -> None:
    def broken_handler(level: AlertLevel, message: str) -> None:
        raise ValueError("handler bug")

    flaky = _Flaky()
    with BudgetManager(
        BUDGET, alert_handler=broken_handler, alert_channels=[flaky], ledger=any_url
    ) as m:
        flaky.broken = True
        hold = m.reserve(0.9)
        record = UsageRecord("gpt-4o", 10, 10, 0.9)
        stored = hold.commit(record)  # crosses 50% and 80%: both alerts fail
        assert hold.settled and hold.record == stored
        assert hold.commit(record) == stored and m.ledger.count_records() == 1
        status = m.get_status()
        assert (status["daily_spent"], status["daily_reserved"]) == (0.9, 0.0)
