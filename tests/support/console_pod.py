"""The pod a console test drives: the live-call test pod (real app under uvicorn on loopback, FAKE engines, test
database, FAKE Twilio REST) with the console's secret and keys of several kinds."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from tests.support.live_pod import ADMIN_KEY, LivePod, live_pod

CONSOLE_SECRET = "console-secret-0123456789abcdef"
VIEWER_KEY = "viewer-key-0123456789abcdef"
"""Reads everything, writes nothing."""
CALLS_ONLY_KEY = "calls-only-key-0123456789abcdef"
"""`agents:read` only: no `calls:read`."""
OTHER_TENANT_KEY = "other-tenant-key-0123456789abcdef"
"""Reads calls, restricted to a tenant no agent of the pod serves."""
CONSOLE_KEYS = ";".join(
    [
        f"{ADMIN_KEY}:*",
        f"{VIEWER_KEY}:agents:read,calls:read,campaigns:read,tools:read",
        f"{CALLS_ONLY_KEY}:agents:read",
        f"{OTHER_TENANT_KEY}:calls:read,agents:read,tenant:other",
    ]
)


@asynccontextmanager
async def console_pod(**overrides: Any) -> AsyncIterator[LivePod]:
    values: dict[str, Any] = {"console_secret": CONSOLE_SECRET, "api_keys": CONSOLE_KEYS, "serve_stored_agents": True}
    async with live_pod(**(values | overrides)) as pod:
        yield pod
