"""Short-lived HMAC tokens that carry a call from the signed webhook to its media stream.

The voice webhook is authenticated by Twilio's signature, but the WebSocket that follows is just
a connection to a public URL. The webhook therefore mints a token (call sid, agent id, numbers,
expiry) that Twilio hands back in the stream's `start` message; the stream accepts a call only
with a valid, unexpired token for the same call sid.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

from pydantic import BaseModel, ConfigDict, Field, ValidationError

_VERSION = "v1"
MAX_TOKEN_CHARS = 2048


class CallTokenError(ValueError):
    """The token is missing, malformed, forged or expired (the message says which)."""


class CallClaims(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    call_sid: str = Field(min_length=1, max_length=64)
    agent_id: str = Field(min_length=1, max_length=128)
    from_number: str = Field(default="", max_length=64)
    to_number: str = Field(default="", max_length=64)
    direction: str = Field(default="inbound", max_length=32)
    expires_at: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(key: bytes, payload: str) -> str:
    return _b64(hmac.new(key, f"{_VERSION}.{payload}".encode(), hashlib.sha256).digest())


def mint(key: bytes, claims: CallClaims) -> str:
    payload = _b64(json.dumps(claims.model_dump(), separators=(",", ":")).encode())
    return f"{_VERSION}.{payload}.{_sign(key, payload)}"


def issue(
    key: bytes,
    *,
    call_sid: str,
    agent_id: str,
    ttl_seconds: int,
    from_number: str = "",
    to_number: str = "",
    direction: str = "inbound",
    now: float | None = None,
) -> str:
    expires_at = int((time.time() if now is None else now) + ttl_seconds)
    claims = CallClaims(
        call_sid=call_sid,
        agent_id=agent_id,
        from_number=from_number,
        to_number=to_number,
        direction=direction,
        expires_at=expires_at,
    )
    return mint(key, claims)


def verify(key: bytes, token: str | None, *, now: float | None = None) -> CallClaims:
    """Return the token's claims, or raise `CallTokenError` saying what is wrong."""
    if not token:
        raise CallTokenError("call token missing")
    if len(token) > MAX_TOKEN_CHARS:
        raise CallTokenError("call token too long")
    if not token.isascii():
        raise CallTokenError("call token malformed")
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != _VERSION:
        raise CallTokenError("call token malformed")
    _, payload, signature = parts
    if not hmac.compare_digest(_sign(key, payload), signature):
        raise CallTokenError("call token signature invalid")
    try:
        claims = CallClaims.model_validate_json(_unb64(payload))
    except (ValueError, ValidationError):
        raise CallTokenError("call token payload invalid") from None
    if claims.expires_at < (time.time() if now is None else now):
        raise CallTokenError("call token expired")
    return claims
