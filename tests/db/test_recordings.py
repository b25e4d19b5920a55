"""Recordings in GridFS's layout: chunks as they fill, chunk 0 and the files document last, ranges
read chunk by chunk, holes read as silence, and retention with the call record (TTL indexes).

Runs on the in-memory fake, and on a real server with MONGODB_URI set (where GridFSBucket reads
the same file back, and the TTL monitor is awaited)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest

from db import Database, ensure_indexes
from db.indexes import RECORDING_CHUNKS, RECORDING_FILES
from db.recordings import CHUNK_BYTES, GridFsRecordings, RecordingInfo
from tests.support.db import MONGODB_URI

pytestmark = pytest.mark.mongodb

EXPIRES = datetime(2030, 1, 1, tzinfo=UTC)
TTL_MONITOR_WAIT_S = 150.0
"""The server's TTL monitor runs every 60 s; a deletion may take up to two rounds."""


def body(length: int) -> bytes:
    return bytes(i % 251 for i in range(length))


async def store_file(store: GridFsRecordings, call_sid: str, data: bytes, expires_at: datetime = EXPIRES) -> None:
    """As the writer does: chunks 1.. first, then chunk 0 and the files document."""
    chunks = [data[i : i + CHUNK_BYTES] for i in range(0, len(data), CHUNK_BYTES)]
    for n, chunk in enumerate(chunks[1:], start=1):
        await store.put_chunk(call_sid, n, chunk, expires_at=expires_at)
    await store.finish(
        call_sid,
        chunks[0],
        length=len(data),
        chunk_size=CHUNK_BYTES,
        expires_at=expires_at,
        metadata={"duration_s": 1.5, "complete": True, "dropped_chunks": 0},
    )


async def read_all(store: GridFsRecordings, info: RecordingInfo, start: int, end: int) -> tuple[bytes, int]:
    """The bytes read, and the largest piece handed out at once."""
    pieces = [piece async for piece in store.read(info, start, end)]
    return b"".join(pieces), max((len(p) for p in pieces), default=0)


async def test_the_layout_is_gridfs_own(database: Database) -> None:
    await ensure_indexes(database)
    store = GridFsRecordings(database)
    data = body(2 * CHUNK_BYTES + 1000)
    await store_file(store, "CA1", data)

    files = await database.collection(RECORDING_FILES).find_one({"_id": "CA1"})
    assert files is not None
    assert {"_id", "length", "chunkSize", "uploadDate", "filename", "metadata"} <= set(files)
    assert (files["length"], files["chunkSize"], files["filename"]) == (len(data), CHUNK_BYTES, "CA1.wav")
    chunks = [c async for c in database.collection(RECORDING_CHUNKS).find({"files_id": "CA1"}).sort("n", 1)]
    assert [c["n"] for c in chunks] == [0, 1, 2]
    assert [len(c["data"]) for c in chunks] == [CHUNK_BYTES, CHUNK_BYTES, 1000]
    assert b"".join(bytes(c["data"]) for c in chunks) == data
    indexes = await database.collection(RECORDING_CHUNKS).index_information()
    assert indexes["files_id_n"]["unique"] and list(indexes["files_id_n"]["key"]) == [("files_id", 1), ("n", 1)]


@pytest.mark.skipif(not MONGODB_URI, reason="GridFSBucket needs a real server (set MONGODB_URI)")
async def test_gridfs_bucket_reads_the_recording(database: Database) -> None:
    from gridfs import AsyncGridFSBucket

    data = body(CHUNK_BYTES + 77)
    await store_file(GridFsRecordings(database), "CA2", data)
    bucket = AsyncGridFSBucket(database.collection(RECORDING_FILES).database, bucket_name="recordings")
    stream = await bucket.open_download_stream("CA2")
    assert await stream.read() == data


async def test_ranges_are_read_one_chunk_at_a_time(database: Database) -> None:
    store = GridFsRecordings(database)
    data = body(3 * CHUNK_BYTES + 5)
    await store_file(store, "CA3", data)
    info = await store.info("CA3")
    assert info is not None and info.length == len(data) and info.complete and info.duration_s == 1.5
    for start, end in [(0, len(data)), (10, 20), (CHUNK_BYTES - 3, CHUNK_BYTES + 3), (len(data) - 1, len(data))]:
        got, largest = await read_all(store, info, start, end)
        assert got == data[start:end]
        assert largest <= CHUNK_BYTES
    assert (await read_all(store, info, 5, 5))[0] == b""
    assert (await read_all(store, info, 0, 10 * len(data)))[0] == data  # cut to the file


