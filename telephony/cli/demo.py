"""`switchboard demo`: a whole voice call on one machine, nothing outside it needed.

A local server runs a shop's voice agent on the embedded engines (Silero VAD, Whisper tiny.en, llama.cpp
with Qwen2.5-Coder-1.5B when installed, else SmolLM2; Kokoro) and the demo data in the in-memory
database, with declared order tools scoped to the caller the server identified by caller ID. The
Twilio simulator calls it from customer C-1001's phone with caller speech that Kokoro makes offline
in another voice. The demo prints the call's timeline, what each side said, per-turn latency, the
tool audit and what Whisper hears in the recorded agent audio.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from dataclasses import asdict
from typing import Any

import numpy as np
import soxr

from agents.config import AgentConfig
from agents.conversation.record import CallRecord
from agents.engines.local.llama_weights import demo_model
from agents.engines.protocols import SpeechToText, TextToSpeech, VoicedTextToSpeech
from agents.voice_agent import VoiceAgent
from db import BusinessData, CallRecords, Database, SafeQuery, in_memory
from db.seed import seed_demo
from db.tool_declarations import ToolDeclarations
from telephony.app import create_app
from telephony.audio.mulaw import TWILIO_SAMPLE_RATE, pcm16_to_mulaw
from telephony.audio.resamplers import StreamResampler
from telephony.pod import Pod
from telephony.server import BackgroundServer
from telephony.settings import Settings
from telephony.simulator import CallReport, Listen, Pause, Say, SimulatedCall, Step

DEMO_NUMBER = "+15550100"
DEMO_CALLER = "+15550101"
"""The caller ID of customer C-1001 in the demo data (`db.seed`): the agent knows who calls from it."""
CALLER_VOICE = "jf_tebukuro"
"""A different voice from the agent's, so the two sides are easy to tell apart."""
CALLER_LINES = ("Hi, what is the status of my latest order?", "Thank you very much.")
RECENT_ORDERS: dict[str, Any] = {
    "kind": "mongo_find",
    "description": "The caller's most recent orders, newest first: order number, status and expected delivery.",
    "scope": "caller",
    "identity_field": "customer_id",
    "collection": "orders",
    "arguments": [],
    "returns": ["order_id", "status", "eta"],
    "sort": [{"field": "created_at", "direction": "desc"}],
    "max_results": 3,
}
"""The demo's one tool, declared as an operator would `POST /api/tools` it: no arguments at all,
scoped by the server to the caller it identified by caller ID (a small model has nothing to get
wrong, and no way to name another customer)."""
DEMO_TOOLS = {"recent_orders": RECENT_ORDERS}
DEMO_AGENT = AgentConfig(
    id="assistant",
    system_prompt=(
        "You are the phone assistant of Switchboard Shop. The caller is already identified by their phone "
        "number. To answer about their orders, call recent_orders once: it lists their orders, newest "
        "first. Then answer in one short spoken sentence with the newest order's status."
    ),
    greeting="Hello, this is Switchboard Shop. How can I help you?",
    tools=list(DEMO_TOOLS),
    allow_hang_up=False,
    allow_transfer=False,
)


async def open_demo_data() -> Database:
    """The demo's business data in the in-memory database (a FAKE MongoDB: no server is needed for
    a demo) with the demo tools declared in it, as an operator would through the admin API."""
    database = in_memory()
    await seed_demo(database)
    declarations = ToolDeclarations(database)
    for name, declaration in DEMO_TOOLS.items():
        await declarations.create(name, declaration)
    return database


async def newest_order_status(database: Database, customer_id: str) -> str | None:
    """What the agent should say: the status of the caller's newest order, read directly."""
    read = await BusinessData(SafeQuery(database)).recent_orders(customer_id, limit=1)
    return str(read.documents[0]["status"]) if read.documents else None


