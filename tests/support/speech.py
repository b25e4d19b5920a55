"""Caller speech fixtures as the pipeline sees them: 16 kHz PCM16 through the real inbound path.

The WAVs are 8 kHz mu-law, as Twilio carries them; decoding them and streaming them through
`telephony.audio.StreamResampler(8000, 16000)` in 20 ms frames mirrors what a call does, so the
VAD and Whisper tests hear what production hears.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from telephony.audio.mulaw import TWILIO_SAMPLE_RATE
from telephony.audio.resamplers import StreamResampler
from telephony.simulator.caller_audio import read_wav

SPEECH_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "speech"
SAMPLE_RATE = 16000
FRAME_MS = 20
FRAME_BYTES = SAMPLE_RATE * FRAME_MS // 1000 * 2

TEXTS = {
    "order_status": "What is the status of my order?",
    "interrupt": "Wait, stop. I have a question.",
    "speak_to_person": "I would like to speak to a person, please.",
    "order_number": "My order number is one two three four five.",
    "next_appointment": "When is my next appointment?",
}
"""What each fixture says (tests/fixtures/speech/README.md)."""


HUM = "mhm"
"""A fixture with no words: espeak-ng's en-gb "mm-hmm", which tiny.en writes as "And then them."
unless prompted with the backchannel spellings."""


def load_hum() -> bytes:
    """The hum fixture as 16 kHz PCM16 (see `HUM`)."""
    return load(HUM)


def load(name: str) -> bytes:
    """The fixture `name` as 16 kHz PCM16, resampled in 20 ms frames as a call would."""
    samples, rate = read_wav(SPEECH_DIR / f"{name}.wav")
    assert rate == TWILIO_SAMPLE_RATE, f"{name}.wav is {rate} Hz, expected {TWILIO_SAMPLE_RATE}"
    resampler = StreamResampler(TWILIO_SAMPLE_RATE, SAMPLE_RATE)
    step = TWILIO_SAMPLE_RATE * FRAME_MS // 1000
    out = [resampler.process(samples[i : i + step].tobytes()) for i in range(0, samples.size, step)]
    out.append(resampler.flush())
    return b"".join(out)


def silence(ms: int) -> bytes:
    return bytes(SAMPLE_RATE * ms // 1000 * 2)


def noise(ms: int, rms: float = 30.0, seed: int = 0) -> bytes:
    """Quiet line hiss: Gaussian noise at `rms` (PCM16 units)."""
    rng = np.random.default_rng(seed)
    return np.clip(rng.normal(0, rms, SAMPLE_RATE * ms // 1000), -32768, 32767).astype(np.int16).tobytes()


def frames(pcm: bytes, size: int = FRAME_BYTES) -> list[bytes]:
    return [pcm[i : i + size] for i in range(0, len(pcm), size)]


def speech_span_ms(pcm: bytes, window_ms: int = 10, floor_db: float = -35.0) -> tuple[int, int]:
    """First and last ms whose short-time energy is within `floor_db` of the loudest window."""
    samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float64)
    step = SAMPLE_RATE * window_ms // 1000
    count = samples.size // step
    energy = (samples[: count * step].reshape(count, step) ** 2).mean(axis=1) + 1e-9
    loud = np.flatnonzero(10 * np.log10(energy / energy.max()) > floor_db)
    return int(loud[0] * window_ms), int((loud[-1] + 1) * window_ms)


def normalise(text: str) -> str:
    """Lower case, no punctuation, digits spelled out, so "12345." equals "one two three four five"."""
    words = "zero one two three four five six seven eight nine".split()
    text = re.sub(r"\d", lambda m: f" {words[int(m.group())]} ", text.lower())
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text).split())
