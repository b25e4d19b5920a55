"""Call recordings: WAV files stored chunk by chunk, in GridFS's layout, and read back by byte range.

Why hand-written GridFS: a recording is written while its call runs, in bounded chunks, and the WAV
header's sizes are known only at the end. `GridFSBucket` wants a whole upload stream in one task
and offers no "write chunk 0 last". So the writer puts chunks 1, 2, ... as they fill
(`put_chunk`), and at the end chunk 0 (with the finished header) and the files document
(`finish`). The documents are exactly GridFS's (`recordings.files`: _id, length, chunkSize,
uploadDate, filename, metadata; `recordings.chunks`: files_id, n, data), so
`GridFSBucket(db, bucket_name="recordings")` can read a finished recording, and they go through
the async PyMongo API like every repository (so the in-memory fake and a real server agree).

The file's `_id` is the call's CallSid: one recording per call, found without an index of our own.
Both collections carry `expires_at` (the call record's retention) under TTL indexes, so the server
deletes a recording with its call record. A recording whose writer dropped chunks (storage slow or
down) is finished anyway, marked `complete: false`; its missing chunks read back as silence, so
the WAV stays playable and as long as the call.

`RecordingStore` is what the pod writes and the API reads through; `SWITCHBOARD_RECORDING_STORE=s3`
puts recordings in an S3-compatible bucket instead (telephony/recording/s3_store.py, the same layout
in objects).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from db.client import Database
from db.errors import translates_driver_errors
from db.indexes import RECORDING_CHUNKS, RECORDING_FILES

CHUNK_BYTES = 255 * 1024
"""GridFS's default chunk size: what one chunk document holds (the last one may hold less)."""
MAX_RECORDING_BYTES = 4 * 3600 * 8000 * 2 * 2 + 44
"""Bound on one stored recording: 4 hours (an agent's longest call) of 8 kHz stereo PCM16 plus its
header; a writer stops adding audio there."""
RECORDING_ID_PATTERN = r"^[A-Za-z0-9]{2,64}$"
"""A recording is named by its call's CallSid."""


@dataclass(frozen=True, slots=True)
class RecordingInfo:
    """What a finished recording's files document says."""

    call_sid: str
    length: int
    """Bytes of the whole WAV file."""
    chunk_size: int
    duration_s: float
    complete: bool
    """False when the writer dropped audio (storage slow or down): those chunks read as silence."""
    dropped_chunks: int
    uploaded_at: datetime
    content_type: str = "audio/wav"


class RecordingStore(Protocol):
    """Where recordings go and come back from (GridFS here; an S3-compatible bucket could be another)."""

    async def put_chunk(self, call_sid: str, n: int, data: bytes, *, expires_at: datetime) -> None:
        """Store chunk `n` (n >= 1) of a recording still being written (idempotent: a retry overwrites)."""
        ...

    async def finish(
        self,
        call_sid: str,
        first_chunk: bytes,
        *,
        length: int,
        chunk_size: int,
        expires_at: datetime,
        metadata: Mapping[str, Any],
    ) -> None:
        """Store chunk 0 (the header now final) and make the recording visible."""
        ...

    async def info(self, call_sid: str) -> RecordingInfo | None:
        """The finished recording of a call, or None."""
        ...

    def read(self, info: RecordingInfo, start: int, end: int) -> AsyncIterator[bytes]:
        """Bytes `start` to `end` (exclusive) of the file, one chunk at a time."""
        ...

    async def delete(self, call_sid: str) -> bool:
        """Remove a call's recording (finished or not); True if there was one."""
        ...


