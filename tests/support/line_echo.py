"""A phone line's echo of what the agent played, for canceller tests and `benchmarks/echo_reply_start.py`:
a delay, a loss and the line's own filtering, with the echo moving between two replies."""

from __future__ import annotations

import numpy as np

RATE = 16000


def line_filter(signal: np.ndarray) -> np.ndarray:
    """The line's own filtering (a short low-pass)."""
    return np.convolve(signal, [0.25, 0.5, 0.25], mode="same")


def two_replies(
    first: np.ndarray, second: np.ndarray, delay: int, shift: int, loss_db: float
) -> tuple[np.ndarray, np.ndarray, int]:
    """Two replies 1 s apart, the second's echo `shift` samples (16 kHz) later than the first's:
    (far, near without a caller, where reply 2's echo starts in near)."""
    far = np.concatenate([first, np.zeros(RATE), second, np.zeros(RATE // 2)])
    second_at = first.size + RATE
    echo = line_filter(far) * 10 ** (-loss_db / 20)
    near = np.zeros_like(far)
    near[delay : second_at + delay] += echo[:second_at]
    start = second_at + delay + shift
    tail = echo[second_at:][: near.size - start]
    near[start : start + tail.size] += tail
    near += np.random.default_rng(1).normal(size=near.size) * 10  # line noise
    return far, near, start
