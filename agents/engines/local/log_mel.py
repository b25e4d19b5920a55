"""Whisper-style log-mel features in numpy, for models trained on Whisper's front end (Smart Turn).

The recipe is Whisper's: 16 kHz audio, a 400-point STFT every 160 samples under a periodic Hann
window (centred frames, reflect padding, the last frame dropped), the power spectrum through 80
Slaney-scaled mel filters from 0 to 8 kHz, then log10 with a 1e-10 floor, clamped to 8 below the
loudest value, and mapped by (x + 4) / 4. The filterbank and window are built once per
`LogMel`; a call costs one batched real FFT and one matrix product (5-10 ms for 8 s of audio on
one core here).
"""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16000
N_FFT = 400
HOP = 160
N_MELS = 80
LOG_FLOOR = 1e-10
DYNAMIC_RANGE = 8.0
"""log10 units kept below the loudest value (80 dB)."""


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear (200/3 Hz per mel) below 1 kHz, logarithmic above."""
    linear = hz / (200.0 / 3.0)
    log_start = 1000.0 / (200.0 / 3.0)
    log_step = np.log(6.4) / 27.0
    return np.where(hz >= 1000.0, log_start + np.log(np.maximum(hz, 1e-12) / 1000.0) / log_step, linear)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    log_start = 1000.0 / (200.0 / 3.0)
    log_step = np.log(6.4) / 27.0
    return np.where(mel >= log_start, 1000.0 * np.exp(log_step * (mel - log_start)), mel * (200.0 / 3.0))


def mel_filterbank(n_mels: int = N_MELS, n_fft: int = N_FFT, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """[n_mels, n_fft // 2 + 1] triangles on the Slaney scale, each scaled to unit area (Slaney norm)."""
    bins = np.fft.rfftfreq(n_fft, d=1.0 / sample_rate)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(np.array(0.0)), _hz_to_mel(np.array(sample_rate / 2)), n_mels + 2))
    widths = np.diff(edges)
    rising = (bins[None, :] - edges[:-2, None]) / widths[:-1, None]
    falling = (edges[2:, None] - bins[None, :]) / widths[1:, None]
    triangles = np.maximum(0.0, np.minimum(rising, falling))
    return triangles * (2.0 / (edges[2:] - edges[:-2]))[:, None]


class LogMel:
    """Computes [80, frames] features for 16 kHz float audio; frames = samples // 160."""

    def __init__(self) -> None:
        self.filters = mel_filterbank().astype(np.float32)
        n = np.arange(N_FFT)
        self.window = (0.5 - 0.5 * np.cos(2.0 * np.pi * n / N_FFT)).astype(np.float32)  # periodic Hann

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        """Features of `audio` (float, mono, 16 kHz, at least `N_FFT // 2 + 1` samples)."""
        samples = np.asarray(audio, dtype=np.float32).reshape(-1)
        if samples.size <= N_FFT // 2:
            raise ValueError(f"log-mel needs more than {N_FFT // 2} samples, got {samples.size}")
        padded = np.pad(samples, N_FFT // 2, mode="reflect")
        count = 1 + (padded.size - N_FFT) // HOP
        frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP][:count]
        spectrum = np.fft.rfft(frames * self.window, axis=-1)
        power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32)[:-1]  # Whisper drops the last frame
        log_spec = np.log10(np.maximum(self.filters @ power.T, LOG_FLOOR))
        log_spec = np.maximum(log_spec, log_spec.max() - DYNAMIC_RANGE)
        return (log_spec + 4.0) / 4.0
