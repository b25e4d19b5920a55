"""The identity reads: a key by caller ID or a named identifier, and the secrets checked against."""

from __future__ import annotations

import pytest

from db import Database, QueryLog, SafeQuery
from db.caller_records import CallerRecords
from db.indexes import CUSTOMERS
from db.pin_hash import pin_matches
from db.seed import seed_demo

pytestmark = pytest.mark.mongodb


@pytest.fixture
async def records(database: Database, query_log: QueryLog) -> CallerRecords:
    await seed_demo(database)
    return CallerRecords(SafeQuery(database, query_log), facts=("postcode", "date_of_birth"))


@pytest.mark.parametrize(
    ("field", "value"), [("phone", "+15550102"), ("email", "grace@example.com"), ("account_id", "ACCT-1002")]
)
async def test_a_caller_is_identified_by_each_lookup_field(records: CallerRecords, field: str, value: str) -> None:
    assert await records.key_by(field, value) == "C-1002"


async def test_unknown_and_empty_identifiers_name_nobody(records: CallerRecords) -> None:
    assert await records.key_by("phone", "+15559999") is None
    assert await records.key_by("email", "") is None
    with pytest.raises(ValueError, match="cannot be identified by 'name'"):
        await records.key_by("name", "Grace Hopper")


async def test_an_identifier_shared_by_two_records_names_nobody(database: Database) -> None:
    """On a collection without a unique index (an operator's own data), two matches are ambiguous."""
    await database.collection("patients").insert_many(
        [{"patient_id": "P-1", "phone": "+15550500"}, {"patient_id": "P-2", "phone": "+15550500"}]
    )
    records = CallerRecords(SafeQuery(database), collection="patients", key_field="patient_id", lookup_fields=["phone"])
    assert await records.key_by("phone", "+15550500") is None


async def test_secrets_are_read_with_their_own_projection(records: CallerRecords, query_log: QueryLog) -> None:
    assert pin_matches("1234", await records.pin_hash("C-1001"))
    assert await records.facts_of("C-1001") == {"postcode": "SW1A 1AA", "date_of_birth": "1815-12-10"}
    assert await records.pin_hash("C-9999") is None and await records.facts_of("C-9999") == {}
    reads = [q for q in query_log if q.collection == CUSTOMERS]
    assert {tuple(sorted(k for k in q.projection or {} if k != "_id")) for q in reads} == {
        ("customer_id", "pin_hash"),
        ("customer_id", "date_of_birth", "postcode"),
    }
    assert all(q.limit and q.max_time_ms for q in reads)
