"""Per-stage and voice-to-voice latency of whole phone calls, with and without early transcription.

Why: the caller judges an agent by how long it stays silent after they stop talking. That gap is
the sum of stages (end-of-turn silence, Whisper, the model's first token, Kokoro's first audio,
the playout lead), and the early-transcription trick (Whisper starts while the caller pauses, so
the transcript is often ready when the turn ends) only matters if it shows at the end of the chain.
This script puts p50/p95 on each stage and on the whole, for both listener modes.

Method: one pod (real Silero VAD, Whisper, Kokoro, in the real Starlette app under uvicorn) is
called N times per mode by the Twilio simulator, in real time, one call after another, the modes
alternating call by call so that drift in machine load hits both alike. Each call lets the
greeting play, then says two caller fixtures (tests/fixtures/speech, 8 kHz mu-law), each followed
by enough silence for the reply. The model is either the scripted fake OpenAI-compatible server
(`--llm scripted`, the default: a fixed one- or two-sentence reply streamed in 6-character chunks
10 ms apart, first chunk at once, so the figures are the pod's own) or llama.cpp with the bundled
SmolLM2-135M in-process (`--llm embedded`). One warm-up call (not counted) goes first.

Figures (milliseconds), from the agent's per-turn `TurnMetrics` (server clock) unless marked:
- endpoint: end of caller speech (as the VAD places it) -> end of turn decided (the end-of-turn silence).
- stt: end of turn decided -> transcript ready (what early transcription shortens).
- transcript: end of caller speech -> transcript ready (endpoint + stt).
- llm_ttft: model request sent -> first token.
- tts_first_audio: first sentence handed to Kokoro -> its first audio.
- voice_to_voice: end of caller speech -> first agent audio sent toward the caller.
- heard (simulator): end of the fixture's audio -> first agent audio frame played, on the caller's
  timeline (`CallReport.turn_latencies`). The fixtures end with ~0.4 s of silence after the words,
  so this starts that much after the caller stopped talking; it includes the playout lead.
- heard_from_speech_end (simulator): heard plus that trailing silence (measured on each fixture:
  last 10 ms window with RMS above 500), i.e. from the caller's last word as a listener would time it.

With a few calls, p95 is close to the maximum (linear interpolation between samples). `--runs N`
repeats the whole measurement N times, each in a fresh process with a fresh pod (engines loaded
and warmed again, its own warm-up call): each run's table is printed, then the pooled p50/p95 over
every run's turns (the figures keep their meaning; only the sample grows) and each run's p50, to
show the spread.

Run from the repository root (about 5 minutes a run on 2 cores; `--llm embedded --calls 3` about 4.5;
`--quick`: 1 call per mode, a smoke run):

    .venv/bin/python benchmarks/latency.py
    .venv/bin/python benchmarks/latency.py --runs 3
    .venv/bin/python benchmarks/latency.py --llm embedded --calls 3
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
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
from telephony.simulator import CallReport, Pause, Say, SimulatedCall
from telephony.simulator.caller_audio import load_utterance
from telephony.voice import VoiceStack

ROOT = Path(__file__).resolve().parents[1]
SPEECH_DIR = ROOT / "tests" / "fixtures" / "speech"
AGENT_NUMBER = "+15550100"
CALLER_TURNS = (
    ("order_status", "speak_to_person"),
    ("order_number", "order_status"),
    ("speak_to_person", "order_number"),
)
"""The two fixtures each call says, rotated call by call."""
SCRIPTED_REPLIES = (
    "Of course, I can help with that. Your order shipped yesterday.",
    "Thank you. I have found it and it arrives on Friday.",
)
"""The scripted model's answer to the caller's first and second turn."""
SCRIPTED_CHUNK_CHARS = 6
SCRIPTED_DELAY_BETWEEN_S = 0.01
GREETING_WAIT_S = 3.5
"""Silence before the caller's first turn, so the greeting has finished."""
REPLY_WAIT_S = {"scripted": 6.0, "embedded": 12.0}
"""Silence after each caller turn, so the reply is heard out before the caller speaks again."""
EMBEDDED_MAX_TOKENS = 40
AGENT = AgentConfig(
    id="bench",
    system_prompt="You are the phone assistant of an online shop. Answer in one short sentence.",
    greeting="Hello, how can I help?",
    allow_hang_up=False,
    allow_transfer=False,
    number_lengths={"order number": 5},
)
"""The shop's order numbers have 5 digits (the fixture reads one out), so "My order number is 12345."
ends as a statement; `--unknown-numbers` leaves the length out: the turn waits for the rest of the
number (the words rule's bound, then `digits_grace_ms`)."""
STAGES = ("endpoint_ms", "stt_ms", "transcript_ms", "llm_ttft_ms", "tts_first_audio_ms", "voice_to_voice_ms")
HEARD = ("heard", "heard_from_speech_end")
SYNTHESIZED = "voice_to_voice_synthesized_opener"
"""voice_to_voice of the turns whose reply opener was synthesized, not played from the phrase cache."""


