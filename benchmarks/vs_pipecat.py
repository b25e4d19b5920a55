"""Switchboard against Pipecat 1.14 on the same models and the same simulated Twilio calls.

Why: a latency figure means little without a peer measured in the same run on the same machine.
Pipecat is the best-known self-hosted voice-agent framework; run with our models (Whisper tiny.en
int8 beam 1, Kokoro int8 `jf_nezumi`, Silero, the scripted model server) behind its own Twilio
serializer, it shows what our pipeline saves and what a turn model costs or gains on phone audio.

Method: Pipecat 1.14 is installed into a separate virtual environment (`<model cache>/pipecat-venv`,
the model cache being `SWITCHBOARD_MODEL_CACHE` or ~/.cache/switchboard; made once and reused while
the pinned requirements are unchanged; without it the script says why and stops). Its bot
(`benchmarks/pipecat_bot.py`, run by that venv's python) serves a TwiML webhook and a FastAPI
WebSocket behind `TwilioFrameSerializer`, models loaded once and warmed, in two turn configurations:
`silence` (Silero stop 0.6 s, no turn model: our rule) and `smart_turn` (Silero stop 0.2 s + Smart
Turn v3.2, Pipecat's recommendation). Our side is a real pod (as in `latency.py`) with its default
settings. Both talk to one scripted OpenAI-compatible server (the same replies, streamed alike).
Our simulator calls each system in turn, call after call (so drift in machine load hits all alike),
a script like `latency.py`'s: the greeting plays, then two caller turns (by default its fixtures,
tests/fixtures/speech, 8 kHz mu-law), each followed by silence long enough for the slowest reply
(Smart Turn's 3 s fallback included). One warm-up call per system is not counted.

Caller audio (`--callers`): `fixtures` (default) is `latency.py`'s; `turn_set` is the turn set of
`benchmarks/turn_set.py` (sentences with mid-sentence pauses of 300-900 ms, Kokoro and espeak-ng
voices, clean and noisy; `--quick` takes its small subset), where a rule that ends turns on short
pauses shows as talked-over utterances and extra model requests.

Figures (milliseconds, the simulator's clock), per answered utterance:
- heard: end of the caller's audio -> first agent audio frame played (the simulator's turn latency;
  the playout lead is in). Fixtures end with ~0.4 s of silence after the words, turn-set clips with
  0.8-1.5 s, so a reply that begins inside that silence counts too (negative heard).
- heard_from_speech_end: from the caller's last word (heard plus that trailing silence).
- talked over: utterances in which agent audio began before the caller's last word.
- model requests: answered to the end, one per turn (more than utterances: turns were split), and
  dropped (speculative replies cancelled, interrupted ones); each call line shows what was asked.
The ratios are Switchboard's p50 (p95) over each Pipecat configuration's. On an overloaded machine
Pipecat's TTS gives up on a reply after 3 s without audio (its `stop_frame_timeout_s`), and on
Kokoro after three such replies: its calls then go silent (see `--bot-log`).

    .venv/bin/python benchmarks/vs_pipecat.py [--calls 6] [--quick] [--callers turn_set]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import os
import random
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.engines.local.kokoro import resolve_files
from agents.engines.local.model_files import cache_dir
from agents.engines.local.whisper import resolve_whisper_model
from agents.testing.scripted_llm import ScriptedLlmServer
from agents.voice_agent import VoiceAgent
from benchmarks.latency import (
    AGENT,
    AGENT_NUMBER,
    CALLER_TURNS,
    GREETING_WAIT_S,
    configuration,
    machine,
    p,
    place_call,
    scripted_rule,
    trailing_silence_s,
    utterance,
)
from telephony.app import create_app
from telephony.pod import Pod
from telephony.server import BackgroundServer
from telephony.settings import Settings
from telephony.simulator import CallReport, Pause, Say, SimulatedCall

BOT = Path(__file__).resolve().with_name("pipecat_bot.py")
PIPECAT = "pipecat-ai[silero,whisper,kokoro,websocket,runner,openai]==1.14.0"
SAME_AS_OURS = ("kokoro-onnx", "faster-whisper", "ctranslate2", "onnxruntime")
"""Engine packages pinned in Pipecat's venv to the versions this environment runs."""
VENV_STAMP = "switchboard-requirements.txt"
INSTALL_TIMEOUT_S = 1800
BOT_START_TIMEOUT_S = 600
BOT_LOG_TAIL_CHARS = 4000
REPLY_WAIT_S = 7.0
"""Silence after each caller turn: Smart Turn's 3 s fallback, Whisper and Kokoro's first audio fit."""
SYSTEMS = {
    "switchboard": "Switchboard (its defaults)",
    "pipecat_silence": "Pipecat, Silero stop 0.6 s, no turn model",
    "pipecat_smart_turn": "Pipecat, Silero stop 0.2 s + Smart Turn v3.2",
}
FIGURES = ("heard", "heard_from_speech_end")
TURN_SET_SEED = 14
"""Order of the turn set's clips across calls (fixed, so runs and systems get the same calls)."""
MAX_SHOWN_CHARS = 60
"""Bound on each caller turn shown per call (what the model was asked)."""


