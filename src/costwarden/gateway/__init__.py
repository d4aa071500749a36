"""The HTTP gateway: an OpenAI- and Anthropic-compatible proxy that enforces budgets per
virtual key, user and team (docs/gateway.md), and its admin API
(:func:`costwarden.gateway.admin.admin_app`, docs/gateway-admin.md). Needs the ``gateway`` extra
(``pip install 'costwarden[gateway]'``)."""

from __future__ import annotations

from costwarden.gateway.app import Gateway
from costwarden.gateway.settings import GatewaySettings, ModelRoute, UpstreamSettings, parse_gateway

__all__ = ["Gateway", "GatewaySettings", "ModelRoute", "UpstreamSettings", "parse_gateway"]