@dataclass
class ModeResults:
    """What the calls of one listener mode measured, in milliseconds."""

    figures: dict[str, list[float]] = field(
        default_factory=lambda: {name: [] for name in (*STAGES, *HEARD, SYNTHESIZED)}
    )
    turns: int = 0
    opener_cached: int = 0
    early_used: int = 0
    interrupted: int = 0
    utterances: int = 0
    answered: int = 0


# -- the model -------------------------------------------------------------------------------------


def scripted_rule(body: dict[str, Any]) -> Reply:
    """Answer any request: the reply for the caller's first turn, then the second's."""
    caller_turns = sum(1 for message in body["messages"] if message.get("role") == "user")
    text = SCRIPTED_REPLIES[min(caller_turns, len(SCRIPTED_REPLIES)) - 1]
    return Reply(text=text, chunk_chars=SCRIPTED_CHUNK_CHARS, delay_between_s=SCRIPTED_DELAY_BETWEEN_S)


@contextlib.contextmanager
def model_settings(backend: str) -> Iterator[dict[str, object]]:
    """Settings for the chosen model, with the scripted server running while they are in use."""
    if backend == "embedded":
        yield {"llm_backend": "embedded", "llm_max_tokens": EMBEDDED_MAX_TOKENS}
        return
    with ScriptedLlmServer(scripted_rule) as server:
        yield {"llm_backend": "openai", "llm_base_url": server.base_url, "llm_model": "scripted"}


# -- one call --------------------------------------------------------------------------------------


def utterance(name: str) -> Say:
    return Say(load_utterance(SPEECH_DIR / f"{name}.wav"), name)


def trailing_silence_s(say: Say, threshold: float = 500.0) -> float:
    """Seconds from the last 10 ms window with speech energy to the end of `say`'s audio."""
    pcm = np.frombuffer(mulaw_to_pcm16(say.audio), dtype=np.int16).astype(np.float64)
    window = TWILIO_SAMPLE_RATE // 100
    count = pcm.size // window
    rms = np.sqrt((pcm[: count * window].reshape(count, window) ** 2).mean(axis=1))
    loud = np.flatnonzero(rms > threshold)
    return (pcm.size - (loud[-1] + 1) * window) / TWILIO_SAMPLE_RATE


def call_script(index: int, reply_wait_s: float) -> list[Say | Pause]:
    script: list[Say | Pause] = [Pause(GREETING_WAIT_S)]
    for name in CALLER_TURNS[index % len(CALLER_TURNS)]:
        script += [utterance(name), Pause(reply_wait_s)]
    return script


def heard_latencies(report: CallReport) -> list[tuple[str, float]]:
    """`CallReport.turn_latencies` keyed by fixture: (label, seconds) for each answered utterance."""
    answered = []
    for index, (_, end, label) in enumerate(report.utterances):
        next_start = report.utterances[index + 1][0] if index + 1 < len(report.utterances) else float("inf")
        replies = [start for start, _ in report.agent_spans if end <= start < next_start]
        if replies:
            answered.append((label, replies[0] - end))
    return answered


