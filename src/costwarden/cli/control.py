"""Commands on the ledger's control plane: ``budgets set/list/rm``, ``keys create/list/rotate/
revoke`` and ``audit``.

They call the control plane (``costwarden.ledger.control``) and the key lifecycle
(``costwarden.keys``) directly, never a manager: a budget or key written here is ledger data
that every process enforces from its next admission on (docs/storage.md states how soon).
Each change is recorded in the audit log under the actor ``cli:<os user>@<host>``. Bad input
is a usage error (exit 2) or a costwarden error (exit 1), checked before anything is written.
"""

from __future__ import annotations

import dataclasses
import getpass
import re
import socket
import time
from datetime import datetime, timedelta
from typing import Annotated, Any, Final

import typer
from rich.table import Table

from costwarden.budget import Budget, Scope, get_zone
from costwarden.budget_sources import LEDGER, SourcedBudget, in_force, merge
from costwarden.cli.base import (
    JsonOpt,
    State,
    app,
    budget_cells,
    command_group,
    fail,
    handles_errors,
    local_time,
    money,
    print_json,
    print_table,
    state,
)
from costwarden.cli.options import (
    ALL_TIME,
    OptionGroup,
    ScopeNames,
    TimeRange,
    option_groups,
)
from costwarden.control import DEFAULT_KINDS, DEFAULT_PREFIX, VirtualKey, budget_to_dict
from costwarden.errors import CostwardenError
from costwarden.keys import ControlLedger
from costwarden.money import nanos_to_usd, usd_to_nanos

SECRET_WARNING = (
    "Store this secret now: it is shown this once and cannot be shown again "
    "(the ledger keeps only its hash)."
)


