"""Backchannels and false interruptions in whole calls: does an "mhm" or a cough stop the agent for good,
and how fast does a real interruption clear the line?

Why: callers say "mhm", "yeah", "okay" while an agent talks, and phone lines carry coughs and bumps.
Before issue 14 every such sound that the VAD took for speech cleared the line and dropped the rest
of the reply for good, and the "mhm" was answered as a turn. Now the line is still cleared at once
(barge-in latency must not grow), but the reply is held; if the interruption's transcript is empty
or only backchannel words, the unheard rest is replayed and nothing is answered.

Method: one pod (real Silero VAD, Whisper, Kokoro, in the real Starlette app under uvicorn) with the
scripted fake model (a long four-sentence answer to the caller's question, a short one to anything
after) is called by the Twilio simulator, in real time, one call after another. Each call waits
for the greeting, asks a question (a test fixture), waits until the agent's answer has been playing
for an offset (`WaitForAgent`), then talks over it: a backchannel ("mm-hmm", "yeah", "uh-huh",
"okay", spoken by espeak-ng), a cough (a shaped pink-noise burst made by sox), or a real
interruption ("Wait, what about my refund?" and the `interrupt` fixture); then listens until the
agent is done. With `--modes resume,off` every call is placed twice, alternating, against an agent
with `resume_after_backchannel` on and one with it off (the behaviour before issue 14).

Figures, per mode:
- false stops: backchannel/noise calls whose reply was ended for good (a barge-in not resumed, or
  the sound answered as a turn), over all backchannel/noise calls.
- resumed replies: barge-ins by backchannel/noise that were resumed (of those that cleared the line).
- real interruptions caught: cleared and answered (never resumed); clear latency p50/p95: from the
  interruption's speech onset (first 10 ms window over RMS 500 in its audio) on the simulator's
  clock to the `clear` received by the simulator.

Run from the repository root (`--quick`: six calls, about 3 minutes on 2 cores):

    .venv/bin/python benchmarks/backchannel.py --quick
    .venv/bin/python benchmarks/backchannel.py             # 36 cases x 2 modes, about 45 minutes
    .venv/bin/python benchmarks/backchannel.py --repeats 2 --modes resume
    .venv/bin/python benchmarks/backchannel.py --modes resume --only refund,interrupt   # real ones only
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.config import AgentConfig
from agents.testing.scripted_llm import Reply, ScriptedLlmServer
from agents.voice_agent import VoiceAgent
from telephony.app import create_app
from telephony.audio.mulaw import TWILIO_SAMPLE_RATE, mulaw_to_pcm16
from telephony.pod import Pod
from telephony.server import BackgroundServer
from telephony.settings import Settings
from telephony.simulator import CallReport, Listen, Say, SimulatedCall, WaitForAgent
from telephony.simulator.caller_audio import load_utterance

ROOT = Path(__file__).resolve().parents[1]
SPEECH_DIR = ROOT / "tests" / "fixtures" / "speech"
NUMBERS = {"resume": "+15550100", "off": "+15550101"}
"""The agent each mode calls: the same agent with `resume_after_backchannel` on / off."""
LONG_ANSWER = (
    "We have three plans for you to choose from today. The basic plan costs ten dollars a month and "
    "includes calls. The premium plan costs twenty dollars a month and adds messages. The business "
    "plan costs fifty dollars a month and adds everything else."
)
SHORT_ANSWER = "Of course. Let me look at your refund."
BACKCHANNELS = {"mhm": "mm-hmm", "yeah": "yeah", "uh-huh": "uh hu", "okay": "okay"}
"""Label -> what espeak-ng is given: its "uh-huh" comes out as "uh-uh" (Whisper: "Uh-uh.", a "no",
which is rightly a turn); "uh hu" sounds, and is transcribed, as "Uh-huh."."""
REAL = {"refund": "Wait, what about my refund?"}
"""Real interruptions spoken by espeak-ng (the `interrupt` fixture is added to them)."""
VOICES = ("en-us", "en-gb")
OFFSETS_S = (1.0, 2.5, 4.0)
"""How long the answer has been playing when the caller talks over it."""
AFTER_S = 25.0
"""Bound on listening for the rest of the call after the interruption."""
QUIET_S = 5.0
"""The call ends once the agent has been quiet this long after the interruption: longer than a
hold may last (`max_hold_ms`, 4 s), so a held reply still has its chance to resume."""


@dataclass(frozen=True)
class Case:
    label: str
    kind: str
    """`backchannel`, `noise` or `real`."""
    audio: bytes
    offset_s: float


@dataclass
class ModeResults:
    calls: dict[str, int] = field(default_factory=dict)
    barge_ins: dict[str, int] = field(default_factory=dict)
    resumed: dict[str, int] = field(default_factory=dict)
    false_stops: dict[str, int] = field(default_factory=dict)
    answered: dict[str, int] = field(default_factory=dict)
    clear_ms: list[float] = field(default_factory=list)
    caught: int = 0
    real_calls: int = 0

    def add(self, label: str, key: str, amount: int = 1) -> None:
        counts: dict[str, int] = getattr(self, key)
        counts[label] = counts.get(label, 0) + amount


# -- caller audio ----------------------------------------------------------------------------------


def espeak(text: str, voice: str, workdir: Path) -> bytes:
    path = workdir / f"{abs(hash((text, voice)))}.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", "165", "-w", str(path), text], check=True)
    return load_utterance(path)


def cough(workdir: Path, seconds: float = 0.3) -> bytes:
    """A cough-like burst: pink noise with a fast attack and a decaying tail."""
    path = workdir / "cough.wav"
    shape = ["fade", "p", "0.01", str(seconds), str(seconds * 0.7), "gain", "-4"]
    subprocess.run(
        ["sox", "-n", "-r", "8000", "-b", "16", "-c", "1", str(path), "synth", str(seconds), "pinknoise", *shape],
        check=True,
    )
    return load_utterance(path)


def speech_onset_s(audio: bytes, threshold: float = 500.0) -> float:
    pcm = np.frombuffer(mulaw_to_pcm16(audio), dtype=np.int16).astype(np.float64)
    window = TWILIO_SAMPLE_RATE // 100
    for i in range(0, pcm.size - window, window):
        if np.sqrt(np.mean(pcm[i : i + window] ** 2)) > threshold:
            return i / TWILIO_SAMPLE_RATE
    return 0.0


def cases(quick: bool, repeats: int, workdir: Path) -> list[Case]:
    voices = VOICES[:1] if quick else VOICES
    offsets = OFFSETS_S[1:2] if quick else OFFSETS_S
    out: list[Case] = []
    for _ in range(1 if quick else repeats):
        for offset in offsets:
            for voice in voices:
                out += [
                    Case(label, "backchannel", espeak(t, voice, workdir), offset) for label, t in BACKCHANNELS.items()
                ]
                out += [Case(label, "real", espeak(t, voice, workdir), offset) for label, t in REAL.items()]
            out.append(Case("cough", "noise", cough(workdir), offset))
            if not quick:
                out.append(Case("interrupt", "real", load_utterance(SPEECH_DIR / "interrupt.wav"), offset))
    return out


# -- the calls -------------------------------------------------------------------------------------


def scripted_rule(body: dict[str, Any]) -> Reply:
    turns = sum(1 for message in body["messages"] if message.get("role") == "user")
    return Reply(text=LONG_ANSWER if turns <= 1 else SHORT_ANSWER, chunk_chars=6, delay_between_s=0.01)


def agent_configs() -> list[AgentConfig]:
    base = {"system_prompt": "You are a phone assistant.", "allow_hang_up": False, "allow_transfer": False}
    return [
        AgentConfig(id="resume", greeting="Hello, how can I help?", **base),  # type: ignore[arg-type]
        AgentConfig(id="off", greeting="Hello, how can I help?", resume_after_backchannel=False, **base),  # type: ignore[arg-type]
    ]


def place(url: str, token: str, pod: Pod, mode: str, case: Case) -> tuple[CallReport, Any]:
    agent = pod.agents.get(mode)
    assert isinstance(agent, VoiceAgent)
    question = Say(load_utterance(SPEECH_DIR / "order_status.wav"), "question")
    script = [
        Listen(max_seconds=15.0, quiet_seconds=0.8),
        question,
        WaitForAgent(after_seconds=case.offset_s, max_seconds=20.0),
        Say(case.audio, case.label),
        Listen(max_seconds=AFTER_S, quiet_seconds=QUIET_S),
    ]
    report = asyncio.run(SimulatedCall(url, token, to=NUMBERS[mode], script=script, tail_s=0.5).run())
    deadline = time.monotonic() + 10
    # the agent keeps only its recent records (a bounded list): look the call up by its sid
    while (record := next((r for r in agent.records if r.call_sid == report.call_sid), None)) is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"no call record for {report.call_sid}:\n{report.render()}")
        time.sleep(0.05)
    return report, record


def collect(results: ModeResults, case: Case, report: CallReport, record: Any, requests: int) -> str:
    label = case.label
    results.add(label, "calls")
    results.add(label, "barge_ins", record.barge_ins)
    results.add(label, "resumed", record.resumed_replies)
    answered = requests > 1
    results.add(label, "answered", int(answered))
    if case.kind != "real":
        stopped = answered or record.barge_ins > record.resumed_replies
        results.add(label, "false_stops", int(stopped))
        heard = [line.text for line in record.transcript if line.role == "caller"][1:]
        return f"barge-ins {record.barge_ins}, resumed {record.resumed_replies}, answered {heard or False}"
    results.real_calls += 1
    said = [u for u in report.utterances if u[2] == label]
    onset = said[0][0] + speech_onset_s(case.audio) if said else None
    clears = [at for at in report.clears if onset is not None and at >= said[0][0]]
    caught = bool(clears) and answered and record.resumed_replies == 0
    results.caught += caught
    if clears and onset is not None:
        results.clear_ms.append((clears[0] - onset) * 1000)
    latency = f"{(clears[0] - onset) * 1000:.0f} ms" if clears and onset is not None else "-"
    return f"caught {caught}, clear after onset {latency}"


# -- the tables ------------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def table(mode: str, r: ModeResults) -> str:
    lines = [
        f"mode {mode}",
        f"{'caller says':<12}{'calls':>7}{'barge-ins':>11}{'resumed':>9}{'false stops':>13}{'answered':>10}",
    ]
    for label, calls in r.calls.items():
        stops = str(r.false_stops[label]) if label in r.false_stops else "-"
        lines.append(
            f"{label:<12}{calls:>7}{r.barge_ins.get(label, 0):>11}{r.resumed.get(label, 0):>9}{stops:>13}"
            f"{r.answered.get(label, 0):>10}"
        )
    soft = [label for label in r.false_stops]
    soft_calls = sum(r.calls[label] for label in soft)
    stops = sum(r.false_stops.values())
    stopped = sum(r.barge_ins.get(label, 0) for label in soft)
    resumed = sum(r.resumed.get(label, 0) for label in soft)
    lines.append(
        f"backchannel/noise: false stops {stops}/{soft_calls} ({100 * stops / max(1, soft_calls):.0f} %); "
        f"barge-ins {stopped}, resumed {resumed}"
    )
    lines.append(
        f"real interruptions: caught {r.caught}/{r.real_calls}; clear latency (caller speech onset -> clear "
        f"at the simulator) p50 {pct(r.clear_ms, 50):.0f} ms, p95 {pct(r.clear_ms, 95):.0f} ms (n={len(r.clear_ms)})"
    )
    return "\n".join(lines)


def machine() -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, load {load}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one voice, one offset, once: six calls")
    parser.add_argument("--repeats", type=int, default=1, help="times each case is called (not with --quick)")
    parser.add_argument("--modes", default=None, help="resume,off (default: resume with --quick, else both)")
    parser.add_argument("--only", default=None, help="only these cases, e.g. refund,interrupt (default: all)")
    args = parser.parse_args()
    modes = (args.modes or ("resume" if args.quick else "resume,off")).split(",")
    if unknown := set(modes) - set(NUMBERS):
        parser.error(f"unknown modes {sorted(unknown)}; choose from {sorted(NUMBERS)}")
    print(machine(), flush=True)
    with tempfile.TemporaryDirectory() as tmp, ScriptedLlmServer(scripted_rule) as llm:
        calls = cases(args.quick, args.repeats, Path(tmp))
        if args.only:
            calls = [case for case in calls if case.label in args.only.split(",")]
        settings = Settings(
            twilio_auth_token=secrets.token_hex(16),
            numbers={NUMBERS[mode]: mode for mode in NUMBERS},
            log_level="WARNING",
            llm_backend="openai",
            llm_base_url=llm.base_url,
            llm_model="scripted",
        )
        app = create_app(settings, agent_configs=agent_configs())
        results = {mode: ModeResults() for mode in modes}
        with BackgroundServer(app, settings) as url:
            pod: Pod = app.state.pod
            token = settings.twilio_auth_token.get_secret_value()
            print(
                f"{len(calls)} cases x {len(modes)} modes; end of turn {settings.turn_detection} "
                f"(silence rule {settings.vad_end_of_turn_ms} ms, bound {settings.turn_smart_max_wait_ms} ms)",
                flush=True,
            )
            for index, case in enumerate(calls):
                for mode in modes:  # alternate, so drift in machine load hits both alike
                    began, sent = time.monotonic(), len(llm.requests)
                    report, record = place(url, token, pod, mode, case)
                    summary = collect(results[mode], case, report, record, len(llm.requests) - sent)
                    print(
                        f"call {index + 1}/{len(calls)} {mode:<6} {case.label:<9} at {case.offset_s:.1f} s "
                        f"({time.monotonic() - began:.0f} s): {summary}",
                        flush=True,
                    )
    print(machine())
    for mode in modes:
        print()
        print(table(mode, results[mode]))


if __name__ == "__main__":
    main()
