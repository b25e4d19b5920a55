"""Chaos: a pod killed mid-call leaves the call's record written up to within a second of the kill.

The pod writes a call's record as the call goes (`telephony/call_records.py`, flushed every
`call_record_flush_seconds`). The caller presses a key every `INTERVAL_S` (each entry is a caller
line, the fake model's answer an agent line); mid-call the pod dies, and every key press sent more
than `WITHIN_S` before the kill must have its line in the stored record.

Two variants:
- in process (runs everywhere, the in-memory fake included): the pod is the real app under uvicorn
  on FAKE engines; it "dies" when its database client is cut for good (a FAKE: every later operation
  raises PyMongo's outage error), so nothing it does after that instant, shutdown flush included,
  can reach the record. Its in-memory record is then compared line by line with the stored one.
- SIGKILL (only with `MONGODB_URI`: the killed process and the test must share a real server): the
  same app in a child process (`python -m tests.support.record_pod`), killed with SIGKILL.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from agents.testing.fake_engines import FakeChatModel, FakeEngines
from agents.testing.scripted_llm import Reply
from agents.voice_agent import VoiceAgent
from db import CallRecords, Database, DbSettings, connect
from telephony.server import BackgroundServer
from tests.support.db import MONGODB_URI, open_test_database
from tests.support.db_outage import cuttable
from tests.support.record_pod import AGENT, MAX_REPLIES, keypad_call, record_app, record_settings
from tests.support.waiting import until

pytestmark = pytest.mark.mongodb

INTERVAL_S = 0.5
"""Between key presses."""
PRESSES = 12
KILL_AFTER = 5
"""Presses sent before the pod dies (mid-call: `PRESSES` were scripted)."""
WITHIN_S = 1.0
"""What a killed pod may lose: the last second of the call (the flush interval is 0.5 s)."""
ROOT = Path(__file__).resolve().parents[2]


def caller_lines(stored: dict[str, object] | None) -> list[str]:
    transcript = (stored or {}).get("transcript") or []
    return [line["text"] for line in transcript if line["role"] == "caller"]  # type: ignore[index, union-attr]


def assert_lost_at_most_the_last_second(stored: dict[str, object] | None, sent: list[float], killed_at: float) -> None:
    due = [at for at in sent if at <= killed_at - WITHIN_S]
    assert len(due) >= 2, f"the kill came too early to tell: presses at {sent}, killed at {killed_at}"
    assert len(caller_lines(stored)) >= len(due), (len(caller_lines(stored)), len(due), stored)
    assert stored is not None and stored["outcome"] is None  # the end was never written: the pod died first


async def test_a_pod_that_dies_mid_call_leaves_its_record_up_to_the_last_second() -> None:
    fakes = FakeEngines(chat=FakeChatModel([Reply(f"Noted entry {i}.") for i in range(MAX_REPLIES)]))
    settings = record_settings()
    async with open_test_database() as database:
        dying, client = cuttable(database)
        app = record_app(settings, dying, fakes)
        async with BackgroundServer(app, settings) as url:
            sent: list[float] = []
            call = asyncio.create_task(keypad_call(url, PRESSES, INTERVAL_S, sent))
            await until(lambda: len(sent) >= KILL_AFTER, timeout=30, what="key presses before the kill")
            client.cut, killed_at = True, time.time()  # the pod's writes stop here, for good
            call_sid = await asyncio.wait_for(call, 60)
            agent = app.state.pod.agents.get(AGENT.id)
            assert isinstance(agent, VoiceAgent)
            await until(lambda: any(r.call_sid == call_sid for r in agent.records), timeout=30, what="the call's end")
        stored = await CallRecords(database).get(call_sid)
    assert_lost_at_most_the_last_second(stored, sent, killed_at)
    memory = next(r for r in agent.records if r.call_sid == call_sid)
    stored_lines = [(line["role"], line["text"]) for line in (stored or {})["transcript"]]  # type: ignore[union-attr]
    kept = [(line.role, line.text) for line in memory.transcript]
    assert stored_lines == kept[: len(stored_lines)]  # what was written is what the pod held, in order
    assert len(kept) > len(stored_lines)  # and the pod went on after it "died": the cut was mid-call
    before = [line for line in memory.transcript if memory.started_at + line.at_s <= killed_at - WITHIN_S]
    assert len(stored_lines) >= len(before), (stored_lines, before)
    last_stored = memory.started_at + memory.transcript[len(stored_lines) - 1].at_s
    lag = killed_at - last_stored
    print(f"stored {len(stored_lines)} of {len(kept)} lines; the last stored one {lag:.2f} s before the cut")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.skipif(not MONGODB_URI, reason="the killed pod and the test share a real MongoDB: set MONGODB_URI")
def test_a_pod_sigkilled_mid_call_leaves_its_record_up_to_the_last_second() -> None:
    assert MONGODB_URI is not None
    name = f"switchboard_test_{uuid.uuid4().hex[:12]}"
    port = free_port()
    pod = subprocess.Popen(
        [sys.executable, "-m", "tests.support.record_pod", str(port), name],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        asyncio.run(_call_and_kill(pod, f"http://127.0.0.1:{port}", name))
    finally:
        if pod.poll() is None:
            pod.kill()
        pod.wait(10)


async def _call_and_kill(pod: subprocess.Popen[bytes], url: str, name: str) -> None:
    assert MONGODB_URI is not None
    database: Database = connect(DbSettings(uri=MONGODB_URI, database=name))
    try:
        await until(lambda: pod.poll() is not None or _answers(url), timeout=120, poll=0.2, what="the pod")
        assert pod.poll() is None, "the pod exited at start-up"
        sent: list[float] = []
        call = asyncio.create_task(keypad_call(url, PRESSES, INTERVAL_S, sent))
        await until(lambda: len(sent) >= KILL_AFTER, timeout=30, what="key presses before the kill")
        pod.send_signal(signal.SIGKILL)
        killed_at = time.time()
        call_sid = await asyncio.wait_for(call, 60)
        stored = await CallRecords(database).get(call_sid)
        assert_lost_at_most_the_last_second(stored, sent, killed_at)
    finally:
        await database.drop()
        await database.close()


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
