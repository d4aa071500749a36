"""A real uvicorn server running the gateway on 127.0.0.1, in a thread of the test process.

Used by the gateway tests and the docs' ``gateway`` prelude. The socket is bound before the
server starts (port 0: the system picks a free one), so the URL is known at once.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from costwarden.gateway import Gateway


class RunningGateway:
    def __init__(self, app: Gateway, sock: socket.socket) -> None:
        self.app = app
        self.port = int(sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return self.url + "/v1"


@contextmanager
def running_gateway(app: Gateway, **options: Any) -> Iterator[RunningGateway]:
    """Serve ``app`` until the block ends (then a graceful shutdown, lifespan included)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        app,
        http="httptools",
        loop="asyncio",
        lifespan="on",
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=options.pop("grace", 5),
        **options,
    )
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    errors: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(server.serve(sockets=[sock]))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=run, name="gateway-under-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if errors or not thread.is_alive():
            raise RuntimeError(f"the gateway did not start: {errors}")
        if time.monotonic() > deadline:
            raise RuntimeError("the gateway did not start within 10 s")
        time.sleep(0.01)
    try:
        yield RunningGateway(app, sock)
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()
