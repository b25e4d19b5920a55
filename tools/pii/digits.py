"""Digit runs in text as a caller says them: "4111 1111 1111 1111", "4-1-1-1", "four one one one".

Whisper writes a number read aloud in any of those forms (and mixes them), so detection first
reads the text as runs of digits: each digit token (a written number, a number word, "double
one") keeps where it stands in the text, and tokens separated only by spaces, commas, dots or
dashes join one run. A detector then looks for card numbers and the like in the digits and
redacts the text span the tokens cover.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

WORD_DIGITS = {
    "zero": "0",
    "oh": "0",
    "o": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
}
"""Number words as a caller reads digits out ("oh" for zero included)."""
REPEAT_WORDS = {"double": 2, "triple": 3}
""""double one" is "11"."""
MAX_SEPARATOR_CHARS = 3
"""Tokens whose gap is at most this many separator characters (", " or " - ") belong to one run."""
_TOKEN = re.compile(r"\d+|[A-Za-z]+")
_SEPARATOR = re.compile(rf"[\s,.\-]{{0,{MAX_SEPARATOR_CHARS}}}")


@dataclass(frozen=True, slots=True)
class DigitToken:
    digits: str
    start: int
    """Where the token starts in the text."""
    end: int


@dataclass(frozen=True, slots=True)
class DigitRun:
    """Digit tokens next to each other in the text."""

    tokens: tuple[DigitToken, ...]

    @property
    def digits(self) -> str:
        return "".join(token.digits for token in self.tokens)

    @property
    def start(self) -> int:
        return self.tokens[0].start

    @property
    def end(self) -> int:
        return self.tokens[-1].end


def digit_tokens(text: str) -> list[DigitToken]:
    """Every written number and number word in `text`, in order ("double" merged into its digit)."""
    tokens: list[DigitToken] = []
    repeat: tuple[int, int, int] | None = None
    """(count, start, end) of a "double"/"triple" waiting for its digit."""
    for match in _TOKEN.finditer(text):
        word = match.group().lower()
        digits = match.group() if word.isdigit() else WORD_DIGITS.get(word)
        if digits is not None and repeat is not None and _joins(text, repeat[2], match.start()) and len(digits) == 1:
            tokens.append(DigitToken(digits * repeat[0], repeat[1], match.end()))
        elif digits is not None:
            tokens.append(DigitToken(digits, match.start(), match.end()))
        repeat = (REPEAT_WORDS[word], match.start(), match.end()) if word in REPEAT_WORDS else None
    return tokens


def digit_runs(text: str) -> list[DigitRun]:
    """The digit tokens of `text` grouped into runs (only separators between neighbours)."""
    runs: list[list[DigitToken]] = []
    for token in digit_tokens(text):
        if runs and _joins(text, runs[-1][-1].end, token.start):
            runs[-1].append(token)
        else:
            runs.append([token])
    return [DigitRun(tuple(tokens)) for tokens in runs]


def _joins(text: str, end: int, start: int) -> bool:
    return _SEPARATOR.fullmatch(text, end, start) is not None
