"""Whole voice calls for the e2e tests: real VAD, Whisper and Kokoro in a real server, the Twilio
simulator as the carrier, and the scripted (fake) OpenAI-compatible server as the model."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from agents.config import AgentConfig
from agents.engines.remote.openai_chat import OpenAIChatModel
from agents.port import AgentCatalog
from agents.testing.scripted_llm import ScriptedLlmServer
from agents.voice_agent import VoiceAgent
from db import Database, SafeQuery
from telephony.app import create_app
from telephony.audio.mulaw import TWILIO_SAMPLE_RATE, mulaw_to_pcm16
from telephony.cli.demo import agent_transcript
from telephony.pod import Pod
from telephony.server import BackgroundServer
from telephony.settings import Settings
from telephony.simulator import CallReport, EchoPath, Pause, Press, Say, SimulatedCall
from telephony.simulator.caller_audio import load_utterance
from telephony.voice import VoiceStack
from tests.support.metrics import streams_open
from tests.support.settings import AGENT_NUMBER, AUTH_TOKEN, make_settings
from tests.support.speech import SPEECH_DIR
from tools import ToolExecutor

VOICE_AGENT = "voice"


def utterance(name: str) -> Say:
    return Say(load_utterance(SPEECH_DIR / f"{name}.wav"), name)


def voiced_windows(say: Say, threshold: float = 500.0) -> list[int]:
    """Indices of the 10 ms windows of `say`'s audio with speech energy."""
    pcm = np.frombuffer(mulaw_to_pcm16(say.audio), dtype=np.int16).astype(np.float64)
    window = TWILIO_SAMPLE_RATE // 100
    levels = np.sqrt(np.mean(pcm[: pcm.size // window * window].reshape(-1, window) ** 2, axis=1))
    voiced = np.flatnonzero(levels > threshold).tolist()
    if not voiced:
        raise AssertionError("no speech in utterance")
    return voiced


def speech_onset_s(say: Say, threshold: float = 500.0) -> float:
    """Seconds from the start of `say`'s audio to the first 10 ms with speech energy."""
    return voiced_windows(say, threshold)[0] / 100


def speech_tail_s(say: Say, threshold: float = 500.0) -> float:
    """Seconds of `say`'s audio after its last 10 ms with speech energy (the synthesizer's padding)."""
    return len(say.audio) / TWILIO_SAMPLE_RATE - (voiced_windows(say, threshold)[-1] + 1) / 100


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]", " ", text.lower()).split()


@dataclass
class VoicePod:
    """A server with one voice agent slot, the shared engines, and the fake model behind them."""

    url: str
    llm: ScriptedLlmServer
    edge: Pod
    """The running pod, as its handlers reach it (opened by `create_app`'s lifespan)."""

    @property
    def settings(self) -> Settings:
        return self.edge.settings

    @property
    def stack(self) -> VoiceStack:
        assert self.edge.voice is not None
        return self.edge.voice.stack

    def use_agent(
        self, config: AgentConfig, tools: ToolExecutor | None = None, records: SafeQuery | None = None
    ) -> VoiceAgent:
        """Built as the pod builds its agents (its metrics observe the calls), in the agent slot;
        its callers are identified in `records` (default: the pod's database)."""
        assert self.edge.voice is not None
        agent = asyncio.run(self.edge.voice.build(config, tools, records=records))
        self.edge.agents.agents[VOICE_AGENT] = agent
        return agent

    def metric(self, name: str, **labels: str) -> float:
        """A sample of the pod's Prometheus registry (0 when never set)."""
        return self.edge.metrics.registry.get_sample_value(name, labels) or 0.0

    def place(
        self,
        *script: Say | Pause | Press,
        tail_s: float = 1.0,
        webhook_timeout_s: float = 15.0,
        echo: EchoPath | None = None,
    ) -> CallReport:
        """`echo`: the agent's audio comes back on the caller's track along this path."""
        call = SimulatedCall(
            self.url,
            AUTH_TOKEN,
            to=AGENT_NUMBER,
            script=list(script),
            tail_s=tail_s,
            webhook_timeout_s=webhook_timeout_s,
            echo=echo,
        )
        return asyncio.run(call.run())

    @contextmanager
    def scripted_call(self) -> Iterator[None]:
        """One test's calls: they see only their own model requests, and must use every step they
        scripted (the rest is dropped either way: one test's failure is not the next one's)."""
        self.llm.requests.clear()
        try:
            yield
        finally:
            self.wait_idle()
            unused = self.llm.discard_steps()
        assert unused == 0, "the scripted model was given steps the call never used"

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Until the server has no call running (session, listener and all) and its call records
        are written (the pod writes them in the background as calls go)."""
        edge = self.edge
        for _ in range(int(timeout / 0.05)):
            written = edge.call_store is None or edge.call_store.writer.entries == 0
            if edge.calls.active == 0 and streams_open(edge.metrics) == 0 and written:
                return
            time.sleep(0.05)
        raise AssertionError(f"call still active: {edge.calls.active} calls, {streams_open(edge.metrics):g} streams")

    def assert_nothing_running(self, timeout: float = 10.0) -> None:
        """No call, no inference job and no model request is left once a call has ended."""
        self.wait_idle(timeout)
        engines = {"stt": self.stack.engines.stt, "tts": self.stack.tts}
        for _ in range(int(timeout / 0.05)):
            busy = {name: pending for name, engine in engines.items() if (pending := _pending(engine))}
            open_requests = [r for r in self.llm.requests if r.outcome is None]
            if not busy and not open_requests:
                return
            time.sleep(0.05)
        raise AssertionError(f"still running after the call: pools {busy}, model requests {open_requests}")

    def agent_words(self, report: CallReport, after_s: float = 0.0, until_s: float | None = None) -> list[str]:
        """What Whisper hears in the agent's recorded audio from `after_s` (call time) on."""
        return words(agent_transcript(report, self.stack.engines.stt, after_s, until_s))


def _pending(engine: object) -> int:
    """Inference jobs queued or running (in-process), or requests in flight (remote)."""
    pool = getattr(engine, "pool", None)
    if pool is not None:
        return int(pool.pending)
    client = getattr(engine, "client", None)
    return int(client.in_flight) if client is not None else 0


@contextmanager
def voice_pod(database: Database | None = None, **settings_overrides: object) -> Iterator[VoicePod]:
    """A pod whose engines (loaded and warmed as it starts) talk to the scripted model; `database`
    (open, closed by the caller) gives it call records and stored agents."""
    settings = make_settings(numbers={AGENT_NUMBER: VOICE_AGENT}, **settings_overrides)
    with ScriptedLlmServer() as llm:
        chat = OpenAIChatModel(
            llm.base_url, "scripted", first_token_timeout_s=1.5, idle_timeout_s=2.0, request_timeout_s=10.0
        )
        app = create_app(settings, chat=chat, agents=AgentCatalog({}), database=database)
        with BackgroundServer(app, settings) as url:
            yield VoicePod(url, llm, app.state.pod)
