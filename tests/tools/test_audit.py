"""The audit trail written into the call's record in MongoDB."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from db import BusinessData, CallRecords, Database, SafeQuery
from tools import BUILTIN, CallRecordsAudit, ToolCall, ToolContext, ToolExecutor, builtin_tools

pytestmark = pytest.mark.mongodb


async def test_tool_calls_are_audited_in_the_call_record(
    make_database: Callable[..., Awaitable[Database]], context: ToolContext
) -> None:
    database = await make_database(max_tool_audit_per_call=3)
    calls = CallRecords(database)
    await calls.start(context.call_sid, agent_id=context.agent_id, from_number="+15550101", to_number="+15550100")
    executor = ToolExecutor(
        builtin_tools(BusinessData(SafeQuery(database)), list(BUILTIN)), CallRecordsAudit(calls), max_steps_per_turn=9
    )
    turn = executor.turn(context)
    await turn.run(ToolCall("a", "get_order_status", '{"order_id": "O-1"}'))
    await turn.run(ToolCall("b", "list_recent_orders", '{"$where": "' + "x" * 9000 + '"}'))
    for i in range(3):
        await turn.run(ToolCall(f"c{i}", "find_customer", '{"email": "grace@example.com"}'))  # not an argument
    record = await calls.get(context.call_sid)
    assert record is not None
    first, second, third = record["tool_audit"]
    assert (first["name"], first["ok"], first["error"]) == ("get_order_status", True, None)
    assert first["tool_call_id"] == "a" and first["result_bytes"] > 0 and first["duration_ms"] >= 0
    assert (second["ok"], second["error"], second["arguments_chars"]) == (False, "too_large", 9014)
    assert len(second["arguments"]) == 500
    assert third["error"] == "invalid_arguments"
    assert record["dropped"]["tool_audit"] == 2  # bounded per call
