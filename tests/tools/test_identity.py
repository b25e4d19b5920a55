"""The identity tools hand what the caller said to the call's checks, and decide nothing themselves."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from tools import CallerIdentity, ToolCall, ToolContext, ToolError, ToolExecutor
from tools.identity import identify_caller, verify_identity


class FakeChecks:
    """Stands in for the session's verifier (`agents.identity.CallerVerifier`): records what it got."""

    def __init__(self) -> None:
        self.claims: list[tuple[str, str]] = []
        self.facts: list[Mapping[str, str]] = []

    async def identify(self, field: str, value: str) -> str:
        self.claims.append((field, value))
        return "noted; now ask for the postcode"

    async def verify(self, facts: Mapping[str, str]) -> str:
        self.facts.append(dict(facts))
        if facts.get("postcode") != "10001":
            raise ToolError("those details do not match the account")
        return "the caller is verified"


@pytest.fixture
def checks() -> FakeChecks:
    return FakeChecks()


async def run(checks: FakeChecks | None, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    executor = ToolExecutor([identify_caller(["account_id", "email"]), verify_identity(["postcode"])])
    context = ToolContext("CA1", "support", "+15550101", CallerIdentity(checks=checks))
    outcome = await executor.turn(context).run(ToolCall("c1", name, json.dumps(arguments)))
    return json.loads(outcome.content)


async def test_identify_caller_passes_the_claim_on(checks: FakeChecks) -> None:
    body = await run(checks, "identify_caller", {"field": "email", "value": " grace@example.com "})
    assert body == {"next": "noted; now ask for the postcode"}
    assert checks.claims == [("email", "grace@example.com")]


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ({"field": "customer_id", "value": "C-1002"}, "field: Input should be 'account_id' or 'email'"),
        ({"field": "email", "value": "x" * 255}, "value: String should have at most 254 characters"),
        ({"field": "email", "value": {"$ne": None}}, "value: Input should be a valid string"),
        ({"field": "email", "value": "a@b.c", "verified": True}, "verified is not a field"),
    ],
)
async def test_identify_caller_refuses_what_is_not_a_claim(
    checks: FakeChecks, arguments: dict[str, Any], error: str
) -> None:
    assert error in (await run(checks, "identify_caller", arguments))["error"]
    assert checks.claims == []


async def test_verify_identity_passes_every_fact_and_reports_the_checks_verdict(checks: FakeChecks) -> None:
    assert (await run(checks, "verify_identity", {"postcode": "10001"}))["verified"] is True
    assert (await run(checks, "verify_identity", {"postcode": "99999"})) == {
        "error": "those details do not match the account"
    }
    assert (
        "customer_key is not a field"
        in (await run(checks, "verify_identity", {"postcode": "10001", "customer_key": "C-1002"}))["error"]
    )
    assert checks.facts == [{"postcode": "10001"}, {"postcode": "99999"}]


async def test_without_checks_the_identity_tools_refuse() -> None:
    assert await run(None, "identify_caller", {"field": "email", "value": "a@b.co"}) == {
        "error": "identity checks are not available on this call"
    }


def test_an_identity_tool_needs_something_to_ask_for() -> None:
    with pytest.raises(ValueError, match="at least one lookup field"):
        identify_caller([])
    with pytest.raises(ValueError, match="at least one fact"):
        verify_identity([])