@dataclass
class SystemResults:
    """What one system's calls measured, in milliseconds."""

    figures: dict[str, list[float]] = field(default_factory=lambda: {name: [] for name in FIGURES})
    utterances: int = 0
    answered: int = 0
    talked_over: int = 0
    """Utterances during which the agent began to speak before the caller's last word (a cut-off)."""
    requests: int = 0
    """Model requests answered to the end: more than utterances means turns were split."""
    dropped: int = 0
    """Model requests the agent hung up on (a speculative reply dropped, an interrupted one)."""


@dataclass(frozen=True, slots=True)
class CallerTurn:
    """One thing the caller says, and how much of its audio follows the last word."""

    say: Say
    trailing_s: float


def fixture_turns() -> list[CallerTurn]:
    """`latency.py`'s caller: its fixtures in its rotation (two a call)."""
    says = [utterance(name) for pair in CALLER_TURNS for name in pair]
    return [CallerTurn(say, trailing_silence_s(say)) for say in says]


def turn_set_turns(quick: bool) -> list[CallerTurn]:
    """The turn set's clips (mid-sentence pauses, noise; `benchmarks/turn_set.py`), as the line carries them."""
    from benchmarks.turn_set import LINE_RATE, load_turn_set

    clips = load_turn_set(quick=quick)
    random.Random(TURN_SET_SEED).shuffle(clips)  # so a call's two turns are not one sentence twice
    return [CallerTurn(Say(c.mulaw8k, c.name), len(c.mulaw8k) / LINE_RATE - c.speech_end_ms / 1000) for c in clips]


def call_script(turns: list[CallerTurn], index: int) -> list[Say | Pause]:
    """Call `index`: the greeting, then the next two caller turns, each followed by `REPLY_WAIT_S`."""
    script: list[Say | Pause] = [Pause(GREETING_WAIT_S)]
    for offset in range(2):
        script += [turns[(2 * index + offset) % len(turns)].say, Pause(REPLY_WAIT_S)]
    return script


# -- Pipecat's environment and bot -----------------------------------------------------------------


def requirements() -> list[str]:
    return [PIPECAT] + [f"{name}=={importlib.metadata.version(name)}" for name in SAME_AS_OURS]


