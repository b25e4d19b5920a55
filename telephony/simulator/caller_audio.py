"""The caller's side of the audio: reading WAV files of any rate and encoding, turning them into
Twilio's 8 kHz mu-law, and a synthetic voice for when no recording is at hand."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import soxr

from telephony.audio.mulaw import TWILIO_SAMPLE_RATE, audioop, pcm16_to_mulaw

_PCM, _FLOAT, _ALAW, _MULAW, _EXTENSIBLE = 1, 3, 6, 7, 0xFFFE
MAX_WAV_BYTES = 200 * 1024 * 1024


class WavError(ValueError):
    pass


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """Mono int16 samples and the sample rate of a WAV file.

    Handles PCM 8/16/24/32-bit, 32-bit float, mu-law and A-law (Python's `wave` module reads
    neither of the last two), mixing channels down to mono.
    """
    data = Path(path).read_bytes()
    if len(data) > MAX_WAV_BYTES:
        raise WavError(f"{path}: larger than {MAX_WAV_BYTES} bytes")
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise WavError(f"{path}: not a RIFF/WAVE file")
    fmt: tuple[int, int, int, int] | None = None
    pos = 12
    while pos + 8 <= len(data):
        chunk_id, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        body = data[pos + 8 : pos + 8 + size]
        if chunk_id == b"fmt ":
            if len(body) < 16:
                raise WavError(f"{path}: fmt chunk too short")
            tag, channels, rate = struct.unpack("<HHI", body[:8])
            bits = struct.unpack("<H", body[14:16])[0]
            if tag == _EXTENSIBLE and len(body) >= 26:
                tag = struct.unpack("<H", body[24:26])[0]
            fmt = (tag, channels, rate, bits)
        elif chunk_id == b"data":
            if fmt is None:
                raise WavError(f"{path}: data before fmt chunk")
            return _decode(body, *fmt), fmt[2]
        pos += 8 + size + (size & 1)
    raise WavError(f"{path}: no data chunk")


def _decode(body: bytes, tag: int, channels: int, rate: int, bits: int) -> np.ndarray:
    if channels < 1 or rate <= 0:
        raise WavError("bad channel count or sample rate")
    if tag == _MULAW:
        samples = np.frombuffer(audioop.ulaw2lin(body, 2), dtype=np.int16)
    elif tag == _ALAW:
        samples = np.frombuffer(audioop.alaw2lin(body, 2), dtype=np.int16)
    elif tag == _PCM and bits == 8:
        samples = ((np.frombuffer(body, dtype=np.uint8).astype(np.int16) - 128) << 8).astype(np.int16)
    elif tag == _PCM and bits == 16:
        samples = np.frombuffer(body[: len(body) & ~1], dtype="<i2")
    elif tag == _PCM and bits == 24:
        raw = np.frombuffer(body[: len(body) - len(body) % 3], dtype=np.uint8).reshape(-1, 3)
        samples = ((raw[:, 2].astype(np.int8).astype(np.int32) << 8) | raw[:, 1]).astype(np.int16)
    elif tag == _PCM and bits == 32:
        samples = (np.frombuffer(body[: len(body) & ~3], dtype="<i4") >> 16).astype(np.int16)
    elif tag == _FLOAT and bits == 32:
        floats = np.frombuffer(body[: len(body) & ~3], dtype="<f4")
        samples = (np.clip(floats, -1, 1) * 32767).astype(np.int16)
    else:
        raise WavError(f"unsupported WAV encoding (format tag {tag}, {bits} bits)")
    if channels > 1:
        usable = samples.size - samples.size % channels
        samples = samples[:usable].reshape(-1, channels).mean(axis=1).astype(np.int16)
    return samples


def write_wav(path: str | Path, samples: np.ndarray, rate: int) -> None:
    """Write int16 samples (shape (n,) or (n, channels)) as a PCM16 WAV."""
    frames = np.ascontiguousarray(samples, dtype="<i2")
    channels = 1 if frames.ndim == 1 else frames.shape[1]
    body = frames.tobytes()
    header = b"RIFF" + struct.pack("<I", 36 + len(body)) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, _PCM, channels, rate, rate * channels * 2, channels * 2, 16)
    Path(path).write_bytes(header + b"data" + struct.pack("<I", len(body)) + body)


def to_twilio(samples: np.ndarray, rate: int) -> bytes:
    """Int16 mono samples at any rate -> 8 kHz mu-law, as a phone line would carry them."""
    if rate != TWILIO_SAMPLE_RATE:
        samples = soxr.resample(samples, rate, TWILIO_SAMPLE_RATE, quality="HQ")
    return pcm16_to_mulaw(np.asarray(samples, dtype=np.int16).tobytes())


def load_utterance(path: str | Path) -> bytes:
    samples, rate = read_wav(path)
    return to_twilio(samples, rate)


def synthetic_utterance(seconds: float = 1.6, rate: int = TWILIO_SAMPLE_RATE, pitch_hz: float = 140.0) -> bytes:
    """A voice-like sound (harmonics of a gliding pitch, syllable-shaped loudness) as 8 kHz mu-law.

    Not speech, but loud, voiced and pulsing like speech, so energy detectors and the echo agent
    treat it as a caller talking.
    """
    t = np.arange(int(seconds * rate)) / rate
    f0 = pitch_hz * (1 + 0.08 * np.sin(2 * np.pi * 1.3 * t))
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 12))
    syllables = 0.55 + 0.45 * np.sin(2 * np.pi * 4.0 * t) ** 2
    edge = np.minimum(1.0, np.minimum(t, seconds - t) / 0.05)
    signal = voice * syllables * edge
    samples = (signal / np.max(np.abs(signal)) * 12000).astype(np.int16)
    return to_twilio(samples, rate)
