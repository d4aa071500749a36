"""Schema migrations shared by the SQL ledgers: an ordered list, a version row in ``meta``.

Each backend calls :func:`apply_migrations` inside the transaction (and lock) it migrates
under; the statements and the placeholder style are the backend's own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from costwarden.errors import LedgerError


def apply_migrations(
    execute: Callable[..., Any],
    migrations: Sequence[Sequence[str]],
    *,
    placeholder: str,
    where: str,
) -> int:
    """Bring the schema up to ``len(migrations)``; return the version it was at.

    ``execute(sql)`` / ``execute(sql, params)`` runs one statement and returns a cursor.
    A schema newer than this code is refused: an older costwarden must not write to it.
    """
    execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
    row = execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    version = int(row[0]) if row else 0
    if version > len(migrations):
        raise LedgerError(
            f"{where} has schema version {version}, newer than this costwarden understands "
            f"({len(migrations)}); upgrade costwarden"
        )
    for number, script in enumerate(migrations[version:], start=version + 1):
        for statement in script:
            execute(statement)
        execute(
            f"INSERT INTO meta (key, value) VALUES ('schema_version', {placeholder}) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (str(number),),
        )
    return version
