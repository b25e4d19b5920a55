"""Whisper's runaway transcripts, cut before they reach the model.

Why: on noisy phone audio Whisper can fall into a loop ("No, no, that's wrong" came back as "no, no,
no, ..." over a hundred times) or invent text over silence. Sent whole, a loop fills the model's
context, costs its time and reads as a caller who is shouting. Whisper's own defences need several
decoding passes (temperature fallback) or word timestamps, both too slow for a turn; the checks here
are cheap text checks that work for every engine (the remote STT path returns text only), plus the
per-segment rule Whisper uses to drop silence (`keep_segment`), applied where segments exist.

A transcript is never dropped for being suspicious; the runaway part is cut and the rest kept, so a
caller who really said something still gets an answer.
"""

from __future__ import annotations

import logging
import math
import re
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agents.conversation.record import CallRecord
from agents.engines.protocols import Transcript

if TYPE_CHECKING:
    from agents.conversation.speculation import ReplyGate

log = logging.getLogger("switchboard.agents")

MAX_REPEATS = 4
"""A word or phrase said more than this many times in a row is a loop (a PIN "one one one one" is not)."""
KEPT_REPEATS = 3
"""How many times a looped word or phrase is kept ("no, no, no")."""
MAX_NGRAM = 8
"""Longest phrase (in words) checked for loops."""
MAX_WORDS_PER_SECOND = 6.0
"""Bound on words per second of audio: fast speech is ~4-5, more is text the audio cannot hold."""
MIN_WORDS_ALLOWED = 10
"""Short audio may always carry this many words: a loop is cut by repetition anyway, and a turn's audio
length is a rough measure of a short sentence (pre-roll, tail)."""
MAX_COMPRESSION_RATIO = 2.4
"""Whisper's own threshold: text that gzip shrinks more than this is repetitive."""
NO_SPEECH_PROB = 0.6
"""Whisper's rule: a segment with no_speech_prob above this..."""
MIN_AVG_LOGPROB = -1.0
"""...and avg_logprob below this is silence the decoder made words for."""

_WORD = re.compile(r"[\w']+")


@dataclass(frozen=True, slots=True)
class GuardedText:
    """What the guard kept, and why it cut (empty `cuts`: the text is as it came)."""

    text: str
    cuts: tuple[str, ...] = ()
    """`repetition`, `words_per_second` or `compression_ratio`, in the order applied."""
    words_before: int = 0
    words_after: int = 0

    @property
    def cut(self) -> bool:
        return bool(self.cuts)


def keep_segment(no_speech_prob: float, avg_logprob: float) -> bool:
    """Whisper's silence rule for one decoded segment: both signs of no speech at once drop it."""
    return not (no_speech_prob > NO_SPEECH_PROB and avg_logprob < MIN_AVG_LOGPROB)


