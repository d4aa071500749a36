"""The dashboard as the gateway mounts it at /dashboard: behind the gateway's master key, every
link under the prefix, a virtual key's holder limited to that key."""

from __future__ import annotations

import http.cookiejar
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from costwarden import Budget, BudgetManager, UsageRecord
from costwarden.gateway import Gateway, parse_gateway
from costwarden.keys import create_key
from tests.gateway_server import running_gateway

MASTER = "gateway-master-key-for-dashboard-tests"


def test_the_gateways_dashboard_asks_for_a_login_and_keeps_its_prefix(tmp_path: Path) -> None:
    manager = BudgetManager(Budget(daily_limit=10.0), ledger=f"sqlite:///{tmp_path / 'g.db'}")
    try:
        key, secret = create_key(manager.ledger, user="alice")  # type: ignore[arg-type]
        manager.record_spend(
            UsageRecord(model="gpt-4o-mini", input_tokens=900, output_tokens=90, key=key.key_id)
        )
        manager.record_spend(UsageRecord(model="gpt-4o", input_tokens=900, output_tokens=90))
        settings = parse_gateway({"upstreams": {"sim": {"kind": "simulated"}}, "models": {}})
        gateway = Gateway(manager, settings, environ={"COSTWARDEN_MASTER_KEY": MASTER})
        with running_gateway(gateway) as gw:
            jar = http.cookiejar.CookieJar()
            opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
            first = opener.open(gw.url + "/dashboard/")
            assert first.url == gw.url + "/dashboard/login"  # redirected: a login is needed
            body = urllib.parse.urlencode({"secret": secret}).encode()
            page = opener.open(gw.url + "/dashboard/login", data=body).read().decode()
            assert f"key:{key.key_id}" in page and "gpt-4o-mini" in page
            links = re.findall(r'(?:href|src|action|hx-get)="(/[^"]*)"', page)
            assert links and all(u.startswith("/dashboard/") for u in links), links
            try:
                opener.open(gw.url + "/dashboard/breakdown?by=user")
                raise AssertionError("a key's holder saw the breakdown by user")
            except urllib.error.HTTPError as exc:
                assert exc.code == 400
    finally:
        manager.close()
