"""Keypad PINs as they are stored on a customer record: salted, slow hashes, never the digits.

Format (one string, so a record needs one field, `pin_hash`):
`pbkdf2_sha256$<iterations>$<salt, hex>$<derived key, hex>`, PBKDF2-HMAC-SHA256 over the PIN's
UTF-8 digits. Comparison is constant-time (`hmac.compare_digest`); a malformed stored value
never matches and never raises, so a bad record cannot crash a call.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

SCHEME = "pbkdf2_sha256"
ITERATIONS = 100_000
"""Work factor for new hashes (a stored hash keeps its own)."""
MAX_ITERATIONS = 1_000_000
"""A stored hash asking for more work than this is refused (a record cannot stall a call)."""
SALT_BYTES = 16
MAX_PIN_DIGITS = 12


def hash_pin(pin: str, *, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """The stored form of `pin` (4 to `MAX_PIN_DIGITS` digits)."""
    if not (pin.isascii() and pin.isdigit() and 4 <= len(pin) <= MAX_PIN_DIGITS):
        raise ValueError(f"a PIN is 4 to {MAX_PIN_DIGITS} digits")
    if not 1 <= iterations <= MAX_ITERATIONS:
        raise ValueError(f"iterations must be 1..{MAX_ITERATIONS}")
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    derived = hashlib.pbkdf2_hmac("sha256", pin.encode(), salt, iterations)
    return f"{SCHEME}${iterations}${salt.hex()}${derived.hex()}"


def pin_matches(pin: str, stored: object) -> bool:
    """Whether `pin` is the PIN `stored` was made from (False for anything malformed)."""
    if not isinstance(stored, str) or not (pin.isascii() and pin.isdigit() and len(pin) <= MAX_PIN_DIGITS):
        return False
    parts = stored.split("$")
    if len(parts) != 4 or parts[0] != SCHEME or not parts[1].isdigit():
        return False
    iterations = int(parts[1])
    try:
        salt, expected = bytes.fromhex(parts[2]), bytes.fromhex(parts[3])
    except ValueError:
        return False
    if not 1 <= iterations <= MAX_ITERATIONS or not expected:
        return False
    derived = hashlib.pbkdf2_hmac("sha256", pin.encode(), salt, iterations)
    return hmac.compare_digest(derived, expected)
