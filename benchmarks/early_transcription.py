"""How much early transcription saves between the end of a turn and its transcript.

Why: the VAD declares a turn over only after the end-of-turn silence (600 ms); the listener can
start Whisper as soon as speech pauses (plus its tail, 100 ms), so by the time the turn ends the text
is often ready. This script measures that, with the real Silero VAD and the bundled Whisper tiny.en.

Method: each caller fixture (8 kHz mu-law, through the real 8k -> 16k inbound path) gets 500 ms of
silence before it and 1.5 s after, and is fed to a fresh `TurnListener` in 20 ms frames paced in
real time (each frame is fed at its arrival time on the wall clock, as a call would deliver it), so
work started during the pause gets exactly the head start it would get on a call. Latency is the
wall time from the arrival of the frame that ended the turn to the transcript being done. Early on
and off alternate, several repetitions each, medians reported. Also printed: the per-window cost
of the VAD (it runs inline on the event loop) and Whisper's compute time at beam 1 and beam 5.

Run from the repository root (about a minute on 2 cores):

    .venv/bin/python benchmarks/early_transcription.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.conversation.listener import ListenerConfig, TurnListener, UtteranceReady
from agents.engines.local.silero import WINDOW_MS, SileroVoiceActivity
from agents.engines.local.whisper import WhisperSpeechToText
from agents.engines.protocols import Transcript
from tests.support.speech import FRAME_BYTES, FRAME_MS, TEXTS, frames, load, normalise, silence


async def one_call(
    activity: SileroVoiceActivity, stt: WhisperSpeechToText, pcm: bytes, early: bool
) -> tuple[float, float, str, bool]:
    """Feed `pcm` in real time; (turn end -> transcript ms, speech stop -> transcript ms, text, early used)
    for the call's last turn."""
    listener = TurnListener(activity.detector(), stt, ListenerConfig(early_transcription=early))
    turns: list[tuple[UtteranceReady, float]] = []
    done_at: dict[asyncio.Task[Transcript], float] = {}
    start = time.perf_counter()
    for index, frame in enumerate(frames(pcm, FRAME_BYTES)):
        arrival = start + (index + 1) * FRAME_MS / 1000  # a frame is whole once its last sample is in
        await asyncio.sleep(max(0.0, arrival - time.perf_counter()))
        for event in listener.feed(frame):
            if isinstance(event, UtteranceReady):
                turns.append((event, arrival))
                # fires on the loop as soon as the pool thread hands back (at once if already done)
                event.transcript.add_done_callback(lambda task: done_at.setdefault(task, time.perf_counter()))
    texts = [(await ready.transcript).text for ready, _ in turns]
    listener.close()
    last, ended_wall = turns[-1]
    latency = (done_at[last.transcript] - ended_wall) * 1000
    return latency, latency + last.ended_at_ms - last.speech_end_ms, " ".join(texts), last.early


def vad_window_cost_us(activity: SileroVoiceActivity, pcm: bytes) -> float:
    """Median wall time of the VAD per 32 ms window, from feed calls of exactly one window."""
    detector = activity.detector()
    costs = []
    for frame in frames(pcm, WINDOW_MS * 32):
        began = time.perf_counter_ns()
        detector.feed(frame)
        costs.append((time.perf_counter_ns() - began) / 1000)
    return statistics.median(costs)


async def beam_figures(stt: WhisperSpeechToText, repeats: int) -> None:
    print("\nWhisper tiny.en compute per utterance (ms, median), exact = normalised text matches")
    print(f"{'fixture':<18}{'audio ms':>9}{'beam 1':>9}{'exact':>7}{'beam 5':>9}{'exact':>7}")
    for name, text in TEXTS.items():
        pcm = load(name)
        row = [f"{name:<18}{len(pcm) // 32:>9}"]
        runs: dict[int, list[Transcript]] = {1: [], 5: []}
        for _ in range(repeats):  # alternate, so a noisy neighbour hits both alike
            for beam in runs:
                stt.beam_size = beam
                runs[beam].append(await stt.transcribe(pcm))
        for beam_runs in runs.values():
            exact = all(normalise(run.text) == normalise(text) for run in beam_runs)
            row.append(f"{statistics.median(run.compute_ms for run in beam_runs):>9.0f}{'yes' if exact else 'NO':>7}")
        print("".join(row))
    stt.beam_size = 1


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    activity = SileroVoiceActivity()
    stt = WhisperSpeechToText()
    await stt.warm_up()

    all_pcm = b"".join(load(name) for name in TEXTS)
    print(f"VAD: {vad_window_cost_us(activity, all_pcm):.0f} us per {WINDOW_MS} ms window (median, inline)")
    await beam_figures(stt, args.repeats)

    print("\nTurn end -> transcript done (ms, median of repeats); +VAD = from where speech stopped")
    print(f"{'fixture':<18}{'late':>8}{'early':>8}{'saved':>8}{'late+VAD':>10}{'early+VAD':>10}{'early used':>12}  ok")
    late_all: list[float] = []
    early_all: list[float] = []
    for name, text in TEXTS.items():
        pcm = silence(500) + load(name) + silence(1500)
        results: dict[bool, list[tuple[float, float, str, bool]]] = {True: [], False: []}
        for _ in range(args.repeats):
            for mode in (False, True):
                results[mode].append(await one_call(activity, stt, pcm, mode))
        late = statistics.median(r[0] for r in results[False])
        early = statistics.median(r[0] for r in results[True])
        late_vad = statistics.median(r[1] for r in results[False])
        early_vad = statistics.median(r[1] for r in results[True])
        used = sum(r[3] for r in results[True])
        ok = all(normalise(r[2]) == normalise(text) for rs in results.values() for r in rs)
        late_all.append(late)
        early_all.append(early)
        print(
            f"{name:<18}{late:>8.0f}{early:>8.0f}{late - early:>8.0f}{late_vad:>10.0f}{early_vad:>10.0f}"
            f"{used:>9}/{args.repeats}  {'yes' if ok else 'NO'}"
        )
    late_median, early_median = statistics.median(late_all), statistics.median(early_all)
    print(
        f"{'median':<18}{late_median:>8.0f}{early_median:>8.0f}{late_median - early_median:>8.0f}"
        f"   saving {100 * (1 - early_median / late_median):.0f}%"
    )
    stt.close()


if __name__ == "__main__":
    asyncio.run(main())
