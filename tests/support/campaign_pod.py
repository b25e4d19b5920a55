"""A pod for outbound and campaign tests: the real app under uvicorn on a loopback port, in the
test's own event loop (so it shares the in-memory database with the dialers safely), with Twilio's
REST API faked on another loopback port."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from agents.loopback import LoopbackServer
from db import Database
from telephony.app import create_app
from telephony.pod import Pod as RunningPod
from telephony.pod_health.memory import MemoryReader
from telephony.simulator.fake_twilio_rest import FakeTwilioRest
from tests.support.db import open_test_database
from tests.support.fake_twilio import ACCOUNT_SID, serve_fake_twilio
from tests.support.settings import make_settings

ADMIN_KEY = "admin-key-0123456789abcdef"


@dataclass
class Pod:
    edge: RunningPod
    """The running pod, as its handlers reach it (opened by `create_app`'s lifespan)."""
    database: Database
    fake: FakeTwilioRest
    url: str
    api: httpx.AsyncClient


class ShiftedClock:
    """Wall time moved to a chosen instant (it keeps ticking), and movable again by the test."""

    def __init__(self, at: float | None = None) -> None:
        self.offset = 0.0 if at is None else at - time.time()

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@asynccontextmanager
async def campaign_pod(
    fake_options: dict[str, Any] | None = None, *, memory_reader: MemoryReader | None = None, **overrides: Any
) -> AsyncIterator[Pod]:
    """`memory_reader` (e.g. a fake cgroup's) replaces this process's memory for the pod's guard."""
    server = LoopbackServer(ws_max_size=make_settings().ws_max_frame_bytes, lifespan="on")
    url = server.url  # the pod's public URL: known before the pod is made
    with serve_fake_twilio(**(fake_options or {})) as (fake, fake_url):
        values: dict[str, Any] = {
            "public_url": url,
            "twilio_account_sid": ACCOUNT_SID,
            "twilio_api_base_url": fake_url,
            "twilio_api_backoff_seconds": 0.05,
            "api_keys": f"{ADMIN_KEY}:*",
            "dialer_poll_seconds": 0.05,
            "dialer_lease_seconds": 1.0,
            "max_concurrent_calls": 500,
        }
        values.update(overrides)
        settings = make_settings(**values)
        async with open_test_database() as database:
            app = create_app(settings, database=database, memory_reader=memory_reader)
            server.mount(app)
            async with server:
                headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
                async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as api:
                    yield Pod(app.state.pod, database, fake, url, api)
