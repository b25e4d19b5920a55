"""Signing a request the way Twilio does, for our stand-ins of Twilio (the simulated call, the fake
REST API's status callbacks) and for the tests that post webhooks.

Twilio signs each webhook with the account's auth token: `X-Twilio-Signature` is the HMAC of the
URL it posts to plus the sorted form parameters (`telephony/twilio/signature.py` checks it).
"""

from __future__ import annotations

from collections.abc import Mapping

from twilio.request_validator import RequestValidator

SIGNATURE_HEADER = "X-Twilio-Signature"


def signature(auth_token: str, url: str, params: Mapping[str, str], algorithm: str | None = None) -> str:
    """The signature Twilio sends for a POST of `params` to `url` (`algorithm`: "HMAC_SHA1", Twilio's
    default, or "HMAC_SHA256")."""
    return RequestValidator(auth_token).compute_signature(url, params, algorithm)


def signed_headers(auth_token: str, url: str, params: Mapping[str, str]) -> dict[str, str]:
    """The headers of a POST of `params` to `url` signed like Twilio's."""
    return {SIGNATURE_HEADER: signature(auth_token, url, params)}
