"""The speech service: faster-whisper and Kokoro behind the OpenAI audio API, for call pods that
hold no models (`switchboard speech`).

- `POST /v1/audio/transcriptions`: multipart form with `file` (WAV, or anything PyAV decodes),
  `model` (any name; logged), `language` (English only), `prompt` (Whisper's initial prompt, at
  most 500 characters), `response_format` `json` | `text` | `verbose_json`. Answers `{"text": ...}`.
- `POST /v1/audio/speech`: JSON `{"model", "input", "voice", "response_format": "pcm" | "wav",
  "speed"}`. Streams the audio as each sentence is synthesized: `pcm` is raw PCM16 mono at 24 kHz
  (what OpenAI sends for `pcm`), `wav` the same behind a streaming WAV header. A client that goes
  away (barge-in) stops the synthesis after the sentence being made.
- `GET /healthz`: liveness and the engines' pending work; the only route open without a key.

Every other request needs `Authorization: Bearer <key>`, one of the service's keys (compared in
constant time; several during a rotation), or gets 401 before its body is read. Everything is
bounded: the request body (`max_request_bytes`, 413, counted as it arrives), an upload's audio
(checked from its header before any decode or resample, `speech_uploads`: 400), the text (the
engine's `max_text_chars`, 400), and concurrent jobs (the engines' `InferencePool`s and the decode
pool: past `max_pending` a request gets 503 at once, which the client retries with backoff rather
than piling requests up here). Decoding, resampling and inference run on pool threads, never on
the event loop. Errors use OpenAI's shape: `{"error": {"message", "type"}}`.
"""

from __future__ import annotations

import hmac
import json
import logging
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agents.engines.local.pool import InferenceOverloaded, InferencePool
from agents.engines.local.whisper import WhisperSpeechToText
from agents.engines.protocols import SpeechSynthesisError, VoicedTextToSpeech
from agents.speech_uploads import UploadRefused, decode_upload

log = logging.getLogger("switchboard.speech")

MAX_JSON_BYTES = 64 * 1024
"""Bound on a speech request's JSON body (the text bound is far below it)."""
RESPONSE_FORMATS = ("pcm", "wav")
MIN_KEY_CHARS = 16
"""Shortest API key accepted (a guessable key is no door)."""
OPEN_PATHS = frozenset({"/healthz"})
"""Routes answered without a key: the probes, which carry none."""
DEFAULT_MAX_UPLOAD_SECONDS = 120.0
"""Bound on an upload's audio unless the service is told otherwise (a caller turn is seconds)."""
DECODE_WORKERS = 2
"""Threads decoding and resampling uploads (short jobs: seconds of audio each)."""
MAX_PENDING_DECODES = 8
"""Bound on uploads decoding or queued to; past it a transcription gets 503 at once."""
MAX_PROMPT_CHARS = 500
"""Bound on a transcription's `prompt` (Whisper reads at most 224 prompt tokens anyway)."""


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


class BearerKeys:
    """ASGI middleware: every request but the open paths carries one of `keys`, or gets 401
    before anything else runs (its body is never read). Each key is compared in constant time,
    and all of them are, so the answer's timing says nothing about which one came close."""

    def __init__(self, app: ASGIApp, keys: Sequence[str]) -> None:
        self.app = app
        self._keys = [key.encode() for key in keys]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._keys or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        if not self._accepts(dict(scope["headers"]).get(b"authorization", b"")):
            response = _error(401, "a valid API key is required: Authorization: Bearer <key>", "authentication_error")
            response.headers["WWW-Authenticate"] = "Bearer"
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _accepts(self, header: bytes) -> bool:
        scheme, _, token = header.partition(b" ")
        token = token.strip()
        if scheme.lower() != b"bearer" or not token:
            return False
        matched = False
        for key in self._keys:
            matched |= hmac.compare_digest(token, key)
        return matched


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
        self,
        stt: WhisperSpeechToText,
        tts: VoicedTextToSpeech,
        *,
        voices: list[str],
        max_request_bytes: int,
        api_keys: Sequence[str],
        allow_unauthenticated: bool = False,
        max_upload_seconds: float = DEFAULT_MAX_UPLOAD_SECONDS,
    ) -> None:
        """Refuses (ValueError) to serve without keys unless `allow_unauthenticated` says so (a
        laptop), and keys shorter than `MIN_KEY_CHARS`."""
        if not api_keys and not allow_unauthenticated:
            raise ValueError("no API keys: the speech service refuses to serve anyone without one")
        if short := [key for key in api_keys if len(key) < MIN_KEY_CHARS]:
            raise ValueError(f"{len(short)} API key(s) shorter than {MIN_KEY_CHARS} characters: use longer ones")
        if max_upload_seconds <= 0:
            raise ValueError("max_upload_seconds must be above 0")
        self.stt = stt
        self.tts = tts
        self.voices = voices
        self.max_request_bytes = max_request_bytes
        """Bound on a request body (an upload); larger gets 413 before it is all read."""
        self.max_upload_seconds = max_upload_seconds
        """Bound on an upload's audio, checked from its header (a WAV) or while decoding (400)."""
        self._api_keys = list(api_keys)
        self.decode_pool = InferencePool("speech-decode", max_workers=DECODE_WORKERS, max_pending=MAX_PENDING_DECODES)
        """Where uploads are decoded and resampled: off the event loop, bounded."""
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
            ],
            middleware=[Middleware(BearerKeys, keys=self._api_keys)],
        )

    def close(self) -> None:
        """Stop the decode pool (the engines are closed by whoever made them)."""
        self.decode_pool.close()

    async def healthz(self, request: Request) -> Response:
        pools = {"stt": _pending(self.stt), "tts": _pending(self.tts)}
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
        prompt = fields.get("prompt") or None
        if prompt is not None and len(prompt) > MAX_PROMPT_CHARS:
            return _error(400, f"prompt of {len(prompt)} characters: at most {MAX_PROMPT_CHARS}")
        response_format = fields.get("response_format", "json")
        if response_format not in ("json", "text", "verbose_json"):
            return _error(400, f"response_format {response_format!r}: use json, text or verbose_json")
        try:
            pcm = await self.decode_pool.run(decode_upload, data, self.max_upload_seconds)
        except InferenceOverloaded as exc:
            return _error(503, str(exc), "overloaded")
        except UploadRefused as exc:
            return _error(400, str(exc))
        del data
        try:
            transcript = await self.stt.transcribe(pcm, prompt)
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


def _pending(engine: object) -> int:
    return int(getattr(getattr(engine, "pool", None), "pending", 0))


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
