"""What every command shares: the typer app, global options, error handling and output.

Exit codes: 0 ok; 1 a costwarden error (one line on stderr, no traceback); 2 a usage error
(typer/click's own); 141 (as if killed by SIGPIPE, quietly) when the reader of stdout went away,
as in ``costwarden records | head -1``. Read commands take ``--json`` and then print one JSON
document and nothing else on stdout, so scripts can pipe them into ``jq``.
"""

from __future__ import annotations

import functools
import json
import os
import re
import select
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from costwarden.budget import Budget, get_zone
from costwarden.config import Config, discover_config
from costwarden.errors import ConfigurationError, CostwardenError
from costwarden.money import Nanos, format_compared, format_usd, usd_to_nanos

if TYPE_CHECKING:
    from costwarden.ledger import Ledger
    from costwarden.manager import BudgetManager

app = typer.Typer(
    name="costwarden",
    help="Cost tracking and hard budget enforcement for LLM APIs: spend, budgets, reports.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def command_group(name: str, help: str, *, no_args_is_help: bool = True) -> typer.Typer:
    """A group of sub-commands (``costwarden <name> ...``), added to :data:`app`, with its
    settings (no shell completion, plain help text). A group that runs on its own
    (``no_args_is_help=False``) runs its callback when no sub-command is given."""
    group = typer.Typer(
        name=name,
        help=help,
        invoke_without_command=not no_args_is_help,
        no_args_is_help=no_args_is_help,
        add_completion=False,
        rich_markup_mode=None,
    )
    app.add_typer(group)
    return group


P = ParamSpec("P")
R = TypeVar("R")


class _Console(Console):
    """rich's console, ending like every other command when stdout's reader has gone (rich
    would exit with 1, the code of a costwarden error)."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise quiet_broken_pipe()


def console() -> Console:
    """A console on the current stdout (typer's test runner swaps it), markup off: names in
    the ledger such as ``[prod]`` must print as they are."""
    return _Console(file=sys.stdout, markup=False, highlight=False, emoji=False)


# -- state ---------------------------------------------------------------------------------------
@dataclass
class State:
    """Global options, the configuration and what was opened (closed when the command ends)."""

    config_path: Path | None = None
    ledger_url: str | None = None
    _config: Config | None = None
    _opened: list[Callable[[], None]] = field(default_factory=list)

    @property
    def config(self) -> Config:
        """The configuration: the file found (or named by --config), with --ledger overriding its
        ledger; read once per command.
        """
        if self._config is None:
            cfg = discover_config(self.config_path)
            if self.ledger_url is not None:
                cfg = cfg.with_ledger(self.ledger_url, "--ledger")
            self._config = cfg
        return self._config

    def _require_ledger(self) -> None:
        """Refuse to create an empty SQLite file by accident (a command run in the wrong
        folder would otherwise report "no spend" from a brand-new ledger)."""
        cfg = self.config
        if cfg.ledger.startswith("sqlite://"):
            from costwarden.ledger.sqlite import path_from_url

            path = Path(path_from_url(cfg.ledger))
            if not path.is_file():
                raise ConfigurationError(
                    f"no ledger at {path} (ledger {cfg.ledger} from {cfg.ledger_source}); run "
                    "from the folder that holds it, pass --ledger sqlite:///path.db or --config, "
                    "or set ledger in costwarden.toml"
                )

    def ledger(self, *, create: bool = False) -> Ledger:
        """The ledger; ``create`` (commands that write budgets or keys) makes a new SQLite
        file where there is none, and says so on stderr."""
        from costwarden.ledger import open_ledger

        if not create:
            self._require_ledger()
        elif self.config.ledger.startswith("sqlite://"):
            from costwarden.ledger.sqlite import path_from_url

            path = Path(path_from_url(self.config.ledger))
            if not path.is_file():
                typer.echo(f"note: created a new ledger at {path}", err=True)
        ledger = open_ledger(self.config.ledger)
        self._opened.append(ledger.close)
        return ledger

    def manager(self) -> BudgetManager:
        """A manager with the file's budgets and prices, without alert channels: commands
        read or reset, and should neither need the alert secrets nor send anything."""
        self._require_ledger()
        manager = self.config.build_manager(alerts=False)
        self._opened.append(manager.close)
        return manager

    def close(self) -> None:
        """Close everything the command opened (ledgers, managers), last opened first."""
        while self._opened:
            self._opened.pop()()


def state(ctx: typer.Context) -> State:
    """The command's shared State, kept on the root click context."""
    obj = ctx.find_root().obj
    if not isinstance(obj, State):  # pragma: no cover - the callback always sets it
        obj = ctx.find_root().obj = State()
    return obj


def _version(value: bool) -> None:
    if value:
        from costwarden import __version__

        typer.echo(f"costwarden {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="Config file (default: $COSTWARDEN_CONFIG, else ./costwarden.toml if present).",
        ),
    ] = None,
    ledger: Annotated[
        str | None,
        typer.Option(
            "--ledger",
            help="Ledger URL, overriding the config file and $COSTWARDEN_LEDGER.",
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    st = State(config_path=config, ledger_url=ledger)
    ctx.obj = st
    ctx.call_on_close(st.close)


# -- errors --------------------------------------------------------------------------------------
def fail(message: str) -> typer.Exit:
    """Print ``message`` as an error on stderr and return the exit (code 1) to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


EXIT_BROKEN_PIPE = 128 + 13  # what a shell reports for a process that SIGPIPE ended


def stdout_is_gone() -> bool:
    """Whether the reader of our stdout has gone (``costwarden status | head -1``).

    Asked rather than assumed: a BrokenPipeError from a socket (a provider, an SMTP server)
    is a real error to report. A pipe whose reader closed polls as POLLERR; where poll() is
    missing (Windows) a broken pipe is taken to be stdout's.
    """
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (a test runner's buffer)
        return False
    if not hasattr(select, "poll"):  # pragma: no cover - Windows
        return True
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(events & select.POLLERR for _, events in poller.poll(0))


def quiet_broken_pipe() -> typer.Exit:
    """End quietly once stdout's reader has gone: the output is no longer wanted, so there is
    nothing to say. stdout is pointed at devnull so that the interpreter's last flush at exit
    does not complain ("Exception ignored ... BrokenPipeError") either."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)
    return typer.Exit(EXIT_BROKEN_PIPE)


def handles_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn costwarden errors (and I/O errors) into one stderr line and exit code 1; a closed
    stdout ends the command quietly (see :func:`quiet_broken_pipe`)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except CostwardenError as exc:
            raise fail(str(exc)) from None
        except BrokenPipeError as exc:
            if stdout_is_gone():
                raise quiet_broken_pipe() from None
            raise fail(f"{exc.strerror or exc}") from None
        except OSError as exc:
            where = f" ({exc.filename})" if exc.filename else ""
            raise fail(f"{exc.strerror or exc}{where}") from None

    return wrapper


# -- output --------------------------------------------------------------------------------------
def print_json(value: Any) -> None:
    """Print ``value`` as indented JSON (values JSON cannot hold, such as datetimes, as strings)."""
    typer.echo(json.dumps(value, indent=2, default=str))


def print_table(table: Table) -> None:
    """Print a table whole: a cell that does not fit wraps (``fold``) instead of being cut
    with an ellipsis, and on a non-terminal stdout (a pipe, a file) the table gets the width
    it needs instead of rich's 80 columns. Colour follows rich: off for a non-terminal and
    when ``NO_COLOR`` is set."""
    con = console()
    for column in table.columns:
        column.overflow = "fold"
    if not con.is_terminal and "COLUMNS" not in os.environ:
        from rich.measure import Measurement

        wide = Measurement.get(con, con.options.update_width(100_000), table).maximum
        con.width = max(con.width, wide)
    con.print(table)


class progress_bar:
    """A rich progress bar on stderr while long work runs, only when stderr is a terminal
    (a pipe or a log gets nothing). ``with progress_bar("Exporting", total) as advance:``
    then ``advance(n)`` after each n items; ``total`` None shows a counter."""

    def __init__(self, what: str, total: int | None = None) -> None:
        self.what, self.total = what, total
        self._progress: Any = None

    def __enter__(self) -> Callable[[int], None]:
        if not sys.stderr.isatty():
            return lambda n: None
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(file=sys.stderr),
            transient=True,
        )
        self._progress.start()
        task = self._progress.add_task(self.what, total=self.total)
        return lambda n: self._progress.advance(task, n)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()


def money(nanos: Nanos | None) -> str:
    """Format nano-USD for a table cell; None (no limit) shows as '-'."""
    return "-" if nanos is None else format_usd(nanos)


def budget_cells(b: Budget) -> list[str]:
    """A budget's limits as table cells: daily, weekly, monthly, per request, rolling, zone."""
    rolling = ", ".join(
        f"{s // 60}m: {money(b.limit_nanos(f'rolling:{s}s'))}"
        for s in sorted(b.rolling_limits or {})
    )
    return [
        *(money(b.limit_nanos(p)) for p in ("daily", "weekly", "monthly")),
        money(b.per_request_nanos),
        rolling or "-",
        b.timezone,
    ]


def money_usd(value: float | None) -> str:
    """A float USD figure from the public API (exact for amounts it produced)."""
    return "-" if value is None else format_usd(usd_to_nanos(value, allow_negative=True))


def money_row(*amounts: Nanos | None) -> list[str]:
    """Figures a reader compares across one table row, at one precision that keeps their order
    (``money.format_compared``); ``-`` for none."""
    known = iter(format_compared(*(n for n in amounts if n is not None)))
    return ["-" if n is None else next(known) for n in amounts]


def usd_nanos(value: float | None) -> Nanos | None:
    """Dollars given on the command line as nano-USD (negative allowed, for refunds and
    adjustments), or None.
    """
    return None if value is None else usd_to_nanos(value, allow_negative=True)


def local_time(epoch: float, zone: str) -> str:
    """Format epoch seconds as a wall-clock time in ``zone`` for tables."""
    return datetime.fromtimestamp(epoch, get_zone(zone)).strftime("%Y-%m-%d %H:%M:%S")


# -- time options --------------------------------------------------------------------------------
_RELATIVE = re.compile(r"^(\d+)\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_when(
    text: str | None, zone: str, *, option: str, end: bool = False, now: datetime | None = None
) -> datetime | None:
    """``--since``/``--until`` values: ``2026-11-01``, ``2026-11-01T09:30`` (local to the
    config's time zone unless it has an offset), ``today``, ``yesterday``, ``this-month``,
    ``last-month``, ``now`` or an age such as ``7d``, ``12h``, ``30m``, ``2w``. A bare date,
    ``today``, ``yesterday`` or a month given to ``--until`` means the end of that day or
    month, so ``--since 2026-11-01 --until 2026-11-30`` covers both whole days and
    ``--since last-month --until last-month`` covers last month."""
    if text is None:
        return None
    tz = get_zone(zone)
    at = (now or datetime.now(UTC)).astimezone(tz)
    value = text.strip().lower()
    day: datetime | None = None
    if value == "now":
        return at
    if value in ("this-month", "last-month"):
        first = at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        if value == "last-month":
            prev = (first.date() - timedelta(days=1)).replace(day=1)
            start = datetime(prev.year, prev.month, 1, tzinfo=tz)
            return first if end else start
        if end:
            nxt = (first.date() + timedelta(days=32)).replace(day=1)
            return datetime(nxt.year, nxt.month, 1, tzinfo=tz)
        return datetime(first.year, first.month, 1, tzinfo=tz)
    if value in ("today", "yesterday"):
        day = at.replace(hour=0, minute=0, second=0, microsecond=0)
        if value == "yesterday":
            day -= timedelta(days=1)  # wall-clock arithmetic: the previous local midnight
    elif m := _RELATIVE.match(value):
        return at - timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
    else:
        try:
            parsed = datetime.fromisoformat(text.strip())
        except ValueError:
            raise typer.BadParameter(
                f"{text!r} is not a date: use 2026-11-01, 2026-11-01T09:30, today, "
                "yesterday, this-month, last-month, now or an age such as 7d, 12h, 30m",
                param_hint=option,
            ) from None
        if len(text.strip()) == 10:  # a bare date
            day = parsed.replace(tzinfo=tz)
        else:
            return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=tz)
    if end:
        nxt = day.date() + timedelta(days=1)
        return datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz)
    return day


def to_us(when: datetime | None) -> int | None:
    """A datetime as epoch microseconds (the ledger's time unit), or None."""
    return None if when is None else round(when.timestamp() * 1_000_000)


JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
SinceOpt = Annotated[
    str | None,
    typer.Option(
        "--since", help="Start: 2026-11-01, today, yesterday, this-month, last-month, 7d..."
    ),
]
TzOpt = Annotated[
    str | None,
    typer.Option("--tz", help="IANA time zone for dates and days (default: the config's)."),
]


def zone_option(tz: str | None, default: str) -> str:
    """``--tz`` checked now (a misspelt zone is a usage error, exit 2), else the default."""
    if tz is None:
        return default
    try:
        get_zone(tz)
    except CostwardenError as exc:
        raise typer.BadParameter(str(exc), param_hint="--tz") from None
    return tz


UntilOpt = Annotated[
    str | None, typer.Option("--until", help="End (exclusive; a bare date: that whole day).")
]