def ensure_venv(venv: Path) -> Path | None:
    """The python of a venv with Pipecat installed (made now if missing or stale); None if it failed."""
    python = venv / "bin" / "python"
    wanted = "\n".join(requirements()) + "\n"
    stamp = venv / VENV_STAMP
    if python.is_file() and stamp.is_file() and stamp.read_text(encoding="utf-8") == wanted:
        return python
    print(f"installing Pipecat into {venv} (minutes the first time): {', '.join(requirements())}", flush=True)
    began = time.monotonic()
    with tempfile.TemporaryFile() as log:
        try:
            if venv.exists():
                shutil.rmtree(venv)
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300, stdout=log, stderr=log)
            subprocess.run(
                [str(python), "-m", "pip", "install", "--disable-pip-version-check", *requirements()],
                check=True,
                timeout=INSTALL_TIMEOUT_S,
                stdout=log,
                stderr=log,
            )
        except (OSError, subprocess.SubprocessError) as error:
            print(f"skipped: could not install Pipecat into {venv}: {error}\n{tail(log)}", flush=True)
            return None
    stamp.write_text(wanted, encoding="utf-8")
    print(f"installed in {time.monotonic() - began:.0f} s", flush=True)
    return python


def smart_turn_file() -> Path | None:
    """Our pinned copy of Smart Turn v3.2 (sha256-checked), so both systems load the same file; None
    where this tree has no Smart Turn engine yet (the bot then uses Pipecat's bundled copy)."""
    try:
        from agents.engines.local.smart_turn import smart_turn_path
    except ImportError:
        return None
    return smart_turn_path()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def pipecat_bot(python: Path, settings: Settings, llm_url: str, log_path: Path | None) -> Iterator[str]:
    """The bot running on a loopback port with our model files; yields its URL once it is ready.
    Its output goes to `log_path` if given (else a temporary file, shown if it fails to start)."""
    files = resolve_files(settings.tts_model, str(settings.tts_voices) if settings.tts_voices else None)
    port = free_port()
    command = [
        str(python),
        str(BOT),
        f"--port={port}",
        f"--whisper={resolve_whisper_model(settings.stt_model)}",
        f"--kokoro-model={files.model}",
        f"--kokoro-voices={files.voices}",
        f"--llm-url={llm_url}",
        f"--voice={settings.tts_voice}",
        f"--threads={settings.stt_threads}",
    ]
    smart_turn = smart_turn_file()
    if smart_turn is not None:
        command.append(f"--smart-turn={smart_turn}")
    with log_path.open("w+b") if log_path else tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_ready(process, url, log)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_ready(process: subprocess.Popen[bytes], url: str, log: object) -> None:
    deadline = time.monotonic() + BOT_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the Pipecat bot exited with status {process.returncode}:\n{tail(log)}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return
        time.sleep(0.5)
    raise RuntimeError(f"the Pipecat bot was not ready after {BOT_START_TIMEOUT_S} s:\n{tail(log)}")


def tail(log: object) -> str:
    log.seek(0)  # type: ignore[attr-defined]
    return log.read().decode(errors="replace")[-BOT_LOG_TAIL_CHARS:]  # type: ignore[attr-defined]


# -- the calls -------------------------------------------------------------------------------------


class Systems:
    """How to place a call to each system."""

    def __init__(self, pod_url: str, pod: Pod, bot_url: str, model: ScriptedLlmServer) -> None:
        agent = pod.agents.get(AGENT.id)
        assert isinstance(agent, VoiceAgent)
        self.agent = agent
        self.pod_url = pod_url
        self.token = pod.settings.twilio_auth_token.get_secret_value()
        self.bot_url = bot_url
        self.model = model

    def call(self, system: str, script: list[Say | Pause]) -> tuple[CallReport, list[tuple[str, bool]]]:
        """Place one call; its report and what the model was asked: each request's last caller turn,
        and whether the agent read the answer to its end."""
        seen = {id(request) for request in self.model.requests}
        if system == "switchboard":
            report = place_call(self.pod_url, self.token, self.agent, script)
        else:
            config = system.removeprefix("pipecat_")
            simulated = SimulatedCall(
                self.bot_url, "unused", to=AGENT_NUMBER, script=script, tail_s=1.0, answer_path=f"/voice/{config}"
            )
            report = asyncio.run(simulated.run())
        new = [request for request in self.model.requests if id(request) not in seen]
        return report, [(last_user_text(request.messages), request.outcome == "completed") for request in new]