def place_call(url: str, token: str, agent: VoiceAgent, script: list[Say | Pause]) -> CallReport:
    """Run one call to its end and wait for the agent to file its record."""
    before = len(agent.records)
    report = asyncio.run(SimulatedCall(url, token, to=AGENT_NUMBER, script=script, tail_s=1.0).run())
    deadline = time.monotonic() + 10
    while len(agent.records) == before or agent.records[-1].call_sid != report.call_sid:
        if time.monotonic() > deadline:
            raise RuntimeError(f"no call record for {report.call_sid}:\n{report.render()}")
        time.sleep(0.05)
    return report


def collect(results: ModeResults, agent: VoiceAgent, report: CallReport, script: list[Say | Pause]) -> str:
    """Add one call's figures to `results`; a one-line summary of the call."""
    trailing = {step.label: trailing_silence_s(step) for step in script if isinstance(step, Say)}
    turns = agent.records[-1].turns
    for turn in turns:
        for stage in STAGES:
            value = getattr(turn, stage)
            if value is not None:
                results.figures[stage].append(value)
        results.early_used += turn.early_transcript
        results.opener_cached += turn.opener_cached
        if not turn.opener_cached and turn.voice_to_voice_ms is not None:
            results.figures[SYNTHESIZED].append(turn.voice_to_voice_ms)
        results.interrupted += turn.interrupted
    heard = heard_latencies(report)
    for label, seconds in heard:
        results.figures["heard"].append(seconds * 1000)
        results.figures["heard_from_speech_end"].append((seconds + trailing[label]) * 1000)
    results.turns += len(turns)
    results.utterances += len(report.utterances)
    results.answered += len(heard)
    v2v = ", ".join(f"{t.voice_to_voice_ms:.0f}" if t.voice_to_voice_ms is not None else "-" for t in turns)
    stt = ", ".join(f"{t.stt_ms:.0f}{'e' if t.early_transcript else ''}" for t in turns if t.stt_ms is not None)
    return f"{len(turns)} turns; stt {stt}; v2v {v2v}; heard {', '.join(f'{s * 1000:.0f}' for _, s in heard)}"


# -- the run ---------------------------------------------------------------------------------------


def set_mode(stack: VoiceStack, mode: str) -> None:
    """Listeners made from now on transcribe early (`early`) or only once the turn ends (`late`)."""
    early = mode == "early"
    stack.listener_config = stack.listener_config.model_copy(update={"early_transcription": early})


def run_calls(
    url: str, pod: Pod, calls: int, modes: list[str], reply_wait_s: float, warmup: int
) -> dict[str, ModeResults]:
    """Calls to the pod at `url` (its agent built from `AGENT` as it started)."""
    agent = pod.agents.get(AGENT.id)
    assert isinstance(agent, VoiceAgent) and pod.voice is not None
    stack = pod.voice.stack
    token = pod.settings.twilio_auth_token.get_secret_value()
    results = {mode: ModeResults() for mode in modes}
    for index in range(warmup):
        set_mode(stack, modes[0])
        place_call(url, token, agent, call_script(index, reply_wait_s))
        print(f"warm-up call {index + 1}/{warmup} done", flush=True)
    for index in range(calls):
        for mode in modes:  # alternate, so a noisy neighbour hits every mode alike
            set_mode(stack, mode)
            script = call_script(index, reply_wait_s)
            began = time.monotonic()
            report = place_call(url, token, agent, script)
            summary = collect(results[mode], agent, report, script)
            print(f"call {index + 1}/{calls} {mode:<5} ({time.monotonic() - began:.0f} s): {summary}", flush=True)
    return results


def machine() -> str:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores ({cores} usable), "
        f"Python {platform.python_version()}, load average {load}"
    )


def end_of_turn(stack: VoiceStack) -> str:
    """The listener's end-of-turn rule and its knobs, as configured (the silence rule if it has none)."""
    listener = stack.listener_config.model_dump()
    rule = str(listener.get("end_of_turn", "silence"))
    knobs = [f"{name.removeprefix('smart_turn_')} {value}" for name, value in listener.items() if "smart_turn_" in name]
    if rule == "words":  # no model: its weight is not used
        knobs = [knob for knob in knobs if not knob.startswith("model_weight")]
    return f"{rule} ({', '.join(knobs)})" if rule != "silence" and knobs else rule


