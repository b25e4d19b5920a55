"""Twilio Media Streams messages: Twilio's documented examples, builders, and malformed input."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from telephony.audio.mulaw import pcm16_to_mulaw
from telephony.twilio.protocol import (
    Clear,
    Connected,
    Dtmf,
    Mark,
    Media,
    OutboundMark,
    OutboundMedia,
    ProtocolError,
    Start,
    Stop,
    clear_message,
    mark_message,
    media_message,
    parse_inbound,
    parse_outbound,
)

# Twilio's documentation examples, verbatim (media's payload is elided there; see below).
CONNECTED = '{"event":"connected","protocol":"Call","version":"1.0.0"}'
START = (
    '{"event":"start","sequenceNumber":"1","start":{"accountSid":"ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",'
    '"streamSid":"MZXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX","callSid":"CAXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",'
    '"tracks":["inbound"],"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1},'
    '"customParameters":{"FirstName":"Jane","LastName":"Doe","RemoteParty":"Bob"}},'
    '"streamSid":"MZXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"}'
)
STOP = (
    '{"event":"stop","sequenceNumber":"5","stop":{"accountSid":"ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",'
    '"callSid":"CAXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"},"streamSid":"MZXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"}'
)
DTMF = (
    '{"event":"dtmf","streamSid":"MZXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX","sequenceNumber":"5",'
    '"dtmf":{"track":"inbound_track","digit":"1"}}'
)
MARK = (
    '{"event":"mark","sequenceNumber":"4","streamSid":"MZXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX","mark":{"name":"my label"}}'
)

STREAM_SID = "MZXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"
ACCOUNT_SID = "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"
CALL_SID = "CAXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"

# 20 ms of a real 1 kHz tone as mu-law: the docs' "no+JhoaJjpz..." is the start of such a payload.
MULAW_FRAME = pcm16_to_mulaw((8000 * np.sin(2 * np.pi * 1000 * np.arange(160) / 8000)).astype("<i2").tobytes())
MULAW_B64 = base64.b64encode(MULAW_FRAME).decode("ascii")


def _media(payload: str = MULAW_B64, **media_overrides: object) -> str:
    media: dict[str, object] = {"track": "outbound", "chunk": "1", "timestamp": "5", "payload": payload}
    media.update(media_overrides)
    return json.dumps({"event": "media", "sequenceNumber": "3", "media": media, "streamSid": "MZ..."})


# -- documented inbound messages -------------------------------------------------------------


def test_connected() -> None:
    message = parse_inbound(CONNECTED)
    assert isinstance(message, Connected)
    assert message.event == "connected"
    assert message.protocol == "Call"
    assert message.version == "1.0.0"


def test_start() -> None:
    message = parse_inbound(START)
    assert isinstance(message, Start)
    assert message.sequence_number == 1
    assert message.stream_sid == STREAM_SID
    meta = message.start
    assert meta.account_sid == ACCOUNT_SID
    assert meta.stream_sid == STREAM_SID
    assert meta.call_sid == CALL_SID
    assert meta.tracks == ["inbound"]
    assert meta.media_format.encoding == "audio/x-mulaw"
    assert meta.media_format.sample_rate == 8000
    assert meta.media_format.channels == 1
    assert meta.custom_parameters == {"FirstName": "Jane", "LastName": "Doe", "RemoteParty": "Bob"}


def test_start_defaults_when_optional_parts_are_absent() -> None:
    raw = json.dumps(
        {
            "event": "start",
            "sequenceNumber": 1,
            "start": {"accountSid": "AC1", "streamSid": "MZ1", "callSid": "CA1"},
            "streamSid": "MZ1",
        }
    )
    meta = parse_inbound(raw).start  # type: ignore[union-attr]
    assert meta.tracks == ["inbound"]
    assert meta.media_format.sample_rate == 8000
    assert meta.custom_parameters == {}


def test_media_with_a_real_payload() -> None:
    message = parse_inbound(_media())
    assert isinstance(message, Media)
    assert message.sequence_number == 3
    assert message.stream_sid == "MZ..."
    assert message.media.track == "outbound"
    assert message.media.chunk == 1
    assert message.media.timestamp == 5
    assert message.media.payload == MULAW_FRAME
    assert len(message.media.payload) == 160


def test_docs_payload_prefix_decodes_to_mulaw_bytes() -> None:
    """The docs' "no+JhoaJjpz..." is base64 of mu-law; its complete prefix decodes fine."""
    message = parse_inbound(_media(payload="no+JhoaJjpw="))
    assert message.media.payload == bytes([0x9E, 0x8F, 0x89, 0x86, 0x86, 0x89, 0x8E, 0x9C])  # type: ignore[union-attr]


