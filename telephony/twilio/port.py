"""`CallPort` for a Twilio media stream: the session's view of one call.

Inbound events wait in a bounded queue (oldest caller audio dropped first if the session falls
behind); outbound audio is resampled to 8 kHz, mu-law encoded and handed to `Playout`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable

from agents.port import AudioIn, CallEvent, CallInfo, CallOutcome, Hangup, MarkHeard, Transfer
from telephony.audio.mulaw import TWILIO_SAMPLE_RATE, pcm16_to_mulaw
from telephony.audio.resamplers import StreamResampler
from telephony.twilio.playout import Playout

log = logging.getLogger(__name__)

EndCall = Callable[[CallOutcome], Awaitable[None]]


class TwilioCallPort:
    def __init__(
        self,
        info: CallInfo,
        playout: Playout,
        end_call: EndCall,
        *,
        max_queued_events: int = 250,
        outbound_resampler: str = "fir",
        end_wait_seconds: float = 30.0,
    ) -> None:
        self._info = info
        self._playout = playout
        self._end_call = end_call
        self._max_queued = max_queued_events
        self._outbound_resampler = outbound_resampler
        self._end_wait = end_wait_seconds
        self._events: deque[CallEvent] = deque()
        self._ready = asyncio.Event()
        self._closed = False
        self._resampler: StreamResampler | None = None
        self.dropped_audio_frames = 0
        self.outcome: CallOutcome | None = None

    @property
    def info(self) -> CallInfo:
        return self._info

    @property
    def closed(self) -> bool:
        return self._closed

    # -- edge side ------------------------------------------------------------------------

    def push(self, event: CallEvent) -> None:
        """Deliver an event to the session; past the bound, the oldest caller audio goes first."""
        if self._closed:
            return
        if len(self._events) >= self._max_queued:
            self._drop_oldest_audio()
        self._events.append(event)
        self._ready.set()

    def _drop_oldest_audio(self) -> None:
        for index, queued in enumerate(self._events):
            if isinstance(queued, AudioIn):
                del self._events[index]
                break
        else:
            self._events.popleft()
        self.dropped_audio_frames += 1
        if self.dropped_audio_frames in (1, 10, 100) or self.dropped_audio_frames % 1000 == 0:
            log.warning(
                "session is not keeping up; dropping caller audio", extra={"dropped": self.dropped_audio_frames}
            )

    def close(self) -> None:
        """The call is over: `events()` ends once the queued events are read."""
        self._closed = True
        self._ready.set()

    # -- session side ---------------------------------------------------------------------

    async def events(self) -> AsyncIterator[CallEvent]:
        while True:
            if self._events:
                yield self._events.popleft()
                continue
            if self._closed:
                return
            self._ready.clear()
            await self._ready.wait()

    async def play(self, pcm: bytes, sample_rate: int) -> None:
        if self._closed or not pcm:
            return
        if self._resampler is None or self._resampler.in_rate != sample_rate:
            await self._flush_resampler()
            self._resampler = StreamResampler(sample_rate, TWILIO_SAMPLE_RATE, self._outbound_resampler)
        await self._playout.enqueue_audio(pcm16_to_mulaw(self._resampler.process(pcm)))

    async def _flush_resampler(self) -> None:
        if self._resampler is not None:
            tail = self._resampler.flush()
            if tail:
                await self._playout.enqueue_audio(pcm16_to_mulaw(tail))

    async def mark(self, name: str) -> None:
        if self._closed:
            return
        await self._flush_resampler()
        self._playout.enqueue_mark(name)

    async def clear(self) -> None:
        if self._closed:
            return
        if self._resampler is not None:
            self._resampler.reset()
        for name in await self._playout.clear():
            self.push(MarkHeard(name, heard=False))

    async def hang_up(self, reason: str = "completed") -> None:
        await self._end(Hangup(reason))

    async def transfer(self, to: str) -> None:
        await self._end(Transfer(to))

    async def _end(self, outcome: CallOutcome) -> None:
        if self._closed or self.outcome is not None:
            return
        self.outcome = outcome
        await self._flush_resampler()
        if not await self._playout.wait_idle(self._end_wait):
            log.warning("ending the call before its queued audio finished playing")
        await self._end_call(outcome)
