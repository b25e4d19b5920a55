"""Our own echo canceller for phone lines: find the echo's delay by cross-correlation against what
was played, cancel it with a short least-squares filter placed at that delay, and squash what is
left when cancelling took most of the frame away (it was echo), never when it did not (the caller).

Why not only WebRTC's AEC3: on Kokoro's voice over the simulated line AEC3 took about a second to
converge and let the first sentence's echo through as speech (`benchmarks/echo.py`). Line echo is
a delay, a loss and the line's filtering: correlation finds the delay as soon as ~100 ms of echo
came back, and the filter starts from the tap correlation gives, so it cancels from the first word.
The filter is short (2 ms): a room's reverberation (a speakerphone in a hall) is beyond it.
"""

from __future__ import annotations

import numpy as np

RATE = 16000
MAX_DELAY_MS = 600
"""Longest echo delay searched for (the play-out timeline's error included)."""
WINDOW_MS = 500
"""Caller audio correlated against the reference for each delay estimate."""
GLANCE_MS = 60
"""The shortest window searched: when the filter fails, is what just came back an echo of ours at
some other delay (relock at once) or the caller's voice over the same echo (let it through)?"""
GLANCE_COHERENCE = 0.8
"""A glance is short, so it must be sure: the caller's voice over our echo correlates loosely."""
RELOCK_REACH_MS = 40
"""A relock (the filter failing) searches only this close to the known delay: play-out jitter moves
an echo by a few tens of ms, never across the search range, and a short window of the caller's
voiced speech can match the reference far away (a false relock squashes the caller's first words).
The periodic full-window estimate still finds an echo path that changed for good."""
CATCH_UP_BLOCKS = 5
"""Blocks after a relock during which a failing block that still matches the reference is squashed
rather than let through (until the fit cancels a block again: from then on a failing block is the
caller)..."""
SURE_LOCK = 0.95
"""...when the lock was this sure of an echo. A line's echo correlates with what was played at
0.98-0.99 (`benchmarks/echo.py`'s lines, 6-20 dB return loss); the caller's voice over a reply, on a
line with no echo at all, matched it by chance at 0.5-0.9, and squashing after such a lock took
100-120 ms of the caller's first word ("Wait, stop" heard as "Great stuff", the clear 650-780 ms late).
Until this call's line has shown an echo (a lock this sure), a lock less sure is tentative: the
caller's audio passes untouched until the filter has cancelled `CONFIRM_BLOCKS` blocks in a row (a
chance match fits only the block it was found on), and is never squashed. Once the line has shown
an echo, a relock on a short window (less sure by nature) acts at once, as the echo moved."""
CONFIRM_BLOCKS = 3
OVER_ECHO = 10.0
"""A failing block this many times (10 dB) louder than the echo the fit expects has the caller in it: an
echo that moved is about as loud as before. (Geigel's peak rule below misses a caller as loud as a
strong echo path's peaks; such a block was taken for a moved echo, relocked on the caller's voice
and squashed: callers missed at a reply's start, `benchmarks/echo_reply_start.py`.)"""
REALIGN_GAIN_DB = 6.0
"""A sub-step realignment (`_realign`) must cancel the block this much better than the fit did."""
RELOCK_WINDOW_MS = 200
"""The shorter window searched at once when the filter stops cancelling: play-out stalled or
jittered and the echo moved, and every 20 ms on the old delay lets echo through."""
FAILING_DB = -6.0
"""A block where cancelling removed less than this while the reference was echoing is failing: the
echo moved (play-out stalled or jittered), or the caller is talking. A moved echo is found again
within ~40 ms and, until the fit catches up, failing blocks are squashed, so it never leaks as speech."""
DECIMATE = 4
"""Delay search at 4 kHz, then refined at full rate within two of its steps (`_refine`)."""
ESTIMATE_EVERY = 10
"""Blocks between delay estimates once a delay is known (every block until then)."""
TAPS = 32
"""The cancelling filter's length (2 ms): the line's own response around the delay found."""
LEAD_TAPS = 12
"""Taps before the correlation peak: the search's error and the line filter's pre-ringing."""
MIN_COHERENCE = 0.5
"""Normalised correlation below which the caller's audio is not taken for an echo of ours."""
STAY_SHARE = 0.9
"""A known delay is kept while its correlation is at least this share of the best one: voiced speech
correlates almost as well a pitch period (~4-8 ms) off, and hopping there mid-reply restarts the fit and
lets half-cancelled echo through (a self-interruption)."""
MAX_ECHO_GAIN = 2.0
"""An echo louder than this times what was played is not an echo (0 dB return loss is the loudest)."""
SOLVE_EVERY = 4
"""Blocks between solving the fit (the costly step; the fit itself takes every block)."""
FORGET = 0.95
"""Per-block memory of the least-squares fit (~0.4 s): the line may drift."""
DOUBLE_TALK = 1.5
"""A block whose peak exceeds the loudest echo the recent reference can make this many times over
has the caller in it: the filter does not learn from it (Geigel's detector)."""
SUPPRESS_BELOW_DB = -12.0
"""Cancelling that left less than this of the block's energy removed echo, not the caller's voice..."""
SUPPRESS_GAIN = 0.05
"""...and what it left (the fit's error) is scaled down by this (-26 dB)."""
FLOOR_RMS = 30.0
"""Below this level (PCM16 units) a signal is line noise: nothing played, or nothing came back."""


