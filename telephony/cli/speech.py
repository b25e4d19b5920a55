"""`switchboard speech`: the speech service (faster-whisper and Kokoro behind the OpenAI audio
API, `agents.speech_service`) built from the same settings sections as the call pod's in-process
engines: it loads only those (`SpeechServiceSettings`), so it needs no Twilio token.

It runs where the models belong (GPU nodes in production; a process beside the pod here), so call
pods set `SWITCHBOARD_STT_BACKEND=remote` and `SWITCHBOARD_TTS_BACKEND=remote` and load neither.
"""

from __future__ import annotations

import asyncio
import logging

import uvicorn
from starlette.applications import Starlette

from agents.engines.local.kokoro import KokoroTextToSpeech
from agents.engines.local.pool import InferencePool
from agents.engines.local.whisper import WhisperSpeechToText
from agents.speech_service import SpeechService
from telephony.settings import SpeechServiceSettings

log = logging.getLogger("switchboard.speech")


def load_speech_service(settings: SpeechServiceSettings) -> SpeechService:
    """Load Whisper and Kokoro (blocking: seconds) with the pod's model settings; the pools'
    bounds (`stt_max_pending`, `tts_max_pending`) are the service's bounds on concurrent jobs."""
    stt = WhisperSpeechToText(
        settings.stt_model,
        device="auto",
        cpu_threads=settings.stt_threads,
        beam_size=settings.stt_beam_size,
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
    return SpeechService(stt, tts, voices=tts.voices, max_request_bytes=settings.speech_max_request_bytes)


async def warm_up(service: SpeechService) -> None:
    await service.stt.warm_up()
    await service.tts.warm_up()


def serve_speech(settings: SpeechServiceSettings) -> None:
    """Load, warm up, then serve until SIGTERM (uvicorn finishes the requests in hand)."""
    service = load_speech_service(settings)
    asyncio.run(warm_up(service))
    app: Starlette = service.app()
    log.info("speech service ready", extra={"host": settings.speech_host, "port": settings.speech_port})
    config = uvicorn.Config(
        app, host=settings.speech_host, port=settings.speech_port, log_config=None, access_log=False, lifespan="off"
    )
    try:
        uvicorn.Server(config).run()
    finally:
        service.stt.close()
        service.tts.close()