def cli_actor() -> str:
    """``cli:<os user>@<host>``: who the audit log says made a change from this command."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name (a container without a passwd entry)
        user = "unknown"
    return f"cli:{user}@{socket.gethostname() or 'unknown-host'}"[:200]


def _ledger(st: State, *, write: bool) -> ControlLedger:
    ledger: ControlLedger = st.ledger(create=write)  # type: ignore[assignment]
    return ledger


# -- budget options ------------------------------------------------------------------------------
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _usd(text: str | None, option: str) -> float | None:
    if text is None:
        return None
    try:
        return nanos_to_usd(usd_to_nanos(text.strip().lstrip("$"), field=option))
    except CostwardenError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


def _rolling(values: list[str]) -> dict[int, float] | None:
    out: dict[int, float] = {}
    for value in values:
        window, sep, usd = value.partition("=")
        match = _DURATION.match(window)
        if not sep or match is None:
            raise typer.BadParameter(
                f"{value!r}: write SECONDS=USD, e.g. 3600=2.00 (or 60m=2.00, 1h=2.00)",
                param_hint="--rolling",
            )
        seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        if seconds in out:
            raise typer.BadParameter(f"window {window!r} is given twice", param_hint="--rolling")
        limit = _usd(usd, "--rolling")
        assert limit is not None
        out[seconds] = limit
    return out or None


def _thresholds(text: str | None) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise typer.BadParameter(
            f"{text!r}: write fractions separated by commas, e.g. 0.5,0.8,1.0",
            param_hint="--thresholds",
        ) from None


@dataclasses.dataclass(frozen=True)
class BudgetLimits(OptionGroup):
    """The limit options of ``budgets set`` and ``keys create`` (None: not given)."""

    daily: Annotated[str | None, typer.Option("--daily", help="Daily limit in USD.")] = None
    weekly: Annotated[str | None, typer.Option("--weekly", help="ISO-week limit in USD.")] = None
    monthly: Annotated[str | None, typer.Option("--monthly", help="Monthly limit in USD.")] = None
    per_request: Annotated[
        str | None, typer.Option("--per-request", help="Most one request may cost, USD.")
    ] = None
    rolling: Annotated[
        list[str] | None,
        typer.Option("--rolling", help="SECONDS=USD, a rolling window (repeatable): 3600=2.00."),
    ] = None
    timezone: Annotated[
        str | None, typer.Option("--timezone", help="IANA zone of the periods (default UTC).")
    ] = None
    thresholds: Annotated[
        str | None, typer.Option("--thresholds", help="Alert thresholds, e.g. 0.5,0.8,1.0.")
    ] = None

    def budget(self) -> Budget | None:
        """The budget the options describe (a typed error for a bad one); None when no limit
        option was given."""
        limits = {
            "daily_limit": _usd(self.daily, "--daily"),
            "weekly_limit": _usd(self.weekly, "--weekly"),
            "monthly_limit": _usd(self.monthly, "--monthly"),
            "per_request_limit": _usd(self.per_request, "--per-request"),
        }
        windows = _rolling(self.rolling or [])
        if all(v is None for v in limits.values()) and windows is None:
            return None
        return Budget(
            limits["daily_limit"],
            limits["monthly_limit"],
            limits["per_request_limit"],
            weekly_limit=limits["weekly_limit"],
            rolling_limits=windows,
            timezone=self.timezone or "UTC",
            alert_thresholds=_thresholds(self.thresholds),
        )


_NO_LIMITS: Final = BudgetLimits()


def describe(budget: Budget) -> str:
    """``daily $1.00, per request $0.10, rolling 60m $2.00 (UTC)``: one line per budget."""
    parts = [
        f"{name} {money(budget.limit_nanos(period))}"
        for name, period in (("daily", "daily"), ("weekly", "weekly"), ("monthly", "monthly"))
        if budget.limit_nanos(period) is not None
    ]
    if budget.per_request_nanos is not None:
        parts.append(f"per request {money(budget.per_request_nanos)}")
    for secs in sorted(budget.rolling_limits or {}):
        parts.append(f"rolling {secs // 60}m {money(budget.limit_nanos(f'rolling:{secs}s'))}")
    return f"{', '.join(parts) or 'no limits'} ({budget.timezone})"


@dataclasses.dataclass(frozen=True)
class BudgetScope(ScopeNames):
    """Whose budget ``budgets set`` and ``budgets rm`` mean: one scope, or with ``--default-for``
    the default budget of a kind of scope."""

    default_for: Annotated[
        str | None,
        typer.Option(
            "--default-for", help="The default budget of every user/team/key/tag/model without one."
        ),
    ] = None

    def scope(self) -> str:
        """The scope string the options name: ``global``, ``user:alice`` or ``default:user``."""
        _, scope = self.one()
        if self.default_for is None:
            return scope
        if scope != "global":
            raise typer.BadParameter("--default-for names a kind of scope: name no scope with it")
        if self.default_for not in DEFAULT_KINDS:
            raise typer.BadParameter(
                f"{self.default_for!r}: a default budget is for one of {', '.join(DEFAULT_KINDS)}",
                param_hint="--default-for",
            )
        return DEFAULT_PREFIX + self.default_for


_GLOBAL: Final = BudgetScope()


def sourced_budgets(st: State, ledger: ControlLedger) -> dict[str, SourcedBudget]:
    """Every budget in force: the ledger's, and the config file's where the ledger has none
    for the scope (docs/budgets.md, "Where budgets come from")."""
    cfg = st.config
    return merge(ledger.budgets(), cfg.budget_table(), cfg.budget_source)


budgets_app = command_group(
    "budgets", "Budgets stored in the ledger (enforced by every process on it)."
)


@budgets_app.command("set")
@handles_errors
@option_groups
def budgets_set(
    ctx: typer.Context,
    target: BudgetScope = _GLOBAL,
    limits: BudgetLimits = _NO_LIMITS,
    unlimited: Annotated[
        bool,
        typer.Option("--unlimited", help="No limit at all (exempts a scope from a default)."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Store the budget of one scope (default: global) in the ledger, replacing its old one."""
    scope = target.scope()
    budget = limits.budget()
    if budget is None and not unlimited:
        raise typer.BadParameter(
            "give at least one limit (--daily, --weekly, --monthly, --per-request, --rolling), "
            "or --unlimited for a budget that limits nothing"
        )
    if budget is not None and unlimited:
        raise typer.BadParameter("--unlimited takes no limit options")
    if budget is None:
        budget = Budget(None, None, None, timezone=limits.timezone or "UTC")
    st = state(ctx)
    ledger = _ledger(st, write=True)
    old = ledger.control_snapshot().get(scope)
    stored = ledger.put_budget(scope, budget, actor=cli_actor(), now=time.time())
    local = st.config.budget_table().get(scope)
    if as_json:
        print_json(
            {
                "scope": scope,
                "version": stored.version,
                "actor": stored.actor,
                "budget": budget_to_dict(stored.budget),
                "old": None if old is None else budget_to_dict(old.budget),
                "hides": None if local is None else st.config.budget_source,
            }
        )
        return
    typer.echo(f"Set the budget of {scope} in the ledger: {describe(stored.budget)}.")
    if old is not None:
        typer.echo(f"  it replaces {describe(old.budget)}")
    if local is not None:
        typer.echo(f"  it takes the place of {st.config.budget_source}'s budget for {scope}")
    typer.echo("Every process on this ledger enforces it from its next admission on.")