def compression_ratio(text: str) -> float:
    """Bytes of text per byte of its zlib compression, as Whisper computes it (1.0 for empty text)."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 1.0


def _key(token: str) -> str:
    """A word as compared for repetition: case and punctuation ignored ("No," equals "no")."""
    return " ".join(_WORD.findall(token.lower()))


def cut_repetitions(tokens: list[str], max_repeats: int = MAX_REPEATS, kept: int = KEPT_REPEATS) -> list[str]:
    """`tokens` (words with their punctuation) with every run of a word or phrase repeated more than
    `max_repeats` times in a row cut to `kept` repeats."""
    if kept < 1 or max_repeats < kept:
        raise ValueError("need 1 <= kept <= max_repeats")
    keys = [_key(token) for token in tokens]
    out: list[str] = []
    i = 0
    while i < len(tokens):
        loop = _loop_at(keys, i, max_repeats)
        if loop is None:
            out.append(tokens[i])
            i += 1
        else:
            n, repeats = loop
            out.extend(tokens[i : i + n * kept])
            i += n * repeats
    return out


def _loop_at(keys: list[str], i: int, max_repeats: int) -> tuple[int, int] | None:
    """(phrase length, repeats) of the shortest phrase starting at `i` repeated more than
    `max_repeats` times in a row, or None."""
    for n in range(1, MAX_NGRAM + 1):
        if i + n * (max_repeats + 1) > len(keys):
            return None
        phrase = keys[i : i + n]
        repeats = 1
        while keys[i + repeats * n : i + (repeats + 1) * n] == phrase:
            repeats += 1
        if repeats > max_repeats:
            return n, repeats
    return None


def words_allowed(audio_ms: int, max_words_per_second: float = MAX_WORDS_PER_SECOND) -> int:
    """How many words `audio_ms` of audio can carry."""
    return max(MIN_WORDS_ALLOWED, math.ceil(max(0, audio_ms) / 1000 * max_words_per_second))


def _within_ratio(tokens: list[str], threshold: float) -> list[str]:
    """The longest start of `tokens` whose text is not too repetitive (repetition grows with length)."""
    low, high = 0, len(tokens)
    while low < high:  # the largest prefix length under the threshold, by bisection
        middle = (low + high + 1) // 2
        if compression_ratio(" ".join(tokens[:middle])) <= threshold:
            low = middle
        else:
            high = middle - 1
    return tokens[:low]


def guard_transcript(
    text: str,
    audio_ms: int,
    *,
    max_words_per_second: float = MAX_WORDS_PER_SECOND,
    max_compression_ratio: float = MAX_COMPRESSION_RATIO,
) -> GuardedText:
    """Cut loops, then text beyond what the audio can hold, then a still-repetitive tail.

    `audio_ms` is the length of the audio the text came from. Pure: no logging (the session logs
    and counts what was cut).
    """
    if max_words_per_second <= 0 or max_compression_ratio <= 1:
        raise ValueError("need max_words_per_second > 0 and max_compression_ratio > 1")
    tokens = text.split()
    before = len(tokens)
    cuts: list[str] = []
    looped = cut_repetitions(tokens)
    if len(looped) < len(tokens):
        cuts.append("repetition")
        tokens = looped
    allowed = words_allowed(audio_ms, max_words_per_second)
    if len(tokens) > allowed:
        cuts.append("words_per_second")
        tokens = tokens[:allowed]
    if compression_ratio(" ".join(tokens)) > max_compression_ratio:
        cuts.append("compression_ratio")
        tokens = _within_ratio(tokens, max_compression_ratio)
    if not cuts:
        return GuardedText(text.strip(), (), before, before)
    kept = " ".join(tokens).rstrip(",;:-")
    return GuardedText(kept, tuple(cuts), before, len(tokens))


def guarded(transcript: Transcript, record: CallRecord, confirmed: ReplyGate | None = None) -> str:
    """The transcript's text as the model may see it; a cut is logged, counted on the call record
    (`transcripts_cut`) and noted in its transcript as a `system` line. For a speculative turn
    (`confirmed`: its gate) that happens only once the turn is confirmed: a dropped turn's words
    are guarded again, with what the caller said next, by the turn that answers them."""
    result = guard_transcript(transcript.text, transcript.audio_ms)
    if result.cut:
        if confirmed is None:
            _note_cut(result, transcript, record)
        else:
            confirmed.when_confirmed(lambda: _note_cut(result, transcript, record))
    return result.text


def _note_cut(result: GuardedText, transcript: Transcript, record: CallRecord) -> None:
    record.transcripts_cut += 1
    record.say(
        "system", f"transcript cut ({', '.join(result.cuts)}): {result.words_before} -> {result.words_after} words"
    )
    log.warning(
        "transcript cut",
        extra={
            "event": "transcript_cut",
            "cuts": list(result.cuts),
            "words_before": result.words_before,
            "words_after": result.words_after,
            "audio_ms": transcript.audio_ms,
        },
    )
