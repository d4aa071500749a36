"""The dashboard as the gateway mounts it at /dashboard: behind the gateway's master key, every
link under the prefix, a virtual key's holder limited to that key; without a master key it
answers this machine only (a client a proxy forwards from elsewhere gets a 403)."""

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
            with opener.open(gw.url + "/dashboard/") as first:
                assert first.url == gw.url + "/dashboard/login"  # redirected: a login is needed
            body = urllib.parse.urlencode({"secret": secret}).encode()
            with opener.open(gw.url + "/dashboard/login", data=body) as answer:
                page = answer.read().decode()
            assert f"key:{key.key_id}" in page and "gpt-4o-mini" in page
            links = re.findall(r'(?:href|src|action|hx-get)="(/[^"]*)"', page)
            assert links and all(u.startswith("/dashboard/") for u in links), links
            try:
                opener.open(gw.url + "/dashboard/breakdown?by=user")
                raise AssertionError("a key's holder saw the breakdown by user")
            except urllib.error.HTTPError as exc:
                exc.close()  # it holds the connection: not left to the garbage collector
                assert exc.code == 400
    finally:
        manager.close()


def test_without_a_master_key_the_gateways_dashboard_answers_this_machine_only(
    tmp_path: Path,
) -> None:
    manager = BudgetManager(Budget(daily_limit=10.0), ledger=f"sqlite:///{tmp_path / 'o.db'}")
    try:
        manager.record_spend(UsageRecord(model="gpt-4o", input_tokens=900, output_tokens=90))
        settings = parse_gateway({"upstreams": {"sim": {"kind": "simulated"}}, "models": {}})
        gateway = Gateway(manager, settings, environ={})  # no master key
        with running_gateway(gateway) as gw:
            with urllib.request.urlopen(gw.url + "/dashboard/") as resp:
                assert "gpt-4o" in resp.read().decode()  # from 127.0.0.1: the open dashboard
            # A reverse proxy on this machine forwarding a browser elsewhere (uvicorn takes
            # the client from X-Forwarded-For when the proxy is 127.0.0.1)
            for path in ("/dashboard/", "/dashboard/records", "/dashboard/static/app.js"):
                request = urllib.request.Request(
                    gw.url + path, headers={"X-Forwarded-For": "198.51.100.4"}
                )
                try:
                    urllib.request.urlopen(request)
                    raise AssertionError(f"{path} was served to 198.51.100.4 without a login")
                except urllib.error.HTTPError as exc:
                    body = exc.read().decode()
                    exc.close()
                    assert exc.code == 403, path
                    assert "198.51.100.4" in body and "COSTWARDEN_MASTER_KEY" in body
            health = urllib.request.Request(
                gw.url + "/health", headers={"X-Forwarded-For": "198.51.100.4"}
            )
            with urllib.request.urlopen(health) as resp:
                assert resp.status == 200  # the gateway itself serves every client
    finally:
        manager.close()
