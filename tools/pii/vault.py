"""One call's secrets: what the caller said or keyed stays here, and everything else sees a placeholder.

The session owns a vault per call. Caller words pass through `redact` before the transcript, the
history (so the model) or a log sees them: "my card is 4111 1111 1111 1111" becomes "my card is
[card number 1]", and a keypad entry is kept whole as "[keypad entry 1]". When the model passes
a placeholder as a tool argument, the executor calls `reveal_json` just before validation, so
only the tool gets the value; the audit keeps the model's text. Tool results pass through
`redact` on their way back, so a tool that echoes a value does not hand it to the model.

A caller who pauses long in the middle of a card gives each part its own turn, and no part is a
card. So a caller turn is redacted knowing the one before it: when that ended in part of a card
("my card number is [card number 1]", or a cue and a few digits), the digits the new turn opens
with are the rest, kept as one value ("[card number 2]" holds the whole card).
"""

from __future__ import annotations

import json
import re
from contextvars import ContextVar
from dataclasses import dataclass

from tools.pii.detect import (
    CARD_DIGITS,
    CARD_NUMBER,
    MAX_SCAN_CHARS,
    WITHHELD,
    Finding,
    Redactor,
    card_cued,
    luhn_valid,
    non_overlapping,
    replace,
)
from tools.pii.digits import digit_runs

MAX_SECRETS_PER_CALL = 64
"""Bound on values one call keeps; past it a new value still becomes a placeholder ("[card
number]", without a number) but cannot be handed to a tool."""
MIN_KNOWN_CHARS = 4
"""A value the vault holds is looked for verbatim in later text (a tool echoing a keypad entry)
only from this length on: a one-key menu choice would otherwise blank every "1" in a result."""
CONTINUING_WORDS = frozenset("and then um uh er so yeah yes okay ok it's its is".split())
"""Words a caller may say before the rest of a card they paused in ("and 0343 6467")."""
_PLACEHOLDER = re.compile(r"\[[a-z][a-z ]{0,31} \d{1,4}\]")
_ENDS_IN_CARD = re.compile(rf"(\[{CARD_NUMBER} \d{{1,4}}\])[\s.,!?]*$")
_WORD = re.compile(r"[a-z']+")


@dataclass(frozen=True, slots=True)
class _Secret:
    kind: str
    value: str