@budgets_app.command("list")
@handles_errors
def budgets_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Every budget in force and its source: the ledger, or the config file where the
    ledger has none for the scope."""
    st = state(ctx)
    table_in_force = sourced_budgets(st, _ledger(st, write=False))
    if as_json:
        print_json([b.as_dict() for b in table_in_force.values()])
        return
    if not table_in_force:
        typer.echo("No budgets: spend is tracked, nothing is limited.")
        return
    zone = st.config.timezone
    table = Table(title=f"Budgets ({len(table_in_force)}, times in {zone})")
    for name in ("Scope", "Daily", "Weekly", "Monthly", "Per request", "Rolling", "Zone"):
        table.add_column(name, justify="left" if name in ("Scope", "Rolling", "Zone") else "right")
    table.add_column("Source")
    table.add_column("Updated")
    for sb in table_in_force.values():
        b = sb.budget
        source = sb.source + (f" (over {sb.hides})" if sb.hides else "")
        updated = (
            "-"
            if sb.stored is None
            else f"{local_time(sb.stored.updated_at, zone)} by {sb.stored.actor}"
        )
        table.add_row(
            sb.scope,
            *budget_cells(b),
            source,
            updated,
        )
    print_table(table)


@budgets_app.command("rm")
@handles_errors
@option_groups
def budgets_rm(ctx: typer.Context, target: BudgetScope = _GLOBAL, as_json: JsonOpt = False) -> None:
    """Remove the ledger's budget of one scope (default: global)."""
    scope = target.scope()
    st = state(ctx)
    ledger = _ledger(st, write=False)
    local = st.config.budget_table().get(scope)
    removed = ledger.remove_budget(scope, actor=cli_actor(), now=time.time())
    if removed is None:
        where = (
            f"; its budget comes from {st.config.budget_source}: edit that file"
            if local is not None
            else ""
        )
        raise fail(f"the ledger has no budget for {scope}{where}")
    in_table = sourced_budgets(st, ledger)
    after = in_table.get(scope)
    if after is None and not scope.startswith(DEFAULT_PREFIX):
        after = in_force(in_table, Scope.parse(scope))  # a default of its kind, if any
    if as_json:
        print_json(
            {
                "scope": scope,
                "removed": budget_to_dict(removed.budget),
                "now_in_force": None if after is None else after.as_dict(),
            }
        )
        return
    typer.echo(f"Removed the ledger's budget of {scope} ({describe(removed.budget)}).")
    if after is not None:
        typer.echo(f"  now in force for it: {describe(after.budget)} from {after.source}")
    else:
        typer.echo("  no budget applies to it now")


# -- keys ----------------------------------------------------------------------------------------
keys_app = command_group(
    "keys", "Virtual keys in the ledger: secrets shown once, stored as hashes."
)

_AGE = re.compile(r"^(\d+)\s*([mhdw])$")
_AGE_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def _future(text: str | None, zone: str, option: str) -> float | None:
    """``--expires``/``--grace``: a span from now (``90d``, ``12h``, ``30m``, ``2w``) or a
    date/time (``2027-01-31``, ``2027-01-31T18:00``, local to ``zone`` without an offset)."""
    if text is None:
        return None
    value = text.strip().lower()
    if m := _AGE.match(value):
        return time.time() + timedelta(**{_AGE_UNITS[m.group(2)]: int(m.group(1))}).total_seconds()
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(
            f"{text!r}: write a span such as 90d, 12h, 2w or a date such as 2027-01-31",
            param_hint=option,
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=get_zone(zone))
    return parsed.timestamp()


def _span(text: str, option: str) -> float:
    value = text.strip().lower()
    if value == "0":
        return 0.0
    m = _AGE.match(value)
    if m is None:
        raise typer.BadParameter(
            f"{text!r}: write 0 or a span such as 24h, 30m, 7d", param_hint=option
        )
    return timedelta(**{_AGE_UNITS[m.group(2)]: int(m.group(1))}).total_seconds()


