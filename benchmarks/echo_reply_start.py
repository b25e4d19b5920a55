"""The echo canceller at a reply's start, offline: does the agent's echo pass as speech, and is a
caller who talks right then still heard?

Why: in whole calls (`echo.py`) the guard lets the agent's echo through now and then (1-3
self-interruptions in 18 calls), always early in a reply. Between replies the play-out offset
moves the echo by a few samples; this probe isolates that. Two caller fixtures play as two replies
1 s apart; the second reply's echo comes `shift` samples (16 kHz) later than the first's, through a
line of 40/120/250 ms and 6/12/20 dB echo return loss with the line's own filtering. Each run goes
through `LineEchoCanceller` and the real Silero detector (the pod's `VadConfig`, onset at 64 ms):

- echo alone: runs where Silero reported speech (an onset) on the cancelled echo of reply 2;
- a caller at reply 2's start (0, 100 or 300 ms into its echo, the `interrupt` fixture): runs
  where Silero reported no speech within 1 s of the caller's first sample (a missed interruption).

Synthetic and deterministic, about 5 minutes on 2 cores (each run replays both replies): compare
a canceller change here first, then in whole calls with `echo.py`.

    .venv/bin/python benchmarks/echo_reply_start.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.engines.local.line_echo_canceller import LineEchoCanceller
from agents.engines.local.silero import SileroVoiceActivity, VadConfig
from agents.engines.protocols import SpeechOnset, SpeechStarted
from telephony.settings import Settings
from telephony.voice import pod_vad_config
from tests.support.line_echo import two_replies
from tests.support.speech import load

RATE = 16000
BLOCK = 320
REPLIES = ("speak_to_person", "order_number", "next_appointment", "order_status")
PAIRS = ((0, 1), (1, 2), (2, 3), (3, 0), (0, 2), (1, 3))
DELAYS_MS = (40, 120, 250)
SHIFTS = (-48, -20, -7, -2, 3, 9, 27, 60)
"""Samples at 16 kHz by which reply 2's echo comes later than reply 1's (the search sees 4)."""
LOSSES_DB = (6, 12, 20)
CALLER_AT_MS = (0, 100, 300)


def pod_vad() -> VadConfig:
    """The pod's default detector (`telephony.voice`): during a reply, a barge-in acts on the 64 ms
    onset, at the pod's threshold. (Until 2026-12-02 this probe used `VadConfig()`: threshold 0.5
    and speech only after 200 ms, stricter than the pod, so it missed callers the pod hears and
    heard less echo than the pod would.)"""
    return pod_vad_config(Settings.model_construct())  # the defaults, unread from the environment


def pcm(name: str) -> np.ndarray:
    return np.frombuffer(load(name), dtype=np.int16).astype(np.float64)


def speech_at(vad: SileroVoiceActivity, near: np.ndarray, far: np.ndarray) -> list[int]:
    """Samples at which Silero reported speech starting in the cancelled caller track."""
    canceller, detector, found = LineEchoCanceller(), vad.detector(), []
    for i in range(0, near.size - BLOCK + 1, BLOCK):
        block = np.clip(near[i : i + BLOCK], -32768, 32767).astype(np.int16)
        out = np.asarray(canceller.process(block, far[i : i + BLOCK].astype(np.int16)), dtype=np.int16)
        found += [i for event in detector.feed(out.tobytes()) if isinstance(event, (SpeechOnset, SpeechStarted))]
    return found


def main() -> None:
    vad = SileroVoiceActivity(pod_vad())
    replies, caller = [pcm(name) for name in REPLIES], pcm("interrupt")
    echo_runs = echo_heard = caller_runs = caller_missed = 0
    by_shift: dict[int, list[int]] = {shift: [0, 0] for shift in SHIFTS}
    for a, b in PAIRS:
        for delay_ms in DELAYS_MS:
            for shift in SHIFTS:
                for loss in LOSSES_DB:
                    far, near, start = two_replies(replies[a], replies[b], delay_ms * RATE // 1000, shift, loss)
                    echo_runs += 1
                    if any(at >= start - BLOCK for at in speech_at(vad, near, far)):
                        echo_heard += 1
                        by_shift[shift][0] += 1
                    for at_ms in CALLER_AT_MS:
                        said = start + at_ms * RATE // 1000
                        talking = near.copy()
                        part = caller[: near.size - said]
                        talking[said : said + part.size] += part
                        caller_runs += 1
                        window = range(said - RATE // 10, said + RATE)
                        if not any(at in window for at in speech_at(vad, talking, far)):
                            caller_missed += 1
                            by_shift[shift][1] += 1
    print(f"echo alone: speech heard in {echo_heard} of {echo_runs} runs")
    print(f"caller at a reply's start: missed in {caller_missed} of {caller_runs} runs")
    print("by shift (samples): " + ", ".join(f"{s}: {e} echo / {m} missed" for s, (e, m) in by_shift.items()))


if __name__ == "__main__":
    main()