def _aware(value: datetime) -> datetime:
    """Servers hand datetimes back naive (in UTC)."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def check_chunk(n: int, data: bytes) -> None:
    """What every store accepts as a chunk (its number, its size)."""
    if n < 0 or len(data) > CHUNK_BYTES:
        raise ValueError(f"chunk {n} of {len(data)} bytes is not a chunk of at most {CHUNK_BYTES} bytes")


def files_document(
    call_sid: str, *, length: int, chunk_size: int, expires_at: datetime, metadata: Mapping[str, Any]
) -> dict[str, Any]:
    """GridFS's files document for a finished recording (an S3 store keeps the same fields as its manifest)."""
    if not 0 < length <= MAX_RECORDING_BYTES:
        raise ValueError(f"a recording is 1 to {MAX_RECORDING_BYTES} bytes, not {length}")
    return {
        "_id": call_sid,
        "length": length,
        "chunkSize": chunk_size,
        "uploadDate": datetime.now(UTC),
        "filename": f"{call_sid}.wav",
        "metadata": {"call_sid": call_sid, "contentType": "audio/wav", **metadata},
        "expires_at": expires_at,
    }


def recording_info(call_sid: str, document: Mapping[str, Any]) -> RecordingInfo:
    """A files document (or a manifest of one, with its times as ISO text) as a `RecordingInfo`."""
    metadata = document.get("metadata") or {}
    uploaded = document["uploadDate"]
    return RecordingInfo(
        call_sid=call_sid,
        length=int(document["length"]),
        chunk_size=int(document["chunkSize"]),
        duration_s=float(metadata.get("duration_s", 0.0)),
        complete=bool(metadata.get("complete", True)),
        dropped_chunks=int(metadata.get("dropped_chunks", 0)),
        uploaded_at=_aware(datetime.fromisoformat(uploaded) if isinstance(uploaded, str) else uploaded),
        content_type=str(metadata.get("contentType", "audio/wav")),
    )


def chunk_spans(info: RecordingInfo, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(chunk number, first byte, byte after the last) within each chunk that bytes `start`..`end` (exclusive) of
    the file cover, in order: how every store turns a range into chunk reads."""
    end = min(end, info.length)
    size = info.chunk_size
    if end <= start:
        return
    for n in range(start // size, (end - 1) // size + 1):
        chunk_start = n * size
        yield n, max(0, start - chunk_start), min(size, info.length - chunk_start, end - chunk_start)


@translates_driver_errors
class GridFsRecordings:
    """`RecordingStore` on MongoDB, in GridFS's layout (bucket `recordings`)."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._files = database.collection(RECORDING_FILES)
        self._chunks = database.collection(RECORDING_CHUNKS)

    async def put_chunk(self, call_sid: str, n: int, data: bytes, *, expires_at: datetime) -> None:
        check_chunk(n, data)
        await self._chunks.update_one(
            {"files_id": call_sid, "n": n}, {"$set": {"data": bytes(data), "expires_at": expires_at}}, upsert=True
        )

    async def finish(
        self,
        call_sid: str,
        first_chunk: bytes,
        *,
        length: int,
        chunk_size: int,
        expires_at: datetime,
        metadata: Mapping[str, Any],
    ) -> None:
        document = files_document(
            call_sid, length=length, chunk_size=chunk_size, expires_at=expires_at, metadata=metadata
        )
        await self.put_chunk(call_sid, 0, first_chunk, expires_at=expires_at)
        await self._files.replace_one({"_id": call_sid}, document, upsert=True)

    async def info(self, call_sid: str) -> RecordingInfo | None:
        document = await self._files.find_one({"_id": call_sid})
        return None if document is None else recording_info(call_sid, document)

    async def read(self, info: RecordingInfo, start: int, end: int) -> AsyncIterator[bytes]:
        """One chunk document in memory at a time; a chunk the writer dropped reads as zeros (silence)."""
        for n, low, high in chunk_spans(info, start, end):
            yield (await self.chunk(info.call_sid, n) or b"")[low:high].ljust(high - low, b"\0")

    async def chunk(self, call_sid: str, n: int) -> bytes | None:
        """Chunk `n` of a recording as stored, or None (never stored, or lost)."""
        document = await self._chunks.find_one({"files_id": call_sid, "n": n}, {"_id": 0, "data": 1})
        return None if document is None else bytes(document["data"])

    async def delete(self, call_sid: str) -> bool:
        files = await self._files.delete_one({"_id": call_sid})
        chunks = await self._chunks.delete_many({"files_id": call_sid})
        return bool(files.deleted_count or chunks.deleted_count)
