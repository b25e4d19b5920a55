"""Finding personal data in call text: card numbers, social security numbers, declared patterns.

- Card numbers: a Luhn-valid run of 13-19 digits, written or spoken ("4111 1111 1111 1111",
  "four one one one ..."), cut only where the caller paused between digit groups; and any run of
  5 digits or more that follows a card cue ("my card number is ..."), Luhn-valid or not: Whisper drops
  or doubles a digit of a card read aloud, and a caller who pauses mid-card says half of it in a
  turn of its own. Neither fails safe by the Luhn check alone.
- Social security numbers: "123-45-6789" anywhere, and any 9 digits (written or spoken) that
  follow "social security" (or "social", "SSN") closely.
- Declared patterns: the agent's `PiiPattern`s, by regular expression.

Keypad entries are not found here: every entry is sensitive, so the session keeps each one as a
secret as it arrives (see `SecretVault.keep`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tools.pii.digits import DigitRun, digit_runs
from tools.pii.patterns import PiiPattern

CARD_NUMBER = "card number"
SOCIAL_SECURITY_NUMBER = "social security number"
KEYPAD_ENTRY = "keypad entry"
CARD_DIGITS = (13, 19)
"""Payment card numbers are 13 to 19 digits long (ISO/IEC 7812)."""
CARD_CUE_CHARS = 40
"""How far before a digit run a card cue ("card", "visa", "credit") may stand for the run to be a card's."""
CARD_PART_DIGITS = 5
"""After a card cue, a run of this many digits or more is (part of) a card number; fewer may be the
last four a receipt shows ("my card ends in 4467"), which callers and agents say to each other."""
SSN_CUE_CHARS = 40
"""How far before nine digits "social security" may stand for them to count as one."""
MAX_SCAN_CHARS = 1_000_000
"""Longer text is not scanned but withheld whole (see `Redactor.scrub`): nothing it holds leaks."""
WITHHELD = "[text withheld: too long to check for personal data]"

_CARD_CUE = re.compile(
    r"\b(card|credit|debit|visa|master\s?card|amex|american\s+express|discover|car\s+number)\b[^\d]*$",
    re.IGNORECASE,
)
"""The words before a card's digits ("car number": how Whisper tiny.en heard "card number" read by Kokoro)."""
_SSN_WRITTEN = re.compile(r"(?<!\d)\d{3}-\d{2}-\d{4}(?!\d)")
_SSN_CUE = re.compile(r"\b(social(\s+security)?|ssn|s\.?\s?s\.?\s?n\.?)\b[^\d]*$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str
    """What it is ("card number", a declared label): the placeholder's words."""
    start: int
    end: int
    value: str
    """The value a tool would need: the digits of a card or SSN, the matched text of a pattern."""


def luhn_valid(digits: str) -> bool:
    """The Luhn check digit of card numbers (ISO/IEC 7812-1)."""
    if not digits.isdigit():
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char)
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def card_numbers(run: DigitRun) -> list[Finding]:
    """Luhn-valid windows of 13-19 digits in the run, cut at token edges, longest first from the left."""
    found: list[Finding] = []
    tokens = run.tokens
    low, high = CARD_DIGITS
    first = 0
    while first < len(tokens):
        best: int | None = None
        length = 0
        for last in range(first, len(tokens)):
            length += len(tokens[last].digits)
            if length > high:
                break
            if length >= low and luhn_valid("".join(t.digits for t in tokens[first : last + 1])):
                best = last
        if best is None:
            first += 1
            continue
        digits = "".join(t.digits for t in tokens[first : best + 1])
        found.append(Finding(CARD_NUMBER, tokens[first].start, tokens[best].end, digits))
        first = best + 1
    return found


def card_cued(text: str, run: DigitRun) -> bool:
    """A card cue stands shortly before `run`, with no digits between."""
    return _CARD_CUE.search(text, max(0, run.start - CARD_CUE_CHARS), run.start) is not None


def cued_card_numbers(text: str, runs: Sequence[DigitRun]) -> list[Finding]:
    """Runs of `CARD_PART_DIGITS` digits or more after a card cue: a card, whole, misheard (a digit
    lost or doubled), in part, or with its expiry date run on; better redacted whole than let out."""
    return [
        Finding(CARD_NUMBER, run.start, run.end, run.digits)
        for run in runs
        if len(run.digits) >= CARD_PART_DIGITS and card_cued(text, run)
    ]


def social_security_numbers(text: str, runs: Sequence[DigitRun]) -> list[Finding]:
    found = [
        Finding(SOCIAL_SECURITY_NUMBER, m.start(), m.end(), m.group().replace("-", ""))
        for m in _SSN_WRITTEN.finditer(text)
    ]
    for run in runs:
        digits = run.digits
        if len(digits) == 9 and _SSN_CUE.search(text, max(0, run.start - SSN_CUE_CHARS), run.start):
            found.append(Finding(SOCIAL_SECURITY_NUMBER, run.start, run.end, digits))
    return found


class Redactor:
    """The detectors for one agent (the built-in kinds plus its declared patterns)."""

    def __init__(self, patterns: Sequence[PiiPattern] = ()) -> None:
        self.patterns = [(pattern.label, pattern.compiled()) for pattern in patterns]

    def find(self, text: str) -> list[Finding]:
        """Every finding in `text`, in order, none overlapping."""
        runs = digit_runs(text)
        cards = [card_numbers(run) for run in runs]
        found = [finding for run_cards in cards for finding in run_cards]
        found += social_security_numbers(text, runs)
        # A run that opens with a valid card keeps it (not "card, expiry" as one value); listed
        # after the SSNs, so nine digits after "social security" stay an SSN.
        opens_with_card = {card.start for run_cards in cards for card in run_cards}
        found += cued_card_numbers(text, [run for run in runs if run.start not in opens_with_card])
        for label, compiled in self.patterns:
            found += [
                Finding(label, m.start(), m.end(), m.group()) for m in compiled.finditer(text) if m.end() > m.start()
            ]
        return non_overlapping(found)

    def scrub(self, text: str) -> str:
        """`text` with each finding replaced by its kind ("[card number]"): for logs, no vault."""
        if len(text) > MAX_SCAN_CHARS:
            return WITHHELD
        return replace(text, self.find(text), lambda finding: f"[{finding.kind}]")


def non_overlapping(found: Sequence[Finding]) -> list[Finding]:
    """The findings in text order, none overlapping: the earliest, then the longest, wins."""
    kept: list[Finding] = []
    for finding in sorted(found, key=lambda f: (f.start, -(f.end - f.start))):
        if not kept or finding.start >= kept[-1].end:
            kept.append(finding)
    return kept


def replace(text: str, findings: Sequence[Finding], placeholder: Callable[[Finding], str]) -> str:
    """`text` with each (ordered, non-overlapping) finding's span replaced by `placeholder(finding)`."""
    out: list[str] = []
    position = 0
    for finding in findings:
        out.append(text[position : finding.start])
        out.append(placeholder(finding))
        position = finding.end
    out.append(text[position:])
    return "".join(out)
