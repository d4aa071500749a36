"""The assembled typer app: the shared base plus every command module (imported for their
``@app.command`` registrations)."""

from __future__ import annotations

from costwarden.cli import billing, choose, control, dashboard, serve, spend, tools
from costwarden.cli.base import app

__all__ = ["app", "billing", "choose", "control", "dashboard", "serve", "spend", "tools"]
