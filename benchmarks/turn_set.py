"""The turn set: caller utterances as a phone line carries them, with mid-sentence pauses and real ends.

Why: end-of-turn rules are judged on two axes at once, premature cut-offs (a turn ended inside a
mid-sentence pause: "my account number is seven seven four ... two nine one") and latency after
the caller's last word. Both need utterances whose pauses and ends are known exactly, in voices and
noise like a caller's. This module makes them offline and caches them; `turn_taking.py`,
`stt_wer.py` and the listener's calibration load them with `load_turn_set()`.

How a clip is made: each phrase of a sentence is spoken on its own (Kokoro `jf_nezumi` and
`jf_tebukuro` through the project's `KokoroTextToSpeech`, and two espeak-ng voices), trimmed to
its speech, resampled to 8 kHz and joined with pauses of 300-900 ms (seeded); 400 ms of silence
go before and 0.8-1.5 s after. Noise (white or babble made of reversed speech, alternating by
sentence) is mixed at 30, 20 or 10 dB SNR against the speech's power, then the whole clip goes
through G.711 mu-law and the pipeline's own 8k -> 16k stream resampler in 20 ms frames, as a call
delivers it. Times (`speech_end_ms`, `pauses_ms`) are exact positions in the caller's audio, before
the resampler's fixed ~4 ms delay.

Two renderings (`load_turn_set(rendering=...)`): "phrases", as above, where every phrase ends with
the falling tone of a finished sentence, and "continuous" (`benchmarks/turn_continuous.py`; the
default), where the sentence is synthesised once and cut at its boundaries, so the voice stays up
before a mid-sentence pause as a caller's does. The pauses' lengths are the same in both (same
seeds); a sentence of one phrase is the same audio in both, and the continuous set shares its render.

The clean 8 kHz renders are cached under `<model cache>/turn_set/<version>/` (the model cache is
`SWITCHBOARD_MODEL_CACHE` or ~/.cache/switchboard) and made again when missing; the version
changes with the sentences, voices or rendering, so a stale cache is never read. Noise and the
phone path are applied at load time (deterministic, fast).

    .venv/bin/python benchmarks/turn_set.py [--quick] [--rendering phrases]   # build if needed, print a summary
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import subprocess
import sys
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.engines.local.model_files import cache_dir
from benchmarks import turn_continuous
from telephony.audio.mulaw import TWILIO_SAMPLE_RATE, mulaw_to_pcm16, pcm16_to_mulaw
from telephony.audio.resamplers import StreamResampler
from telephony.simulator.caller_audio import read_wav

RENDER_VERSION = 1
"""Bump when the rendering changes (trimming, voices' settings), so caches are rebuilt."""
CONTINUOUS_VERSION = 1
"""Bump when the continuous rendering's cutting changes; the phrases renders are not rebuilt for it."""
RENDERINGS = ("phrases", "continuous")
DEFAULT_RENDERING = "continuous"
"""The more realistic one: Smart Turn's median at mid-sentence pauses fell from 0.31 (phrases) to 0.20."""
SAMPLE_RATE = 16000
LINE_RATE = TWILIO_SAMPLE_RATE
FRAME_MS = 20
LEAD_MS = 400
PAUSE_MS = (300, 900)
TRAIL_MS = (800, 1500)
TRIM_FLOOR_DB = -45.0
"""A phrase's speech is where 5 ms windows are within this of its loudest window."""
SNRS: tuple[float | None, ...] = (None, 30.0, 20.0, 10.0)
ESPEAK_TIMEOUT_S = 30

SENTENCES: dict[str, tuple[str, ...]] = {
    # mid-sentence pauses: a caller dictating, thinking, or trailing off on "and"/"because"/"um"
    "account_number": ("My account number is seven seven four,", "two nine one."),
    "book_tuesday": ("I'd like to book an appointment for", "next Tuesday."),
    "um_wondering": ("Um,", "I was wondering if you could check my order."),
    "phone_number": ("You can reach me at five five five,", "eight one two,", "three four six."),
    "zip_code": ("My zip code is nine four one,", "zero seven."),
    "card_digits": ("The card ends in", "six one eight eight."),
    "jacket_and": ("I ordered a blue jacket and", "a pair of gloves."),
    "monday_because": ("I can't make it on Monday because", "I have to work late."),
    "name_spelled": ("My name is Sarah,", "Sarah Miller."),
    "let_me_see": ("Let me see,", "I think it was the second one."),
    "cancel_and": ("Can you cancel my order", "and send me a refund?"),
    "so_basically": ("So basically,", "the package never arrived."),
    "pay_bill": ("I'd like to pay my bill,", "but the website", "keeps giving me an error."),
    "address_change": ("I need to change my address to", "the one on Elm Street."),
    # plain complete questions and answers
    "order_status": ("What is the status of my order?",),
    "opening_hours": ("What time do you open tomorrow?",),
    "real_person": ("Can I speak to a real person, please?",),
    "yes_correct": ("Yes, that's correct.",),
    "no_wrong": ("No, no, that's wrong.",),
    "refund": ("I would like a refund for my last order.",),
    "reschedule": ("Could you move my appointment to Friday morning?",),
    "thanks_bye": ("Thank you, that's all I needed.",),
    "delivery_time": ("How long will the delivery take?",),
    "wrong_item": ("I received the wrong item in my package.",),
    "password": ("I forgot my password and can't log in.",),
    "sounds_good": ("Okay, sounds good.",),
}
"""Sentence name -> phrases; a pause separates consecutive phrases."""

VOICES: dict[str, tuple[str, str]] = {
    "kokoro:jf_nezumi": ("kokoro", "jf_nezumi"),
    "kokoro:jf_tebukuro": ("kokoro", "jf_tebukuro"),
    "espeak:en-us": ("espeak", "en-us"),
    "espeak:en-gb+f3": ("espeak", "en-gb+f3"),
}
"""Voice label -> (engine, voice)."""

QUICK_SENTENCES = ("account_number", "book_tuesday", "um_wondering", "pay_bill", "no_wrong", "order_status")
QUICK_VOICES = ("kokoro:jf_nezumi", "espeak:en-us")
QUICK_SNRS: tuple[float | None, ...] = (None, 20.0)


@dataclass(frozen=True, slots=True)
class TurnClip:
    """One caller turn as the pipeline hears it, with where its words and pauses really are."""

    name: str
    sentence: str
    voice: str
    snr_db: float | None
    """None: clean line; else the SNR of the mixed noise against the speech."""
    noise: str
    """"none", "white" or "babble"."""
    text: str
    pcm16k: bytes
    """PCM16 mono at 16 kHz, after 8 kHz mu-law and the inbound 8k -> 16k resampler."""
    speech_start_ms: int
    speech_end_ms: int
    """The true end of the last word: a turn that ends before this is a premature cut-off."""
    pauses_ms: tuple[tuple[int, int], ...]
    """Mid-sentence pauses (start, end), in the clip's time."""
    mulaw8k: bytes = b""
    """The same clip as the line carries it (8 kHz mu-law), for the Twilio simulator."""

    @property
    def duration_ms(self) -> int:
        return len(self.pcm16k) * 1000 // (2 * SAMPLE_RATE)

    @property
    def has_pauses(self) -> bool:
        return bool(self.pauses_ms)


@dataclass(frozen=True, slots=True)
class Render:
    """A sentence spoken by one voice on a clean line: 8 kHz int16 and its phrases' spans (samples)."""

    samples: np.ndarray
    spans: tuple[tuple[int, int], ...]


def _check_rendering(rendering: str) -> None:
    if rendering not in RENDERINGS:
        raise ValueError(f"unknown turn set rendering {rendering!r}: one of {', '.join(RENDERINGS)}")


def version(rendering: str = "phrases") -> str:
    """Changes whenever what a render contains would change (the phrases one as it always was)."""
    _check_rendering(rendering)
    spec = [RENDER_VERSION, SENTENCES, VOICES, LEAD_MS, PAUSE_MS, TRAIL_MS, TRIM_FLOOR_DB]
    if rendering == "continuous":
        spec += [CONTINUOUS_VERSION, turn_continuous.SEARCH_MS, turn_continuous.SMOOTH_MS, turn_continuous.FADE_MS]
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]
    prefix = f"v{RENDER_VERSION}" if rendering == "phrases" else f"c{CONTINUOUS_VERSION}"
    return f"{prefix}-{digest}"


