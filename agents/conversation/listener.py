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
Once the pause has lasted `pending_ms` (200 ms; the job started at `tail_ms`, 100 ms) the listener
says `TurnPending` (a likely end of turn, with that job), so a reply can be prepared speculatively;
`SpeechResumed` kills it, `UtteranceReady` with the same task confirms it. Under a judged rule a
pause whose words are unfinished is announced only `unfinished_pending_lead_ms` before the bound.

End of turn (`end_of_turn`): `silence` ends a turn at the detector's `SpeechEnded` (its end-of-turn
silence, 600 ms by default). `words` decides once `smart_turn_silence_ms` of a pause have passed
and the early transcript is in; `smart_turn` also asks an `EndOfTurnModel` then and waits for it too.
From then on the listener decides at every frame (`end_of_turn.Rule`: the words, the model's
probability in `smart_turn`, and the silence so far) whether the turn is over; if so
it ends the turn itself, otherwise it waits for speech or for `smart_turn_max_wait_ms` of silence.
The detector's own end-of-turn silence should then be that long bound: the listener, having ended
the turn early, takes the detector's `SpeechResumed` (once it lasts `resume_min_speech_ms`) as a new
turn and ignores its late `SpeechEnded`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from enum import Enum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agents.conversation.end_of_turn import RULE, Hint, transcript_hint
from agents.engines.protocols import (
    EndOfTurnModel,
    SpeechEnded,
    SpeechFaded,
    SpeechOnset,
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
class TurnPending:
    """A pause that will likely end the turn (it has lasted `pending_ms`; under a judged rule, words
    that say the caller is not done, `unfinished_pending_lead_ms` before the bound): its early
    transcript job is running, or done.

    If the turn is confirmed, the `UtteranceReady` that follows carries this same `transcript`
    task (early=True); if the caller goes on, `SpeechResumed` follows and this turn is dead."""

    speech_start_ms: int
    speech_end_ms: int
    """Where the speech paused."""
    transcript: asyncio.Task[Transcript]


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


ListenerEvent = VadEvent | TurnPending | UtteranceReady
"""What `TurnListener.feed` reports, in order."""


class ListenerConfig(BaseModel):
    """Bounds and timing of one call's listener, in milliseconds of audio."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    preroll_ms: int = Field(500, ge=0, le=2_000)
    """Audio kept before the detector's speech start: its probability often rises only after the
    first consonant."""
    tail_ms: int = Field(100, ge=0, le=1_000)
    """Audio kept after the speech stops. The early job waits for it, which also skips the
    shortest pauses; keep it below the detector's end-of-turn silence or early jobs never start.
    100 ms: the VAD places the stop after the last sound already, and on the turn set the turns'
    transcripts were as good as with 200 (WER 34.0 % against 34.6 %, whole clips through Silero
    and this listener), while the transcript is ready 100 ms sooner."""
    pending_ms: int = Field(200, ge=0, le=1_000)
    """Pause after which a running early job is announced as `TurnPending` (a speculative reply
    starts on it); below `tail_ms` it is announced as the job starts. Pauses shorter than this cost
    a Whisper run, never a model request: with both at 100 ms the comma's pause in "a person,
    please" sent the model a request that was dropped, in whole calls and on the turn set (320
    dropped starts on 416 clips against 221). The job started at `tail_ms` is usually done by then."""
    unfinished_pending_lead_ms: int = Field(300, ge=0, le=10_000)
    """`words`, `smart_turn`: a pause whose early transcript says the caller is not done (a trailing
    "and", a number still being read out: `Hint.INCOMPLETE`) cannot end the turn before
    `smart_turn_max_wait_ms`, so it is announced as `TurnPending` only this long before that bound
    (and once its transcript is in), not at `pending_ms`: the caller usually goes on, and a
    speculative request sent at once would be dropped (its prefill wasted on the model server)."""
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
    end_of_turn: Literal["silence", "words", "smart_turn"] = "silence"
    """`silence`: the detector's end-of-turn silence ends a turn. `words`: the early transcript's
    words and the silence so far may end it after `smart_turn_silence_ms`. `smart_turn`: the same
    with the end-of-turn model's probability added (needs a model)."""
    smart_turn_silence_ms: int = Field(200, ge=0, le=2_000)
    """Pause before the rule first judges the turn (`words`, `smart_turn`) and the end-of-turn model
    runs (`smart_turn`, once per pause)."""
    smart_turn_max_wait_ms: int = Field(1_200, ge=100, le=10_000)
    """Silence that ends a turn whatever the model says (the detector's own bound may come first)."""
    smart_turn_threshold: float = Field(0.9, gt=0.0, lt=1.0)
    """Completion (`end_of_turn.Rule`: model, words and silence so far) at or above which the turn ends."""
    smart_turn_model_weight: float = Field(RULE.model_weight, ge=0.0, le=4.0)
    """Weight of the end-of-turn model's log-odds in that completion (0: the words and silence decide)."""
    resume_min_speech_ms: int = Field(120, ge=0, le=2_000)
    """Speech after a turn the listener ended inside the detector's pause (a smart end, a cut) starts
    a new turn only once it lasts this long, as the detector's own `min_speech_ms` requires of a
    fresh start: a cough just after a smart end must not barge in on the reply."""

    @model_validator(mode="after")
    def _history_covers_preroll(self) -> ListenerConfig:
        if self.history_ms < self.preroll_ms:
            raise ValueError(f"history_ms {self.history_ms} must be at least preroll_ms {self.preroll_ms}")
        if self.judged and self.smart_turn_silence_ms >= self.smart_turn_max_wait_ms:
            raise ValueError(
                f"smart_turn_silence_ms {self.smart_turn_silence_ms} must be below"
                f" smart_turn_max_wait_ms {self.smart_turn_max_wait_ms}"
            )
        return self

    @property
    def judged(self) -> bool:
        """The listener ends turns itself, by `end_of_turn.Rule` (`words` or `smart_turn`)."""
        return self.end_of_turn != "silence"


