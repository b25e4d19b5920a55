"""A pod on FAKE engines whose calls leave their records line by line: for the chaos tests of call records.

`record_app(settings, database, fakes)` is the real app (webhook, media stream, the pod's record
writer) with one voice agent on FAKE engines answering `NUMBER`. The caller presses keys: each entry
is a caller line and the fake model's answer an agent line, so the transcript grows while the call
goes without any audio to decode. Run as a module (`python -m tests.support.record_pod PORT DATABASE`)
it serves that app against the MongoDB at `MONGODB_URI` until it is killed: the SIGKILL variant.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
import xml.etree.ElementTree as ET
from urllib.parse import urlsplit

import websockets
from starlette.applications import Starlette

from agents.config import AgentConfig
from agents.engines.local.silero import VadConfig
from agents.testing.fake_engines import FakeChatModel, FakeEngines
from agents.testing.scripted_llm import Reply
from db import Database
from telephony.app import create_app
from telephony.settings import Settings
from telephony.twilio.signature import websocket_url
from telephony.voice import VoiceStack
from tests.support.settings import make_settings
from tests.support.twilio_requests import post_signed, voice_params

NUMBER = "+15550190"
AGENT = AgentConfig(
    id="recorded",
    greeting="Hello, press a key.",
    dtmf_timeout_ms=200,
    silence_timeout_seconds=60.0,
    echo_guard=False,
)
MAX_REPLIES = 200
"""Answers the fake model has for one pod (a key press each)."""


def record_settings(**overrides: object) -> Settings:
    """The pod's settings: `NUMBER` routed to the recorded agent; shutdown does not wait on records
    (a chaos test checks what was written before the kill, not what a clean stop adds)."""
    return make_settings(numbers={NUMBER: AGENT.id}, call_record_shutdown_seconds=0, **overrides)


def record_app(settings: Settings, database: Database, fakes: FakeEngines | None = None) -> Starlette:
    """The app with the recorded agent on FAKE engines (no model files)."""
    fakes = fakes or FakeEngines(chat=FakeChatModel([Reply(f"Noted entry {i}.") for i in range(MAX_REPLIES)]))
    stack = VoiceStack(fakes.engines, VadConfig(), fakes.listener_config, fakes.tts)
    return create_app(settings, database=database, stack=stack, agent_configs=[AGENT])


async def keypad_call(url: str, presses: int, interval_s: float, sent: list[float]) -> str:
    """Call `NUMBER` and press a key (`1#`) every `interval_s`, `presses` times, echoing the agent's
    marks as Twilio does; each press's wall-clock time is appended to `sent` as it goes. Returns the
    CallSid. A stream the pod drops (killed) ends the call early, without an error."""
    params = voice_params(to=NUMBER)
    answer = await asyncio.to_thread(post_signed, url, "/twilio/voice", params)
    answer.raise_for_status()
    stream = ET.fromstring(answer.text).find("Connect/Stream")
    token = None if stream is None else stream.find("Parameter[@name='token']")
    assert stream is not None and token is not None, answer.text
    sid, stream_sid, account = params["CallSid"], "MZ" + params["CallSid"][2:], params["AccountSid"]
    start = {
        "accountSid": account,
        "streamSid": stream_sid,
        "callSid": sid,
        "tracks": ["inbound"],
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        "customParameters": {"token": token.get("value", "")},
    }
    sequence = iter(range(1, 1_000_000))

    def message(event: str, **body: object) -> str:
        return json.dumps({"event": event, "sequenceNumber": str(next(sequence)), "streamSid": stream_sid, **body})

    with contextlib.suppress(websockets.ConnectionClosed, OSError):
        async with websockets.connect(websocket_url(url, urlsplit(stream.get("url", "")).path)) as ws:
            await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
            await ws.send(message("start", start=start))

            async def echo_marks() -> None:
                async for raw in ws:
                    outbound = json.loads(raw)
                    if outbound.get("event") == "mark":
                        await ws.send(message("mark", mark=outbound["mark"]))

            reader = asyncio.create_task(echo_marks())
            try:
                for _ in range(presses):
                    await asyncio.sleep(interval_s)
                    for digit in "1#":
                        await ws.send(message("dtmf", dtmf={"track": "inbound_track", "digit": digit}))
                    sent.append(time.time())
                await asyncio.sleep(interval_s)
                await ws.send(message("stop", stop={"accountSid": account, "callSid": sid}))
            finally:
                reader.cancel()
                await asyncio.gather(reader, return_exceptions=True)
    return sid


def main() -> None:
    """Serve the app on 127.0.0.1:PORT against database DATABASE at MONGODB_URI, until killed."""
    import uvicorn

    from db import DbSettings, connect

    port, name = int(sys.argv[1]), sys.argv[2]
    database = connect(DbSettings(uri=os.environ["MONGODB_URI"], database=name))
    app = record_app(record_settings(), database)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")


if __name__ == "__main__":
    main()
