"""Real-time pacing of agent audio to Twilio, with marks and `clear`.

Twilio plays whatever it receives as fast as it arrives into its own buffer, so dumping a whole
reply at once would leave nothing for `clear` to cut short on our side and make "what did the
caller hear" unknowable. `Playout` sends 20 ms mu-law frames no more than `lead` ahead of real
time, places marks between them, and on `clear` drops everything queued here and tells Twilio to
drop what it holds.

Marks: a mark sent after some audio comes back from Twilio when that audio has played. After a
`clear`, Twilio echoes the marks it was still holding; those were *not* heard, so `clear()`
reports them (and the ones still queued here) as dropped and their echoes are swallowed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from telephony.audio.mulaw import MULAW_FRAME_BYTES, MULAW_SILENCE, TWILIO_SAMPLE_RATE
from telephony.twilio.protocol import clear_message, mark_message, media_message

log = logging.getLogger(__name__)

Send = Callable[[str], Awaitable[None]]


class PlayoutTap(Protocol):
    """Sees what Twilio is given to play and when it is told to drop it (the call recorder)."""

    def sent(self, mulaw: bytes) -> None: ...

    def cleared(self) -> None: ...


@dataclass(frozen=True, slots=True)
class _QueuedMark:
    name: str


class Playout:
    """Queues agent audio and marks and sends them to Twilio at the pace of real time."""

    def __init__(
        self,
        send: Send,
        stream_sid: str,
        *,
        lead_ms: int = 200,
        max_frames: int = 1500,
        max_pending_marks: int = 256,
        clock: Callable[[], float] = time.monotonic,
        tap: PlayoutTap | None = None,
    ) -> None:
        self._send = send
        self._tap = tap
        self._stream_sid = stream_sid
        self._lead = lead_ms / 1000
        self._max_frames = max_frames
        self._clock = clock
        self._queue: deque[bytes | _QueuedMark] = deque()
        self._frames_queued = 0
        self._partial = b""
        self._outstanding: deque[str] = deque(maxlen=max_pending_marks)
        self._cleared: deque[str] = deque(maxlen=max_pending_marks)
        self._has_items = asyncio.Event()
        self._has_space = asyncio.Event()
        self._has_space.set()
        self._generation = 0
        self._closed = False
        self._holding = False
        """`run()` has taken a frame off the queue and is waiting for its time to send it."""
        self._play_end = 0.0
        """Clock time at which Twilio will have played everything sent so far."""
        self.frames_sent = 0

    # -- producer side ------------------------------------------------------------------

    async def enqueue_audio(self, mulaw: bytes) -> None:
        """Queue mu-law audio; waits while `max_frames` are already queued. A `clear()` while
        waiting drops the rest of this audio too (it belongs to the reply being cut off)."""
        generation = self._generation
        data = self._partial + mulaw
        whole = len(data) - len(data) % MULAW_FRAME_BYTES
        self._partial = data[whole:]
        for start in range(0, whole, MULAW_FRAME_BYTES):
            while self._frames_queued >= self._max_frames and not self._closed:
                self._has_space.clear()
                await self._has_space.wait()
            if self._closed or generation != self._generation:
                return
            self._queue.append(data[start : start + MULAW_FRAME_BYTES])
            self._frames_queued += 1
            self._has_items.set()

    def enqueue_mark(self, name: str) -> None:
        """Queue a mark after all audio queued so far."""
        self._flush_partial()
        self._queue.append(_QueuedMark(name))
        self._has_items.set()

    def _flush_partial(self) -> None:
        """Queue a trailing part-frame, padded with silence, so it is not held back."""
        if self._partial:
            self._queue.append(self._partial.ljust(MULAW_FRAME_BYTES, MULAW_SILENCE))
            self._frames_queued += 1
            self._partial = b""
            self._has_items.set()

    async def clear(self) -> list[str]:
        """Drop queued audio here and at Twilio; return the marks that will now never be heard."""
        self._generation += 1
        dropped = [item.name for item in self._queue if isinstance(item, _QueuedMark)]
        self._queue.clear()
        self._frames_queued = 0
        self._partial = b""
        self._holding = False  # the frame `run()` holds is dropped when it wakes
        self._has_items.clear()
        self._has_space.set()
        self._play_end = self._clock()
        in_flight = list(self._outstanding)
        self._outstanding.clear()
        self._cleared.extend(in_flight)
        if self._tap is not None:
            self._tap.cleared()
        await self._send(clear_message(self._stream_sid))
        return in_flight + dropped

    def mark_echoed(self, name: str) -> bool:
        """Twilio echoed `name`. True if the caller heard the audio before it, False otherwise."""
        if name in self._cleared:
            self._cleared.remove(name)
            return False
        if name not in self._outstanding:
            log.warning("mark echo for unknown mark", extra={"mark": name})
            return False
        while self._outstanding:  # Twilio plays in order: anything before it was heard too
            if self._outstanding.popleft() == name:
                break
        return True

    def close(self) -> None:
        """The stream is gone: release producers waiting for space and accept nothing more."""
        self._closed = True
        self._has_space.set()

    @property
    def idle(self) -> bool:
        """Nothing queued here and everything sent has finished playing."""
        return not (self._queue or self._partial or self._holding) and self._clock() >= self._play_end

    @property
    def buffered_ms(self) -> float:
        """Audio queued here plus audio sent and not yet played at Twilio, in milliseconds."""
        ahead = max(0.0, self._play_end - self._clock())
        return (self._frames_queued + self._holding) * 20 + ahead * 1000

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until queued audio has played (for hang-up after a goodbye); False on timeout."""
        deadline = self._clock() + timeout
        self._flush_partial()
        while not self.idle and not self._closed:
            remaining = deadline - self._clock()
            if remaining <= 0:
                return False
            await asyncio.sleep(min(0.02, remaining))
        return True

    # -- consumer side ------------------------------------------------------------------

    async def run(self) -> None:
        """Send queued items one 20 ms frame at a time, so that what Twilio holds unplayed never
        exceeds `lead` (the first `lead` of a reply goes at once, the rest in real time)."""
        while True:
            await self._has_items.wait()
            if not self._queue:
                self._has_items.clear()
                continue
            item = self._queue.popleft()
            if isinstance(item, _QueuedMark):
                if self._outstanding.maxlen and len(self._outstanding) == self._outstanding.maxlen:
                    log.warning("too many marks pending; forgetting the oldest", extra={"mark": self._outstanding[0]})
                self._outstanding.append(item.name)
                await self._send(mark_message(self._stream_sid, item.name))
                continue
            self._frames_queued -= 1
            self._has_space.set()
            generation = self._generation
            now = self._clock()
            self._play_end = max(self._play_end, now)  # after an idle gap, playback restarts now
            wait = self._play_end + len(item) / TWILIO_SAMPLE_RATE - self._lead - now
            if wait > 0:
                self._holding = True
                try:
                    await asyncio.sleep(wait)
                finally:
                    self._holding = False
                if generation != self._generation:  # cleared while we waited: drop this frame
                    continue
            await self._send(media_message(self._stream_sid, item))
            if self._tap is not None:
                self._tap.sent(item)
            self._play_end += len(item) / TWILIO_SAMPLE_RATE
            self.frames_sent += 1
