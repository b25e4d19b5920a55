"""Turn-taking on the turn set: premature cut-offs, end-of-turn latency and reply latency, per end-of-turn rule.

Why: a turn model is not a win by itself (issue 14: Pipecat's Smart Turn setup was slower than its
silence rule). The rule the pod ships must beat the 600 ms silence rule on both axes at once: fewer
callers cut off inside a mid-sentence pause, and less silence after their last word.

Rules (`SWITCHBOARD_TURN_DETECTION`): `silence`, the detector's 600 ms end-of-turn silence;
`words` (the pod's default), the early transcript's words and the silence so far after a short
pause, the long silence bound otherwise (`agents/conversation/end_of_turn.py` and the pod's
`SWITCHBOARD_TURN_SMART_*` defaults); `smart_turn`, `words` with Smart Turn v3.2's probability
added. Each also with speculation ("+spec"): the reply started at the likely end of turn
(`TurnPending`), played once the turn is confirmed.

Part 1, listener level (`benchmarks/turn_sim.py`): every clip of the turn set (`turn_set.py`: Kokoro
and espeak-ng voices, 8 kHz mu-law, clean and 30/20/10 dB SNR, mid-sentence pauses of 300-900 ms)
through the real Silero detector and `TurnListener` in simulated time; Smart Turn and Whisper tiny.en
count with the compute time they really took, each run alone. Reported: premature cut-offs (a turn
declared over after the speech began and before the true last word ended), end-of-turn latency
(turn end - last word), and when a reply can start (+spec: the confirmed turn's `TurnPending`).

Part 2, whole calls (`--part listener` skips them, `--part calls` runs only them): the real pod
(Silero, Whisper tiny.en, Kokoro, the scripted OpenAI-compatible model of `latency.py`) called
through the Twilio simulator in real time, the three rules with speculation alternating call by
call; each call says two
turn-set clips. Reply latency is the simulator's first agent audio after the caller's audio, from
the clip's true last word (it includes the playout lead); `voice_to_voice` is the server's own
figure (from where the VAD placed the speech end). "talked over" counts replies that began before
the caller's last word; `said` is the clips said, `turns` the turns the agent took (more: a sentence
was cut in two).

    .venv/bin/python benchmarks/turn_taking.py --quick       # a few minutes on 2 cores
    .venv/bin/python benchmarks/turn_taking.py               # the whole set, 6 calls per mode
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.conversation.listener import ListenerConfig
from agents.engines.local.silero import SileroVoiceActivity, VadConfig
from agents.engines.local.smart_turn import SmartTurnModel
from agents.engines.local.whisper import WhisperSpeechToText
from agents.voice_agent import VoiceAgent
from benchmarks.latency import AGENT, AGENT_NUMBER, REPLY_WAIT_S, machine, model_settings, place_call
from benchmarks.turn_set import TurnClip, load_turn_set
from benchmarks.turn_sim import ClipOutcome, Timing, run_clip
from telephony.app import create_app
from telephony.pod import Pod
from telephony.server import BackgroundServer
from telephony.settings import Settings
from telephony.simulator import CallReport, Pause, Say

BASE_MODES = ("silence", "words", "smart_turn")
"""The end-of-turn rules (`SWITCHBOARD_TURN_DETECTION`); "+spec" adds speculative replies."""
MODES = tuple(mode for base in BASE_MODES for mode in (base, f"{base}+spec"))
CALL_MODES = tuple(f"{base}+spec" for base in BASE_MODES)
"""Whole calls run as the pod ships them: speculative replies on."""
GREETING_WAIT_S = 3.5
SILENCE_EOT_MS = 600


def default(name: str) -> object:
    """The pod's default for a setting, so the benchmark measures what ships."""
    return Settings.model_fields[name].default


