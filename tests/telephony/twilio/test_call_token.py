"""Call tokens: minted by the webhook, checked when the media stream starts."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from telephony.twilio.call_token import MAX_TOKEN_CHARS, CallClaims, CallTokenError, _sign, issue, mint, verify

KEY = b"k" * 32
OTHER_KEY = b"o" * 32
NOW = 1_700_000_000.0


def _token(**overrides: object) -> str:
    values: dict[str, object] = {
        "call_sid": "CA0123456789abcdef0123456789abcdef",
        "agent_id": "echo",
        "ttl_seconds": 60,
        "from_number": "+15550111",
        "to_number": "+15550100",
        "direction": "inbound",
        "now": NOW,
    }
    values.update(overrides)
    return issue(KEY, **values)  # type: ignore[arg-type]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_round_trip_keeps_every_claim() -> None:
    token = _token()
    claims = verify(KEY, token, now=NOW + 1)
    assert claims == CallClaims(
        call_sid="CA0123456789abcdef0123456789abcdef",
        agent_id="echo",
        from_number="+15550111",
        to_number="+15550100",
        direction="inbound",
        expires_at=int(NOW + 60),
    )


def test_token_format() -> None:
    version, payload, signature = _token().split(".")
    assert version == "v1"
    assert json.loads(_unb64(payload))["call_sid"] == "CA0123456789abcdef0123456789abcdef"
    assert len(_unb64(signature)) == 32  # HMAC-SHA256
    assert "=" not in payload + signature  # URL-safe, unpadded: fits a TwiML <Parameter>


def test_defaults_for_optional_claims() -> None:
    claims = verify(KEY, issue(KEY, call_sid="CA1", agent_id="a", ttl_seconds=5, now=NOW), now=NOW)
    assert (claims.from_number, claims.to_number, claims.direction) == ("", "", "inbound")


def test_issue_uses_the_wall_clock_by_default() -> None:
    claims = verify(KEY, _token(now=None, ttl_seconds=300))
    assert claims.agent_id == "echo"


def test_valid_until_the_expiry_second() -> None:
    token = _token(ttl_seconds=60)
    assert verify(KEY, token, now=NOW + 60).call_sid.startswith("CA")


def test_expired() -> None:
    token = _token(ttl_seconds=60)
    with pytest.raises(CallTokenError, match="expired"):
        verify(KEY, token, now=NOW + 61)


def test_token_issued_in_the_past_is_expired_now() -> None:
    token = _token(now=NOW - 3600, ttl_seconds=60)
    with pytest.raises(CallTokenError, match="expired"):
        verify(KEY, token, now=NOW)


def test_forged_signature() -> None:
    version, payload, signature = _token().split(".")
    forged = _b64(bytes(32))
    assert forged != signature
    with pytest.raises(CallTokenError, match="signature invalid"):
        verify(KEY, f"{version}.{payload}.{forged}", now=NOW)


def test_signature_with_one_character_changed() -> None:
    version, payload, signature = _token().split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    with pytest.raises(CallTokenError, match="signature invalid"):
        verify(KEY, f"{version}.{payload}.{flipped}", now=NOW)


def test_signed_with_another_key() -> None:
    token = issue(OTHER_KEY, call_sid="CA1", agent_id="echo", ttl_seconds=60, now=NOW)
    assert verify(OTHER_KEY, token, now=NOW).call_sid == "CA1"
    with pytest.raises(CallTokenError, match="signature invalid"):
        verify(KEY, token, now=NOW)


def test_tampered_payload() -> None:
    """Swapping in claims for another call (or a later expiry) without re-signing fails."""
    version, payload, signature = _token().split(".")
    claims = json.loads(_unb64(payload))
    claims["call_sid"] = "CAattacker"
    claims["expires_at"] += 10_000
    tampered = _b64(json.dumps(claims, separators=(",", ":")).encode())
    with pytest.raises(CallTokenError, match="signature invalid"):
        verify(KEY, f"{version}.{tampered}.{signature}", now=NOW)


def test_payload_signed_with_the_right_key_but_invalid_claims() -> None:
    """Only reachable with the key, but the payload is still validated, not trusted blindly."""
    for body in (b"not json", b'{"call_sid":"CA1"}', b'{"call_sid":"CA1","agent_id":"a","expires_at":1,"admin":true}'):
        payload = _b64(body)
        with pytest.raises(CallTokenError, match="payload invalid"):
            verify(KEY, f"v1.{payload}.{_sign(KEY, payload)}", now=0)


def test_wrong_version_prefix() -> None:
    _, payload, signature = _token().split(".")
    for version in ("v2", "V1", "", "v1 "):
        with pytest.raises(CallTokenError, match="malformed"):
            verify(KEY, f"{version}.{payload}.{signature}", now=NOW)


def test_version_is_covered_by_the_signature() -> None:
    """The signature is over "v1.<payload>", not the payload alone."""
    _, payload, signature = _token().split(".")
    assert signature == _b64(hmac.new(KEY, f"v1.{payload}".encode(), hashlib.sha256).digest())
    assert signature != _b64(hmac.new(KEY, payload.encode(), hashlib.sha256).digest())


@pytest.mark.parametrize(
    "token",
    ["garbage", "v1", "v1.", "v1..", "v1.a.b.c", "....", "v1.payload-only", "a.b.c", "v1.!!!.???", "v1.\u00e9.abc"],
)
def test_garbage(token: str) -> None:
    with pytest.raises(CallTokenError):
        verify(KEY, token, now=NOW)


@pytest.mark.parametrize("token", ["v1.abc.\u00e9\u00e9\u00e9", "v1.eyJ9.sig\u2603"])
def test_non_ascii_garbage(token: str) -> None:
    with pytest.raises(CallTokenError):
        verify(KEY, token, now=NOW)


@pytest.mark.parametrize("token", ["", None])
def test_missing(token: str | None) -> None:
    with pytest.raises(CallTokenError, match="missing"):
        verify(KEY, token, now=NOW)


def test_too_long() -> None:
    with pytest.raises(CallTokenError, match="too long"):
        verify(KEY, "v1." + "a" * MAX_TOKEN_CHARS + ".sig", now=NOW)


def test_longest_legitimate_token_fits() -> None:
    token = _token(call_sid="C" * 64, agent_id="a" * 128, from_number="+" * 64, to_number="+" * 64, direction="d" * 32)
    assert len(token) <= MAX_TOKEN_CHARS
    assert verify(KEY, token, now=NOW).agent_id == "a" * 128


def test_claims_are_validated_when_issuing() -> None:
    with pytest.raises(ValueError):
        issue(KEY, call_sid="", agent_id="echo", ttl_seconds=60, now=NOW)


def test_mint_and_verify_agree() -> None:
    claims = CallClaims(call_sid="CA9", agent_id="sales", expires_at=int(NOW) + 10, direction="outbound")
    assert verify(KEY, mint(KEY, claims), now=NOW) == claims


def test_call_token_error_is_a_value_error() -> None:
    assert issubclass(CallTokenError, ValueError)
