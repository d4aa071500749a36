"""The ``costwarden`` command line: a thin typer + rich layer over the library.

``main`` is the console script. typer and rich are the ``cli`` extra, imported only when the
CLI runs, so ``import costwarden`` never needs them. See docs/cli.md.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    """Run the CLI (exit codes: 0 ok, 1 a costwarden error, 2 a usage error)."""
    try:
        from costwarden.cli.app import app
    except ImportError as exc:
        if exc.name not in ("typer", "rich"):
            raise
        sys.stderr.write(
            f"error: the costwarden CLI needs {exc.name}: pip install 'costwarden[cli]'\n"
        )
        raise SystemExit(1) from None
    app(args=argv, prog_name="costwarden")


__all__ = ["main"]