def test_stop() -> None:
    message = parse_inbound(STOP)
    assert isinstance(message, Stop)
    assert message.sequence_number == 5
    assert message.stream_sid == STREAM_SID
    assert message.stop.account_sid == ACCOUNT_SID
    assert message.stop.call_sid == CALL_SID


def test_dtmf() -> None:
    message = parse_inbound(DTMF)
    assert isinstance(message, Dtmf)
    assert message.sequence_number == 5
    assert message.stream_sid == STREAM_SID
    assert message.dtmf.track == "inbound_track"
    assert message.dtmf.digit == "1"


@pytest.mark.parametrize("digit", ["0", "9", "*", "#", "A", "d", "w"])
def test_dtmf_accepts_every_key(digit: str) -> None:
    raw = DTMF.replace('"digit":"1"', f'"digit":"{digit}"')
    assert parse_inbound(raw).dtmf.digit == digit  # type: ignore[union-attr]


def test_mark() -> None:
    message = parse_inbound(MARK)
    assert isinstance(message, Mark)
    assert message.sequence_number == 4
    assert message.stream_sid == STREAM_SID
    assert message.mark.name == "my label"


def test_bytes_input_is_accepted() -> None:
    assert isinstance(parse_inbound(MARK.encode()), Mark)


def test_unknown_fields_are_ignored() -> None:
    data = json.loads(START)
    data["brandNewField"] = {"nested": True}
    data["start"]["somethingElse"] = 42
    data["start"]["mediaFormat"]["bitDepth"] = 8
    message = parse_inbound(json.dumps(data))
    assert isinstance(message, Start)
    assert message.start.call_sid == CALL_SID
    assert not hasattr(message, "brandNewField")
    assert not hasattr(message, "brand_new_field")


# -- outbound builders ----------------------------------------------------------------------


def test_media_message_shape_and_round_trip() -> None:
    raw = media_message(STREAM_SID, MULAW_FRAME)
    assert json.loads(raw) == {"event": "media", "streamSid": STREAM_SID, "media": {"payload": MULAW_B64}}
    parsed = parse_outbound(raw)
    assert isinstance(parsed, OutboundMedia)
    assert parsed.stream_sid == STREAM_SID
    assert parsed.media.payload == MULAW_FRAME


def test_mark_message_shape_and_round_trip() -> None:
    raw = mark_message(STREAM_SID, 'reply-1 "quoted" ü')
    assert json.loads(raw) == {"event": "mark", "streamSid": STREAM_SID, "mark": {"name": 'reply-1 "quoted" ü'}}
    parsed = parse_outbound(raw)
    assert isinstance(parsed, OutboundMark)
    assert parsed.stream_sid == STREAM_SID
    assert parsed.mark.name == 'reply-1 "quoted" ü'


def test_clear_message_shape_and_round_trip() -> None:
    raw = clear_message(STREAM_SID)
    assert json.loads(raw) == {"event": "clear", "streamSid": STREAM_SID}
    parsed = parse_outbound(raw)
    assert isinstance(parsed, Clear)
    assert parsed.stream_sid == STREAM_SID


def test_media_message_with_empty_audio_round_trips() -> None:
    assert parse_outbound(media_message("MZ1", b"")).media.payload == b""  # type: ignore[union-attr]


def test_directions_do_not_mix() -> None:
    with pytest.raises(ProtocolError, match="unknown event 'clear'"):
        parse_inbound(clear_message(STREAM_SID))
    with pytest.raises(ProtocolError, match="unknown event 'start'"):
        parse_outbound(START)


# -- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["{not json", "", '{"event":"mark"', "nul"])
def test_malformed_json(raw: str) -> None:
    with pytest.raises(ProtocolError, match="malformed JSON"):
        parse_inbound(raw)


def test_deeply_nested_json_raises_protocol_error() -> None:
    raw = "[" * 20_000
    assert len(raw) < 64 * 1024
    with pytest.raises(ProtocolError):
        parse_inbound(raw)


def test_huge_integer_literal_raises_protocol_error() -> None:
    raw = '{"event":"mark","sequenceNumber":' + "1" * 5000 + "}"
    with pytest.raises(ProtocolError):
        parse_inbound(raw)


@pytest.mark.parametrize("raw", ["[1, 2]", '"start"', "42", "null", "true"])
def test_non_object_json(raw: str) -> None:
    with pytest.raises(ProtocolError, match="not a JSON object"):
        parse_inbound(raw)


def test_unknown_event() -> None:
    with pytest.raises(ProtocolError, match="unknown event 'transcription'"):
        parse_inbound('{"event":"transcription","streamSid":"MZ1"}')


def test_unknown_event_name_is_truncated_in_the_message() -> None:
    with pytest.raises(ProtocolError) as info:
        parse_inbound(json.dumps({"event": "x" * 1000}))
    assert len(str(info.value)) < 80


