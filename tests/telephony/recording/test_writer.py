"""A recording streams to storage in bounded chunks: chunk 0 (with the final header) last, memory
constant however long the call, and a slow or failed store costs chunks (counted, marked
incomplete), never the call."""

from __future__ import annotations

import asyncio
import io
import time
import wave
from datetime import UTC, datetime, timedelta

import pytest

from telephony.recording.recorder import CallRecorder, Recorders, records
from telephony.recording.wav import HEADER_BYTES
from telephony.recording.writer import RecordingWriter
from tests.support.recording_store import MemoryRecordingStore

EXPIRES = datetime(2030, 1, 1, tzinfo=UTC)
CHUNK = 1024
FRAME = bytes(range(256)) * 2 + bytes(128)  # 640 bytes: 20 ms of 8 kHz stereo PCM16


def wav_of(data: bytes) -> wave.Wave_read:
    return wave.open(io.BytesIO(data), "rb")


async def test_chunks_stream_as_they_fill_and_chunk_0_comes_last_with_the_header() -> None:
    store = MemoryRecordingStore()
    writer = RecordingWriter(store, "CA1", EXPIRES, chunk_bytes=CHUNK)
    for _ in range(10):  # frames arrive 20 ms apart: the writer task runs between them
        writer.write(FRAME)
        await asyncio.sleep(0)
    await asyncio.sleep(0.01)
    assert [n for _, n in store.order] == [1, 2, 3, 4, 5]  # stored while the call runs; chunk 0 held
    written = await writer.finish()
    assert written.complete and written.length == HEADER_BYTES + 10 * len(FRAME)
    assert store.order[-1] == ("CA1", 0)
    with wav_of(store.file("CA1")) as wav:
        assert (wav.getnchannels(), wav.getframerate(), wav.getsampwidth()) == (2, 8000, 2)
        assert wav.getnframes() == 10 * 160
        assert wav.readframes(160) == FRAME
    assert store.files["CA1"]["duration_s"] == pytest.approx(0.2)


async def test_a_call_shorter_than_a_chunk_and_a_call_with_no_audio() -> None:
    store = MemoryRecordingStore()
    short = RecordingWriter(store, "CA2", EXPIRES, chunk_bytes=CHUNK)
    short.write(FRAME)
    assert (await short.finish()).length == HEADER_BYTES + len(FRAME)
    with wav_of(store.file("CA2")) as wav:
        assert wav.getnframes() == 160
    empty = RecordingWriter(store, "CA3", EXPIRES, chunk_bytes=CHUNK)
    assert (await empty.finish()).length == HEADER_BYTES
    with wav_of(store.file("CA3")) as wav:
        assert wav.getnframes() == 0


async def test_a_slow_store_costs_chunks_never_the_call_and_memory_stays_bounded() -> None:
    store = MemoryRecordingStore()
    store.hold.clear()  # storage hangs
    writer = RecordingWriter(store, "CA4", EXPIRES, chunk_bytes=CHUNK, queue_chunks=2, write_timeout_s=0.05)
    started = time.monotonic()
    for _ in range(2000):  # 40 s of call, about 1250 chunks
        writer.write(FRAME)
    assert time.monotonic() - started < 1.0  # never waited on storage
    assert writer._queue.qsize() <= 2
    assert len(writer._filling) < CHUNK
    store.hold.set()
    written = await writer.finish()
    assert written.dropped_chunks > 1000 and not written.complete and written.stored
    assert store.files["CA4"]["complete"] is False
    with wav_of(store.file("CA4")) as wav:  # still a whole, playable file as long as the call
        assert wav.getnframes() == 2000 * 160


async def test_a_store_that_is_down_is_survived() -> None:
    store = MemoryRecordingStore()
    store.fail = True
    writer = RecordingWriter(store, "CA5", EXPIRES, chunk_bytes=CHUNK, write_timeout_s=0.05)
    for _ in range(20):
        writer.write(FRAME)
    written = await writer.finish()
    assert not written.stored and not written.complete and written.dropped_chunks == 12
    assert store.files == {}


async def test_a_recording_stops_at_its_bound() -> None:
    store = MemoryRecordingStore()
    writer = RecordingWriter(store, "CA6", EXPIRES, chunk_bytes=CHUNK, max_bytes=HEADER_BYTES + 5 * len(FRAME))
    for _ in range(8):
        writer.write(FRAME)
    written = await writer.finish()
    assert written.truncated and not written.complete
    assert written.length == HEADER_BYTES + 5 * len(FRAME)
    writer.write(FRAME)  # after the end: ignored
    with pytest.raises(RuntimeError):
        await writer.finish()


class _Config:
    record = True
    retention_days = 7


class _Agent:
    config = _Config()


async def test_recorders_record_only_agents_that_ask_and_expire_with_the_call_record() -> None:
    store = MemoryRecordingStore()
    recorders = Recorders(store, default_retention_days=90)
    assert records(object()) == (False, None)
    assert recorders.for_call(object(), "CA7") is None
    recorder = recorders.for_call(_Agent(), "CA7")
    assert isinstance(recorder, CallRecorder)
    recorder.caller(b"\0" * 320)
    written = await recorders.finish(recorder)
    assert written.complete and recorders.finishing == 0
    expires = store.files["CA7"]["expires_at"]
    assert abs(expires - (datetime.now(UTC) + timedelta(days=7))) < timedelta(minutes=1)


async def test_a_recorder_that_fails_stops_recording_and_the_call_goes_on() -> None:
    recorders = Recorders(MemoryRecordingStore(), default_retention_days=90)
    recorder = recorders.start("CA8")
    recorder.caller(b"\0" * 320)
    recorder.caller("not bytes")  # type: ignore[arg-type]
    assert recorder.failed
    recorder.sent(b"\xff" * 160)
    recorder.cleared()
    recorder.caller(b"\0" * 320)
    assert recorder.inbound_frames == 1
    await recorders.close(1.0)
    await recorders.finish(recorder)
