"""Schemathesis over the admin API's own OpenAPI schema, against a live uvicorn server.

Requests are generated from the schema the app serves (valid ones and, for the negative
phase, invalid ones), sent with the master key to a real server on 127.0.0.1 over a SQLite
ledger, and every answer is checked: never a 5xx, always a status code, content type and
body that the schema declares.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks
from schemathesis.generation.case import Case

from costwarden.budget import Budget
from costwarden.gateway.admin import admin_app
from costwarden.gateway.admin_schema import openapi_schema
from costwarden.manager import BudgetManager
from tests.asgi_server import LiveServer

MASTER = "schema-test-master-key-0123"
schema = schemathesis.openapi.from_dict(openapi_schema())

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder: Path = tmp_path_factory.mktemp("admin-schema")
    manager = BudgetManager(Budget(daily_limit=None), ledger=f"sqlite:///{folder / 'l.db'}")
    try:
        with LiveServer(admin_app(manager, master_key=MASTER)) as server:
            yield server.url
    finally:
        manager.close()


@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_answer_is_a_server_error_or_off_schema(case: Case, live: str) -> None:
    case.call_and_validate(
        base_url=live, headers={"Authorization": f"Bearer {MASTER}"}, checks=CHECKS
    )
