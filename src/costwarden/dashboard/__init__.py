"""The web dashboard: spend over time, budgets and forecasts, breakdowns, the most expensive
requests, alerts, the optimizer's advice and tracked vs billed (see docs/dashboard.md).

Needs the ``dashboard`` extra (starlette, jinja2; uvicorn to serve it standalone).
"""

from __future__ import annotations

from costwarden.dashboard.app import dashboard_app

__all__ = ["dashboard_app"]
