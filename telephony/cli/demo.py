"""`switchboard demo`: a whole voice call on one machine, nothing outside it needed.

A local server runs a voice agent on the embedded default engines (Silero VAD, Whisper tiny.en,
llama.cpp with SmolLM2, Kokoro), and the Twilio simulator calls it with caller speech that
Kokoro makes offline in another voice. The demo prints the call's timeline, what each side said,
per-turn latency, and what Whisper hears in the recorded agent audio.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import asdict

import numpy as np
import soxr

from agents.config import AgentConfig
from agents.conversation.record import CallRecord
from agents.engines.protocols import SpeechToText, TextToSpeech, VoicedTextToSpeech
from agents.voice_agent import VoiceAgent
from telephony.app import create_app
from telephony.audio.mulaw import TWILIO_SAMPLE_RATE, pcm16_to_mulaw
from telephony.audio.resamplers import StreamResampler
from telephony.pod import Pod
from telephony.server import BackgroundServer
from telephony.settings import Settings
from telephony.simulator import CallReport, Listen, Pause, Say, SimulatedCall, Step

DEMO_NUMBER = "+15550100"
CALLER_VOICE = "jf_tebukuro"
"""A different voice from the agent's, so the two sides are easy to tell apart."""
CALLER_LINES = ("Hi, I would like to know what time you open tomorrow.", "Thank you very much.")
DEMO_AGENT = AgentConfig(
    id="assistant",
    system_prompt=(
        "You are the phone assistant of Switchboard Coffee. We open at eight in the morning and close at six "
        "in the evening, every day. Answer in one short sentence."
    ),
    greeting="Hello, this is Switchboard Coffee. How can I help you?",
    allow_hang_up=False,
    allow_transfer=False,
)


def caller_says(tts: VoicedTextToSpeech, text: str) -> Say:
    """Caller speech made offline: Kokoro in the caller's voice, as 8 kHz mu-law (a phone line)."""
    caller = tts.with_voice(CALLER_VOICE)
    pcm = b"".join(asyncio.run(_collect(caller, text)))
    samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float32) / 32768
    narrow = soxr.resample(samples, caller.sample_rate, TWILIO_SAMPLE_RATE, "VHQ")
    return Say(pcm16_to_mulaw((np.clip(narrow, -1, 1) * 32767).astype(np.int16).tobytes()), text)


async def _collect(tts: TextToSpeech, text: str) -> list[bytes]:
    return [chunk async for chunk in tts.synthesize(text)]


def agent_transcript(report: CallReport, stt: SpeechToText, after_s: float = 0.0, until_s: float | None = None) -> str:
    """What Whisper hears on the agent's side of the recording from `after_s` (call time) on,
    up to `until_s`: 8 kHz mu-law, as the caller heard it."""
    origin = report.stream_started_at or 0.0
    start = max(0, int((after_s - origin) * TWILIO_SAMPLE_RATE))
    end = None if until_s is None else max(start, int((until_s - origin) * TWILIO_SAMPLE_RATE))
    resampler = StreamResampler(TWILIO_SAMPLE_RATE, stt.sample_rate, "HQ")
    pcm = resampler.process(report.agent_pcm()[start:end].tobytes()) + resampler.flush()
    return asyncio.run(stt.transcribe(pcm)).text


def render_record(record: CallRecord) -> str:
    lines = ["conversation (as the server recorded it):"]
    lines += [f"  {line.at_s:7.2f}s  {line.role:<6} {line.text}" for line in record.transcript]
    lines.append("per-turn latency (ms):")
    for turn in record.turns:
        figures = {k: v for k, v in asdict(turn).items() if k.endswith("_ms") and v is not None}
        lines.append(f"  turn {turn.turn}: " + ", ".join(f"{k[:-3]} {v:.0f}" for k, v in figures.items()))
    return "\n".join(lines)


DEMO_MEMORY_BYTES = 4 << 30
"""The guard's budget in the demo (where no cgroup sets one): this one process is the pod, the
embedded model and the caller, so a pod's 1 GiB would have it refuse its own call."""


def run(record_path: str | None, llm_url: str | None = None, llm_model: str | None = None) -> int:
    token = secrets.token_hex(16)
    backend = {"llm_backend": "openai", "llm_base_url": llm_url} if llm_url else {"llm_backend": "embedded"}
    if llm_model:
        backend["llm_model"] = llm_model
    settings = Settings(
        twilio_auth_token=token,
        numbers={DEMO_NUMBER: DEMO_AGENT.id},
        log_level="WARNING",
        llm_max_tokens=60,
        memory_limit_bytes=DEMO_MEMORY_BYTES,
        **backend,  # type: ignore[arg-type]
    )
    started = time.perf_counter()
    print(
        "demo: loading the embedded engines (Silero VAD, Whisper tiny.en, Kokoro, "
        + (f"model at {llm_url})" if llm_url else "llama.cpp SmolLM2-135M)")
    )
    app = create_app(settings, agent_configs=[DEMO_AGENT])
    with BackgroundServer(app, settings) as url:  # the pod loads and warms the engines as it starts
        pod: Pod = app.state.pod
        assert pod.voice is not None
        stack = pod.voice.stack
        agent = pod.agents.get(DEMO_AGENT.id)
        assert isinstance(agent, VoiceAgent)
        script: list[Step] = [Pause(3.5)]  # the greeting plays first
        for line in CALLER_LINES:  # the caller waits for each answer, however long the machine takes
            script += [caller_says(stack.tts, line), Listen(max_seconds=45.0, quiet_seconds=1.5)]
        print(
            f"demo: ready in {time.perf_counter() - started:.1f} s; placing a simulated Twilio call to {DEMO_NUMBER}\n"
        )
        report = asyncio.run(SimulatedCall(url, token, to=DEMO_NUMBER, script=script, tail_s=1.0).run())
        for _ in range(100):  # the record is written as the server ends the session
            if agent.records:
                break
            time.sleep(0.05)
        print(report.render())
        if agent.records:
            print(render_record(agent.records[-1]))
        print(f"whisper hears the agent say: {agent_transcript(report, stack.engines.stt)!r}")
        if record_path:
            report.write_wav(record_path)
            print(f"recording: {record_path} ({report.recording_seconds:.2f} s, caller left, agent right)")
    answered = bool(agent.records and agent.records[-1].turns and report.turn_latencies())
    return 0 if report.webhook_status == 200 and answered else 1
