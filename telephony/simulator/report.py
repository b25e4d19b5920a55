"""What happened on a simulated call: a timeline, per-turn latency and the recording."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from telephony.audio.mulaw import TWILIO_SAMPLE_RATE, mulaw_to_pcm16
from telephony.simulator.caller_audio import write_wav


@dataclass(frozen=True, slots=True)
class Event:
    at: float
    """Seconds since the simulator placed the call."""
    who: str
    what: str


@dataclass
class CallReport:
    call_sid: str
    webhook_status: int = 0
    outcome: str = ""
    twiml: list[str] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    marks_echoed: list[str] = field(default_factory=list)
    clears: list[float] = field(default_factory=list)
    utterances: list[tuple[float, float, str]] = field(default_factory=list)
    agent_spans: list[tuple[float, float]] = field(default_factory=list)
    stream_started_at: float | None = None
    close_code: int | None = None
    close_reason: str = ""
    max_buffered_ms: float = 0.0
    frames_played_after_clear: int = 0
    """Agent frames played after a `clear` arrived and before new audio did: Twilio drops its
    buffer at once, so this must stay 0."""
    caller_mulaw: bytearray = field(default_factory=bytearray)
    agent_mulaw: bytearray = field(default_factory=bytearray)

    def add(self, at: float, who: str, what: str) -> None:
        self.events.append(Event(at, who, what))

    # -- figures ------------------------------------------------------------------------

    @property
    def agent_audio_seconds(self) -> float:
        return sum(end - start for start, end in self.agent_spans)

    @property
    def recording_seconds(self) -> float:
        return len(self.agent_mulaw) / TWILIO_SAMPLE_RATE

    def turn_latencies(self) -> list[float]:
        """For each caller utterance, seconds from its end to the agent's next audio (if any
        starts before the caller speaks again)."""
        latencies = []
        for index, (_, end, _) in enumerate(self.utterances):
            next_start = self.utterances[index + 1][0] if index + 1 < len(self.utterances) else float("inf")
            replies = [start for start, _ in self.agent_spans if end <= start < next_start]
            if replies:
                latencies.append(replies[0] - end)
        return latencies

    def caller_pcm(self) -> np.ndarray:
        return np.frombuffer(mulaw_to_pcm16(bytes(self.caller_mulaw)), dtype=np.int16)

    def agent_pcm(self) -> np.ndarray:
        return np.frombuffer(mulaw_to_pcm16(bytes(self.agent_mulaw)), dtype=np.int16)

    def write_wav(self, path: str | Path) -> None:
        """Stereo 8 kHz WAV of the call as the line carried it: caller left, agent right."""
        caller, agent = self.caller_pcm(), self.agent_pcm()
        length = max(caller.size, agent.size)
        stereo = np.zeros((length, 2), dtype=np.int16)
        stereo[: caller.size, 0] = caller
        stereo[: agent.size, 1] = agent
        write_wav(path, stereo, TWILIO_SAMPLE_RATE)

    # -- text -----------------------------------------------------------------------------

    def render(self) -> str:
        lines = [f"call {self.call_sid}: {self.outcome}"]
        for event in sorted(self.events, key=lambda e: e.at):
            lines.append(f"  {event.at:8.3f}s  {event.who:<7} {event.what}")
        latencies = self.turn_latencies()
        for turn, latency in enumerate(latencies, start=1):
            lines.append(f"  turn {turn}: response latency {latency * 1000:.0f} ms")
        lines.append(
            f"  summary: {len(self.utterances)} caller utterance(s), {len(latencies)} answered, "
            f"agent audio {self.agent_audio_seconds:.2f} s, marks echoed {len(self.marks_echoed)}, "
            f"clears {len(self.clears)}, max audio buffered at Twilio {self.max_buffered_ms:.0f} ms"
        )
        return "\n".join(lines)
