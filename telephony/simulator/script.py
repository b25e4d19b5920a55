"""What the simulated caller does: say things, pause, press keys; laid out as 20 ms ticks."""

from __future__ import annotations

from dataclasses import dataclass, field

from telephony.audio.mulaw import MULAW_FRAME_BYTES, MULAW_SILENCE

TICK_S = 0.02
DTMF_TICKS = 5  # 100 ms of silence after each key press


@dataclass(frozen=True, slots=True)
class Say:
    """Speak 8 kHz mu-law audio (see `caller_audio.load_utterance` / `synthetic_utterance`)."""

    audio: bytes
    label: str = "utterance"


@dataclass(frozen=True, slots=True)
class Pause:
    seconds: float


@dataclass(frozen=True, slots=True)
class Press:
    digits: str


@dataclass(frozen=True, slots=True)
class Listen:
    """Stay silent until the agent has answered: it spoke, then went quiet for `quiet_seconds`;
    or until `max_seconds`. A caller who waits for the answer, not for a clock, so a script keeps
    its turns on a slow machine too."""

    max_seconds: float = 30.0
    quiet_seconds: float = 1.0


@dataclass(frozen=True, slots=True)
class WaitForAgent:
    """Stay silent until the agent's audio has been playing for `after_seconds` (or `max_seconds`
    have passed), so that the next `Say` talks over the agent: an "mhm", a cough, an interruption."""

    after_seconds: float = 1.0
    max_seconds: float = 30.0


Step = Say | Pause | Press | Listen | WaitForAgent


@dataclass
class CallerTrack:
    """The caller's side, tick by tick: the frame to send and any key pressed at that tick."""

    frames: list[bytes] = field(default_factory=list)
    digits: dict[int, str] = field(default_factory=dict)
    utterances: list[tuple[int, int, str]] = field(default_factory=list)
    """(first tick, tick after the last, label) of each `Say`."""
    listens: dict[int, Listen | WaitForAgent] = field(default_factory=dict)
    """The `Listen` and `WaitForAgent` steps, by the tick at which the caller holds for the agent."""

    @property
    def ticks(self) -> int:
        return len(self.frames)


SILENCE_FRAME = MULAW_SILENCE * MULAW_FRAME_BYTES


def lay_out(steps: list[Step] | tuple[Step, ...], lead_in_s: float, tail_s: float) -> CallerTrack:
    """Turn steps into ticks: `lead_in_s` of silence first, `tail_s` of silence last."""
    track = CallerTrack()

    def silence(seconds: float) -> None:
        track.frames.extend([SILENCE_FRAME] * round(seconds / TICK_S))

    silence(lead_in_s)
    for step in steps:
        if isinstance(step, Say):
            first = track.ticks
            for start in range(0, len(step.audio), MULAW_FRAME_BYTES):
                track.frames.append(
                    step.audio[start : start + MULAW_FRAME_BYTES].ljust(MULAW_FRAME_BYTES, MULAW_SILENCE)
                )
            track.utterances.append((first, track.ticks, step.label))
        elif isinstance(step, Pause):
            silence(step.seconds)
        elif isinstance(step, Listen | WaitForAgent):
            track.listens[track.ticks] = step
        elif isinstance(step, Press):
            for digit in step.digits:
                track.digits[track.ticks] = digit
                silence(DTMF_TICKS * TICK_S)
    silence(tail_s)
    return track
