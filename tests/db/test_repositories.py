"""Agent configs, phone-number routing and call records: keyed, validated, bounded."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest

from db import AgentConfigs, CallRecords, Database, PhoneNumbers

pytestmark = pytest.mark.mongodb


async def test_agent_configs_round_trip(database: Database) -> None:
    configs = AgentConfigs(database)
    await configs.put("support", {"greeting": "Hello", "tools": ["find_customer"]})
    await configs.put("sales", {"greeting": "Hi"})
    await configs.put("support", {"greeting": "Hello again", "tools": []})
    assert await configs.get("support") == {"greeting": "Hello again", "tools": []}
    assert await configs.get("missing") is None
    assert await configs.ids() == ["sales", "support"]
    assert await configs.delete("sales") and not await configs.delete("sales")


async def test_agent_configs_refuse_bad_ids_and_oversized_documents(
    make_database: Callable[..., Awaitable[Database]],
) -> None:
    configs = AgentConfigs(await make_database(max_agent_config_bytes=1024))
    with pytest.raises(ValueError, match="agent id"):
        await configs.put("../etc", {})
    with pytest.raises(ValueError, match="agent id"):
        await configs.get({"$ne": None})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="limit is 1024"):
        await configs.put("big", {"prompt": "x" * 2000})
    assert await configs.get("big") is None


async def test_phone_numbers_route_to_agents(database: Database) -> None:
    numbers = PhoneNumbers(database)
    await numbers.assign("+15550100", "support")
    await numbers.assign("+15550111", "sales")
    await numbers.assign("+15550111", "support")
    assert await numbers.agent_for("+15550100") == "support"
    assert await numbers.agent_for(" +15550111 ") == "support"
    assert await numbers.agent_for("+15559999") is None
    assert await numbers.agent_for("not a number") is None
    assert await numbers.routes() == {"+15550100": "support", "+15550111": "support"}
    assert await numbers.release("+15550100")
    assert await numbers.agent_for("+15550100") is None
    with pytest.raises(ValueError, match=r"E\.164"):
        await numbers.assign("555-0100", "support")


async def test_a_call_record_keeps_transcript_audit_and_latency(database: Database) -> None:
    calls = CallRecords(database)
    await calls.start("CA1", agent_id="support", from_number="+15550101", to_number="+15550100")
    await calls.start("CA1", agent_id="other", from_number="x", to_number="y")  # a repeat changes nothing
    assert await calls.add_turn("CA1", "caller", "Where is my order?")
    assert await calls.add_turn("CA1", "agent", "Let me check.")
    assert await calls.add_tool_audit("CA1", {"name": "get_order_status", "ok": True, "duration_ms": 3.5})
    assert await calls.add_latency("CA1", {"turn": 1, "stt_ms": 120.0, "first_audio_ms": 800})
    await calls.finish("CA1", outcome="caller hung up")
    record = await calls.get("CA1")
    assert record is not None
    assert record["agent_id"] == "support"
    assert [turn["text"] for turn in record["transcript"]] == ["Where is my order?", "Let me check."]
    assert record["tool_audit"][0]["name"] == "get_order_status"
    assert record["latency"][0]["first_audio_ms"] == 800
    assert record["outcome"] == "caller hung up" and record["ended_at"] is not None
    assert record["counts"] == {"transcript": 2, "tool_audit": 1, "latency": 1}


async def test_call_lists_are_bounded_per_call(make_database: Callable[..., Awaitable[Database]]) -> None:
    database = await make_database(max_turns_per_call=3, max_turn_chars=10, max_tool_audit_per_call=1)
    calls = CallRecords(database)
    await calls.start("CA2", agent_id="support", from_number="+1", to_number="+2")
    stored = [await calls.add_turn("CA2", "caller", f"turn {i} " + "blah " * 100) for i in range(5)]
    assert stored == [True, True, True, False, False]
    assert [await calls.add_tool_audit("CA2", {"n": i}) for i in range(3)] == [True, False, False]
    record = await calls.get("CA2")
    assert record is not None
    assert len(record["transcript"]) == 3 and all(len(turn["text"]) <= 10 for turn in record["transcript"])
    assert record["dropped"] == {"transcript": 2, "tool_audit": 2, "latency": 0}


async def test_entries_must_be_flat(database: Database) -> None:
    calls = CallRecords(database)
    await calls.start("CA3", agent_id="support", from_number="+1", to_number="+2")
    with pytest.raises(ValueError, match="plain value"):
        await calls.add_tool_audit("CA3", {"arguments": {"$where": "1"}})
    with pytest.raises(ValueError, match="not allowed"):
        await calls.add_latency("CA3", {"$inc": 1})
    assert await calls.add_tool_audit("CA3", {"arguments": "x" * 5000, "nan": float("nan")})
    record = await calls.get("CA3")
    assert record is not None
    assert len(record["tool_audit"][0]["arguments"]) == 1000 and record["tool_audit"][0]["nan"] is None


async def test_appending_to_an_unknown_call_stores_nothing(database: Database) -> None:
    calls = CallRecords(database)
    assert not await calls.add_turn("CA-missing", "caller", "hello")
    assert await calls.get("CA-missing") is None


async def test_recent_calls_newest_first_without_lists(database: Database) -> None:
    calls = CallRecords(database)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for i in range(4):
        agent = "support" if i % 2 else "sales"
        await calls.start(f"CA{i}", agent_id=agent, from_number="+1", to_number="+2", started_at=start + timedelta(i))
    recent = await calls.recent(limit=3)
    assert [call["call_sid"] for call in recent] == ["CA3", "CA2", "CA1"]
    assert "transcript" not in recent[0]
    assert [call["call_sid"] for call in await calls.recent(agent_id="support")] == ["CA3", "CA1"]
