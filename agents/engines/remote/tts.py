"""Text-to-speech over the OpenAI audio API (`POST /v1/audio/speech`, `response_format=pcm`):
`switchboard speech`, Kokoro-FastAPI, or any server speaking that API.

The answer is streamed: raw PCM16 mono at 24 kHz, the rate OpenAI and Kokoro both speak. Each
sentence the session hands over is one request, and its audio is passed on as it arrives, so the
first words play while the rest are synthesized. Closing the iteration (barge-in) closes the
request, which is how the service learns to stop.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from agents.engines.protocols import SpeechSynthesisError
from agents.engines.remote.speech_client import SpeechClient, SpeechRequestRefused

SAMPLE_RATE = 24000
"""What `response_format=pcm` carries (OpenAI's rate; Kokoro speaks at it natively)."""
CHUNK_BYTES = 4800
"""Audio handed on at a time (100 ms), so a chunk is never cut inside a sample."""


class RemoteTextToSpeech:
    """The `TextToSpeech` engine as a client; `with_voice` gives others sharing the client."""

    def __init__(
        self,
        client: SpeechClient,
        model: str = "kokoro",
        voice: str = "af_heart",
        *,
        speed: float = 1.0,
        max_text_chars: int = 4000,
    ) -> None:
        if not 0.25 <= speed <= 4.0:
            raise ValueError(f"speed must be between 0.25 and 4.0 (the OpenAI API's range), got {speed}")
        self.client = client
        self.model = model
        self.voice = voice
        self.speed = speed
        self.max_text_chars = max_text_chars
        """Bound on the text of one request (OpenAI's own is 4,096 characters)."""

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    def with_voice(self, voice: str, speed: float | None = None) -> RemoteTextToSpeech:
        return RemoteTextToSpeech(
            self.client,
            self.model,
            voice,
            speed=self.speed if speed is None else speed,
            max_text_chars=self.max_text_chars,
        )

    async def synthesize(self, text: str) -> AsyncGenerator[bytes, None]:
        """Yield PCM16 mono at 24 kHz as the service streams it; nothing for text without words.
        Raises `SpeechEngineUnavailable` (down, slow, too many in flight: also mid-answer) or
        `SpeechSynthesisError` (the service refused the text or the voice)."""
        if len(text) > self.max_text_chars:
            raise SpeechSynthesisError(
                f"text of {len(text)} characters is longer than max_text_chars={self.max_text_chars}; "
                "send it a sentence at a time"
            )
        if not any(ch.isalnum() for ch in text):
            return
        body = {
            "model": self.model,
            "input": text,
            "voice": self.voice,
            "response_format": "pcm",
            "speed": self.speed,
        }
        try:
            async with self.client.request("POST", "/audio/speech", json=body) as response:
                odd = b""
                async for chunk in response.aiter_bytes(CHUNK_BYTES):
                    chunk = odd + chunk
                    cut = len(chunk) - len(chunk) % 2
                    odd = chunk[cut:]
                    if cut:
                        yield chunk[:cut]
        except SpeechRequestRefused as exc:
            raise SpeechSynthesisError(f"{self.client.name} refused {text[:60]!r}: {exc}") from exc

    async def warm_up(self) -> None:
        """Nothing to load here; the service warms itself."""

    def close(self) -> None:
        """The client is closed by its owner (`aclose`), on the event loop that used it."""

    async def aclose(self) -> None:
        await self.client.aclose()
