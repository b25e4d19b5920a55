"""One call's identity on seeded demo data: caller ID, a named account, PIN and facts, bounded
attempts, and that nothing the caller says (or the model sends) sets the key without proof."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from agents.identity import CallerVerifier, IdentityPolicy
from agents.identity.verifier import fact_matches, normalise
from agents.port import CallInfo
from db import Database, SafeQuery
from db.errors import DatabaseError
from db.seed import seed_demo
from tests.support.db import make_database
from tools import ToolError

pytestmark = pytest.mark.mongodb

ADA, GRACE = "+15550101", "+15550102"
KNOWLEDGE = {"identify_by": "lookup", "verify": "knowledge", "facts": ["postcode", "date_of_birth"]}
Start = Callable[..., Awaitable[CallerVerifier]]


@pytest.fixture
async def database(make_database: Callable[..., Awaitable[Database]]) -> Database:
    database = await make_database()
    await seed_demo(database)
    return database


@pytest.fixture
def start(database: Database) -> Start:
    async def start(number: str = ADA, direction: str = "inbound", **policy: Any) -> CallerVerifier:
        rules = IdentityPolicy(**policy)
        verifier = CallerVerifier(rules, rules.records(SafeQuery(database)))
        to, from_ = ("+15550100", number) if direction == "inbound" else (number, "+15550100")
        verifier.start(CallInfo("CA1", "MZ1", "support", from_, to, direction=direction))
        await verifier.settled()
        return verifier

    return start


async def test_caller_id_without_proof_verifies_the_calling_numbers_own_customer(start: Start) -> None:
    verifier = await start(ADA)
    assert verifier.identity.verified_key() == "C-1001"


async def test_an_outbound_call_is_the_dialled_contacts_not_the_answerers_claim(start: Start) -> None:
    verifier = await start(GRACE, direction="outbound-api")
    assert verifier.identity.verified_key() == "C-1002"
    with pytest.raises(ToolError, match="already verified; one call serves one customer"):
        await verifier.identify("account_id", "ACCT-1001")  # "actually I'm Ada"
    assert verifier.identity.verified_key() == "C-1002"


async def test_an_unknown_number_is_never_anyones_customer(start: Start) -> None:
    verifier = await start("+15005550006")
    with pytest.raises(ToolError, match="not on file"):
        verifier.identity.verified_key()


async def test_a_pin_verifies_the_caller_id_customer_and_a_wrong_one_counts(start: Start) -> None:
    verifier = await start(ADA, verify="dtmf_pin")
    with pytest.raises(ToolError, match="key their PIN"):
        verifier.identity.verified_key()
    assert verifier.expects_pin()
    assert await verifier.check_pin("2468") == "(The caller keyed a PIN that does not match; 2 attempts left.)"
    assert await verifier.check_pin("1234") == "(The caller keyed their PIN: verified.)"
    assert verifier.identity.verified_key() == "C-1001" and not verifier.expects_pin()


async def test_three_wrong_pins_lock_the_call_and_the_right_one_no_longer_helps(start: Start) -> None:
    verifier = await start(ADA, verify="dtmf_pin")
    notes = [await verifier.check_pin(pin) for pin in ("0000", "1111", "2222")]
    assert notes[-1].endswith("no attempts are left, so they cannot be verified.)")
    assert verifier.locked and not verifier.expects_pin()
    assert await verifier.check_pin("1234") == "(The caller pressed keys; no PIN is needed now.)"
    with pytest.raises(ToolError, match=r"could not be verified on this call; look nothing up\. Say: I'm sorry"):
        verifier.identity.verified_key()
    assert all("1234" not in note and "0000" not in note for note in notes)


async def test_a_named_account_is_only_a_claim_until_its_facts_match(start: Start) -> None:
    verifier = await start(ADA, **KNOWLEDGE)
    with pytest.raises(ToolError, match="ask for their account id or email or phone, then call identify_caller"):
        verifier.identity.verified_key()
    with pytest.raises(ToolError, match="not identified"):
        await verifier.verify({"postcode": "10001", "date_of_birth": "1906-12-09"})  # no claim: no attempt used
    assert verifier.attempts == 0
    next_step = await verifier.identify("email", "grace@example.com")
    assert "not verified yet" in next_step and "postcode and date of birth" in next_step
    assert verifier.identity.claimed_key == "C-1002" and verifier.identity.customer_key is None
    with pytest.raises(ToolError, match=r"do not match the account \(2 attempts left\).*without saying which"):
        await verifier.verify({"postcode": "10001", "date_of_birth": "1815-12-10"})  # one right, one wrong
    assert "verified" in await verifier.verify({"postcode": " 10001 ", "date_of_birth": "1906/12/09"})
    assert verifier.identity.verified_key() == "C-1002"


async def test_an_unknown_identifier_answers_like_a_known_one(start: Start) -> None:
    """The lookup cannot be used to find out who is a customer: the same answer, and the facts fail."""
    verifier = await start(ADA, **KNOWLEDGE)
    known = await verifier.identify("account_id", "ACCT-1003")
    unknown = await verifier.identify("account_id", "ACCT-9999")
    assert known == unknown and verifier.identity.claimed_key is None
    with pytest.raises(ToolError, match="do not match"):
        await verifier.verify({"postcode": "WA14 1EP", "date_of_birth": "1912-06-23"})


async def test_once_verified_the_identity_cannot_change_mid_call(start: Start) -> None:
    verifier = await start(ADA, **KNOWLEDGE)
    await verifier.identify("account_id", "ACCT-1001")
    await verifier.verify({"postcode": "sw1a1aa", "date_of_birth": "1815 12 10"})
    with pytest.raises(ToolError, match="already verified; one call serves one customer"):
        await verifier.identify("email", "grace@example.com")
    assert verifier.identity.verified_key() == "C-1001" and verifier.identity.claimed_key == "C-1001"


async def test_facts_attempts_are_bounded_across_claims(start: Start) -> None:
    """Switching the claimed account does not buy new attempts."""
    verifier = await start(ADA, max_attempts=2, **KNOWLEDGE)
    await verifier.identify("account_id", "ACCT-1002")
    with pytest.raises(ToolError, match="1 attempt left"):
        await verifier.verify({"postcode": "x", "date_of_birth": "y"})
    await verifier.identify("account_id", "ACCT-1003")
    with pytest.raises(ToolError, match="could not be verified on this call"):
        await verifier.verify({"postcode": "x", "date_of_birth": "y"})
    with pytest.raises(ToolError, match="could not be verified"):
        await verifier.verify({"postcode": "WA14 1EP", "date_of_birth": "1912-06-23"})
    with pytest.raises(ToolError, match="could not be verified"):
        await verifier.identify("account_id", "ACCT-1001")
    assert verifier.identity.customer_key is None


async def test_a_database_failure_leaves_the_caller_unverified(database: Database) -> None:
    class Down:
        async def key_by(self, field: str, value: str) -> str | None:
            raise DatabaseError("down")

    verifier = CallerVerifier(IdentityPolicy(), Down())  # type: ignore[arg-type]
    verifier.start(CallInfo("CA1", "MZ1", "support", ADA, "+15550100"))
    await verifier.settled()
    with pytest.raises(ToolError, match="could not check who is calling right now"):
        verifier.identity.verified_key()


@pytest.mark.parametrize(
    ("stored", "said", "same"),
    [("SW1A 1AA", "sw1a-1aa", True), ("1815-12-10", "1815 12 10", True), ("10001", "zip 10001", True),
     ("Main St", "main street", False), ("", "", False)],
)  # fmt: skip
def test_facts_are_compared_after_normalisation(stored: str, said: str, same: bool) -> None:
    assert fact_matches(stored, said) is same
    assert normalise("\uff21\uff42-1")  # full-width letters == "ab1"


__all__ = ["make_database"]