class SecretVault:
    def __init__(self, redactor: Redactor | None = None, max_secrets: int = MAX_SECRETS_PER_CALL) -> None:
        if max_secrets < 1:
            raise ValueError("max_secrets must be at least 1")
        self.redactor = redactor or Redactor()
        self.max_secrets = max_secrets
        self.overflowed = 0
        """Values seen after the vault was full (redacted, not kept)."""
        self._values: dict[str, _Secret] = {}
        """Placeholder -> the secret it stands for."""
        self._placeholders: dict[_Secret, str] = {}
        self._counts: dict[str, int] = {}
        self._known: re.Pattern[str] | None = None

    def __len__(self) -> int:
        return len(self._values)

    def keep(self, kind: str, value: str) -> str:
        """The placeholder for `value` (the same one each time it comes back)."""
        secret = _Secret(kind, value)
        placeholder = self._placeholders.get(secret)
        if placeholder is not None:
            return placeholder
        if len(self._values) >= self.max_secrets:
            self.overflowed += 1
            return f"[{kind}]"
        self._counts[kind] = count = self._counts.get(kind, 0) + 1
        placeholder = f"[{kind} {count}]"
        self._values[placeholder] = secret
        self._placeholders[secret] = placeholder
        self._known = None
        return placeholder

    def redact(self, text: str, follows: str | None = None) -> str:
        """`text` with every finding and every value already held replaced by its placeholder.

        `follows`: the caller's turn before this one, as redacted, when `text` is a caller turn;
        digits that finish a card it ended in part of are a card number too."""
        if len(text) > MAX_SCAN_CHARS:
            return WITHHELD
        found = self._find(text)
        rest = self._rest_of_card(text, follows) if follows is not None else None
        if rest is not None:
            found = non_overlapping([rest, *found])  # listed first: it wins a tie with a shorter reading
        return replace(text, found, lambda finding: self.keep(finding.kind, finding.value))

    def mask(self, text: str) -> str:
        """Like `redact`, but keeps nothing new (for logs): an unknown value becomes "[card number]"."""
        if len(text) > MAX_SCAN_CHARS:
            return WITHHELD
        return replace(text, self._find(text), self._placeholder_or_kind)

    def reveal(self, text: str) -> str:
        """Placeholders replaced by their values (unknown ones stay as written)."""
        return _PLACEHOLDER.sub(lambda m: self._value_of(m.group()), text)

    def reveal_json(self, raw: str) -> str:
        """`reveal` inside JSON text: each value escaped as a JSON string's content."""
        return _PLACEHOLDER.sub(lambda m: json.dumps(self._value_of(m.group()), ensure_ascii=False)[1:-1], raw)

    def _value_of(self, placeholder: str) -> str:
        secret = self._values.get(placeholder)
        return placeholder if secret is None else secret.value

    def _placeholder_or_kind(self, finding: Finding) -> str:
        return self._placeholders.get(_Secret(finding.kind, finding.value)) or f"[{finding.kind}]"

    def _rest_of_card(self, text: str, follows: str) -> Finding | None:
        """The digits `text` opens with, as the rest of the card `follows` ended in part of: the
        whole card's digits, when they are no more than a card holds."""
        opened = self._open_card(follows)
        runs = digit_runs(text) if opened else []
        if not runs:
            return None
        run = runs[0]
        lead = _WORD.findall(text[: run.start].lower())
        if any(word not in CONTINUING_WORDS for word in lead) or len(opened) + len(run.digits) > CARD_DIGITS[1]:
            return None
        return Finding(CARD_NUMBER, run.start, run.end, opened + run.digits)

    def _open_card(self, previous: str) -> str:
        """The digits of a card `previous` ends in part of ("" if none): a held card number too short
        or failing the check digit, or a few digits (fewer than a cued run redacts) after a card cue."""
        held = _ENDS_IN_CARD.search(previous)
        if held is not None:
            secret = self._values.get(held.group(1))
            if secret is None or len(secret.value) >= CARD_DIGITS[1] or luhn_valid(secret.value):
                return ""  # unknown, or already a whole card
            return secret.value
        runs = digit_runs(previous)
        if runs and not previous[runs[-1].end :].strip(" .,!?") and card_cued(previous, runs[-1]):
            return runs[-1].digits
        return ""

    def _find(self, text: str) -> list[Finding]:
        found = self.redactor.find(text)
        known = self._known_pattern()
        if known is None:
            return found
        by_value = {secret.value: secret for secret in self._values.values()}
        found += [
            Finding(by_value[m.group()].kind, m.start(), m.end(), m.group())
            for m in known.finditer(text)
            if m.group() in by_value
        ]
        return non_overlapping(found)

    def _known_pattern(self) -> re.Pattern[str] | None:
        """One pattern for every held value long enough to look for (digits only as a whole run)."""
        if self._known is None:
            values = sorted({s.value for s in self._values.values() if len(s.value) >= MIN_KNOWN_CHARS}, key=len)
            if not values:
                return None
            alternatives = [rf"(?<!\d){re.escape(v)}(?!\d)" if v.isdigit() else re.escape(v) for v in reversed(values)]
            self._known = re.compile("|".join(alternatives))
        return self._known


active_vault: ContextVar[SecretVault | None] = ContextVar("active_vault", default=None)
"""The vault of the call being handled here (set by its session), for the log filter."""
_DEFAULT = Redactor()


def mask_for_logs(text: str) -> str:
    """`text` as a log may carry it: the current call's secrets and any finding masked."""
    vault = active_vault.get()
    return _DEFAULT.scrub(text) if vault is None else vault.mask(text)
