"""Streaming voice activity detection with Silero VAD, run by onnxruntime directly (no torch).

One `SileroVoiceActivity` holds the model for the whole pod; each call gets a `SileroVoiceDetector`
that keeps that call's recurrent state, the last 64 samples (the model's context) and whatever part
of a 32 ms window has not arrived yet. A window costs tens of microseconds, so detectors run inline
on the event loop: handing 20 ms frames to a thread pool would cost more than the model does.

The detector turns per-window speech probabilities into turn events with hysteresis: speech starts
above `threshold` and only counts once it has lasted `min_speech_ms`; it pauses below
`negative_threshold`, resumes above `threshold`, and the turn ends after `end_of_turn_silence_ms`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
from pydantic import BaseModel, ConfigDict, Field, model_validator

from agents.engines.local.model_files import ModelFileError, package_dir, verified
from agents.engines.local.onnx_session import single_thread_session
from agents.engines.protocols import VadEvent
from agents.engines.turns import TurnStates

SAMPLE_RATE = 16000
WINDOW_SAMPLES = 512
"""Samples the model judges at a time (32 ms at 16 kHz)."""
CONTEXT_SAMPLES = 64
"""Samples of the previous window the model sees in front of each window."""
WINDOW_MS = WINDOW_SAMPLES * 1000 // SAMPLE_RATE
STATE_SHAPE = (1, 1, 128)

SILERO_V6_SHA256 = "4cbf549b8326f60f80f2536d9eefeb450a9abe83365a098031c89719f1be17d2"


def silero_vad_path() -> Path:
    """faster-whisper's copy of Silero VAD v6, once its hash matches the pinned one."""
    folder = package_dir("faster_whisper", "faster-whisper==1.2.1")
    return verified(folder / "assets" / "silero_vad_v6.onnx", SILERO_V6_SHA256)


class VadConfig(BaseModel):
    """How speech probabilities become turn events. Times are milliseconds of audio."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    threshold: float = Field(0.5, gt=0.0, lt=1.0)
    """Probability at or above which a window is speech (to start or resume)."""
    negative_threshold: float | None = Field(None, gt=0.0, lt=1.0)
    """Probability below which speech pauses; defaults to `threshold - 0.15`. The gap between the
    two keeps a wavering probability from flapping between speech and silence."""
    min_speech_ms: int = Field(200, ge=WINDOW_MS, le=5_000)
    """Speech shorter than this (a cough, a click) is not a turn and produces no events."""
    onset_ms: int | None = Field(None, ge=1, le=5_000)
    """Speech reported early as `SpeechOnset` once it lasts this long (below `min_speech_ms`), so
    a barge-in can hold the agent sooner; `SpeechFaded` follows one that never becomes speech.
    None: no onsets."""
    end_of_turn_silence_ms: int = Field(600, ge=WINDOW_MS, le=10_000)
    """Silence after speech that ends the turn; shorter silences are pauses inside it."""
    max_frame_ms: int = Field(10_000, ge=WINDOW_MS)
    """Bound on one `feed` call: a larger frame is refused, since its windows all run inline on
    the event loop (carriers send 20 ms frames)."""

    @model_validator(mode="after")
    def _hysteresis(self) -> VadConfig:
        if self.negative_threshold is not None and self.negative_threshold >= self.threshold:
            raise ValueError(f"negative_threshold {self.negative_threshold} must be below threshold {self.threshold}")
        if self.negative_threshold is None and self.threshold <= 0.15:
            raise ValueError("threshold must exceed 0.15 when negative_threshold is left to default")
        return self

    @property
    def release(self) -> float:
        """The effective negative threshold."""
        return self.threshold - 0.15 if self.negative_threshold is None else self.negative_threshold


class SileroVoiceActivity:
    """The shared Silero model: one single-threaded onnxruntime session for all calls."""

    def __init__(self, config: VadConfig | None = None, model_path: Path | None = None) -> None:
        self.config = config or VadConfig()
        path = model_path or silero_vad_path()
        self.session = single_thread_session(path, "VAD model")
        inputs = {i.name: i.shape for i in self.session.get_inputs()}
        if set(inputs) != {"input", "h", "c"} or inputs["input"][-1] != WINDOW_SAMPLES + CONTEXT_SAMPLES:
            raise ModelFileError(f"{path} is not Silero VAD v6 (inputs {inputs})")

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    def detector(self) -> SileroVoiceDetector:
        return SileroVoiceDetector(self.session, self.config)


class SileroVoiceDetector:
    """One call's detector: model state, context, partial window and the turn state machine."""

    def __init__(self, session: ort.InferenceSession, config: VadConfig) -> None:
        self._session = session
        self.config = config
        self._h = np.zeros(STATE_SHAPE, dtype=np.float32)
        self._c = np.zeros(STATE_SHAPE, dtype=np.float32)
        self._window = np.zeros((1, CONTEXT_SAMPLES + WINDOW_SAMPLES), dtype=np.float32)
        self._pending = bytearray()
        """Bytes of a window still incomplete: fewer than one window's worth, always."""
        self._turns = TurnStates(WINDOW_MS, config.min_speech_ms, config.end_of_turn_silence_ms, config.onset_ms)
        self.last_probability = 0.0
        """The most recent window's speech probability (for metrics and debugging)."""

    @property
    def audio_ms(self) -> int:
        """Milliseconds of audio judged so far (whole windows)."""
        return self._turns.windows * WINDOW_MS

    def feed(self, pcm: bytes) -> list[VadEvent]:
        """Take PCM16 mono at 16 kHz of any length and return the events its complete windows caused."""
        max_bytes = self.config.max_frame_ms * SAMPLE_RATE // 1000 * 2
        if len(pcm) > max_bytes:
            raise ValueError(f"VAD frame of {len(pcm)} bytes exceeds max_frame_ms={self.config.max_frame_ms}")
        self._pending += pcm
        window_bytes = WINDOW_SAMPLES * 2
        whole = len(self._pending) // window_bytes * window_bytes
        if whole == 0:
            return []
        samples = np.frombuffer(self._pending, dtype="<i2", count=whole // 2).astype(np.float32) / 32768.0
        del self._pending[:whole]
        events: list[VadEvent] = []
        for start in range(0, samples.size, WINDOW_SAMPLES):
            prob = self.last_probability = self._probability(samples[start : start + WINDOW_SAMPLES])
            event = self._turns.step(prob >= self.config.threshold, prob >= self.config.release)
            if event is not None:
                events.append(event)
        return events

    def _probability(self, window: np.ndarray) -> float:
        self._window[0, CONTEXT_SAMPLES:] = window
        prob, self._h, self._c = self._session.run(None, {"input": self._window, "h": self._h, "c": self._c})
        self._window[0, :CONTEXT_SAMPLES] = window[-CONTEXT_SAMPLES:]
        return float(np.asarray(prob).reshape(-1)[0])
