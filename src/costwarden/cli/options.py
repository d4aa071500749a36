"""Options that several commands take together, declared once as an option group.

An option group is a frozen dataclass (a subclass of :class:`OptionGroup`) whose fields are
typer options: :class:`ScopeNames` here (``--user``, ``--team``, ``--key``, ``--tag``,
``--model``: six commands name one scope or filter records with them), :class:`TimeRange`
(``--since``, ``--until``), and the limit options of ``budgets set`` and ``keys create`` in
``cli/control.py``. A command takes a group as one parameter and is decorated with
:func:`option_groups`: typer builds the command from its signature, so the decorator shows
typer the group's options in that parameter's place (the same names, flags, help and order as
if they were written out there), and hands the command the values typer parsed as one group,
which also knows the rules of its options.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Final, TypeVar

import typer

from costwarden.cli.base import SinceOpt, UntilOpt, parse_when

R = TypeVar("R")


@dataclasses.dataclass(frozen=True)
class OptionGroup:
    """Base of an option group: subclass it as a frozen dataclass whose fields are typer
    options (``Annotated[..., typer.Option(...)]``, each with its default)."""


def option_groups(command: Callable[..., R]) -> Callable[..., R]:
    """``command`` with each parameter typed as an :class:`OptionGroup` shown to typer as the
    group's options, in its place; the command is called with the group built from them."""
    signature = inspect.signature(command, eval_str=True)
    shown: list[inspect.Parameter] = []
    groups: list[tuple[str, type[OptionGroup], list[str]]] = []
    for param in signature.parameters.values():
        group = param.annotation
        if not (isinstance(group, type) and issubclass(group, OptionGroup)):
            shown.append(param)
            continue
        hints = typing.get_type_hints(group, include_extras=True)
        options = [
            param.replace(name=f.name, annotation=hints[f.name], default=f.default)
            for f in dataclasses.fields(group)
        ]
        groups.append((param.name, group, [option.name for option in options]))
        shown += options

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> R:
        for name, group, fields in groups:
            kwargs[name] = group(**{field: kwargs.pop(field) for field in fields})
        return command(*args, **kwargs)

    wrapper.__signature__ = signature.replace(parameters=shown)  # type: ignore[attr-defined]
    return wrapper


@dataclasses.dataclass(frozen=True)
class ScopeNames(OptionGroup):
    """The scope options a command was given (None: not given)."""

    user: Annotated[str | None, typer.Option("--user", "-u", help="A user id.")] = None
    team: Annotated[str | None, typer.Option("--team", "-t", help="A team.")] = None
    key: Annotated[str | None, typer.Option("--key", "-k", help="A virtual key.")] = None
    tag: Annotated[str | None, typer.Option("--tag", "-g", help="A tag or endpoint.")] = None
    model: Annotated[str | None, typer.Option("--model", "-m", help="A model.")] = None

    def _named(self) -> dict[str, str]:
        """The scope options given (a subclass's own options are not scopes)."""
        given = ((f.name, getattr(self, f.name)) for f in dataclasses.fields(ScopeNames))
        return {kind: name for kind, name in given if name is not None}

    def given(self) -> dict[str, str]:
        """The options given, by kind (``{"team": "eng"}``), as record filters (they combine); a
        usage error for an empty name."""
        given = self._named()
        for kind, name in given.items():
            if not name:
                raise typer.BadParameter(f"--{kind} needs a non-empty name")
        return given

    def one(self) -> tuple[dict[str, str], str]:
        """The single scope given (``{"user": "alice"}``, ``"user:alice"``) or global; a usage
        error for more than one or an empty name."""
        if len(named := self._named()) > 1:
            raise typer.BadParameter(
                f"name one scope at a time, got {', '.join('--' + k for k in named)}"
            )
        for kind, name in self.given().items():
            return {kind: name}, f"{kind}:{name}"
        return {}, "global"


NO_NAMES: Final = ScopeNames()
"""No scope option given: the default of a command's :class:`ScopeNames` parameter."""


@dataclasses.dataclass(frozen=True)
class TimeRange(OptionGroup):
    """``--since`` and ``--until``, as given (None: open on that side)."""

    since: SinceOpt = None
    until: UntilOpt = None

    def bounds(self, zone: str) -> tuple[datetime | None, datetime | None]:
        """The range as datetimes, local to ``zone`` where a value has no offset (see
        :func:`~costwarden.cli.base.parse_when`); a usage error for a value that is no time."""
        start = parse_when(self.since, zone, option="--since")
        return start, parse_when(self.until, zone, option="--until", end=True)


ALL_TIME: Final = TimeRange()
"""Neither ``--since`` nor ``--until`` given: the default of a :class:`TimeRange` parameter."""


__all__ = ["ALL_TIME", "NO_NAMES", "OptionGroup", "ScopeNames", "TimeRange", "option_groups"]
