"""A Pipecat 1.14 phone bot with Switchboard's models, for `vs_pipecat.py` (never imported by the project).

Why: a peer comparison is only fair when both systems run the same models on the same calls. This
bot runs in its own virtual environment (made by `vs_pipecat.py`, since Pipecat pins its own
dependencies) and serves Twilio's side of a call the way Pipecat's Twilio examples do: a TwiML
webhook answers `<Connect><Stream>`, and the stream is a FastAPI WebSocket behind Pipecat's
`TwilioFrameSerializer` (auto hang-up off: no Twilio REST calls). Our simulator places the calls.

Models, loaded once per process and warmed before the bot reports ready:
- STT: faster-whisper with the CTranslate2 files we pass (tiny.en), int8, our thread count, and
  beam 1 (greedy) like ours; Pipecat's `WhisperSTTService` otherwise unchanged.
- TTS: Kokoro int8 ONNX from the files we pass (voice `jf_nezumi`), one session with our thread
  count, shared by every call's `KokoroTTSService`.
- VAD: Pipecat's Silero; Smart Turn v3.2: Pipecat's `LocalSmartTurnAnalyzerV3` on the file we pass
  (the one our pod would load, sha256-checked), else its bundled copy. Their ONNX sessions are
  made once and shared (their per-call state lives outside them).
- LLM: `OpenAILLMService` pointed at the scripted OpenAI-compatible server we pass.

Turn configurations, chosen per call by the webhook path (`/voice/<config>`):
- `silence`: Silero stop 0.6 s and no turn model, our silence rule: the turn ends when the VAD has
  heard 0.6 s of silence and Whisper's transcript is in (`SpeechTimeoutUserTurnStopStrategy` with
  no extra wait).
- `smart_turn`: Pipecat's recommended setup, Silero stop 0.2 s + Smart Turn v3.2 (its default
  stop strategy; 3 s fallback when the model says "incomplete").

    <pipecat venv>/bin/python benchmarks/pipecat_bot.py --port 8765 --whisper DIR --kokoro-model F \
        --kokoro-voices F --llm-url http://127.0.0.1:PORT/v1 [--threads 2] [--voice jf_nezumi]
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import numpy as np
import onnxruntime
import uvicorn
from fastapi import FastAPI, WebSocket
from fastapi.responses import PlainTextResponse, Response
from faster_whisper import WhisperModel
from kokoro_onnx import Kokoro

CONFIGS = ("silence", "smart_turn")
SILENCE_STOP_S = 0.6
"""Our end-of-turn silence (SWITCHBOARD_VAD_END_OF_TURN_MS 600)."""
SMART_TURN_VAD_STOP_S = 0.2
"""Pipecat's recommended Silero stop with Smart Turn (its VAD_STOP_SECS default)."""
GREETING = "Hello, how can I help?"
SYSTEM_PROMPT = "You are the phone assistant of an online shop. Answer in one short sentence."
MAX_START_MESSAGES = 5
"""Twilio messages read before `start` (normally just `connected`); more is a broken caller."""

_real_session = onnxruntime.InferenceSession
_sessions: dict[str, Any] = {}


def shared_session(path: Any, *args: Any, **kwargs: Any) -> Any:
    """`onnxruntime.InferenceSession`, made once per model file: Pipecat builds Silero and Smart Turn
    sessions per call; sharing them is what "models loaded once per process" means here."""
    key = str(path)
    if key not in _sessions:
        _sessions[key] = _real_session(path, *args, **kwargs)
    return _sessions[key]


class GreedyWhisper:
    """A `WhisperModel` whose `transcribe` always decodes with beam 1, like Switchboard's."""

    def __init__(self, model: WhisperModel) -> None:
        self._model = model

    def transcribe(self, audio: Any, **kwargs: Any) -> Any:
        return self._model.transcribe(audio, beam_size=1, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)


def load_models(args: argparse.Namespace) -> tuple[GreedyWhisper, Kokoro]:
    """Load and warm Whisper and Kokoro once (blocking)."""
    whisper = GreedyWhisper(WhisperModel(args.whisper, device="cpu", compute_type="int8", cpu_threads=args.threads))
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    kokoro = Kokoro.from_session(
        _real_session(args.kokoro_model, options, providers=["CPUExecutionProvider"]), args.kokoro_voices
    )
    noise = (np.random.default_rng(0).standard_normal(16000) * 0.01).astype(np.float32)
    list(whisper.transcribe(noise, language="en")[0])
    kokoro.create(GREETING, voice=args.voice, lang="en-us")
    return whisper, kokoro


def twiml(host: str, config: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Connect>'
        f'<Stream url="ws://{host}/ws/{config}"/></Connect></Response>'
    )