class LineEchoCanceller:
    """One call's canceller (implements `EchoCanceller`); state is bounded (~1.2 s of audio)."""

    def __init__(self) -> None:
        self._max_delay = MAX_DELAY_MS * RATE // 1000
        self._window = WINDOW_MS * RATE // 1000
        self._relock = RELOCK_WINDOW_MS * RATE // 1000
        self._glance = GLANCE_MS * RATE // 1000
        self._since_reset = 0
        self._far = np.zeros(self._max_delay + self._window + TAPS, dtype=np.float64)
        self._near = np.zeros(self._window, dtype=np.float64)
        self._weights = np.zeros(TAPS, dtype=np.float64)
        self._r = np.zeros((TAPS, TAPS), dtype=np.float64)
        self._p = np.zeros(TAPS, dtype=np.float64)
        self._delay: int | None = None
        """Samples from the reference to its echo (None: no echo found yet)."""
        self._blocks = 0
        self._relocked_at = -CATCH_UP_BLOCKS - 1
        self._confirmed = 0
        """Blocks in a row the filter has cancelled since a tentative lock (see `SURE_LOCK`)."""
        self._echo_seen = False
        """This line has shown an echo of ours: a lock at `SURE_LOCK` or above."""
        self.delay_ms: float | None = None
        """The echo delay found (for benchmarks and logs)."""

    def process(self, near: np.ndarray, far: np.ndarray) -> np.ndarray:
        if near.shape != far.shape or near.ndim != 1:
            raise ValueError(f"near and far must be 1-D and of one length, not {near.shape} and {far.shape}")
        n = near.size
        if n > self._window:
            raise ValueError(f"blocks of at most {self._window} samples, not {n}")
        x = near.astype(np.float64)
        self._far = np.concatenate((self._far[n:], far.astype(np.float64)))
        self._near = np.concatenate((self._near[n:], x))
        self._blocks += 1
        if self._delay is None or self._blocks % ESTIMATE_EVERY == 0:
            self._estimate(self._window)
        if self._delay is None:
            return near
        taps = self._taps(n)
        echo = taps @ self._weights
        error = x - echo
        removed_db = _removed_db(x, error)
        predicted = float(echo @ echo)
        echoing = predicted > FLOOR_RMS**2 * n
        failing = removed_db > FAILING_DB and echoing
        talking = self._double_talk(x) or (failing and float(x @ x) > OVER_ECHO * predicted)
        squash = False
        if not talking and self._moved(x, removed_db, echoing, failing):
            taps = self._taps(n)  # cancel this block on the new delay already
            error = x - taps @ self._weights
            removed_db = _removed_db(x, error)
        if failing and not talking:
            # still failing just after the echo moved: the fit is catching up (the caller's voice
            # over an echo that did not move never gets here; it fails without a relock)
            catching_up = self._blocks - self._relocked_at <= CATCH_UP_BLOCKS and self._echo_seen
            squash = removed_db > FAILING_DB and catching_up and self._echo_alone(n)
        if not talking:  # learning from the caller's voice would teach the filter to cancel it
            self._learn(x, taps)
        if self._confirmed < CONFIRM_BLOCKS:  # a tentative lock: is it our echo, or a chance match?
            self._confirmed = self._confirmed + 1 if removed_db < FAILING_DB and not talking else 0
            if self._confirmed < CONFIRM_BLOCKS:
                return near
        if squash:
            return np.clip(np.rint(x * SUPPRESS_GAIN), -32768, 32767).astype(np.int16)
        if removed_db < SUPPRESS_BELOW_DB:
            if self._blocks > self._relocked_at:
                # the fit has caught up with the moved echo: a block that fails from now on has the caller
                # in it (squashing it took the first 60 ms of a caller's word, and Silero missed the word)
                self._relocked_at = -CATCH_UP_BLOCKS - 1
            error *= SUPPRESS_GAIN
        elif removed_db > 0:  # cancelling added energy: the echo is not where the filter put it (it moved,
            error = x  # or has not arrived); subtracting it would play a phantom echo of ours to the VAD
        return np.clip(np.rint(error), -32768, 32767).astype(np.int16)

    def _taps(self, n: int, delay: int | None = None) -> np.ndarray:
        """Rows: for each of the last `n` caller samples, the reference samples that echo into it
        (at `delay`, by default the one known)."""
        delay = self._delay if delay is None else delay
        assert delay is not None
        end = self._far.size - delay + LEAD_TAPS  # one past the newest tap of the last sample
        span = self._far[end - n - TAPS + 1 : end]
        return np.lib.stride_tricks.sliding_window_view(span, TAPS)[:, ::-1]

    def _double_talk(self, near: np.ndarray) -> bool:
        """The caller is talking (or nothing was played lately): louder than any echo could be."""
        far_peak = float(np.max(np.abs(self._far[-(self._max_delay + near.size) :])))
        if far_peak < FLOOR_RMS:
            return True  # nothing played lately: nothing to learn from or relock on
        return float(np.max(np.abs(near))) > DOUBLE_TALK * float(np.abs(self._weights).sum()) * far_peak + FLOOR_RMS

    def _learn(self, near: np.ndarray, taps: np.ndarray) -> None:
        self._r = FORGET * self._r + taps.T @ taps
        self._p = FORGET * self._p + taps.T @ near
        self._since_reset += 1
        if self._since_reset < 2 * SOLVE_EVERY or self._blocks % SOLVE_EVERY == 0:  # fast after a new delay
            ridge = 1e-3 * float(np.trace(self._r)) / TAPS + 1.0
            self._weights = np.linalg.solve(self._r + ridge * np.eye(TAPS), self._p)

    def _estimate(
        self, window: int, min_coherence: float = MIN_COHERENCE, moved_only: bool = False, near_only: bool = False
    ) -> bool:
        """Cross-correlate the last `window` samples of caller audio with the reference before
        them; True when that moved the delay. `moved_only`: only if the current delay no longer
        explains them at all (a short window of voiced speech also matches a pitch period off)."""
        found = self._search(window, min_coherence, moved_only, near_only)
        if found is None:
            return False
        delay, gain, coherence = found
        if self._delay is not None and abs(delay - self._delay) <= DECIMATE:
            return False  # the same echo path
        self._echo_seen = self._echo_seen or coherence >= SURE_LOCK
        self._confirmed = CONFIRM_BLOCKS if self._echo_seen else 0
        self._lock(delay, gain)
        return True

    def _lock(self, delay: int, gain: float) -> None:
        """Cancel from `delay` on with a fresh fit, started from the gain correlation gave."""
        self._delay, self.delay_ms = delay, delay * 1000 / RATE
        self._weights[:] = 0.0
        self._weights[LEAD_TAPS] = gain
        self._r[:] = 0.0
        self._p[:] = 0.0
        self._since_reset = 0
        self._relocked_at = self._blocks

    def _moved(self, near: np.ndarray, removed_db: float, echoing: bool, failing: bool) -> bool:
        """Did the echo move (relocked here)? Asked of a block without the caller's voice in it that
        was not (well) cancelled, or that has sound where no echo was expected while we play: an
        echo that came earlier than before (its reference, at the old delay, not yet playing)
        passed untouched until the old delay caught up, 60 ms and more, heard as speech."""
        if not echoing:
            heard = float(near @ near) > FLOOR_RMS**2 * near.size
            return heard and self._echo_seen and self._came_early()
        if removed_db <= SUPPRESS_BELOW_DB:
            return False
        if failing and (self._estimate(self._relock, near_only=True) or self._glanced()):
            return True
        return self._realign(near, removed_db)

    def _came_early(self) -> bool:
        """The last glance matches the reference surely at a shorter delay: our echo, come early
        (the caller's voice over a pause in a reply matched it by chance, at either side)."""
        assert self._delay is not None
        found = self._search(self._glance, SURE_LOCK, moved_only=True, near_only=True)
        if found is None or found[0] >= self._delay - DECIMATE or found[2] < SURE_LOCK:
            return False  # (the search is sure at 4 kHz; the refined match must be sure too)
        self._lock(found[0], found[1])
        return True

    def _glanced(self) -> bool:
        """A relock on a short window, taken only when sure and the known delay explains nothing."""
        return self._estimate(self._glance, GLANCE_COHERENCE, moved_only=True, near_only=True)

    def _echo_alone(self, n: int) -> bool:
        """The last `n` samples match the reference at the known delay: our echo the fit has not caught
        up with, not the caller talking over it (squashing the caller's onset lost the word to the VAD)."""
        assert self._delay is not None
        return self._refine(n, self._delay)[2] >= GLANCE_COHERENCE

    def _realign(self, near: np.ndarray, removed_db: float) -> bool:
        """True when the echo moved by less than a search step (the search keeps the delay it knows):
        the audio since the echo came back matches the reference surely a sample or more away, and
        that alignment alone cancels this block well, `REALIGN_GAIN_DB` better than the fit did (the
        caller's voice in the block, or a fit merely off by chance, would not). Between replies the
        play-out moves the echo by a few samples, and the fit, which remembers ~0.4 s of the old
        alignment, then cancelled a new reply's first 300 ms by only 4-9 dB: heard as speech."""
        if not self._echo_seen or self._delay is None:
            return False
        # Beside a sub-step move, a move of about one pitch period of the agent's voice: the known delay
        # then still correlates almost as well (voiced speech repeats), so the searches keep it, while
        # the fit cancels nothing (a reply's echo 4.25 ms later than the last one's leaked for 140 ms).
        if self._relock_if_better(near, removed_db, self._refine(self._relock, self._delay)):
            return True
        peak = self._search(self._relock, SURE_LOCK, near_only=True, keep_current=False)  # only if needed: an FFT
        return peak is not None and self._relock_if_better(near, removed_db, peak)

    def _relock_if_better(self, near: np.ndarray, removed_db: float, found: tuple[int, float, float]) -> bool:
        """Lock on `found` (delay, gain, coherence) if it is a sure match elsewhere and its alignment
        alone cancels this block `REALIGN_GAIN_DB` better than the fit did, and by at least 12 dB."""
        delay, gain, coherence = found
        if delay == self._delay or coherence < SURE_LOCK:
            return False
        error = near - gain * self._taps(near.size, delay)[:, LEAD_TAPS]
        if _removed_db(near, error) > min(SUPPRESS_BELOW_DB, removed_db - REALIGN_GAIN_DB):
            return False
        self._lock(delay, gain)
        return True

    def _search(
        self,
        window: int,
        min_coherence: float,
        moved_only: bool = False,
        near_only: bool = False,
        keep_current: bool = True,
    ) -> tuple[int, float, float] | None:
        """The echo's (delay, gain, coherence) in the last `window` samples of caller audio; None when they
        are not an echo of the reference (silence, or the caller's own voice), or, with
        `moved_only`, when they are still an echo at the current delay. `keep_current=False`: the
        best match whatever the current delay explains (for a caller that tests it on the block)."""
        far = self._far[self._far.size - window - self._max_delay :][::DECIMATE]
        near = self._near[self._near.size - window :][::DECIMATE]
        floor = FLOOR_RMS**2 * near.size
        if float(near @ near) < floor or float(far @ far) < floor:
            return None  # nothing played, or nothing came back: keep what we know
        size = 1 << int(np.ceil(np.log2(far.size + near.size)))
        spectrum = np.fft.rfft(near[::-1], size) * np.fft.rfft(far, size)
        lags = far.size - near.size + 1
        correlation = np.fft.irfft(spectrum, size)[near.size - 1 : near.size - 1 + lags]  # lag k: far[k:]
        running = np.concatenate(([0.0], np.cumsum(far * far)))
        energies = np.maximum(running[near.size : near.size + lags] - running[:lags], floor)
        coherence = correlation / np.sqrt(energies * float(near @ near))
        if near_only and self._delay is not None:  # a relock: the echo moved a little, or it is the caller
            centre, reach = lags - 1 - self._delay // DECIMATE, RELOCK_REACH_MS * RATE // 1000 // DECIMATE
            coherence = coherence.copy()
            coherence[: max(0, centre - reach)] = 0.0
            coherence[centre + reach + 1 :] = 0.0
        best = int(np.argmax(np.abs(coherence)))
        gain = float(correlation[best] / energies[best])
        if abs(coherence[best]) < min_coherence or abs(gain) > MAX_ECHO_GAIN:
            return None
        if self._delay is not None and keep_current:
            at = lags - 1 - self._delay // DECIMATE
            here = float(np.max(np.abs(coherence[max(0, at - 1) : at + 2]))) if 0 <= at < lags else 0.0
            if here >= (MIN_COHERENCE if moved_only else STAY_SHARE * abs(coherence[best])):
                return None  # the current delay still explains the echo: a voiced peak a pitch period off does not
        found = self._refine(window, (lags - 1 - best) * DECIMATE)
        if self._delay is not None and keep_current:
            # The same test at full rate: at 4 kHz, with no filter before decimating, a delay between
            # two search steps correlates worse than it does, and a peak a pitch period off won (a
            # 500 ms window moved a 244.1 ms echo to 240.3 ms, cancelled nothing for 200 ms, and the
            # agent interrupted itself: 4 of 31 calls at 250 ms / 20 dB).
            here = self._match(window, self._delay)[1]
            if here >= (MIN_COHERENCE if moved_only else STAY_SHARE * found[2]):
                return None
        return found

    def _refine(self, window: int, coarse: int) -> tuple[int, float, float]:
        """(delay, gain, coherence) at full rate within two search steps of `coarse` (the 4 kHz peak
        can be a step off: nothing filters before decimating). A lock two samples off cancels a
        speech block by only ~11 dB at first (45 degrees of phase at 1 kHz), and its coherence falls
        under `SURE_LOCK`: at a line's first echo, 40 ms of the greeting reached the VAD as speech."""
        coarse = max(LEAD_TAPS, coarse)
        best = (coarse, 0.0, -1.0)
        for delay in range(max(LEAD_TAPS, coarse - 2 * DECIMATE), min(self._max_delay, coarse + 2 * DECIMATE) + 1):
            gain, coherence = self._match(window, delay)
            if coherence > best[2]:
                best = (delay, gain, coherence)
        return best

    def _match(self, window: int, delay: int) -> tuple[float, float]:
        """(gain, coherence) of the last `window` samples of caller audio with the reference `delay` before."""
        near = self._near[self._near.size - window :]
        end = self._far.size - delay
        far = self._far[end - window : end]
        energy = max(float(far @ far), FLOOR_RMS**2 * window)
        correlation = float(far @ near)
        return correlation / energy, abs(correlation) / np.sqrt(energy * max(float(near @ near), 1.0))


def _removed_db(near: np.ndarray, error: np.ndarray) -> float:
    """How much of the block's energy cancelling removed, in dB (negative: removed)."""
    return float(10 * np.log10((float(error @ error) + 1.0) / (float(near @ near) + 1.0)))
