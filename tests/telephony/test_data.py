"""Wiring the database into the pod: routing, call records (followed as the call goes)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from agents.conversation.record import MAX_TRANSCRIPT_ENTRIES, CallRecord, TurnMetrics
from db import CallRecords, Database, PhoneNumbers
from telephony.call_records import CallRecordWriter
from telephony.data import DatabaseCallStore
from telephony.routing import InMemoryNumberDirectory, LayeredNumberDirectory
from tests.support.db import open_test_database
from tests.support.db_outage import cuttable
from tools.audit import ToolAuditEntry

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


def follow(database: Database) -> DatabaseCallStore:
    """The pod's store on a writer whose background task is not started: the test flushes."""
    return DatabaseCallStore(CallRecordWriter(CallRecords(database)))


def new_record(call_sid: str) -> CallRecord:
    return CallRecord(call_sid, "support", "+15005550006", "+15550100", "inbound", started_at=time.time())


async def test_a_finished_call_is_stored_with_transcript_latency_and_counters(database: Database) -> None:
    store = follow(database)
    record = new_record("CA-stored")
    await store.call_started(record)
    record.say("agent", "Hello, how can I help?")
    record.say("caller", "Where is my order?")
    record.add_turn(TurnMetrics(turn=1, transcript_ms=640.0, voice_to_voice_ms=1400.0))
    record.barge_ins = 2
    record.end_reason, record.ended_at = "caller hung up", time.time()
    record.verified_customer = "C-1001"
    await store.call_ended(record)
    assert await store.writer.flush()
    stored = await store.calls.get("CA-stored")
    assert stored is not None
    assert [(t["role"], t["text"]) for t in stored["transcript"]] == [
        ("agent", "Hello, how can I help?"),
        ("caller", "Where is my order?"),
    ]
    assert stored["latency"][0]["voice_to_voice_ms"] == 1400.0
    assert stored["outcome"] == "caller hung up" and stored["verified_customer"] == "C-1001"
    assert stored["summary"]["barge_ins"] == 2


async def test_memory_and_database_keep_the_same_transcript_lines(database: Database) -> None:
    """One bound, the same end kept: before, memory kept the last 500 lines and the database the first 400."""
    store = follow(database)
    record = new_record("CA-long")
    await store.call_started(record)
    for i in range(MAX_TRANSCRIPT_ENTRIES + 50):
        record.say("caller", f"line {i}")
    record.end_reason, record.ended_at = "caller hung up", time.time()
    await store.call_ended(record)
    assert await store.writer.flush()
    stored = await store.calls.get("CA-long")
    assert stored is not None
    assert [t["text"] for t in stored["transcript"]] == [line.text for line in record.transcript]
    assert record.transcript[0].text == "line 0" and len(record.transcript) == MAX_TRANSCRIPT_ENTRIES
    assert stored["dropped"]["transcript"] == record.transcript_dropped == 50


async def test_lines_are_stored_while_the_call_goes(database: Database) -> None:
    """Before, nothing of a call reached the database until it ended: a pod that died lost it all."""
    writer = CallRecordWriter(CallRecords(database), flush_seconds=0.1)
    store = DatabaseCallStore(writer)
    writer.start_task()
    try:
        record = new_record("CA-live")
        await store.call_started(record)
        record.say("agent", "Hello")
        record.say("caller", "Hi")
        await asyncio.sleep(1.0)
        stored = await store.calls.get("CA-live")
        assert stored is not None and [t["text"] for t in stored["transcript"]] == ["Hello", "Hi"]
        assert stored["outcome"] is None  # still going
    finally:
        await writer.close(1.0)


async def test_tool_audit_goes_to_the_calls_record(database: Database) -> None:
    store = follow(database)
    record = new_record("CA-audit")
    await store.call_started(record)
    await store.record(
        ToolAuditEntry(
            "CA-audit", "support", "t1", "find_order", "{}", 2, True, None, 12.5, 80, False, datetime.now(UTC)
        )
    )
    assert await store.writer.flush()
    stored = await store.calls.get("CA-audit")
    assert stored is not None and [a["name"] for a in stored["tool_audit"]] == ["find_order"]


async def test_a_record_its_session_left_open_is_ended_by_the_stream(database: Database) -> None:
    store = follow(database)
    record = new_record("CA-cancelled")
    await store.call_started(record)
    record.say("caller", "are you there")
    store.stream_closed("CA-cancelled")  # the session was cancelled before it reported its end
    store.stream_closed("CA-cancelled")
    await store.call_ended(record)  # late: changes nothing
    assert await store.writer.flush()
    stored = await store.calls.get("CA-cancelled")
    assert stored is not None and stored["outcome"] == "stream closed"
    assert [t["text"] for t in stored["transcript"]] == ["are you there"]


async def test_neither_the_start_nor_the_end_of_a_call_waits_on_a_slow_database(database: Database) -> None:
    """Before, the start was awaited before the greeting and the end wrote line by line while the
    media stream gave the session 2 s before cancelling it: a slow database lost the record's tail."""
    slow, client = cuttable(database, delay_s=5.0)
    writer = CallRecordWriter(CallRecords(slow))
    store = DatabaseCallStore(writer)
    client.cut = True
    record = new_record("CA-slow")
    async with asyncio.timeout(0.5):  # far below the database's 5 s
        await store.call_started(record)
        for i in range(30):
            record.say("caller", f"line {i}")
        record.end_reason, record.ended_at = "caller hung up", time.time()
        await store.call_ended(record)
    client.cut = False
    assert await writer.flush()
    stored = await store.calls.get("CA-slow")
    assert stored is not None and len(stored["transcript"]) == 30 and stored["outcome"] == "caller hung up"
