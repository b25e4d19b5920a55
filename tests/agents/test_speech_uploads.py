"""Uploaded audio is bounded before it grows: every way into the decoder (PCM WAV, a WAV `wave`
does not read, compressed input) checks the declared rate and channels and caps the length."""

from __future__ import annotations

import io
import struct
import wave

import numpy as np
import pytest

from agents.speech_uploads import UploadRefused, decode_upload


def float_wav(samples: np.ndarray, rate: int) -> bytes:
    """A 32-bit float WAV (format 3), which the standard `wave` module does not read: PyAV does."""
    data = samples.astype("<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, rate, rate * 4, 4, 32)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def pcm_wav(samples: np.ndarray, rate: int) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype("<i2").tobytes())
    return out.getvalue()


def test_a_float_wav_declaring_1_hz_is_refused_by_the_decoder_path_too() -> None:
    with pytest.raises(UploadRefused, match="sample rate 1 Hz"):
        decode_upload(float_wav(np.zeros(4096), 1), max_seconds=120)


def test_a_float_wav_is_read_and_capped() -> None:
    tone = 0.25 * np.sin(2 * np.pi * 440 * np.arange(8000) / 8000)
    pcm = np.frombuffer(decode_upload(float_wav(tone, 8000), max_seconds=2), dtype="<i2")
    assert abs(pcm.size - 16000) <= 64 and 7000 < np.abs(pcm).max() < 9000  # 1 s at 16 kHz, same level
    with pytest.raises(UploadRefused, match=r"longer than 0\.5 s"):
        decode_upload(float_wav(tone, 8000), max_seconds=0.5)


def test_16k_mono_pcm_passes_unchanged_and_other_rates_are_resampled() -> None:
    samples = np.random.default_rng(1).integers(-20000, 20000, 16000, dtype=np.int16)
    assert decode_upload(pcm_wav(samples, 16000), max_seconds=2) == samples.tobytes()
    tone = (8000 * np.sin(2 * np.pi * 440 * np.arange(44100) / 44100)).astype(np.int16)
    out = np.frombuffer(decode_upload(pcm_wav(tone, 44100), max_seconds=2), dtype="<i2")
    assert out.size == 16000 and 7500 < np.abs(out).max() < 8500


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"garbage" * 100, "not an audio file"),
        (b"", "not an audio file"),
        (b"RIFF\x00\x00\x00\x00WAVE", "not an audio file"),
    ],
)
def test_what_is_not_audio_gets_a_clear_refusal(data: bytes, message: str) -> None:
    with pytest.raises(UploadRefused, match=message):
        decode_upload(data, max_seconds=2)
