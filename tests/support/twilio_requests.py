"""Building requests the way Twilio sends them (shared by the telephony tests), signed by the
simulator's one "signed like Twilio" helper."""

from __future__ import annotations

import httpx

from telephony.simulator import new_sid
from telephony.simulator.signing import SIGNATURE_HEADER, signature
from tests.support.settings import AGENT_NUMBER, AUTH_TOKEN


def voice_params(to: str = AGENT_NUMBER, call_sid: str | None = None, **extra: str) -> dict[str, str]:
    params = {
        "AccountSid": new_sid("AC"),
        "ApiVersion": "2010-04-01",
        "CallSid": call_sid or new_sid("CA"),
        "CallStatus": "ringing",
        "Direction": "inbound",
        "From": "+15005550006",
        "To": to,
    }
    params.update(extra)
    return params


def sign(url: str, params: dict[str, str], token: str = AUTH_TOKEN, algorithm: str | None = None) -> str:
    return signature(token, url, params, algorithm)


def post_signed(
    base_url: str,
    path: str,
    params: dict[str, str],
    *,
    signed_url: str | None = None,
    token: str = AUTH_TOKEN,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """POST `params` to the server, signed for `signed_url` (default: the URL requested)."""
    url = base_url + path
    all_headers = {SIGNATURE_HEADER: sign(signed_url or url, params, token)}
    all_headers.update(headers or {})
    return httpx.post(url, data=params, headers=all_headers)
