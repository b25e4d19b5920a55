"""The small interfaces a call session talks to: speech-to-text, chat model and text-to-speech.

Each engine can live in-process (faster-whisper, llama.cpp, Kokoro) or behind a network API
(vLLM through the OpenAI-compatible API); the session only sees these protocols, so swapping one
for another is a composition-root decision, never a session change.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np

# -- voice activity ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """The caller has been speaking for at least the minimum speech time."""

    at_ms: int
    """Where the speech began, in milliseconds of audio fed to this detector."""


@dataclass(frozen=True, slots=True)
class SpeechPaused:
    """Speech dropped below the threshold; the turn ends unless it resumes soon."""

    at_ms: int


@dataclass(frozen=True, slots=True)
class SpeechResumed:
    """Speech came back before the end-of-turn silence ran out."""

    at_ms: int


@dataclass(frozen=True, slots=True)
class SpeechEnded:
    """End of turn: silence lasted the end-of-turn time. `at_ms` is where the speech stopped."""

    at_ms: int


@dataclass(frozen=True, slots=True)
class SpeechOnset:
    """Speech may be starting: it has lasted the detector's onset time, not yet its minimum speech
    time. Enough to hold the agent's reply (a barge-in clears the line on it, sooner than on
    `SpeechStarted`); `SpeechStarted` or `SpeechFaded` follows. Only from detectors with an onset."""

    at_ms: int
    """Where the speech began."""


@dataclass(frozen=True, slots=True)
class SpeechFaded:
    """A `SpeechOnset` that never lasted the minimum speech time (a click, a bump, a short cough):
    reported once the end-of-turn silence after it has run out. No turn."""

    at_ms: int
    """Where that sound stopped."""


VadEvent = SpeechStarted | SpeechPaused | SpeechResumed | SpeechEnded | SpeechOnset | SpeechFaded


class VoiceDetector(Protocol):
    """One call's streaming detector (it keeps that call's model state)."""

    def feed(self, pcm: bytes) -> list[VadEvent]:
        """Take the next PCM16 mono frame(s) at the model's rate and return what happened."""
        ...


class VoiceActivity(Protocol):
    """The shared model; hands each call a detector of its own."""

    @property
    def sample_rate(self) -> int: ...

    def detector(self) -> VoiceDetector: ...


class EndOfTurnModel(Protocol):
    """A semantic end-of-turn model (Smart Turn), shared by the pod: judges how a turn's audio ends."""

    async def completion(self, pcm16k: bytes) -> float:
        """Probability in [0, 1] that the turn in `pcm16k` (PCM16 mono, 16 kHz) is complete; the
        work runs off the event loop. May raise `InferenceOverloaded` when the pod is busy."""
        ...


# -- speech-to-text ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Transcript:
    text: str
    """What the caller said, stripped; empty when nothing intelligible was heard."""
    audio_ms: int
    """Length of the audio that was transcribed."""
    compute_ms: float
    """Wall time the engine spent, queueing included."""


class TranscriptionError(Exception):
    """The engine refused or failed to transcribe an utterance (not a passing outage)."""


class SpeechEngineUnavailable(Exception):
    """A speech engine behind a network API did not answer in time: down, restarting, too slow, or
    this pod's bound on requests in flight to it is reached. Unlike the errors above it passes, so
    the call goes on: the caller is asked to say it again and the next turn may well work."""


class SpeechToText(Protocol):
    """Turns one utterance (PCM16 mono at `sample_rate`) into text without blocking the loop."""

    @property
    def sample_rate(self) -> int: ...

    async def transcribe(self, pcm: bytes, prompt: str | None = None) -> Transcript:
        """`prompt`: text the speech is likely to resemble (Whisper's initial prompt; the
        `prompt` of OpenAI's transcription API), e.g. backchannels spelled out for speech over the
        agent. Raises `TranscriptionError`, or `SpeechEngineUnavailable` from a remote engine."""
        ...


# -- chat model ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of the assistant's spoken reply, in stream order."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolCallRequest:
    """A complete tool call, assembled from the stream's `tool_calls` deltas.

    `arguments` is the model's raw JSON text, unparsed: the tools layer validates it.
    """

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """The model finished (`stop`, `tool_calls`, `length`, ...)."""

    finish_reason: str | None


ChatEvent = TextDelta | ToolCallRequest | StreamEnd

ToolChoice = Literal["auto", "none", "required"] | dict[str, Any]

Message = dict[str, Any]
"""An OpenAI chat message (`role`, `content`, and `tool_calls` / `tool_call_id` where used)."""


class ChatModelUnavailable(Exception):
    """The model could not be reached or failed before saying anything (after any retry)."""


class ChatModel(Protocol):
    """A streaming chat model with tool calling (the OpenAI chat completions shape)."""

    def stream(
        self,
        messages: Sequence[Message],
        tools: Sequence[dict[str, Any]] = (),
        tool_choice: ToolChoice | None = None,
    ) -> AsyncIterator[ChatEvent]:
        """Yield text deltas and complete tool calls, then one `StreamEnd`.

        Raises `ChatModelUnavailable` when no usable answer starts (after the engine's own
        timeout and retry); a failure mid-stream also raises it. Cancelling the iteration
        (barge-in) must stop the work it started.
        """
        ...


# -- text-to-speech ------------------------------------------------------------------------


class SpeechSynthesisError(Exception):
    """The engine failed to speak a piece of text."""


class TextToSpeech(Protocol):
    """Speaks text as PCM16 mono at `sample_rate`, in chunks, as soon as each is ready."""

    @property
    def sample_rate(self) -> int: ...

    def synthesize(self, text: str) -> AsyncIterator[bytes]:
        """Yield PCM16 chunks for `text` (one sentence or clause at a time is typical).

        Raises `SpeechSynthesisError` on failure (`SpeechEngineUnavailable` from a remote engine
        that is down or slow). Cancelling the iteration stops the work.
        """
        ...


class VoicedTextToSpeech(TextToSpeech, Protocol):
    """The pod's text-to-speech engine: other voices share it, and it warms up and closes."""

    def with_voice(self, voice: str, speed: float | None = None) -> VoicedTextToSpeech: ...

    async def warm_up(self) -> None: ...

    def close(self) -> None: ...


class EchoCanceller(Protocol):
    """One call's echo canceller: the caller's audio (`near`, int16 at 16 kHz, whole 10 ms blocks)
    with the echo of what was played (`far`, the same length) taken out. Stateful, never shared."""

    def process(self, near: np.ndarray, far: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True, slots=True)
class Engines:
    """The engines one pod shares across all its calls."""

    vad: VoiceActivity
    stt: SpeechToText
    chat: ChatModel
    tts: TextToSpeech
    echo: Callable[[], EchoCanceller] | None = None
    """Makes each call's echo canceller; None: caller audio reaches the listener as it comes."""
