"""Speech-to-text over the OpenAI audio API (`POST /v1/audio/transcriptions`): `switchboard
speech`, vLLM serving Whisper, or any server speaking that API.

The call pod then holds no Whisper at all. Each utterance goes out as a 16 kHz PCM16 WAV file in
a multipart form, through the pod's shared `SpeechClient` (reused connections, deadline, retries,
bound on requests in flight).
"""

from __future__ import annotations

import io
import json
import time
import wave

import httpx

from agents.engines.protocols import Transcript, TranscriptionError
from agents.engines.remote.speech_client import SpeechClient, SpeechRequestRefused

SAMPLE_RATE = 16000
MAX_ANSWER_BYTES = 64 * 1024
"""Bound on a transcription answer read (a 30 s utterance is a few hundred bytes of text)."""


def wav_bytes(pcm: bytes, sample_rate: int = SAMPLE_RATE) -> bytes:
    """PCM16 mono -> a WAV file in memory (44 bytes of header)."""
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm)
    return out.getvalue()


class RemoteSpeechToText:
    """The `SpeechToText` engine as a client of an OpenAI-compatible transcription endpoint."""

    def __init__(
        self,
        client: SpeechClient,
        model: str = "whisper-1",
        *,
        language: str = "en",
        min_audio_ms: int = 100,
        max_audio_ms: int = 60_000,
    ) -> None:
        if not 0 <= min_audio_ms < max_audio_ms:
            raise ValueError("need 0 <= min_audio_ms < max_audio_ms")
        self.client = client
        self.model = model
        """Model name sent with each request (vLLM wants the one it serves; ours takes any)."""
        self.language = language
        self.min_audio_ms = min_audio_ms
        """Shorter audio is answered with an empty transcript without a request."""
        self.max_audio_ms = max_audio_ms
        """Bound on one utterance sent (turns are cut well before)."""

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    async def transcribe(self, pcm: bytes, prompt: str | None = None) -> Transcript:
        """PCM16 mono at 16 kHz -> text (`prompt` goes as the API's `prompt` field). Raises
        `SpeechEngineUnavailable` (down, slow, too many in flight) or `TranscriptionError` (the
        service refused this audio)."""
        started = time.perf_counter()
        audio_ms = len(pcm) // 2 * 1000 // SAMPLE_RATE
        if audio_ms > self.max_audio_ms:
            raise TranscriptionError(f"utterance of {audio_ms} ms exceeds max_audio_ms={self.max_audio_ms}")
        if audio_ms < self.min_audio_ms:
            return Transcript("", audio_ms, 0.0)
        files = {"file": ("utterance.wav", wav_bytes(pcm), "audio/wav")}
        data = {"model": self.model, "language": self.language, "response_format": "json", "temperature": "0"}
        if prompt:
            data["prompt"] = prompt
        try:
            async with self.client.request("POST", "/audio/transcriptions", files=files, data=data) as response:
                body = await _read_bounded(response, MAX_ANSWER_BYTES)
        except SpeechRequestRefused as exc:
            raise TranscriptionError(f"{self.client.name} refused the utterance: {exc}") from exc
        try:
            text = json.loads(body)["text"]
        except (ValueError, KeyError, TypeError) as exc:
            raise TranscriptionError(f"{self.client.name} answered without a transcript: {body[:200]!r}") from exc
        if not isinstance(text, str):
            raise TranscriptionError(f"{self.client.name} answered a non-text transcript")
        return Transcript(text.strip(), audio_ms, (time.perf_counter() - started) * 1000)

    async def warm_up(self) -> None:
        """Nothing to load here; the service warms itself. Its health is checked by the caller."""

    async def aclose(self) -> None:
        await self.client.aclose()


async def _read_bounded(response: httpx.Response, limit: int) -> bytes:
    body = b""
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > limit:
            raise TranscriptionError(f"answer larger than {limit} bytes")
    return body
