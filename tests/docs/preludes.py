"""Hidden setups for the documentation's code blocks, named by ``<!-- prelude: NAME -->``.

A prelude prepares the world a reader already has when they read the block — an API key and an
endpoint for the SDKs, a webhook URL in the environment, a ledger with some history, a
configuration file — so that the visible code stays exactly what a reader would write. It never
defines anything the block is meant to demonstrate. Everything stays on 127.0.0.1: the
"provider" is :class:`~costwarden.testing.fake_upstream.FakeUpstream` (the real wire formats,
driven by the real SDKs), the "Slack" and "webhook" endpoints a local HTTP server.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from costwarden.alerts import generate_secret
from costwarden.testing.fake_upstream import FakeUpstream


@dataclass
class Session:
    """What one run of a doc's blocks shares: the namespace, the folder and the cleanups."""

    namespace: dict[str, Any]
    folder: Path
    monkeypatch: pytest.MonkeyPatch
    stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    failed: str | None = None  # id of the block that failed; later blocks of the session skip
    managers: list[Any] = field(default_factory=list)  # every manager a block left in view
    clients: list[Any] = field(default_factory=list)  # every synchronous SDK client likewise

    def note_managers(self) -> None:
        """Remember the managers and synchronous SDK clients in the namespace now (a later
        block may rebind the name).

        A doc's example ends the way a reader's script does, with its clients left open for
        the process's exit to close; the session closes them instead, since the test process
        lives on and an unclosed socket is an error (ResourceWarning) in this suite.
        """
        import anthropic
        import openai

        from costwarden.clients import TrackedLLMClient
        from costwarden.clients.wrappers import WrappedClient
        from costwarden.manager import BudgetManager

        for value in self.namespace.values():
            if isinstance(value, BudgetManager):
                kept = self.managers
            elif isinstance(value, openai.OpenAI | anthropic.Anthropic | TrackedLLMClient) or (
                isinstance(value, WrappedClient)
                and isinstance(value.unwrapped, openai.OpenAI | anthropic.Anthropic)
            ):
                kept = self.clients
            else:
                continue
            if all(value is not v for v in kept):
                kept.append(value)

    def close(self) -> None:
        try:
            self.note_managers()
            for client in self.clients:
                client.close()
            for manager in self.managers:
                manager.close()  # flush alert workers before the servers they talk to go away
        finally:
            self.stack.close()
            self.monkeypatch.undo()


Prelude = Callable[[Session], None]


def upstream(s: Session) -> None:
    """The SDKs' own environment variables point at a fake provider on 127.0.0.1."""
    up = s.stack.enter_context(FakeUpstream())
    s.monkeypatch.setenv("OPENAI_API_KEY", "sk-docs-test")
    s.monkeypatch.setenv("OPENAI_BASE_URL", up.openai_base_url)
    s.monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-docs-test")
    s.monkeypatch.setenv("ANTHROPIC_BASE_URL", up.anthropic_base_url)


def alert_endpoints(s: Session) -> None:
    """Slack and webhook URLs, an SMTP password and a webhook secret, as a deployment has them."""
    received: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    s.stack.callback(server.server_close)
    s.stack.callback(server.shutdown)
    url = f"http://127.0.0.1:{server.server_address[1]}/services/T0/B0/docs"
    for name in ("SLACK_WEBHOOK", "SLACK_WEBHOOK_URL", "COSTWARDEN_SLACK_WEBHOOK"):
        s.monkeypatch.setenv(name, url)
    s.monkeypatch.setenv("SMTP_PASSWORD", "docs-test-password")
    s.monkeypatch.setenv("COSTWARDEN_SMTP_PASSWORD", "docs-test-password")
    s.monkeypatch.setenv("COSTWARDEN_WEBHOOK_SECRET", generate_secret())


def your_code(s: Session) -> None:
    """``call_the_model(...)`` in a doc stands for the reader's own code: here it does nothing."""
    s.namespace["call_the_model"] = lambda *args, **kwargs: "a model's answer"