async def test_a_chunk_storage_lost_reads_as_silence(database: Database) -> None:
    store = GridFsRecordings(database)
    data = body(2 * CHUNK_BYTES + 10)
    await store.put_chunk("CA4", 2, data[2 * CHUNK_BYTES :], expires_at=EXPIRES)  # chunk 1 never arrived
    await store.finish(
        "CA4",
        data[:CHUNK_BYTES],
        length=len(data),
        chunk_size=CHUNK_BYTES,
        expires_at=EXPIRES,
        metadata={"complete": False, "dropped_chunks": 1},
    )
    info = await store.info("CA4")
    assert info is not None and not info.complete and info.dropped_chunks == 1
    got, _ = await read_all(store, info, 0, len(data))
    assert got == data[:CHUNK_BYTES] + bytes(CHUNK_BYTES) + data[2 * CHUNK_BYTES :]


async def test_no_recording_and_bad_chunks(database: Database) -> None:
    store = GridFsRecordings(database)
    assert await store.info("CA-none") is None
    with pytest.raises(ValueError, match="chunk"):
        await store.put_chunk("CA5", 1, bytes(CHUNK_BYTES + 1), expires_at=EXPIRES)
    with pytest.raises(ValueError, match="recording"):
        await store.finish("CA5", b"x", length=0, chunk_size=CHUNK_BYTES, expires_at=EXPIRES, metadata={})


async def test_a_retried_chunk_is_stored_once_and_delete_removes_everything(database: Database) -> None:
    store = GridFsRecordings(database)
    data = body(CHUNK_BYTES + 9)
    await store.put_chunk("CA6", 1, data[CHUNK_BYTES:], expires_at=EXPIRES)
    await store_file(store, "CA6", data)  # chunk 1 again, as a retry would
    assert await database.collection(RECORDING_CHUNKS).count_documents({"files_id": "CA6"}) == 2
    assert await store.delete("CA6")
    assert await store.info("CA6") is None
    assert await database.collection(RECORDING_CHUNKS).count_documents({"files_id": "CA6"}) == 0
    assert not await store.delete("CA6")


async def test_files_and_chunks_expire_with_the_call_record(database: Database) -> None:
    await ensure_indexes(database)
    for name in (RECORDING_FILES, RECORDING_CHUNKS):
        index = (await database.collection(name).index_information())["expires_at"]
        assert list(index["key"]) == [("expires_at", 1)] and index["expireAfterSeconds"] == 0
    await store_file(GridFsRecordings(database), "CA7", body(CHUNK_BYTES + 1))
    files = await database.collection(RECORDING_FILES).find({"_id": "CA7"}).to_list(None)
    chunks = await database.collection(RECORDING_CHUNKS).find({"files_id": "CA7"}).to_list(None)
    assert {d["expires_at"].replace(tzinfo=UTC) for d in files + chunks} == {EXPIRES}


@pytest.mark.skipif(not MONGODB_URI, reason="the TTL monitor runs on a real server only (set MONGODB_URI)")
async def test_the_server_removes_a_recording_past_retention(database: Database) -> None:
    await ensure_indexes(database)
    store = GridFsRecordings(database)
    await store_file(store, "CA-old", body(CHUNK_BYTES + 1), expires_at=datetime.now(UTC) - timedelta(days=1))
    await store_file(store, "CA-new", body(10), expires_at=datetime.now(UTC) + timedelta(days=1))
    deadline = time.monotonic() + TTL_MONITOR_WAIT_S
    while await database.collection(RECORDING_CHUNKS).count_documents({"files_id": "CA-old"}):
        assert time.monotonic() < deadline, "the TTL monitor did not remove the expired chunks"
        await asyncio.sleep(2.0)
    assert await store.info("CA-old") is None
    assert await store.info("CA-new") is not None
