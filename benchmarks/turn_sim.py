"""The listener on a turn-set clip in simulated time: when each turn ended, and when a reply could start.

Why: cut-offs and end-of-turn latency are properties of the listener's decisions, not of the
machine's load. Feeding a clip in real time would mix the two; here audio time is simulated (each
20 ms frame advances a clock) and the only wall time that counts is what the models really took:
each Smart Turn run and each Whisper job is timed alone and becomes available to the listener that
many milliseconds of audio after it started, as it would on a call. The real Silero detector and the
real `TurnListener` make every decision.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from agents.conversation.listener import ListenerConfig, TurnListener, TurnPending, UtteranceReady
from agents.engines.local.silero import SileroVoiceActivity
from agents.engines.protocols import EndOfTurnModel, SpeechResumed, SpeechToText, Transcript
from benchmarks.turn_set import SAMPLE_RATE, TurnClip

FRAME_MS = 20
FRAME_BYTES = SAMPLE_RATE * FRAME_MS // 1000 * 2
EXTRA_SILENCE_MS = 4_000
"""Line noise fed after the clip (its own last 800 ms, repeated) so every bound can run out."""
NOISE_LOOP_MS = 800


class SimClock:
    """Milliseconds of audio fed; model results wait on it."""

    def __init__(self) -> None:
        self.now_ms = 0
        self.busy = 0
        """Model calls computing right now (the feed waits for them: compute costs no audio time)."""
        self._idle = asyncio.Event()
        self._idle.set()
        self._waiting: list[tuple[int, asyncio.Future[None]]] = []

    def begin(self) -> None:
        self.busy += 1
        self._idle.clear()

    def end(self) -> None:
        self.busy -= 1
        if not self.busy:
            self._idle.set()

    async def settled(self) -> None:
        """Until no model call is computing."""
        await self._idle.wait()

    async def until(self, due_ms: float) -> None:
        if due_ms <= self.now_ms:
            return
        future = asyncio.get_running_loop().create_future()
        self._waiting.append((int(due_ms + 0.999), future))
        await future

    def advance(self, ms: int) -> None:
        self.now_ms += ms
        still = []
        for due, future in self._waiting:
            if due <= self.now_ms:
                if not future.done():
                    future.set_result(None)
            else:
                still.append((due, future))
        self._waiting = still


@dataclass
class Timing:
    """Compute times (ms) the models took, for the report, and the times to count instead (None:
    as measured), so decisions can be compared at a quiet machine's speed on a loaded one."""

    stt_ms: list[float] = field(default_factory=list)
    smart_turn_ms: list[float] = field(default_factory=list)
    fixed_stt_ms: float | None = None
    fixed_smart_turn_ms: float | None = None


class TimedStt:
    """A `SpeechToText` whose result arrives its measured compute time later on the simulated clock."""

    def __init__(self, inner: SpeechToText, clock: SimClock, timing: Timing) -> None:
        self.inner, self.clock, self.timing = inner, clock, timing

    @property
    def sample_rate(self) -> int:
        return self.inner.sample_rate

    async def transcribe(self, pcm: bytes, prompt: str | None = None) -> Transcript:
        started = self.clock.now_ms
        self.clock.begin()
        try:
            began = time.perf_counter()
            result = await self.inner.transcribe(pcm, prompt)
            took = (time.perf_counter() - began) * 1000
        finally:
            self.clock.end()
        self.timing.stt_ms.append(took)
        fixed = self.timing.fixed_stt_ms
        await self.clock.until(started + (took if fixed is None else fixed))
        return result