def p(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


# -- part 1: the listener ------------------------------------------------------------------------


def listener_setup(mode: str, unfinished_lead_ms: int | None = None) -> tuple[VadConfig, ListenerConfig]:
    """The pod's default VAD and listener for one rule (`unfinished_lead_ms`: another
    `unfinished_pending_lead_ms`; its max wait, 750, announces unfinished pauses at 200 ms as before)."""
    base = mode.removesuffix("+spec")
    judged = base != "silence"
    vad = VadConfig(
        threshold=default("vad_threshold"),
        min_speech_ms=default("vad_min_speech_ms"),
        end_of_turn_silence_ms=default("turn_smart_max_wait_ms") if judged else SILENCE_EOT_MS,
    )
    listener = ListenerConfig(
        end_of_turn=base,  # type: ignore[arg-type]
        smart_turn_silence_ms=default("turn_smart_silence_ms"),
        smart_turn_max_wait_ms=default("turn_smart_max_wait_ms"),
        smart_turn_threshold=default("turn_smart_threshold"),
        smart_turn_model_weight=default("turn_smart_model_weight"),
    )
    if unfinished_lead_ms is not None:
        listener = listener.model_copy(update={"unfinished_pending_lead_ms": unfinished_lead_ms})
    return vad, listener


async def listener_level(
    clips: list[TurnClip], timing: Timing, unfinished_lead_ms: int | None = None
) -> dict[str, list[ClipOutcome]]:
    """Every clip through the listener under each rule; a rule's "+spec" mode shares its decisions."""
    stt = WhisperSpeechToText(default("stt_model"), cpu_threads=min(2, os.cpu_count() or 1))
    smart = SmartTurnModel()
    await stt.warm_up()
    await smart.warm_up()
    outcomes: dict[str, list[ClipOutcome]] = {base: [] for base in BASE_MODES}
    try:
        for index, clip in enumerate(clips):
            for mode in outcomes:
                vad_config, config = listener_setup(mode, unfinished_lead_ms)
                vad = SileroVoiceActivity(vad_config)
                model = smart if mode == "smart_turn" else None
                outcomes[mode].append(await run_clip(clip, vad, stt, config, model, timing))
            if (index + 1) % 50 == 0:
                print(f"  {index + 1}/{len(clips)} clips", flush=True)
    finally:
        stt.close()
        smart.close()
    return {mode: outcomes[mode.removesuffix("+spec")] for mode in MODES}


def listener_table(outcomes: dict[str, list[ClipOutcome]]) -> str:
    lines = [
        f"{'mode':<18}{'clips':>6}{'cut-off %':>10}{'(paused)':>9}{'no end':>7}"
        f"{'EOT p50':>9}{'p95':>6}{'work start p50':>15}{'p95':>6}{'spec':>6}{'wasted':>7}"
    ]
    for mode, rows in outcomes.items():
        paused = [r for r in rows if r.clip.has_pauses]
        ends = [r.end_latency_ms for r in rows if r.end_latency_ms is not None]
        starts = [
            (r.reply_start_ms if mode.endswith("spec") else r.end_latency_ms)
            for r in rows
            if r.end_latency_ms is not None
        ]
        spec = mode.endswith("spec")
        lines.append(
            f"{mode:<18}{len(rows):>6}{100 * sum(r.premature for r in rows) / len(rows):>10.1f}"
            f"{100 * sum(r.premature for r in paused) / max(1, len(paused)):>9.1f}"
            f"{sum(r.end_latency_ms is None for r in rows):>7}{p(ends, 50):>9.0f}{p(ends, 95):>6.0f}"
            f"{p(starts, 50):>15.0f}{p(starts, 95):>6.0f}"
            f"{sum(r.speculations for r in rows) if spec else '-':>6}{sum(r.wasted for r in rows) if spec else '-':>7}"
        )
    return "\n".join(lines)


def snr_table(outcomes: dict[str, list[ClipOutcome]]) -> str:
    snrs = sorted({r.clip.snr_db for r in outcomes["silence"]}, key=lambda s: -1e9 if s is None else -s)
    header = f"{'cut-off % / EOT p50':<22}" + "".join(f"{'clean' if s is None else f'{s:g} dB':>16}" for s in snrs)
    lines = [header]
    for mode in BASE_MODES:
        row = f"{mode:<22}"
        for snr in snrs:
            mine = [r for r in outcomes[mode] if r.clip.snr_db == snr]
            ends = [r.end_latency_ms for r in mine if r.end_latency_ms is not None]
            row += f"{100 * sum(r.premature for r in mine) / len(mine):>9.1f}{p(ends, 50):>7.0f}"
        lines.append(row)
    return "\n".join(lines)


def ratio_lines(figures: dict[str, dict[str, float]]) -> str:
    """Each mode's figures against the first one's (the silence rule)."""
    first, *others = figures
    base = figures[first]
    lines = []
    for mode in others:
        values = figures[mode]
        parts = [f"{name} {values[name] / base[name]:.2f}x" for name in values if base.get(name)]
        lines.append(f"{mode} vs {first}: " + ", ".join(parts))
    return "\n".join(lines)


# -- part 2: whole calls ---------------------------------------------------------------------------


@dataclass
class CallFigures:
    reply_ms: list[float] = field(default_factory=list)
    """First agent audio after the caller's audio, from the clip's true last word (simulator)."""
    voice_to_voice_ms: list[float] = field(default_factory=list)
    talked_over: int = 0
    utterances: int = 0
    agent_turns: int = 0
    """Turns the agent took; more than `utterances` means a caller's sentence was taken as two turns."""
    unanswered: int = 0
    speculation: list[int] = field(default_factory=lambda: [0, 0, 0])
    """started, used, wasted (call records)."""


def set_mode(pod: Pod, agent: VoiceAgent, mode: str) -> None:
    """Listeners and replies made from now on follow `mode` (the pod loaded Smart Turn at start)."""
    assert pod.voice is not None
    stack = pod.voice.stack
    vad_config, listener_config = listener_setup(mode)
    stack.engines.vad.config = vad_config  # type: ignore[attr-defined]
    stack.listener_config = stack.listener_config.model_copy(
        update={key: getattr(listener_config, key) for key in listener_config.model_fields_set}
    )
    agent.speculate = mode.endswith("spec")


def collect_call(figures: CallFigures, report: CallReport, script: list[Say | Pause], clips: dict[str, TurnClip]):
    """Add one call's figures (caller timeline: seconds since the stream started)."""
    for index, (start, end, label) in enumerate(report.utterances):
        clip = clips[label]
        last_word = start + clip.speech_end_ms / 1000
        next_start = report.utterances[index + 1][0] if index + 1 < len(report.utterances) else float("inf")
        figures.utterances += 1
        figures.talked_over += any(start + 0.2 < s < last_word for s, _ in report.agent_spans)
        replies = [s for s, _ in report.agent_spans if end <= s < next_start]
        if replies:
            figures.reply_ms.append((replies[0] - last_word) * 1000)
        else:
            figures.unanswered += 1


def whole_calls(clips: list[TurnClip], calls: int, modes: tuple[str, ...]) -> dict[str, CallFigures]:
    by_label = {clip.name: clip for clip in clips}
    results = {mode: CallFigures() for mode in modes}
    reply_wait_s = REPLY_WAIT_S["scripted"]
    with model_settings("scripted") as llm:
        settings = Settings(
            twilio_auth_token=secrets.token_hex(16),
            numbers={AGENT_NUMBER: AGENT.id},
            log_level="WARNING",
            turn_detection="smart_turn",  # loads Smart Turn; each call's mode is set below
            memory_limit_bytes=4 << 30,  # this process also holds part 1's models: not the pod's 1 GiB
            **llm,  # type: ignore[arg-type]
        )
        app = create_app(settings, agent_configs=[AGENT])
        with BackgroundServer(app, settings) as url:
            pod: Pod = app.state.pod
            agent = pod.agents.get(AGENT.id)
            assert isinstance(agent, VoiceAgent)
            token = settings.twilio_auth_token.get_secret_value()
            for index in range(calls + 1):  # the first is a warm-up, not counted
                pair = [clips[(2 * index + k) % len(clips)] for k in range(2)]
                script: list[Say | Pause] = [Pause(GREETING_WAIT_S)]
                for clip in pair:
                    script += [Say(clip.mulaw8k, clip.name), Pause(reply_wait_s)]
                for mode in modes if index else modes[:1]:
                    set_mode(pod, agent, mode)
                    report = place_call(url, token, agent, script)
                    if not index:
                        continue
                    record = agent.records[-1]
                    figures = results[mode]
                    collect_call(figures, report, script, by_label)
                    figures.agent_turns += len(record.turns)
                    figures.voice_to_voice_ms += [t.voice_to_voice_ms for t in record.turns if t.voice_to_voice_ms]
                    for k, name in enumerate(("speculation_started", "speculation_used", "speculation_wasted")):
                        figures.speculation[k] += getattr(record, name, 0)
                print(f"call {index}/{calls} done" if index else "warm-up call done", flush=True)
    return results


def calls_table(results: dict[str, CallFigures]) -> str:
    lines = [
        f"{'mode':<18}{'said':>5}{'turns':>6}{'reply p50':>10}{'p95':>6}{'v2v p50':>9}{'p95':>6}"
        f"{'talked over':>12}{'unanswered':>11}{'spec used/wasted':>18}"
    ]
    for mode, f in results.items():
        started, used, wasted = f.speculation
        lines.append(
            f"{mode:<18}{f.utterances:>5}{f.agent_turns:>6}{p(f.reply_ms, 50):>10.0f}{p(f.reply_ms, 95):>6.0f}"
            f"{p(f.voice_to_voice_ms, 50):>9.0f}{p(f.voice_to_voice_ms, 95):>6.0f}{f.talked_over:>12}"
            f"{f.unanswered:>11}{f'{used}/{wasted} of {started}':>18}"
        )
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the small subset of the turn set, 2 calls per mode")
    parser.add_argument("--calls", type=int, default=None, help="whole calls per mode (default 6; quick 2)")
    parser.add_argument("--part", choices=("both", "listener", "calls"), default="both")
    parser.add_argument("--stt-ms", type=float, help="count this Whisper time per run (default: as measured)")
    parser.add_argument("--smart-turn-ms", type=float, help="count this Smart Turn time per run (default: measured)")
    parser.add_argument(
        "--unfinished-lead-ms",
        type=int,
        help="listener part: announce an unfinished pause this long before the bound (default: the listener's)",
    )
    args = parser.parse_args()
    print(machine(), flush=True)
    started = time.monotonic()
    clips = load_turn_set(quick=args.quick)
    print(f"{len(clips)} clips, {sum(c.has_pauses for c in clips)} with mid-sentence pauses")
    if args.part != "calls":
        await listener_part(clips, args)
    if args.part != "listener":
        calls = args.calls if args.calls is not None else (2 if args.quick else 6)
        call_clips = clips if args.quick else [c for c in clips if c.snr_db in (None, 20.0)]
        results = await asyncio.to_thread(whole_calls, call_clips, calls, CALL_MODES)
        print(f"\nWhole calls (real time, scripted model; {calls} calls per mode, 2 turns each)")
        print(calls_table(results))
        call_figures = {m: {"reply p50": p(r.reply_ms, 50), "reply p95": p(r.reply_ms, 95)} for m, r in results.items()}
        print(ratio_lines(call_figures))
    print(f"\n{machine()} (at the end); whole run {time.monotonic() - started:.0f} s")


async def listener_part(clips: list[TurnClip], args: argparse.Namespace) -> None:
    timing = Timing(fixed_stt_ms=args.stt_ms, fixed_smart_turn_ms=args.smart_turn_ms)
    outcomes = await listener_level(clips, timing, args.unfinished_lead_ms)
    lead = ListenerConfig().unfinished_pending_lead_ms if args.unfinished_lead_ms is None else args.unfinished_lead_ms
    print(f"\nunfinished pauses announced (TurnPending) {lead} ms before the judged rules' bound")
    counted = ", ".join(
        f"{name} {'as measured' if fixed is None else f'{fixed:.0f} ms'}"
        for name, fixed in (("Whisper", args.stt_ms), ("Smart Turn", args.smart_turn_ms))
    )
    print(
        f"\nListener level (simulated time; measured per run, median: Whisper {p(timing.stt_ms, 50):.0f} ms,"
        f" Smart Turn {p(timing.smart_turn_ms, 50):.0f} ms; counted: {counted})"
    )
    print("work start: when the reply's model request can start (+spec: at the likely end, played at the end)")
    print(listener_table(outcomes))
    print()
    print(snr_table(outcomes))
    figures = {}
    for mode, rows in outcomes.items():
        ends = [r.end_latency_ms for r in rows if r.end_latency_ms is not None]
        starts = [r.reply_start_ms if mode.endswith("spec") else r.end_latency_ms for r in rows if r.end_latency_ms]
        figures[mode] = {
            "cut-offs": sum(r.premature for r in rows),
            "EOT p50": p(ends, 50),
            "EOT p95": p(ends, 95),
            "work start p50": p([s for s in starts if s is not None], 50),
        }
    print(ratio_lines(figures))


if __name__ == "__main__":
    asyncio.run(main())
