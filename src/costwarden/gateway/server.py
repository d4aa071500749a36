"""Running the gateway: the app factory uvicorn's workers call, and :func:`serve`.

``costwarden serve`` passes its options to the workers through the environment
(``COSTWARDEN_CONFIG``, ``COSTWARDEN_LEDGER``), since uvicorn starts each worker as a new
process that imports :func:`create_app`. Every worker opens the ledger itself; on PostgreSQL
they (and other hosts) share one set of budgets with no overspend, on SQLite the workers of
one host do.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from costwarden.config import CONFIG_ENV, LEDGER_ENV, discover_config
from costwarden.gateway.app import Gateway
from costwarden.gateway.logs import configure
from costwarden.gateway.settings import GatewaySettings, parse_gateway
from costwarden.manager import BudgetManager


def load_settings(environ: Mapping[str, str] | None = None) -> tuple[Any, GatewaySettings]:
    """The configuration file (found as the CLI finds it) and its checked ``[gateway]``."""
    env = os.environ if environ is None else environ
    config = discover_config(None, environ=env)
    return config, parse_gateway(config.sections.get("gateway"))


def build_manager(config: Any, settings: GatewaySettings) -> BudgetManager:
    """The worker's manager: on a PostgreSQL ledger with ``leases`` on (the default), its
    ledger admits from budget leases (:mod:`costwarden.ledger.leases`), so most admissions
    make no round trip; any other ledger as the configuration names it."""
    url: str = config.ledger
    if not settings.leases or not url.startswith(
        ("postgresql://", "postgres://", "postgresql+psycopg://")
    ):
        return config.build_manager(alerts=True)  # type: ignore[no-any-return]
    from costwarden.ledger import open_ledger
    from costwarden.ledger.leases import LeasedLedger

    inner = open_ledger(url)
    try:
        ledger = LeasedLedger(inner, chunk=settings.lease_chunk)
        return config.build_manager(alerts=True, ledger=ledger)  # type: ignore[no-any-return]
    except BaseException:
        inner.close()
        raise


def create_app() -> Gateway:
    """The app of one worker, configured from the environment (see module doc)."""
    config, settings = load_settings()
    configure(settings.log_level)
    return Gateway(build_manager(config, settings), settings, close_manager=True, freeze_heap=True)


def serve(
    *,
    host: str | None = None,
    port: int | None = None,
    workers: int | None = None,
    config_path: str | None = None,
    ledger: str | None = None,
) -> None:
    """Run the gateway in the foreground until SIGINT/SIGTERM (uvicorn, httptools, uvloop)."""
    import uvicorn

    if config_path is not None:
        os.environ[CONFIG_ENV] = os.path.abspath(config_path)
    if ledger is not None:
        os.environ[LEDGER_ENV] = ledger
    config, settings = load_settings()  # fail here, once, with the file's error
    n = workers if workers is not None else settings.workers
    configure(settings.log_level)
    if n == 1:  # build the app here: its errors (a missing credential) stop the command
        app: Any = Gateway(
            build_manager(config, settings), settings, close_manager=True, freeze_heap=True
        )
    else:
        from costwarden.gateway.upstreams import build_upstreams

        build_upstreams(settings)  # the same check before starting the workers
        app = "costwarden.gateway.server:create_app"
    uvicorn.run(
        app,
        factory=n > 1,
        host=host or settings.host,
        port=port if port is not None else settings.port,
        workers=n if n > 1 else None,
        http="httptools",
        loop="uvloop",
        lifespan="on",
        access_log=False,
        log_level=settings.log_level,
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds) or None,
        server_header=False,
    )


__all__ = ["build_manager", "create_app", "load_settings", "serve"]