class _Turn(Enum):
    IDLE = "idle"
    SPEAKING = "speaking"
    PAUSED = "paused"
    DRAINING = "draining"  # the turn was ended during the detector's pause (cut, or smart end): wait for it
    RESUMING = "resuming"  # speech came back while draining: a new turn once it lasts resume_min_speech_ms


class TurnListener:
    """Turns one call's audio into `VadEvent`s and `UtteranceReady`s. Not shared between calls."""

    def __init__(
        self,
        detector: VoiceDetector,
        stt: SpeechToText,
        config: ListenerConfig | None = None,
        shedding: Callable[[], bool] | None = None,
        end_of_turn_model: EndOfTurnModel | None = None,
    ) -> None:
        """`shedding` says whether the pod is shedding load now (then a turn is cut at
        `shed_utterance_ms` rather than `max_utterance_ms`). `end_of_turn_model` is required by
        `end_of_turn="smart_turn"` and unused otherwise."""
        self.detector = detector
        self.stt = stt
        self.config = config or ListenerConfig()
        if self.config.end_of_turn == "smart_turn" and end_of_turn_model is None:
            raise ValueError('end_of_turn="smart_turn" needs an end_of_turn_model')
        self.shedding = shedding
        self.end_of_turn_model = end_of_turn_model
        self._use_model = self.config.end_of_turn == "smart_turn"
        self._rule = replace(RULE, model_weight=self.config.smart_turn_model_weight if self._use_model else 0.0)
        self._audio = bytearray()
        self._audio_start = 0
        """Absolute byte offset of `_audio[0]` in the call's audio."""
        self._fed = 0
        self._turn = _Turn.IDLE
        self._turn_start = 0
        """Absolute byte offset where the current turn's audio (pre-roll included) begins."""
        self._speech_start_ms = 0
        self._pause_ms = 0
        self._resume_ms = 0
        """Where speech came back after a turn ended inside the detector's pause (RESUMING)."""
        self._early: asyncio.Task[Transcript] | None = None
        self._early_end = 0
        """Absolute byte offset the early job's audio ends at."""
        self._early_told = False
        """The running early job was announced (`TurnPending`)."""
        self._tasks: set[asyncio.Task[Transcript]] = set()
        self._judge: asyncio.Task[float] | None = None
        """The end-of-turn model's run on the current pause (smart_turn only)."""
        self.smart_ends = 0
        """Turns the end-of-turn model ended before the silence bound (for benchmarks and metrics)."""
        self.judged = 0
        """End-of-turn model runs started."""
        self.early_started = 0
        """Early jobs started (counted for benchmarks and metrics)."""
        self.early_abandoned = 0
        """Early jobs dropped because speech resumed."""
        self.prompt: str | None = None
        """Speech-to-text's prompt for jobs started from now on (the session sets it while speech
        over the agent is held: that speech is likely a backchannel)."""

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

    def feed(self, pcm: bytes) -> list[ListenerEvent]:
        """Take the next PCM16 frame (16 kHz mono); starts transcription tasks on the running loop."""
        events = self.detector.feed(pcm)  # first: if it refuses the frame, nothing here has changed
        self._audio += pcm
        self._fed += len(pcm)
        out: list[ListenerEvent] = []
        for event in events:
            out.extend(self._on_event(event))
        out.extend(self._maybe_resume())
        out.extend(self._maybe_start_early())
        if self.config.judged and self._turn is _Turn.PAUSED:
            out.extend(self._smart_end())
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
        self._drop_judge()

    # -- turn state ------------------------------------------------------------------------

    def _on_event(self, event: VadEvent) -> list[ListenerEvent]:
        turn = self._turn
        if isinstance(event, SpeechStarted) and turn is _Turn.IDLE:
            self._begin(event.at_ms)
            return [event]
        if isinstance(event, SpeechOnset | SpeechFaded) and turn is _Turn.IDLE:
            return [event]  # no turn yet: for a barge-in to hold the agent on, and let go
        if isinstance(event, SpeechPaused) and turn is _Turn.SPEAKING:
            self._turn, self._pause_ms = _Turn.PAUSED, event.at_ms
            return [event]
        if isinstance(event, SpeechResumed) and turn is _Turn.PAUSED:
            self._abandon_early()
            self._drop_judge()
            self._turn = _Turn.SPEAKING
            return [event]
        if isinstance(event, SpeechResumed) and turn is _Turn.DRAINING:
            self._turn, self._resume_ms = _Turn.RESUMING, event.at_ms  # maybe a new turn: see _maybe_resume
            return self._maybe_resume()
        if isinstance(event, SpeechPaused) and turn is _Turn.RESUMING:
            self._turn = _Turn.DRAINING  # too short to be speech (a click, a cough)
            return []
        if isinstance(event, SpeechEnded) and turn is _Turn.PAUSED:
            return [event, self._finish(event.at_ms)]
        if isinstance(event, SpeechEnded) and turn in (_Turn.DRAINING, _Turn.RESUMING):
            self._turn = _Turn.IDLE  # the detector's late end of a turn already ended here
        return []

    def _maybe_resume(self) -> list[ListenerEvent]:
        """Speech after a turn ended inside the detector's pause is a new turn once it lasts."""
        if self._turn is not _Turn.RESUMING or self.audio_ms - self._resume_ms < self.config.resume_min_speech_ms:
            return []
        self._begin(self._resume_ms)
        return [SpeechStarted(self._resume_ms)]

    def _begin(self, at_ms: int) -> None:
        self._turn, self._speech_start_ms = _Turn.SPEAKING, at_ms
        self._turn_start = max(self._audio_start, (at_ms - self.config.preroll_ms) * BYTES_PER_MS)
        self._trim(self._turn_start)

    def _cut(self) -> list[ListenerEvent]:
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
        self._drop_judge()
        self._turn = _Turn.IDLE
        return UtteranceReady(self._speech_start_ms, end_ms, self.audio_ms, task, early)

    # -- early transcription ---------------------------------------------------------------

    def _maybe_start_early(self) -> list[TurnPending]:
        """Start the early job once `tail_ms` of the pause is in; announce it once `pending_ms` is."""
        if not self.config.early_transcription or self._turn is not _Turn.PAUSED:
            return []
        if self._early is None:
            end = (self._pause_ms + self.config.tail_ms) * BYTES_PER_MS
            if self._fed < end:
                return []
            self._early, self._early_end, self._early_told = self._start(self._slice(self._turn_start, end)), end, False
            self.early_started += 1
        silence_ms = self.audio_ms - self._pause_ms
        if self._early_told or silence_ms < self.config.pending_ms or self._unfinished_for_now(silence_ms):
            return []
        self._early_told = True
        return [TurnPending(self._speech_start_ms, self._pause_ms, self._early)]

    def _unfinished_for_now(self, silence_ms: int) -> bool:
        """Under a judged rule, the early transcript says the caller is not done (or is not in yet)
        and the bound is more than `unfinished_pending_lead_ms` away: not a likely end yet."""
        config = self.config
        if not config.judged or silence_ms >= config.smart_turn_max_wait_ms - config.unfinished_pending_lead_ms:
            return False
        early = self._early
        if early is None or not early.done():
            return True  # a speculative reply would wait for the transcript anyway
        if early.cancelled() or early.exception() is not None:
            return False
        return transcript_hint(early.result().text, self._rule.number_lengths) is Hint.INCOMPLETE

    # -- semantic end of turn --------------------------------------------------------------

    def _smart_end(self) -> list[ListenerEvent]:
        """While paused: start the model (if any) once `smart_turn_silence_ms` have passed, and end
        the turn when the rule (the words, the model) says so, or at `smart_turn_max_wait_ms` regardless."""
        config = self.config
        silence_ms = self.audio_ms - self._pause_ms
        over = self._judged_over()
        if over or silence_ms >= config.smart_turn_max_wait_ms:
            self.smart_ends += 1 if over else 0
            ready = self._finish(self._pause_ms)
            self._turn = _Turn.DRAINING
            return [SpeechEnded(self._pause_ms), ready]
        if self._judge is None and self._use_model and silence_ms >= config.smart_turn_silence_ms:
            assert self.end_of_turn_model is not None  # checked at construction
            pcm = self._slice(self._turn_start, (self._pause_ms + config.smart_turn_silence_ms) * BYTES_PER_MS)
            self._judge = asyncio.get_running_loop().create_task(self.end_of_turn_model.completion(pcm))
            self._judge.add_done_callback(_quiet)
            self.judged += 1
        return []

    def expect_numbers(self, lengths: Mapping[str, int]) -> None:
        """Judge numbers by these known lengths (`end_of_turn.known_lengths`: the agent's own on top
        of the built-in ones): a number read out to its length ends the turn as a sentence would."""
        self._rule = replace(self._rule, number_lengths=dict(lengths))

    def _judged_over(self) -> bool | None:
        """The decision once the model has answered and the early transcript (if any is coming) is
        in; None while either is still running. A failed model run leaves the words to decide.
        Without a model (`words`) the rule first decides once `smart_turn_silence_ms` have passed."""
        judge = self._judge
        silence_ms = self.audio_ms - self._pause_ms
        if not self._use_model:
            if silence_ms < self.config.smart_turn_silence_ms:
                return None
        elif judge is None or not judge.done():
            return None
        early = self._early
        if (early is None and self.config.early_transcription) or (early is not None and not early.done()):
            return None  # the transcript is on its way: a reply needs it anyway, so wait for it
        probability = None
        if judge is not None and not judge.cancelled() and judge.exception() is None:
            probability = judge.result()
        text = None
        if early is not None and not early.cancelled() and early.exception() is None:
            text = early.result().text
        return self._rule.completion(probability, text, silence_ms) >= self.config.smart_turn_threshold

    def _drop_judge(self) -> None:
        if self._judge is not None:
            self._judge.cancel()
            self._judge = None

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
        task = asyncio.get_running_loop().create_task(self.stt.transcribe(pcm, self.prompt))
        self._tasks.add(task)
        task.add_done_callback(self._forget)
        return task

    def _forget(self, task: asyncio.Task[Transcript]) -> None:
        self._tasks.discard(task)
        _quiet(task)


def _quiet(task: asyncio.Task[object]) -> None:
    """Mark a finished task's failure as seen: an abandoned job's failure is not news (an awaited
    one still raises)."""
    if not task.cancelled():
        task.exception()
