"""Composing voice agents: the pod's shared engines, built once from settings, and one
`VoiceAgent` per agent config on top of them."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import AnyHttpUrl, TypeAdapter, ValidationError

from agents.config import AgentConfig
from agents.conversation.listener import ListenerConfig, TurnListener
from agents.conversation.phrases import PhraseCache
from agents.conversation.record import CallObserver, CallStore
from agents.conversation.reply import agent_tool_schemas
from agents.engines.local.line_echo_canceller import LineEchoCanceller
from agents.engines.local.pool import InferencePool
from agents.engines.local.silero import SileroVoiceActivity, VadConfig
from agents.engines.protocols import ChatModel, EndOfTurnModel, Engines, SpeechToText, VoicedTextToSpeech
from agents.engines.remote.speech_client import SpeechClient
from agents.voice_agent import VoiceAgent
from db import SafeQuery
from telephony.settings import Settings
from tools import ToolExecutor

log = logging.getLogger("switchboard.voice")

MAX_AGENTS_FILE_BYTES = 1024 * 1024
"""Bound on the agents file read at start-up."""


class AgentsFileError(Exception):
    """The agents file is missing, too big, not JSON, or an agent in it is invalid."""


def read_agents_file(path: Path) -> list[AgentConfig]:
    """Agent configs from a JSON list, with an error that names the file and the field."""
    try:
        if path.stat().st_size > MAX_AGENTS_FILE_BYTES:
            raise AgentsFileError(f"{path}: larger than {MAX_AGENTS_FILE_BYTES} bytes")
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AgentsFileError(f"{path}: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AgentsFileError(f"{path}: not valid JSON: {exc}") from None
    try:
        configs = TypeAdapter(list[AgentConfig]).validate_python(raw)
    except ValidationError as exc:
        raise AgentsFileError(f"{path}: {exc}") from None
    ids = [c.id for c in configs]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise AgentsFileError(f"{path}: agent ids appear more than once: {', '.join(duplicates)}")
    return configs


def load_chat_model(settings: Settings) -> ChatModel:
    if settings.llm_backend == "embedded":
        from agents.engines.local.llama import LlamaCppChatModel  # optional extra: import only when chosen

        return LlamaCppChatModel(
            settings.llm_embedded_model,
            n_threads=settings.llm_embedded_threads,
            max_tokens=settings.llm_max_tokens,
            temperature=settings.llm_temperature,
        )
    from agents.engines.remote.openai_chat import OpenAIChatModel

    return OpenAIChatModel(
        str(settings.llm_base_url).rstrip("/"),
        settings.llm_model,
        settings.llm_api_key.get_secret_value(),
        temperature=settings.llm_temperature,
        max_tokens=settings.llm_max_tokens,
        first_token_timeout_s=settings.llm_first_token_timeout_seconds,
        request_timeout_s=settings.llm_timeout_seconds,
    )


@dataclass
class VoiceStack:
    """The engines one pod shares, and how each call's listener is made."""

    engines: Engines
    vad_config: VadConfig
    listener_config: ListenerConfig
    tts: VoicedTextToSpeech
    closers: list[Callable[[], object]] = field(default_factory=list)
    async_closers: list[Callable[[], Awaitable[object]]] = field(default_factory=list)
    """Remote engines' connection pools (speech and chat), closed on the event loop that used them."""
    shedding: Callable[[], bool] | None = None
    """Whether the pod sheds load now (the memory guard); listeners then cut long utterances."""
    end_of_turn: EndOfTurnModel | None = None
    """The shared end-of-turn model (Smart Turn) when `turn_detection` is `smart_turn`."""

    def listener(self) -> TurnListener:
        return TurnListener(
            self.engines.vad.detector(),
            self.engines.stt,
            self.listener_config,
            self.shedding,
            end_of_turn_model=self.end_of_turn,
        )

    def close(self) -> None:
        for close in self.closers:
            try:
                close()
            except Exception:
                log.exception("closing an engine failed")

    async def aclose(self) -> None:
        self.close()
        for aclose in self.async_closers:
            try:
                await aclose()
            except Exception:
                log.exception("closing a remote engine's client failed")


def speech_client(settings: Settings, url: AnyHttpUrl | None, name: str, max_in_flight: int) -> SpeechClient:
    """A pooled client for one remote speech endpoint, bounded by the settings."""
    key = settings.speech_api_key
    return SpeechClient(
        str(url or settings.speech_url),
        name=name,
        api_key=key.get_secret_value() if key else None,
        timeout_s=settings.speech_timeout_seconds,
        connect_timeout_s=settings.speech_connect_timeout_seconds,
        retries=settings.speech_retries,
        max_in_flight=max_in_flight,
    )


def load_stt(settings: Settings) -> SpeechToText:
    """Whisper in-process, or a client of the transcription API (Whisper then never imported)."""
    if settings.stt_backend == "remote":
        from agents.engines.remote.stt import RemoteSpeechToText

        client = speech_client(settings, settings.stt_url, "stt", settings.stt_max_pending)
        return RemoteSpeechToText(client, settings.stt_remote_model, max_audio_ms=settings.max_utterance_ms + 2000)
    from agents.engines.local.whisper import WhisperSpeechToText

    return WhisperSpeechToText(
        settings.stt_model,
        cpu_threads=settings.stt_threads,
        beam_size=settings.stt_beam_size,
        min_window_s=settings.stt_min_window_seconds,
        pool=InferencePool("stt", max_workers=1, max_pending=settings.stt_max_pending),
    )


