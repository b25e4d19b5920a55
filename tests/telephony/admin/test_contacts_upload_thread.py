"""A contact upload (up to 8 MiB) is parsed on a worker thread, never on the pod's event loop, so
the live calls the loop carries do not stutter while it is read."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

import telephony.admin.campaigns as admin_campaigns
from tests.support.campaign_pod import campaign_pod
from tests.support.settings import AGENT_NUMBER

pytestmark = pytest.mark.mongodb

ROWS = 1_000
"""~0.5 MB of CSV (the in-memory database inserts slowly; the thread is what is checked)."""


async def test_a_large_upload_is_parsed_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed_on: list[int] = []
    real = admin_campaigns.parse_upload

    def recording(*args: Any, **kwargs: Any) -> Any:
        parsed_on.append(threading.get_ident())
        return real(*args, **kwargs)

    monkeypatch.setattr(admin_campaigns, "parse_upload", recording)
    async with campaign_pod() as pod:
        body = {"name": "big", "agent_id": "echo", "caller_id": AGENT_NUMBER, "timezone": "America/New_York"}
        created = await pod.api.post("/api/campaigns", json=body)
        assert created.status_code == 201, created.text
        cid = created.json()["id"]
        rows = ["phone,first_name,note"] + [f"+1555{i:07d},Ada{i},{'x' * 480}" for i in range(ROWS)]
        csv = "\n".join(rows).encode()
        assert len(csv) > 480_000
        ticks = 0
        stop = asyncio.Event()

        async def ticker() -> None:  # a stand-in for a live call's 20 ms frames
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0.001)

        task = asyncio.create_task(ticker())
        try:
            response = await pod.api.post(
                f"/api/campaigns/{cid}/contacts", content=csv, headers={"Content-Type": "text/csv"}
            )
        finally:
            stop.set()
            await task
        assert response.status_code == 200, response.text
        assert response.json()["inserted"] == ROWS
        assert parsed_on and all(ident != threading.get_ident() for ident in parsed_on)  # a worker thread
        assert ticks > 0
