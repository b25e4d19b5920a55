"""The pod's call-record writer: batches, retries through an outage, a bounded queue, a shutdown deadline."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from db import CallRecords, Database
from telephony import call_records
from telephony.call_records import MAX_BATCH_ENTRIES, CallRecordWriter
from telephony.pod import open_pod
from tests.support.db import open_test_database
from tests.support.db_outage import cuttable
from tests.support.settings import make_settings
from tests.support.waiting import until

pytestmark = pytest.mark.mongodb


@pytest.fixture
async def database() -> AsyncIterator[Database]:
    async with open_test_database() as database:
        yield database


class Counted:
    """What the writer reports as lost, as the pod's metrics would count it."""

    def __init__(self) -> None:
        self.failed = 0
        self.dropped = 0

    def writer(self, calls: CallRecords, **options: Any) -> CallRecordWriter:
        return CallRecordWriter(calls, on_failed=self._failed, on_dropped=self._dropped, **options)

    def _failed(self, n: int) -> None:
        self.failed += n

    def _dropped(self, n: int) -> None:
        self.dropped += n


def started(writer: CallRecordWriter, call_sid: str) -> None:
    writer.start(call_sid, agent_id="support", from_number="+15005550006", to_number="+15550100")


def line(i: int) -> dict[str, object]:
    return {"role": "caller", "text": f"line {i}", "at": datetime.now(UTC)}


async def transcript(database: Database, call_sid: str) -> list[str]:
    stored = await CallRecords(database).get(call_sid)
    return [] if stored is None else [t["text"] for t in stored["transcript"]]


async def test_a_full_batch_is_written_before_the_interval(database: Database) -> None:
    writer = CallRecordWriter(CallRecords(database), flush_seconds=60)
    writer.start_task()
    try:
        started(writer, "CA-batch")
        await until(lambda: writer.entries == 0, timeout=5)  # a start is written at once
        for i in range(MAX_BATCH_ENTRIES - 1):
            writer.append("CA-batch", "transcript", line(i))
        await asyncio.sleep(0.3)
        assert await transcript(database, "CA-batch") == []  # not full yet: it waits for the interval
        writer.append("CA-batch", "transcript", line(MAX_BATCH_ENTRIES - 1))
        await until(lambda: writer.entries == 0, timeout=5)
        assert len(await transcript(database, "CA-batch")) == MAX_BATCH_ENTRIES
    finally:
        await writer.close(1.0)


async def test_writes_are_queued_while_the_database_is_down_and_stored_when_it_returns(database: Database) -> None:
    down, client = cuttable(database)
    counted = Counted()
    writer = counted.writer(CallRecords(down), flush_seconds=0.05)
    client.cut = True
    writer.start_task()
    try:
        started(writer, "CA-outage")
        for i in range(45):
            writer.append("CA-outage", "transcript", line(i))
        writer.append("CA-outage", "latency", {"turn": 1, "voice_to_voice_ms": 900.0})
        writer.end("CA-outage", outcome="caller hung up")
        await until(lambda: client.refused >= 3, timeout=10)  # tried, and retried with backoff
        assert await CallRecords(database).get("CA-outage") is None
        assert writer.entries == 1 + 45 + 1 + 1
        client.cut = False
        await until(lambda: writer.entries == 0, timeout=15)
    finally:
        await writer.close(1.0)
    stored = await CallRecords(database).get("CA-outage")
    assert stored is not None
    assert [t["text"] for t in stored["transcript"]] == [f"line {i}" for i in range(45)]
    assert stored["latency"][0]["voice_to_voice_ms"] == 900.0 and stored["outcome"] == "caller hung up"
    assert stored["dropped"] == {"transcript": 0, "tool_audit": 0, "latency": 0}
    assert counted.failed == counted.dropped == 0


async def test_a_full_queue_drops_new_entries_and_counts_them(database: Database) -> None:
    down, client = cuttable(database)
    counted = Counted()
    writer = counted.writer(CallRecords(down), max_entries=100)
    client.cut = True
    started(writer, "CA-full")
    for i in range(150):
        writer.append("CA-full", "transcript", line(i))
    writer.end("CA-full", outcome="caller hung up")
    assert not await writer.flush()
    assert counted.dropped == 51 and writer.entries == 101  # the end is always kept for a kept start
    client.cut = False
    assert await writer.flush()
    stored = await CallRecords(database).get("CA-full")
    assert stored is not None and len(stored["transcript"]) == 99
    assert stored["dropped"]["transcript"] == 51  # the record says it is incomplete
    assert counted.failed == 0


