"""Where a call may be transferred: the operator's allow-list, and numbers that are never allowed.

`agents:write` must not be a way to send callers (and the bill) to premium-rate or foreign numbers.
A transfer target must be E.164 (or a SIP URI) and match one of `transfer_allowed_numbers`
(`*` matches any run of characters; default `+1*`: the NANP). Premium-rate and non-domestic NANP
numbers are refused whatever the list says: area code 900, exchange 976, and the +1 area codes of
the Caribbean and Atlantic countries (international rates behind a +1, the "one-ring" scams). The
check runs when an agent is written (422) and again before Twilio dials (defence in depth: the
pod's own transfer number and agents stored before the check are covered too).
"""

from __future__ import annotations

import logging
import re
from fnmatch import fnmatchcase

from agents.port import CallOutcome, Hangup, Transfer

log = logging.getLogger("switchboard.transfer")

E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
SIP_URI = re.compile(r"^sips?:[^@\s]+@[A-Za-z0-9.-]+(:[0-9]{1,5})?$")
PREMIUM_NANP = re.compile(r"^\+1(900|976|[2-9][0-9]{2}976)")
"""NANP premium rate: area code 900, and the 976 exchange of any area code."""
NON_DOMESTIC_NANP = frozenset(
    "242 246 264 268 284 345 441 473 649 658 664 721 758 767 784 809 829 849 868 869 876".split()
)
"""+1 area codes outside the US and Canada (Bahamas to Jamaica): international rates."""
MAX_PATTERNS = 64
"""Bound on entries in `transfer_allowed_numbers`."""
MIN_NUMBER_PATTERN = re.compile(r"^\+[1-9][0-9]*\*?$")
MIN_SIP_PATTERN = re.compile(r"^sips?:[^@\s]*@[A-Za-z0-9.-]+$")


def parse_patterns(text: str) -> tuple[str, ...]:
    """`+1*, +44*, sip:*@pbx.example.com` -> the patterns; ValueError for one that would open
    everything (`*`, `sip:*`) or can never match."""
    patterns = tuple(p.strip() for p in text.split(","))
    if patterns == ("",):
        return ()
    if len(patterns) > MAX_PATTERNS:
        raise ValueError(f"transfer_allowed_numbers: at most {MAX_PATTERNS} patterns")
    for pattern in patterns:
        if not (MIN_NUMBER_PATTERN.match(pattern) or MIN_SIP_PATTERN.match(pattern)):
            raise ValueError(
                f"transfer_allowed_numbers: {pattern!r} is neither an E.164 prefix with an optional trailing "
                "`*` (`+1*`, `+4420*`, `+12125550123`) nor a SIP URI with a fixed host (`sip:*@pbx.example.com`)"
            )
    return patterns


class TransferNumbers:
    """The allow-list, compiled once from the setting."""

    def __init__(self, allowed: str) -> None:
        self.patterns = parse_patterns(allowed)

    def refusal(self, target: str) -> str | None:
        """Why a transfer to `target` is refused (a message naming it), or None if it is allowed."""
        if not (E164.match(target) or SIP_URI.match(target)):
            return f"transfer target {target!r} is neither an E.164 number (+<digits>) nor a SIP URI"
        if PREMIUM_NANP.match(target):
            return f"transfer target {target!r} is a premium-rate number"
        if target.startswith("+1") and len(target) == 12 and target[2:5] in NON_DOMESTIC_NANP:
            return f"transfer target {target!r} is a +1 number outside the US and Canada"
        if not any(fnmatchcase(target, pattern) for pattern in self.patterns):
            allowed = ", ".join(self.patterns) or "none: transfers are off"
            return f"transfer target {target!r} is not on the allow-list (transfer_allowed_numbers: {allowed})"
        return None


def checked_outcome(outcome: CallOutcome | None, allowed: str) -> CallOutcome | None:
    """The outcome Twilio is told: a transfer off the allow-list becomes a hang-up (logged)."""
    if not isinstance(outcome, Transfer):
        return outcome
    refusal = TransferNumbers(allowed).refusal(outcome.to)
    if refusal is None:
        return outcome
    log.warning("refused a transfer at dial time; hanging up instead", extra={"refusal": refusal})
    return Hangup("transfer refused")
