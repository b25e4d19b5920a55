"""A pod for outbound and campaign tests: the real app under uvicorn on a loopback port, in the
test's own event loop (so it shares the in-memory database with the dialers safely), with Twilio's
REST API faked on another loopback port."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn

from db import Database, ensure_indexes
from telephony.app import build_edge, create_app, twilio_client
from telephony.edge import CallEdge
from telephony.server import uvicorn_config
from telephony.simulator.fake_twilio_rest import FakeTwilioRest
from tests.support.db import open_test_database
from tests.support.fake_twilio import ACCOUNT_SID, serve_fake_twilio
from tests.support.settings import make_settings

ADMIN_KEY = "admin-key-0123456789abcdef"


@dataclass
class Pod:
    edge: CallEdge
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
async def campaign_pod(fake_options: dict[str, Any] | None = None, **overrides: Any) -> AsyncIterator[Pod]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
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
            await ensure_indexes(database)
            edge = build_edge(settings)
            edge.database = database
            edge.twilio = twilio_client(settings)
            server = uvicorn.Server(uvicorn_config(create_app(settings, edge), settings, host="127.0.0.1"))
            task = asyncio.create_task(server.serve(sockets=[sock]))
            while not server.started:
                await asyncio.sleep(0.01)
            try:
                headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
                async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as api:
                    yield Pod(edge, database, fake, url, api)
            finally:
                server.should_exit = True
                await task
                await edge.twilio.close()
                sock.close()
