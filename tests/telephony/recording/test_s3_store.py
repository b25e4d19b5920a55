"""The S3 recording store against a fake S3 server: GridFS's layout in objects, ranges read chunk by
chunk, holes as silence, retention tags, bounded deletes, failures counted; the SigV4 signature as
botocore makes it; and a whole recorded call through the pod, served with Range."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import botocore.auth
import httpx
import pytest
from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from agents.echo import EchoAgent
from agents.port import AgentCatalog
from db import CallRecords, DatabaseError, ensure_indexes, in_memory
from telephony.app import create_app
from telephony.pod import open_pod
from telephony.recording.s3_store import RETENTION_TAG, S3Error, S3Location, S3Recordings
from telephony.recording.sigv4 import Credentials, sign
from telephony.recording.writer import RecordingWriter
from telephony.server import BackgroundServer
from telephony.settings import insecure_secrets
from telephony.simulator import Pause, Say, SimulatedCall, new_sid, synthetic_utterance
from tests.support.fake_s3 import FakeS3
from tests.support.recorded_agent import RecordedAgent
from tests.support.settings import AGENT_NUMBER, AUTH_TOKEN, TRANSFER_NUMBER, make_settings

SECRET = "fake-secret-0123456789abcdefghijklmn"
CHUNK = 1000
"""A small chunk size, so a test file spans several chunk objects."""
KEY = "reader-key-0123456789abcdef"


def body(length: int) -> bytes:
    return bytes(i % 251 for i in range(length))


def location(url: str, fake: FakeS3, *, timeout_s: float = 5.0) -> S3Location:
    credentials = Credentials(fake.access_key_id, SECRET, "us-east-1")
    return S3Location(url, fake.bucket, credentials, prefix="recordings/", timeout_s=timeout_s)


@pytest.fixture
async def s3() -> AsyncIterator[tuple[FakeS3, S3Recordings]]:
    fake = FakeS3()
    async with fake.server() as url:
        store = S3Recordings(location(url, fake))
        yield fake, store
        await store.aclose()


async def store_file(store: S3Recordings, call_sid: str, data: bytes, expires_in_days: int = 30) -> None:
    """As the writer does: chunks 1.. first, then chunk 0 and the manifest."""
    expires_at = datetime.now(UTC) + timedelta(days=expires_in_days)
    chunks = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]
    for n, chunk in enumerate(chunks[1:], start=1):
        await store.put_chunk(call_sid, n, chunk, expires_at=expires_at)
    metadata = {"duration_s": 1.5, "complete": True, "dropped_chunks": 0}
    await store.finish(
        call_sid, chunks[0], length=len(data), chunk_size=CHUNK, expires_at=expires_at, metadata=metadata
    )


async def read_all(store: S3Recordings, call_sid: str, start: int, end: int) -> bytes:
    info = await store.info(call_sid)
    assert info is not None
    return b"".join([piece async for piece in store.read(info, start, end)])


async def test_a_recording_is_stored_in_gridfs_layout_and_read_back_by_range(
    s3: tuple[FakeS3, S3Recordings],
) -> None:
    fake, store = s3
    data = body(3500)
    await store_file(store, "CA1", data, expires_in_days=90)
    assert fake.keys("recordings/CA1/") == [
        "recordings/CA1/chunk-000000",
        "recordings/CA1/chunk-000001",
        "recordings/CA1/chunk-000002",
        "recordings/CA1/chunk-000003",
        "recordings/CA1/recording.json",
    ]
    assert fake.requests[-2:] == [("PUT", "recordings/CA1/chunk-000000"), ("PUT", "recordings/CA1/recording.json")]
    assert {stored.tags for stored in fake.objects.values()} == {f"{RETENTION_TAG}=90"}
    manifest = json.loads(fake.objects["recordings/CA1/recording.json"].data)
    assert manifest["_id"] == "CA1" and manifest["length"] == 3500 and manifest["chunkSize"] == CHUNK
    assert manifest["filename"] == "CA1.wav" and manifest["metadata"]["contentType"] == "audio/wav"

    info = await store.info("CA1")
    assert info is not None and (info.length, info.chunk_size, info.duration_s, info.complete) == (
        3500,
        CHUNK,
        1.5,
        True,
    )
    assert await read_all(store, "CA1", 0, 3500) == data
    assert await read_all(store, "CA1", 44, 1044) == data[44:1044]  # across a chunk boundary
    assert await read_all(store, "CA1", 2999, 3001) == data[2999:3001]
    assert await read_all(store, "CA1", 3400, 10_000) == data[3400:]  # clipped to the file
    fake.requests.clear()
    await read_all(store, "CA1", 1500, 2600)
    assert fake.requests == [
        ("GET", "recordings/CA1/recording.json"),
        ("GET", "recordings/CA1/chunk-000001"),
        ("GET", "recordings/CA1/chunk-000002"),
    ]  # one chunk object at a time, only those the range covers


async def test_a_dropped_chunk_reads_as_silence_and_a_missing_recording_as_none(
    s3: tuple[FakeS3, S3Recordings],
) -> None:
    fake, store = s3
    data = body(2500)
    await store_file(store, "CA2", data)
    del fake.objects["recordings/CA2/chunk-000001"]
    assert await read_all(store, "CA2", 0, 2500) == data[:1000] + bytes(1000) + data[2000:]
    assert await store.info("CA404") is None


async def test_delete_removes_chunks_and_manifest_across_list_pages(s3: tuple[FakeS3, S3Recordings]) -> None:
    fake, store = s3
    fake.list_page_keys = 2
    await store_file(store, "CA3", body(4500))
    await store_file(store, "CA33", body(100))  # a prefix of its own: CA3/ does not cover it
    await store.put_chunk("CA4", 1, b"unfinished", expires_at=datetime.now(UTC) + timedelta(days=1))
    assert await store.delete("CA3") is True
    assert fake.keys("recordings/CA3/") == [] and await store.info("CA3") is None
    assert len(fake.keys("recordings/CA33/")) == 2
    assert await store.delete("CA4") is True and fake.keys("recordings/CA4/") == []
    assert await store.delete("CA5") is False


async def test_failures_are_database_errors_and_the_writer_counts_them(s3: tuple[FakeS3, S3Recordings]) -> None:
    fake, store = s3
    fake.fail = True
    with pytest.raises(S3Error, match="HTTP 503 SlowDown") as raised:
        await store.info("CA1")
    assert isinstance(raised.value, DatabaseError)  # as GridFsRecordings fails
    writer = RecordingWriter(store, "CA6", datetime.now(UTC) + timedelta(days=1), chunk_bytes=CHUNK)
    writer.write(bytes(3 * CHUNK))
    written = await writer.finish()
    assert written.dropped_chunks == 3 and written.stored is False  # chunks 1-3 dropped, chunk 0 never stored


async def test_a_slow_bucket_fails_within_the_timeout() -> None:
    fake = FakeS3(delay_s=2.0)
    async with fake.server() as url:
        store = S3Recordings(location(url, fake, timeout_s=0.2))
        started = time.monotonic()
        with pytest.raises(S3Error, match=r"within 0\.2s"):
            await store.put_chunk("CA7", 1, b"x", expires_at=datetime.now(UTC) + timedelta(days=1))
        assert time.monotonic() - started < 1.5
        await store.aclose()


async def test_the_fake_refuses_unsigned_and_unknown_key_requests() -> None:
    fake = FakeS3()
    async with fake.server() as url:
        unsigned = await httpx.AsyncClient().get(f"{url}/{fake.bucket}/recordings/CA1/recording.json")
        forged = await httpx.AsyncClient().get(
            f"{url}/{fake.bucket}/x", headers={"Authorization": "AWS4-HMAC-SHA256 Credential=AKIDFAKE"}
        )
        other = S3Recordings(location(url, FakeS3(access_key_id="AKIDOTHER")))
        with pytest.raises(S3Error, match="403 InvalidAccessKeyId"):
            await other.info("CA1")
        await other.aclose()
    assert unsigned.status_code == 403 and forged.status_code == 403


SIGNED_REQUESTS = [
    ("PUT", "/bucket/recordings/CA1/chunk-000001", {"Content-Type": "application/octet-stream"}, b"\x00\x01" * 50),
    ("GET", "/bucket/recordings/CA1/chunk-000002", {"Range": "bytes=0-999"}, b""),
    ("GET", "/bucket?list-type=2&max-keys=1000&prefix=recordings%2FCA1%2F", {}, b""),
    ("PUT", "/bucket/recordings/CA1/recording.json", {"x-amz-tagging": "switchboard-retention-days=90"}, b"{}"),
]
ESCAPED_REQUEST = ("DELETE", "/bucket/recordings/CA%201/recording.json", {"x-amz-tagging": " a=b  c "}, b"")
"""A key needing escapes, a header value needing trimming: S3 encodes a path once, as botocore's
`S3SigV4Auth` does; its base `SigV4Auth` (other services) encodes it twice, so only S3's is compared."""


