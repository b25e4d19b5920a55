"""One call's ear: voice activity in, finished turns (with their transcript on the way) out.

`TurnListener` feeds each frame to the call's `VoiceDetector`, keeps the audio of the current turn
(plus a pre-roll from before the detector was sure, so the first syllable is not lost) and, when the
turn ends, hands back an `UtteranceReady` whose `transcript` task is already running.

Early transcription: the detector says `SpeechPaused` the moment speech drops, but only says
`SpeechEnded` after the end-of-turn silence (600 ms by default). Most pauses do end the turn, so
once `tail_ms` of the pause has arrived the listener starts transcribing the turn in the
background; if speech resumes that job is abandoned, and if the turn ends it is the transcript,
often finished by then. Both paths transcribe exactly the same audio (the turn up to `tail_ms`
after the speech stopped), so early transcription changes when the text is ready, never what it is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agents.engines.protocols import (
    SpeechEnded,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
    SpeechToText,
    Transcript,
    VadEvent,
    VoiceDetector,
)

BYTES_PER_MS = 32
"""PCM16 mono at 16 kHz, the rate detectors and speech-to-text share."""


@dataclass(frozen=True, slots=True)
class UtteranceReady:
    """A turn has ended; its transcript is being computed (or already is)."""

    speech_start_ms: int
    """Where the detector heard speech begin (the transcribed audio starts a pre-roll earlier)."""
    speech_end_ms: int
    """Where the speech stopped."""
    ended_at_ms: int
    """Audio fed when the turn was declared over: the moment latency is measured from."""
    transcript: asyncio.Task[Transcript]
    early: bool
    """True when a job started during the pause became the transcript."""


class ListenerConfig(BaseModel):
    """Bounds and timing of one call's listener, in milliseconds of audio."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    preroll_ms: int = Field(500, ge=0, le=2_000)
    """Audio kept before the detector's speech start: its probability often rises only after the
    first consonant."""
    tail_ms: int = Field(200, ge=0, le=1_000)
    """Audio kept after the speech stops. The early job waits for it, which also skips the
    shortest pauses; keep it below the detector's end-of-turn silence or early jobs never start."""
    history_ms: int = Field(2_000, ge=0, le=10_000)
    """Bound on the audio kept between turns. A detector reports speech start `min_speech_ms` or
    more after it began, so this must cover that lag plus `preroll_ms`."""
    max_utterance_ms: int = Field(30_000, ge=1_000, le=120_000)
    """Bound on one turn's audio: a turn this long is ended (and speech that goes on is a new turn)."""
    shed_utterance_ms: int = Field(8_000, ge=1_000, le=120_000)
    """Bound on one turn's audio while the pod sheds load (memory at the hard threshold): long
    utterance buffers are among the allocations refused then."""
    early_transcription: bool = True
    """Start transcribing during the end-of-turn silence (off: only once the turn has ended)."""

    @model_validator(mode="after")
    def _history_covers_preroll(self) -> ListenerConfig:
        if self.history_ms < self.preroll_ms:
            raise ValueError(f"history_ms {self.history_ms} must be at least preroll_ms {self.preroll_ms}")
        return self


class _Turn(Enum):
    IDLE = "idle"
    SPEAKING = "speaking"
    PAUSED = "paused"
    DRAINING = "draining"  # a turn was cut at max_utterance_ms during a pause; wait for the detector


