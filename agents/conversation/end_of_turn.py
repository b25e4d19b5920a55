"""When a pause ends the caller's turn: the end-of-turn model, the early transcript's words, and time.

Smart Turn hears prosody; the early transcript of the same pause says what was said: a trailing
"and"/"um"/"because", a "my ... is" with nothing after it, or a number still being dictated ("my
account number is seven seven four") means the caller is not done, whatever the tone; a question
or a short answer ("yes", "okay") means they probably are. The evidence is added in log-odds, and
the longer the silence goes on the more likely the turn is over, so a sure end (a confident model,
a question) ends the turn soon, a plain statement after a short wait, unfinished words only at the
long bound:

    log-odds = MODEL_WEIGHT * logit(p) + SHIFTS[hint] + PATIENCE_PER_S * silence_s

and the turn ends when that reaches logit(threshold). Everything here is a pure function of
(probability, transcript, silence), unit-tested on its own. A number is finished once it has the
length its cue gives it ("zip": 5, and each agent's own `number_lengths`, "order number": 8); the
rule knows them through `Rule.number_lengths`.

Calibration (`benchmarks/turn_calibration.py` on the turn set of `benchmarks/turn_set.py`: 416 clips,
26 sentences x 4 voices (2 Kokoro, 2 espeak-ng) x clean/30/20/10 dB, ~660 pauses, in two renderings:
"phrases", each phrase synthesised alone, and "continuous", each sentence synthesised once and cut at
its boundaries so the voice stays up before a mid-sentence pause). Replayed with a 300 ms decision
time (a quiet machine's Whisper tiny.en; measured on a 2-core machine shared with five other jobs it
was ~1.1 s p50). Smart Turn barely separates mid-sentence pauses from real ends: AUC 0.56 on phrases,
0.60 continuous (its median at mid-sentence pauses falls from 0.31 to 0.20). Cut-offs are per clip;
end latency after the true last word, p50 / p95, phrases | continuous:

    rule                                              cut-offs        end p50 / p95 (ms)
    silence 600 ms (today)                          25.5 | 24.5 %    664 / 792  |  673 / 798
    silence 800 ms                                   9.1 |  7.0 %    864 / 998  |  869 / 1002
    silence 1000 ms                                  0.2 |  0.5 %   1059 / 1193 | 1064 / 1196
    Smart Turn alone (0.5, max wait 1000)           16.8 | 13.2 %    704 / 1178 |  676 / 1157
    weight 0, threshold 0.9, max wait 1200           2.2 |  2.2 %    878 / 1311 |  885 / 1329
    weight 1, threshold 0.5, max wait 1000 (pod)    10.8 |  9.1 %    626 / 1124 |  629 / 1136

The last row (the pod's `turn_smart_*` defaults, with the constants below) beats silence 600 ms on
both cut-offs and end p50 on both renderings: it cuts off ~60 % fewer callers and ends turns ~40 ms
sooner at p50, but waits longer at p95 (the unsure turns run to the 1000 ms bound). The words do
most of it (weight 0 at threshold 0.5: 14.9 | 13.0 %, 568 | 579 ms); Smart Turn's weight 1 takes
another ~4 points of cut-offs for ~50-60 ms. Weight 0 at threshold 0.9 (`RULE`'s own weight) is the
choice when cut-offs matter more than speed: 2.2 %, but ~880 ms. Both need a fast decision: replayed
with the decision time measured under that load (phrases), no smart setting ended turns sooner than silence
600 ms (the decision itself lands ~1.3 s into the pause), though the transcript, which a reply needs,
was ready at about the same time (p50 ~1.40 s vs 1.38 s). Smart Turn is not useless everywhere: on
whole espeak-ng questions it separated complete from cut (tests/agents/engines/local/test_smart_turn.py).
Since Whisper's encoder hears a 10 s window (~100 ms a turn) the decision is fast: the pod defaults of
then (Smart Turn weight 1, threshold 0.5, max wait 1000 ms, the constants of the table) cut 15.6 % in
`benchmarks/turn_taking.py` (listener level, 2026-12-02) with end p50 / p95 395 / 1154 ms, against
24.3 % and 682 / 849 ms for silence 600 ms: better at p50, worse at p95, so it stayed off.

Recalibrated the same day on the fast decision: the pauses measured by `turn_calibration.py --pauses
FILE` (Whisper ~100 ms) replayed with its `replay_smart` over a wider grid than the script's own
(thresholds 0.5-0.95, the neutral, statement and complete shifts, patience 1-6 per s, max waits
700-900 ms; 20,000 rules, a one-off), keeping rules no worse than silence 600 ms at p95 and at every
SNR, fewest cut-offs first. It gave the constants below,
weight 0 (the words alone: `SWITCHBOARD_TURN_DETECTION=words`, Smart Turn not even loaded),
threshold 0.8 and a 750 ms bound. A question or short answer then ends after ~350 ms of silence, a
statement after ~470, an unpunctuated turn after ~600, unfinished words at the bound. Replayed:
18.8 % cut-offs, 530 / 830 ms, better than silence 600 ms at every SNR. Through the real listener
(`turn_taking.py --part listener`): 22.1 % cut-offs against 24.3 %, end p50 548 against 682 ms, p95
859 against 849, 31 turns never ended in the noise against 42; worse only at 10 dB (14.4 % against
11.5 %). The pod's default since. Cut-offs of 3 % are out of reach on this set for any rule that ends
turns sooner than silence 600 ms: a quarter of its paused sentences pause after words that are a whole
sentence ("My name is Sarah.", "Can you cancel my order?", "I'd like to pay my bill."), and Smart Turn
separates pauses from ends at AUC 0.60.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

from tools.pii.detect import CARD_DIGITS, luhn_valid
from tools.pii.digits import WORD_DIGITS

MODEL_WEIGHT = 0.0
"""Weight of Smart Turn's log-odds (1: trusted as it is; 0: ignored). 0: the `words` rule, the pod's
default; `smart_turn` takes its weight from `turn_smart_model_weight`. Recalibrate on recorded calls."""
INCOMPLETE_SHIFT = -8.0
"""Log-odds added when the words say the caller is not done: the turn waits for the long bound."""
NEUTRAL_SHIFT = -1.0
"""Log-odds added for words that say nothing either way (no full stop: Whisper heard no end)."""
STATEMENT_SHIFT = -0.5
"""Log-odds added for a sentence that ends in a full stop and no unfinished word (below a question's:
"My name is Sarah." is as often a pause as an end)."""
COMPLETE_SHIFT = 0.0
"""Log-odds added for a question or a short answer."""
PATIENCE_PER_S = 4.0
"""Log-odds added per second of silence: the longer the caller is quiet, the surer the end (at
threshold 0.8: a question ends after ~350 ms, a statement after ~470, nothing said either way ~600)."""

TRAILING_WORDS = frozenset(
    "and but or so because cause if that which who whose when where while then than as um uh er erm hmm mm "
    "the a an to for of with in on at from by into about like my your our their his her its is are was were "
    "am be i i'm it's also plus basically actually well".split()
)
"""A transcript ending in one of these is unfinished ("I ordered a blue jacket and ...")."""
JOINING_WORDS = frozenset("and but or so because cause if um uh er erm hmm mm".split())
"""Unfinished even before a question mark (Whisper's "?" wins over a trailing "for" or "to")."""
PARTICLE_VERBS = frozenset(
    "log logged sign signed check checked come came get got fill filled plug plugged turn turned hand handed "
    "drop dropped call called hold held hang move moved break broke put let".split()
)
"""Verbs whose trailing "in"/"on" finishes them ("I can't log in", "hold on"): not unfinished."""
THINKING = ("let me see", "let me think", "let me check", "hold on", "one moment", "one second", "just a second")
"""Phrases a caller says before going on."""
NUMBER_CONTEXT = frozenset("number code account phone zip pin card digits extension reach ends id postcode".split())
"""Words after which trailing digits are a number still being dictated."""
NUMBER_WORDS = frozenset(
    "zero oh one two three four five six seven eight nine ten eleven twelve hundred thousand double triple".split()
)
COMPLETE_DIGITS: Mapping[str, int] = {"zip": 5, "pin": 4, "ends": 4}
"""Numbers with a known length, by the cue said before them: a zip code with 5 digits, a PIN or a
card ending with 4, is finished. An agent adds its own (`AgentConfig.number_lengths`)."""
SHORT_ANSWERS = frozenset(
    "yes yeah yep no nope okay ok sure right correct thanks thank bye goodbye please great perfect fine".split()
)
"""A turn of one to three words that ends on one of these is a complete answer."""
MAX_SHORT_ANSWER_WORDS = 3
AFFIRMING_HUMS = frozenset({"mhm", "mmhmm", "mm hmm", "mm hm", "m hmm", "uh huh", "uh hum"})
"""A whole turn of one of these ("Mm-hmm.", "Uh-huh.") is a yes, not a caller still thinking (as a
lone "hmm" or "um" is): it ends as a short answer does."""

_WORD = re.compile(r"[a-z0-9']+")


class Hint(Enum):
    """What the words alone say about the turn."""

    INCOMPLETE = "incomplete"
    NEUTRAL = "neutral"
    STATEMENT = "statement"
    COMPLETE = "complete"


SHIFTS = {
    Hint.INCOMPLETE: INCOMPLETE_SHIFT,
    Hint.NEUTRAL: NEUTRAL_SHIFT,
    Hint.STATEMENT: STATEMENT_SHIFT,
    Hint.COMPLETE: COMPLETE_SHIFT,
}


def words_of(text: str) -> list[str]:
    """Lower-case words and digit runs, punctuation dropped (apostrophes kept: "i'm")."""
    return _WORD.findall(text.lower().replace("\u2019", "'"))


@dataclass(frozen=True, slots=True)
class TrailingNumber:
    """The digits and number words the words end in, and what the words before them say of it."""

    words: int
    digits: str
    """The digits said, in order (digit words as digits; "ten", "hundred" add none)."""
    cued: bool
    """A number-context word ("number", "card", "zip") or a known length's cue came before it."""
    known_length: int | None = None
    """The length its latest cue gives it ("zip": 5), if any."""

    @property
    def complete(self) -> bool:
        """The number has the known length its cue gives it (a zip code's 5 digits), or is a
        whole card number (13-19 digits that pass the Luhn check): nothing more is coming."""
        if self.known_length is not None:
            return self.known_length == len(self.digits)
        return CARD_DIGITS[0] <= len(self.digits) <= CARD_DIGITS[1] and luhn_valid(self.digits)


def known_lengths(declared: Mapping[str, int]) -> dict[str, int]:
    """The built-in lengths (`COMPLETE_DIGITS`) with an agent's own on top ("order number": 8)."""
    return {**COMPLETE_DIGITS, **declared}


def _known_length(before: list[str], lengths: Mapping[str, int]) -> int | None:
    """The length given by the cue said last in the words before a number (the longer cue where
    two end together: "order number" over "number")."""
    best: tuple[tuple[int, int], int] | None = None
    for cue, length in lengths.items():
        cue_words = cue.split()
        size = len(cue_words)
        for end in range(len(before), size - 1, -1):
            if before[end - size : end] == cue_words:
                if best is None or (end, size) > best[0]:
                    best = ((end, size), length)
                break
    return None if best is None else best[1]


def trailing_number(words: list[str], lengths: Mapping[str, int] = COMPLETE_DIGITS) -> TrailingNumber:
    tail = 0
    while tail < len(words) and (words[-1 - tail].isdigit() or words[-1 - tail] in NUMBER_WORDS):
        tail += 1
    before, said = words[: len(words) - tail], words[len(words) - tail :]
    digits = "".join(word if word.isdigit() else WORD_DIGITS.get(word, "") for word in said)
    known = _known_length(before, lengths) if tail else None
    cued = known is not None or any(word in NUMBER_CONTEXT for word in before)
    return TrailingNumber(tail, digits, cued, known)


def dictating_number(words: list[str], lengths: Mapping[str, int] = COMPLETE_DIGITS) -> bool:
    """True when the words end in digits or number words that follow a number context ("my zip
    code is 941", "you can reach me at five five five"), unless the number has its known length."""
    number = trailing_number(words, lengths)
    return number.words > 0 and number.cued and not number.complete


SPOKEN_NUMBER_DIGITS = 4
"""Trailing digits from which a transcript ends in a number even without a cue word ("... 4539 1488")."""


def ends_in_number(text: str, lengths: Mapping[str, int] = COMPLETE_DIGITS) -> bool:
    """The transcript ends in a number that may still be being read out: dictated after a cue
    ("my card number is 4539 1488"), or at least `SPOKEN_NUMBER_DIGITS` digits with none, unless it
    has its known length (a zip code; `lengths`: the cues' lengths, `known_lengths`). A speculative
    reply waits on such a pause: its request would
    hand the model the first digits of what may be a card number, too short to be recognised (and
    redacted) as one."""
    number = trailing_number(words_of(text), lengths)
    if number.words == 0 or number.complete:
        return False
    return number.cued or len(number.digits) >= SPOKEN_NUMBER_DIGITS


def transcript_hint(text: str, lengths: Mapping[str, int] = COMPLETE_DIGITS) -> Hint:
    """Classify an early transcript (Whisper's punctuation included) by how its words end
    (`lengths`: numbers' known lengths by cue, `known_lengths`)."""
    stripped = text.strip()
    words = words_of(stripped)
    if not words:
        return Hint.NEUTRAL  # noise, or nothing Whisper could read: leave it to the model
    if " ".join(words) in AFFIRMING_HUMS and not stripped.endswith((",", "-", "...", "\u2026")):
        return Hint.COMPLETE  # "Mm-hmm." answers; "Mm-hmm," may lead into more
    if stripped.endswith((",", "-", "...", "\u2026", ";", ":")):
        return Hint.INCOMPLETE  # Whisper heard the sentence go on
    if words[-1] in JOINING_WORDS or dictating_number(words, lengths) or " ".join(words).endswith(THINKING):
        return Hint.INCOMPLETE
    if stripped.endswith("?"):
        return Hint.COMPLETE
    particle = words[-1] in ("in", "on") and len(words) > 1 and words[-2] in PARTICLE_VERBS
    if words[-1] in TRAILING_WORDS and not particle:
        return Hint.INCOMPLETE
    if len(words) <= MAX_SHORT_ANSWER_WORDS and words[-1] in SHORT_ANSWERS:
        return Hint.COMPLETE
    if stripped.endswith((".", "!")):
        return Hint.STATEMENT
    return Hint.NEUTRAL


def logit(probability: float) -> float:
    p = min(max(probability, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


@dataclass(frozen=True, slots=True)
class Rule:
    """How the evidence is weighed (the calibration tries others; `RULE` is the calibrated one)."""

    model_weight: float = MODEL_WEIGHT
    shifts: Mapping[Hint, float] = field(default_factory=lambda: dict(SHIFTS))
    patience_per_s: float = PATIENCE_PER_S
    number_lengths: Mapping[str, int] = field(default_factory=lambda: dict(COMPLETE_DIGITS))
    """Numbers' known lengths by cue (`known_lengths`): a number of that length is finished."""

    def evidence(self, probability: float | None, text: str | None) -> float:
        """Log-odds that the turn is over at the start of the pause (None: that input is missing; no
        transcript counts as words that say nothing either way)."""
        model = 0.0 if probability is None else self.model_weight * logit(probability)
        return model + self.shifts[Hint.NEUTRAL if text is None else transcript_hint(text, self.number_lengths)]

    def completion(self, probability: float | None, text: str | None, silence_ms: int = 0) -> float:
        """The chance the turn is over after `silence_ms` of pause."""
        return 1 / (1 + math.exp(-(self.evidence(probability, text) + self.patience_per_s * silence_ms / 1000)))

    def end_after_ms(self, probability: float | None, text: str | None, threshold: float) -> float:
        """The silence from which `completion` reaches `threshold` (0: at once; inf: never)."""
        missing = logit(threshold) - self.evidence(probability, text)
        if missing <= 0:
            return 0.0
        return math.inf if self.patience_per_s <= 0 else 1000 * missing / self.patience_per_s


RULE = Rule()


def completion(probability: float | None, text: str | None, silence_ms: int = 0) -> float:
    """The chance the turn is over after `silence_ms` of pause, from the model's probability (None:
    no model answer) and the early transcript (None: not ready), under the calibrated `RULE`."""
    return RULE.completion(probability, text, silence_ms)


def turn_is_over(probability: float | None, text: str | None, threshold: float, silence_ms: int = 0) -> bool:
    """End the turn now (True) or keep waiting for speech, more silence, or the long bound (False)."""
    return completion(probability, text, silence_ms) >= threshold
