"""The turn set's continuous rendering: a sentence spoken once, cut at its phrase boundaries.

Why: a caller who pauses mid-sentence ("seven seven four ... two nine one") pauses with the voice
still up; a phrase synthesised on its own ends falling, as if the turn were over, so an end-of-turn
model judged on such phrases hears every pause as an end. Here the whole sentence is synthesised
once (a comma marks each boundary that has no punctuation of its own), so each phrase keeps the
prosody of a sentence that goes on, and the pause is made by cutting the audio at the boundary.

Where to cut: the prefix before the boundary is spoken alone to estimate its length; the boundary
is the quietest point within `SEARCH_MS` of that estimate in the whole sentence (energy smoothed
over `SMOOTH_MS`, so a stop consonant's short closure loses to the comma's gap). The natural gap
there (every 5 ms window below the trim floor) is removed, so the pause inserted afterwards is
exactly as long as the set says. Pure numpy on 8 kHz int16; the speaking is the caller's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

WINDOW_MS = 5
SEARCH_MS = 200
"""How far from the prefix's own length the boundary is looked for."""
SMOOTH_MS = 30
FADE_MS = 5
"""Fade at each cut, so a cut inside voiced sound (no natural gap) does not click."""
FINAL_PUNCTUATION = (",", ".", "?", "!", ";", ":", "\u2026")


@dataclass(frozen=True, slots=True)
class Cut:
    """One boundary in the whole sentence's samples: the natural gap removed there."""

    estimate: int
    """Where the prefix spoken alone said the boundary would be."""
    start: int
    end: int
    """start == end: no natural gap at the quietest point (the cut is inside sound)."""
    level_db: float
    """The quietest smoothed level found, relative to the sentence's loudest window."""


def joined_text(phrases: Sequence[str]) -> str:
    """The phrases as one sentence, with a comma at each inner boundary that has no punctuation."""
    if not phrases:
        raise ValueError("a sentence needs at least one phrase")
    inner = [p.strip() if p.strip().endswith(FINAL_PUNCTUATION) else f"{p.strip()}," for p in phrases[:-1]]
    return " ".join([*inner, phrases[-1].strip()])


def _levels_db(samples: np.ndarray, step: int) -> np.ndarray:
    count = samples.size // step
    if count == 0:
        raise ValueError("a rendered sentence is empty")
    energy = (samples[: count * step].astype(np.float64).reshape(count, step) ** 2).mean(axis=1) + 1e-9
    return 10 * np.log10(energy / energy.max())


def find_cut(samples: np.ndarray, estimate: int, rate: int, floor_db: float, after: int = 0) -> Cut:
    """The boundary near `estimate` (samples), at or after `after`: the quietest point and the
    natural gap around it (windows at or below `floor_db`, relative to the loudest window)."""
    step = rate * WINDOW_MS // 1000
    levels = _levels_db(samples, step)
    width = max(1, SMOOTH_MS // WINDOW_MS)
    smooth = np.convolve(levels, np.ones(width) / width, mode="same")
    low = max(after // step + 1, (estimate - rate * SEARCH_MS // 1000) // step)
    high = min(levels.size - 1, (estimate + rate * SEARCH_MS // 1000) // step)
    if high <= low:
        raise ValueError(f"no room for a boundary near sample {estimate} (after {after})")
    centre = low + int(np.argmin(smooth[low:high]))
    start = end = centre
    if levels[centre] <= floor_db:
        while start > after // step + 1 and levels[start - 1] <= floor_db:
            start -= 1
        end = centre + 1
        while end < levels.size - 1 and levels[end] <= floor_db:
            end += 1
    return Cut(estimate, start * step, end * step, float(smooth[centre]))


def _fade(piece: np.ndarray, rate: int, head: bool, tail: bool) -> np.ndarray:
    size = min(piece.size, rate * FADE_MS // 1000)
    out = piece.astype(np.float64)
    ramp = np.linspace(0.0, 1.0, size, endpoint=False)
    if head and size:
        out[:size] *= ramp
    if tail and size:
        out[-size:] *= ramp[::-1]
    return np.round(out).astype(np.int16)


def continuous_pieces(
    speak: Callable[[str], np.ndarray], phrases: Sequence[str], rate: int, floor_db: float
) -> tuple[list[np.ndarray], list[Cut]]:
    """Each phrase's speech, cut from one synthesis of the whole sentence; `speak` returns the text's
    trimmed speech as int16 at `rate`. One phrase: the whole render, uncut."""
    whole = speak(joined_text(phrases))
    cuts: list[Cut] = []
    for index in range(1, len(phrases)):
        estimate = speak(joined_text(phrases[:index])).size
        cuts.append(find_cut(whole, estimate, rate, floor_db, after=cuts[-1].end if cuts else 0))
    bounds = [0, *(edge for cut in cuts for edge in (cut.start, cut.end)), whole.size]
    pieces = []
    for index in range(len(phrases)):
        piece = whole[bounds[2 * index] : bounds[2 * index + 1]]
        if piece.size == 0:
            raise ValueError(f"phrase {index} of {phrases!r} came out empty")
        pieces.append(_fade(piece, rate, head=index > 0, tail=index < len(phrases) - 1))
    return pieces, cuts
