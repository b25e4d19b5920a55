"""A whole recorded call: the simulator as Twilio, the real server, the echo agent with `record: true`,
a barge-in that clears a reply; the stored WAV is the call as the caller heard it, served with Range."""

from __future__ import annotations

import asyncio
import io
import time
import wave

import httpx
import numpy as np

from agents.echo import EchoAgent
from agents.port import AgentCatalog
from db import CallRecords, Database, ensure_indexes, in_memory
from db.recordings import GridFsRecordings
from telephony.app import create_app
from telephony.audio.mulaw import mulaw_to_pcm16
from telephony.server import BackgroundServer
from telephony.simulator import Pause, Say, SimulatedCall, new_sid, synthetic_utterance
from tests.support.recorded_agent import RecordedAgent
from tests.support.recording_store import MemoryRecordingStore
from tests.support.settings import AGENT_NUMBER, AUTH_TOKEN, TRANSFER_NUMBER, make_settings

KEY = "reader-key-0123456789abcdef"


def stored_wav(database: Database, call_sid: str, timeout: float = 10.0) -> bytes:
    """The recording once the pod has finished storing it (after the call, in the background)."""

    async def read() -> bytes | None:
        store = GridFsRecordings(database)
        info = await store.info(call_sid)
        return None if info is None else b"".join([piece async for piece in store.read(info, 0, info.length)])

    deadline = time.monotonic() + timeout
    while (data := asyncio.run(read())) is None:
        assert time.monotonic() < deadline, "the recording was not stored"
        time.sleep(0.1)
    return data


def audible_seconds(channel: np.ndarray) -> float:
    """Time in 20 ms frames with any sound in them."""
    frames = channel[: len(channel) // 160 * 160].reshape(-1, 160)
    return float((np.abs(frames.astype(np.int32)).max(axis=1) > 64).sum() * 0.02)


def test_a_recorded_call_is_stored_as_heard_and_served_with_ranges() -> None:
    database = in_memory()
    asyncio.run(ensure_indexes(database))
    call_sid = new_sid("CA")
    record = CallRecords(database).start(call_sid, agent_id="echo", from_number="+15005550006", to_number=AGENT_NUMBER)
    asyncio.run(record)
    settings = make_settings(api_keys=f"{KEY}:calls:read")
    agent = RecordedAgent(EchoAgent(transfer_number=TRANSFER_NUMBER))
    app = create_app(settings, database=database, agents=AgentCatalog({"echo": agent}))
    script = [Say(synthetic_utterance(3.0)), Pause(1.5), Say(synthetic_utterance(0.8), "interruption"), Pause(3.0)]
    with BackgroundServer(app, settings) as url:
        call = SimulatedCall(url, AUTH_TOKEN, to=AGENT_NUMBER, call_sid=call_sid, script=script, tail_s=1.0)
        report = asyncio.run(call.run())
        data = stored_wav(database, call_sid)
        headers = {"Authorization": f"Bearer {KEY}"}
        whole = httpx.get(f"{url}/api/calls/{call_sid}/recording", headers=headers)
        part = httpx.get(f"{url}/api/calls/{call_sid}/recording", headers=headers | {"Range": "bytes=44-1043"})
        detail = httpx.get(f"{url}/api/calls/{call_sid}", headers=headers).json()

    assert len(report.clears) == 1  # the echo of the first utterance was cut off by the interruption
    with wave.open(io.BytesIO(data), "rb") as wav:
        assert (wav.getnchannels(), wav.getframerate(), wav.getsampwidth()) == (2, 8000, 2)
        duration = wav.getnframes() / 8000
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
    assert abs(duration - report.recording_seconds) <= 0.1  # as long as the call
    left, right = samples[0::2], samples[1::2]
    caller = np.frombuffer(mulaw_to_pcm16(bytes(report.caller_mulaw)), dtype=np.int16)
    n = min(len(left), len(caller))
    assert np.array_equal(left[:n], caller[:n])  # the caller on the left, exactly as sent
    # The agent on the right, as heard: as much agent audio as the simulator (Twilio) played, not
    # the whole reply the pod sent before the clear.
    assert abs(audible_seconds(right) - audible_seconds(report.agent_pcm())) <= 0.1
    assert audible_seconds(right) < 3.0 + 0.8 + 0.5
    played = report.agent_pcm().astype(np.float64)
    m = min(len(right), len(played))
    recorded = right[:m].astype(np.float64)
    similarity = np.dot(recorded, played[:m]) / (np.linalg.norm(recorded) * np.linalg.norm(played[:m]))
    assert similarity > 0.8  # the same audio at the same time (within a frame of the simulator's clock)

    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["content-type"] == "audio/wav" and whole.headers["accept-ranges"] == "bytes"
    assert part.status_code == 206 and part.content == data[44:1044]
    assert part.headers["content-range"] == f"bytes 44-1043/{len(data)}"
    assert detail["recording"]["bytes"] == len(data) and detail["recording"]["complete"] is True
    assert abs(detail["recording"]["duration_s"] - duration) < 0.01


def test_a_call_goes_on_when_the_recording_store_is_down() -> None:
    store = MemoryRecordingStore()
    store.fail = True
    settings = make_settings()
    agent = RecordedAgent(EchoAgent(transfer_number=TRANSFER_NUMBER))
    app = create_app(settings, agents=AgentCatalog({"echo": agent}), recording_store=store)
    with BackgroundServer(app, settings) as url:
        call = SimulatedCall(url, AUTH_TOKEN, to=AGENT_NUMBER, script=[Say(synthetic_utterance(1.0)), Pause(2.0)])
        report = asyncio.run(call.run())
        finishing = app.state.pod.recorders
        deadline = time.monotonic() + 10
        while finishing.finishing and time.monotonic() < deadline:
            time.sleep(0.05)
    assert report.outcome == "caller hung up"
    assert report.agent_audio_seconds > 0.9  # the echo agent answered as usual
    assert store.files == {} and finishing.finishing == 0