def spend_history(s: Session) -> None:
    """``spend.db`` in the folder: the ledger an application has been writing for five weeks.

    The writer ran under budgets (global; team ``eng``; user ``alice``); every day has calls by
    two teams and three users, with the metadata tracked clients store, so that forecasts and
    advice have something to say.
    """
    from costwarden.budget import Budget
    from costwarden.manager import BudgetManager
    from costwarden.records import UsageRecord

    now = datetime.now(UTC)
    with BudgetManager(
        Budget(daily_limit=None, monthly_limit=1000.0), ledger="sqlite:///spend.db"
    ) as m:
        m.set_budget(Budget(daily_limit=None, weekly_limit=120.0, monthly_limit=400.0), team="eng")
        m.set_budget(Budget(daily_limit=5.0, monthly_limit=None), user="alice")
        for day in range(35, 0, -1):
            for i in range(12):
                at = now - timedelta(days=day, minutes=37 * i)
                team, user = ("eng", "alice") if i % 3 else ("research", "bob")
                m.record_spend(
                    UsageRecord(
                        "gpt-4o",
                        2_000 + 40 * (35 - day),
                        400,
                        timestamp=at,
                        user_id=user if i % 4 else "carol",
                        team=team,
                        endpoint="summarization",
                        metadata={"task": "summarization", "max_tokens": 4096},
                    )
                )


def postgres(s: Session) -> None:
    """``$COSTWARDEN_LEDGER`` names a fresh schema on the test PostgreSQL server (tests/pg.py)."""
    from tests.pg import temp_schema_url

    s.monkeypatch.setenv("COSTWARDEN_LEDGER", s.stack.enter_context(temp_schema_url()))


def admin_api(s: Session) -> None:
    """A gateway's admin API on 127.0.0.1 (mounted at ``/admin`` as ``costwarden serve`` does)
    over ``spend.db`` in the folder: ``$COSTWARDEN_ADMIN_URL`` and ``$COSTWARDEN_MASTER_KEY``
    as an operator has them, and the variables a key holder has (``$COSTWARDEN_KEY``, a virtual
    key with a little spend; ``$KEY_ID``, its id)."""
    import secrets

    from starlette.applications import Starlette
    from starlette.routing import Mount

    from costwarden.budget import Budget
    from costwarden.gateway.admin import admin_app
    from costwarden.keys import create_key
    from costwarden.manager import BudgetManager
    from costwarden.records import UsageRecord
    from tests.asgi_server import LiveServer

    manager = BudgetManager(
        Budget(daily_limit=None, monthly_limit=None), ledger="sqlite:///spend.db"
    )
    s.stack.callback(manager.close)
    master = secrets.token_urlsafe(32)
    key, secret = create_key(
        manager.ledger,  # type: ignore[arg-type]
        user="alice",
        team="eng",
        budget=Budget(daily_limit=5.0, monthly_limit=None),
        actor="docs",
    )
    manager.record_spend(
        UsageRecord("gpt-4o-mini", 20_000, 1_000, key=key.key_id, user_id="alice", team="eng")
    )
    app = Starlette(routes=[Mount("/admin", admin_app(manager, master_key=master))])
    server = s.stack.enter_context(LiveServer(app))
    s.monkeypatch.setenv("COSTWARDEN_ADMIN_URL", f"{server.url}/admin")
    s.monkeypatch.setenv("COSTWARDEN_MASTER_KEY", master)
    s.monkeypatch.setenv("COSTWARDEN_KEY", secret)
    s.monkeypatch.setenv("KEY_ID", key.key_id)


def gateway(s: Session) -> None:
    """A gateway (``costwarden serve`` with no [gateway] table: the simulated provider) on
    127.0.0.1, a virtual key for it in ``$COSTWARDEN_KEY`` and its URL in
    ``$COSTWARDEN_GATEWAY_URL``, as a reader who ran ``costwarden serve`` and made a key has."""
    from costwarden.budget import Budget
    from costwarden.gateway import Gateway
    from costwarden.keys import create_key
    from costwarden.manager import BudgetManager
    from tests.gateway_server import running_gateway

    manager = BudgetManager(
        Budget(daily_limit=None, monthly_limit=None, per_request_limit=None),
        ledger=f"sqlite:///{s.folder}/gateway.db",
    )
    s.stack.callback(manager.close)
    _, secret = create_key(manager.ledger, user="docs", budget=Budget(daily_limit=1.0))
    server = s.stack.enter_context(running_gateway(Gateway(manager, environ={})))
    s.monkeypatch.setenv("COSTWARDEN_GATEWAY_URL", server.url)
    s.monkeypatch.setenv("COSTWARDEN_KEY", secret)


PRELUDES: dict[str, Prelude] = {
    "admin-api": admin_api,
    "gateway": gateway,
    "upstream": upstream,
    "alert-endpoints": alert_endpoints,
    "your-code": your_code,
    "spend-history": spend_history,
    "postgres": postgres,
}
