"""Property-based fuzzing of what arrives from the public internet: media-stream messages and
call tokens. Whatever comes in, the parser answers with a message or its own error, never with
another exception (which would end the call)."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from telephony.twilio import call_token
from telephony.twilio.protocol import INBOUND_EVENTS, ProtocolError, parse_inbound

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=30,
)
field_names = st.sampled_from(
    [
        "event",
        "sequenceNumber",
        "streamSid",
        "media",
        "payload",
        "start",
        "callSid",
        "customParameters",
        "mark",
        "name",
        "dtmf",
        "digit",
        "stop",
        "track",
        "timestamp",
        "chunk",
        "accountSid",
        "tracks",
        "mediaFormat",
    ]
)
twilio_shaped = st.recursive(
    st.none() | st.integers() | st.text(max_size=30) | st.sampled_from(sorted(INBOUND_EVENTS)),
    lambda children: st.dictionaries(field_names, children, max_size=6) | st.lists(children, max_size=3),
    max_leaves=25,
)
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def parses_or_refuses(raw: str | bytes) -> None:
    try:
        parse_inbound(raw, max_bytes=64 * 1024)
    except ProtocolError:
        pass


@FUZZ
@given(st.binary(max_size=300))
def test_arbitrary_bytes(raw: bytes) -> None:
    parses_or_refuses(raw)


@FUZZ
@given(st.text(max_size=300))
def test_arbitrary_text(raw: str) -> None:
    parses_or_refuses(raw)


@FUZZ
@given(json_values)
def test_arbitrary_json(value: object) -> None:
    parses_or_refuses(json.dumps(value))


@FUZZ
@given(st.sampled_from(sorted(INBOUND_EVENTS)), st.dictionaries(field_names, twilio_shaped, max_size=6))
def test_messages_shaped_like_twilio_s(event: str, body: dict[str, object]) -> None:
    parses_or_refuses(json.dumps({**body, "event": event}))


@FUZZ
@given(st.text(max_size=400))
def test_call_tokens_are_verified_or_refused(token: str) -> None:
    try:
        call_token.verify(b"key", token)
    except call_token.CallTokenError:
        pass


@FUZZ
@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.=", max_size=300))
def test_token_shaped_strings_are_verified_or_refused(token: str) -> None:
    try:
        call_token.verify(b"key", "v1." + token)
    except call_token.CallTokenError:
        pass
