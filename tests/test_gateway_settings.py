"""The [gateway] table: clear errors for bad values, routing rules, credentials from the
environment only; the admin API mounted at /admin."""

from __future__ import annotations

import importlib.util
import json
import sys
import types
import urllib.error
import urllib.request
from typing import Any

import pytest

from costwarden import Budget, BudgetManager
from costwarden.errors import ConfigurationError
from costwarden.gateway import Gateway, parse_gateway
from costwarden.gateway.upstreams import build_upstreams
from tests.gateway_server import running_gateway


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"prot": 1}, "unknown key(s) 'prot'"),
        ({"port": "80"}, "port must be a whole number"),
        ({"upstreams": {"x": {"kind": "grpc"}}}, "kind must be one of"),
        ({"upstreams": {"x": {"kind": "openai", "base_url": "ftp://h"}}}, "http(s) URL"),
        ({"upstreams": {"x": {"kind": "openai", "base_url": "https://u:p@h/v1"}}}, "credentials"),
        ({"upstreams": {"x": {"kind": "azure", "base_url": "https://h"}}}, "api_version"),
        ({"upstreams": {"o": {"kind": "openai"}}, "models": {"gpt-*": "nope"}}, "not defined"),
        (
            {"upstreams": {"o": {"kind": "openai"}, "a": {"kind": "anthropic"}}},
            "no [gateway.models]",
        ),
        ({"upstreams": {"o": {"kind": "openai", "timeout": -1}}}, "timeout must be at least"),
        (
            {"upstreams": {"o": {"kind": "openai"}}, "models": {"m": {"upstream": "o", "x": 1}}},
            "'x'",
        ),
    ],
)
def test_bad_settings_are_clear_errors(table: dict[str, Any], message: str) -> None:
    with pytest.raises(
        ConfigurationError,
        match=message.replace("(", r"\(")
        .replace(")", r"\)")
        .replace("[", r"\[")
        .replace("]", r"\]"),
    ):
        parse_gateway(table)


def test_routes_exact_before_globs_and_defaults() -> None:
    s = parse_gateway(
        {
            "upstreams": {
                "o": {"kind": "openai"},
                "l": {"kind": "openai-compatible", "base_url": "http://127.0.0.1:1/v1"},
            },
            "models": {"gpt-*": "o", "gpt-oss": "l"},
        }
    )
    assert s.route("gpt-oss").upstream == "l"  # type: ignore[union-attr]
    assert s.route("gpt-4o").upstream == "o"  # type: ignore[union-attr]
    assert s.route("claude") is None
    default = parse_gateway(None)
    assert default.route("anything").upstream == "simulated"  # type: ignore[union-attr]


def test_credentials_only_from_the_environment_and_never_in_repr() -> None:
    s = parse_gateway({"upstreams": {"o": {"kind": "openai", "api_key_env": "MY_KEY"}}})
    with pytest.raises(ConfigurationError, match=r"\$MY_KEY"):
        build_upstreams(s, {})
    ups = build_upstreams(s, {"MY_KEY": "sk-very-secret"})
    assert "sk-very-secret" not in repr(ups)
    assert ups["o"].auth == ((b"authorization", b"Bearer sk-very-secret"),)
    azure = parse_gateway(
        {
            "upstreams": {
                "az": {
                    "kind": "azure",
                    "base_url": "https://r.openai.azure.com",
                    "api_version": "2024-10-21",
                    "deployments": {"gpt-4o": "dep1"},
                }
            }
        }
    )
    up = build_upstreams(azure, {"AZURE_OPENAI_API_KEY": "az-secret"})["az"]
    assert up.auth == ((b"api-key", b"az-secret"),)
    assert up.target("chat", "gpt-4o") == (
        "https://r.openai.azure.com/openai/deployments/dep1/chat/completions?api-version=2024-10-21"
    )


def test_admin_app_is_mounted_at_admin(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the real admin module when it is installed, else a stand-in Starlette app with the
    same factory signature (what is tested is the gateway's mount: root path, master key)."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    seen: dict[str, Any] = {}
    if importlib.util.find_spec("costwarden.gateway.admin") is None:

        def admin_app(manager: BudgetManager, *, master_key: str) -> Starlette:
            seen["master_key"] = master_key

            async def schema(request: Any) -> JSONResponse:
                return JSONResponse({"openapi": "3.1.0", "root_path": request.scope["root_path"]})

            return Starlette(routes=[Route("/openapi.json", schema)])

        module = types.ModuleType("costwarden.gateway.admin")
        module.admin_app = admin_app  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "costwarden.gateway.admin", module)
    manager = BudgetManager(Budget(), ledger=f"sqlite:///{tmp_path}/a.db")
    try:
        env = {"COSTWARDEN_MASTER_KEY": "master-secret-of-32-characters!!"}
        with running_gateway(Gateway(manager, environ=env)) as gw:
            with urllib.request.urlopen(gw.url + "/admin/openapi.json") as r:
                doc = json.loads(r.read())
            assert "openapi" in doc
        with running_gateway(Gateway(manager, environ={})) as gw:  # no master key: no admin
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(gw.url + "/admin/openapi.json")
            err.value.close()  # it holds the connection: not left to the garbage collector
            assert err.value.code == 404
    finally:
        manager.close()
    if not seen:  # the real admin module: a bad master key is refused when the gateway is made
        with pytest.raises(ConfigurationError, match="master key"):
            Gateway(manager, environ={"COSTWARDEN_MASTER_KEY": "short"})
    if seen:
        assert seen["master_key"] == "master-secret-of-32-characters!!"