def last_user_text(messages: list[dict[str, object]]) -> str:
    texts = [str(message.get("content") or "") for message in messages if message.get("role") == "user"]
    return texts[-1].strip() if texts else ""


def replies(report: CallReport, trailing: dict[str, float]) -> tuple[list[tuple[str, float]], int]:
    """(label, seconds from the caller's last word to the first agent audio after it) per answered
    utterance, and how many utterances the agent talked over. An answer is agent audio that starts
    after the last word and before the caller's next utterance: `CallReport.turn_latencies` plus the
    trailing silence when it starts after the audio ends, and counted too when it starts inside
    the trailing silence (a fast end of turn)."""
    answered, talked_over = [], 0
    for index, (start, end, label) in enumerate(report.utterances):
        words_end = end - trailing[label]
        next_start = report.utterances[index + 1][0] if index + 1 < len(report.utterances) else float("inf")
        talked_over += any(start <= span < words_end for span, _ in report.agent_spans)
        after = [span for span, _ in report.agent_spans if words_end <= span < next_start]
        if after:
            answered.append((label, after[0] - words_end))
    return answered, talked_over


def collect(results: SystemResults, call: tuple[CallReport, list[tuple[str, bool]]], turns: list[CallerTurn]) -> str:
    """Add one call's figures to `results`; a one-line summary of the call."""
    report, asked = call
    trailing = {turn.say.label: turn.trailing_s for turn in turns}
    answered, talked_over = replies(report, trailing)
    for label, seconds in answered:
        results.figures["heard"].append((seconds - trailing[label]) * 1000)
        results.figures["heard_from_speech_end"].append(seconds * 1000)
    results.utterances += len(report.utterances)
    results.answered += len(answered)
    results.talked_over += talked_over
    results.requests += sum(completed for _, completed in asked)
    results.dropped += sum(not completed for _, completed in asked)
    shown = ", ".join(f"{label} {(seconds - trailing[label]) * 1000:.0f}" for label, seconds in answered)
    summary = f"heard {shown or '-'} ({len(answered)}/{len(report.utterances)} answered"
    summary += f", {talked_over} talked over){describe(report)}"
    shown_asked = [repr(text[:MAX_SHOWN_CHARS]) + ("" if completed else " (dropped)") for text, completed in asked]
    return summary + "; model asked: " + " | ".join(shown_asked)


def describe(report: CallReport) -> str:
    return "" if report.utterances and report.agent_spans else f"; outcome {report.outcome!r}"


def run_calls(
    systems: Systems, names: list[str], turns: list[CallerTurn], calls: int, warmup: int
) -> dict[str, SystemResults]:
    results = {name: SystemResults() for name in names}
    for index in range(warmup):
        for name in names:
            call = systems.call(name, call_script(turns, index))
            print(f"warm-up {index + 1}/{warmup} {name}: {collect(SystemResults(), call, turns)}", flush=True)
    for index in range(calls):
        for name in names:  # alternate, so a noisy neighbour hits every system alike
            began = time.monotonic()
            summary = collect(results[name], systems.call(name, call_script(turns, index)), turns)
            print(f"call {index + 1}/{calls} {name:<19} ({time.monotonic() - began:.0f} s): {summary}", flush=True)
    return results


# -- the tables ------------------------------------------------------------------------------------


def table(results: dict[str, SystemResults]) -> str:
    lines = [f"{'ms':<22}" + "".join(f"{name + ' n':>24}{'p50':>7}{'p95':>7}" for name in results)]
    for figure in FIGURES:
        row = f"{figure:<22}"
        for r in results.values():
            values = r.figures[figure]
            row += f"{len(values):>24}{p(values, 50):>7.0f}{p(values, 95):>7.0f}"
        lines.append(row)
    lines += [
        f"{name}: {SYSTEMS[name]}; {r.answered}/{r.utterances} answered, {r.talked_over} talked over, "
        f"{r.requests} model requests answered ({r.dropped} dropped)"
        for name, r in results.items()
    ]
    return "\n".join(lines)


