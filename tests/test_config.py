"""costwarden.toml: every section parsed, search order, errors that name the key, and a
manager built from the file that enforces what it says (real SQLite files)."""

from __future__ import annotations

import textwrap
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costwarden.budget import Scope
from costwarden.config import (
    DEFAULT_LEDGER,
    MAX_DEPTH,
    NO_LIMITS,
    Config,
    discover_config,
    load_config,
)
from costwarden.errors import BudgetExceededError, ConfigurationError
from costwarden.money import decimal_to_nanos
from costwarden.records import UsageRecord

FULL = """
ledger = "sqlite:///spend.db"
hold_ttl = 120
fail_open = true

[budget]
daily_limit = 10
weekly_limit = "50.25"
monthly_limit = 200.0
per_request_limit = 0.5
timezone = "Europe/Paris"
alert_thresholds = [0.25, 0.9, 1.0]
rolling = { "1h" = 2.0, "90m" = 2.5, "600" = 1 }

[budgets.user.alice]
daily_limit = 0.10

[budgets.team.eng]
monthly_limit = 30
timezone = "America/New_York"

[budgets.key.sk-test]
per_request_limit = 0.01

[budgets.tag."/chat"]
daily_limit = 1

[budgets.model."gpt-4o"]
daily_limit = 3

[default_budgets.user]
daily_limit = 1.0
alert_threshold = 0.7

[default_budgets.team]
monthly_limit = 100

[prices]
"my-llm" = { input = 0.2, output = 0.6, cache_read = 0.1 }

[alerts]
max_attempts = 3
[[alerts.channels]]
type = "log"
name = "to-log"

[gateway]
port = 4000
"""


