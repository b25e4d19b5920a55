"""The incident as a regression test.

A model called the order search with `params: {}`, the code ran `collection.find(params)`, and
MongoDB returned every document into a 1 GiB pod. Here a scripted model makes that call and its
relatives, the way the conversation engine drives tools (one caller turn, then the next call in the
same turn). Each gets a short error back, the call goes on, and the db layer's query log shows that
nothing unbounded or selector-less reached the database.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

import pytest

from db import BusinessData, Database, QueryLog, SafeQuery
from db.seed import BULK_CUSTOMER, seed_demo, seed_large
from tests.support.incident_payloads import INCIDENT_CALLS
from tests.support.tool_guards import assert_bounded
from tools import BUILTIN, CallerIdentity, InMemoryToolAudit, ToolCall, ToolContext, ToolExecutor, builtin_tools

pytestmark = pytest.mark.mongodb

BULK_ORDERS = 1500
VALID_CALL = ToolCall("call_ok", "list_recent_orders", '{"limit": 2}')
NO_LONGER_UNSAFE = {"empty", "required field missing"}
"""With the customer taken from the verified caller, not the arguments, `{}` and a search by status
alone are valid: each reads only the caller's own orders, bounded (checked below)."""


@pytest.fixture
def context() -> ToolContext:
    """Ada Lovelace (C-1001), verified by the server."""
    return ToolContext("CA-incident", "support", "+15550101", CallerIdentity(customer_key="C-1001"))


@pytest.mark.parametrize("arguments", INCIDENT_CALLS.values(), ids=INCIDENT_CALLS.keys())
async def test_the_order_search_refuses_and_the_call_goes_on(
    executor: ToolExecutor,
    context: ToolContext,
    query_log: QueryLog,
    database: Database,
    audit: InMemoryToolAudit,
    arguments: str,
) -> None:
    turn = executor.turn(context)
    first = await turn.run(ToolCall("call_bad", "list_recent_orders", arguments))
    if arguments in (INCIDENT_CALLS[name] for name in NO_LONGER_UNSAFE):
        assert first.ok and query_log.records and all(q.filter["customer_id"] == "C-1001" for q in query_log)
        assert_bounded(list(query_log), database.settings)
        query_log.clear()
    else:
        assert not first.ok and first.error in ("invalid_arguments", "too_large")
        message = json.loads(first.content)["error"]
        assert len(first.content) <= 700 and "Traceback" not in message
        assert "list_recent_orders" in message
        assert len(query_log) == 0  # nothing reached the database

    answered = await turn.run(VALID_CALL)
    assert answered.ok and len(json.loads(answered.content)["orders"]) == 2
    assert_bounded(list(query_log), database.settings)
    assert [entry.ok for entry in audit.entries] == [first.ok, True]


GENERIC_BAD = ['{"$where": "1"}', '{"$or": [{}]}', "not json", '{"a": ' * 400 + "1" + "}" * 400]


@pytest.mark.parametrize("name", list(BUILTIN))
async def test_empty_arguments_never_read_beyond_the_verified_caller(
    executor: ToolExecutor, context: ToolContext, query_log: QueryLog, database: Database, name: str
) -> None:
    """`{}` is refused by a tool that needs arguments, and read as "the caller's own" by one that
    does not: either way no query is issued without the verified customer in its filter."""
    outcome = await executor.turn(context).run(ToolCall("c", name, "{}"))
    assert outcome.ok or len(query_log) == 0
    assert all(q.filter.get("customer_id") == "C-1001" for q in query_log)
    assert_bounded(list(query_log), database.settings)


@pytest.mark.parametrize("name", list(BUILTIN))
@pytest.mark.parametrize("arguments", GENERIC_BAD)
async def test_no_tool_runs_a_query_from_bad_arguments(
    executor: ToolExecutor, context: ToolContext, query_log: QueryLog, name: str, arguments: str
) -> None:
    outcome = await executor.turn(context).run(ToolCall("c", name, arguments))
    assert not outcome.ok and "error" in json.loads(outcome.content)
    assert len(query_log) == 0


@pytest.mark.parametrize("name", list(BUILTIN))
async def test_operators_in_every_field_of_every_tool_are_refused(
    executor: ToolExecutor, context: ToolContext, query_log: QueryLog, name: str
) -> None:
    fields = list(executor.tools[name].arguments.model_fields)
    for field in fields or ["customer_id"]:  # a tool without arguments gets one it does not have
        arguments = json.dumps({other: "C-1001" for other in fields} | {field: {"$ne": None}})
        outcome = await executor.turn(context).run(ToolCall("c", name, arguments))
        assert not outcome.ok and field in json.loads(outcome.content)["error"]
    assert len(query_log) == 0


Broad = tuple[ToolExecutor, QueryLog, Database]


def bulk_buyer(context: ToolContext) -> ToolContext:
    """A call verified as the customer with far more orders than any limit."""
    return ToolContext(context.call_sid, context.agent_id, "+15550199", CallerIdentity(customer_key=BULK_CUSTOMER))


@pytest.fixture
async def broad(make_database: Callable[..., Awaitable[Database]]) -> Callable[..., Awaitable[Broad]]:
    """A database where one customer has far more orders than any limit."""

    async def make(**settings: object) -> Broad:
        database = await make_database(**settings)
        await seed_large(database, BULK_ORDERS + 100, bulk_orders=BULK_ORDERS)
        await seed_demo(database)
        log = QueryLog()
        return ToolExecutor(builtin_tools(BusinessData(SafeQuery(database, log)), list(BUILTIN))), log, database

    return make


async def test_a_broad_valid_search_returns_at_most_the_limit_and_says_so(
    broad: Callable[..., Awaitable[Broad]], context: ToolContext
) -> None:
    executor, log, database = await broad()
    outcome = await executor.turn(bulk_buyer(context)).run(ToolCall("c", "list_recent_orders", '{"limit": 20}'))
    body = json.loads(outcome.content)
    assert outcome.ok and outcome.truncated
    assert len(body["orders"]) == 20
    assert body["truncated"] == f"truncated: {BULK_ORDERS - 20} more"
    created = [order["created_at"] for order in body["orders"]]
    assert created == sorted(created, reverse=True)
    assert outcome.result_bytes <= executor.max_result_bytes
    assert_bounded(list(log), database.settings)
    assert [record.operation for record in log] == ["find", "count"]


async def test_a_broad_search_stops_at_the_byte_budget(
    broad: Callable[..., Awaitable[Broad]], context: ToolContext
) -> None:
    executor, log, database = await broad(max_result_bytes=1024)
    outcome = await executor.turn(bulk_buyer(context)).run(ToolCall("c", "list_recent_orders", '{"limit": 20}'))
    body = json.loads(outcome.content)
    assert outcome.ok and 0 < len(body["orders"]) < 20
    assert body["truncated"] == f"truncated: {BULK_ORDERS - len(body['orders'])} more"
    assert_bounded(list(log), database.settings)


async def test_the_result_cap_shortens_what_the_budget_let_through(
    broad: Callable[..., Awaitable[Broad]], context: ToolContext
) -> None:
    executor, _, _ = await broad()
    small = ToolExecutor(list(executor.tools.values()), max_result_bytes=1024)
    outcome = await small.turn(bulk_buyer(context)).run(ToolCall("c", "list_recent_orders", '{"limit": 20}'))
    body = json.loads(outcome.content)
    assert outcome.ok and outcome.result_bytes <= 1024 and len(body["orders"]) < 20
    assert body["truncated"] == f"truncated: {BULK_ORDERS - len(body['orders'])} more"
