"""Acceptance 3, the incident for declared tools: the 21 incident payloads against declared
equivalents of `list_recent_orders` are refused with a short error, the call goes on, and nothing
unbounded or unselective reaches the database, even for a customer with far more orders than any limit.

Two equivalents: the pre-identity one (the model names `customer_id`, scope none), where every
payload is refused; and the caller-scoped built-in declaration, where `customer_id` is not an
argument at all: every payload naming it is refused, and the rest read only the caller's orders.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from db import Database, QueryLog, SafeQuery
from db.seed import BULK_CUSTOMER, seed_large
from tests.support.declared_guards import assert_declared_bounded
from tests.support.incident_payloads import INCIDENT_CALLS
from tools import CallerIdentity, InMemoryToolAudit, ToolCall, ToolContext, ToolExecutor
from tools.declared import BUILTIN_DECLARATIONS, DeclaredToolResources, build_tool, parse_declaration

pytestmark = pytest.mark.mongodb

BULK_ORDERS = 200
"""More than any limit (20 results, the pod's 50); enough to show the cut and the count."""
CUSTOMER_ID = {
    "name": "customer_id",
    "type": "string",
    "required": True,
    "max_length": 40,
    "pattern": "[A-Za-z0-9][A-Za-z0-9_-]{0,39}",
}
MODEL_NAMES_THE_CUSTOMER: dict[str, Any] = {
    **BUILTIN_DECLARATIONS["list_recent_orders"],
    "scope": "none",
    "identity_field": None,
    "arguments": [CUSTOMER_ID, *BUILTIN_DECLARATIONS["list_recent_orders"]["arguments"]],
    "selective": ["customer_id"],
}


@pytest.fixture
async def bulk(database: Database) -> Database:
    """The demo data plus one customer with far more orders than any limit."""
    await seed_large(database, BULK_ORDERS + 20, bulk_orders=BULK_ORDERS)
    return database


def executor_for(document: dict[str, Any], safe_query: SafeQuery, audit: InMemoryToolAudit) -> ToolExecutor:
    declaration = parse_declaration(_clean(document))
    return ToolExecutor([build_tool(declaration, DeclaredToolResources(safe_query=safe_query))], audit)


def test_the_incident_payloads_are_all_here() -> None:
    assert len(INCIDENT_CALLS) == 21


@pytest.mark.parametrize("arguments", INCIDENT_CALLS.values(), ids=INCIDENT_CALLS.keys())
async def test_a_declared_order_search_refuses_every_incident_payload_and_the_call_goes_on(
    database: Database, query_log: QueryLog, arguments: str
) -> None:
    audit = InMemoryToolAudit()
    executor = executor_for(MODEL_NAMES_THE_CUSTOMER, SafeQuery(database, query_log), audit)
    turn = executor.turn(ToolContext("CA-incident", "support", "+15550101"))
    refused = await turn.run(ToolCall("call_bad", "list_recent_orders", arguments))
    assert not refused.ok and refused.error in ("invalid_arguments", "too_large", "refused"), refused
    message = json.loads(refused.content)["error"]
    assert len(refused.content) <= 700 and "Traceback" not in message
    assert len(query_log) == 0  # nothing reached the database

    answered = await turn.run(ToolCall("call_ok", "list_recent_orders", '{"customer_id": "C-1001"}'))
    assert answered.ok and len(json.loads(answered.content)["results"]) == 3
    assert_declared_bounded(query_log, parse_declaration(_clean(MODEL_NAMES_THE_CUSTOMER)), database.settings, None)
    assert [entry.ok for entry in audit.entries] == [False, True]


@pytest.mark.parametrize("arguments", INCIDENT_CALLS.values(), ids=INCIDENT_CALLS.keys())
async def test_the_caller_scoped_declaration_reads_only_the_callers_orders_whatever_is_sent(
    database: Database, query_log: QueryLog, arguments: str
) -> None:
    document = BUILTIN_DECLARATIONS["list_recent_orders"]
    executor = executor_for(document, SafeQuery(database, query_log), InMemoryToolAudit())
    caller = CallerIdentity(customer_key="C-1001")
    outcome = await executor.turn(ToolContext("CA-incident", "support", "+15550101", caller)).run(
        ToolCall("call", "list_recent_orders", arguments)
    )
    if arguments.strip() == "{}":  # no argument is needed: the server scopes the read to the caller
        assert outcome.ok and len(json.loads(outcome.content)["results"]) == 3
    else:  # every other payload names a field the tool does not have, or is not an object
        assert not outcome.ok and outcome.error in ("invalid_arguments", "too_large"), outcome
        assert len(query_log) == 0
    assert_declared_bounded(query_log, parse_declaration(document), database.settings, "C-1001")


async def test_a_broad_read_returns_at_most_max_results_and_says_how_many_more(bulk: Database) -> None:
    for document, arguments, caller in [
        (MODEL_NAMES_THE_CUSTOMER, {"customer_id": BULK_CUSTOMER}, CallerIdentity()),
        (BUILTIN_DECLARATIONS["list_recent_orders"], {}, CallerIdentity(customer_key=BULK_CUSTOMER)),
    ]:
        query_log = QueryLog()
        executor = executor_for(document, SafeQuery(bulk, query_log), InMemoryToolAudit())
        outcome = await executor.turn(ToolContext("CA-broad", "support", "+15550199", caller)).run(
            ToolCall("call", "list_recent_orders", json.dumps(arguments))
        )
        body = json.loads(outcome.content)
        assert outcome.ok and outcome.truncated and len(body["results"]) == 20
        assert body["truncated"] == f"truncated: {BULK_ORDERS - 20} more"
        created = [order["created_at"] for order in body["results"]]
        assert created == sorted(created, reverse=True)
        assert [record.operation for record in query_log] == ["find", "count"]
        assert_declared_bounded(query_log, parse_declaration(_clean(document)), bulk.settings, caller.customer_key)


def _clean(document: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in document.items() if value is not None}
