"""The console's session cookie: which API key a browser acts for, signed so it cannot be forged or extended.

The cookie names the key by its id (a digest prefix, never the key) and carries the session's CSRF token and its
expiry, joined with an HMAC-SHA256 of the console secret. It is stateless, so any pod can check it; a session ends at
its expiry, when the secret is rotated, or at once when its key is removed from `SWITCHBOARD_API_KEYS` (the guard
looks the key up on every request).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

COOKIE_NAME = "switchboard_console"
MAX_COOKIE_CHARS = 512
"""A cookie longer than this is not ours and is not parsed."""


@dataclass(frozen=True, slots=True)
class Session:
    key_id: str
    csrf: str
    """Sent back with every write (form field `csrf_token` or header `X-CSRF-Token`)."""
    expires_at: float


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionSigner:
    def __init__(self, secret: str, lifetime_s: float) -> None:
        self._key = hashlib.sha256(b"switchboard-console-session\0" + secret.encode()).digest()
        self.lifetime_s = lifetime_s

    def issue(self, key_id: str) -> tuple[str, Session]:
        """A new session for the key with this id, and its cookie value."""
        session = Session(key_id=key_id, csrf=secrets.token_urlsafe(24), expires_at=time.time() + self.lifetime_s)
        payload = _b64(json.dumps({"k": session.key_id, "c": session.csrf, "e": session.expires_at}).encode())
        return f"{payload}.{self._sign(payload)}", session

    def read(self, value: str | None) -> Session | None:
        """The session in a cookie value, or None if it is missing, malformed, forged or expired."""
        if not value or len(value) > MAX_COOKIE_CHARS or value.count(".") != 1:
            return None
        payload, signature = value.split(".")
        if not hmac.compare_digest(signature, self._sign(payload)):
            return None
        try:
            fields = json.loads(_unb64(payload))
            session = Session(key_id=str(fields["k"]), csrf=str(fields["c"]), expires_at=float(fields["e"]))
        except (ValueError, KeyError, TypeError):
            return None
        return session if session.expires_at > time.time() else None

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode("ascii", errors="replace"), hashlib.sha256).digest())