def test_missing_event() -> None:
    with pytest.raises(ProtocolError, match="unknown event 'None'"):
        parse_inbound('{"streamSid":"MZ1","mark":{"name":"a"}}')


def test_non_string_scalar_event() -> None:
    with pytest.raises(ProtocolError, match="unknown event '1'"):
        parse_inbound('{"event":1}')


@pytest.mark.parametrize("event", ['["media"]', '{"name":"media"}'])
def test_unhashable_event_raises_protocol_error(event: str) -> None:
    """A list or object as `event` is refused like any unknown event (not a TypeError)."""
    with pytest.raises(ProtocolError, match="unknown event"):
        parse_inbound(f'{{"event":{event}}}')


@pytest.mark.parametrize("payload", ["no+JhoaJjpz...", "not base64!", "abc", "YWJj ZGVm"])
def test_bad_base64_payload(payload: str) -> None:
    with pytest.raises(ProtocolError, match=r"invalid media message: media\.payload: .*not valid base64"):
        parse_inbound(_media(payload=payload))


def test_non_string_payload() -> None:
    with pytest.raises(ProtocolError, match=r"media\.payload: .*must be a base64 string"):
        parse_inbound(_media(payload=123))  # type: ignore[arg-type]


def test_missing_payload() -> None:
    raw = json.dumps({"event": "media", "sequenceNumber": "3", "media": {"track": "inbound"}, "streamSid": "MZ1"})
    with pytest.raises(ProtocolError, match=r"media\.payload: Field required"):
        parse_inbound(raw)


def test_oversized_message() -> None:
    raw = _media(payload=base64.b64encode(b"\xff" * 3000).decode())
    assert isinstance(parse_inbound(raw, max_bytes=len(raw)), Media)  # exactly at the limit is fine
    with pytest.raises(ProtocolError, match=f"message of {len(raw)} bytes exceeds the {len(raw) - 1}-byte limit"):
        parse_inbound(raw, max_bytes=len(raw) - 1)


def test_oversized_outbound_message() -> None:
    raw = media_message("MZ1", b"\xff" * 1000)
    with pytest.raises(ProtocolError, match="exceeds"):
        parse_outbound(raw, max_bytes=100)


def test_oversized_bytes_message() -> None:
    with pytest.raises(ProtocolError, match="exceeds the 100-byte limit"):
        parse_inbound(b" " * 101 + b"{}", max_bytes=100)


def test_oversized_message_is_measured_in_bytes_for_text() -> None:
    raw = MARK.replace("my label", "\u00e9" * 60)  # 60 characters, 120 bytes in UTF-8
    limit = len(raw)
    assert len(raw.encode()) > limit
    with pytest.raises(ProtocolError, match="exceeds"):
        parse_inbound(raw, max_bytes=limit)


def test_wrong_sequence_number_type() -> None:
    with pytest.raises(ProtocolError, match=r"invalid start message: sequenceNumber: .*valid integer"):
        parse_inbound(START.replace('"sequenceNumber":"1"', '"sequenceNumber":"abc"'))


def test_wrong_nested_types() -> None:
    with pytest.raises(ProtocolError, match=r"invalid start message: start\.mediaFormat\.sampleRate"):
        parse_inbound(START.replace('"sampleRate":8000', '"sampleRate":"fast"'))
    with pytest.raises(ProtocolError, match=r"invalid start message: start\.customParameters"):
        parse_inbound(START.replace('"LastName":"Doe"', '"LastName":{"a":1}'))
    with pytest.raises(ProtocolError, match=r"invalid mark message: mark"):
        parse_inbound(MARK.replace('{"name":"my label"}', '"my label"'))


def test_missing_required_field() -> None:
    with pytest.raises(ProtocolError, match=r"invalid stop message: stop\.callSid: Field required"):
        parse_inbound(STOP.replace(',"callSid":"CAXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"', ""))
    with pytest.raises(ProtocolError, match=r"invalid start message: start\.callSid"):
        parse_inbound(START.replace('"callSid":"CAXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"', '"callSid":""'))


def test_empty_mark_name() -> None:
    with pytest.raises(ProtocolError, match=r"invalid mark message: mark\.name"):
        parse_inbound(MARK.replace('"my label"', '""'))


@pytest.mark.parametrize("digit", ["x", "12", "", "E", "!"])
def test_invalid_dtmf_digit(digit: str) -> None:
    with pytest.raises(ProtocolError, match=r"invalid dtmf message: dtmf\.digit"):
        parse_inbound(DTMF.replace('"digit":"1"', f'"digit":"{digit}"'))


def test_bytes_with_invalid_utf8() -> None:
    with pytest.raises(ProtocolError, match="malformed JSON: UnicodeDecodeError"):
        parse_inbound(b'{"event":"mark","name":"\xff\xfe"}')


def test_protocol_error_is_a_value_error() -> None:
    assert issubclass(ProtocolError, ValueError)