async def tool_audit(database: Database, call_sid: str) -> list[dict[str, Any]]:
    """The call's tool audit as the pod recorded it (tool, arguments, whose data, outcome)."""
    record = await CallRecords(database).get(call_sid)
    return list(record.get("tool_audit", [])) if record else []


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
    up to `until_s`: 8 kHz mu-law, as the caller heard it. A long call is heard in pieces of
    `HEARING_WINDOW_S` (Whisper takes at most a minute at once)."""
    origin = report.stream_started_at or 0.0
    start = max(0, int((after_s - origin) * TWILIO_SAMPLE_RATE))
    end = None if until_s is None else max(start, int((until_s - origin) * TWILIO_SAMPLE_RATE))
    audio = report.agent_pcm()[start:end]
    window = int(HEARING_WINDOW_S * TWILIO_SAMPLE_RATE)
    pieces = [_hear(audio[at : at + window].tobytes(), stt) for at in range(0, len(audio), window)]
    return " ".join(piece for piece in pieces if piece) if len(pieces) > 1 else "".join(pieces)


HEARING_WINDOW_S = 50.0


def _hear(pcm8k: bytes, stt: SpeechToText) -> str:
    resampler = StreamResampler(TWILIO_SAMPLE_RATE, stt.sample_rate, "HQ")
    pcm = resampler.process(pcm8k) + resampler.flush()
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
    embedded = os.environ.get("SWITCHBOARD_LLM_EMBEDDED_MODEL") or demo_model()  # the setting, if given, wins
    backend = (
        {"llm_backend": "openai", "llm_base_url": llm_url}
        if llm_url
        else {"llm_backend": "embedded", "llm_embedded_model": embedded}
    )
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
        + (f"model at {llm_url})" if llm_url else f"llama.cpp {embedded.removeprefix('bundled:')})")
    )
    database = asyncio.run(open_demo_data())
    app = create_app(settings, agent_configs=[DEMO_AGENT], database=database)
    with BackgroundServer(app, settings) as url:  # the pod loads and warms the engines as it starts
        pod: Pod = app.state.pod
        assert pod.voice is not None
        stack = pod.voice.stack
        agent = pod.agents.get(DEMO_AGENT.id)
        assert isinstance(agent, VoiceAgent)
        script: list[Step] = [Pause(3.5)]  # the greeting plays first
        for line in CALLER_LINES:  # the caller waits for each answer, however long the machine takes
            script += [caller_says(stack.tts, line), Listen(max_seconds=90.0, quiet_seconds=2.5)]
        print(
            f"demo: ready in {time.perf_counter() - started:.1f} s; placing a simulated Twilio call to {DEMO_NUMBER}\n"
        )
        call = SimulatedCall(url, token, to=DEMO_NUMBER, from_=DEMO_CALLER, script=script, tail_s=1.0)
        report = asyncio.run(call.run())
        for _ in range(100):  # the record is written as the server ends the session
            if agent.records:
                break
            time.sleep(0.05)
        print(report.render())
        if agent.records:
            print(render_record(agent.records[-1]))
        heard = agent_transcript(report, stack.engines.stt)
        print(f"whisper hears the agent say: {heard!r}")
        for entry in asyncio.run(tool_audit(database, report.call_sid)):
            print(
                f"tool audit: {entry['name']}({entry['arguments']}) for customer {entry.get('customer_key')}: "
                + ("ok" if entry["ok"] else f"refused ({entry['error']})")
            )
        status = asyncio.run(newest_order_status(database, "C-1001"))
        said = status is not None and status in heard.lower()
        print(f"the caller's newest order is {status!r}; the agent {'said' if said else 'did not say'} it")
        if record_path:
            report.write_wav(record_path)
            print(f"recording: {record_path} ({report.recording_seconds:.2f} s, caller left, agent right)")
    answered = bool(agent.records and agent.records[-1].turns and report.turn_latencies())
    return 0 if report.webhook_status == 200 and answered else 1