def ratios(results: dict[str, SystemResults]) -> str:
    if "switchboard" not in results:
        return ""
    ours = results["switchboard"].figures
    lines = [f"{'switchboard / pipecat':<40}{'p50':>8}{'p95':>8}"]
    for name in results:
        if name == "switchboard":
            continue
        theirs = results[name].figures
        for figure in FIGURES:
            cells = "".join(ratio(ours[figure], theirs[figure], q) for q in (50, 95))
            lines.append(f"{name + ' ' + figure:<40}{cells}")
    return "\n".join(lines)


def ratio(ours: list[float], theirs: list[float], q: float) -> str:
    """One cell: our percentile over theirs; "-" when either side answered nothing (or theirs is 0)."""
    if not ours or not theirs or p(theirs, q) == 0:
        return f"{'-':>8}"
    return f"{p(ours, q) / p(theirs, q):>7.2f}x"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=6, help="calls per system (default 6)")
    parser.add_argument("--quick", action="store_true", help="1 call per system after the warm-up (a smoke run)")
    parser.add_argument("--warmup", type=int, default=1, help="calls per system placed first, not counted")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help=f"comma-separated from: {', '.join(SYSTEMS)}")
    parser.add_argument(
        "--callers", choices=("fixtures", "turn_set"), default="fixtures", help="the caller's audio (default fixtures)"
    )
    parser.add_argument("--bot-log", type=Path, default=None, help="keep the Pipecat bot's output in this file")
    parser.add_argument("--venv", type=Path, default=None, help="Pipecat's venv (default: <model cache>/pipecat-venv)")
    args = parser.parse_args()
    names = [name.strip() for name in args.systems.split(",") if name.strip()]
    if not names or set(names) - set(SYSTEMS):
        parser.error(f"--systems takes names from: {', '.join(SYSTEMS)}")
    if args.calls < 1 or args.warmup < 0:
        parser.error("--calls must be >= 1 and --warmup >= 0")
    calls = 1 if args.quick else args.calls
    print(machine(), flush=True)
    turns = fixture_turns() if args.callers == "fixtures" else turn_set_turns(quick=args.quick)
    started = time.monotonic()
    python = ensure_venv(args.venv or cache_dir() / "pipecat-venv")
    if python is None:
        return
    with ScriptedLlmServer(scripted_rule) as model:
        settings = Settings(
            twilio_auth_token=secrets.token_hex(16),
            numbers={AGENT_NUMBER: AGENT.id},
            log_level="WARNING",
            llm_backend="openai",
            llm_base_url=model.base_url,
            llm_model="scripted",
        )
        app = create_app(settings, agent_configs=[AGENT])
        with (
            BackgroundServer(app, settings) as pod_url,
            pipecat_bot(python, settings, model.base_url, args.bot_log) as bot,
        ):
            pod: Pod = app.state.pod
            assert pod.voice is not None
            print(configuration(settings, pod.voice.stack, AGENT, calls, REPLY_WAIT_S), flush=True)
            print(f"Pipecat: {requirements()[0]} in {python.parents[1]}; bot at {bot}", flush=True)
            print(f"caller: {args.callers}, {len(turns)} turns, two a call in rotation", flush=True)
            results = run_calls(Systems(pod_url, pod, bot, model), names, turns, calls, args.warmup)
    print(f"\n{machine()} (at the end); whole run {time.monotonic() - started:.0f} s (pid {os.getpid()})\n")
    print(table(results))
    print()
    print(ratios(results))


if __name__ == "__main__":
    main()
