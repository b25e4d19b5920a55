"""Wiring the database into the pod: routing, call records."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from agents.conversation.record import CallRecord, TurnMetrics
from db import Database, PhoneNumbers
from telephony.data import DatabaseCallStore
from telephony.routing import InMemoryNumberDirectory, LayeredNumberDirectory
from tests.support.db import open_test_database

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


async def test_a_finished_call_is_stored_with_transcript_and_latency(database: Database) -> None:
    store = DatabaseCallStore(database)
    record = CallRecord("CA-stored", "support", "+15005550006", "+15550100", "inbound", started_at=time.time())
    await store.call_started(record)
    record.say("agent", "Hello, how can I help?")
    record.say("caller", "Where is my order?")
    record.turns.append(TurnMetrics(turn=1, transcript_ms=640.0, voice_to_voice_ms=1400.0))
    record.end_reason, record.ended_at = "caller hung up", time.time()
    record.verified_customer = "C-1001"
    await store.call_ended(record)
    stored = await store.calls.get("CA-stored")
    assert stored is not None
    assert [(t["role"], t["text"]) for t in stored["transcript"]] == [
        ("agent", "Hello, how can I help?"),
        ("caller", "Where is my order?"),
    ]
    assert stored["latency"][0]["voice_to_voice_ms"] == 1400.0
    assert stored["outcome"] == "caller hung up" and stored["verified_customer"] == "C-1001"
