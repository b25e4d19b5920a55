"""Schema-driven fuzzing of the admin API (schemathesis against the served OpenAPI document):
whatever the generated request, the API never answers 5xx, and responses match the document."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from db import ensure_indexes, in_memory
from telephony.app import build_edge, create_app
from tests.conftest import make_settings

KEY = "fuzz-key-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {KEY}"}
STATUSES: Counter[int] = Counter()


def _app():  # type: ignore[no-untyped-def]
    edge = build_edge(make_settings(api_keys=f"{KEY}:*"))
    edge.database = in_memory()
    asyncio.run(ensure_indexes(edge.database))
    return create_app(edge.settings, edge)


APP = _app()
schema = schemathesis.openapi.from_asgi("/api/openapi.json", APP, headers=AUTH)


@pytest.mark.mongodb
@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_never_fails_with_a_server_error(case: schemathesis.Case) -> None:
    response = case.call_and_validate(
        headers=AUTH,
        checks=[schemathesis.checks.not_a_server_error, schemathesis.checks.response_schema_conformance],
    )
    STATUSES[response.status_code] += 1


def test_the_fuzzing_got_past_auth() -> None:
    """Runs after the fuzzing (file order): generated requests reached the routes, not only the auth."""
    print(dict(sorted(STATUSES.items())))
    assert STATUSES[401] == 0 and sum(n for status, n in STATUSES.items() if status < 300) > 50
