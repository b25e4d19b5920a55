"""Personal data kept out of transcripts, logs, the tool audit and the model's messages.

`Redactor` finds card numbers (Luhn-valid, written or spoken), social security numbers and an
agent's declared `PiiPattern`s; a call's `SecretVault` swaps each value for a placeholder the
model can pass back to a tool ("[card number 1]"), and only the tool gets the value.
"""

from tools.pii.detect import (
    CARD_NUMBER,
    KEYPAD_ENTRY,
    MAX_SCAN_CHARS,
    SOCIAL_SECURITY_NUMBER,
    Finding,
    Redactor,
    luhn_valid,
)
from tools.pii.digits import digit_runs
from tools.pii.patterns import MAX_PATTERN_CHARS, MAX_PII_PATTERNS, PiiPattern, check_pattern
from tools.pii.vault import MAX_SECRETS_PER_CALL, SecretVault, active_vault, mask_for_logs

__all__ = [
    "CARD_NUMBER",
    "KEYPAD_ENTRY",
    "MAX_PATTERN_CHARS",
    "MAX_PII_PATTERNS",
    "MAX_SCAN_CHARS",
    "MAX_SECRETS_PER_CALL",
    "SOCIAL_SECURITY_NUMBER",
    "Finding",
    "PiiPattern",
    "Redactor",
    "SecretVault",
    "active_vault",
    "check_pattern",
    "digit_runs",
    "luhn_valid",
    "mask_for_logs",
]
