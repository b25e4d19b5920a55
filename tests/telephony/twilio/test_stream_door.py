"""The media stream's door: how many strangers may wait for `start`, how long, with how big a message,
and a second stream for a call already live (issue 15: "no one in")."""

from __future__ import annotations

import asyncio
import json
import xml.etree.ElementTree as ET
from typing import Any

import pytest
import websockets
from starlette.applications import Starlette

from telephony.settings import Settings
from telephony.simulator import new_sid
from telephony.twilio.stream_door import StreamDoor
from tests.support.metrics import counter
from tests.support.settings import make_settings
from tests.support.twilio_requests import post_signed, voice_params
from tests.support.waiting import until

TURNED_AWAY = "switchboard_streams_turned_away_total"
CONNECTED = json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})


async def connect(server: str) -> websockets.ClientConnection:
    return await websockets.connect(server.replace("http://", "ws://") + "/twilio/media", max_size=None)


async def closed_with(ws: websockets.ClientConnection, timeout: float) -> tuple[int | None, str | None]:
    """Read until the server closes (or `timeout` passes); the close code and reason."""
    try:
        async with asyncio.timeout(timeout):
            async for _ in ws:
                pass
    except (websockets.ConnectionClosed, TimeoutError):
        pass
    return ws.close_code, ws.close_reason


def admitted_token(server: str, call_sid: str) -> str:
    response = post_signed(server, "/twilio/voice", voice_params(call_sid=call_sid))
    parameter = ET.fromstring(response.text).find("Connect/Stream/Parameter")
    assert parameter is not None
    return parameter.get("value", "")


async def send_start(ws: websockets.ClientConnection, call_sid: str, token: str) -> None:
    start: dict[str, Any] = {
        "accountSid": new_sid("AC"),
        "streamSid": new_sid("MZ"),
        "callSid": call_sid,
        "tracks": ["inbound"],
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        "customParameters": {"token": token},
    }
    await ws.send(CONNECTED)
    await ws.send(
        json.dumps({"event": "start", "sequenceNumber": "1", "streamSid": start["streamSid"], "start": start})
    )


async def first_media(ws: websockets.ClientConnection, timeout: float = 10.0) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            message = json.loads(await ws.recv())
            if message["event"] == "media":
                return message


class TestPendingCap:
    @pytest.fixture
    def settings(self) -> Settings:
        return make_settings(stream_pending_max=3, stream_start_timeout_seconds=30)

    async def test_connections_past_the_cap_are_closed_at_once_and_counted(self, server: str, app: Starlette) -> None:
        waiting = [await connect(server) for _ in range(3)]
        for ws in waiting:
            await ws.send(CONNECTED)
        pod = app.state.pod
        await until(lambda: pod.stream_door.pending == 3, timeout=10, what="three streams waiting for start")
        with pytest.raises(websockets.InvalidStatus) as refused:  # refused at the handshake: cheapest
            await connect(server)
        assert refused.value.response.status_code == 403
        assert counter(pod.metrics, TURNED_AWAY, reason="too_many_pending") == 1
        # The waiting ones are untouched, and a place freed lets a real call in.
        await waiting[0].close()
        await until(lambda: pod.stream_door.pending == 2, timeout=10, what="a waiting stream leaving")
        call_sid = new_sid("CA")
        ws = await connect(server)
        await send_start(ws, call_sid, admitted_token(server, call_sid))
        await first_media(ws)
        assert pod.stream_door.pending == 2  # a started call no longer waits at the door
        await ws.close()
        for other in waiting[1:]:
            await other.close()
        await until(lambda: pod.stream_door.pending == 0, timeout=10, what="every waiting stream gone")


async def test_a_stream_that_never_starts_is_closed_by_the_default_timeout(server: str, app: Starlette) -> None:
    ws = await connect(server)
    await ws.send(CONNECTED)
    code, _ = await closed_with(ws, timeout=8)  # a bound on the test, not a timing assertion
    assert code == 1008
    assert counter(app.state.pod.metrics, TURNED_AWAY, reason="start_timeout") == 1
    await until(lambda: app.state.pod.stream_door.pending == 0, timeout=5, what="the door emptied")


async def test_a_big_message_before_start_closes_the_stream(server: str, app: Starlette, settings: Settings) -> None:
    ws = await connect(server)
    await ws.send(CONNECTED)
    await ws.send("x" * (settings.stream_prestart_max_message_bytes + 1))
    code, _ = await closed_with(ws, timeout=5)
    assert code == 1009
    assert counter(app.state.pod.metrics, TURNED_AWAY, reason="prestart_message_too_large") == 1


async def test_after_start_the_normal_message_limit_applies(server: str, settings: Settings) -> None:
    call_sid = new_sid("CA")
    ws = await connect(server)
    await send_start(ws, call_sid, admitted_token(server, call_sid))
    await first_media(ws)
    await ws.send("x" * (settings.stream_prestart_max_message_bytes * 2))  # dropped, not closed
    await ws.send(json.dumps({"event": "dtmf", "sequenceNumber": "3", "streamSid": "MZ1", "dtmf": {"digit": "*"}}))
    code, _ = await closed_with(ws, timeout=10)
    assert code == 1000  # the caller's * ended the call normally


async def test_a_second_stream_for_a_live_call_is_refused_and_not_counted(server: str, app: Starlette) -> None:
    pod = app.state.pod
    call_sid = new_sid("CA")
    token = admitted_token(server, call_sid)
    first = await connect(server)
    await send_start(first, call_sid, token)
    await first_media(first)
    assert pod.calls.active == 1
    second = await connect(server)
    await send_start(second, call_sid, token)  # the same signed token, replayed
    code, _ = await closed_with(second, timeout=5)
    assert code == 1008
    assert counter(pod.metrics, TURNED_AWAY, reason="call_already_live") == 1
    assert pod.calls.active == 1 and pod.calls.count == 1  # the live call still counts: drain waits for it
    await first.close()
    await until(lambda: pod.calls.count == 0, timeout=10, what="the call released once")


def test_the_door_counts_places_and_a_place_is_left_once() -> None:
    door = StreamDoor(limit=2)
    first, second = door.enter(), door.enter()
    assert first is not None and second is not None
    assert door.enter() is None and door.pending == 2
    first.leave()
    first.leave()  # idempotent: the handler's `finally` and `admitted()` may both leave
    assert door.pending == 1
    assert door.enter() is not None


def test_the_door_refuses_a_nonsense_limit() -> None:
    with pytest.raises(ValueError):
        StreamDoor(limit=0)
