"""Speculative replies: the answer starts while the caller's pause is still only a likely end of turn.

The listener says `TurnPending` once a pause has lasted `pending_ms` (its transcription already
running), and most pauses do end the turn (a pause after unfinished words, which cannot end it
before the bound, is announced only near that bound); so the session starts the reply then, held
by a `ReplyGate`: the transcript, the model
request and the first TTS piece run, but nothing reaches the line (no audio, no mark, no filler),
no tool runs and the call is not ended until the `UtteranceReady` carrying the same transcript
confirms the turn. If the caller goes on instead, the reply is cancelled (its model request closed,
its synthesis dropped) and what it wrote to the history and the call record is undone, so the
caller's words are answered once, together with what they said next.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from agents.conversation.listener import TurnPending, UtteranceReady
from agents.conversation.record import CallRecord, TurnMetrics
from agents.engines.protocols import Transcript

HELD_AUDIO_CHUNKS = 64
"""Bound on audio chunks of a held reply's first piece kept before the turn is confirmed; past it
the synthesis waits (a first piece is a sentence or a clause: a few chunks)."""


class ReplyGate:
    """The gate of a speculative reply: what would reach the caller waits for `confirm`."""

    def __init__(self) -> None:
        self._confirmed = asyncio.Event()
        self.ready: UtteranceReady | None = None
        """The end of turn that confirmed the reply."""
        self.confirmed_at = 0.0
        """When it was confirmed (the session's clock)."""
        self._callbacks: list[Callable[[], None]] = []

    @property
    def confirmed(self) -> bool:
        return self._confirmed.is_set()

    def confirm(self, ready: UtteranceReady, now: float) -> None:
        self.ready, self.confirmed_at = ready, now
        self._confirmed.set()
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    def when_confirmed(self, callback: Callable[[], None]) -> None:
        """Run `callback` once the turn is confirmed (at once if it is): what a dropped turn must
        leave undone, such as a note in the call record."""
        if self.confirmed:
            callback()
        else:
            self._callbacks.append(callback)

    async def wait(self) -> None:
        await self._confirmed.wait()

    def settle(self, metrics: TurnMetrics) -> None:
        """Fill in what only the confirmation knows: when the turn ended, and so how long the
        transcript took after that (usually nothing: it was ready during the pause)."""
        metrics.speculative = True
        ready = self.ready
        if ready is None or not ready.ended_at_ms:
            return
        metrics.endpoint_ms = ready.ended_at_ms - ready.speech_end_ms
        if metrics.transcript_ms is not None:
            metrics.stt_ms = max(0.0, round(metrics.transcript_ms - metrics.endpoint_ms, 1))


@dataclass(eq=False)
class Speculation:
    """The one speculative reply a call may have in flight, and what to restore if it is dropped."""

    pending: TurnPending
    gate: ReplyGate
    words: list[asyncio.Task[Transcript]]
    """The caller's unanswered utterances before this one (the session's `_unanswered`)."""
    turn_count: int
    """The session's turn count before it: a dropped reply was never a turn."""
    task: asyncio.Task[None] | None = None
    """The turn running the reply."""

    def matches(self, ready: UtteranceReady) -> bool:
        """`ready` ends the turn this reply was started on (same transcript job)."""
        return ready.transcript is self.pending.transcript

    def count(self, record: CallRecord, used: bool) -> None:
        if used:
            record.speculation_used += 1
        else:
            record.speculation_wasted += 1


def provisional(pending: TurnPending) -> UtteranceReady:
    """The end of turn a speculative reply assumes (`ended_at_ms` 0: not known until confirmed)."""
    return UtteranceReady(pending.speech_start_ms, pending.speech_end_ms, 0, pending.transcript, True)


class HeldAudio:
    """A held reply's first piece: synthesis starts now, the audio is handed out once the turn is
    confirmed. Closing it (the reply was dropped) cancels the synthesis."""

    def __init__(self, stream: AsyncIterator[bytes], gate: ReplyGate) -> None:
        self._stream = stream
        self._gate = gate
        self._chunks: asyncio.Queue[bytes | None] = asyncio.Queue(HELD_AUDIO_CHUNKS)
        self._error: Exception | None = None
        self._finished = False
        self._pull = asyncio.get_running_loop().create_task(self._synthesize())

    async def _synthesize(self) -> None:
        try:
            async for chunk in self._stream:
                await self._chunks.put(chunk)
        except Exception as exc:  # raised to the speaker once the turn is confirmed, never before
            self._error = exc
        await self._chunks.put(None)

    def __aiter__(self) -> HeldAudio:
        return self

    async def __anext__(self) -> bytes:
        if self._finished:
            raise StopAsyncIteration
        await self._gate.wait()
        chunk = await self._chunks.get()
        if chunk is None:
            self._finished = True
            if self._error is not None:
                raise self._error
            raise StopAsyncIteration
        return chunk

    async def aclose(self) -> None:
        self._finished = True
        if not self._pull.done():
            self._pull.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._pull
        aclose = getattr(self._stream, "aclose", None)
        if aclose is not None:
            await aclose()