def _metadata(values: list[str]) -> dict[str, str] | None:
    out: dict[str, str] = {}
    for value in values:
        name, sep, text = value.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"{value!r}: write KEY=VALUE", param_hint="--metadata")
        if name in out:
            raise typer.BadParameter(f"{name!r} is given twice", param_hint="--metadata")
        out[name] = text
    return out or None


def _models(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    models = [m.strip() for v in values for m in v.split(",")]
    if not all(models):
        raise typer.BadParameter("an empty model name", param_hint="--models")
    return models


def key_status(key: VirtualKey, now: float) -> str:
    """A key's state at ``now`` for the key listing: revoked, expired, active, or active with its
    old secret still in grace."""
    if key.revoked_at is not None and key.revoked_at <= now:
        return "revoked"
    if key.expires_at is not None and now >= key.expires_at:
        return "expired"
    if key.grace_until is not None and now < key.grace_until:
        return "active (old secret in grace)"
    return "active"


def _key_dict(key: VirtualKey, now: float) -> dict[str, Any]:
    return {**key.as_dict(), "status": key_status(key, now)}


def _show_secret(key: VirtualKey, secret: str, now: float, done: str, as_json: bool) -> None:
    """Show a key's new secret, this once, with the warning to store it: in the JSON document,
    or after the line ``done`` (the warning on stderr)."""
    if as_json:
        print_json({"key": _key_dict(key, now), "secret": secret, "warning": SECRET_WARNING})
        return
    typer.echo(done)
    typer.echo(f"secret: {secret}")
    typer.echo(SECRET_WARNING, err=True)


@keys_app.command("create")
@handles_errors
@option_groups
def keys_create(
    ctx: typer.Context,
    user: Annotated[str | None, typer.Option("--user", "-u", help="Its spend counts for.")] = None,
    team: Annotated[str | None, typer.Option("--team", "-t", help="Its spend counts for.")] = None,
    limits: BudgetLimits = _NO_LIMITS,
    models: Annotated[
        list[str] | None,
        typer.Option("--models", help="Allowed models, comma-separated (default: all)."),
    ] = None,
    rpm: Annotated[int | None, typer.Option("--rpm", min=1, help="Requests per minute.")] = None,
    tpm: Annotated[int | None, typer.Option("--tpm", min=1, help="Tokens per minute.")] = None,
    expires: Annotated[
        str | None, typer.Option("--expires", help="90d, 12h, 2w or a date: 2027-01-31.")
    ] = None,
    metadata: Annotated[
        list[str] | None, typer.Option("--metadata", help="KEY=VALUE (repeatable).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a virtual key; its secret is printed this once."""
    from costwarden.keys import create_key

    budget = limits.budget()
    st = state(ctx)
    at = time.time()
    expires_at = _future(expires, st.config.timezone, "--expires")
    if expires_at is not None and expires_at <= at:
        raise typer.BadParameter(f"{expires!r} is not in the future", param_hint="--expires")
    meta = _metadata(metadata or [])
    allowed = _models(models)
    ledger = _ledger(st, write=True)
    key, secret = create_key(
        ledger,
        user=user,
        team=team,
        budget=budget,
        models=allowed,
        rpm=rpm,
        tpm=tpm,
        expires=expires_at,
        metadata=meta,
        actor=cli_actor(),
        now=at,
    )
    _show_secret(key, secret, at, f"Created key {key.key_id} (scope {key.scope}).", as_json)
    if budget is not None and not as_json:
        typer.echo(f"budget: {describe(budget)}")


@keys_app.command("list")
@handles_errors
def keys_list(
    ctx: typer.Context,
    active: Annotated[bool, typer.Option("--active", help="Hide revoked, expired keys.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Every key (never a secret): id, prefix, owner, budget, limits, status."""
    from costwarden.keys import list_keys

    st = state(ctx)
    now = time.time()
    keys = list_keys(_ledger(st, write=False))
    if active:
        keys = [k for k in keys if key_status(k, now).startswith("active")]
    if as_json:
        print_json([_key_dict(k, now) for k in keys])
        return
    zone = st.config.timezone
    table = Table(title=f"Virtual keys ({len(keys)}, times in {zone})")
    for name in ("Id", "Prefix", "User", "Team", "Budget", "Models", "RPM", "TPM", "Expires"):
        table.add_column(name, justify="right" if name in ("RPM", "TPM") else "left")
    table.add_column("Status")
    for k in keys:
        table.add_row(
            k.key_id,
            k.prefix + "…",
            k.user or "-",
            k.team or "-",
            "-" if k.budget is None else describe(k.budget),
            "all" if k.models is None else ", ".join(k.models),
            "-" if k.rpm is None else str(k.rpm),
            "-" if k.tpm is None else str(k.tpm),
            "-" if k.expires_at is None else local_time(k.expires_at, zone),
            key_status(k, now),
        )
    print_table(table)


@keys_app.command("rotate")
@handles_errors
def keys_rotate(
    ctx: typer.Context,
    key_id: Annotated[str, typer.Argument(help="The key's id (keys list shows it).")],
    grace: Annotated[
        str, typer.Option("--grace", help="How long the old secret stays valid: 24h, 0...")
    ] = "24h",
    as_json: JsonOpt = False,
) -> None:
    """Give a key a new secret (printed this once); the old one works for the grace period."""
    from costwarden.keys import rotate_key

    seconds = _span(grace, "--grace")
    st = state(ctx)
    key, secret = rotate_key(_ledger(st, write=False), key_id, grace=seconds, actor=cli_actor())
    now = time.time()
    _show_secret(key, secret, now, f"Rotated key {key.key_id}.", as_json)
    if as_json:
        return
    if key.grace_until is not None:
        typer.echo(
            f"The old secret ({key.previous_prefix}…) stays valid until "
            f"{local_time(key.grace_until, st.config.timezone)}."
        )
    else:
        typer.echo("The old secret no longer works.")


@keys_app.command("revoke")
@handles_errors
def keys_revoke(
    ctx: typer.Context,
    key_id: Annotated[str, typer.Argument(help="The key's id (keys list shows it).")],
    as_json: JsonOpt = False,
) -> None:
    """Revoke a key (every secret of it) for good; every process refuses it from now on."""
    from costwarden.keys import revoke_key

    key = revoke_key(_ledger(state(ctx), write=False), key_id, actor=cli_actor())
    if as_json:
        print_json(_key_dict(key, time.time()))
        return
    typer.echo(f"Revoked key {key.key_id} ({key.prefix}…); revocation is final.")


# -- audit ---------------------------------------------------------------------------------------
@app.command()
@handles_errors
@option_groups
def audit(
    ctx: typer.Context,
    span: TimeRange = ALL_TIME,
    target: Annotated[
        str | None, typer.Option("--target", help="Only this scope or key:<id>.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="Show the latest N.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Changes to budgets and keys, newest first: when, who, what, old and new values."""
    st = state(ctx)
    zone = st.config.timezone
    start, end = span.bounds(zone)
    events = _ledger(st, write=False).audit(
        since=None if start is None else start.timestamp(),
        until=None if end is None else end.timestamp(),
        target=target,
        limit=limit,
    )
    if as_json:
        print_json(
            [
                {
                    "id": e.id,
                    "at": e.at,
                    "actor": e.actor,
                    "action": e.action,
                    "target": e.target,
                    "old": e.old,
                    "new": e.new,
                }
                for e in events
            ]
        )
        return
    table = Table(title=f"Audit log ({len(events)}, times in {zone})")
    for name in ("Time", "Actor", "Action", "Target", "Change"):
        table.add_column(name)
    for e in events:
        table.add_row(local_time(e.at, zone), e.actor, e.action, e.target, _change(e.old, e.new))
    print_table(table)


def _change(old: dict[str, Any] | None, new: dict[str, Any] | None) -> str:
    """A short wording of what changed (``--json`` has the whole values)."""
    from costwarden.control import budget_from_dict

    def budget_of(value: dict[str, Any] | None) -> str:
        if value is None:
            return "none"
        try:
            return describe(budget_from_dict(value["budget"]))
        except (KeyError, TypeError, CostwardenError):
            return "?"

    if (old or new or {}).get("key_id") is not None:
        before, after = old or {}, new or {}
        changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        return "created" if old is None else ", ".join(changed) or "no change"
    return f"{budget_of(old)} -> {budget_of(new)}"


__all__ = ["LEDGER", "audit", "budgets_app", "cli_actor", "describe", "keys_app"]
