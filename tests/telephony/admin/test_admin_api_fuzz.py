"""Schema-driven fuzzing of the admin API (schemathesis against the served OpenAPI document):
whatever the generated request, the API never answers 5xx, and responses match the document."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from db import in_memory
from telephony.admin import API_PREFIX, build_admin_api
from telephony.app import create_app
from telephony.server import BackgroundServer
from telephony.simulator.fake_twilio_rest import FakeTwilioRest
from tests.support.fake_twilio import ACCOUNT_SID
from tests.support.settings import AUTH_TOKEN, make_settings

KEY = "fuzz-key-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {KEY}"}
STATUSES: Counter[int] = Counter()


@pytest.fixture(scope="module")
def pod_url() -> Iterator[str]:
    """A whole pod under uvicorn (one event loop, as in production) with outbound calls wired to
    the FAKE Twilio REST server, so `POST /api/calls` is fuzzed end to end, not refused as
    unconfigured. Both servers stop with the module: a pod left running on a thread would go on
    logging its memory report into a closed capture for the rest of the session."""
    fake = BackgroundServer(FakeTwilioRest(ACCOUNT_SID, AUTH_TOKEN).app, make_settings())  # type: ignore[arg-type]
    with fake as fake_url:
        settings = make_settings(
            api_keys=f"{KEY}:*",
            twilio_account_sid=ACCOUNT_SID,
            twilio_api_base_url=fake_url,
            twilio_api_backoff_seconds=0.01,
            public_url="https://pod.example.com",
        )
        with BackgroundServer(create_app(settings, database=in_memory()), settings) as url:
            yield url


# The document the pod serves at `/api/openapi.json`, built from the same routes without a server,
# so that no pod has to run from collection to the end of the session.
schema = schemathesis.openapi.from_dict(build_admin_api(make_settings(api_keys=f"{KEY}:*")).openapi())


@pytest.mark.mongodb
@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_never_fails_with_a_server_error(case: schemathesis.Case, pod_url: str) -> None:
    response = case.call_and_validate(
        base_url=f"{pod_url}{API_PREFIX}",
        headers=AUTH,
        checks=[schemathesis.checks.not_a_server_error, schemathesis.checks.response_schema_conformance],
    )
    STATUSES[response.status_code] += 1


def test_the_fuzzing_got_past_auth() -> None:
    """Runs after the fuzzing (file order): generated requests reached the routes, not only the auth."""
    print(dict(sorted(STATUSES.items())))
    assert STATUSES[401] == 0 and sum(n for status, n in STATUSES.items() if status < 300) > 50
