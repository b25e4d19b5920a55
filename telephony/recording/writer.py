"""One call's WAV streamed to a `RecordingStore` in bounded chunks, off the audio path.

The audio path only appends to a buffer (`write`, never awaits). Each full chunk goes on a
bounded queue that a writer task empties into storage; a chunk that finds the queue full (storage
slow or down) is dropped and counted, and a write that fails or takes too long is counted too:
either marks the recording incomplete but never blocks or ends the call. Chunk 0 (the header and
the first audio) stays here until the end, when the header's sizes are known. Memory per call:
chunk 0, the chunk filling, and at most `WRITE_QUEUE_CHUNKS` waiting, whatever the call's length.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime

from db.recordings import CHUNK_BYTES, MAX_RECORDING_BYTES, RecordingStore
from telephony.recording.wav import CHANNELS, HEADER_BYTES, SAMPLE_RATE, duration_s, wav_header

log = logging.getLogger(__name__)

WRITE_QUEUE_CHUNKS = 4
"""Bound on one call's chunks waiting for storage; past it a chunk is dropped (and counted)."""
WRITE_TIMEOUT_S = 10.0
"""Longest one storage write may take before it counts as failed (its chunk is lost, the call goes on)."""


@dataclass(frozen=True, slots=True)
class Written:
    """How a recording ended up in storage."""

    length: int
    """Bytes of the WAV file (header included)."""
    duration_s: float
    dropped_chunks: int
    """Chunks not stored: the queue was full, or the write failed or timed out."""
    truncated: bool
    """The call outlasted `MAX_RECORDING_BYTES`: its end is not recorded."""
    stored: bool
    """The files document (and chunk 0) reached storage: the recording can be served."""

    @property
    def complete(self) -> bool:
        return self.stored and not self.dropped_chunks and not self.truncated


class RecordingWriter:
    def __init__(
        self,
        store: RecordingStore,
        call_sid: str,
        expires_at: datetime,
        *,
        chunk_bytes: int = CHUNK_BYTES,
        queue_chunks: int = WRITE_QUEUE_CHUNKS,
        max_bytes: int = MAX_RECORDING_BYTES,
        write_timeout_s: float = WRITE_TIMEOUT_S,
    ) -> None:
        if chunk_bytes <= HEADER_BYTES:
            raise ValueError("a chunk must hold more than the WAV header")
        self._store = store
        self.call_sid = call_sid
        self._expires_at = expires_at
        self._chunk_bytes = chunk_bytes
        self._max_data = max_bytes - HEADER_BYTES
        self._timeout = write_timeout_s
        self._filling = bytearray(HEADER_BYTES)  # the header's place; its real bytes are known at the end
        self._first: bytes | bytearray | None = None
        self._next_n = 0
        self._queue: asyncio.Queue[tuple[int, bytes | bytearray] | None] = asyncio.Queue(queue_chunks)
        self._task: asyncio.Task[None] | None = None
        """Started with the first chunk to store, so a recorder that never hears a frame leaves nothing running."""
        self.data_bytes = 0
        self.dropped_chunks = 0
        self.truncated = False
        self._closing = False
        """No more audio: the call ended (or the pod is shutting down)."""
        self._finished: Written | None = None

    # -- the audio path: never awaits ----------------------------------------------------------

    def write(self, pcm: bytes) -> None:
        """Append interleaved stereo PCM16; full chunks are handed to the writer task."""
        if self._closing:
            return
        room = self._max_data - self.data_bytes
        if len(pcm) > room:
            pcm = pcm[: room - room % (CHANNELS * 2)]
            self.truncated = True
        self.data_bytes += len(pcm)
        while pcm:  # the chunk filling is handed over whole (no copy) once full, and a new one begun
            room = self._chunk_bytes - len(self._filling)
            self._filling += pcm[:room]
            pcm = pcm[room:]
            if len(self._filling) == self._chunk_bytes:
                self._hand_over(self._filling)
                self._filling = bytearray()

    def _hand_over(self, chunk: bytes | bytearray) -> None:
        n = self._next_n
        self._next_n += 1
        if n == 0:
            self._first = chunk
            return
        if self._task is None:
            self._task = asyncio.create_task(self._drain(), name=f"recording-{self.call_sid}")
        try:
            self._queue.put_nowait((n, chunk))
        except asyncio.QueueFull:
            self._dropped(n, "storage is behind")

    def _dropped(self, n: int, why: str) -> None:
        self.dropped_chunks += 1
        if self.dropped_chunks in (1, 10) or self.dropped_chunks % 100 == 0:
            log.warning(
                "recording chunk dropped",
                extra={"call_sid": self.call_sid, "chunk": n, "reason": why, "dropped": self.dropped_chunks},
            )

    # -- off the audio path -------------------------------------------------------------------

    async def _drain(self) -> None:
        while (item := await self._queue.get()) is not None:
            n, chunk = item
            try:
                async with asyncio.timeout(self._timeout):
                    await self._store.put_chunk(self.call_sid, n, chunk, expires_at=self._expires_at)
            except Exception as exc:  # storage down or slow: this chunk is lost, the call is not
                self._dropped(n, f"write failed: {type(exc).__name__}")

    async def finish(self) -> Written:
        """Store what is left, then chunk 0 with the final header and the files document. Takes at
        most (`WRITE_QUEUE_CHUNKS` + 2) x `WRITE_TIMEOUT_S`; run it off the audio path."""
        if self._finished is not None or self._closing:
            raise RuntimeError("a recording is finished once")
        self._closing = True
        if self._next_n == 0:  # a call shorter than a chunk: chunk 0 is all there is
            self._hand_over(self._filling)
        elif self._filling:  # the last chunk: off the audio path now, so it may wait for room
            if self._task is None:
                self._task = asyncio.create_task(self._drain(), name=f"recording-{self.call_sid}")
            await self._queue.put((self._next_n, self._filling))
            self._next_n += 1
        self._filling = bytearray()
        if self._task is not None:
            await self._queue.put(None)
            await self._task
        first = bytearray(self._first or b"")
        first[:HEADER_BYTES] = wav_header(self.data_bytes)
        self._first = None
        length = HEADER_BYTES + self.data_bytes
        metadata = {
            "duration_s": round(duration_s(self.data_bytes), 3),
            "sample_rate": SAMPLE_RATE,
            "channels": CHANNELS,
            "complete": not (self.dropped_chunks or self.truncated),
            "dropped_chunks": self.dropped_chunks,
        }
        stored = True
        try:
            async with asyncio.timeout(self._timeout):
                await self._store.finish(
                    self.call_sid,
                    first,
                    length=length,
                    chunk_size=self._chunk_bytes,
                    expires_at=self._expires_at,
                    metadata=metadata,
                )
        except Exception:
            log.exception("recording could not be finished; it is lost", extra={"call_sid": self.call_sid})
            stored = False
        self._finished = Written(length, duration_s(self.data_bytes), self.dropped_chunks, self.truncated, stored)
        return self._finished

    async def abandon(self) -> None:
        """Stop the writer task without finishing (pod shutdown past its deadline)."""
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