def set_dir(rendering: str = "phrases") -> Path:
    path = cache_dir() / "turn_set" / version(rendering)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _seed(*parts: object) -> int:
    return zlib.crc32("|".join(map(str, parts)).encode())


def _trim(samples: np.ndarray, rate: int) -> np.ndarray:
    """The phrase's speech only: from the first to the last 5 ms window within TRIM_FLOOR_DB of the peak."""
    step = rate // 200
    count = samples.size // step
    if count == 0:
        raise ValueError("a rendered phrase is empty")
    energy = (samples[: count * step].astype(np.float64).reshape(count, step) ** 2).mean(axis=1) + 1e-9
    loud = np.flatnonzero(10 * np.log10(energy / energy.max()) > TRIM_FLOOR_DB)
    return samples[loud[0] * step : (loud[-1] + 1) * step]


class Voices:
    """Speaks a phrase with any voice of the set; Kokoro is loaded on first use only."""

    def __init__(self) -> None:
        self._kokoro = None

    def speak(self, voice: str, text: str) -> np.ndarray:
        """The phrase at 8 kHz int16, trimmed to its speech."""
        engine, name = VOICES[voice]
        if engine == "kokoro":
            samples, rate = self._kokoro_speak(name, text)
        else:
            samples, rate = self._espeak(name, text)
        line = soxr.resample(_trim(samples, rate), rate, LINE_RATE, quality="HQ")
        return np.clip(np.round(line), -32768, 32767).astype(np.int16)

    def _kokoro_speak(self, voice: str, text: str) -> tuple[np.ndarray, int]:
        if self._kokoro is None:
            from agents.engines.local.kokoro import KokoroTextToSpeech

            self._kokoro = KokoroTextToSpeech.load(threads=max(1, min(2, os.cpu_count() or 1)))
        audio, rate = self._kokoro.kokoro.create(text, voice=voice, speed=1.0, lang=self._kokoro.lang)
        return (np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16), rate

    @staticmethod
    def _espeak(voice: str, text: str) -> tuple[np.ndarray, int]:
        with tempfile.TemporaryDirectory() as folder:
            out = Path(folder) / "phrase.wav"
            try:
                subprocess.run(
                    ["espeak-ng", "-v", voice, "-s", "155", "-w", str(out), text],
                    check=True,
                    capture_output=True,
                    timeout=ESPEAK_TIMEOUT_S,
                )
            except FileNotFoundError as error:
                raise RuntimeError("espeak-ng is not installed: apt-get install -y espeak-ng") from error
            return read_wav(out)

    def close(self) -> None:
        if self._kokoro is not None:
            self._kokoro.close()


