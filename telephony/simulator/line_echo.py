"""The agent's own voice coming back on the caller's track, as a speakerphone or a hybrid on a
real line returns it: what the phone played, `delay_ms` later and `return_loss_db` quieter, mixed
with what the caller says, in mu-law."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from telephony.audio.mulaw import MULAW_FRAME_BYTES, TWILIO_SAMPLE_RATE, mulaw_to_pcm16, pcm16_to_mulaw

MAX_ECHO_DELAY_MS = 2_000
"""Bound on the echo delay (the delay line holds this much audio at most)."""
MAX_RETURN_LOSS_DB = 80.0


@dataclass(frozen=True, slots=True)
class EchoPath:
    """How the line returns the agent's audio: its delay and its echo return loss (ERL)."""

    delay_ms: int = 120
    return_loss_db: float = 6.0

    def __post_init__(self) -> None:
        if not 0 <= self.delay_ms <= MAX_ECHO_DELAY_MS:
            raise ValueError(f"echo delay_ms must be within 0-{MAX_ECHO_DELAY_MS}, not {self.delay_ms}")
        if not 0.0 <= self.return_loss_db <= MAX_RETURN_LOSS_DB:
            raise ValueError(f"echo return_loss_db must be within 0-{MAX_RETURN_LOSS_DB}, not {self.return_loss_db}")


class LineEcho:
    """One call's echo: a delay line fed with each frame the phone played, read into each frame sent."""

    def __init__(self, path: EchoPath) -> None:
        self.path = path
        self._gain = 10 ** (-path.return_loss_db / 20)
        self._line = np.zeros(path.delay_ms * TWILIO_SAMPLE_RATE // 1000, dtype=np.float64)
        """Audio played and not yet returned, oldest first; always `delay_ms` long between ticks."""

    def mix(self, caller_frame: bytes) -> bytes:
        """The caller's 20 ms mu-law frame with the echo due now added (clipped like a codec would)."""
        n = len(caller_frame)
        due, self._line = self._line[:n], self._line[n:]
        if not np.any(due):
            return caller_frame
        caller = np.frombuffer(mulaw_to_pcm16(caller_frame), dtype=np.int16).astype(np.float64)
        caller[: due.size] += due * self._gain
        return pcm16_to_mulaw(np.clip(caller, -32768, 32767).astype(np.int16).tobytes())

    def played(self, agent_frame: bytes) -> None:
        """What the phone played this tick (mu-law; short or empty: the rest was silence)."""
        pcm = np.zeros(MULAW_FRAME_BYTES, dtype=np.float64)
        if agent_frame:
            played = np.frombuffer(mulaw_to_pcm16(agent_frame[:MULAW_FRAME_BYTES]), dtype=np.int16)
            pcm[: played.size] = played
        self._line = np.concatenate((self._line, pcm))