class TurnListener:
    """Turns one call's audio into `VadEvent`s and `UtteranceReady`s. Not shared between calls."""

    def __init__(
        self,
        detector: VoiceDetector,
        stt: SpeechToText,
        config: ListenerConfig | None = None,
        shedding: Callable[[], bool] | None = None,
    ) -> None:
        """`shedding` says whether the pod is shedding load now (then a turn is cut at
        `shed_utterance_ms` rather than `max_utterance_ms`)."""
        self.detector = detector
        self.stt = stt
        self.config = config or ListenerConfig()
        self.shedding = shedding
        self._audio = bytearray()
        self._audio_start = 0
        """Absolute byte offset of `_audio[0]` in the call's audio."""
        self._fed = 0
        self._turn = _Turn.IDLE
        self._turn_start = 0
        """Absolute byte offset where the current turn's audio (pre-roll included) begins."""
        self._speech_start_ms = 0
        self._pause_ms = 0
        self._early: asyncio.Task[Transcript] | None = None
        self._early_end = 0
        """Absolute byte offset the early job's audio ends at."""
        self._tasks: set[asyncio.Task[Transcript]] = set()
        self.early_started = 0
        """Early jobs started (counted for benchmarks and metrics)."""
        self.early_abandoned = 0
        """Early jobs dropped because speech resumed."""

    @property
    def audio_ms(self) -> int:
        """Milliseconds of audio fed so far."""
        return self._fed // BYTES_PER_MS

    @property
    def buffered_ms(self) -> int:
        """Audio held now: at most `history_ms` between turns, `max_utterance_ms` within one."""
        return len(self._audio) // BYTES_PER_MS

    def _utterance_limit_ms(self) -> int:
        if self.shedding is not None and self.shedding():
            return min(self.config.max_utterance_ms, self.config.shed_utterance_ms)
        return self.config.max_utterance_ms

    def feed(self, pcm: bytes) -> list[VadEvent | UtteranceReady]:
        """Take the next PCM16 frame (16 kHz mono); starts transcription tasks on the running loop."""
        events = self.detector.feed(pcm)  # first: if it refuses the frame, nothing here has changed
        self._audio += pcm
        self._fed += len(pcm)
        out: list[VadEvent | UtteranceReady] = []
        for event in events:
            out.extend(self._on_event(event))
        self._maybe_start_early()
        if self._turn in (_Turn.SPEAKING, _Turn.PAUSED):
            if self._fed - self._turn_start >= self._utterance_limit_ms() * BYTES_PER_MS:
                out.extend(self._cut())
        if self._turn in (_Turn.IDLE, _Turn.DRAINING):
            self._trim(self._fed - self.config.history_ms * BYTES_PER_MS)
        return out

    def close(self) -> None:
        """Cancel every transcription this listener started that is still running."""
        for task in list(self._tasks):
            task.cancel()
        self._early = None

    # -- turn state ------------------------------------------------------------------------

    def _on_event(self, event: VadEvent) -> list[VadEvent | UtteranceReady]:
        turn = self._turn
        if isinstance(event, SpeechStarted) and turn is _Turn.IDLE:
            self._begin(event.at_ms)
            return [event]
        if isinstance(event, SpeechPaused) and turn is _Turn.SPEAKING:
            self._turn, self._pause_ms = _Turn.PAUSED, event.at_ms
            return [event]
        if isinstance(event, SpeechResumed) and turn is _Turn.PAUSED:
            self._abandon_early()
            self._turn = _Turn.SPEAKING
            return [event]
        if isinstance(event, SpeechResumed) and turn is _Turn.DRAINING:
            self._begin(event.at_ms)  # speech after a cut turn is a new turn
            return [SpeechStarted(event.at_ms)]
        if isinstance(event, SpeechEnded) and turn is _Turn.PAUSED:
            return [event, self._finish(event.at_ms)]
        if isinstance(event, SpeechEnded) and turn is _Turn.DRAINING:
            self._turn = _Turn.IDLE
        return []

    def _begin(self, at_ms: int) -> None:
        self._turn, self._speech_start_ms = _Turn.SPEAKING, at_ms
        self._turn_start = max(self._audio_start, (at_ms - self.config.preroll_ms) * BYTES_PER_MS)
        self._trim(self._turn_start)

    def _cut(self) -> list[VadEvent | UtteranceReady]:
        """End a turn that reached `max_utterance_ms`."""
        if self._turn is _Turn.PAUSED:
            ready = self._finish(self._pause_ms)
            self._turn = _Turn.DRAINING
            return [SpeechEnded(self._pause_ms), ready]
        now_ms = self.audio_ms
        ready = self._finish(now_ms, tail=False)
        self._turn, self._speech_start_ms, self._turn_start = _Turn.SPEAKING, now_ms, self._fed & ~1
        self._trim(self._turn_start)
        return [SpeechEnded(now_ms), ready, SpeechStarted(now_ms)]

    def _finish(self, end_ms: int, tail: bool = True) -> UtteranceReady:
        end = min(self._fed, (end_ms + (self.config.tail_ms if tail else 0)) * BYTES_PER_MS)
        task = self._early if self._early is not None and self._early_end == end else None
        early = task is not None
        if task is None:
            self._abandon_early()
            task = self._start(self._slice(self._turn_start, end))
        self._early = None
        self._turn = _Turn.IDLE
        return UtteranceReady(self._speech_start_ms, end_ms, self.audio_ms, task, early)

    # -- early transcription ---------------------------------------------------------------

    def _maybe_start_early(self) -> None:
        if not self.config.early_transcription or self._turn is not _Turn.PAUSED or self._early is not None:
            return
        end = (self._pause_ms + self.config.tail_ms) * BYTES_PER_MS
        if self._fed >= end:
            self._early, self._early_end = self._start(self._slice(self._turn_start, end)), end
            self.early_started += 1

    def _abandon_early(self) -> None:
        if self._early is not None:
            self._early.cancel()
            self._early = None
            self.early_abandoned += 1

    # -- audio and tasks -------------------------------------------------------------------

    def _slice(self, start: int, end: int) -> bytes:
        return bytes(self._audio[start - self._audio_start : end - self._audio_start])

    def _trim(self, keep_from: int) -> None:
        """Forget audio before absolute byte offset `keep_from`."""
        drop = min(max(0, keep_from - self._audio_start), len(self._audio))
        drop &= ~1  # stay on sample boundaries
        if drop:
            del self._audio[:drop]
            self._audio_start += drop

    def _start(self, pcm: bytes) -> asyncio.Task[Transcript]:
        task = asyncio.get_running_loop().create_task(self.stt.transcribe(pcm))
        self._tasks.add(task)
        task.add_done_callback(self._forget)
        return task

    def _forget(self, task: asyncio.Task[Transcript]) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()  # an abandoned job's failure is not news; the awaited one still raises
