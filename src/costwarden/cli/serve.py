"""``costwarden serve``: run the HTTP gateway (docs/gateway.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from costwarden.cli.base import app, fail, handles_errors, state


@app.command()
@handles_errors
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option("--host", help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option("--port", help="Port (default 4000).")] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", help="Worker processes (default 1).", min=1)
    ] = None,
    ledger: Annotated[
        str | None, typer.Option("--ledger", help="Ledger URL (sqlite:///..., postgresql://...).")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="costwarden.toml with a [gateway] table.")
    ] = None,
) -> None:
    """Run the OpenAI- and Anthropic-compatible gateway (Ctrl-C or SIGTERM stops it, settling
    the holds in flight). With no [gateway] table every model goes to the offline simulated
    provider."""
    try:
        from costwarden.gateway.server import serve as run
    except ImportError as exc:
        raise fail(
            f"the gateway needs its extra: pip install 'costwarden[gateway]' ({exc.name} is "
            "missing)"
        ) from None
    st = state(ctx)
    config_path = config if config is not None else st.config_path
    if config_path is None and st.config.path is not None:
        config_path = st.config.path
    run(
        host=host,
        port=port,
        workers=workers,
        config_path=None if config_path is None else str(config_path),
        ledger=ledger if ledger is not None else st.ledger_url,
    )
