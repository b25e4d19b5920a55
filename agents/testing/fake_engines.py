"""FAKE engines for tests: voice activity, speech-to-text, chat model and text-to-speech, no model files.

They implement the protocols in `agents.engines.protocols`, so a `CallSession` or a whole
`VoiceAgent` runs on them unchanged, in milliseconds and deterministically. Speech is "written"
into the audio: `speech("Where is my order?")` is PCM whose samples carry the text, the fake
detector hears those samples as speech and everything else as silence, and the fake
speech-to-text reads the text back. The fake text-to-speech writes its text the same way, so
`read_text` tells a test what the caller heard. The chat model plays back a script of the same
steps the scripted OpenAI-compatible server takes (`Reply`, `Fail`, `Hang`, `DropMidStream`).

    fakes = FakeEngines()
    fakes.chat.push(Reply(text="It shipped yesterday."))
    agent = VoiceAgent(config, fakes.engines, PhraseCache(fakes.tts), fakes.listener)
"""

from __future__ import annotations

import asyncio
import copy
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agents.conversation.listener import ListenerConfig, TurnListener
from agents.conversation.phrases import PhraseCache
from agents.conversation.speaker import Speaker
from agents.engines.protocols import (
    ChatEvent,
    ChatModelUnavailable,
    Engines,
    Message,
    SpeechEngineUnavailable,
    SpeechSynthesisError,
    StreamEnd,
    TextDelta,
    ToolCallRequest,
    ToolChoice,
    Transcript,
    VadEvent,
)
from agents.engines.turns import TurnStates
from agents.port import CallPort
from agents.testing.scripted_llm import DropMidStream, Fail, Hang, Reply, Step

SAMPLE_RATE = 16000
"""Rate of the caller's audio, as the pipeline (detector and speech-to-text) takes it."""
FRAME_MS = 20
"""The fake detector judges audio in windows this long."""
TEXT_LEVEL = 0x4000
"""A sample in [TEXT_LEVEL, TEXT_LEVEL + 256) carries one byte of text; anything else is silence."""
_SEPARATOR = 0
"""The byte written after each copy of the text."""

# -- audio that carries text ---------------------------------------------------------------


