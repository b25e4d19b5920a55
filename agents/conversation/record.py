"""What a call leaves behind: its transcript, per-turn latency and how it ended.

Kept with the session while the call runs (bounded), logged turn by turn as structured events,
told line by line to whoever follows it (the pod's record writer, which stores it as the call goes)
and handed to whoever stores calls when it ends.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Protocol

from db.settings import TRANSCRIPT_LINES_PER_CALL

log = logging.getLogger("switchboard.agents")

MAX_TRANSCRIPT_ENTRIES = TRANSCRIPT_LINES_PER_CALL
"""Bound on transcript lines kept per call: the first ones, the rest counted in `transcript_dropped`
(the same bound and the same end as the stored record: see `TRANSCRIPT_LINES_PER_CALL`)."""
MAX_TURN_METRICS = 200
"""Bound on per-turn metrics kept per call."""


@dataclass
class TurnMetrics:
    """Latency of one caller turn, in milliseconds. None: the stage did not happen."""

    turn: int
    source: str = "speech"
    """`speech` or `dtmf`."""
    speech_ms: int = 0
    """Length of the caller's speech."""
    endpoint_ms: float | None = None
    """End of caller speech -> end of turn decided (the end-of-turn silence)."""
    stt_ms: float | None = None
    """End of turn decided -> final transcript ready."""
    transcript_ms: float | None = None
    """End of caller speech -> final transcript ready."""
    early_transcript: bool = False
    """The transcript came from the speculative pass started while the caller paused."""
    llm_ttft_ms: float | None = None
    """Request sent -> first token (text or tool call), first model step."""
    tts_first_audio_ms: float | None = None
    """First sentence handed to TTS -> its first audio."""
    voice_to_voice_ms: float | None = None
    """End of caller speech -> first agent audio sent toward the caller."""
    tool_calls: int = 0
    interrupted: bool = False
    speculative: bool = False
    """The reply was started on a likely end of turn (`TurnPending`), before the turn was confirmed."""
    slow_token_filler: bool = False
    """A filler phrase was played because the model's first token was slower than `slow_first_token_ms`."""
    opener_cached: bool = False
    """The reply's first piece was already rendered (a fixed line or a learned opener): no TTS wait."""


@dataclass
class TranscriptLine:
    role: str
    """`caller`, `agent` or `system` (an event such as a barge-in or transfer)."""
    text: str
    at_s: float
    """Seconds since the call started."""


@dataclass
class CallRecord:
    call_sid: str
    agent_id: str
    from_number: str
    to_number: str
    direction: str
    agent_version: int | None = None
    """The stored config version that handled the call (None: an agent from the agents file)."""
    started_at: float = field(default_factory=time.time)
    ended_at: float | None = None
    end_reason: str | None = None
    transcript: list[TranscriptLine] = field(default_factory=list)
    turns: list[TurnMetrics] = field(default_factory=list)
    barge_ins: int = 0
    resumed_replies: int = 0
    """Barge-ins that were only a backchannel or noise: the held reply was replayed from where it was cut."""
    transcripts_cut: int = 0
    """Transcripts the transcript guard cut (a Whisper loop or runaway text) before the model saw them."""
    speculation_started: int = 0
    """Replies started speculatively, on a likely end of turn."""
    speculation_used: int = 0
    """Of those, replies whose turn was confirmed: played at once, with no second model request."""
    speculation_wasted: int = 0
    """Of those, replies dropped because the caller went on (their model request cancelled)."""
    verified_customer: str | None = None
    """The customer key the caller was verified as (None: never verified on this call)."""
    retention_days: int | None = None
    """Days the stored record is kept (the agent's `retention_days`); None: the pod's default."""
    transcript_dropped: int = 0
    """Lines said past `MAX_TRANSCRIPT_ENTRIES`, not kept."""

    def __post_init__(self) -> None:
        self._follower: RecordFollower | None = None
        """Told each kept line and turn as it happens (`follow`); not part of the record's data."""

    def follow(self, follower: RecordFollower | None) -> None:
        """From now on, tell `follower` each transcript line kept and each turn's metrics."""
        self._follower = follower

    def say(self, role: str, text: str) -> None:
        if len(self.transcript) >= MAX_TRANSCRIPT_ENTRIES:
            self.transcript_dropped += 1
            return
        line = TranscriptLine(role, text, round(time.time() - self.started_at, 3))
        self.transcript.append(line)
        if self._follower is not None:
            try:
                self._follower.transcript_line(self, line)
            except Exception:  # a record that cannot be stored never ends the call
                log.exception("could not hand a transcript line to the record's follower")

    def add_turn(self, metrics: TurnMetrics) -> None:
        if len(self.turns) >= MAX_TURN_METRICS:
            del self.turns[0]
        self.turns.append(metrics)
        log.info("turn", extra={"event": "turn", **asdict(metrics)})
        if self._follower is not None:
            try:
                self._follower.turn_metrics(self, metrics)
            except Exception:
                log.exception("could not hand a turn's metrics to the record's follower")

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


class CallObserver(Protocol):
    """Told about a call's turns, barge-ins and tool calls as they happen (the pod's metrics), so
    the edge can count them without the conversation importing it. Called on the event loop:
    quick and non-blocking; a failure is logged and never reaches the call."""

    def turn_ended(self, metrics: TurnMetrics) -> None: ...

    def barged_in(self) -> None: ...

    def reply_resumed(self) -> None:
        """A barge-in was only a backchannel or noise: the held reply went on."""
        ...

    def tool_called(self, name: str, ok: bool, error: str | None) -> None:
        """`error` is the executor's short error kind (`ToolOutcome.error`)."""
        ...

    def speculation_ended(self, used: bool) -> None:
        """A speculative reply was confirmed (`used`) or dropped because the caller went on."""
        ...

    def engine_failed(self, kind: str) -> None:
        """A turn failed on an engine: `speech_unavailable` (the speech service is down),
        `speech_failed` (STT or TTS failed or was overloaded) or `model_unavailable`."""
        ...


class RecordFollower(Protocol):
    """Follows a record as the call goes. Called on the event loop: quick, never blocking, never raising."""

    def transcript_line(self, record: CallRecord, line: TranscriptLine) -> None: ...

    def turn_metrics(self, record: CallRecord, metrics: TurnMetrics) -> None: ...


class CallStore(Protocol):
    """Where call records go (the database in production). Failures are logged, never raised into a call."""

    async def call_started(self, record: CallRecord) -> None: ...

    async def call_ended(self, record: CallRecord) -> None: ...
