"""Declared Mongo tools run through the executor on the seeded database: every query carries the
verified caller's key and a selective field, is bounded (limit, projection, maxTimeMS), returns only
the declared fields, and an unverified caller gets the message telling the model what to ask for."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from db import Database, DbSettings, QueryLog, SafeQuery, connect
from tests.support.declared_guards import assert_declared_bounded
from tools import InMemoryToolAudit, ToolCall, ToolContext, ToolError, ToolExecutor
from tools.declared import (
    DeclarationBase,
    DeclaredToolResources,
    build_tool,
    builtin_declaration,
    describe,
    parse_declaration,
)
from tools.declared.mongo_build import NOTHING_FOUND

pytestmark = pytest.mark.mongodb

CUSTOMER_KEY = "C-1001"
SET_NOTE: dict[str, Any] = {
    "name": "set_delivery_note",
    "kind": "mongo_update_one",
    "description": "Change the delivery note of one of the caller's orders.",
    "collection": "orders",
    "identity_field": "customer_id",
    "arguments": [
        {"name": "order_id", "type": "string", "max_length": 40, "required": True},
        {"name": "note", "type": "string", "max_length": 200, "required": True},
    ],
    "selective": ["order_id"],
    "set": {"delivery_note": {"argument": "note"}, "note_source": {"value": "phone"}},
    "returns": ["order_id", "delivery_note"],
}
BY_NAME: dict[str, Any] = {
    "name": "find_customer_by_name",
    "kind": "mongo_find",
    "description": "Customers whose name starts with what the caller says (staff lines only).",
    "scope": "none",
    "collection": "customers",
    "arguments": [{"name": "name", "type": "string", "max_length": 60, "match": "prefix", "required": True}],
    "selective": ["name"],
    "returns": ["customer_id", "name"],
    "max_results": 3,
}


async def call(
    declaration: DeclarationBase,
    resources: DeclaredToolResources,
    context: ToolContext,
    arguments: dict[str, Any],
    audit: InMemoryToolAudit | None = None,
) -> tuple[bool, dict[str, Any]]:
    executor = ToolExecutor([build_tool(declaration, resources)], audit)
    outcome = await executor.turn(context).run(ToolCall("call_1", declaration.name, json.dumps(arguments)))
    return outcome.ok, json.loads(outcome.content)


async def test_the_callers_orders_are_read_with_their_key_and_only_declared_fields(
    resources: DeclaredToolResources, verified: ToolContext, query_log: QueryLog, database: Database
) -> None:
    declaration = builtin_declaration("list_recent_orders")
    ok, body = await call(declaration, resources, verified, {"status": None, "since": "2020-01-01", "until": None})
    assert ok, body
    orders = body["results"]
    assert [order["order_id"] for order in orders] == ["O-50003", "O-50001", "O-50002"]  # newest first
    assert all(set(order) <= set(declaration.returns) for order in orders)  # no notes, address, customer id
    assert [record.filter["customer_id"] for record in query_log] == [CUSTOMER_KEY]
    assert_declared_bounded(query_log, declaration, database.settings, CUSTOMER_KEY)


async def test_another_customers_order_number_finds_nothing(
    resources: DeclaredToolResources, verified: ToolContext, query_log: QueryLog, database: Database
) -> None:
    declaration = builtin_declaration("get_order_status")
    ok, body = await call(declaration, resources, verified, {"order_id": "O-50004"})  # C-1002's order
    assert ok and body == {"found": 0, "message": NOTHING_FOUND}, body
    ok, body = await call(declaration, resources, verified, {"order_id": "O-50001"})
    assert ok and body["results"][0]["status"] == "shipped", body
    assert [dict(record.filter) for record in query_log] == [
        {"order_id": "O-50004", "customer_id": CUSTOMER_KEY},
        {"order_id": "O-50001", "customer_id": CUSTOMER_KEY},
    ]
    assert_declared_bounded(query_log, declaration, database.settings, CUSTOMER_KEY)


@pytest.mark.parametrize("name", ["list_recent_orders", "get_order_status"])
async def test_an_unverified_caller_is_told_what_to_do_and_nothing_is_read(
    resources: DeclaredToolResources, unverified: ToolContext, query_log: QueryLog, name: str
) -> None:
    arguments = {"order_id": "O-50001"} if name == "get_order_status" else {}
    ok, body = await call(builtin_declaration(name), resources, unverified, arguments)
    assert not ok and body["error"] == unverified.caller.unverified_message
    assert len(query_log) == 0


async def test_the_model_cannot_name_the_customer(
    resources: DeclaredToolResources, verified: ToolContext, query_log: QueryLog
) -> None:
    ok, body = await call(builtin_declaration("list_recent_orders"), resources, verified, {"customer_id": "C-1002"})
    assert not ok and "customer_id is not a field" in body["error"]
    assert len(query_log) == 0


async def test_a_selective_argument_must_be_given(
    resources: DeclaredToolResources, verified: ToolContext, query_log: QueryLog
) -> None:
    declaration = parse_declaration(
        {**SET_NOTE, "arguments": [{**SET_NOTE["arguments"][0], "required": False}, SET_NOTE["arguments"][1]]}
    )
    ok, body = await call(declaration, resources, verified, {"order_id": None, "note": "at the door"})
    assert not ok and "needs one of: order_id" in body["error"]
    assert len(query_log) == 0


async def test_a_prefix_search_is_anchored_escaped_and_bounded(
    resources: DeclaredToolResources, verified: ToolContext, query_log: QueryLog, database: Database
) -> None:
    declaration = parse_declaration(BY_NAME)
    ok, body = await call(declaration, resources, verified, {"name": "Ada"})
    assert ok and body == {"found": 1, "results": [{"customer_id": "C-1001", "name": "Ada Lovelace"}]}, body
    ok, body = await call(declaration, resources, verified, {"name": "A.*"})
    assert ok and body["found"] == 0, body  # the dot and star are literal
    ok, body = await call(declaration, resources, verified, {"name": "A"})
    assert not ok and "name" in body["error"]  # shorter than a prefix may be
    assert [record.filter for record in query_log] == [{"name": {"$regex": "^Ada"}}, {"name": {"$regex": r"^A\.\*"}}]
    assert_declared_bounded(query_log, declaration, database.settings, None)


async def test_a_date_range_includes_the_last_day(
    resources: DeclaredToolResources, verified: ToolContext, query_log: QueryLog
) -> None:
    declaration = builtin_declaration("list_recent_orders")
    ok, body = await call(declaration, resources, verified, {"since": "2030-01-02", "until": "2030-01-01"})
    assert not ok and "starts after it ends" in body["error"]
    await call(declaration, resources, verified, {"until": "2030-01-01"})
    (record,) = query_log
    assert record.filter["created_at"] == {"$lt": datetime(2030, 1, 2, tzinfo=UTC)}


async def test_an_update_sets_only_declared_fields_of_the_callers_own_document(
    resources: DeclaredToolResources, verified: ToolContext, query_log: QueryLog, database: Database
) -> None:
    declaration = parse_declaration(SET_NOTE)
    ok, body = await call(declaration, resources, verified, {"order_id": "O-50004", "note": "mine now"})
    assert ok and body == {"updated": False, "message": NOTHING_FOUND}, body  # C-1002's order: untouched
    ok, body = await call(declaration, resources, verified, {"order_id": "O-50001", "note": "at the door"})
    assert ok and body == {"updated": True, "record": {"order_id": "O-50001", "delivery_note": "at the door"}}
    orders = database.collection("orders")
    other = await orders.find_one({"order_id": "O-50004"})
    assert "delivery_note" not in other and other["customer_id"] == "C-1002"
    mine = await orders.find_one({"order_id": "O-50001"})
    assert (mine["delivery_note"], mine["note_source"], mine["customer_id"]) == ("at the door", "phone", CUSTOMER_KEY)
    assert [record.filter["customer_id"] for record in query_log] == [CUSTOMER_KEY, CUSTOMER_KEY]
    assert_declared_bounded(query_log, declaration, database.settings, CUSTOMER_KEY)


async def test_an_update_from_an_unverified_caller_writes_nothing(
    resources: DeclaredToolResources, unverified: ToolContext, query_log: QueryLog
) -> None:
    ok, body = await call(parse_declaration(SET_NOTE), resources, unverified, {"order_id": "O-50001", "note": "x"})
    assert not ok and body["error"] == unverified.caller.unverified_message
    assert len(query_log) == 0


async def test_the_dry_run_shows_exactly_the_query_a_call_issues(
    resources: DeclaredToolResources, verified: ToolContext, query_log: QueryLog, database: Database
) -> None:
    declaration = builtin_declaration("list_recent_orders")
    sample = {"status": "shipped", "since": "2020-01-01"}
    shown = describe(declaration, sample, verified, resources)
    await call(declaration, resources, verified, sample)
    (issued,) = query_log
    assert shown == {
        "operation": "find",
        "collection": "orders",
        "filter": {"status": "shipped", "created_at": {"$gte": "2020-01-01T00:00:00+00:00"}, "customer_id": "C-1001"},
        "projection": {name: 1 for name in declaration.returns} | {"_id": 0},
        "sort": [["created_at", -1]],
        "limit": issued.limit,
        "max_time_ms": database.settings.max_time_ms,
        "batch_size": issued.batch_size,
        "max_results": 20,
        "max_result_bytes": database.settings.max_result_bytes,
    }
    assert shown["filter"].keys() == issued.filter.keys() and issued.limit == 21


async def test_the_dry_run_of_an_update_with_a_sample_customer_key(
    resources: DeclaredToolResources, unverified: ToolContext, query_log: QueryLog
) -> None:
    shown = describe(
        parse_declaration(SET_NOTE), {"order_id": "O-50002", "note": "x"}, unverified, resources, customer_key="C-1002"
    )
    assert shown["operation"] == "update_one"
    assert shown["filter"] == {"order_id": "O-50002", "customer_id": "C-1002"}
    assert shown["update"] == {"$set": {"delivery_note": "x", "note_source": "phone"}}
    assert len(query_log) == 0  # nothing issued


async def test_the_dry_run_refuses_invalid_samples_and_unverified_callers(
    resources: DeclaredToolResources, unverified: ToolContext
) -> None:
    declaration = builtin_declaration("get_order_status")
    with pytest.raises(ValidationError):
        describe(declaration, {"order_id": {"$ne": None}}, unverified, resources, customer_key="C-1001")
    with pytest.raises(ToolError):
        describe(declaration, {"order_id": "O-50001"}, unverified, resources)


async def test_a_declared_tool_on_an_unreachable_database_tells_the_model_so(verified: ToolContext) -> None:
    settings = DbSettings(uri="mongodb://127.0.0.1:1/", server_selection_timeout_ms=100, connect_timeout_ms=100)
    database = connect(settings)  # port 1 on loopback: nothing listens
    try:
        resources = DeclaredToolResources(safe_query=SafeQuery(database))
        for declaration, arguments in [
            (builtin_declaration("get_order_status"), {"order_id": "O-50001"}),
            (parse_declaration(SET_NOTE), {"order_id": "O-50001", "note": "x"}),
        ]:
            executor = ToolExecutor([build_tool(declaration, resources)])
            outcome = await executor.turn(verified).run(ToolCall("1", declaration.name, json.dumps(arguments)))
            assert (outcome.ok, outcome.error) == (False, "database")
            assert "could not reach the records" in outcome.content
    finally:
        await database.close()