def speech(text: str, ms: int = 600, sample_rate: int = SAMPLE_RATE) -> bytes:
    """Caller audio saying `text` for about `ms` (whole detector windows, and at least one copy of the text)."""
    frames = max(1, math.ceil(ms / FRAME_MS))
    return _carry(text, frames * FRAME_MS * sample_rate // 1000, whole=False)


def silence(ms: int, sample_rate: int = SAMPLE_RATE) -> bytes:
    return bytes(ms * sample_rate // 1000 * 2)


def read_text(pcm: bytes) -> list[str]:
    """The texts `pcm` carries, in order: one for each stretch of text-carrying samples (a stretch
    that changes text part-way gives each), so the fake TTS's lines come back one by one."""
    samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.int32)
    carrying = (samples >= TEXT_LEVEL) & (samples < TEXT_LEVEL + 256)
    edges = np.flatnonzero(np.diff(np.concatenate(([0], carrying.astype(np.int8), [0]))))
    texts: list[str] = []
    for start, end in zip(edges[::2], edges[1::2], strict=True):
        data = (samples[start:end] - TEXT_LEVEL).astype(np.uint8).tobytes()
        stretch: list[str] = []
        for piece in data.split(bytes([_SEPARATOR]))[:-1]:  # the last piece is an unfinished copy
            text = piece.decode(errors="replace")
            if text and (not stretch or stretch[-1] != text):
                stretch.append(text)
        texts += stretch
    return texts


def _carry(text: str, samples: int, *, whole: bool) -> bytes:
    """`samples` samples (rounded up to whole copies of the text when `whole`) that repeat `text`."""
    code = np.frombuffer(text.encode() + bytes([_SEPARATOR]), dtype=np.uint8).astype(np.int16) + TEXT_LEVEL
    copies = max(1, math.ceil(samples / code.size))
    signal = np.tile(code, copies)
    if not whole:
        signal = signal[: max(samples, code.size)]
    return signal.astype("<i2").tobytes()


# -- voice activity ------------------------------------------------------------------------


class FakeVoiceDetector:
    """One call's detector: a window is speech when most of its samples carry text. The turn logic
    is the real detector's: speech counts after `min_speech_ms`, a turn ends after `end_of_turn_ms`."""

    def __init__(self, min_speech_ms: int, end_of_turn_ms: int, onset_ms: int | None = None) -> None:
        self._pending = bytearray()
        self._turns = TurnStates(FRAME_MS, min_speech_ms, end_of_turn_ms, onset_ms)

    def feed(self, pcm: bytes) -> list[VadEvent]:
        self._pending += pcm
        window = FRAME_MS * SAMPLE_RATE // 1000 * 2
        events: list[VadEvent] = []
        while len(self._pending) >= window:
            samples = np.frombuffer(bytes(self._pending[:window]), dtype="<i2")
            del self._pending[:window]
            voiced = np.count_nonzero((samples >= TEXT_LEVEL) & (samples < TEXT_LEVEL + 256)) * 2 > samples.size
            event = self._turns.step(voiced, voiced)
            if event is not None:
                events.append(event)
        return events


class FakeVoiceActivity:
    """Hands each call a `FakeVoiceDetector`; 16 kHz like the real one."""

    def __init__(self, min_speech_ms: int = 60, end_of_turn_ms: int = 300, onset_ms: int | None = None) -> None:
        self.min_speech_ms = min_speech_ms
        self.end_of_turn_ms = end_of_turn_ms
        self.onset_ms = onset_ms

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    def detector(self) -> FakeVoiceDetector:
        return FakeVoiceDetector(self.min_speech_ms, self.end_of_turn_ms, self.onset_ms)


# -- speech-to-text ------------------------------------------------------------------------


class FakeSpeechToText:
    """Reads back the text written into the audio (`speech`), after `delay_s`.

    Set `unavailable` to answer like a remote engine that is down (`SpeechEngineUnavailable`), or
    queue exceptions in `failures` to fail the next transcriptions with them, one each. While
    `gate` is an event not yet set, transcriptions wait for it (the test says when they finish).
    """

    def __init__(self, delay_s: float = 0.0, failures: Iterable[Exception] = ()) -> None:
        self.delay_s = delay_s
        self.failures: deque[Exception] = deque(failures)
        self.unavailable = False
        self.gate: asyncio.Event | None = None
        self.started = 0
        """Transcriptions asked for so far."""
        self.transcripts: list[str] = []
        """Every transcript returned, in order (an early job abandoned by the listener included)."""
        self.asked: list[tuple[str, str | None]] = []
        """(the words in the audio, the prompt) of every transcription asked for, in order."""

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    async def transcribe(self, pcm: bytes, prompt: str | None = None) -> Transcript:
        self.started += 1
        self.asked.append((" ".join(read_text(pcm)), prompt))
        await asyncio.sleep(self.delay_s)
        if self.gate is not None:
            await self.gate.wait()
        if self.unavailable:
            raise SpeechEngineUnavailable("the fake speech-to-text is unavailable")
        if self.failures:
            raise self.failures.popleft()
        text = " ".join(read_text(pcm))
        self.transcripts.append(text)
        return Transcript(text=text, audio_ms=len(pcm) // 2 * 1000 // SAMPLE_RATE, compute_ms=self.delay_s * 1000)


# -- chat model ----------------------------------------------------------------------------


@dataclass
class ChatRequest:
    """What the session asked the fake model, and how the stream ended."""

    messages: list[Message]
    tools: list[dict[str, Any]]
    tool_choice: ToolChoice | None
    outcome: str | None = None
    """None while streaming, then `completed`, `failed` or `cancelled` (the session stopped reading)."""


class FakeChatModel:
    """Streams the next scripted step for each request: a `Reply` as text deltas (in `chunk_chars`
    pieces) then whole tool calls, waiting `delay_first_s` / `delay_between_s` as scripted; a
    `Fail` raises `ChatModelUnavailable` at once, a `Hang` after its seconds, a `DropMidStream`
    after its first chunks. With no step left it fails (the test gave too few)."""

    def __init__(self, script: Iterable[Step] = ()) -> None:
        self._steps: deque[Step] = deque(script)
        self.requests: list[ChatRequest] = []

    def push(self, *steps: Step) -> None:
        self._steps.extend(steps)

    @property
    def steps_left(self) -> int:
        return len(self._steps)

    async def stream(
        self, messages: Sequence[Message], tools: Sequence[dict[str, Any]] = (), tool_choice: ToolChoice | None = None
    ) -> AsyncIterator[ChatEvent]:
        request = ChatRequest(copy.deepcopy(list(messages)), copy.deepcopy(list(tools)), tool_choice)
        self.requests.append(request)
        try:
            step = self._steps.popleft() if self._steps else Fail(500, "the fake chat model's script is used up")
            if isinstance(step, Fail):
                raise ChatModelUnavailable(f"HTTP {step.status}: {step.message}")
            if isinstance(step, Hang):
                await asyncio.sleep(step.seconds)
                raise ChatModelUnavailable("the model did not answer in time")
            reply = step.reply if isinstance(step, DropMidStream) else step
            limit = step.after_chunks - 1 if isinstance(step, DropMidStream) else None  # the role chunk counts
            for sent, event in enumerate(_events(reply)):
                if sent == limit:
                    raise ChatModelUnavailable("the stream was cut")
                await asyncio.sleep(reply.delay_first_s if sent == 0 else reply.delay_between_s)
                yield event
        except ChatModelUnavailable:
            request.outcome = "failed"
            raise
        except (GeneratorExit, asyncio.CancelledError):
            request.outcome = "cancelled"
            raise
        request.outcome = "completed"


def _events(reply: Reply) -> list[ChatEvent]:
    size = reply.chunk_chars
    events: list[ChatEvent] = [TextDelta(reply.text[i : i + size]) for i in range(0, len(reply.text), size)]
    events += [ToolCallRequest(c.id or f"call_{i}", c.name, c.arguments) for i, c in enumerate(reply.tool_calls)]
    events.append(StreamEnd(reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")))
    return events


# -- text-to-speech ------------------------------------------------------------------------


class FakeTextToSpeech:
    """Audio `ms_per_char` long per character of the text, carrying the text (`read_text`), in
    chunks of `chunk_ms`, after `delay_s`. Set `unavailable` (a remote engine that is down) or
    `failing` to refuse every text; text over `max_text_chars` is refused like Kokoro refuses it."""

    def __init__(
        self,
        sample_rate: int = 24000,
        ms_per_char: float = 50.0,
        delay_s: float = 0.0,
        chunk_ms: int = 200,
        max_text_chars: int | None = None,
    ) -> None:
        self._sample_rate = sample_rate
        self.ms_per_char = ms_per_char
        self.delay_s = delay_s
        self.chunk_ms = chunk_ms
        self.max_text_chars = max_text_chars
        self.unavailable = False
        self.failing = False
        self.texts: list[str] = []
        """Every text asked for, in order (a refused one included)."""

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        self.texts.append(text)
        await asyncio.sleep(self.delay_s)
        if self.unavailable:
            raise SpeechEngineUnavailable("the fake text-to-speech is unavailable")
        if self.failing or (self.max_text_chars is not None and len(text) > self.max_text_chars):
            raise SpeechSynthesisError(f"the fake text-to-speech refused {text[:40]!r}")
        text = text.strip()
        if not text:
            return
        pcm = _carry(text, round(len(text) * self.ms_per_char * self.sample_rate / 1000), whole=True)
        pcm += silence(FRAME_MS, self.sample_rate)  # so that each line reads back on its own
        chunk = max(2, self.chunk_ms * self.sample_rate // 1000 * 2)
        for start in range(0, len(pcm), chunk):
            yield pcm[start : start + chunk]

    def with_voice(self, voice: str, speed: float | None = None) -> FakeTextToSpeech:
        """One voice for all: the fake sounds the same whoever speaks."""
        return self

    async def warm_up(self) -> None:
        return None

    def close(self) -> None:
        return None


# -- all four, and the parts of a call made from them ----------------------------------------


@dataclass
class FakeEngines:
    """The four fakes a pod would share, and the per-call parts a session is built from."""

    vad: FakeVoiceActivity = field(default_factory=FakeVoiceActivity)
    stt: FakeSpeechToText = field(default_factory=FakeSpeechToText)
    chat: FakeChatModel = field(default_factory=FakeChatModel)
    tts: FakeTextToSpeech = field(default_factory=FakeTextToSpeech)
    listener_config: ListenerConfig = field(default_factory=ListenerConfig)

    @property
    def engines(self) -> Engines:
        return Engines(self.vad, self.stt, self.chat, self.tts)

    def listener(self) -> TurnListener:
        """A call's listener (a `VoiceAgent`'s `listener_factory`)."""
        return TurnListener(self.vad.detector(), self.stt, self.listener_config)

    async def phrases(self, lines: Iterable[str] = ()) -> PhraseCache:
        """A phrase cache with `lines` already rendered (a failure leaves that line unrendered)."""
        cache = PhraseCache(self.tts)
        await cache.prepare(list(lines))
        return cache

    def speaker(self, port: CallPort, phrases: PhraseCache, clock: Callable[[], float] = time.monotonic) -> Speaker:
        return Speaker(port, self.tts, phrases, clock)
