"""The agent's own voice coming back on the caller's track (line echo, a speakerphone) must not
read as caller speech: it would barge in on the agent, and its words would be answered.

`EchoGuard` keeps what the speaker put on the line (the reference), placed on the play-out
timeline, and runs each caller frame through the call's echo canceller (in a pod our
`LineEchoCanceller`, chosen over WebRTC's AEC3 by measurement: `benchmarks/echo.py`) against the
reference that was playing when that frame was captured, before the listener sees it. The
canceller finds the echo's delay itself and keeps the caller's own voice during double talk, so a
real interruption is still heard.

Timing: audio is sent ahead of real time and played at real time, so the speaker reports each
piece with the clock time it starts playing (`Speaker.playing_until` before it was queued). Caller
frames are placed by their position in the caller's audio from an anchor set once, by the first
frame's arrival: a frame never arrives before it was captured, so the echo can only come later
than its reference (never earlier, which no canceller could undo), and the jitter of later frames
never moves the alignment (a move of even a few samples would undo the canceller's fit).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

import numpy as np
import soxr

from agents.engines.protocols import EchoCanceller

RATE = 16000
"""The pipeline's rate: caller frames arrive at it, and the reference is kept at it."""
LINE_RATE = 8000
"""The phone line's rate: the reference is band-limited to it, as the echo is."""
BLOCK = RATE // 100
"""Cancellers work on whole 10 ms blocks; a frame's remainder waits for the next frame."""
CHUNK = 2 * BLOCK
"""At most this much goes to the canceller at once (a carrier's 20 ms frame)."""
MAX_REFERENCE_SECONDS = 30.0
"""Bound on reference audio kept per call (~0.94 MB): queued replies ahead of play-out plus the
echo tail behind it; past it the oldest goes first."""
ECHO_TAIL_SECONDS = 1.0
"""How long after the last reference sample caller frames still pass the canceller (longer than
any echo delay it handles); outside it frames pass untouched, at no cost."""


class EchoGuard:
    """One call's echo guard. Not shared between calls; runs inline on the event loop."""

    def __init__(
        self,
        canceller: EchoCanceller,
        clock: Callable[[], float] = time.monotonic,
        max_reference_seconds: float = MAX_REFERENCE_SECONDS,
    ) -> None:
        """`clock` must be the speaker's: the times it reports are read against it."""
        if max_reference_seconds <= 0:
            raise ValueError(f"max_reference_seconds must be positive, not {max_reference_seconds}")
        self.clock = clock
        self.canceller = canceller
        self._origin = clock()
        self._max_samples = int(max_reference_seconds * RATE)
        self._segments: deque[tuple[int, np.ndarray]] = deque()
        """(start index on the reference timeline, samples) in play order, not overlapping."""
        self._stored = 0
        self._reference_end = -1
        """Index just after the last reference sample (-1: none yet)."""
        self._base: int | None = None
        """Reference index of the caller's first sample (set once, by the first frame's arrival)."""
        self._fed = 0
        """Caller samples taken so far."""
        self._pending = np.zeros(0, dtype=np.int16)
        self.frames_cancelled = 0
        """Caller blocks that went through the canceller (the rest passed untouched)."""

    @property
    def reference_seconds(self) -> float:
        """Reference audio held now (at most `max_reference_seconds`)."""
        return self._stored / RATE

    # -- the speaker's side -------------------------------------------------------------------

    def played(self, pcm: bytes, sample_rate: int, starts_at: float) -> None:
        """The speaker queued `pcm` (PCM16 mono at `sample_rate`), to start playing at `starts_at`."""
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, not {sample_rate}")
        samples = np.frombuffer(pcm, dtype="<i2", count=len(pcm) // 2)
        if samples.size == 0:
            return
        if sample_rate > LINE_RATE:  # as the line carries it: nothing above 4 kHz comes back
            samples = soxr.resample(samples, sample_rate, LINE_RATE, quality="LQ")
            sample_rate = LINE_RATE
        if sample_rate != RATE:
            samples = soxr.resample(samples, sample_rate, RATE, quality="LQ")
        samples = np.asarray(samples, dtype=np.int16)[-self._max_samples :]
        start = max(self._index(starts_at), self._reference_end)  # play-out is sequential
        self._segments.append((start, samples))
        self._stored += samples.size
        self._reference_end = start + samples.size
        while self._stored > self._max_samples:
            self._stored -= self._segments.popleft()[1].size

    def cleared(self) -> None:
        """Barge-in: what was queued and not yet played never will be."""
        cut = self._index(self.clock())
        while self._segments and self._segments[-1][0] >= cut:
            self._stored -= self._segments.pop()[1].size
        if self._segments:
            start, samples = self._segments[-1]
            keep = max(0, cut - start)
            if keep < samples.size:
                self._segments[-1] = (start, samples[:keep])
                self._stored -= samples.size - keep
        self._reference_end = min(self._reference_end, cut) if self._segments else -1

    # -- the caller's side --------------------------------------------------------------------

    def process(self, pcm: bytes) -> bytes:
        """One caller frame (PCM16 at 16 kHz) in, the same audio with the agent's echo removed out.

        Output follows input in whole 10 ms blocks (a frame's remainder comes out with the next)."""
        near = np.frombuffer(pcm, dtype="<i2", count=len(pcm) // 2)
        arrived = self._index(self.clock())
        first = arrived - (self._fed + near.size)  # the caller's first sample, had this frame come at once
        if self._base is None:
            self._base = first
        self._fed += near.size
        if self._pending.size:
            near = np.concatenate((self._pending, near))
        whole = near.size // BLOCK * BLOCK
        self._pending = near[whole:].copy()
        if whole == 0:
            return b""
        start = self._base + self._fed - near.size  # reference index of near[0]
        if self._reference_end < 0 or start > self._reference_end + int(ECHO_TAIL_SECONDS * RATE):
            self._forget(start)
            return near[:whole].tobytes()
        near, far = near[:whole], self._reference(start, start + whole)
        self._forget(start)
        out = [
            np.asarray(self.canceller.process(near[i : i + CHUNK], far[i : i + CHUNK]), np.int16)
            for i in range(0, whole, CHUNK)
        ]
        self.frames_cancelled += whole // BLOCK
        return b"".join(chunk.tobytes() for chunk in out)

    # -- the reference timeline ---------------------------------------------------------------

    def _index(self, at: float) -> int:
        return round((at - self._origin) * RATE)

    def _reference(self, start: int, end: int) -> np.ndarray:
        far = np.zeros(end - start, dtype=np.int16)
        for seg_start, samples in self._segments:
            lo, hi = max(start, seg_start), min(end, seg_start + samples.size)
            if seg_start >= end:
                break
            if lo < hi:
                far[lo - start : hi - start] = samples[lo - seg_start : hi - seg_start]
        return far

    def _forget(self, before: int) -> None:
        """Drop reference that ended more than the echo tail before `before`."""
        horizon = before - int(ECHO_TAIL_SECONDS * RATE)
        while self._segments and self._segments[0][0] + self._segments[0][1].size < horizon:
            self._stored -= self._segments.popleft()[1].size
