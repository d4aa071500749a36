"""``make run``: the whole product, offline, on one SQLite file.

It fills a demo ledger with a simulated working day up to now (:mod:`costwarden.demo`, the
terminal demo that ``make demo`` runs alone), makes a virtual key for the gateway, then serves
the gateway on 127.0.0.1 with the dashboard at ``/dashboard`` and every model answered by the
offline simulated provider. Before the server starts it prints the dashboard's URL, a ``curl``
and an ``openai`` SDK call to try, with the key filled in. Nothing leaves the machine and no
API key is needed: a reader can see budgets enforced, alerts, spend and the dashboard within a
minute of cloning.

Why a module of its own: the demo's day is a library function that tests call with a fixed
clock; serving is a long-running foreground process. This module only joins the two and says
how to use what it started.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from costwarden.budget import Budget
from costwarden.config import LEDGER_ENV
from costwarden.demo import run as fill_demo_ledger
from costwarden.keys import create_key
from costwarden.manager import BudgetManager

DEFAULT_LEDGER = Path("demo-output/spend.db")
DEFAULT_PORT = 4000
KEY_BUDGET = Budget(daily_limit=1.0, monthly_limit=10.0)
"""The demo key's own budget: enough for a few hundred simulated calls, small enough to watch."""


def prepare(ledger_path: Path, *, quiet: bool = False) -> str:
    """Fill ``ledger_path`` with the demo day and return a fresh virtual key's secret.

    The key belongs to ``alice`` of team ``research`` (the demo's heaviest user), so calls made
    through the gateway with it count against her budgets too and show on the dashboard.
    """
    fill_demo_ledger(ledger_path, quiet=quiet)
    with BudgetManager(ledger=f"sqlite:///{ledger_path}") as manager:
        _, secret = create_key(
            manager.ledger,  # type: ignore[arg-type]
            user="alice",
            team="research",
            budget=KEY_BUDGET,
            metadata={"purpose": "make run"},
            actor="showcase",
        )
    return secret


def instructions(base_url: str, secret: str) -> str:
    """What to try once the server is up: the dashboard, a curl and an openai SDK call."""
    body = (
        '{"model": "gpt-4o-mini", "max_tokens": 40, '
        '"messages": [{"role": "user", "content": "Say hello"}]}'
    )
    return f"""
costwarden is running on {base_url} (simulated provider: offline, no API key).

  Dashboard:  {base_url}/dashboard/

  Try a call through the gateway (it is priced, held against alice's budgets and recorded):

    curl -sS {base_url}/v1/chat/completions \\
      -H "Authorization: Bearer {secret}" -H "content-type: application/json" \\
      -d '{body}'

  Or with the openai SDK:

    python -c 'from openai import OpenAI; c = OpenAI(base_url="{base_url}/v1", \\
      api_key="{secret}"); print(c.chat.completions.create(model="gpt-4o-mini", \\
      max_tokens=40, messages=[{{"role": "user", "content": "Say hello"}}]).choices[0]\\
      .message.content)'

  This key's secret is shown only now. Ctrl-C stops the server.
"""


def main(argv: list[str] | None = None) -> int:
    """Run the offline showcase (``make run``): prepare the demo ledger and a key, print how to call
    it, then serve the gateway and dashboard on loopback until stopped.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--ledger", type=Path, default=DEFAULT_LEDGER)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--quiet", action="store_true", help="do not print the demo's day")
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        parser.error(f"--port must be between 1 and 65535, got {args.port}")
    secret = prepare(args.ledger, quiet=args.quiet)
    base_url = f"http://127.0.0.1:{args.port}"
    print(instructions(base_url, secret), flush=True)
    from costwarden.gateway.server import serve

    os.environ.pop("COSTWARDEN_CONFIG", None)  # no [gateway] table: the simulated provider
    os.environ[LEDGER_ENV] = f"sqlite:///{args.ledger.resolve()}"
    serve(host="127.0.0.1", port=args.port, workers=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