def write(tmp_path: Path, text: str, name: str = "costwarden.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_every_section_is_parsed(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, FULL), environ={})
    assert cfg.path == tmp_path / "costwarden.toml"
    assert cfg.ledger == f"sqlite:///{(tmp_path / 'spend.db').resolve()}"
    assert cfg.ledger_source == "config file"
    assert cfg.hold_ttl == 120.0 and cfg.fail_open is True
    b = cfg.budget
    assert (b.daily_limit, b.weekly_limit, b.monthly_limit, b.per_request_limit) == (
        10.0,
        50.25,
        200.0,
        0.5,
    )
    assert b.timezone == "Europe/Paris"
    assert b.thresholds() == (0.25, 0.9, 1.0)
    assert b.rolling_limits == {3600: 2.0, 5400: 2.5, 600: 1.0}
    assert b.limit_nanos("rolling:5400s") == 2_500_000_000
    assert set(cfg.budgets) == {
        Scope("user", "alice"),
        Scope("team", "eng"),
        Scope("key", "sk-test"),
        Scope("tag", "/chat"),
        Scope("model", "gpt-4o"),
    }
    alice = cfg.budgets[Scope("user", "alice")]
    assert alice.limit_nanos("daily") == 100_000_000
    assert alice.monthly_limit is None and alice.per_request_limit is None  # not written
    assert alice.timezone == "Europe/Paris"  # inherited from [budget]
    assert cfg.budgets[Scope("team", "eng")].timezone == "America/New_York"
    assert cfg.default_budgets["user"].daily_limit == 1.0
    assert cfg.default_budgets["user"].alert_threshold == 0.7
    assert cfg.default_budgets["team"].monthly_limit == 100.0
    assert cfg.prices is not None and set(cfg.prices) == {"my-llm"}
    assert cfg.alert_options == {"max_attempts": 3}
    assert [c.name for c in cfg.alert_channels()] == ["to-log"]
    assert cfg.sections == {"gateway": {"port": 4000}}


def test_defaults_without_a_file() -> None:
    cfg = load_config(None, environ={})
    assert cfg == Config()
    assert cfg.ledger == DEFAULT_LEDGER and cfg.ledger_source == "default"
    assert cfg.budget is NO_LIMITS and cfg.budget.periods() == ()
    assert cfg.budget.per_request_limit is None
    assert not cfg.budgets and not cfg.default_budgets and cfg.prices is None


def test_search_order(tmp_path: Path) -> None:
    here = write(tmp_path, 'ledger = "memory://here"')
    other = write(tmp_path, 'ledger = "memory://env"', "other.toml")
    explicit = write(tmp_path, 'ledger = "memory://explicit"', "explicit.toml")
    env = {"COSTWARDEN_CONFIG": str(other)}
    assert discover_config(explicit, environ=env, cwd=tmp_path).ledger == "memory://explicit"
    assert discover_config(None, environ=env, cwd=tmp_path).path == other
    assert discover_config(None, environ={}, cwd=tmp_path).path == here
    empty = tmp_path / "empty"
    empty.mkdir()
    assert discover_config(None, environ={}, cwd=empty).path is None
    # $COSTWARDEN_LEDGER wins over the file's ledger.
    cfg = discover_config(explicit, environ={"COSTWARDEN_LEDGER": "memory://x"}, cwd=tmp_path)
    assert (cfg.ledger, cfg.ledger_source) == ("memory://x", "$COSTWARDEN_LEDGER")
    with pytest.raises(ConfigurationError, match="from --config"):
        discover_config(tmp_path / "nope.toml", environ={}, cwd=tmp_path)
    with pytest.raises(ConfigurationError, match=r"\$COSTWARDEN_CONFIG"):
        discover_config(None, environ={"COSTWARDEN_CONFIG": str(tmp_path / "no")}, cwd=empty)


def test_ledger_from_a_named_environment_variable(tmp_path: Path) -> None:
    path = write(tmp_path, 'ledger_env = "MY_DB"')
    cfg = load_config(path, environ={"MY_DB": "memory://db"})
    assert (cfg.ledger, cfg.ledger_source) == ("memory://db", "$MY_DB")
    with pytest.raises(ConfigurationError, match=r"MY_DB.*not set"):
        load_config(path, environ={})


BAD = [
    ("bogus = 1", "unknown key(s) bogus"),
    ("[budget]\ndaily = 5", "budget: unknown key(s) daily"),
    ("[budget]\ndaily_limit = -1", "budget.daily_limit must not be negative"),
    ("[budget]\ndaily_limit = 'ten'", "budget.daily_limit is not a number"),
    ("[budget]\ndaily_limit = true", "budget.daily_limit must be a number of USD"),
    ("[budget]\ndaily_limit = nan", "budget.daily_limit must be a finite"),
    ("[budget]\ntimezone = 'Mars/Base'", "budget: unknown time zone 'Mars/Base'"),
    ("[budget]\ntimezone = 3", "budget.timezone must be an IANA name"),
    ("[budget]\nalert_threshold = 2", "budget: alert_threshold must be in (0, 1]"),
    ("[budget]\nalert_thresholds = 0.5", "budget.alert_thresholds must be a list"),
    ("[budget]\nalert_thresholds = [0.5, 'x']", "budget: alert_thresholds must be numbers"),
    ("[budget]\nrolling = { '7x' = 1 }", "budget.rolling: window '7x' must be a duration"),
    ("[budget]\nrolling = { '90s' = 1 }", "budget: rolling window 90s must be a whole number"),
    ("[budget]\nrolling = { '1h' = 1, '60m' = 2 }", "window '60m' is given twice"),
    ("[budget]\nrolling = 5", "budget.rolling must be a table"),
    ("[budget]\nrolling = { '367d' = 1 }", "budget: rolling window 31708800s is longer than"),
    ("[budget]\nrolling = { '99999999999999999999m' = 1 }", "is longer than 31622400s"),
    ("budget = 5", "budget must be a table"),
    ("[budgets.planet.mars]\ndaily_limit = 1", "budgets.planet: scope kind must be one of"),
    ("[budgets.user]\nalice = 5", "budgets.user.alice must be a table"),
    ("[budgets.user.alice]\nmonthly = 5", "budgets.user.alice: unknown key(s) monthly"),
    ("[budgets.user.bob]\ndaily_limit = -2", "budgets.user.bob.daily_limit must not be neg"),
    ("[budgets.user.'']\ndaily_limit = 1", "a user name must not be empty"),
    ("[default_budgets.galaxy]\ndaily_limit = 1", "default_budgets.galaxy: scope kind"),
    ("[default_budgets.user]\ndaily_limit = 'x'", "default_budgets.user.daily_limit is not"),
    ("[prices]\nm = { input = 1 }", "[prices]: custom price for model 'm' is missing key 'output'"),
    ("[prices]\nm = { input = 1, ouput = 2 }", "unknown key(s) ouput"),
    ("prices_file = 'p.toml'\n[prices]\nm = { input = 1, output = 1 }", "not both"),
    ("prices_file = 'missing.toml'", "cannot read price file"),
    ("prices_file = 3", "prices_file must be a path string"),
    ("ledger = 'postgresql://u:secret@db/cw'", "ledger: a URL with a password does not belong"),
    ("ledger = 'mysql://db'", "ledger URL from config file must be memory://"),
    ("ledger = 5", "ledger must be a URL string"),
    ("ledger = 'memory://'\nledger_env = 'X'", "give ledger or ledger_env, not both"),
    ("hold_ttl = 0", "hold_ttl must be a positive number"),
    ("hold_ttl = 'long'", "hold_ttl must be a positive number"),
    ("hold_ttl = inf", "hold_ttl must be finite"),
    ("hold_ttl = true", "hold_ttl must be a positive number"),
    ("x = " + "[" * 5000 + "]" * 5000, "nests arrays or tables too deeply to read"),
    ("[gateway]\nx = " + "{a=" * 5000 + "1" + "}" * 5000, "nests arrays or tables too deeply"),
    ("[gateway]\nx = " + "[" * 40 + "]" * 40, "gateway.x[0][0]"),
    ("gateway." + ".".join(["a"] * 5000) + " = 1", "levels deep; flatten it"),
    ("fail_open = 'yes'", "fail_open must be true or false"),
    ("[alerts]\nretries = 3", "alerts: unknown keys ['retries']"),
    ("[alerts]\nmax_attempts = 'x'", "alerts.max_attempts must be a positive integer"),
    ("[alerts]\nchannels = 5", "alerts.channels must be an array"),
    ("alerts = 5", "alerts must be a table"),
    ("ledger = ", "is not valid TOML"),
]


@pytest.mark.parametrize(("text", "message"), BAD, ids=[m for _, m in BAD])
def test_bad_values_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigurationError) as info:
        load_config(path, environ={})
    assert message in str(info.value)
    assert str(path) in str(info.value)  # which file, too


