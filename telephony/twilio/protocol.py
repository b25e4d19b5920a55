"""Twilio Media Streams messages, both directions, as pydantic models.

Inbound (Twilio -> us): connected, start, media, dtmf, mark, stop.
Outbound (us -> Twilio): media, mark, clear.
The simulator uses the same models from the other side, so both ends agree by construction.
Unknown fields are ignored (Twilio may add some); unknown events and malformed messages raise
`ProtocolError`, which the stream logs and drops without ending the call.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator
from pydantic.alias_generators import to_camel


class ProtocolError(ValueError):
    """A media-stream message we cannot use; the text says why, briefly."""


class _Message(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)


def _decode_payload(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if not isinstance(value, str):
        raise ValueError("payload must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("payload is not valid base64") from None


# -- inbound -------------------------------------------------------------------------------


class Connected(_Message):
    event: Literal["connected"]
    protocol: str = "Call"
    version: str = "1.0.0"


class MediaFormat(_Message):
    encoding: str = "audio/x-mulaw"
    sample_rate: int = 8000
    channels: int = 1


class StartMetadata(_Message):
    stream_sid: str = Field(min_length=1, max_length=64)
    account_sid: str = Field(min_length=1, max_length=64)
    call_sid: str = Field(min_length=1, max_length=64)
    tracks: list[str] = Field(default_factory=lambda: ["inbound"], max_length=4)
    media_format: MediaFormat = Field(default_factory=MediaFormat)
    custom_parameters: dict[str, str] = Field(default_factory=dict, max_length=64)


class Start(_Message):
    event: Literal["start"]
    sequence_number: int
    start: StartMetadata
    stream_sid: str = Field(min_length=1, max_length=64)


class MediaChunk(_Message):
    track: str = "inbound"
    chunk: int = 0
    timestamp: int = 0
    payload: bytes

    _payload = field_validator("payload", mode="before")(_decode_payload)


class Media(_Message):
    event: Literal["media"]
    sequence_number: int
    media: MediaChunk
    stream_sid: str


class DtmfDigit(_Message):
    track: str = "inbound_track"
    digit: str = Field(pattern=r"^[0-9*#A-Da-dw]$")


class Dtmf(_Message):
    event: Literal["dtmf"]
    sequence_number: int
    dtmf: DtmfDigit
    stream_sid: str


class MarkName(_Message):
    name: str = Field(min_length=1, max_length=256)


class Mark(_Message):
    event: Literal["mark"]
    sequence_number: int
    mark: MarkName
    stream_sid: str


class StopMetadata(_Message):
    account_sid: str
    call_sid: str


class Stop(_Message):
    event: Literal["stop"]
    sequence_number: int
    stop: StopMetadata
    stream_sid: str


InboundMessage = Annotated[Connected | Start | Media | Dtmf | Mark | Stop, Field(discriminator="event")]
_inbound = TypeAdapter(InboundMessage)
INBOUND_EVENTS = frozenset({"connected", "start", "media", "dtmf", "mark", "stop"})


def _parse(raw: str | bytes, max_bytes: int, events: frozenset[str], adapter: TypeAdapter[Any]) -> Any:
    size = len(raw) if isinstance(raw, bytes) or raw.isascii() else len(raw.encode("utf-8", "replace"))
    if size > max_bytes:
        raise ProtocolError(f"message of {size} bytes exceeds the {max_bytes}-byte limit")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # also too-deep nesting and over-long integers
        raise ProtocolError(f"malformed JSON: {exc.__class__.__name__}") from None
    if not isinstance(data, dict):
        raise ProtocolError("message is not a JSON object")
    event = data.get("event")
    if not isinstance(event, str) or event not in events:
        raise ProtocolError(f"unknown event {str(event)[:40]!r}")
    try:
        return adapter.validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"][1:]) or "message"
        raise ProtocolError(f"invalid {event} message: {where}: {first['msg']}") from None


def parse_inbound(raw: str | bytes, max_bytes: int = 64 * 1024) -> Connected | Start | Media | Dtmf | Mark | Stop:
    """Parse one message from Twilio, or raise `ProtocolError`."""
    return _parse(raw, max_bytes, INBOUND_EVENTS, _inbound)


# -- outbound ------------------------------------------------------------------------------


class OutboundMediaChunk(_Message):
    payload: bytes

    _payload = field_validator("payload", mode="before")(_decode_payload)


class OutboundMedia(_Message):
    event: Literal["media"]
    stream_sid: str
    media: OutboundMediaChunk


class OutboundMark(_Message):
    event: Literal["mark"]
    stream_sid: str
    mark: MarkName


class Clear(_Message):
    event: Literal["clear"]
    stream_sid: str


OutboundMessage = Annotated[OutboundMedia | OutboundMark | Clear, Field(discriminator="event")]
_outbound = TypeAdapter(OutboundMessage)
OUTBOUND_EVENTS = frozenset({"media", "mark", "clear"})


def parse_outbound(raw: str | bytes, max_bytes: int = 1024 * 1024) -> OutboundMedia | OutboundMark | Clear:
    """Parse one message sent to Twilio (the simulator's side), or raise `ProtocolError`."""
    return _parse(raw, max_bytes, OUTBOUND_EVENTS, _outbound)


# Builders. The hot path (one media message per 20 ms per call) formats JSON directly.


def media_message(stream_sid: str, mulaw: bytes) -> str:
    payload = base64.b64encode(mulaw).decode("ascii")
    return json.dumps({"event": "media", "streamSid": stream_sid, "media": {"payload": payload}})


def mark_message(stream_sid: str, name: str) -> str:
    return json.dumps({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}})


def clear_message(stream_sid: str) -> str:
    return json.dumps({"event": "clear", "streamSid": stream_sid})
