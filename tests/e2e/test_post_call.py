"""Whole calls through the real app, then their post-call summary and declared fields.

The pod is the real app under uvicorn (webhook, media stream, record writer, post-call queue, admin
API) with FAKE speech engines; its chat model is the real OpenAI-compatible client on the scripted
server (a FAKE model over real HTTP) that answers the caller's key presses and, after the call,
the one `record_call_fields` request. The caller is `keypad_call` (a key press per line).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from agents.config import AgentConfig
from agents.engines.local.silero import VadConfig
from agents.engines.protocols import Engines
from agents.engines.remote.openai_chat import OpenAIChatModel
from agents.post_call import TOOL_NAME
from agents.testing.fake_engines import FakeEngines
from agents.testing.scripted_llm import Hang, Reply, ScriptedLlmServer, ScriptedToolCall, Step
from db import Database
from telephony.app import create_app
from telephony.server import BackgroundServer
from telephony.voice import VoiceStack
from tests.support.admin_api import ADMIN_KEY
from tests.support.db import open_test_database
from tests.support.metrics import counter
from tests.support.record_pod import NUMBER, keypad_call
from tests.support.settings import make_settings
from tests.support.waiting import until

pytestmark = pytest.mark.mongodb

AGENT = AgentConfig(
    id="helpdesk",
    greeting="Hello, press a key.",
    dtmf_timeout_ms=200,
    silence_timeout_seconds=60.0,
    echo_guard=False,
    post_call={
        "summary": True,
        "fields": [
            {"name": "reason_for_call", "kind": "text", "description": "Why they called."},
            {"name": "resolved", "kind": "yes_no"},
        ],
    },
)
FILLED = {"summary": "Two key presses, both noted.", "fields": {"reason_for_call": "testing keys", "resolved": True}}


def is_post_call(body: dict[str, Any]) -> bool:
    return any(t.get("function", {}).get("name") == TOOL_NAME for t in body.get("tools") or [])


class Model:
    """The scripted model: "Noted." to every caller turn, `post_call` to each post-call request."""

    def __init__(self, post_call: Callable[[], Step]) -> None:
        self.post_call = post_call

    def __call__(self, body: dict[str, Any]) -> Step:
        return self.post_call() if is_post_call(body) else Reply(text="Noted.")


@pytest.fixture
async def database() -> AsyncIterator[Database]:
    async with open_test_database() as database:
        yield database


def app_for(database: Database, server: ScriptedLlmServer, **settings: object) -> tuple[Any, dict[str, object]]:
    """The app with the helpdesk agent answering `NUMBER`, and the settings it was made with."""
    fakes = FakeEngines()
    chat = OpenAIChatModel(server.base_url, model="scripted", retries=0)
    stack = VoiceStack(Engines(fakes.vad, fakes.stt, chat, fakes.tts), VadConfig(), fakes.listener_config, fakes.tts)
    values: dict[str, object] = {
        "numbers": {NUMBER: AGENT.id},
        "api_keys": f"{ADMIN_KEY}:*",
        "call_record_shutdown_seconds": 2,
        **settings,
    }
    return create_app(make_settings(**values), database=database, stack=stack, agent_configs=[AGENT]), values


async def call_detail(api: httpx.AsyncClient, sid: str, status: str, timeout: float = 30.0) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            detail = (await api.get(f"/api/calls/{sid}")).json()
            if (detail.get("post_call") or {}).get("status") == status:
                return detail  # type: ignore[no-any-return]
            await asyncio.sleep(0.05)


async def test_the_model_fills_the_fields_after_the_call_and_the_api_filters_on_them(database: Database) -> None:
    async with ScriptedLlmServer(
        Model(lambda: Reply(tool_calls=[ScriptedToolCall(TOOL_NAME, json.dumps(FILLED))]))
    ) as server:
        app, values = app_for(database, server)
        async with BackgroundServer(app, make_settings(**values)) as url:
            sent: list[float] = []
            call = asyncio.create_task(keypad_call(url, 2, 0.4, sent))
            await until(lambda: len(sent) >= 2, timeout=30, what="key presses")
            assert not any(is_post_call(r.body) for r in server.requests)  # nothing of it while the call runs
            sid = await asyncio.wait_for(call, 60)
            headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
            async with httpx.AsyncClient(base_url=url, headers=headers) as api:
                detail = await call_detail(api, sid, "done")
                assert detail["post_call"]["summary"] == FILLED["summary"]
                assert detail["post_call"]["fields"] == FILLED["fields"] and detail["post_call"]["error"] is None
                assert detail["outcome"] and any(t["role"] == "caller" for t in detail["transcript"])
                assert counter(app.state.pod.metrics, "switchboard_post_call_jobs_total", outcome="done") == 1
                found = await api.get("/api/calls", params={"field": "resolved:yes", "post_call": "done"})
                assert [c["call_sid"] for c in found.json()["items"]] == [sid]
                assert found.json()["items"][0]["post_call"] == {"status": "done", "fields": FILLED["fields"]}
                none = await api.get("/api/calls", params=[("field", "resolved:no")])
                assert none.json()["items"] == []
                for bad in ({"field": "resolved"}, {"field": "Bad.Name:x"}, {"post_call": "running"}):
                    refused = await api.get("/api/calls", params=bad)
                    assert refused.status_code == 422, (bad, refused.text)
                    assert refused.json()["detail"][0]["loc"][0] == "query"
            post_call_request = next(r for r in server.requests if is_post_call(r.body))
            assert post_call_request.tool_choice == "required"
            assert "Agent: Noted." in post_call_request.messages[-1]["content"]


async def test_a_hanging_model_fails_the_job_without_slowing_the_next_call(database: Database) -> None:
    async with ScriptedLlmServer(Model(lambda: Hang(30))) as server:
        app, values = app_for(database, server, post_call_timeout_seconds=2.0)
        async with BackgroundServer(app, make_settings(**values)) as url:
            first = await asyncio.wait_for(keypad_call(url, 1, 0.3, []), 60)
            await until(lambda: any(is_post_call(r.body) for r in server.requests), timeout=30, what="the job")
            before = len(server.requests)
            second = await asyncio.wait_for(keypad_call(url, 2, 0.3, []), 60)  # while the job hangs
            headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
            async with httpx.AsyncClient(base_url=url, headers=headers) as api:
                detail = await call_detail(api, first, "failed")
                assert detail["post_call"]["error"] == "timed out after 2 s" and detail["post_call"]["fields"] == {}
                assert counter(app.state.pod.metrics, "switchboard_post_call_jobs_total", outcome="failed") >= 1
                assert (
                    detail["outcome"]
                    and [t["text"] for t in detail["transcript"] if t["role"] == "agent"][-1] == "Noted."
                )
                second_detail = (await api.get(f"/api/calls/{second}")).json()
            agent_lines = [t["text"] for t in second_detail["transcript"] if t["role"] == "agent"]
            assert agent_lines.count("Noted.") == 2  # the second call was answered turn by turn
            assert sum(1 for r in list(server.requests)[before:] if not is_post_call(r.body)) == 2
