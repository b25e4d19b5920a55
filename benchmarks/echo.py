"""The echo set: the agent's own voice back on the caller's track must not interrupt it, while a
real interruption still does.

Why: on a speakerphone or a line with a poor hybrid the caller's track carries the agent's own
voice, delayed and attenuated. Without an echo guard the VAD takes it for the caller, the agent
barges in on itself and stops, and its own words come back as a caller turn.

Two parts, one run:
1. Cancellers (listener only, simulated time, a few seconds): Kokoro speaks a long answer; it goes
   out as the pod sends it (24 kHz -> 8 kHz FIR, mu-law), comes back through the simulator's line
   echo (`telephony/simulator/line_echo.py`) and in through the pod's 8 -> 16 kHz FIR into the
   echo guard and Silero, with no caller speech (echo only) and with the caller's "Wait, stop. I
   have a question." 6 s in (double talk). Per delay x echo return loss (ERL): the VAD's speech
   starts for the echo alone (each one a self-interruption in a call), whether the caller was
   heard (a start within 1 s of their words; without a guard the echo already holds the VAD in
   speech, so their words start nothing), and the guard's cost per 20 ms frame. For: no
   guard, our `LineEchoCanceller`, and WebRTC's AEC3 (`pywebrtc-audio`, when installed:
   `pip install pywebrtc-audio==0.2.0`; it is not a dependency of the project).
2. Whole calls (real time): the Twilio simulator calls a real pod (Silero, Whisper, Kokoro, the
   scripted model) over a line that echoes the agent at each delay x ERL. The caller asks a
   question, the agent's long answer (four sentences, ~14 s) plays, echoed, and 3 s into it the
   caller interrupts it. Per condition, with the guard on and off (two agents on one pod, calls
   alternating): self-interruptions (a `clear` while the caller was silent: greeting, answer),
   real interruptions caught (a `clear` within 1 s of the caller's interruption, counted only when
   the agent was speaking as it began) and the barge-in `clear` latency from the words' onset.

Run from the repository root (full: 3 x 3 conditions, 1 call each per guard mode, ~10 minutes on 2
cores; `--quick`: 6 dB at 40/120/250 ms, a few minutes; `--calls N` for more):

    .venv/bin/python benchmarks/echo.py --quick
    .venv/bin/python benchmarks/echo.py
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.config import AgentConfig
from agents.conversation.echo_guard import EchoGuard
from agents.engines.local.line_echo_canceller import LineEchoCanceller
from agents.engines.protocols import EchoCanceller, SpeechStarted, TextToSpeech, VoiceActivity
from agents.testing.scripted_llm import Reply, ScriptedLlmServer
from telephony.app import create_app
from telephony.audio.mulaw import MULAW_FRAME_BYTES, TWILIO_SAMPLE_RATE, mulaw_to_pcm16, pcm16_to_mulaw
from telephony.audio.resamplers import StreamResampler
from telephony.server import BackgroundServer
from telephony.settings import Settings
from telephony.simulator import CallReport, EchoPath, Pause, Say, SimulatedCall, WaitForAgent
from telephony.simulator.caller_audio import load_utterance
from telephony.simulator.line_echo import LineEcho
from telephony.simulator.script import SILENCE_FRAME
from telephony.voice import VoiceStack

ROOT = Path(__file__).resolve().parents[1]
SPEECH_DIR = ROOT / "tests" / "fixtures" / "speech"
DELAYS_MS = (40, 120, 250)
LOSSES_DB = (6.0, 12.0, 20.0)
LONG_ANSWER = (
    "We have three plans for you to choose from today. "
    "The basic plan costs ten dollars a month and includes calls. "
    "The premium plan costs twenty dollars a month and adds messages. "
    "The business plan costs fifty dollars a month and adds everything else."
)
GREETING = "Hello, how can I help?"
NUMBERS = {"on": "+15550100", "off": "+15550101"}
"""The agent with the guard and the same agent without it, on one pod."""
GREETING_WAIT_S = 3.0
ANSWER_PLAYING_S = 3.0
"""How long the answer plays (echoed) before the caller interrupts it."""
CAUGHT_WITHIN_S = 1.0
DOUBLE_TALK_AT_MS = 6000


def agent(guard: bool) -> AgentConfig:
    return AgentConfig(
        id=f"echo-{'on' if guard else 'off'}",
        system_prompt="You are the phone assistant of a phone company.",
        greeting=GREETING,
        allow_hang_up=False,
        allow_transfer=False,
        echo_guard=guard,
    )


def p(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


# -- part 1: the cancellers on the listener's input ----------------------------------------------------


def aec3() -> Callable[[], EchoCanceller] | None:
    try:
        from pywebrtc_audio import EchoCanceller as Aec3
    except ImportError:
        return None
    return lambda: Aec3(sample_rate=16000, num_channels=1, stream_delay_ms=0)


def speak(tts: TextToSpeech, text: str) -> tuple[bytes, int]:
    """Kokoro's long answer, as the pod synthesizes it."""

    async def whole() -> bytes:
        return b"".join([chunk async for chunk in tts.synthesize(text)])

    return asyncio.run(whole()), tts.sample_rate