def load_tts(settings: Settings) -> VoicedTextToSpeech:
    """Kokoro in-process, or a client of the speech API (Kokoro then never imported)."""
    if settings.tts_backend == "remote":
        from agents.engines.remote.tts import RemoteTextToSpeech

        client = speech_client(settings, settings.tts_url, "tts", settings.tts_max_pending)
        return RemoteTextToSpeech(client, settings.tts_remote_model, settings.tts_voice, speed=settings.tts_speed)
    from agents.engines.local.kokoro import KokoroTextToSpeech

    return KokoroTextToSpeech.load(
        settings.tts_model,
        str(settings.tts_voices) if settings.tts_voices else None,
        voice=settings.tts_voice,
        speed=settings.tts_speed,
        threads=settings.tts_threads,
        max_pending=settings.tts_max_pending,
        max_piece_chars=settings.tts_max_piece_chars,
    )


def pod_vad_config(settings: Settings) -> VadConfig:
    """The voice activity detector the pod's calls use (benchmarks probe the same one)."""
    judged = settings.turn_detection != "silence"
    return VadConfig(
        threshold=settings.vad_threshold,
        min_speech_ms=settings.vad_min_speech_ms,
        onset_ms=settings.vad_barge_in_onset_ms or None,
        # words, smart_turn: the listener ends turns early; the detector's silence is only the long bound
        end_of_turn_silence_ms=settings.turn_smart_max_wait_ms if judged else settings.vad_end_of_turn_ms,
    )


def load_voice_stack(settings: Settings, chat: ChatModel | None = None) -> VoiceStack:
    """Load every in-process model (blocking, seconds: run it off the event loop), make the
    remote engines' clients, and warm nothing yet."""
    smart = settings.turn_detection == "smart_turn"
    vad_config = pod_vad_config(settings)
    vad = SileroVoiceActivity(vad_config)
    stt = load_stt(settings)
    tts = load_tts(settings)
    chat = chat or load_chat_model(settings)
    listener_config = ListenerConfig(
        max_utterance_ms=settings.max_utterance_ms,
        shed_utterance_ms=settings.shed_utterance_ms,
        early_transcription=settings.stt_early_transcription,
        end_of_turn=settings.turn_detection,
        smart_turn_silence_ms=settings.turn_smart_silence_ms,
        smart_turn_max_wait_ms=settings.turn_smart_max_wait_ms,
        smart_turn_threshold=settings.turn_smart_threshold,
        smart_turn_model_weight=settings.turn_smart_model_weight,
        resume_min_speech_ms=settings.vad_min_speech_ms,
    )
    end_of_turn = None
    if smart:
        from agents.engines.local.smart_turn import SmartTurnModel  # onnxruntime only; loaded when chosen

        end_of_turn = SmartTurnModel()
    closers: list[Callable[[], object]] = []
    async_closers: list[Callable[[], Awaitable[object]]] = []
    for engine in (stt, tts):
        if hasattr(engine, "aclose"):  # remote: a connection pool
            async_closers.append(engine.aclose)
        else:
            closers.append(engine.close)  # type: ignore[union-attr]
    if hasattr(chat, "aclose"):  # remote: the OpenAI client's pool; left open, its finaliser schedules
        async_closers.append(chat.aclose)  # a close on whatever loop runs then ("Event loop is closed")
    elif hasattr(chat, "close"):
        closers.append(chat.close)
    if end_of_turn is not None:
        closers.append(end_of_turn.close)
    engines = Engines(vad, stt, chat, tts, echo=LineEchoCanceller)
    return VoiceStack(engines, vad_config, listener_config, tts, closers, async_closers, end_of_turn=end_of_turn)


async def warm_up_agent(stack: VoiceStack, config: AgentConfig, tools: ToolExecutor | None, settings: Settings) -> None:
    """Pre-fill an in-process model with this agent's system prompt and tool list, exactly as its
    calls send them: on the CPU a tool list costs seconds of prefill (8 s for the demo's Qwen), which
    the first caller would otherwise wait through. One agent only: llama.cpp caches one prompt."""
    chat_warm_up = getattr(stack.engines.chat, "warm_up", None)
    if chat_warm_up is None:
        return
    transfer_number = config.transfer_number or settings.transfer_number
    await chat_warm_up(config.system_prompt, agent_tool_schemas(config, tools, transfer_number))


async def warm_up(stack: VoiceStack) -> None:
    """One small inference per in-process engine, so the first caller does not pay the first-run
    cost (remote engines warm themselves)."""
    stt_warm_up = getattr(stack.engines.stt, "warm_up", None)
    if stt_warm_up is not None:
        await stt_warm_up()
    await stack.tts.warm_up()
    turn_warm_up = getattr(stack.end_of_turn, "warm_up", None)
    if turn_warm_up is not None:
        await turn_warm_up()
    chat_warm_up = getattr(stack.engines.chat, "warm_up", None)  # in-process models only
    if chat_warm_up is not None:
        await chat_warm_up()


async def build_voice_agent(
    config: AgentConfig,
    stack: VoiceStack,
    settings: Settings,
    tools: ToolExecutor | None = None,
    store: CallStore | None = None,
    observer: CallObserver | None = None,
    version: int | None = None,
    records: SafeQuery | None = None,
) -> VoiceAgent:
    """A ready agent: its voice's fixed lines rendered, so its greeting plays at once. `records`:
    the business database its callers are identified in."""
    tts = stack.tts.with_voice(config.voice) if config.voice else stack.tts
    engines = Engines(stack.engines.vad, stack.engines.stt, stack.engines.chat, tts, stack.engines.echo)
    agent = VoiceAgent(
        config,
        engines,
        PhraseCache(tts, max_learned_bytes=settings.tts_opener_cache_bytes),
        stack.listener,
        tools=tools,
        transfer_number=settings.transfer_number,
        store=store,
        observer=observer,
        version=version,
        records=records,
        speculate=settings.speculative_replies,
    )
    await agent.prepare()
    return agent