def configuration(settings: Settings, stack: VoiceStack, agent: AgentConfig, calls: int, reply_wait_s: float) -> str:
    if settings.llm_backend == "embedded":
        llm = (
            f"embedded llama.cpp {settings.llm_embedded_model}, max_tokens {settings.llm_max_tokens}, "
            f"{settings.llm_embedded_threads} threads"
        )
    else:
        llm = (
            f"scripted fake server, {SCRIPTED_CHUNK_CHARS}-char chunks {SCRIPTED_DELAY_BETWEEN_S * 1000:.0f} ms "
            "apart, first at once"
        )
    return "\n".join(
        [
            f"calls: {calls} per mode, 2 caller turns each, {GREETING_WAIT_S} s for the greeting, "
            f"{reply_wait_s} s after each turn",
            f"VAD: Silero, threshold {settings.vad_threshold}, min speech {settings.vad_min_speech_ms} ms, "
            f"end of turn {settings.vad_end_of_turn_ms} ms; listener tail {stack.listener_config.tail_ms} ms",
            f"end of turn: {end_of_turn(stack)}; the agent's number lengths {agent.number_lengths or 'none'}, "
            f"digits' grace {agent.digits_grace_ms} ms",
            f"STT: faster-whisper {settings.stt_model}, beam {settings.stt_beam_size}, {settings.stt_threads} threads",
            f"TTS: Kokoro {settings.tts_model}, voice {settings.tts_voice}, {settings.tts_threads} threads, "
            f"opener cache {settings.tts_opener_cache_bytes} bytes; "
            f"playout lead {settings.playout_lead_ms} ms",
            f"LLM: {llm}",
        ]
    )


# -- the tables ------------------------------------------------------------------------------------


