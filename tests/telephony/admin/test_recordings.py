"""`GET /api/calls/{call_sid}/recording`: scopes, tenants, 404s, and HTTP Range served chunk by chunk."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime

import httpx
import pytest

from db import CallRecords, Database, ensure_indexes, in_memory
from db.recordings import GridFsRecordings
from telephony.recording.writer import RecordingWriter
from tests.support.admin_api import admin_client

pytestmark = pytest.mark.mongodb

ADMIN = "admin-key-0123456789abcdef"
READER = "reader-key-0123456789abcdef"
AGENTS_ONLY = "agents-key-0123456789abcdef"
TENANT = "tenant-key-0123456789abcdef"
KEYS = f"{ADMIN}:*;{READER}:calls:read;{AGENTS_ONLY}:agents:read;{TENANT}:calls:read,tenant:acme"
URL = "/api/calls/CA1/recording"
CHUNK = 4096
FRAMES = 50  # 1 s of call: 32 000 bytes of audio, 8 chunks


@pytest.fixture
async def database() -> AsyncIterator[Database]:
    db = in_memory()
    await ensure_indexes(db)
    await CallRecords(db).start("CA1", agent_id="support", from_number="+15550001", to_number="+15550100")
    await CallRecords(db).start("CA2", agent_id="support", from_number="+15550001", to_number="+15550100")
    expires = datetime(2030, 1, 1, tzinfo=UTC)
    writer = RecordingWriter(GridFsRecordings(db), "CA1", expires, chunk_bytes=CHUNK, queue_chunks=FRAMES)
    for i in range(FRAMES):
        writer.write(bytes([i]) * 640)
    assert (await writer.finish()).complete
    yield db
    await db.close()


def client(database: Database, key: str | None) -> AbstractAsyncContextManager[httpx.AsyncClient]:
    return admin_client(database, key, api_keys=KEYS)


async def recording(database: Database) -> bytes:
    store = GridFsRecordings(database)
    info = await store.info("CA1")
    assert info is not None
    return b"".join([piece async for piece in store.read(info, 0, info.length)])


async def test_the_whole_recording(database: Database) -> None:
    expected = await recording(database)
    async with client(database, READER) as api:
        response = await api.get(URL)
        detail = (await api.get("/api/calls/CA1")).json()
        other = (await api.get("/api/calls/CA2")).json()
    assert response.status_code == 200 and response.content == expected
    assert response.headers["content-type"] == "audio/wav"
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["content-length"] == str(len(expected)) == str(44 + FRAMES * 640)
    assert detail["recording"] == {
        "url": URL.removeprefix("/api"),
        "duration_s": 1.0,
        "bytes": len(expected),
        "complete": True,
        "content_type": "audio/wav",
    }
    assert other["recording"] is None


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-43", 0, 44),  # the header
        ("bytes=4000-5000", 4000, 5001),  # across a chunk boundary
        ("bytes=32000-", 32000, 32044),  # open-ended
        ("bytes=-100", 31944, 32044),  # the last 100 bytes
        ("bytes=32000-999999", 32000, 32044),  # cut to the file
    ],
)
async def test_a_range(database: Database, header: str, start: int, end: int) -> None:
    expected = await recording(database)
    async with client(database, READER) as api:
        response = await api.get(URL, headers={"Range": header})
    assert response.status_code == 206
    assert response.content == expected[start:end]
    assert response.headers["content-range"] == f"bytes {start}-{end - 1}/{len(expected)}"
    assert response.headers["content-length"] == str(end - start)


@pytest.mark.parametrize(
    "header", ["bytes=40000-", "bytes=10-5", "bytes=-0", "bytes=-", "bytes=0-1,5-9", "bytes=x-1", "bytes=" + "9" * 300]
)
async def test_a_bad_range_is_416(database: Database, header: str) -> None:
    async with client(database, READER) as api:
        response = await api.get(URL, headers={"Range": header})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{44 + FRAMES * 640}"


async def test_another_unit_is_ignored(database: Database) -> None:
    async with client(database, READER) as api:
        response = await api.get(URL, headers={"Range": "items=0-1"})
    assert response.status_code == 200 and len(response.content) == 44 + FRAMES * 640


async def test_keys_scopes_tenants_and_missing_recordings(database: Database) -> None:
    async with client(database, None) as anonymous:
        assert (await anonymous.get(URL)).status_code == 401
    async with client(database, "wrong-key-0123456789abcdef") as stranger:
        assert (await stranger.get(URL)).status_code == 401
    async with client(database, AGENTS_ONLY) as agents_only:
        assert (await agents_only.get(URL)).status_code == 403
    async with client(database, TENANT) as tenant:
        assert (await tenant.get(URL)).status_code == 404  # another tenant's call: as if there were none
    async with client(database, ADMIN) as admin:
        assert (await admin.get("/api/calls/CA2/recording")).status_code == 404  # a call without one
        assert (await admin.get("/api/calls/CA9/recording")).status_code == 404  # no such call
        assert (await admin.get("/api/calls/C$1/recording")).status_code == 422
        assert (await admin.post(URL)).status_code in (403, 405)


async def test_the_route_is_in_the_openapi_document(database: Database) -> None:
    async with client(database, ADMIN) as admin:
        schema = (await admin.get("/api/openapi.json")).json()
    assert "206" in schema["paths"]["/calls/{call_sid}/recording"]["get"]["responses"]
