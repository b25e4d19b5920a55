"""A `RecordingStore` held in memory, which a test can make slow (`hold`) or failing (`fail`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

from db.recordings import RecordingInfo


class MemoryRecordingStore:
    def __init__(self) -> None:
        self.chunks: dict[tuple[str, int], bytes] = {}
        self.files: dict[str, dict[str, Any]] = {}
        self.order: list[tuple[str, int]] = []
        """(call_sid, n) in the order chunks were stored."""
        self.hold = asyncio.Event()
        """Cleared: chunk writes wait (storage is slow)."""
        self.hold.set()
        self.fail = False
        """True: every write raises (storage is down)."""

    async def put_chunk(self, call_sid: str, n: int, data: bytes, *, expires_at: datetime) -> None:
        await self.hold.wait()
        if self.fail:
            raise ConnectionError("storage is down")
        self.chunks[(call_sid, n)] = bytes(data)
        self.order.append((call_sid, n))

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
        if self.fail:
            raise ConnectionError("storage is down")
        self.chunks[(call_sid, 0)] = bytes(first_chunk)
        self.order.append((call_sid, 0))
        self.files[call_sid] = {"length": length, "chunk_size": chunk_size, "expires_at": expires_at, **metadata}

    async def info(self, call_sid: str) -> RecordingInfo | None:
        file = self.files.get(call_sid)
        if file is None:
            return None
        return RecordingInfo(
            call_sid,
            file["length"],
            file["chunk_size"],
            float(file.get("duration_s", 0.0)),
            bool(file.get("complete", True)),
            int(file.get("dropped_chunks", 0)),
            datetime.now(UTC),
        )

    async def read(self, info: RecordingInfo, start: int, end: int) -> AsyncIterator[bytes]:
        whole = self.file(info.call_sid)
        yield whole[start:end]

    async def delete(self, call_sid: str) -> bool:
        found = self.files.pop(call_sid, None) is not None
        for key in [k for k in self.chunks if k[0] == call_sid]:
            del self.chunks[key]
        return found

    def file(self, call_sid: str) -> bytes:
        """The stored file, missing chunks as zeros."""
        file = self.files[call_sid]
        size, length = file["chunk_size"], file["length"]
        count = (length + size - 1) // size
        data = b"".join(self.chunks.get((call_sid, n), bytes(size)) for n in range(count))
        return data[:length]