@pytest.mark.parametrize(
    ("auth", "request_parts"),
    [(SigV4Auth, parts) for parts in SIGNED_REQUESTS]
    + [(S3SigV4Auth, parts) for parts in [*SIGNED_REQUESTS, ESCAPED_REQUEST]],
)
def test_the_signature_is_botocores(
    monkeypatch: pytest.MonkeyPatch,
    auth: type[SigV4Auth],
    request_parts: tuple[str, str, dict[str, str], bytes],
) -> None:
    method, path, headers, payload = request_parts
    now = datetime(2026, 12, 1, 6, 30, 15, tzinfo=UTC)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *_, **__: now.replace(tzinfo=None))
    url = f"http://127.0.0.1:9000{path}"
    payload_sha256 = hashlib.sha256(payload).hexdigest()
    ours = sign(method, url, headers, payload_sha256, Credentials("AKIDEXAMPLE", SECRET, "eu-west-1"), now)

    sha_header = {"X-Amz-Content-SHA256": payload_sha256}
    request = AWSRequest(method=method, url=url, data=payload, headers={**headers, **sha_header})
    auth(BotoCredentials("AKIDEXAMPLE", SECRET), "s3", "eu-west-1").add_auth(request)
    assert ours["Authorization"] == request.headers["Authorization"]
    assert ours["X-Amz-Date"] == request.headers["X-Amz-Date"] == "20261201T063015Z"
    assert ours["X-Amz-Content-SHA256"] == request.headers["X-Amz-Content-SHA256"]


