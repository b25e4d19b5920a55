"""Wiring the database into the pod: routing, agents' tools, call records."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from agents.config import AgentConfig
from agents.conversation.record import CallRecord, TurnMetrics
from db import Database, PhoneNumbers
from telephony.data import DatabaseCallStore, tools_for
from telephony.routing import InMemoryNumberDirectory, LayeredNumberDirectory
from tests.support.db import open_test_database
from tests.support.settings import make_settings

pytestmark = pytest.mark.mongodb


@pytest.fixture
async def database() -> AsyncIterator[Database]:
    async with open_test_database() as database:
        yield database


async def test_database_routes_come_first_then_the_settings(database: Database) -> None:
    await PhoneNumbers(database).assign("+15550111", "sales")
    directory = LayeredNumberDirectory(
        PhoneNumbers(database), InMemoryNumberDirectory({"+15550111": "echo", "+15550100": "echo"})
    )
    assert await directory.agent_for("+15550111") == "sales"
    assert await directory.agent_for("+15550100") == "echo"
    assert await directory.agent_for("+15550999") is None


async def test_an_agent_gets_exactly_its_tools_as_strict_schemas(database: Database) -> None:
    config = AgentConfig(id="support", tools=["find_customer", "get_order_status"])
    executor = tools_for(config, database, make_settings(tool_max_steps_per_turn=2))
    assert executor is not None
    names = [schema["function"]["name"] for schema in executor.schemas()]
    assert names == ["find_customer", "get_order_status"]
    assert all(schema["function"]["strict"] for schema in executor.schemas())
    assert tools_for(AgentConfig(id="plain"), database, make_settings()) is None


async def test_tools_without_a_database_or_unknown_tools_are_clear_configuration_errors(database: Database) -> None:
    with pytest.raises(ValueError, match="SWITCHBOARD_MONGODB_URI is not set"):
        tools_for(AgentConfig(id="support", tools=["find_customer"]), None, make_settings())
    with pytest.raises(ValueError, match="unknown tool"):
        tools_for(AgentConfig(id="support", tools=["drop_database"]), database, make_settings())


async def test_a_finished_call_is_stored_with_transcript_and_latency(database: Database) -> None:
    store = DatabaseCallStore(database)
    record = CallRecord("CA-stored", "support", "+15005550006", "+15550100", "inbound", started_at=time.time())
    await store.call_started(record)
    record.say("agent", "Hello, how can I help?")
    record.say("caller", "Where is my order?")
    record.turns.append(TurnMetrics(turn=1, transcript_ms=640.0, voice_to_voice_ms=1400.0))
    record.end_reason, record.ended_at = "caller hung up", time.time()
    await store.call_ended(record)
    stored = await store.calls.get("CA-stored")
    assert stored is not None
    assert [(t["role"], t["text"]) for t in stored["transcript"]] == [
        ("agent", "Hello, how can I help?"),
        ("caller", "Where is my order?"),
    ]
    assert stored["latency"][0]["voice_to_voice_ms"] == 1400.0
    assert stored["outcome"] == "caller hung up"
