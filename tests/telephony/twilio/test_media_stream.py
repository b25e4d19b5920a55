"""`WS /twilio/media` against the real server: the token check, and bad input of every kind
leaving the server up and other calls unaffected."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import xml.etree.ElementTree as ET
from typing import Any

import httpx
import pytest
import websockets
from starlette.applications import Starlette

from telephony.settings import Settings
from telephony.simulator import Pause, Say, SimulatedCall, new_sid, synthetic_utterance
from telephony.twilio import call_token
from tests.support.metrics import counter
from tests.support.settings import AGENT_NUMBER, AUTH_TOKEN, make_settings
from tests.support.twilio_requests import post_signed, voice_params

SILENCE = base64.b64encode(b"\xff" * 160).decode()


class RawStream:
    """A hand-driven Twilio side of a media stream, for sending what Twilio never would."""

    def __init__(self, ws: websockets.ClientConnection, call_sid: str, stream_sid: str) -> None:
        self.ws = ws
        self.call_sid = call_sid
        self.stream_sid = stream_sid
        self.sequence = 0
        self.received: list[dict[str, Any]] = []

    async def send(self, event: str, **body: Any) -> None:
        self.sequence += 1
        await self.ws.send(
            json.dumps({"event": event, "sequenceNumber": str(self.sequence), "streamSid": self.stream_sid, **body})
        )

    async def start(self, token: str | None, call_sid: str | None = None) -> None:
        await self.ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        parameters = {} if token is None else {"token": token}
        await self.send(
            "start",
            start={
                "accountSid": new_sid("AC"),
                "streamSid": self.stream_sid,
                "callSid": call_sid or self.call_sid,
                "tracks": ["inbound"],
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                "customParameters": parameters,
            },
        )

    async def media(self, payload: str = SILENCE) -> None:
        await self.send(
            "media", media={"track": "inbound", "chunk": str(self.sequence), "timestamp": "0", "payload": payload}
        )

    async def receive_until(self, event: str, timeout: float = 5.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                message = json.loads(await self.ws.recv())
                self.received.append(message)
                if message["event"] == event:
                    return message

    async def close_code(self, timeout: float = 5.0) -> int | None:
        """Read until the server closes; return its close code."""
        try:
            async with asyncio.timeout(timeout):
                async for _ in self.ws:
                    pass
        except websockets.ConnectionClosed:
            pass
        return self.ws.close_code


def admitted_token(server: str, call_sid: str) -> str:
    response = post_signed(server, "/twilio/voice", voice_params(call_sid=call_sid))
    stream = ET.fromstring(response.text).find("Connect/Stream/Parameter")
    assert stream is not None
    return stream.get("value", "")


async def open_stream(server: str, **connect: Any) -> RawStream:
    ws = await websockets.connect(server.replace("http://", "ws://") + "/twilio/media", **connect)
    return RawStream(ws, new_sid("CA"), new_sid("MZ"))


def server_is_up(server: str) -> bool:
    return httpx.get(server + "/healthz").json()["status"] == "ok"


class TestCallToken:
    async def test_missing_token_closes_1008(self, server: str) -> None:
        stream = await open_stream(server)
        await stream.start(token=None)
        assert await stream.close_code() == 1008
        assert server_is_up(server)

    async def test_forged_token_closes_1008(self, server: str) -> None:
        stream = await open_stream(server)
        forged = call_token.issue(b"some other key", call_sid=stream.call_sid, agent_id="echo", ttl_seconds=60)
        await stream.start(token=forged)
        assert await stream.close_code() == 1008

    async def test_expired_token_closes_1008(self, server: str, settings: Settings) -> None:
        stream = await open_stream(server)
        expired = call_token.issue(
            settings.call_token_key(), call_sid=stream.call_sid, agent_id="echo", ttl_seconds=60, now=time.time() - 120
        )
        await stream.start(token=expired)
        assert await stream.close_code() == 1008

    async def test_token_of_another_call_closes_1008(self, server: str) -> None:
        stream = await open_stream(server)
        token = admitted_token(server, stream.call_sid)
        await stream.start(token=token, call_sid=new_sid("CA"))
        assert await stream.close_code() == 1008

    async def test_valid_token_starts_the_call(self, server: str) -> None:
        stream = await open_stream(server)
        await stream.start(admitted_token(server, stream.call_sid))
        greeting = await stream.receive_until("media")
        assert greeting["streamSid"] == stream.stream_sid
        await stream.ws.close()


class TestStartTimeout:
    @pytest.fixture
    def settings(self) -> Settings:
        return make_settings(stream_start_timeout_seconds=0.5)

    async def test_stream_without_start_is_closed(self, server: str) -> None:
        stream = await open_stream(server)
        await stream.ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        assert await stream.close_code() == 1008


BAD_MESSAGES: list[tuple[str, str | bytes]] = [
    ("malformed JSON", '{"event": "media", "media": {'),
    ("JSON array", "[1, 2, 3]"),
    ("unknown event", '{"event": "teleport", "streamSid": "MZ1"}'),
    ("no event", '{"streamSid": "MZ1"}'),
    (
        "bad base64",
        json.dumps(
            {"event": "media", "sequenceNumber": "9", "streamSid": "MZ1", "media": {"payload": "%%%not-base64%%%"}}
        ),
    ),
    ("media without payload", json.dumps({"event": "media", "sequenceNumber": "9", "streamSid": "MZ1", "media": {}})),
    ("wrong types", json.dumps({"event": "dtmf", "sequenceNumber": "x", "streamSid": "MZ1", "dtmf": {"digit": ["1"]}})),
    ("binary garbage", bytes(range(256)) * 4),
    (
        "1 MB frame",
        json.dumps(
            {"event": "media", "sequenceNumber": "9", "streamSid": "MZ1", "media": {"payload": "A" * 1024 * 1024}}
        ),
    ),
]


async def test_bad_messages_are_dropped_and_the_call_goes_on(server: str, app: Starlette) -> None:
    stream = await open_stream(server, max_size=None)
    for _, message in BAD_MESSAGES[:3]:  # garbage before `start` is dropped too
        await stream.ws.send(message)
    await stream.media()  # a media message before `start`
    await stream.start(admitted_token(server, stream.call_sid))
    await stream.receive_until("media")
    for _, message in BAD_MESSAGES:
        await stream.ws.send(message)
    await stream.send("start", start={"accountSid": "AC1", "streamSid": "MZ1", "callSid": "CA1"})  # a second start
    for _ in range(5):
        await stream.media()  # the call still takes audio...
    await stream.send("dtmf", dtmf={"track": "inbound_track", "digit": "*"})  # ...and keys: * hangs up
    assert await stream.close_code(timeout=10) == 1000
    dropped = counter(app.state.pod.metrics, "switchboard_stream_messages_dropped_total")
    assert dropped >= len(BAD_MESSAGES) + 4
    assert server_is_up(server)


class TestOversizedFrame:
    @pytest.fixture
    def settings(self) -> Settings:
        return make_settings(ws_max_message_bytes=16 * 1024, ws_max_frame_bytes=128 * 1024)

    async def test_frame_beyond_the_transport_limit_closes_only_that_stream(self, server: str) -> None:
        stream = await open_stream(server, max_size=None)
        await stream.start(admitted_token(server, stream.call_sid))
        await stream.receive_until("media")
        await stream.ws.send("x" * (256 * 1024))
        assert await stream.close_code() == 1009
        assert server_is_up(server)


async def test_a_misbehaving_stream_does_not_disturb_another_call(server: str) -> None:
    """A good call placed by the simulator runs while another stream spews garbage."""
    call = SimulatedCall(
        server, AUTH_TOKEN, to=AGENT_NUMBER, script=[Say(synthetic_utterance(1.0)), Pause(1.8)], tail_s=0.5
    )

    async def misbehave() -> None:
        stream = await open_stream(server, max_size=None)
        await stream.start(admitted_token(server, stream.call_sid))
        for _ in range(20):
            for _, message in BAD_MESSAGES:
                await stream.ws.send(message)
            await asyncio.sleep(0.1)
        await stream.ws.close()

    report, _ = await asyncio.gather(call.run(), misbehave())
    assert report.outcome == "caller hung up"
    assert report.marks_echoed == ["greeting", "reply-1"]
    assert len(report.turn_latencies()) == 1