async def test_the_pod_refuses_s3_without_its_settings() -> None:
    settings = make_settings(recording_store="s3", s3_bucket="recordings-test")
    with pytest.raises(
        ValueError, match="SWITCHBOARD_S3_ENDPOINT, SWITCHBOARD_S3_ACCESS_KEY_ID, SWITCHBOARD_S3_SECRET"
    ):
        async with open_pod(settings):
            pass


def test_a_placeholder_secret_key_is_refused_like_every_secret() -> None:
    problems = insecure_secrets(make_settings(s3_secret_access_key="replace-me-s3-secret"))
    assert problems == [
        "SWITCHBOARD_S3_SECRET_ACCESS_KEY holds a placeholder from an example: set it to the real value"
    ]


def test_a_recorded_call_goes_to_s3_and_is_served_with_ranges() -> None:
    fake = FakeS3()
    database = in_memory()
    asyncio.run(ensure_indexes(database))
    call_sid = new_sid("CA")
    asyncio.run(
        CallRecords(database).start(call_sid, agent_id="echo", from_number="+15005550006", to_number=AGENT_NUMBER)
    )
    agent = RecordedAgent(EchoAgent(transfer_number=TRANSFER_NUMBER))
    with fake.server() as s3_url:
        settings = make_settings(
            api_keys=f"{KEY}:calls:read",
            recording_store="s3",
            s3_endpoint=s3_url,
            s3_bucket=fake.bucket,
            s3_access_key_id=fake.access_key_id,
            s3_secret_access_key=SECRET,
        )
        app = create_app(settings, database=database, agents=AgentCatalog({"echo": agent}))
        with BackgroundServer(app, settings) as url:
            call = SimulatedCall(
                url, AUTH_TOKEN, to=AGENT_NUMBER, call_sid=call_sid, script=[Say(synthetic_utterance(1.0)), Pause(1.0)]
            )
            asyncio.run(call.run())
            deadline = time.monotonic() + 10
            while f"recordings/{call_sid}/recording.json" not in fake.objects:
                assert time.monotonic() < deadline, "the recording was not stored"
                time.sleep(0.1)
            headers = {"Authorization": f"Bearer {KEY}"}
            whole = httpx.get(f"{url}/api/calls/{call_sid}/recording", headers=headers)
            part = httpx.get(f"{url}/api/calls/{call_sid}/recording", headers=headers | {"Range": "bytes=44-1043"})

    chunks = sorted(key for key in fake.keys(f"recordings/{call_sid}/") if "/chunk-" in key)
    stored = b"".join(fake.objects[key].data for key in chunks)
    assert whole.status_code == 200 and whole.content == stored and stored[:4] == b"RIFF"
    assert whole.headers["content-type"] == "audio/wav"
    assert part.status_code == 206 and part.content == stored[44:1044]
    assert part.headers["content-range"] == f"bytes 44-1043/{len(stored)}"
    assert {fake.objects[key].tags for key in chunks} == {f"{RETENTION_TAG}=90"}  # call_retention_days
