"""A pod for the live-call tests: the real app under uvicorn on a loopback port, in the test's own event
loop, with the recorded agent on FAKE engines (`record_pod`: key presses grow its transcript), a test
database, Twilio's REST API faked on another loopback port, and API keys of several kinds."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from agents.loopback import LoopbackServer
from db import Database
from telephony.pod import Pod
from telephony.simulator import CallReport, SimulatedCall
from telephony.simulator.fake_twilio_rest import FakeTwilioRest
from telephony.simulator.script import Step
from tests.support.db import open_test_database
from tests.support.fake_twilio import ACCOUNT_SID, serve_fake_twilio
from tests.support.record_pod import NUMBER, record_app, record_settings
from tests.support.settings import AUTH_TOKEN, make_settings

ADMIN_KEY = "admin-key-0123456789abcdef"
READER_KEY = "reader-key-0123456789abcdef"
"""`calls:read` only."""
TENANT_KEY = "tenant-key-0123456789abcdef"
"""Every calls scope, restricted to a tenant no agent of this pod serves."""
KEYS = f"{ADMIN_KEY}:*;{READER_KEY}:calls:read;{TENANT_KEY}:calls:read,calls:write,tenant:other"
MAX_EVENTS = 500
"""Bound on the events one `read_events` collects."""


@dataclass
class LivePod:
    edge: Pod
    database: Database
    fake: FakeTwilioRest
    url: str
    api: httpx.AsyncClient

    def client(self, key: str) -> httpx.AsyncClient:
        """Another client on the pod with `key` (the caller closes it)."""
        return httpx.AsyncClient(base_url=self.url, headers={"Authorization": f"Bearer {key}"}, timeout=30)

    def call(self, *script: Step, max_seconds: float = 60.0) -> asyncio.Task[CallReport]:
        """A simulated caller dialling the recorded agent with `script`, running as a task."""
        call = SimulatedCall(
            self.url, AUTH_TOKEN, to=NUMBER, script=list(script), account_sid=ACCOUNT_SID, max_seconds=max_seconds
        )
        return asyncio.create_task(call.run())


@asynccontextmanager
async def live_pod(**overrides: Any) -> AsyncIterator[LivePod]:
    server = LoopbackServer(ws_max_size=make_settings().ws_max_frame_bytes, lifespan="on")
    url = server.url
    with serve_fake_twilio() as (fake, fake_url):
        values: dict[str, Any] = {
            "public_url": url,
            "twilio_account_sid": ACCOUNT_SID,
            "twilio_api_base_url": fake_url,
            "twilio_api_backoff_seconds": 0.05,
            "api_keys": KEYS,
            "live_event_stream_seconds": 30.0,  # a stream a test leaves open cannot hold the shutdown long
        }
        settings = record_settings(**(values | overrides))
        async with open_test_database() as database:
            app = record_app(settings, database)
            server.mount(app)
            async with server:
                headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
                try:
                    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as api:
                        yield LivePod(app.state.pod, database, fake, url, api)
                finally:
                    app.state.pod.drain.begin()  # open event streams end within a poll: uvicorn waits for them


async def read_events(
    response: httpx.Response, *, until_kind: str = "end", limit: int = MAX_EVENTS
) -> AsyncIterator[tuple[str | None, str, dict[str, Any]]]:
    """(id, event, data) of each server-sent event of an open stream, up to the first `until_kind`."""
    event_id: str | None = None
    kind, data = "message", ""
    seen = 0
    async for line in response.aiter_lines():
        if line.startswith("id: "):
            event_id = line[4:]
        elif line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: "):
            data = line[6:]
        elif line == "" and data:
            yield event_id, kind, json.loads(data)
            seen += 1
            if kind == until_kind or seen >= limit:
                return
            kind, data = "message", ""