def line_track(agent_pcm: bytes, rate: int, path: EchoPath, double_talk: bool) -> list[bytes]:
    """The caller's track at 16 kHz as the pod receives it, while the answer plays."""
    out = StreamResampler(rate, TWILIO_SAMPLE_RATE)
    step = rate // 50 * 2
    sent = b"".join(pcm16_to_mulaw(out.process(agent_pcm[i : i + step])) for i in range(0, len(agent_pcm), step))
    ticks = len(sent) // MULAW_FRAME_BYTES + 75
    caller = [SILENCE_FRAME] * ticks
    if double_talk:
        said = load_utterance(SPEECH_DIR / "interrupt.wav")
        first = DOUBLE_TALK_AT_MS // 20
        for i in range(0, min(len(said), (ticks - first) * MULAW_FRAME_BYTES), MULAW_FRAME_BYTES):
            caller[first + i // MULAW_FRAME_BYTES] = said[i : i + MULAW_FRAME_BYTES].ljust(MULAW_FRAME_BYTES, b"\xff")
    line, inbound = LineEcho(path), StreamResampler(TWILIO_SAMPLE_RATE, 16000)
    frames = []
    for tick in range(ticks):
        heard = line.mix(caller[tick])
        line.played(sent[tick * MULAW_FRAME_BYTES : (tick + 1) * MULAW_FRAME_BYTES])
        frames.append(inbound.process(mulaw_to_pcm16(heard)))
    return frames


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def listen(
    vad: VoiceActivity, frames: list[bytes], answer: tuple[bytes, int], make: Callable[[], EchoCanceller] | None
) -> tuple[list[int], float]:
    """Speech starts the VAD reports on `frames` behind the guard (none: no guard), and µs/frame."""
    clock = Clock()
    guard = EchoGuard(make(), clock) if make is not None else None
    if guard is not None:
        guard.played(answer[0], answer[1], clock())
    detector, starts, spent = vad.detector(), [], 0.0
    for pcm in frames:
        clock.now += 0.02
        began = time.perf_counter()
        heard = guard.process(pcm) if guard is not None else pcm
        spent += time.perf_counter() - began
        starts += [event.at_ms for event in detector.feed(heard) if isinstance(event, SpeechStarted)]
    return starts, spent / len(frames) * 1e6


def cancellers_table(stack: VoiceStack, delays: tuple[int, ...], losses: tuple[float, ...]) -> str:
    """On the pod's own Kokoro and Silero (loading them twice would trip its memory guard)."""
    answer = speak(stack.tts, GREETING + " " + LONG_ANSWER)
    vad = stack.engines.vad
    makers: dict[str, Callable[[], EchoCanceller] | None] = {"no guard": None, "line (ours)": LineEchoCanceller}
    webrtc = aec3()
    if webrtc is not None:
        makers["AEC3"] = webrtc
    rows = [
        f"answer: {len(answer[0]) / 2 / answer[1]:.1f} s of Kokoro; caller's words at {DOUBLE_TALK_AT_MS} ms",
        "" if webrtc is not None else "AEC3: not installed (pip install pywebrtc-audio==0.2.0 to compare)",
        f"{'delay':>5} {'ERL':>4}  " + "  ".join(f"{name:>32}" for name in makers),
        f"{'ms':>5} {'dB':>4}  " + "  ".join(f"{'echo-only starts, caller heard, µs':>32}" for _ in makers),
    ]
    totals = {name: [0, 0, 0] for name in makers}
    for delay in delays:
        for loss in losses:
            echo_only = line_track(*answer, EchoPath(delay, loss), double_talk=False)
            talking = line_track(*answer, EchoPath(delay, loss), double_talk=True)
            cells = []
            for name, make in makers.items():
                starts, cost = listen(vad, echo_only, answer, make)
                talk_starts, _ = listen(vad, talking, answer, make)
                heard = any(DOUBLE_TALK_AT_MS <= at <= DOUBLE_TALK_AT_MS + 1000 for at in talk_starts)
                totals[name][0] += len(starts)
                totals[name][1] += int(heard)
                totals[name][2] += 1
                cells.append(f"{len(starts):>18} {'yes' if heard else 'NO':>6} {cost:>6.0f}")
            rows.append(f"{delay:>5} {loss:>4.0f}  " + "  ".join(cells))
    rows.append(
        "total: " + "; ".join(f"{name}: {s} self-starts, caller heard {h}/{n}" for name, (s, h, n) in totals.items())
    )
    return "\n".join(row for row in rows if row)


# -- part 2: whole calls ---------------------------------------------------------------------------------


def scripted_rule(body: dict[str, Any]) -> Reply:
    """The long answer to the caller's question, then a short one to the interruption."""
    caller_turns = sum(1 for message in body["messages"] if message.get("role") == "user")
    return Reply(text=LONG_ANSWER if caller_turns <= 1 else "Sure, go ahead.", chunk_chars=6, delay_between_s=0.01)


@contextlib.contextmanager
def pod() -> Iterator[tuple[str, str, VoiceStack]]:
    with ScriptedLlmServer(scripted_rule) as server:
        token = secrets.token_hex(16)
        settings = Settings(
            twilio_auth_token=token,
            numbers={NUMBERS["on"]: agent(True).id, NUMBERS["off"]: agent(False).id},
            log_level="WARNING",
            llm_backend="openai",
            llm_base_url=server.base_url,
            llm_model="scripted",
        )
        app = create_app(settings, agent_configs=[agent(True), agent(False)])
        with BackgroundServer(app, settings) as url:
            assert app.state.pod.voice is not None
            yield url, token, app.state.pod.voice.stack


def onset_s(say: Say, threshold: float = 500.0) -> float:
    pcm = np.frombuffer(mulaw_to_pcm16(say.audio), dtype=np.int16).astype(np.float64)
    window = TWILIO_SAMPLE_RATE // 100
    for i in range(0, pcm.size - window, window):
        if np.sqrt(np.mean(pcm[i : i + window] ** 2)) > threshold:
            return i / TWILIO_SAMPLE_RATE
    return 0.0


def self_clears(report: CallReport) -> list[float]:
    """Clears with no caller speech in or just before them: the agent's echo barged in."""
    return [at for at in report.clears if not any(start <= at <= end + 0.5 for start, end, _ in report.utterances)]


def judge(report: CallReport, interrupt: Say) -> tuple[int, int, int, float | None]:
    """(self-interruptions, interruptions while the agent spoke, caught, clear latency s)."""
    own = self_clears(report)
    interrupted = [s for s in report.utterances if s[2] == "interrupt"]
    if not interrupted:
        return len(own), 0, 0, None
    onset = interrupted[0][0] + onset_s(interrupt)
    speaking = any(start <= onset <= end for start, end in report.agent_spans)
    caught = [at for at in report.clears if onset - 0.1 <= at <= onset + CAUGHT_WITHIN_S]
    if not speaking:
        return len(own), 0, 0, None
    return len(own), 1, int(bool(caught)), (caught[0] - onset if caught else None)


def self_clear_places(report: CallReport) -> str:
    """Where each self-interruption fell: which stretch of agent audio, and how far into it (to tell
    a reply's start, where the play-out offset moves the echo, from the middle of a long answer)."""
    places = []
    for at in self_clears(report):
        spans = [(i, at - start) for i, (start, end) in enumerate(report.agent_spans) if start <= at <= end + 0.5]
        places.append(f"agent audio {spans[0][0] + 1} +{spans[0][1]:.2f} s" if spans else f"at {at:.2f} s, agent quiet")
    return f" [self: {'; '.join(places)}]" if places else ""


def calls_table(
    url: str,
    token: str,
    delays: tuple[int, ...],
    losses: tuple[float, ...],
    calls: int,
    modes: tuple[str, ...] = ("on", "off"),
    only: set[tuple[int, float]] | None = None,
) -> str:
    question = Say(load_utterance(SPEECH_DIR / "speak_to_person.wav"), "question")
    interrupt = Say(load_utterance(SPEECH_DIR / "interrupt.wav"), "interrupt")
    script = [Pause(GREETING_WAIT_S), question, WaitForAgent(ANSWER_PLAYING_S, max_seconds=20.0), interrupt, Pause(4.0)]
    results: dict[tuple[int, float, str], list[tuple[int, int, int, float | None]]] = {}
    for index in range(calls):
        for delay in delays:
            for loss in losses:
                if only is not None and (delay, loss) not in only:
                    continue
                for mode in modes:  # alternating, so load drift hits both alike
                    began = time.monotonic()
                    call = SimulatedCall(
                        url, token, to=NUMBERS[mode], script=script, tail_s=0.5, echo=EchoPath(delay, loss)
                    )
                    report = asyncio.run(call.run())
                    outcome = judge(report, interrupt)
                    results.setdefault((delay, loss, mode), []).append(outcome)
                    print(
                        f"call {index + 1}/{calls} {delay} ms {loss:.0f} dB guard {mode:<3} "
                        f"({time.monotonic() - began:.0f} s, {report.outcome}): self {outcome[0]}, "
                        f"interrupted {outcome[1]}, caught {outcome[2]}{self_clear_places(report)}",
                        flush=True,
                    )
    rows = [f"{'delay':>5} {'ERL':>4} {'guard':>5} {'calls':>5} {'self-int.':>9} {'caught':>7} {'clear p50 ms':>12}"]
    for (delay, loss, mode), outcomes in sorted(results.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2])):
        latencies = [o[3] * 1000 for o in outcomes if o[3] is not None]
        rows.append(
            f"{delay:>5} {loss:>4.0f} {mode:>5} {len(outcomes):>5} {sum(o[0] for o in outcomes):>9} "
            f"{sum(o[2] for o in outcomes):>3}/{sum(o[1] for o in outcomes):<3} {p(latencies, 50):>12.0f}"
        )
    for mode in modes:
        picked = [o for (_, _, m), outcomes in results.items() if m == mode for o in outcomes]
        latencies = [o[3] * 1000 for o in picked if o[3] is not None]
        rows.append(
            f"guard {mode}: {sum(o[0] for o in picked)} self-interruptions in {len(picked)} calls; "
            f"real interruptions caught {sum(o[2] for o in picked)}/{sum(o[1] for o in picked)}; "
            f"clear p50 {p(latencies, 50):.0f} ms, p95 {p(latencies, 95):.0f} ms"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="6 dB at 40/120/250 ms, one call each: a few minutes")
    parser.add_argument("--calls", type=int, default=1, help="calls per condition and guard mode (default 1)")
    parser.add_argument("--no-calls", action="store_true", help="only part 1 (the cancellers, seconds)")
    parser.add_argument("--guard", choices=("both", "on", "off"), default="both", help="whole calls with the guard")
    parser.add_argument("--only", help="whole calls only for these DELAY:LOSS conditions, e.g. 40:20,250:6")
    args = parser.parse_args()
    modes = ("on", "off") if args.guard == "both" else (args.guard,)
    only = None
    if args.only:
        only = {(int(d), float(loss)) for d, loss in (c.split(":") for c in args.only.split(","))}
    losses = (6.0,) if args.quick else LOSSES_DB
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"machine: {os.cpu_count()} cores, load average {load}", flush=True)
    with pod() as (url, token, stack):
        print("\n== 1. cancellers on the listener's input (simulated time)", flush=True)
        print(cancellers_table(stack, DELAYS_MS, LOSSES_DB), flush=True)
        if args.no_calls:
            return
        print("\n== 2. whole calls through the simulator (real time)", flush=True)
        calls = 1 if args.quick else args.calls
        print(calls_table(url, token, DELAYS_MS, losses, calls, modes, only), flush=True)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average at the end: {load}", flush=True)


if __name__ == "__main__":
    main()