def test_nesting_up_to_the_bound_is_read(tmp_path: Path) -> None:
    """MAX_DEPTH levels of tables are fine (the [gateway] table is kept as it is)."""
    keys = ".".join(["a"] * (MAX_DEPTH - 1))
    config = load_config(write(tmp_path, f"gateway.{keys} = 1"), environ={})
    assert "gateway" in config.sections


def test_secrets_only_from_the_environment(tmp_path: Path) -> None:
    literal = write(
        tmp_path,
        """
        [[alerts.channels]]
        type = "slack"
        webhook_url = "https://hooks.slack.com/services/T/B/X"
        """,
    )
    with pytest.raises(ConfigurationError, match="webhook_url_env"):
        load_config(literal, environ={})  # found at load, before any secret is read
    by_env = write(
        tmp_path,
        """
        ledger = "memory://"
        [[alerts.channels]]
        type = "slack"
        webhook_url_env = "SLACK_URL"
        """,
        "env.toml",
    )
    cfg = load_config(by_env, environ={})
    with pytest.raises(ConfigurationError, match="SLACK_URL"):
        cfg.build_manager(environ={})
    # Read-only tools build the manager without channels, and so without the secret.
    cfg.build_manager(alerts=False, environ={}).close()
    url = "https://hooks.slack.com/services/T000/B000/XXXX"
    manager = cfg.build_manager(environ={"SLACK_URL": url})
    try:
        assert manager.alerts is not None
    finally:
        manager.close()


def test_manager_from_the_file_enforces_its_budgets_and_prices(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        ledger = "sqlite:///ledger.db"
        [budget]
        daily_limit = 5
        [budgets.user.alice]
        daily_limit = 0.10
        [default_budgets.user]
        daily_limit = 0.03
        [prices]
        "my-llm" = { input = 2.0, output = 4.0 }
        """,
    )
    cfg = load_config(path, environ={})
    with cfg.build_manager(alerts=False) as manager:
        assert manager.ledger.url == cfg.ledger
        assert (tmp_path / "ledger.db").exists()
        # A custom price from [prices]: 10k in + 5k out = $0.02 + $0.02.
        stored = manager.record_spend(UsageRecord("my-llm", 10_000, 5_000, user_id="alice"))
        assert stored.cost_nanos == 40_000_000 and stored.price_source == "catalogue"
        assert manager.can_spend(0.06, user="alice")
        assert not manager.can_spend(0.061, user="alice")  # exactly $0.10 is the limit
        with pytest.raises(BudgetExceededError) as denied:
            manager.reserve(0.07, user="alice")
        assert denied.value.scope == "user:alice"
        # Bob has no budget of his own: the default user budget applies.
        assert manager.can_spend(0.03, user="bob") and not manager.can_spend(0.031, user="bob")
        assert manager.get_status(user="bob")["daily_limit"] == 0.03
        assert manager.get_status()["daily_limit"] == 5.0
        assert manager.get_status()["monthly_limit"] is None  # not written: not enforced


def test_relative_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "prices.toml").write_text('"m" = { input = 1, output = 2 }\n')
    path = write(
        tmp_path / "conf", 'ledger = "sqlite:///data/x.db?timeout=5"\nprices_file = "prices.toml"'
    )
    cfg = load_config(path, environ={})
    assert cfg.ledger == f"sqlite:///{(tmp_path / 'conf' / 'data' / 'x.db').resolve()}?timeout=5"
    assert cfg.prices_file == tmp_path / "conf" / "prices.toml"
    assert cfg.build_catalog().resolve("m").output == Decimal(2)
    absolute = write(tmp_path, f'ledger = "sqlite:///{tmp_path}/abs.db"', "abs.toml")
    assert load_config(absolute, environ={}).ledger == f"sqlite:///{tmp_path}/abs.db"


amounts = st.decimals(
    min_value=Decimal(0), max_value=Decimal(10**6), places=9, allow_nan=False
).map(lambda d: d.normalize())


@settings(max_examples=200, deadline=None)
@given(amount=amounts, as_string=st.booleans())
def test_limits_are_exact_to_the_nano_dollar(
    tmp_path_factory: pytest.TempPathFactory, amount: Decimal, as_string: bool
) -> None:
    literal = f'"{amount:f}"' if as_string else f"{amount:f}"
    if not as_string and "." not in literal:
        literal += ".0"
    path = write(tmp_path_factory.mktemp("c"), f"[budget]\ndaily_limit = {literal}")
    cfg = load_config(path, environ={})
    assert cfg.budget.limit_nanos("daily") == decimal_to_nanos(amount)
