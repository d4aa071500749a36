"""``costwarden dashboard``: the web dashboard on uvicorn (the ``dashboard`` extra).

Without a login (no master key, no key logins) it serves only a loopback address: anyone who
can reach the port would see every user's spend. Bound to anything else it refuses to start
unless ``--master-key`` (or ``$COSTWARDEN_MASTER_KEY``) or ``--key-login`` is given; and the
app itself answers only requests from this machine while it has no login (dashboard/auth.py).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Final

import typer

from costwarden.cli.base import app, handles_errors, state
from costwarden.errors import ConfigurationError
from costwarden.loopback import is_loopback

MASTER_KEY_ENV: Final = "COSTWARDEN_MASTER_KEY"


def check_exposure(host: str, master_key: str | None, key_login: bool) -> None:
    """Refuse an open dashboard on an address other machines can reach."""
    if not is_loopback(host) and not master_key and not key_login:
        raise ConfigurationError(
            f"refusing to serve the dashboard on {host} without a login: anyone who can reach "
            f"it would see all spend. Set --master-key (or ${MASTER_KEY_ENV}) or --key-login, "
            "or bind to 127.0.0.1"
        )


@app.command()
@handles_errors
def dashboard(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8765,
    ledger: Annotated[
        str | None, typer.Option("--ledger", help="Ledger URL (overrides the config).")
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Config file.")] = None,
    master_key: Annotated[
        str | None,
        typer.Option(
            help=f"Key to log in with as admin (default ${MASTER_KEY_ENV}).", show_default=False
        ),
    ] = None,
    key_login: Annotated[
        bool, typer.Option(help="Let virtual-key holders log in to see their own key.")
    ] = False,
) -> None:
    """Serve the web dashboard (spend, budgets, breakdowns, alerts, advice)."""
    st = state(ctx)
    if ledger is not None:
        st.ledger_url = ledger
        st._config = None
    if config is not None:
        st.config_path = config
        st._config = None
    key = master_key or os.environ.get(MASTER_KEY_ENV) or None
    check_exposure(host, key, key_login)
    try:
        import uvicorn

        from costwarden.dashboard import dashboard_app
    except ImportError as exc:
        raise ConfigurationError(
            f"the dashboard needs {exc.name}: pip install 'costwarden[dashboard]'"
        ) from None
    manager = st.manager()
    web = dashboard_app(manager, master_key=key, key_login=key_login or bool(key))
    where = f"[{host}]" if ":" in host else host
    typer.echo(f"costwarden dashboard on http://{where}:{port}/ (ledger {st.config.ledger})")
    uvicorn.run(web, host=host, port=port, log_level="warning")


__all__ = ["check_exposure", "dashboard", "is_loopback"]
