"""The driver's errors stay in db/: callers above see `DatabaseError`, with the driver's error as its cause."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pymongo.errors import PyMongoError

from db import AgentConfigs, BusinessData, Database, DatabaseError, DbSettings, QueryLog, SafeQuery, connect
from tools import BUILTIN, CallerIdentity, ToolCall, ToolContext, ToolExecutor, builtin_tools

UNREACHABLE = DbSettings(uri="mongodb://127.0.0.1:1/", server_selection_timeout_ms=100, connect_timeout_ms=100)
"""Port 1 on loopback: nothing listens, so every operation fails after the server-selection timeout."""


@pytest.fixture
async def unreachable() -> AsyncIterator[Database]:
    database = connect(UNREACHABLE)
    yield database
    await database.close()


async def test_a_repository_raises_database_error_caused_by_the_driver(unreachable: Database) -> None:
    with pytest.raises(DatabaseError, match="ServerSelectionTimeoutError") as raised:
        await AgentConfigs(unreachable).current("support")
    assert isinstance(raised.value.__cause__, PyMongoError)


async def test_db_refusals_pass_through_unchanged(unreachable: Database) -> None:
    with pytest.raises(ValueError, match="cannot be looked up"):
        await BusinessData(SafeQuery(unreachable, QueryLog())).customer("name", "Ada")  # type: ignore[arg-type]


async def test_a_tool_on_an_unreachable_database_tells_the_model_so(unreachable: Database) -> None:
    business = BusinessData(SafeQuery(unreachable, QueryLog()))
    executor = ToolExecutor(builtin_tools(business, sorted(BUILTIN)))
    verified = CallerIdentity(customer_key="C-1001")  # past identity: the read itself meets the outage
    turn = executor.turn(ToolContext(call_sid="CA1", agent_id="support", caller_number="+15550101", caller=verified))
    outcome = await turn.run(ToolCall("1", "get_order_status", '{"order_id": "O-1"}'))
    assert (outcome.ok, outcome.error) == (False, "database")
    assert "could not reach the records" in outcome.content
