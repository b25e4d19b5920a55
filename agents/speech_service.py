"""The speech service: faster-whisper and Kokoro behind the OpenAI audio API, for call pods that
hold no models (`switchboard speech`).

- `POST /v1/audio/transcriptions`: multipart form with `file` (WAV, or anything PyAV decodes),
  `model` (any name; logged), `language` (English only), `response_format` `json` | `text` |
  `verbose_json`. Answers `{"text": ...}`.
- `POST /v1/audio/speech`: JSON `{"model", "input", "voice", "response_format": "pcm" | "wav",
  "speed"}`. Streams the audio as each sentence is synthesized: `pcm` is raw PCM16 mono at 24 kHz
  (what OpenAI sends for `pcm`), `wav` the same behind a streaming WAV header. A client that goes
  away (barge-in) stops the synthesis after the sentence being made.
- `GET /healthz`: liveness and the engines' pending work.

Everything is bounded: the request body (`max_request_bytes`, 413), the text (the engine's
`max_text_chars`, 400), the audio length (the engine's `max_audio_ms`, 400), and concurrent jobs
(the engines' `InferencePool`s: past `max_pending` a request gets 503 at once, which the client
retries with backoff rather than piling requests up here). Errors use OpenAI's shape:
`{"error": {"message", "type"}}`.
"""

from __future__ import annotations

import io
import json
import logging
import struct
import wave
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import numpy as np
import soxr
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Message, Receive

from agents.engines.local.pool import InferenceOverloaded
from agents.engines.local.whisper import SAMPLE_RATE as STT_RATE
from agents.engines.local.whisper import WhisperSpeechToText
from agents.engines.protocols import SpeechSynthesisError, VoicedTextToSpeech

log = logging.getLogger("switchboard.speech")

MAX_JSON_BYTES = 64 * 1024
"""Bound on a speech request's JSON body (the text bound is far below it)."""
RESPONSE_FORMATS = ("pcm", "wav")


class _TooLarge(Exception):
    pass


def _error(status: int, message: str, kind: str = "invalid_request_error") -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind}}, status_code=status)


def _bounded(receive: Receive, limit: int) -> Receive:
    """`receive` that raises `_TooLarge` once the body passes `limit` bytes (chunked uploads too)."""
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise _TooLarge
        return message

    return wrapped


def decode_audio(data: bytes) -> np.ndarray:
    """An uploaded file -> float32 mono at 16 kHz. WAV PCM16 is read directly; anything else goes
    through PyAV (faster-whisper's decoder). Raises ValueError for what neither can read."""
    try:
        with wave.open(io.BytesIO(data), "rb") as wav:
            channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            frames = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError):
        from faster_whisper.audio import decode_audio as av_decode

        try:
            return np.asarray(av_decode(io.BytesIO(data), sampling_rate=STT_RATE), dtype=np.float32)
        except Exception as exc:  # PyAV raises its own error kinds for garbage
            raise ValueError(f"not an audio file this service can read: {exc}") from None
    if width != 2:
        raise ValueError(f"WAV with {8 * width}-bit samples; send 16-bit PCM")
    audio = np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32768.0
    if channels > 1:
        audio = audio[: audio.size - audio.size % channels].reshape(-1, channels).mean(axis=1)
    if rate != STT_RATE:
        audio = soxr.resample(audio, rate, STT_RATE, quality="HQ").astype(np.float32)
    return audio


def wav_stream_header(sample_rate: int) -> bytes:
    """A WAV header for a stream of unknown length (sizes at their maximum, as streaming servers do)."""
    byte_rate = sample_rate * 2
    return (
        b"RIFF"
        + struct.pack("<I", 0xFFFFFFFF)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, byte_rate, 2, 16)
        + b"data"
        + struct.pack("<I", 0xFFFFFFFF)
    )


