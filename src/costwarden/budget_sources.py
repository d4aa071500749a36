"""Which budget is in force for a scope, and where it comes from: the ledger or a local file.

Budgets come from two places. The **ledger** is the shared truth: budgets stored there (by
``manager.set_budget`` on a SQLite or PostgreSQL ledger, ``costwarden budgets set``, or the
gateway's admin API) are enforced by every process on it. **Local** budgets, read from a
``costwarden.toml`` or handed to ``BudgetManager(budget)``, are defaults of one process: a
local budget applies to a scope string (``user:alice``, ``default:user``, ``global``) only
where the ledger has none for that same scope string. So a file can ship sensible limits, and
whatever an operator stores in the ledger takes over, in every process at once, without
editing a file on every host. docs/budgets.md states the rule; ``costwarden budgets list``
and ``costwarden status`` show the source of each budget (``ledger`` or ``config:<path>``).

The merge is per scope string, before the usual lookup: a scope's own budget, else the
default budget of its kind. A ledger default (``default:user``) therefore does not hide a
file's budget for ``user:alice``: the more specific budget still applies to alice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from costwarden.budget import GLOBAL, Budget, Scope
from costwarden.control import DEFAULT_PREFIX, StoredBudget, budget_scope, budget_to_dict

LEDGER: Final = "ledger"
"""The source of a budget stored in the ledger."""


@dataclass(frozen=True, slots=True)
class SourcedBudget:
    """A budget in force for ``scope`` and its ``source`` (``ledger``, ``config:<path>``,
    ``code``); ``hides`` names the local source whose budget for the same scope the ledger's
    replaced (so a listing can say that the file's value is not the one enforced)."""

    scope: str
    budget: Budget
    source: str
    stored: StoredBudget | None = None
    hides: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The budget and where it came from (config file, ledger, code) as JSON-ready values."""
        out: dict[str, Any] = {
            "scope": self.scope,
            "source": self.source,
            "budget": budget_to_dict(self.budget),
            "hides": self.hides,
        }
        if self.stored is not None:
            out.update(
                version=self.stored.version,
                updated_at=self.stored.updated_at,
                actor=self.stored.actor,
            )
        return out


def local_table(
    budget: Budget | None,
    budgets: Mapping[Scope, Budget],
    defaults: Mapping[str, Budget],
) -> dict[str, Budget]:
    """Local budgets as scope strings: ``global`` (if given), each scope, ``default:<kind>``."""
    out: dict[str, Budget] = {}
    if budget is not None:
        out[str(GLOBAL)] = budget
    for scope, b in budgets.items():
        out[str(scope)] = b
    for kind, b in defaults.items():
        out[budget_scope(DEFAULT_PREFIX + kind)] = b
    return out


def merge(
    stored: Iterable[StoredBudget], local: Mapping[str, Budget], local_source: str
) -> dict[str, SourcedBudget]:
    """The budgets in force, by scope string: every ledger budget, and each local one whose
    scope string the ledger has no budget for. Ordered by scope string."""
    out: dict[str, SourcedBudget] = {
        scope: SourcedBudget(scope, budget, local_source) for scope, budget in local.items()
    }
    for s in stored:
        out[s.scope] = SourcedBudget(
            s.scope, s.budget, LEDGER, s, local_source if s.scope in local else None
        )
    return dict(sorted(out.items()))


def in_force(table: Mapping[str, SourcedBudget], scope: Scope) -> SourcedBudget | None:
    """The budget that applies to ``scope``: its own, else its kind's default, else None."""
    own = table.get(str(scope))
    if own is not None or scope.kind == "global":
        return own
    return table.get(DEFAULT_PREFIX + scope.kind)


__all__ = ["LEDGER", "SourcedBudget", "in_force", "local_table", "merge"]