def render(voices: Voices, sentence: str, voice: str, rendering: str = "phrases") -> Render:
    """Speak a sentence (phrase by phrase, or once and cut: `rendering`) and join the phrases with
    seeded pauses, at 8 kHz."""
    _check_rendering(rendering)
    rng = np.random.default_rng(_seed(sentence, voice, "timing"))
    pieces = [np.zeros(LINE_RATE * LEAD_MS // 1000, dtype=np.int16)]
    spans = []
    position = pieces[0].size
    phrases = SENTENCES[sentence]
    if rendering == "continuous":
        speech, _ = turn_continuous.continuous_pieces(
            lambda text: voices.speak(voice, text), phrases, LINE_RATE, TRIM_FLOOR_DB
        )
    else:
        speech = [voices.speak(voice, phrase) for phrase in phrases]
    for index, spoken in enumerate(speech):
        spans.append((position, position + spoken.size))
        pieces.append(spoken)
        position += spoken.size
        last = index == len(phrases) - 1
        gap_ms = int(rng.integers(*(TRAIL_MS if last else PAUSE_MS), endpoint=True))
        gap = np.zeros(LINE_RATE * gap_ms // 1000, dtype=np.int16)
        pieces.append(gap)
        position += gap.size
    return Render(np.concatenate(pieces), tuple(spans))


def cached_render(voices: Voices, sentence: str, voice: str, rendering: str = "phrases") -> Render:
    """The render from the cache, made (and saved atomically) when missing or unreadable. A sentence
    of one phrase has no boundary to cut: both renderings share the phrases render."""
    if len(SENTENCES[sentence]) == 1:
        rendering = "phrases"
    path = set_dir(rendering) / f"{sentence}__{voice.replace(':', '_').replace('+', '_')}.npz"
    try:
        with np.load(path) as data:
            return Render(data["samples"], tuple(map(tuple, data["spans"].tolist())))
    except (OSError, KeyError, ValueError):
        pass
    made = render(voices, sentence, voice, rendering)
    partial = path.with_name(f"{path.stem}.{os.getpid()}.partial.npz")
    np.savez(partial, samples=made.samples, spans=np.array(made.spans, dtype=np.int64))
    partial.replace(path)
    return made


def _babble_source() -> np.ndarray:
    """Unintelligible speech-like noise: the caller fixtures reversed and joined (8 kHz)."""
    folder = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "speech"
    clips = [read_wav(path)[0][::-1].astype(np.float64) for path in sorted(folder.glob("*.wav"))]
    return np.concatenate(clips)


def _noise(kind: str, size: int, rng: np.random.Generator, source: np.ndarray) -> np.ndarray:
    """Unit-RMS noise of `kind`: white Gaussian, or four overlapping talkers of reversed speech."""
    if kind == "white":
        return rng.normal(0.0, 1.0, size)
    mixed = np.zeros(size)
    for _ in range(4):
        start = int(rng.integers(0, source.size))
        mixed += np.resize(np.roll(source, -start), size)
    return mixed / (np.sqrt(np.mean(mixed**2)) + 1e-9)


def phone_path(mulaw: bytes) -> bytes:
    """8 kHz mu-law -> PCM16 -> the inbound stream resampler in 20 ms frames -> 16 kHz PCM16."""
    line = mulaw_to_pcm16(mulaw)
    resampler = StreamResampler(LINE_RATE, SAMPLE_RATE)
    step = LINE_RATE * FRAME_MS // 1000 * 2
    out = [resampler.process(line[i : i + step]) for i in range(0, len(line), step)]
    out.append(resampler.flush())
    return b"".join(out)


def make_clip(sentence: str, voice: str, snr_db: float | None, made: Render, babble: np.ndarray) -> TurnClip:
    """One clip: the render with noise at `snr_db` (none when None), through the phone path."""
    samples = made.samples.astype(np.float64)
    noise = "none"
    if snr_db is not None:
        noise = "white" if list(SENTENCES).index(sentence) % 2 == 0 else "babble"
        speech = np.concatenate([samples[start:end] for start, end in made.spans])
        level = np.sqrt(np.mean(speech**2) / 10 ** (snr_db / 10))
        rng = np.random.default_rng(_seed(sentence, voice, snr_db, "noise"))
        samples = samples + level * _noise(noise, samples.size, rng, babble)
    to_ms = 1000 / LINE_RATE
    spans = made.spans
    snr = "clean" if snr_db is None else f"{snr_db:g}dB"
    mulaw = pcm16_to_mulaw(np.clip(np.round(samples), -32768, 32767).astype(np.int16).tobytes())
    return TurnClip(
        name=f"{sentence}/{voice}/{snr}",
        sentence=sentence,
        voice=voice,
        snr_db=snr_db,
        noise=noise,
        text=" ".join(SENTENCES[sentence]),
        pcm16k=phone_path(mulaw),
        speech_start_ms=round(spans[0][0] * to_ms),
        speech_end_ms=round(spans[-1][1] * to_ms),
        pauses_ms=tuple((round(a[1] * to_ms), round(b[0] * to_ms)) for a, b in itertools.pairwise(spans)),
        mulaw8k=mulaw,
    )


def load_turn_set(quick: bool = False, rendering: str = DEFAULT_RENDERING) -> list[TurnClip]:
    """Every clip of the set (sentences x voices x SNRs), or a small subset when `quick`, in one of
    `RENDERINGS` ("phrases": each phrase synthesised alone; "continuous": the sentence once, cut).

    Renders missing from the cache are made first (Kokoro loads then: a few seconds; the whole set
    takes a few minutes on 2 cores, once).
    """
    _check_rendering(rendering)
    sentences = QUICK_SENTENCES if quick else tuple(SENTENCES)
    voice_names = QUICK_VOICES if quick else tuple(VOICES)
    snrs = QUICK_SNRS if quick else SNRS
    babble = _babble_source()
    voices = Voices()
    clips = []
    try:
        for sentence in sentences:
            for voice in voice_names:
                made = cached_render(voices, sentence, voice, rendering)
                clips.extend(make_clip(sentence, voice, snr, made, babble) for snr in snrs)
    finally:
        voices.close()
    return clips


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the small subset only")
    parser.add_argument("--rendering", choices=RENDERINGS, default=DEFAULT_RENDERING, help="how sentences are spoken")
    args = parser.parse_args()
    clips = load_turn_set(quick=args.quick, rendering=args.rendering)
    paused = [clip for clip in clips if clip.has_pauses]
    gaps = [end - start for clip in paused for start, end in clip.pauses_ms]
    tails = [clip.duration_ms - clip.speech_end_ms for clip in clips]
    print(f"turn set {version(args.rendering)} in {set_dir(args.rendering)}")
    print(
        f"{len(clips)} clips: {len({c.sentence for c in clips})} sentences x {len({c.voice for c in clips})} voices"
        f" x {len({c.snr_db for c in clips})} SNRs; {len(paused)} with mid-sentence pauses"
    )
    print(f"pauses: {len(gaps)}, {min(gaps)}-{max(gaps)} ms; trailing silence {min(tails)}-{max(tails)} ms")
    print(f"{'voice':<20}{'clips':>6}{'speech s (mean)':>17}")
    for voice in sorted({c.voice for c in clips}):
        mine = [c for c in clips if c.voice == voice]
        mean_s = sum(c.speech_end_ms - c.speech_start_ms for c in mine) / len(mine) / 1000
        print(f"{voice:<20}{len(mine):>6}{mean_s:>17.2f}")
    for clip in clips[: len(SNRS if not args.quick else QUICK_SNRS) * 2]:
        print(f"  {clip.name:<40} end {clip.speech_end_ms:>5} ms  pauses {list(clip.pauses_ms)}  {clip.text!r}")


if __name__ == "__main__":
    main()
