"""The post-call queue: jobs run only after a call's end is stored, bounded, and a bad model never
costs the record anything but a `failed` status with its reason.

The model is the scripted OpenAI-compatible server (a FAKE model over real HTTP) behind the real
client; the records go through the pod's real record writer to the test database.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import pytest

from agents.engines.remote.openai_chat import OpenAIChatModel
from agents.post_call import TOOL_NAME, PostCallConfig
from agents.testing.scripted_llm import Fail, Hang, Reply, ScriptedLlmServer, ScriptedToolCall, Step
from db import CallRecords, Database
from telephony.call_records import CallRecordWriter
from telephony.pod import _post_call_queue
from telephony.pod_health.metrics import Metrics
from telephony.post_call_queue import QUEUE_FULL, SHUT_DOWN, PostCallQueue
from tests.support.db import open_test_database
from tests.support.metrics import counter
from tests.support.settings import make_settings

pytestmark = pytest.mark.mongodb

DECLARED = PostCallConfig(
    summary=True,
    fields=[
        {"name": "resolved", "kind": "yes_no"},
        {"name": "reason", "kind": "choice", "choices": ["billing", "other"]},
    ],
)
FILLED = {"summary": "Billing question, answered.", "fields": {"resolved": True, "reason": "billing"}}


def answer(arguments: object) -> Reply:
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return Reply(tool_calls=[ScriptedToolCall(TOOL_NAME, text)])


class Harness:
    def __init__(
        self, database: Database, server: ScriptedLlmServer, made: PostCallQueue | None = None, **queue: Any
    ) -> None:
        self.calls = CallRecords(database)
        self.server = server
        self.outcomes: list[str] = []
        self.queue = made or PostCallQueue(self.calls, on_outcome=self.outcomes.append, **{"max_jobs": 10, **queue})
        self.writer = CallRecordWriter(self.calls, on_ended=self.queue.ended)
        self.chat = OpenAIChatModel(server.base_url, model="scripted", retries=0, first_token_timeout_s=5)

    async def call(self, sid: str, *, end: bool = True) -> None:
        """A call of two lines whose end is handed to the writer (and the queue told to expect it)."""
        self.writer.start(sid, agent_id="support", from_number="+15550001", to_number="+15550002")
        self.writer.append(sid, "transcript", {"role": "caller", "text": "My bill is wrong."})
        self.writer.append(sid, "transcript", {"role": "agent", "text": "I fixed it."})
        if end:
            self.queue.expect(sid, DECLARED, self.chat)
            self.writer.end(sid, outcome="caller hung up")
        await self.writer.flush()

    async def post_call(self, sid: str, status: str, timeout: float = 20.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                record = await self.calls.get(sid)
                if record is not None and (record.get("post_call") or {}).get("status") == status:
                    return record
                await asyncio.sleep(0.02)

    def post_call_requests(self) -> int:
        return sum(1 for r in self.server.requests if any(t["function"]["name"] == TOOL_NAME for t in r.tools or []))


@pytest.fixture
async def database() -> AsyncIterator[Database]:
    async with open_test_database() as database:
        yield database


@pytest.fixture
async def server() -> AsyncIterator[ScriptedLlmServer]:
    async with ScriptedLlmServer() as server:
        yield server


@pytest.fixture
async def harness(database: Database, server: ScriptedLlmServer) -> AsyncIterator[Harness]:
    harness = Harness(database, server, timeout_s=2.0)
    harness.queue.start()
    yield harness
    await harness.queue.close(1.0)


async def test_the_model_fills_the_fields_after_the_end_is_stored(harness: Harness, server: ScriptedLlmServer) -> None:
    server.push(answer(FILLED))
    await harness.call("CA-q1", end=False)
    harness.queue.expect("CA-q1", DECLARED, harness.chat)  # the call ended; its end is not stored yet
    await asyncio.sleep(0.2)
    assert harness.post_call_requests() == 0 and "post_call" not in (await harness.calls.get("CA-q1") or {})
    harness.writer.end("CA-q1", outcome="caller hung up")
    await harness.writer.flush()
    record = await harness.post_call("CA-q1", "done")
    post_call = record["post_call"]
    assert post_call["summary"] == FILLED["summary"] and post_call["fields"] == FILLED["fields"]
    assert post_call["error"] is None
    assert [t["text"] for t in record["transcript"]] == ["My bill is wrong.", "I fixed it."]
    assert record["outcome"] == "caller hung up" and harness.outcomes == ["done"]
    prompt = server.requests[-1].messages[-1]["content"]
    assert "Caller: My bill is wrong." in prompt and "Agent: I fixed it." in prompt  # the stored transcript


@pytest.mark.parametrize(
    ("step", "reason"),
    [
        (Hang(30), "timed out after 2 s"),
        (Fail(500, "scripted failure"), "HTTP 500"),
        (answer("{not json"), "Invalid JSON"),
        (answer({"summary": "x", "fields": {"resolved": "yes", "reason": "billing"}}), "fields.resolved"),
    ],
)
async def test_a_slow_or_failing_model_leaves_the_record_intact(
    harness: Harness, server: ScriptedLlmServer, step: Step, reason: str
) -> None:
    server.push(step)
    await harness.call("CA-q2")
    record = await harness.post_call("CA-q2", "failed")
    post_call = record["post_call"]
    assert reason in post_call["error"] and post_call["summary"] is None and post_call["fields"] == {}
    assert [t["text"] for t in record["transcript"]] == ["My bill is wrong.", "I fixed it."]
    assert record["outcome"] == "caller hung up" and record["ended_at"] is not None
    assert harness.outcomes == ["failed"]


async def test_a_full_queue_marks_the_call_failed_at_once(database: Database, server: ScriptedLlmServer) -> None:
    """The pod's own queue (its settings, its metrics): one waiting job at most."""
    metrics = Metrics()
    settings = make_settings(post_call_queue=1, post_call_workers=1, post_call_timeout_seconds=30)
    async with AsyncExitStack() as exits:
        harness = Harness(database, server, _post_call_queue(settings, database, metrics, exits))
        server.push(Hang(30), answer(FILLED))
        await harness.call("CA-r1")  # taken by the worker, hanging
        await asyncio.wait_for(_until_requests(harness, 1), 10)
        await harness.call("CA-r2")  # waits in the queue
        await harness.call("CA-r3")  # no room
        assert (await harness.post_call("CA-r2", "pending"))["post_call"]["error"] is None
        full = (await harness.post_call("CA-r3", "failed"))["post_call"]
        assert full["error"] == QUEUE_FULL
        assert counter(metrics, "switchboard_post_call_jobs_total", outcome="queue_full") == 1
        assert metrics.registry.get_sample_value("switchboard_post_call_queue") == 1
    for sid in ("CA-r1", "CA-r2"):  # never finished: marked at shutdown
        assert (await harness.post_call(sid, "failed"))["post_call"]["error"] == SHUT_DOWN


async def test_a_call_not_expected_gets_no_post_call(harness: Harness) -> None:
    await harness.call("CA-q4", end=False)
    harness.writer.end("CA-q4", outcome="caller hung up")  # an agent without a declaration
    await harness.writer.flush()
    await asyncio.sleep(0.1)
    record = await harness.calls.get("CA-q4")
    assert record is not None and "post_call" not in record and harness.post_call_requests() == 0


async def _until_requests(harness: Harness, n: int) -> None:
    while harness.post_call_requests() < n:
        await asyncio.sleep(0.02)
