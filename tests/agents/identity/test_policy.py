"""The identity policy: a named account must be proved, and the tools each policy needs."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from agents.config import AgentConfig
from agents.identity import IdentityPolicy


def test_the_default_is_the_calling_numbers_own_customer_without_further_proof() -> None:
    policy = AgentConfig(id="support").identity
    assert (policy.identify_by, policy.verify, policy.max_attempts) == ("caller_id", "none", 3)
    assert policy.tools() == []


@pytest.mark.parametrize(
    ("values", "error"),
    [
        ({"identify_by": "lookup"}, "needs verify 'dtmf_pin' or 'knowledge'"),
        ({"identify_by": "lookup", "verify": "none"}, "a named account is proved"),
        ({"verify": "knowledge"}, "needs 1 to 4 facts"),
        ({"verify": "knowledge", "facts": ["a", "b", "c", "d", "e"]}, "at most 4 items"),
        ({"verify": "dtmf_pin", "facts": ["postcode"]}, "only used with verify 'knowledge'"),
        ({"verify": "dtmf_pin", "max_attempts": 0}, "greater than or equal to 1"),
        ({"verify": "dtmf_pin", "max_attempts": 6}, "less than or equal to 5"),
        ({"verify": "knowledge", "facts": ["shipping.city"]}, "String should match pattern"),
        ({"collection": "$where"}, "String should match pattern"),
        ({"identify_by": "lookup", "verify": "dtmf_pin", "lookup_fields": []}, "at least one lookup field"),
        ({"verify": "fingerprint"}, "Input should be 'none', 'dtmf_pin' or 'knowledge'"),
        ({"trust_the_model": True}, "Extra inputs are not permitted"),
    ],
)
def test_unsafe_or_inconsistent_policies_are_refused(values: dict[str, Any], error: str) -> None:
    with pytest.raises(ValidationError, match=error.replace("(", r"\(").replace(")", r"\)")):
        AgentConfig(id="support", identity=values)


def test_each_policy_offers_the_identity_tools_it_needs() -> None:
    lookup = IdentityPolicy(identify_by="lookup", verify="knowledge", facts=["postcode", "date_of_birth"])
    assert [tool.name for tool in lookup.tools()] == ["identify_caller", "verify_identity"]
    assert [tool.name for tool in IdentityPolicy(identify_by="lookup", verify="dtmf_pin").tools()] == [
        "identify_caller"
    ]
    assert IdentityPolicy(verify="dtmf_pin").tools() == []
    assert "postcode and date of birth" in lookup.proof()
    assert "keypad" in IdentityPolicy(verify="dtmf_pin").proof()
