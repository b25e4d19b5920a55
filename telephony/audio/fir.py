"""A low-latency streaming resampler for the simple ratios a call uses (8k <-> 16k, 24k -> 8k).

soxr filters in blocks: streaming 20 ms chunks, its MQ/HQ quality emits nothing for the first
120 ms and holds back 63 ms on average (up to 117 ms) at 8k -> 16k, and 43 ms (up to 73 ms) at
24k -> 8k (benchmarks/audio_path.py). Every one of those milliseconds delays barge-in detection
or the agent's first word. This polyphase FIR (Kaiser window, ~80 dB stopband, pass band flat to
~3.36 kHz at an 8 kHz side) emits every chunk at once with a fixed delay of 4 ms.

Ratios L/M whose factors exceed `MAX_FACTOR` (22.05 kHz, say) raise `UnsupportedRatio`; the
caller falls back to soxr.
"""

from __future__ import annotations

from math import ceil, gcd

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

MAX_FACTOR = 8
ATTENUATION_DB = 80.0
TRANSITION = 0.08
"""Transition band width as a fraction of the lower rate: 640 Hz at 8 kHz, ending at its Nyquist."""


class UnsupportedRatio(ValueError):
    pass


def design(in_rate: int, out_rate: int) -> tuple[int, int, np.ndarray, int]:
    """(L, M, polyphase filters as an (L, taps-per-phase) array reversed for dot products,
    delay in upsampled samples) for resampling by L/M."""
    g = gcd(in_rate, out_rate)
    up, down = out_rate // g, in_rate // g
    if max(up, down) > MAX_FACTOR:
        raise UnsupportedRatio(f"{in_rate} -> {out_rate} Hz is {up}/{down}; the FIR handles factors up to {MAX_FACTOR}")
    upsampled_rate = in_rate * up
    low = min(in_rate, out_rate)
    width = TRANSITION * low
    cutoff = (low / 2 - width / 2) / upsampled_rate  # cycles per upsampled sample
    taps = ceil((ATTENUATION_DB - 7.95) / 14.36 * upsampled_rate / width)  # Kaiser's estimate
    half = ceil((taps - 1) / 2 / down) * down  # a whole number of output samples of delay
    length = 2 * half + 1
    length += -length % up
    beta = 0.1102 * (ATTENUATION_DB - 8.7)
    n = np.arange(length) - half
    h = 2 * cutoff * np.sinc(2 * cutoff * n) * np.kaiser(length, beta)
    h *= up / h.sum()  # unity gain after zero-stuffing
    phases = np.stack([h[p::up][::-1] for p in range(up)])
    return up, down, phases, half


class FirResampler:
    """Streams PCM16 mono from `in_rate` to `out_rate`, keeping filter history between chunks.

    Output is aligned with the input (the filter's warm-up is skipped), so a stream of N input
    samples gives N * out_rate / in_rate output samples once flushed.
    """

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._up, self._down, self._phases, half = design(in_rate, out_rate)
        self._taps = self._phases.shape[1]
        self._kernels = np.ascontiguousarray(self._phases[:, ::-1])  # for np.convolve
        self._delay_out = half // self._down
        self.delay_seconds = half / (in_rate * self._up)
        self.reset()

    def reset(self) -> None:
        self._history = np.zeros(self._taps - 1)
        self._seen = 0
        self._next = 0  # next output index, in upsampled samples
        self._skip = self._delay_out

    def process(self, samples: np.ndarray) -> np.ndarray:
        buffer = np.concatenate([self._history, samples.astype(np.float64)])
        first = self._seen - (self._taps - 1)  # stream index of buffer[0]
        self._seen += samples.size
        self._history = buffer[buffer.size - (self._taps - 1) :]
        outputs = np.arange(self._next, self._seen * self._up, self._down)
        if outputs.size == 0:
            return np.zeros(0, dtype=np.int16)
        self._next = int(outputs[-1]) + self._down
        starts = outputs // self._up - first - (self._taps - 1)  # buffer index of each window
        lo, hi = int(starts[0]), int(starts[-1]) + 1
        if self._up == 1:  # decimation (24k/16k/48k -> 8k): one filter, every M-th output
            y = np.convolve(buffer[lo : hi + self._taps - 1], self._kernels[0], "valid")[:: self._down]
        elif self._down == 1:  # interpolation (8k -> 16k): each phase yields one output per input
            segment = buffer[lo : hi + self._taps - 1]
            every_phase = np.stack([np.convolve(segment, kernel, "valid") for kernel in self._kernels], axis=1)
            y = every_phase.reshape(-1)[int(outputs[0] % self._up) :][: outputs.size]
        else:  # other ratios: every phase at every input position, then pick
            every_phase = sliding_window_view(buffer, self._taps)[lo:hi] @ self._phases.T
            y = every_phase[starts - lo, outputs % self._up]
        if self._skip:
            skipped = min(self._skip, y.size)
            y = y[skipped:]
            self._skip -= skipped
        return np.clip(np.rint(y), -32768, 32767).astype(np.int16)

    def flush(self) -> np.ndarray:
        """Emit the output still inside the filter, then start afresh."""
        pending = self._delay_out - self._skip
        tail = self.process(np.zeros(ceil(self._delay_out * self._down / self._up) + 1))[:pending]
        self.reset()
        return tail