def build_app(args: argparse.Namespace, whisper: GreedyWhisper, kokoro: Kokoro) -> FastAPI:
    # Pipecat is imported here, after the sessions are shared, so every Silero/Smart Turn session is one.
    onnxruntime.InferenceSession = shared_session  # type: ignore[misc]
    import pipecat.services.kokoro.tts as kokoro_tts
    from pipecat.audio.turn.smart_turn.local_smart_turn_v3 import LocalSmartTurnAnalyzerV3
    from pipecat.audio.vad.silero import SileroVADAnalyzer
    from pipecat.audio.vad.vad_analyzer import VADParams
    from pipecat.frames.frames import TTSSpeakFrame
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.pipeline.task import PipelineParams
    from pipecat.pipeline.worker import PipelineWorker
    from pipecat.processors.aggregators.llm_context import LLMContext
    from pipecat.processors.aggregators.llm_response_universal import (
        LLMContextAggregatorPair,
        LLMUserAggregatorParams,
    )
    from pipecat.serializers.twilio import TwilioFrameSerializer
    from pipecat.services.openai.llm import OpenAILLMService
    from pipecat.services.whisper.stt import WhisperSTTService
    from pipecat.transcriptions.language import Language
    from pipecat.transports.websocket.fastapi import FastAPIWebsocketParams, FastAPIWebsocketTransport
    from pipecat.turns.user_stop import SpeechTimeoutUserTurnStopStrategy, TurnAnalyzerUserTurnStopStrategy
    from pipecat.turns.user_turn_strategies import UserTurnStrategies
    from pipecat.workers.runner import WorkerRunner

    kokoro_tts.Kokoro = lambda *_args, **_kwargs: kokoro  # type: ignore[attr-defined,misc]

    class SharedWhisperSTTService(WhisperSTTService):
        """Pipecat's Whisper service on the process's one model."""

        def _load(self) -> None:
            self._model = whisper  # type: ignore[assignment]

    def turn_setup(config: str) -> LLMUserAggregatorParams:
        if config == "silence":
            vad = SileroVADAnalyzer(params=VADParams(stop_secs=SILENCE_STOP_S))
            stop: list[Any] = [SpeechTimeoutUserTurnStopStrategy(user_speech_timeout=0.0)]
        else:
            vad = SileroVADAnalyzer(params=VADParams(stop_secs=SMART_TURN_VAD_STOP_S))
            analyzer = LocalSmartTurnAnalyzerV3(smart_turn_model_path=args.smart_turn)
            stop = [TurnAnalyzerUserTurnStopStrategy(turn_analyzer=analyzer)]
        return LLMUserAggregatorParams(vad_analyzer=vad, user_turn_strategies=UserTurnStrategies(stop=stop))

    app = FastAPI()

    @app.get("/ready")
    async def ready() -> PlainTextResponse:
        return PlainTextResponse("ok")

    @app.post("/voice/{config}")
    async def voice(config: str) -> Response:
        if config not in CONFIGS:
            return PlainTextResponse(f"unknown config {config!r}", status_code=404)
        return Response(twiml(f"127.0.0.1:{args.port}", config), media_type="application/xml")

    @app.websocket("/ws/{config}")
    async def stream(websocket: WebSocket, config: str) -> None:
        await websocket.accept()
        start: dict[str, Any] | None = None
        for _ in range(MAX_START_MESSAGES):
            message = await websocket.receive_json()
            if message.get("event") == "start":
                start = message["start"]
                break
        if start is None or config not in CONFIGS:
            await websocket.close(code=1008)
            return
        serializer = TwilioFrameSerializer(
            stream_sid=start["streamSid"],
            call_sid=start.get("callSid"),
            account_sid="AC" + "0" * 32,
            auth_token="unused",
            params=TwilioFrameSerializer.InputParams(auto_hang_up=False),
        )
        transport = FastAPIWebsocketTransport(
            websocket=websocket,
            params=FastAPIWebsocketParams(
                audio_in_enabled=True, audio_out_enabled=True, add_wav_header=False, serializer=serializer
            ),
        )
        stt = SharedWhisperSTTService(settings=WhisperSTTService.Settings(model=args.whisper, language=Language.EN))
        llm = OpenAILLMService(
            api_key="unused",
            base_url=args.llm_url,
            settings=OpenAILLMService.Settings(model="scripted", system_instruction=SYSTEM_PROMPT),
        )
        tts = kokoro_tts.KokoroTTSService(
            model_path=args.kokoro_model,
            voices_path=args.kokoro_voices,
            settings=kokoro_tts.KokoroTTSService.Settings(voice=args.voice),
        )
        context = LLMContext()
        aggregators = LLMContextAggregatorPair(context, user_params=turn_setup(config))
        pipeline = Pipeline(
            [transport.input(), stt, aggregators.user(), llm, tts, transport.output(), aggregators.assistant()]
        )
        worker = PipelineWorker(pipeline, params=PipelineParams(audio_in_sample_rate=16000, audio_out_sample_rate=8000))

        @transport.event_handler("on_client_connected")
        async def greet(_transport: Any, _client: Any) -> None:
            await worker.queue_frames([TTSSpeakFrame(GREETING)])

        @transport.event_handler("on_client_disconnected")
        async def hang_up(_transport: Any, _client: Any) -> None:
            await worker.cancel()

        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(worker)
        await runner.run()

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--whisper", required=True, help="CTranslate2 Whisper folder")
    parser.add_argument("--kokoro-model", required=True)
    parser.add_argument("--kokoro-voices", required=True)
    parser.add_argument("--llm-url", required=True, help="OpenAI-compatible base URL, ending in /v1")
    parser.add_argument("--smart-turn", default=None, help="Smart Turn ONNX file (default: Pipecat's bundled copy)")
    parser.add_argument("--voice", default="jf_nezumi")
    parser.add_argument("--threads", type=int, default=2, help="threads for Whisper and Kokoro (ours: 2 each)")
    args = parser.parse_args()
    whisper, kokoro = load_models(args)
    app = build_app(args, whisper, kokoro)
    asyncio.run(uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=args.port, log_level="warning")).serve())


if __name__ == "__main__":
    main()