def p(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def stage_table(results: dict[str, ModeResults]) -> str:
    modes = list(results)
    header = f"{'ms':<24}" + "".join(f"{mode + ' n':>9}{'p50':>7}{'p95':>7}" for mode in modes)
    lines = [header]
    for name in (*STAGES, *HEARD, SYNTHESIZED):
        row = f"{name.removesuffix('_ms').replace('voice_to_voice', 'v2v'):<24}"
        for mode in modes:
            values = results[mode].figures[name]
            row += f"{len(values):>9}{p(values, 50):>7.0f}{p(values, 95):>7.0f}"
        lines.append(row)
    for mode, r in results.items():
        lines.append(
            f"{mode}: {r.turns} turns from {r.utterances} caller utterances ({r.answered} answered before the "
            f"caller spoke again); early transcript used {r.early_used}/{r.turns}; reply opener from the phrase cache "
            f"{r.opener_cached}/{r.turns}; interrupted {r.interrupted}"
        )
    return "\n".join(lines)


def saving_table(results: dict[str, ModeResults]) -> str:
    early, late = results["early"].figures, results["late"].figures
    lines = [f"{'early vs late (p50)':<24}{'late':>7}{'early':>7}{'saved':>7}{'saved %':>9}"]
    for name in ("stt_ms", "transcript_ms", "voice_to_voice_ms", *HEARD):
        before, after = p(late[name], 50), p(early[name], 50)
        percent = 100 * (before - after) / before if before else float("nan")
        lines.append(f"{name.removesuffix('_ms'):<24}{before:>7.0f}{after:>7.0f}{before - after:>7.0f}{percent:>8.0f}%")
    return "\n".join(lines)


def measure(
    llm: dict[str, object], args: argparse.Namespace, modes: list[str], reply_wait_s: float
) -> dict[str, ModeResults]:
    """One whole measurement: a fresh pod, its warm-up calls, then `args.calls` calls per mode."""
    settings = Settings(
        twilio_auth_token=secrets.token_hex(16),
        numbers={AGENT_NUMBER: AGENT.id},
        log_level="WARNING",
        **llm,  # type: ignore[arg-type]
    )
    agent = AGENT.model_copy(update={"number_lengths": {}}) if args.unknown_numbers else AGENT
    app = create_app(settings, agent_configs=[agent])
    with BackgroundServer(app, settings) as url:  # the pod loads and warms the engines as it starts
        pod: Pod = app.state.pod
        assert pod.voice is not None
        print(configuration(settings, pod.voice.stack, agent, args.calls, reply_wait_s), flush=True)
        return run_calls(url, pod, args.calls, modes, reply_wait_s, args.warmup)


def pooled(runs: list[dict[str, ModeResults]]) -> dict[str, ModeResults]:
    """Every run's turns as one sample per mode."""
    total = {mode: ModeResults() for mode in runs[0]}
    for run in runs:
        for mode, r in run.items():
            for name, values in r.figures.items():
                total[mode].figures[name] += values
            total[mode].turns += r.turns
            total[mode].early_used += r.early_used
            total[mode].opener_cached += r.opener_cached
            total[mode].interrupted += r.interrupted
            total[mode].utterances += r.utterances
            total[mode].answered += r.answered
    return total


def spread_table(runs: list[dict[str, ModeResults]]) -> str:
    """Each run's p50 of the end-to-end figures, so the spread between runs shows."""
    lines = [f"{'p50 by run':<32}" + "".join(f"{f'run {i + 1}':>8}" for i in range(len(runs)))]
    for mode in runs[0]:
        for name in ("voice_to_voice_ms", *HEARD):
            row = f"{mode + ' ' + name.removesuffix('_ms'):<32}"
            lines.append(row + "".join(f"{p(run[mode].figures[name], 50):>8.0f}" for run in runs))
    return "\n".join(lines)


def run_in_child(args: argparse.Namespace) -> dict[str, ModeResults]:
    """One run in a process of its own (a second pod in one process would share its memory guard's
    process-wide figure with the first pod's leftovers); its output is shown as it comes."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "results.json"
        command = [sys.executable, __file__, f"--calls={args.calls}", f"--llm={args.llm}", f"--modes={args.modes}"]
        command += [f"--warmup={args.warmup}", f"--results-json={out}"]
        command += ["--unknown-numbers"] if args.unknown_numbers else []
        subprocess.run(command, check=True)
        data = json.loads(out.read_text(encoding="utf-8"))
    return {mode: ModeResults(**values) for mode, values in data.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=6, help="calls per mode and run (default 6)")
    parser.add_argument("--runs", type=int, default=1, help="whole measurements, each in a fresh process (default 1)")
    parser.add_argument("--quick", action="store_true", help="1 call per mode: a smoke run")
    parser.add_argument("--llm", choices=("scripted", "embedded"), default="scripted")
    parser.add_argument("--modes", default="early,late", help="comma-separated: early, late (default both)")
    parser.add_argument("--warmup", type=int, default=1, help="calls placed first in each run, not counted (default 1)")
    parser.add_argument(
        "--unknown-numbers", action="store_true", help="the agent declares no number lengths (number turns wait)"
    )
    # where a child run of --runs leaves its figures:
    parser.add_argument("--results-json", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    modes = [mode.strip() for mode in args.modes.split(",") if mode.strip()]
    if not modes or set(modes) - {"early", "late"}:
        parser.error("--modes takes early, late or both")
    if args.calls < 1 or args.runs < 1 or args.warmup < 0:
        parser.error("--calls and --runs must be >= 1, --warmup >= 0")
    if args.quick:
        args.calls = 1
    print(machine(), flush=True)
    started = time.monotonic()
    runs: list[dict[str, ModeResults]] = []
    if args.runs == 1:
        with model_settings(args.llm) as llm:
            runs.append(measure(llm, args, modes, REPLY_WAIT_S[args.llm]))
        if args.results_json is not None:
            payload = {mode: dataclasses.asdict(r) for mode, r in runs[0].items()}
            args.results_json.write_text(json.dumps(payload), encoding="utf-8")
            return
    else:
        for index in range(args.runs):
            print(f"\n-- run {index + 1}/{args.runs}", flush=True)
            runs.append(run_in_child(args))
            print(f"\nrun {index + 1}/{args.runs}, {machine()}\n{stage_table(runs[-1])}", flush=True)
    print(f"\n{machine()} (at the end); whole run {time.monotonic() - started:.0f} s\n")
    results = pooled(runs)
    if args.runs > 1:
        print(f"pooled over {args.runs} runs ({args.calls} calls per mode each):")
    print(stage_table(results))
    if len(results) == 2:
        print()
        print(saving_table(results))
    if args.runs > 1:
        print()
        print(spread_table(runs))


if __name__ == "__main__":
    main()