async def test_the_queue_is_bounded_in_bytes_too(database: Database) -> None:
    counted = Counted()
    writer = counted.writer(CallRecords(database), max_bytes=10_000)
    started(writer, "CA-bytes")
    for _ in range(10):
        writer.append("CA-bytes", "transcript", {"role": "caller", "text": "x" * 2000})
    assert counted.dropped == 6 and writer.bytes <= 10_000


async def test_an_entry_the_database_refuses_is_counted_and_the_rest_stored(database: Database) -> None:
    counted = Counted()
    writer = counted.writer(CallRecords(database))
    started(writer, "CA-refused")
    writer.append("CA-refused", "tool_audit", {"name": "find_order", "arguments": ["not", "flat"]})
    writer.append("CA-refused", "transcript", line(0))
    writer.end("CA-refused", outcome="caller hung up")
    assert await writer.flush()
    stored = await CallRecords(database).get("CA-refused")
    assert stored is not None and stored["tool_audit"] == [] and len(stored["transcript"]) == 1
    assert stored["dropped"]["tool_audit"] == 1 and counted.failed == 1


async def test_a_call_failing_past_the_give_up_time_is_counted_and_dropped(database: Database) -> None:
    down, client = cuttable(database)
    counted = Counted()
    now = [1000.0]
    writer = counted.writer(CallRecords(down), clock=lambda: now[0])
    client.cut = True
    started(writer, "CA-given-up")
    for i in range(3):
        writer.append("CA-given-up", "transcript", line(i))
    writer.end("CA-given-up", outcome="caller hung up")
    assert not await writer.flush()
    now[0] += call_records.GIVE_UP_SECONDS
    assert not await writer.flush()
    assert counted.failed == 1 + 3 + 1 and writer.entries == 0
    client.cut = False
    assert await writer.flush()  # nothing left of it, nothing stuck


async def test_shutdown_writes_what_is_queued_within_its_deadline(database: Database) -> None:
    counted = Counted()
    writer = counted.writer(CallRecords(database), flush_seconds=60)
    writer.start_task()
    started(writer, "CA-drain")
    writer.append("CA-drain", "transcript", line(0))
    writer.end("CA-drain", outcome="pod draining")
    await writer.close(5.0)
    assert await transcript(database, "CA-drain") == ["line 0"]
    assert counted.failed == 0


async def test_what_shutdown_cannot_write_is_counted(database: Database) -> None:
    down, client = cuttable(database)
    counted = Counted()
    writer = counted.writer(CallRecords(down))
    client.cut = True
    started(writer, "CA-lost")
    writer.append("CA-lost", "transcript", line(0))
    loop = asyncio.get_running_loop()
    began = loop.time()
    await writer.close(0.3)
    assert loop.time() - began < call_records.WRITE_TIMEOUT_SECONDS
    assert counted.failed == 2


async def test_the_pods_metrics_count_what_its_writer_could_not_keep(database: Database) -> None:
    down, client = cuttable(database)
    settings = make_settings(call_record_queue_entries=100, call_record_shutdown_seconds=0)
    async with open_pod(settings, database=down) as pod:
        assert pod.call_store is not None
        writer = pod.call_store.writer
        client.cut = True
        started(writer, "CA-metrics")
        for i in range(120):
            writer.append("CA-metrics", "transcript", line(i))
        metrics = pod.metrics.registry
        assert metrics.get_sample_value("switchboard_call_record_queue_entries") == 100
        assert metrics.get_sample_value("switchboard_call_record_entries_dropped_total") == 21
    assert metrics.get_sample_value("switchboard_call_record_writes_failed_total") == 100  # left at shutdown


async def test_a_refused_start_gives_up_its_call_and_counts_it(database: Database) -> None:
    counted = Counted()
    writer = counted.writer(CallRecords(database))
    writer.start("CA-bad", agent_id="support", from_number="+1", to_number="+2", retention_days=0)
    writer.append("CA-bad", "transcript", line(0))
    writer.end("CA-bad", outcome="caller hung up")
    started(writer, "CA-good")
    writer.end("CA-good", outcome="caller hung up")
    assert await writer.flush()
    assert await CallRecords(database).get("CA-bad") is None
    assert counted.failed == 2  # the start and its line (its end had nothing to end)
    good = await CallRecords(database).get("CA-good")
    assert good is not None and good["outcome"] == "caller hung up"
