"""`switchboard speech`: the speech service (faster-whisper and Kokoro behind the OpenAI audio
API, `agents.speech_service`) built from the same settings sections as the call pod's in-process
engines: it loads only those (`SpeechServiceSettings`), so it needs no Twilio token.

It runs where the models belong (GPU nodes in production; a process beside the pod here), so call
pods set `SWITCHBOARD_STT_BACKEND=remote` and `SWITCHBOARD_TTS_BACKEND=remote` and load neither.
It refuses to start without keys to check (`SWITCHBOARD_SPEECH_SERVER_API_KEYS`) unless told it
may serve anyone (`SWITCHBOARD_SPEECH_ALLOW_UNAUTHENTICATED`), before any model is loaded.
"""

from __future__ import annotations

import asyncio
import logging

import uvicorn
from starlette.applications import Starlette

from agents.engines.local.kokoro import KokoroTextToSpeech
from agents.engines.local.pool import InferencePool
from agents.engines.local.whisper import WhisperSpeechToText
from agents.speech_service import MIN_KEY_CHARS, SpeechService
from telephony.settings import SpeechServiceSettings
from telephony.settings.secret_checks import PLACEHOLDER_MARKERS

log = logging.getLogger("switchboard.speech")


class UnsafeSpeechSettings(Exception):
    """The settings would open the service to anyone; the message says what to set."""


def accepted_keys(settings: SpeechServiceSettings) -> list[str]:
    """The keys the service checks, refused when none (unless allowed), short or placeholders."""
    keys = settings.speech_server_keys()
    if not keys and not settings.speech_allow_unauthenticated:
        raise UnsafeSpeechSettings(
            "the speech service has no API keys: set SWITCHBOARD_SPEECH_SERVER_API_KEYS to the key the pods send "
            "(their SWITCHBOARD_SPEECH_API_KEY; comma-separated for a rotation), or "
            "SWITCHBOARD_SPEECH_ALLOW_UNAUTHENTICATED=true on a machine no one else reaches"
        )
    for number, key in enumerate(keys, 1):
        if len(key) < MIN_KEY_CHARS or any(word in key.lower() for word in PLACEHOLDER_MARKERS):
            raise UnsafeSpeechSettings(
                f"SWITCHBOARD_SPEECH_SERVER_API_KEYS: key {number} is a placeholder or shorter than {MIN_KEY_CHARS}"
                " characters; make one with `python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
            )
    return keys


def load_speech_service(settings: SpeechServiceSettings) -> SpeechService:
    """Load Whisper and Kokoro (blocking: seconds) with the pod's model settings; the pools'
    bounds (`stt_max_pending`, `tts_max_pending`) are the service's bounds on concurrent jobs.
    Unsafe key settings are refused (`UnsafeSpeechSettings`) before any model loads."""
    keys = accepted_keys(settings)
    stt = WhisperSpeechToText(
        settings.stt_model,
        device="auto",
        cpu_threads=settings.stt_threads,
        beam_size=settings.stt_beam_size,
        min_window_s=settings.stt_min_window_seconds,
        pool=InferencePool("stt", max_workers=1, max_pending=settings.stt_max_pending),
        max_audio_ms=max(60_000, settings.max_utterance_ms + 2000),
    )
    tts = KokoroTextToSpeech.load(
        settings.tts_model,
        str(settings.tts_voices) if settings.tts_voices else None,
        voice=settings.tts_voice,
        speed=settings.tts_speed,
        threads=settings.tts_threads,
        max_pending=settings.tts_max_pending,
        max_piece_chars=settings.tts_max_piece_chars,
    )
    return SpeechService(
        stt,
        tts,
        voices=tts.voices,
        max_request_bytes=settings.speech_max_request_bytes,
        api_keys=keys,
        allow_unauthenticated=settings.speech_allow_unauthenticated,
        max_upload_seconds=settings.speech_max_upload_seconds,
    )


async def warm_up(service: SpeechService) -> None:
    await service.stt.warm_up()
    await service.tts.warm_up()


def serve_speech(settings: SpeechServiceSettings) -> None:
    """Load, warm up, then serve until SIGTERM (uvicorn finishes the requests in hand)."""
    service = load_speech_service(settings)
    asyncio.run(warm_up(service))
    app: Starlette = service.app()
    if not settings.speech_server_keys():
        log.warning("speech service serving WITHOUT authentication (SWITCHBOARD_SPEECH_ALLOW_UNAUTHENTICATED)")
    log.info("speech service ready", extra={"host": settings.speech_host, "port": settings.speech_port})
    config = uvicorn.Config(
        app, host=settings.speech_host, port=settings.speech_port, log_config=None, access_log=False, lifespan="off"
    )
    try:
        uvicorn.Server(config).run()
    finally:
        service.close()
        service.stt.close()
        service.tts.close()