class SpeechService:
    """The routes over one STT engine and one TTS engine (voices per request)."""

    def __init__(
        self, stt: WhisperSpeechToText, tts: VoicedTextToSpeech, *, voices: list[str], max_request_bytes: int
    ) -> None:
        self.stt = stt
        self.tts = tts
        self.voices = voices
        self.max_request_bytes = max_request_bytes
        """Bound on a request body (an upload); larger gets 413 before it is all read."""
        self._voiced: dict[tuple[str, float], VoicedTextToSpeech] = {}
        """Engines per (voice, speed) asked for; bounded by the voices file and the speeds seen
        (`MAX_VOICED`)."""

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/audio/transcriptions", self.transcriptions, methods=["POST"]),
                Route("/v1/audio/speech", self.speech, methods=["POST"]),
                Route("/v1/audio/voices", self.list_voices, methods=["GET"]),
                Route("/healthz", self.healthz, methods=["GET"]),
            ]
        )

    async def healthz(self, request: Request) -> Response:
        pools = {"stt": self.stt.pool.pending, "tts": getattr(getattr(self.tts, "pool", None), "pending", 0)}
        return JSONResponse({"status": "ok", "pending": pools})

    async def list_voices(self, request: Request) -> Response:
        return JSONResponse({"voices": self.voices})

    async def transcriptions(self, request: Request) -> Response:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_request_bytes:
            return _error(413, f"request larger than {self.max_request_bytes} bytes")
        request = Request(request.scope, _bounded(request.receive, self.max_request_bytes))
        try:
            async with request.form(max_files=1, max_fields=16, max_part_size=64 * 1024) as form:
                upload = form.get("file")
                if not isinstance(upload, UploadFile):
                    return _error(400, "the form needs an audio `file`")
                data = await upload.read()
                fields = {key: value for key, value in form.items() if isinstance(value, str)}
        except _TooLarge:
            return _error(413, f"request larger than {self.max_request_bytes} bytes")
        except Exception as exc:  # Starlette raises HTTPException / MultiPartException for a bad form
            return _error(400, f"not a multipart form with an audio file: {getattr(exc, 'detail', exc)}")
        language = fields.get("language", "en")
        if language.split("-")[0].lower() != "en":
            return _error(400, f"language {language!r}: this service transcribes English only")
        response_format = fields.get("response_format", "json")
        if response_format not in ("json", "text", "verbose_json"):
            return _error(400, f"response_format {response_format!r}: use json, text or verbose_json")
        try:
            audio = decode_audio(data)
        except ValueError as exc:
            return _error(400, str(exc))
        pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes()
        try:
            transcript = await self.stt.transcribe(pcm)
        except InferenceOverloaded as exc:
            return _error(503, str(exc), "overloaded")
        except ValueError as exc:  # longer than the engine's max_audio_ms
            return _error(400, str(exc))
        if response_format == "text":
            return PlainTextResponse(transcript.text)
        if response_format == "verbose_json":
            duration = transcript.audio_ms / 1000
            return JSONResponse(
                {"task": "transcribe", "language": "english", "duration": duration, "text": transcript.text}
            )
        return JSONResponse({"text": transcript.text})

    async def speech(self, request: Request) -> Response:
        try:
            body = await _json_body(request, MAX_JSON_BYTES)
        except _TooLarge:
            return _error(413, f"request larger than {MAX_JSON_BYTES} bytes")
        except ValueError as exc:
            return _error(400, str(exc))
        text, voice = body.get("input"), body.get("voice")
        response_format, speed = body.get("response_format", "pcm"), body.get("speed", 1.0)
        if not isinstance(text, str) or not text.strip():
            return _error(400, "`input` must be non-empty text")
        if not isinstance(voice, str) or voice not in self.voices:
            return _error(400, f"unknown voice {voice!r}; this service has: {', '.join(self.voices)}")
        if response_format not in RESPONSE_FORMATS:
            return _error(400, f"response_format {response_format!r}: this service streams pcm or wav")
        if not isinstance(speed, int | float) or not 0.5 <= speed <= 2.0:
            return _error(400, "`speed` must be a number between 0.5 and 2.0")
        tts = self._engine(voice, float(speed))
        chunks = aiter(tts.synthesize(text))
        try:  # the first sentence before the status line, so a refusal is an error status, not a cut stream
            first = await anext(chunks, b"")
        except SpeechSynthesisError as exc:
            if isinstance(exc.__cause__, InferenceOverloaded):
                return _error(503, str(exc), "overloaded")
            return _error(400, str(exc))
        prefix = wav_stream_header(tts.sample_rate) if response_format == "wav" else b""
        media = "audio/wav" if response_format == "wav" else "audio/pcm"
        headers = {"X-Sample-Rate": str(tts.sample_rate)}
        return StreamingResponse(_stream(prefix + first, chunks), media_type=media, headers=headers)

    def _engine(self, voice: str, speed: float) -> VoicedTextToSpeech:
        key = (voice, round(speed, 2))
        engine = self._voiced.get(key)
        if engine is None:
            if len(self._voiced) >= MAX_VOICED:
                self._voiced.pop(next(iter(self._voiced)))
            engine = self._voiced[key] = self.tts.with_voice(voice, key[1])
        return engine


MAX_VOICED = 256
"""Bound on (voice, speed) engines kept (each is a few attributes over the shared model)."""


async def _stream(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The audio; a failure after the first sentence cuts the stream (the client sees it broken)."""
    try:
        if first:
            yield first
        async for chunk in rest:
            yield chunk
    finally:
        close: Callable[[], Awaitable[Any]] | None = getattr(rest, "aclose", None)
        if close is not None:
            await close()


async def _json_body(request: Request, limit: int) -> dict[str, Any]:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _TooLarge
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"body is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError("body must be a JSON object")
    return value