class TimedTurnModel:
    """An `EndOfTurnModel` whose answer arrives its measured compute time later on the simulated clock."""

    def __init__(self, inner: EndOfTurnModel, clock: SimClock, timing: Timing) -> None:
        self.inner, self.clock, self.timing = inner, clock, timing

    async def completion(self, pcm16k: bytes) -> float:
        started = self.clock.now_ms
        self.clock.begin()
        try:
            began = time.perf_counter()
            result = await self.inner.completion(pcm16k)
            took = (time.perf_counter() - began) * 1000
        finally:
            self.clock.end()
        self.timing.smart_turn_ms.append(took)
        fixed = self.timing.fixed_smart_turn_ms
        await self.clock.until(started + (took if fixed is None else fixed))
        return result


@dataclass(frozen=True, slots=True)
class ClipOutcome:
    """What the listener did with one clip. Times are ms of the clip's audio."""

    clip: TurnClip
    premature: bool
    """A turn was declared over after the speech began and before the caller's last word ended."""
    end_latency_ms: int | None
    """The first turn end at or after the last word, minus the last word's end (None: never ended)."""
    reply_start_ms: int | None
    """When the reply's work (model request, first TTS piece) could start, from the last word: the
    confirmed turn's `TurnPending` (speculation; or its early transcript, if that came later: the
    request waits for it) or else its end. Nothing plays before the end."""
    speculations: int
    wasted: int
    """Likely ends (`TurnPending`) the caller went on after."""


async def run_clip(
    clip: TurnClip,
    vad: SileroVoiceActivity,
    stt: SpeechToText,
    config: ListenerConfig,
    turn_model: EndOfTurnModel | None,
    timing: Timing,
) -> ClipOutcome:
    """Feed `clip` (then line noise) to a fresh listener in simulated time."""
    clock = SimClock()
    listener = TurnListener(
        vad.detector(),
        TimedStt(stt, clock, timing),
        config,
        end_of_turn_model=None if turn_model is None else TimedTurnModel(turn_model, clock, timing),
    )
    loop_noise = clip.pcm16k[-NOISE_LOOP_MS * FRAME_BYTES // FRAME_MS :]
    audio = clip.pcm16k + loop_noise * (EXTRA_SILENCE_MS // NOISE_LOOP_MS)
    ends: list[tuple[int, UtteranceReady]] = []
    pending_at: dict[asyncio.Task[Transcript], int] = {}
    transcribed_at: dict[asyncio.Task[Transcript], int] = {}
    """When each likely end's early transcript was ready: the reply's request waits for it."""
    live: asyncio.Task[Transcript] | None = None
    speculations = wasted = 0
    try:
        for offset in range(0, len(audio) - FRAME_BYTES + 1, FRAME_BYTES):
            clock.advance(FRAME_MS)
            for _ in range(4):  # let finished results reach their tasks before the next frame
                await asyncio.sleep(0)
            for event in listener.feed(audio[offset : offset + FRAME_BYTES]):
                if isinstance(event, TurnPending):
                    speculations += 1
                    pending_at[event.transcript] = clock.now_ms
                    event.transcript.add_done_callback(lambda task: transcribed_at.setdefault(task, clock.now_ms))
                    live = event.transcript
                elif isinstance(event, SpeechResumed) and live is not None:
                    wasted += 1
                    live = None
                elif isinstance(event, UtteranceReady):
                    ends.append((clock.now_ms, event))
                    live = None
            await asyncio.sleep(0)  # new model calls start and register as busy
            await clock.settled()
            if ends and ends[-1][0] >= clip.speech_end_ms and clock.now_ms > ends[-1][0] + 100:
                break
    finally:
        listener.close()
    premature = any(clip.speech_start_ms < at < clip.speech_end_ms for at, _ in ends)
    final = next(((at, ready) for at, ready in ends if at >= clip.speech_end_ms), None)
    if final is None:
        return ClipOutcome(clip, premature, None, None, speculations, wasted)
    at, ready = final
    start = max(pending_at.get(ready.transcript, at), transcribed_at.get(ready.transcript, 0))
    return ClipOutcome(clip, premature, at - clip.speech_end_ms, start - clip.speech_end_ms, speculations, wasted)
